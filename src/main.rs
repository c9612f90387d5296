//! The `core-ops` binary: initializes logging and hands over to [`core_ops::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CORE_OPS_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    core_ops::cli::run_from_iter(std::env::args_os())
}
