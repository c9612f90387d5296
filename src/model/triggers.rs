//! What timers and path units trigger: the unit their `Unit=` names, else the service of the
//! same name (`backup.timer` → `backup.service`, `job@x.path` → `job@x.service`), as
//! systemd.timer(5) and systemd.path(5) define it. systemd refuses to start a timer or path
//! unit whose unit does not exist, and `systemd-analyze verify` does not say so, so the checks
//! before a change ask this module which unit must exist.

use crate::model::unit;

/// The section that holds `Unit=` in a unit of this name, for triggering unit types.
fn trigger_section(name: &str) -> Option<&'static str> {
    match name.rsplit_once('.')?.1 {
        "timer" => Some("Timer"),
        "path" => Some("Path"),
        _ => None,
    }
}

/// The unit that `name` triggers, from its file and drop-ins in the order systemd reads them
/// (the last `Unit=` wins); `None` for a unit that triggers nothing.
pub fn triggered_unit(name: &str, texts: &[&str]) -> Option<String> {
    let section = trigger_section(name)?;
    let named = texts
        .iter()
        .filter_map(|text| unit::parse(text).ok())
        .flat_map(|file| file.values(section, "Unit").map(str::to_string).collect::<Vec<_>>())
        .rfind(|value| !value.trim().is_empty());
    let (stem, _) = name.rsplit_once('.')?;
    Some(named.map_or_else(|| format!("{stem}.service"), |value| value.trim().to_string()))
}

/// The template a unit instance is made from (`job@x.service` → `job@.service`), if it is one.
pub fn template_of(name: &str) -> Option<String> {
    let (prefix, rest) = name.split_once('@')?;
    let (instance, suffix) = rest.rsplit_once('.')?;
    (!instance.is_empty()).then(|| format!("{prefix}@.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_and_paths_trigger_their_unit_or_the_service_of_their_name() {
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            ("backup.timer", &["[Timer]\nOnCalendar=daily\n"], Some("backup.service")),
            ("backup.timer", &["[Timer]\nUnit=other.service\n"], Some("other.service")),
            ("backup.timer", &["[Timer]\nUnit=a.service\n", "[Timer]\nUnit=b.target\n"], Some("b.target")),
            ("watch.path", &["[Path]\nPathChanged=/etc/x\n"], Some("watch.service")),
            ("job@x.timer", &["[Timer]\nOnCalendar=daily\n"], Some("job@x.service")),
            ("web.service", &["[Service]\nExecStart=/bin/true\n"], None),
            ("web.socket", &["[Socket]\nListenStream=80\n"], None),
        ];
        for (name, texts, want) in cases {
            assert_eq!(triggered_unit(name, texts).as_deref(), *want, "{name} {texts:?}");
        }
    }

    #[test]
    fn instances_come_from_their_template() {
        assert_eq!(template_of("job@x.service").as_deref(), Some("job@.service"));
        assert_eq!(template_of("job@.service"), None);
        assert_eq!(template_of("job.service"), None);
    }
}
