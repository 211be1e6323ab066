//! Naive reloads: the new process binds its own SO_REUSEPORT socket next to the old one.

use reloadbench_model::event::{EventKind, ReloadMode};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naive_reload_binds_the_same_address_and_replaces_the_old_process() {
    let o = origin(100, None).await;
    let s = Scratch::new();
    let cfg = s.config("p.toml", &Conf::new(o.addr()));
    let (mut old, addr) = start_plain(&s, &cfg, "gen1.log").await.unwrap();
    let mut new = spawn_upgrade(&s, &cfg, "naive", &[], "gen2.log").unwrap();
    assert_eq!(new.ready().await.unwrap(), (2, addr));
    let done = old.wait_event("reload_done", is_reload_done).await.unwrap();
    assert!(matches!(
        done.kind,
        EventKind::ReloadDone {
            mode: ReloadMode::Naive,
            ..
        }
    ));
    assert!(
        !old.all_events()
            .await
            .iter()
            .any(|e| matches!(e.kind, EventKind::HandoffDone { .. }))
    );
    old.wait_exit(scaled(20)).await.unwrap();
    let (_, by) = get(addr).await.unwrap();
    assert!(by.contains("gen=2"), "{by}");
    new.stop().await.unwrap();
}
