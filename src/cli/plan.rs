//! `core-ops plan`: what applying would change on the host, and why — read-only. The plan is
//! the pipeline's ([`pipeline::plan`]); this file parses the arguments and prints the plan, for a
//! person or as JSON. Its rendering also serves `apply` (the plan shown for approval and
//! printed after the run) and `explain`. Run without root on a root whose state is root's alone,
//! it plans without the ownership record and says so (docs/plan-and-apply.md, "Running without
//! root").

use std::ffi::OsStr;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cli::input::{self, FollowArgs, InputArgs};
use crate::cli::report::{
    PLAN_SCHEMA_VERSION, PlanDesired, PlanDetail, PlanDiff, PlanObject, PlanOrigin, PlanOverride, PlanReport,
    PlanSkipped, PlanSystemd, PlanUnit, PlanUnitAction,
};
use crate::cli::{EXIT_CHANGES_PENDING, EXIT_FAILURE, EXIT_OK, OutputFormat};
use crate::host::pipeline::{self, Loaded, Machine, PlanHow, Planned, Reach};
use crate::host::store::{self, StateRead};
use crate::model::activation::{Activation, UnitAction};
use crate::model::desired::{DesiredState, Object, Owner, Role};
use crate::model::path::{printable, printable_content};
use crate::model::plan::{self, Change, ContentDiff, Detail, Plan};
use crate::model::source::compose::Origin;
use crate::model::state::State;

/// Lines of a diff shown without `-v`.
const DIFF_PREVIEW_LINES: usize = 40;

/// Exit codes of `plan`, for its `--help`.
const EXIT_CODES: &str = "Exit codes:
  0   the plan can be applied (with --exit-code: and nothing would change)
  1   failure: anything blocked (apply would fail), invalid input, an error of the checks (Quadlet files, units;
      with --strict any warning), another host's root
  2   usage error
  3   with --exit-code: changes pending
  64  the source repository path is not a directory
  65  the source repository is invalid";

/// Arguments of `plan`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub struct Args {
    /// Where the desired state comes from.
    #[command(flatten)]
    pub input: InputArgs,
    /// The followed repository.
    #[command(flatten)]
    pub follow: FollowArgs,
    /// The root directory to plan against.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Report format: human, or the versioned JSON document of `schemas/`.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// Show unchanged objects and whole diffs.
    #[arg(short, long)]
    pub verbose: bool,
    /// Exit with 3 when changes are pending (0 when none).
    #[arg(long)]
    pub exit_code: bool,
    /// Fetch nothing over the network (remote merge children cannot be planned then).
    #[arg(long)]
    pub offline: bool,
    /// Plan as `apply --adopt` would: differing unowned paths are taken over.
    #[arg(long)]
    pub adopt: bool,
    /// Plan as `apply --switch-host` would: for a root last applied as another host.
    #[arg(long)]
    pub switch_host: bool,
    /// Fail on any warning: of the input (as in `render-ignition --strict`) and of the checks.
    #[arg(long)]
    pub strict: bool,
}

/// Runs the command.
pub fn run(args: &Args) -> Result<u8> {
    let (root, _stand_in) = crate::cli::root_dir::open_for_plan(&args.root)?;
    let (state, unseen) = match store::read_state(&root)? {
        StateRead::Read(state) => (state, None),
        StateRead::Denied { file } => (State::new(), Some(unseen_record(&file))),
    };
    let shown = args.root.display().to_string();
    let input = args.input.resolve(&root, &args.follow, std::time::Duration::from_secs(60))?;
    let host = input.host();
    crate::cli::identity::guard(&root, &shown, &state, host, args.switch_host, crate::cli::identity::Purpose::Plan)?;
    let mut loaded = pipeline::load(&input, false)?;
    input::show_warnings(&loaded, args.strict)?;
    input::show_notes(&loaded, args.verbose);
    let machine = Machine::new(&args.root, args.offline);
    let planned = pipeline::plan(&root, &state, &loaded.apply_input(), machine.fetch()?, args.how())?;
    print_unseen(args, &loaded, planned, unseen)
}

/// The warning of a plan made without the ownership record, which core-ops, running without
/// root, may not read at `file` (docs/plan-and-apply.md, "Running without root").
fn unseen_record(file: &str) -> String {
    format!(
        "{} cannot be read without root (permission denied; core-ops runs as uid {}), so this plan cannot see \
         what was applied: it is made as for a root never applied. What CoreOps owns, drift from what it wrote and \
         removals are not shown, objects it wrote may show as unowned conflicts, and the host the root was applied as \
         is not checked. Run plan as root (e.g. with sudo) for the full plan",
        file,
        rustix::process::geteuid().as_raw()
    )
}

/// Prints a plan of `loaded` as `args` ask; returns the exit code: 1 when anything is blocked or
/// the checks stop it, 3 under `--exit-code` when changes are pending. `rollback --plan` prints
/// the plan of a snapshot through this too.
pub fn print(args: &Args, loaded: &Loaded, planned: Planned) -> Result<u8> {
    print_unseen(args, loaded, planned, None)
}

/// [`print`] for a plan made without the ownership record when `unseen` (the warning that says
/// so): the warning goes in the JSON document and, last, on standard error, and a blocked object
/// no longer proves that apply would fail.
fn print_unseen(args: &Args, loaded: &Loaded, planned: Planned, unseen: Option<String>) -> Result<u8> {
    let Planned { desired, plan, activation, checks, .. } = planned;
    let mut report = report_with(loaded, &desired, &plan, &activation, &args.root.display().to_string(), args.verbose);
    report.warnings.extend(unseen.clone());
    let stop = checks.stop(args.strict);
    report.systemd.quadlet_errors = checks.quadlet_errors;
    report.systemd.unit_errors = checks.unit_errors;
    report.systemd.check_warnings = checks.warnings;
    report.systemd.check_notes = checks.notes;
    let mut out = super::report_output();
    match args.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report).context("writing the plan")?;
            writeln!(out)?;
        }
        OutputFormat::Human => {
            let style = Style::detect(io::stdout().is_terminal());
            render_human(&mut out, &report, args.verbose, style)?;
        }
    }
    out.flush()?;
    if let Some(warning) = &unseen {
        eprintln!("warning: {}.", printable(warning));
    }
    let blocked = report.summary.blocked;
    if blocked > 0 {
        let (count, verb) =
            if blocked == 1 { ("1 object".to_string(), "is") } else { (format!("{blocked} objects"), "are") };
        match unseen {
            None => eprintln!("error: {count} {verb} blocked, so apply would fail and write nothing."),
            Some(_) => eprintln!(
                "error: {count} {verb} blocked in this plan without the ownership record; run plan as root to see \
                 whether apply would fail."
            ),
        }
    }
    if args.strict && !report.systemd.check_warnings.is_empty() {
        eprintln!("Checks produced warnings and --strict was specified");
    }
    Ok(if stop || blocked > 0 {
        EXIT_FAILURE
    } else if args.exit_code && report.changes_pending {
        EXIT_CHANGES_PENDING
    } else {
        EXIT_OK
    })
}

impl Args {
    /// How the pipeline plans for these options: with the checks, as `apply` runs them.
    pub fn how(&self) -> PlanHow<'_> {
        PlanHow { root_dir: &self.root, offline: self.offline, adopt: self.adopt, checks: true }
    }
}

fn origin(o: &Origin) -> PlanOrigin {
    PlanOrigin { file: o.file.clone(), path: o.path.clone() }
}

/// The JSON document for a plan. Without `verbose`, a created file's diff (its whole content)
/// is summarised as a line count, as the human output does.
pub fn report(loaded: &Loaded, desired: &DesiredState, plan: &Plan, root: &str, verbose: bool) -> PlanReport {
    report_with(loaded, desired, plan, &Activation::default(), root, verbose)
}

/// The JSON document for a plan and the systemd actions it needs.
pub fn report_with(
    loaded: &Loaded,
    desired: &DesiredState,
    plan: &Plan,
    activation: &Activation,
    root: &str,
    verbose: bool,
) -> PlanReport {
    let s = plan.summary();
    let action =
        |a: &UnitAction| PlanUnitAction { verb: a.verb.name().into(), unit: a.unit.clone(), cause: a.cause.clone() };
    PlanReport {
        schema_version: PLAN_SCHEMA_VERSION,
        host: loaded.host.clone(),
        source: loaded.source.clone(),
        root: root.to_string(),
        objects: plan
            .changes
            .iter()
            .map(|c| {
                let wanted = desired.objects.get(&c.path);
                with_desired(object(c, wanted, verbose), wanted)
            })
            .collect(),
        units: desired
            .units
            .iter()
            .map(|u| {
                let intent = match (u.mask, u.enabled) {
                    (true, _) => "mask",
                    (false, Some(true)) => "enable",
                    _ => "disable",
                };
                PlanUnit { name: u.name.clone(), intent: intent.into(), origin: origin(&u.origin) }
            })
            .collect(),
        systemd: PlanSystemd {
            daemon_reload: activation.daemon_reload,
            actions: activation.actions.iter().map(action).collect(),
            held: activation.held.iter().map(action).collect(),
            offline: activation.offline.clone(),
            ..PlanSystemd::default()
        },
        skipped: plan
            .skipped
            .iter()
            .map(|k| PlanSkipped { what: k.what.clone(), reason: k.reason.clone(), origin: origin(&k.origin) })
            .collect(),
        overrides: loaded
            .overrides
            .iter()
            .map(|o| PlanOverride { entry: o.key.to_string(), replaced: origin(&o.replaced), by: origin(&o.by) })
            .collect(),
        summary: s,
        changes_pending: plan.has_changes(),
        warnings: Vec::new(),
    }
}

/// The report's entry for `c`; `desired` is its desired object, whose text a created file's
/// whole diff (`-v`) is made from.
fn object(c: &Change, desired: Option<&Object>, verbose: bool) -> PlanObject {
    let (role, unit) = match &c.role {
        Role::Plain => (None, None),
        Role::UnitFile(u) => (Some("unit"), Some(u.clone())),
        Role::Dropin(u) => (Some("dropin"), Some(u.clone())),
        Role::Mask(u) => (Some("mask"), Some(u.clone())),
        Role::Quadlet(u) => (Some("quadlet"), Some(u.clone())),
        Role::Enable(u) => (Some("enable"), Some(u.clone())),
    };
    PlanObject {
        path: c.path.clone(),
        kind: c.kind.name().into(),
        action: c.action.name().into(),
        drift: c.drift.map(|d| d.name().to_string()),
        changes: c.details.iter().map(detail).collect(),
        diff: c.diff.as_ref().and_then(|d| created_in_whole(d, desired, verbose).or_else(|| Some(diff(d)))),
        reason: c.reason.clone(),
        role: role.map(str::to_string),
        unit,
        desired: None,
        origin: origin(&c.origin),
    }
}

fn with_desired(mut o: PlanObject, desired: Option<&Object>) -> PlanObject {
    o.desired = desired.map(|d| {
        let owner = |w: &Owner| match w {
            Owner::Unset => None,
            Owner::Id(id) => Some(id.to_string()),
            Owner::Name(name) => Some(name.clone()),
        };
        PlanDesired {
            sha256: d.digest(),
            mode: d.mode.map(|m| format!("{m:04o}")),
            user: owner(&d.user),
            group: owner(&d.group),
            target: d.target.clone(),
        }
    });
    o
}

fn detail(d: &Detail) -> PlanDetail {
    let (field, from, to) = match d {
        Detail::Content => ("content", None, None),
        Detail::Mode { from, to } => ("mode", Some(format!("{from:04o}")), Some(format!("{to:04o}"))),
        Detail::Owner { from, to } => {
            ("owner", Some(format!("{}:{}", from.0, from.1)), Some(format!("{}:{}", to.0, to.1)))
        }
        Detail::Target { from, to } => ("target", Some(from.clone()), Some(to.clone())),
        Detail::Replace { from } => ("replace", Some(from.clone()), None),
    };
    PlanDetail { field: field.into(), from, to }
}

/// With `-v`, the whole diff of a created file, made now from its desired object.
fn created_in_whole(d: &ContentDiff, desired: Option<&Object>, verbose: bool) -> Option<PlanDiff> {
    match d {
        ContentDiff::New { .. } if verbose => plan::diff::created_diff(desired?).map(|whole| diff(&whole)),
        _ => None,
    }
}

fn diff(d: &ContentDiff) -> PlanDiff {
    let (kind, text) = match d {
        ContentDiff::Unified(text) => ("unified", text.clone()),
        ContentDiff::New { lines } => ("new", format!("new content: {lines} lines (-v includes it)")),
        ContentDiff::Sensitive => ("sensitive", "(sensitive content changed)".to_string()),
        ContentDiff::Binary { from, to } => ("binary", format!("(binary content changed: {from} → {to} bytes)")),
        ContentDiff::Remote(source) => ("remote", format!("(fetched at apply time from {source})")),
    };
    PlanDiff { kind: kind.into(), text }
}

/// Colours for a terminal, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    color: bool,
}

impl Style {
    /// Colour on a terminal unless `NO_COLOR` is set, read from the environment.
    pub fn detect(is_terminal: bool) -> Self {
        Self::decide(is_terminal, std::env::var_os("NO_COLOR").as_deref())
    }

    /// Colour on a terminal unless `no_color` (the value of `NO_COLOR`) is set and non-empty:
    /// per no-color.org, an empty `NO_COLOR` does not turn colour off.
    pub fn decide(is_terminal: bool, no_color: Option<&OsStr>) -> Self {
        Style { color: is_terminal && no_color.is_none_or(|v| v.is_empty()) }
    }

    /// No colour.
    pub fn plain() -> Self {
        Style { color: false }
    }

    /// Whether colour is on.
    pub fn is_colour(self) -> bool {
        self.color
    }

    /// `text` in ANSI colour `code`, when colour is on.
    pub fn paint(self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
}

/// The mark and colour of an action.
pub fn action_mark(action: &str) -> (&'static str, &'static str) {
    match action {
        "create" => ("+", "32"),
        "update" => ("~", "33"),
        "delete" => ("-", "31"),
        "blocked" => ("!", "1;31"),
        _ => ("=", "2"),
    }
}

/// Writes the plan for a person: one line per object, details and diffs indented below. Every
/// name, path, origin and content line is shown [`printable`], so none can forge a line.
pub fn render_human(out: &mut impl Write, r: &PlanReport, verbose: bool, style: Style) -> io::Result<()> {
    let (host, source, root) = (printable(&r.host), printable(&r.source), printable(&r.root));
    writeln!(out, "Plan for host {host} from {source} (root {root})")?;
    writeln!(out)?;
    for o in r.objects.iter().filter(|o| verbose || o.action != "no-op") {
        let (mark, color) = action_mark(&o.action);
        let mut what = o.kind.clone();
        if let (Some(role), Some(unit)) = (&o.role, &o.unit) {
            let unit = printable(unit);
            what = match role.as_str() {
                "quadlet" => format!("quadlet → {unit}"),
                "enable" => format!("enables {unit}"),
                other => format!("{other} of {unit}"),
            };
        }
        let drift = o.drift.as_deref().map(|d| format!(" [{d}]")).unwrap_or_default();
        writeln!(
            out,
            "  {} {:<8} {} ({what}){drift}",
            style.paint(color, mark),
            style.paint(color, &o.action),
            printable(&o.path)
        )?;
        writeln!(out, "      from {}", origin_text(&o.origin))?;
        for d in &o.changes {
            match (&d.from, &d.to) {
                (Some(from), Some(to)) => writeln!(out, "      {}: {} → {}", d.field, printable(from), printable(to))?,
                (Some(from), None) => writeln!(out, "      replaces {}", printable(from))?,
                _ => writeln!(out, "      {} changed", d.field)?,
            }
        }
        if let Some(reason) = &o.reason {
            writeln!(out, "      {}", style.paint("31", &printable(reason)))?;
        }
        match &o.diff {
            Some(d) if d.kind == "new" => writeln!(out, "      {}", d.text.replace("-v includes it", "-v shows it"))?,
            Some(d) => write_diff(out, d, verbose, style)?,
            None => {}
        }
    }
    for u in r.units.iter().filter(|u| verbose || intent_changes(r, &u.name)) {
        writeln!(out, "  {} {:<8} {} (unit)", style.paint("36", "*"), u.intent, printable(&u.name))?;
        writeln!(out, "      from {}", origin_text(&u.origin))?;
    }
    write_systemd(out, &r.systemd, "  ", style)?;
    for k in &r.skipped {
        let (what, reason) = (printable(&k.what), printable(&k.reason));
        writeln!(out, "  {} {:<8} {what} — {reason}", style.paint("2", "·"), "skipped")?;
        writeln!(out, "      from {}", origin_text(&k.origin))?;
    }
    for o in &r.overrides {
        let entry = printable(&o.entry);
        writeln!(out, "  note: {entry} from {} is replaced by {}", origin_text(&o.replaced), origin_text(&o.by))?;
    }
    let s = &r.summary;
    writeln!(out)?;
    writeln!(
        out,
        "Plan: {} to create, {} to update, {} to delete, {} blocked, {} unchanged, {} skipped.",
        s.create, s.update, s.delete, s.blocked, s.no_op, s.skipped
    )?;
    if !r.changes_pending {
        writeln!(out, "No changes. The host matches the desired state.")?;
    }
    Ok(())
}

/// Whether applying changes how unit `name` is enabled or masked: one of its enablement links
/// or its mask is created or removed.
fn intent_changes(r: &PlanReport, name: &str) -> bool {
    r.objects.iter().any(|o| {
        o.unit.as_deref() == Some(name) && matches!(o.role.as_deref(), Some("enable" | "mask")) && o.action != "no-op"
    })
}

/// Writes the systemd side of a plan, each line after `indent`: the reload and the actions
/// (`↻`), or, offline, each of them as `skipped (offline)` followed by the reason; then the
/// held units and what the checks found (errors, warnings, notes).
pub fn write_systemd(out: &mut impl Write, s: &PlanSystemd, indent: &str, style: Style) -> io::Result<()> {
    let reload = s.daemon_reload.then_some("daemon-reload".to_string());
    let actions = s.actions.iter().map(|a| format!("{:<8} {} — {}", a.verb, printable(&a.unit), printable(&a.cause)));
    match &s.offline {
        Some(reason) => {
            let mut any = false;
            for what in reload.into_iter().chain(actions) {
                writeln!(out, "{indent}{} skipped (offline)  {what}", style.paint("2", "·"))?;
                any = true;
            }
            if any {
                let reason = printable(reason);
                writeln!(out, "{indent}    offline: {reason}, so systemd is not asked to do these")?;
            }
        }
        None => {
            if reload.is_some() {
                writeln!(out, "{indent}{} systemd reloads its units", style.paint("36", "*"))?;
            }
            for what in actions {
                writeln!(out, "{indent}{} {what}", style.paint("36", "↻"))?;
            }
        }
    }
    for a in &s.held {
        let (unit, cause) = (printable(&a.unit), printable(&a.cause));
        writeln!(out, "{indent}{} {:<8} {unit} — {cause}", style.paint("2", "·"), "held")?;
    }
    for e in s.quadlet_errors.iter().chain(&s.unit_errors) {
        writeln!(out, "{indent}{} {}", style.paint("31", "error:"), printable(e))?;
    }
    for w in &s.check_warnings {
        writeln!(out, "{indent}{} {}", style.paint("33", "warning:"), printable(w))?;
    }
    for n in &s.check_notes {
        writeln!(out, "{indent}note: {}", printable(n))?;
    }
    Ok(())
}

/// Where an entry was declared, as a person reads it: `FILE at $.PATH`, [`printable`].
pub fn origin_text(o: &PlanOrigin) -> String {
    match &o.path {
        Some(p) => format!("{} at {}", printable(&o.file), printable(p)),
        None => printable(&o.file).into_owned(),
    }
}

fn write_diff(out: &mut impl Write, d: &PlanDiff, verbose: bool, style: Style) -> io::Result<()> {
    if d.kind != "unified" {
        return writeln!(out, "      {}", printable(&d.text));
    }
    let lines: Vec<&str> = d.text.lines().collect();
    let shown = if verbose { lines.len() } else { lines.len().min(DIFF_PREVIEW_LINES) };
    for line in &lines[..shown] {
        let line = printable_content(line);
        let colored = match line.chars().next() {
            Some('+') if !line.starts_with("+++") => style.paint("32", &line),
            Some('-') if !line.starts_with("---") => style.paint("31", &line),
            Some('@') => style.paint("36", &line),
            _ => line.into_owned(),
        };
        writeln!(out, "      {colored}")?;
    }
    if shown < lines.len() {
        writeln!(out, "      … {} more lines (-v shows the whole diff)", lines.len() - shown)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::report::{PlanOverride, PlanSkipped, PlanUnit, PlanUnitAction};
    use crate::model::desired::Kind;
    use crate::model::plan::Action;

    /// A plan with one file update whose content and mode change.
    fn one_update_report() -> PlanReport {
        PlanReport {
            schema_version: 1,
            host: "example".into(),
            source: "repo".into(),
            root: "/r".into(),
            objects: vec![object(
                &Change {
                    path: "/etc/a".into(),
                    kind: Kind::File,
                    action: Action::Update,
                    drift: Some(plan::Drift::ExternalDrift),
                    details: vec![Detail::Content, Detail::Mode { from: 0o600, to: 0o644 }],
                    diff: Some(ContentDiff::Unified("--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n".into())),
                    reason: None,
                    role: Role::Plain,
                    origin: Origin { file: "services/a/config/a".into(), path: None },
                },
                None,
                false,
            )],
            units: Vec::new(),
            systemd: PlanSystemd::default(),
            skipped: Vec::new(),
            overrides: Vec::new(),
            summary: plan::Summary { update: 1, ..plan::Summary::default() },
            changes_pending: true,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn human_output_reads_at_a_glance() {
        let r = one_update_report();
        let mut out = Vec::new();
        render_human(&mut out, &r, false, Style::plain()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let want = "Plan for host example from repo (root /r)\n\n  ~ update   /etc/a (file) [external-drift]\n      from services/a/config/a\n      content changed\n      mode: 0600 → 0644\n      --- a\n      +++ b\n      @@ -1 +1 @@\n      -x\n      +y\n\nPlan: 0 to create, 1 to update, 0 to delete, 0 blocked, 0 unchanged, 0 skipped.\n";
        assert_eq!(text, want);
    }

    #[test]
    fn no_name_can_forge_a_line_or_reach_the_terminal_raw() {
        let evil = "x\n  - delete   FAKE (file)\n\x1b[2K";
        let origin = || PlanOrigin { file: format!("services/{evil}"), path: Some(format!("$.{evil}")) };
        let action = || PlanUnitAction { verb: "restart".into(), unit: evil.into(), cause: format!("{evil} changed") };
        let mut r = one_update_report();
        (r.host, r.source, r.root) = (evil.into(), evil.into(), evil.into());
        let o = &mut r.objects[0];
        (o.path, o.origin, o.reason, o.unit, o.role) =
            (format!("/etc/{evil}"), origin(), Some(evil.into()), Some(evil.into()), Some("unit".into()));
        o.changes.push(PlanDetail { field: "target".into(), from: Some(evil.into()), to: Some(evil.into()) });
        o.diff = Some(PlanDiff {
            kind: "unified".into(),
            text: "--- a\n+++ b\n@@ -1 +1 @@\n-old\x1b[2K\n+\tok\rFAKE\n".into(),
        });
        r.units.push(PlanUnit { name: evil.into(), intent: "enable".into(), origin: origin() });
        (r.systemd.actions, r.systemd.held, r.systemd.quadlet_errors) =
            (vec![action()], vec![action()], vec![evil.into()]);
        r.skipped.push(PlanSkipped { what: evil.into(), reason: evil.into(), origin: origin() });
        r.overrides.push(PlanOverride { entry: evil.into(), replaced: origin(), by: origin() });
        let mut out = Vec::new();
        render_human(&mut out, &r, true, Style::plain()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let raw: Vec<char> = text.chars().filter(|c| c.is_control() && !matches!(c, '\n' | '\t')).collect();
        assert!(raw.is_empty(), "raw control characters {raw:?} in:\n{}", text.escape_debug());
        assert!(text.contains("+\tok\\rFAKE"), "a tab in content stays, a CR does not:\n{text}");
        assert!(!text.lines().any(|l| l.trim_start().starts_with("- delete")), "a forged line:\n{text}");
        assert_eq!(text.matches("x\\n  - delete   FAKE (file)\\n\\x1b[2K").count(), 27, "every name shown:\n{text}");
    }

    #[test]
    fn colour_only_on_terminals_without_no_color() {
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        assert!(Style::decide(true, None).color, "a terminal without NO_COLOR gets colour");
        assert!(Style::decide(true, empty).color, "an empty NO_COLOR does not turn colour off");
        assert!(!Style::decide(true, set).color, "a non-empty NO_COLOR turns colour off");
        for no_color in [None, empty, set] {
            assert!(!Style::decide(false, no_color).color, "no colour off a terminal (NO_COLOR {no_color:?})");
        }
    }

    fn text_of(r: &PlanReport, verbose: bool) -> String {
        let mut out = Vec::new();
        render_human(&mut out, r, verbose, Style::plain()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn unit_intents_show_only_when_they_change_or_with_verbose() {
        let mut r = one_update_report();
        let origin = PlanOrigin { file: "a.bu".into(), path: None };
        r.units.push(PlanUnit { name: "a.service".into(), intent: "enable".into(), origin: origin.clone() });
        let intent = "  * enable   a.service (unit)\n";
        assert!(!text_of(&r, false).contains(intent), "its links are all in place:\n{}", text_of(&r, false));
        assert!(text_of(&r, true).contains(intent));
        r.objects.push(PlanObject {
            path: "/etc/systemd/system/multi-user.target.wants/a.service".into(),
            kind: "symlink".into(),
            action: "create".into(),
            drift: None,
            changes: Vec::new(),
            diff: None,
            reason: None,
            role: Some("enable".into()),
            unit: Some("a.service".into()),
            desired: None,
            origin,
        });
        assert!(text_of(&r, false).contains(intent), "a link to create changes it");
    }

    #[test]
    fn offline_systemd_lines_are_skipped_with_the_reason() {
        let mut r = one_update_report();
        let restart =
            PlanUnitAction { verb: "restart".into(), unit: "a.service".into(), cause: "x changed; y changed".into() };
        r.systemd = PlanSystemd { daemon_reload: true, actions: vec![restart], ..PlanSystemd::default() };
        let online = text_of(&r, false);
        assert!(
            online.contains("  * systemd reloads its units\n  ↻ restart  a.service — x changed; y changed\n"),
            "{online}"
        );
        r.systemd.offline = Some("--root /r is not /".into());
        let offline = text_of(&r, false);
        let want = "  · skipped (offline)  daemon-reload\n  · skipped (offline)  restart  a.service — x changed; y changed\n      offline: --root /r is not /, so systemd is not asked to do these\n";
        assert!(offline.contains(want), "{offline}");
        assert!(!offline.contains('↻') && !offline.contains("reloads its units"), "{offline}");
        r.systemd = PlanSystemd { offline: Some("--offline was given".into()), ..PlanSystemd::default() };
        assert!(!text_of(&r, false).contains("offline"), "no reason without anything skipped");
    }

    #[test]
    fn a_created_file_is_a_line_count_and_its_whole_diff_only_with_verbose() {
        let desired = Object {
            path: "/etc/new".into(),
            kind: Kind::File,
            content: Some(vec![crate::model::desired::Piece::bytes(b"x\n++y\n".to_vec())]),
            target: None,
            mode: Some(0o644),
            user: Owner::Unset,
            group: Owner::Unset,
            overwrite: false,
            role: Role::Plain,
            origin: Origin { file: "a.bu".into(), path: None },
            cache: Default::default(),
        };
        let change = Change {
            path: "/etc/new".into(),
            kind: Kind::File,
            action: Action::Create,
            drift: None,
            details: Vec::new(),
            diff: Some(ContentDiff::New { lines: 2 }),
            reason: None,
            role: Role::Plain,
            origin: Origin { file: "a.bu".into(), path: None },
        };
        let short = object(&change, Some(&desired), false).diff.unwrap();
        assert_eq!((short.kind.as_str(), short.text.as_str()), ("new", "new content: 2 lines (-v includes it)"));
        let whole = object(&change, Some(&desired), true).diff.unwrap();
        let want = "--- /etc/new (host)\n+++ /etc/new (desired)\n@@ -0,0 +1,2 @@\n+x\n+++y\n";
        assert_eq!((whole.kind.as_str(), whole.text.as_str()), ("unified", want));
    }

    #[test]
    fn painting_adds_escape_codes_only_when_colour_is_on() {
        let on = Style::decide(true, None);
        assert_eq!(on.paint("32", "x"), "\x1b[32mx\x1b[0m");
        assert_eq!(Style::plain().paint("32", "x"), "x");
        let mut out = Vec::new();
        render_human(&mut out, &one_update_report(), false, on).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\x1b[33m~\x1b[0m \x1b[33mupdate\x1b[0m"), "{text:?}");
        assert!(text.contains("\x1b[32m+y\x1b[0m"), "{text:?}");
    }
}
