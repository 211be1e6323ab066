//! The `reloadbench origin` command: arguments, runtime, ready line, signals.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use reloadbench_model::event::{Event, EventKind};
use tokio::signal::unix::{SignalKind, signal};

use crate::server::{BACKLOG, DEFAULT_BODY_BYTES, LongOptions, Origin, OriginConfig};

/// Arguments of the origin server.
#[derive(Debug, Clone, clap::Args)]
pub struct OriginArgs {
    /// Address to listen on (port 0 picks a free port, printed in the ready line).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Size of the body served for every request (at most 1 GiB).
    #[arg(long, default_value_t = DEFAULT_BODY_BYTES, value_parser = body_bytes)]
    pub body_bytes: usize,
    /// Delay before each response, e.g. `5ms`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub delay: Option<Duration>,
    /// Write what the origin received and answered (JSON) to this file when it stops
    /// on SIGTERM or SIGINT (written to a temporary name first, then renamed).
    #[arg(long, value_name = "PATH")]
    pub ledger: Option<PathBuf>,
    /// `POST /upload` reads request bodies at most at this many bytes per second
    /// (a slow upload sink; default: as fast as they come).
    #[arg(long, value_name = "BYTES_PER_SEC")]
    pub upload_rate: Option<u64>,
    /// Backlog of the listening socket (its accept queue); the kernel caps it at
    /// `net.core.somaxconn`.
    #[arg(long, default_value_t = BACKLOG, value_parser = clap::value_parser!(u32).range(1..))]
    pub backlog: u32,
}

impl From<OriginArgs> for OriginConfig {
    fn from(args: OriginArgs) -> Self {
        OriginConfig {
            listen: args.listen,
            body_bytes: args.body_bytes,
            delay: args.delay,
            backlog: args.backlog,
        }
    }
}

/// `--body-bytes`: a byte count up to [`crate::MAX_BODY_BYTES`].
fn body_bytes(s: &str) -> Result<usize, String> {
    let n: u64 = s.trim().parse().map_err(|e| format!("{e}"))?;
    crate::check_body_bytes(n).map_err(|e| e.to_string())
}

/// Runs the origin until SIGTERM or SIGINT: binds, prints the ready line on stdout, serves.
pub fn run(args: OriginArgs) -> anyhow::Result<()> {
    // One descriptor per client connection: start from the hard limit, not from
    // whatever soft limit the parent left (1,024 from many shells).
    reloadbench_model::fd_limit::raise().context("cannot raise the open-file limit")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let ledger = args.ledger.clone();
    let long = LongOptions {
        upload_rate: args.upload_rate,
    };
    runtime.block_on(serve(args.into(), long, ledger.as_deref()))
}

async fn serve(cfg: OriginConfig, long: LongOptions, ledger: Option<&Path>) -> anyhow::Result<()> {
    // Handlers first: once the ready line is out, a signal must not kill us uncleanly.
    let mut term = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    let origin = Origin::bind_with(cfg, long).await?;
    let line = ready_line(&origin, std::process::id());
    {
        let mut out = std::io::stdout().lock();
        out.write_all(line.as_bytes())
            .and_then(|()| out.flush())
            .context("cannot write the ready line")?;
    }
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    let book = origin.ledger_after_shutdown().await;
    if let Some(path) = ledger {
        write_ledger(path, &book)?;
    }
    Ok(())
}

/// Writes `book` to `path` atomically: a reader sees the whole file or none.
fn write_ledger(path: &Path, book: &reloadbench_model::ledger::OriginLedger) -> anyhow::Result<()> {
    let json = serde_json::to_vec(book).context("cannot serialize the origin's ledger")?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, json).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}

/// The `ready` event of a bound origin.
pub(crate) fn ready_line(origin: &Origin, pid: u32) -> String {
    Event {
        mono_ns: reloadbench_model::clock::monotonic_ns(),
        pid,
        kind: EventKind::Ready {
            generation: 1,
            addrs: vec![origin.addr().to_string()],
        },
    }
    .to_line()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct TestCli {
        #[command(flatten)]
        args: OriginArgs,
    }

    #[test]
    fn cli_is_valid() {
        TestCli::command().debug_assert();
    }

    #[test]
    fn args_parse_with_defaults_and_delay() {
        let cli = TestCli::parse_from(["origin"]);
        assert_eq!(cli.args.body_bytes, 32_987);
        assert_eq!(cli.args.listen, "127.0.0.1:0".parse().unwrap());
        assert!(cli.args.delay.is_none());
        assert!(cli.args.ledger.is_none());
        assert_eq!(cli.args.backlog, 4096);
        let cli = TestCli::parse_from(["origin", "--delay", "5ms", "--body-bytes", "10"]);
        assert_eq!(cli.args.delay, Some(Duration::from_millis(5)));
        assert_eq!(cli.args.body_bytes, 10);
        let cli = TestCli::parse_from(["origin", "--backlog", "77"]);
        assert_eq!(OriginConfig::from(cli.args).backlog, 77);
        assert!(TestCli::try_parse_from(["origin", "--backlog", "0"]).is_err());
    }

    #[test]
    fn body_bytes_above_one_gib_are_refused() {
        let max = crate::MAX_BODY_BYTES.to_string();
        let cli = TestCli::parse_from(["origin", "--body-bytes", max.as_str()]);
        assert_eq!(cli.args.body_bytes as u64, crate::MAX_BODY_BYTES);
        let over = (crate::MAX_BODY_BYTES + 1).to_string();
        let Err(e) = TestCli::try_parse_from(["origin", "--body-bytes", over.as_str()]) else {
            panic!("accepted {over}");
        };
        assert!(e.to_string().contains("must be at most"), "{e}");
    }

    #[tokio::test]
    async fn ready_line_parses_as_event() {
        let origin = Origin::bind(OriginConfig::default()).await.unwrap();
        let line = ready_line(&origin, 42);
        let event = Event::parse_line(&line).unwrap();
        assert_eq!(event.pid, 42);
        match event.kind {
            EventKind::Ready { generation, addrs } => {
                assert_eq!(generation, 1);
                assert_eq!(addrs, vec![origin.addr().to_string()]);
            }
            other => panic!("not a ready event: {other:?}"),
        }
        origin.shutdown().await;
    }
}
