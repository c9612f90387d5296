//! `core-ops render-ignition`: Butane YAML (or Ignition JSON) in, Ignition JSON out.
//!
//! A drop-in for `butane`: the same flags, stdin to stdout, diagnostics on stderr, exit 0 (warnings
//! allowed), 1 (invalid, or warnings under `--strict`), 2 (usage). With `--source-repo` the host
//! is loaded as every command loads it ([`pipeline::load`]) and rendered whole, with the record
//! that lets the first `apply` own what Ignition wrote; `--track REPO REF` adds the first-boot
//! bootstrap that follows a repository ([`track`](crate::cli::track)).

use std::fs;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cli::input::{InputArgs, STRICT_STOP};
use crate::cli::{EXIT_FAILURE, EXIT_OK};
use crate::host::files_dir::DiskFilesDir;
use crate::host::input_file;
use crate::host::pipeline::{self, Loaded};
use crate::model::butane::{self, Failure, Stage};
use crate::model::decode::ToJson;
use crate::model::ignition::dataurl;
use crate::model::ignition::types::Config;
use crate::model::json::Json;
use crate::model::path::printable;
use crate::model::report::{Diagnostic, Report};
use crate::model::state;

/// Arguments of `render-ignition`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Butane file to read; `-` or nothing reads standard input.
    pub input: Option<PathBuf>,
    /// Directory that `local:`, `contents_local`, SSH key files and trees are relative to.
    #[arg(short = 'd', long = "files-dir", value_name = "DIR")]
    pub files_dir: Option<PathBuf>,
    /// Fail on any warning.
    #[arg(short, long)]
    pub strict: bool,
    /// Indent the output JSON.
    #[arg(short, long)]
    pub pretty: bool,
    /// Write the output here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print diagnostics as one line each (`error at $.path, line L col C: message`).
    #[arg(long)]
    pub raw_errors: bool,
    /// Render a whole host of this source repository instead of one Butane file.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["input", "files_dir"], requires = "host")]
    pub source_repo: Option<PathBuf>,
    /// The host to render (with --source-repo).
    #[arg(long, value_name = "HOST", requires = "source_repo")]
    pub host: Option<String>,
    /// Following a repository from the first boot (`--track REPO REF`).
    #[command(flatten)]
    pub track: crate::cli::track::TrackArgs,
}

/// Runs the command.
pub fn run(args: &Args) -> Result<u8> {
    if let Some(repo) = &args.source_repo {
        return render_host(args, repo);
    }
    let (name, src) = read_input(args.input.as_deref())?;
    let files = args.files_dir.as_ref().map(DiskFilesDir::new);
    let files_ref = files.as_ref().map(|f| f as &dyn butane::files::FilesDir);
    let printer = Printer { raw: args.raw_errors, name: &name, src: &src };
    match butane::render(&src, files_ref) {
        Ok(rendered) => {
            printer.report(&rendered.report);
            if args.strict && rendered.report.has_warnings() {
                eprintln!("{STRICT_STOP}");
                return Ok(EXIT_FAILURE);
            }
            // Only the config is kept while the output is made and written.
            let butane::Rendered { config, translations, .. } = rendered;
            drop(translations);
            let json = into_json(config);
            write_output(args.output.as_deref(), &json, args.pretty)?;
            Ok(EXIT_OK)
        }
        Err(failure) => {
            printer.failure(&failure);
            Ok(EXIT_FAILURE)
        }
    }
}

/// Renders a host of a source repository: its whole desired state as one first-boot config.
fn render_host(args: &Args, repo: &std::path::Path) -> Result<u8> {
    let input =
        InputArgs { source_repo: Some(repo.to_path_buf()), host: args.host.clone(), config: None, files_dir: None };
    let loaded = pipeline::load(&input.input()?, true)?;
    for w in &loaded.warnings {
        eprintln!("{}", printable(w));
    }
    if args.strict && !loaded.warnings.is_empty() {
        eprintln!("{STRICT_STOP}");
        return Ok(EXIT_FAILURE);
    }
    let spec = crate::model::ignition::spec::parse_version(&loaded.config.ignition.version)
        .context("the composed config has no supported spec version")?;
    let report = crate::model::ignition::validate::validate(&loaded.config, spec);
    for d in &report.entries {
        eprintln!("{} (in the config composed for host {})", d.raw_line(), loaded.host);
    }
    if report.has_errors() {
        return Ok(EXIT_FAILURE);
    }
    let config =
        crate::cli::track::add_bootstrap(&args.track, &loaded.host, &loaded.origins, with_initial_state(&loaded))?;
    let json = into_json(config);
    write_output(args.output.as_deref(), &json, args.pretty)?;
    Ok(EXIT_OK)
}

/// The host's config plus CoreOps's state file, so that the first `apply` on the provisioned
/// machine already owns everything Ignition wrote.
fn with_initial_state(loaded: &Loaded) -> crate::model::ignition::types::Config {
    use crate::model::ignition::types::{File, Resource};
    let revision = loaded.desired().revision();
    let initial = state::initial(&loaded.desired(), &revision, loaded.source_ref.clone(), state::FIRST_BOOT);
    let made = dataurl::make(&state::to_bytes(&initial), None, dataurl::Encoding::Shortest);
    let mut config = Config::clone(&loaded.config);
    config.storage.files.push(File {
        path: crate::host::store::STATE_FILE.into(),
        mode: Some(0o600),
        contents: Resource { source: Some(made.url), compression: made.compression, ..Resource::default() },
        ..File::default()
    });
    config
}

fn read_input(input: Option<&std::path::Path>) -> Result<(String, String)> {
    match input {
        None => read_stdin(),
        Some(p) if p.as_os_str() == "-" => read_stdin(),
        Some(p) => {
            let bytes = input_file::read_named(p).with_context(|| format!("reading {}", p.display()))?;
            let text = String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", p.display()))?;
            Ok((p.display().to_string(), text))
        }
    }
}

fn read_stdin() -> Result<(String, String)> {
    let mut text = String::new();
    io::stdin().take(input_file::MAX_FILE_BYTES + 1).read_to_string(&mut text).context("reading standard input")?;
    if text.len() as u64 > input_file::MAX_FILE_BYTES {
        anyhow::bail!("reading standard input: {}", input_file::InputError::TooLarge);
    }
    Ok(("<stdin>".to_string(), text))
}

/// The JSON of `config`, made without a second copy of the files' data URLs (the bulk of a
/// large config): each is moved into the JSON instead of being copied.
fn into_json(mut config: Config) -> Json {
    let sources: Vec<Option<String>> =
        config.storage.files.iter_mut().map(|f| f.contents.source.as_mut().map(std::mem::take)).collect();
    let mut json = config.to_json();
    drop(config);
    let files = json.get_mut("storage").and_then(|s| s.get_mut("files"));
    if let Some(Json::Array(files)) = files {
        for (file, source) in files.iter_mut().zip(sources) {
            let slot = file.get_mut("contents").and_then(|c| c.get_mut("source"));
            if let (Some(Json::Str(slot)), Some(source)) = (slot, source) {
                *slot = source;
            }
        }
    }
    json
}

/// Writes `json` and a final newline to `output` (standard output when `None`) as the text is
/// made, so that the whole text is never held in memory.
fn write_output(output: Option<&std::path::Path>, json: &Json, pretty: bool) -> Result<()> {
    fn write(out: impl Write, json: &Json, pretty: bool) -> io::Result<()> {
        let mut out = io::BufWriter::with_capacity(OUTPUT_BUFFER, out);
        if pretty { json.write_pretty(&mut out) } else { json.write_compact(&mut out) }?;
        out.write_all(b"\n")?;
        out.flush()
    }
    match output {
        Some(p) => {
            let file = fs::File::create(p).with_context(|| format!("writing {}", p.display()))?;
            write(file, json, pretty).with_context(|| format!("writing {}", p.display()))
        }
        None => write(io::stdout().lock(), json, pretty).context("writing standard output"),
    }
}

/// The output is written in pieces of this size.
const OUTPUT_BUFFER: usize = 64 * 1024;

/// Prints diagnostics as Butane does: raw lines, or located snippets.
struct Printer<'a> {
    raw: bool,
    name: &'a str,
    src: &'a str,
}

impl Printer<'_> {
    fn diagnostic(&self, d: &Diagnostic) {
        if self.raw {
            eprintln!("{}", d.raw_line());
        } else {
            eprint!("{}", d.snippet(self.name, self.src));
        }
    }

    fn report(&self, report: &Report) {
        for d in &report.entries {
            self.diagnostic(d);
        }
    }

    fn failure(&self, failure: &Failure) {
        match failure {
            Failure::Yaml(err) => {
                if self.raw {
                    eprintln!("Error translating config: Error unmarshaling yaml: {}", printable(&err.to_string()));
                } else {
                    let d = Diagnostic::new(crate::model::report::Severity::Error, None, &err.message).at(err.mark, 1);
                    eprint!("{}", d.snippet(self.name, self.src));
                }
            }
            Failure::Select(err) => eprintln!("Error translating config: {err}"),
            Failure::IgnitionVersion(v) => eprintln!(
                "Error translating config: unsupported Ignition config version {v:?}; core-ops reads 3.0.0 to 3.6.0 and 3.7.0-experimental"
            ),
            Failure::Types(report) if self.raw => {
                eprintln!("Error translating config: yaml: unmarshal errors:");
                for d in &report.entries {
                    eprintln!("  line {}: {}", d.mark.map_or(0, |m| m.line), printable(&d.message));
                }
            }
            Failure::Types(report) => self.report(report),
            Failure::Invalid { report, stage } => {
                self.report(report);
                let what = match stage {
                    Stage::Source => "source config is invalid",
                    Stage::Generated => "config generated was invalid",
                    Stage::Input => "the Ignition config is invalid",
                };
                eprintln!("Error translating config: {what}");
            }
        }
    }
}
