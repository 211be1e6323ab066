//! `reloadbench`: see `reloadbench --help` and the README.

use std::process::ExitCode;

use clap::Parser;
use reloadbench_harness::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    reloadbench_harness::main(cli)
}
