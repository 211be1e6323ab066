//! Reloads that fail before READY leave the old process serving, untouched.

use std::time::Duration;

use reloadbench_model::event::EventKind;
use reloadbench_proxy::control::protocol::Message;
use reloadbench_proxy::fdpass::Channel;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_config_and_failure_before_ready_keep_the_old_process() {
    let o = origin(100, None).await;
    let s = Scratch::new();
    let cfg = s.config("p.toml", &Conf::new(o.addr()));
    let (mut old, addr) = start_plain(&s, &cfg, "gen1.log").await.unwrap();
    let me = format!("gen=1 pid={}", old.pid);

    let bad = s.path("bad.toml");
    std::fs::write(
        &bad,
        "listen = [\"127.0.0.1:0\"]\norigins = []\nbogus = 1\n",
    )
    .unwrap();
    let mut new = spawn_upgrade(&s, &bad, "fd-pass", &[], "bad.log").unwrap();
    let st = new.wait_exit(scaled(20)).await.unwrap();
    assert_eq!(st.code(), Some(2), "{}", new.logs());
    assert!(new.logs().contains("bad.toml"), "{}", new.logs());
    let e = old
        .wait_event("reload_failed", is_reload_failed)
        .await
        .unwrap();
    assert!(
        matches!(&e.kind, EventKind::ReloadFailed { generation: 1, reason } if reason.contains("invalid config")),
        "{e:?}"
    );
    let (status, by) = get(addr).await.unwrap();
    assert_eq!((status, by.as_str()), (200, me.as_str()));

    for mode in ["fd-pass", "naive"] {
        let mut new = spawn_upgrade(&s, &cfg, mode, &["--fail-before-ready"], "fail.log").unwrap();
        let st = new.wait_exit(scaled(20)).await.unwrap();
        assert_eq!(st.code(), Some(1), "{}", new.logs());
        let e = old
            .wait_event("reload_failed", is_reload_failed)
            .await
            .unwrap();
        assert!(
            matches!(&e.kind, EventKind::ReloadFailed { reason, .. } if reason.contains("exited before READY")),
            "{e:?}"
        );
        assert!(
            !new.all_events()
                .await
                .iter()
                .any(|e| matches!(e.kind, EventKind::Ready { .. }))
        );
        let (status, by) = get(addr).await.unwrap();
        assert_eq!((status, by.as_str()), (200, me.as_str()), "{mode}");
    }

    // The old process still owns its control socket: a good reload works afterwards.
    let mut good = spawn_upgrade(&s, &cfg, "fd-pass", &[], "good.log").unwrap();
    assert_eq!(good.ready().await.unwrap(), (2, addr));
    old.wait_exit(scaled(20)).await.unwrap();
    good.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_reload_during_one_is_refused_and_a_timeout_rolls_back() {
    let o = origin(100, None).await;
    let s = Scratch::new();
    let mut conf = Conf::new(o.addr());
    // Short enough to wait for, long enough that the second process (spawned on a busy
    // machine) arrives while the first handoff is still in progress.
    conf.ready_timeout = Duration::from_secs(3);
    let cfg = s.config("p.toml", &conf);
    let (mut old, addr) = start_plain(&s, &cfg, "gen1.log").await.unwrap();

    // A hand-driven new process that says hello, takes the sockets and never commits.
    let stream = tokio::net::UnixStream::connect(s.control()).await.unwrap();
    let mut chan = Channel::new(stream, scaled(10));
    chan.send(&Message::Hello {
        pid: std::process::id(),
        mode: reloadbench_model::event::ReloadMode::Naive,
    })
    .await
    .unwrap();
    let welcome: Message = chan.recv().await.unwrap();
    assert!(
        matches!(
            welcome,
            Message::Welcome {
                generation: 2,
                sockets: 0,
                ..
            }
        ),
        "{welcome:?}"
    );

    let mut second = spawn_upgrade(&s, &cfg, "fd-pass", &[], "second.log").unwrap();
    let st = second.wait_exit(scaled(20)).await.unwrap();
    assert_eq!(st.code(), Some(1));
    assert!(
        second.logs().contains("reload in progress"),
        "{}",
        second.logs()
    );

    // ready_timeout (3s) passes without a commit: rollback.
    let e = old
        .wait_event("reload_failed", is_reload_failed)
        .await
        .unwrap();
    assert!(
        matches!(&e.kind, EventKind::ReloadFailed { reason, .. } if reason.contains("ready_timeout")),
        "{e:?}"
    );
    let (status, by) = get(addr).await.unwrap();
    assert_eq!(status, 200);
    assert!(by.contains(&format!("pid={}", old.pid)));
    drop(chan);
    old.stop().await.unwrap();
}
