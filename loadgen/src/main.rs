//! `loadgen`: ab's command line and output, with every request counted once.
//!
//! Exit codes: 0 after a completed run (whatever failed on the server's
//! side), 2 for invalid flags or settings, 1 for loadgen's own errors.

mod cli;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory, Parser};
use cli::Cli;
use reloadbench_loadgen::{LoadConfig, LoadOutcome, LoadRun, output};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let body = match &cli.postfile {
        Some(p) => match reloadbench_loadgen::body_file::read(p) {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("loadgen: cannot read -p {}: {e}", p.display());
                return ExitCode::from(1);
            }
        },
        None => None,
    };
    let mix = match &cli.mix {
        Some(p) => match reloadbench_loadgen::mix_file::read(p) {
            Ok(kinds) => kinds,
            Err(e) => usage_error(&error_chain(&e)),
        },
        None => Vec::new(),
    };
    let config = match cli.to_config(body, mix) {
        Ok(c) => c,
        Err(msg) => usage_error(&msg),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(&cli, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// Prints a usage error the way clap does and exits with code 2.
fn usage_error(msg: &str) -> ! {
    Cli::command()
        .error(clap::error::ErrorKind::ValueValidation, msg)
        .exit()
}

async fn run(cli: &Cli, config: LoadConfig) -> anyhow::Result<()> {
    // As ab: a line every 10% of -n, but not more often than every 100 requests.
    let progress = config
        .requests
        .filter(|n| *n > 150 && !cli.quiet)
        .map(|n| ((n / 10).max(100), n));
    if !cli.quiet {
        eprintln!("Benchmarking {} (be patient)", config.url);
    }
    let connections = config.concurrency;
    let run = match reloadbench_loadgen::start(config) {
        Ok(r) => r,
        Err(e @ reloadbench_loadgen::LoadError::InvalidConfig { .. }) => {
            usage_error(&e.to_string())
        }
        Err(e) => return Err(e).context("cannot start the load"),
    };
    let limit = run.fd_limit();
    if !cli.quiet && limit.before < connections + reloadbench_loadgen::limits::FD_RESERVE {
        eprintln!(
            "loadgen: open-file limit raised from {} to {} for {connections} connections",
            limit.before, limit.soft
        );
    }
    tokio::select! {
        () = wait_with_progress(&run, progress) => {}
        _ = tokio::signal::ctrl_c() => {
            eprintln!("loadgen: interrupted, finishing in-flight requests");
            run.stop();
        }
    }
    let outcome = run
        .finish_with_histograms()
        .await
        .context("load run failed")?;
    if progress.is_some() {
        eprintln!(
            "Finished {} requests",
            outcome.report.ok + outcome.report.failed
        );
    }
    write_outputs(cli, &outcome)
}

/// Prints ab's "Completed N requests" lines (every `step` up to `n`), then
/// waits for the end.
async fn wait_with_progress(run: &LoadRun, progress: Option<(u64, u64)>) {
    if let Some((step, n)) = progress {
        let mut target = step;
        while target <= n {
            run.wait_completed(target).await;
            if run.progress().completed < target {
                break;
            }
            eprintln!("Completed {target} requests");
            target += step;
        }
    }
    run.wait_ended().await;
}

fn write_file(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn write_outputs(cli: &Cli, outcome: &LoadOutcome) -> anyhow::Result<()> {
    let report = &outcome.report;
    let text = output::text(report);
    let json = reloadbench_model::json_layout::to_vec(
        report,
        reloadbench_model::json_layout::Layout::LOAD,
    )
    .context("cannot encode the report")?;
    match cli.json.as_deref() {
        Some("-") => {
            eprint!("{text}");
            let mut out = std::io::stdout().lock();
            out.write_all(&json).context("cannot write to stdout")?;
            out.flush().context("cannot write to stdout")?;
        }
        other => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .context("cannot write to stdout")?;
            out.flush().context("cannot write to stdout")?;
            if let Some(path) = other {
                write_file(path.as_ref(), &json)?;
            }
        }
    }
    if let Some(path) = &cli.csv {
        write_file(path, output::percentiles_csv(report).as_bytes())?;
    }
    if let Some(path) = &cli.gnuplot {
        let tsv = output::gnuplot_tsv(report.started_mono_ns, &outcome.samples);
        write_file(path, tsv.as_bytes())?;
    }
    if let Some(path) = &cli.hdr {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut w = std::io::BufWriter::new(file);
        output::write_hdr_log(outcome, &mut w)
            .and_then(|()| w.flush().map_err(Into::into))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
