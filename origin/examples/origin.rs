//! The origin on its own, as `reloadbench origin` runs it, without building
//! the harness: `cargo run -p reloadbench-origin --example origin -- --listen
//! 127.0.0.1:8080` (used for measurements of loadgen against the origin).

use clap::Parser;

/// The origin's arguments.
#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: reloadbench_origin::OriginArgs,
}

fn main() -> anyhow::Result<()> {
    reloadbench_origin::run(Cli::parse().args)
}
