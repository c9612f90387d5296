//! The `core-ops` binary: initializes logging and hands over to [`core_ops::cli`]. Log lines go
//! to standard error, coloured by the same rule as the reports: only on a terminal, and not
//! under `NO_COLOR`.

use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before any thread starts (see the module's documentation).
    core_ops::host::descriptors::prepare();
    let colour = core_ops::cli::plan::Style::detect(std::io::stderr().is_terminal()).is_colour();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CORE_OPS_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
    core_ops::cli::run_from_iter(std::env::args_os())
}
