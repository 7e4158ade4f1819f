//! `tessera bench`: every kernel family at its benchmark shapes, one table (being written).

use std::process::ExitCode;

/// Options of `tessera bench`.
#[derive(clap::Args, Debug)]
pub(crate) struct BenchArgs {}

/// Runs the benchmark table.
pub(crate) fn run(_args: &BenchArgs) -> ExitCode {
    eprintln!("tessera bench: not written yet");
    ExitCode::FAILURE
}
