//! The progress line on the terminal while a case runs: case, elapsed time,
//! requests done, failures so far, actions done. At most four updates a
//! second, on stderr, only when stderr is a terminal and `-q` is not given.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use reloadbench_loadgen::LoadRun;

/// Time between two updates.
pub(crate) const INTERVAL: Duration = Duration::from_millis(250);

/// Whether progress should be shown.
pub(crate) fn enabled(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// Redraws the progress line until dropped (run it in a `select!` next to
/// the timeline; it never returns). `planned` is the request count, if the
/// load has one.
pub(crate) async fn show(
    label: &str,
    load: &LoadRun,
    planned: Option<u64>,
    actions: &AtomicU32,
) -> std::convert::Infallible {
    let mut tick = tokio::time::interval(INTERVAL);
    loop {
        tick.tick().await;
        let p = load.progress();
        let done = match planned {
            Some(n) => format!("{}/{n}", p.completed),
            None => p.completed.to_string(),
        };
        let line = format!(
            "\r\x1b[2K{label}  {:>6.1}s  {done} requests  {} failed  {}",
            p.elapsed.as_secs_f64(),
            p.failed,
            reloadbench_model::words::count(actions.load(Ordering::Relaxed).into(), "action")
        );
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
        let _ = err.flush();
    }
}

/// Clears the progress line.
pub(crate) fn clear() {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(b"\r\x1b[2K");
    let _ = err.flush();
}
