//! The handoff protocol between two in-process ends.

use std::time::Duration;

use reloadbench_model::event::ReloadMode;
use reloadbench_model::test_timing::scaled_secs;
use tokio::net::UnixStream;

use super::protocol::{self, HandoffError, Message, Offer};
use crate::fdpass::Channel;
use crate::listeners::Listener;

fn pair() -> (Channel, Channel) {
    let (a, b) = UnixStream::pair().unwrap();
    let t = scaled_secs(10);
    (Channel::new(a, t), Channel::new(b, t))
}

fn listeners(n: usize) -> Vec<Listener> {
    (0..n)
        .map(|_| Listener::bind("127.0.0.1:0".parse().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn sockets_travel_in_acknowledged_batches_and_the_commit_is_checked() {
    let (mut old, mut new) = pair();
    let ls = listeners(20); // two batches: 16 + 4
    let addrs: Vec<_> = ls.iter().map(|l| l.addr).collect();
    let keys = crate::tls::TicketKeys::random(std::time::Duration::from_secs(3600));
    let state = keys.export().unwrap();
    let sent = state.clone();
    let owner = tokio::spawn(async move {
        let hello: Message = old.recv().await.unwrap();
        assert!(matches!(
            hello,
            Message::Hello {
                mode: ReloadMode::FdPass,
                ..
            }
        ));
        let offer = Offer {
            generation: 7,
            listeners: &ls,
            send_sockets: true,
            expect_pid: None,
            tickets: Some(sent),
            older: Vec::new(),
        };
        let mut handed = 0;
        let accepted = protocol::give(&mut old, &offer, scaled_secs(10), |n| handed = n)
            .await
            .unwrap();
        assert!(accepted.takes_path);
        let pid = accepted.pid;
        old.send(&Message::Committed).await.unwrap();
        (pid, handed)
    });
    let taken = protocol::take(&mut new, ReloadMode::FdPass).await.unwrap();
    assert_eq!(taken.generation, 7);
    let got: Vec<_> = taken.listeners.iter().map(|l| l.addr).collect();
    assert_eq!(got, addrs);
    // The ticket keys travel in the welcome, whole.
    assert_eq!(taken.tickets, Some(state));
    protocol::commit(&mut new, 7, true, || {}).await.unwrap();
    let (pid, handed) = owner.await.unwrap();
    assert_eq!(pid, std::process::id());
    assert_eq!(handed, 20);
}

#[tokio::test]
async fn a_wrong_generation_and_a_silent_peer_fail_the_handoff() {
    let (mut old, mut new) = pair();
    let ls = listeners(1);
    let offer = Offer {
        generation: 2,
        listeners: &ls,
        send_sockets: false,
        expect_pid: None,
        tickets: None,
        older: Vec::new(),
    };
    let peer = tokio::spawn(async move {
        let taken = protocol::take(&mut new, ReloadMode::Naive).await.unwrap();
        assert_eq!(taken.tickets, None);
        new.send(&Message::Commit {
            pid: std::process::id(),
            generation: 9,
            takes_path: false,
        })
        .await
        .unwrap();
        new
    });
    let _hello: Message = old.recv().await.unwrap();
    let err = protocol::give(&mut old, &offer, scaled_secs(10), |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, HandoffError::BadCommit(_)), "{err}");
    let _new = peer.await.unwrap();

    let (mut old, mut new) = pair();
    new.send(&Message::Hello {
        pid: 1,
        mode: ReloadMode::Naive,
    })
    .await
    .unwrap();
    let _hello: Message = old.recv().await.unwrap();
    let err = protocol::give(&mut old, &offer, Duration::from_millis(100), |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ready_timeout"), "{err}");
}

#[tokio::test]
async fn a_masters_rotated_ticket_keys_are_pushed_between_heartbeats_and_installed() {
    use crate::tls::TicketKeys;
    use std::sync::Arc;
    let hour = Duration::from_secs(3600);
    let (mut master, worker) = pair();
    let keys = TicketKeys::for_master(hour);
    let (tx, rx) = tokio::sync::watch::channel(keys.export());
    // Two workers started from the master's set: the one pushed to, and one that is not.
    let pushed = Arc::new(TicketKeys::adopt(&keys.export().unwrap(), hour).unwrap());
    let stale = TicketKeys::adopt(&keys.export().unwrap(), hour).unwrap();
    let answering = tokio::spawn(protocol::answer_heartbeats(
        worker,
        std::future::pending(),
        || {},
        Some(pushed.clone()),
    ));
    let watching = tokio::spawn(async move {
        protocol::watch_and_push(
            &mut master,
            Duration::from_millis(20),
            scaled_secs(10),
            Some(rx),
        )
        .await
    });
    let now = crate::tls::tickets::unix_now();
    let before = pushed.encrypt_at(now, b"before").unwrap();
    keys.rotate_at(now + 3600);
    tx.send_replace(keys.export());
    // The master's next ticket opens on the worker once the push arrived.
    let from_master = keys.encrypt_at(now + 3600, b"master").unwrap();
    tokio::time::timeout(scaled_secs(10), async {
        while pushed.decrypt_at(now + 3600, &from_master).is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the rotated keys were pushed");
    // The ticket of before the rotation still opens (previous key); the worker that got
    // no push cannot open the new key's tickets, nor compute it.
    assert_eq!(pushed.decrypt_at(now + 3600, &before).unwrap(), b"before");
    assert!(stale.decrypt_at(now + 3600, &from_master).is_none());
    let from_worker = pushed.encrypt_at(now + 3600, b"worker").unwrap();
    assert_eq!(
        keys.decrypt_at(now + 3600, &from_worker).unwrap(),
        b"worker"
    );
    // Heartbeats went on meanwhile; the worker's end closing ends the watch.
    answering.abort();
    let _ = answering.await;
    assert_eq!(watching.await.unwrap(), protocol::Watch::Exited);
}
