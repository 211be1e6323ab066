//! Running out of file descriptors: accept fails (EMFILE) for as long as connections wait
//! in the backlog; refproxy logs that at most once a second, with a count of the rest.

use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, setrlimit};

use crate::support::{Proxy, Scratch, Spawn, origin, scaled, suppressed};

/// A small fd limit for the child only (run between fork and exec).
fn few_fds() -> std::io::Result<()> {
    setrlimit(Resource::RLIMIT_NOFILE, 64, 64).map_err(std::io::Error::from)
}

#[tokio::test]
async fn accept_errors_out_of_fds_are_logged_once_a_second_with_a_count() {
    let s = Scratch::new();
    let origin = origin(10, None).await;
    let cfg = s.path("p.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = [\"127.0.0.1:0\"]\norigins = [\"{}\"]\n",
            origin.addr()
        ),
    )
    .unwrap();
    let mut p = Proxy::spawn_with(
        ["--config".as_ref(), cfg.as_os_str()],
        s.path("p.log"),
        Spawn {
            env: &[("REFPROXY_THREADS", "1")],
            pre_exec: Some(few_fds),
            stderr_lines: true,
            ..Spawn::default()
        },
    )
    .unwrap();
    let (_, addr) = p.ready().await.unwrap();
    let err = p.log_lines();

    // More idle connections than the child has fds: the rest wait in the backlog.
    let mut clients = Vec::new();
    for _ in 0..120 {
        clients.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let first = tokio::time::timeout(scaled(20), async {
        while let Some(l) = err.recv().await {
            if l.contains("accept failed") {
                return l;
            }
        }
        panic!("stderr closed before an accept error");
    })
    .await
    .expect("an accept error logged");
    assert!(first.contains("WARN"), "{first}");

    // Three seconds of continuous EMFILE: at most one line per second.
    let window = Duration::from_secs(3);
    let until = Instant::now() + window;
    let mut logged = Vec::new();
    while let Ok(Some(l)) =
        tokio::time::timeout(until.saturating_duration_since(Instant::now()), err.recv()).await
    {
        if l.contains("accept failed") {
            logged.push(l);
        }
    }
    assert!(
        logged.len() <= 3,
        "{} accept error lines within {window:?}:\n{}",
        logged.len(),
        logged.join("\n")
    );
    assert!(
        logged.iter().any(|l| suppressed(l).is_some_and(|n| n > 0)),
        "no count of the errors not logged:\n{}",
        logged.join("\n")
    );

    // fds free again: accepting resumes, and the count still unreported is logged by
    // the first accept once a line is due again (new clients keep coming meanwhile).
    drop(clients);
    let resumed = tokio::time::timeout(scaled(20), async {
        let mut next_client = tokio::time::interval(Duration::from_millis(100));
        let mut later = Vec::new();
        loop {
            tokio::select! {
                l = err.recv() => match l {
                    Some(l) if l.contains("accepting again") => return l,
                    Some(_) => {}
                    None => panic!("stderr closed before accepting resumed"),
                },
                _ = next_client.tick() => {
                    later.push(tokio::net::TcpStream::connect(addr).await.unwrap());
                }
            }
        }
    })
    .await
    .expect("accepting again logged");
    assert!(suppressed(&resumed).is_some(), "{resumed}");
    // Dropping `p` kills its process group.
}
