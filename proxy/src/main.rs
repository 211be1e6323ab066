//! `refproxy`: the reference reverse proxy. See the crate docs and `proxy/README.md`.

use clap::Parser;

fn main() {
    let cli = reloadbench_proxy::cli::Cli::parse();
    let code = reloadbench_proxy::run(cli);
    std::process::exit(code);
}
