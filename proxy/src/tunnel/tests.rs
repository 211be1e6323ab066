//! Unit tests of the tunnel relay on loopback socket pairs: the close frame at a frame
//! boundary, and the idle bound.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::Tunnels;
use super::frames::CLOSE_GOING_AWAY;
use super::relay::{self, Context, End};
use crate::config::TunnelPolicy;
use crate::serve::Stage;
use reloadbench_http1::UpgradeKind;

/// A connected pair on loopback: (the proxy's side, the peer's side).
async fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (proxy_side, _) = l.accept().await.unwrap();
    (proxy_side, peer)
}

fn ctx(
    tunnels: &Tunnels,
    stage: watch::Receiver<Stage>,
    policy: TunnelPolicy,
    idle: Duration,
) -> Context<'_> {
    Context {
        tunnels,
        stage,
        policy,
        idle,
        linger: Duration::from_secs(2),
    }
}

#[tokio::test]
async fn the_close_frame_waits_for_the_end_of_the_origins_frame() {
    let (mut to_client, mut client) = pair().await;
    let (to_origin, mut origin) = pair().await;
    let tunnels = Tunnels::new(16);
    let (stage, stage_rx) = watch::channel(Stage::Serving);
    let c = ctx(
        &tunnels,
        stage_rx,
        TunnelPolicy::Close,
        Duration::from_secs(10),
    );
    let run = relay::run(
        &mut to_client,
        b"",
        to_origin,
        b"",
        UpgradeKind::WebSocket,
        c,
    );
    let peers = async {
        // A binary frame of 10 payload bytes, then a second one of 2.
        let mut wire = vec![0x82, 10];
        wire.extend_from_slice(b"0123456789");
        wire.extend_from_slice(&[0x82, 2, b'a', b'b']);
        origin.write_all(&wire[..5]).await.unwrap();
        let mut got = [0u8; 5];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, wire[..5]);
        // The drain starts in the middle of the origin's frame.
        stage.send_replace(Stage::Draining(Instant::now()));
        origin.write_all(&wire[5..]).await.unwrap();
        // The client gets the rest of that frame, then the close frame, then EOF: the
        // frame after the boundary is not relayed.
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        let mut expected = wire[5..12].to_vec();
        expected.extend_from_slice(&CLOSE_GOING_AWAY);
        assert_eq!(rest, expected);
        // The origin connection is closed without a close frame.
        let mut from_proxy = Vec::new();
        let _ = origin.read_to_end(&mut from_proxy).await;
        assert!(from_proxy.is_empty(), "{from_proxy:?}");
        drop(client);
    };
    let (end, ()) = tokio::join!(run, peers);
    assert_eq!(end, End::GoingAway);
    let r = tunnels.report();
    assert_eq!((r.opened, r.open, r.going_away, r.cut), (1, 0, 1, 0));
}

#[tokio::test]
async fn keep_relays_through_the_drain_and_other_protocols_are_never_closed_politely() {
    for (policy, kind) in [
        (TunnelPolicy::Keep, UpgradeKind::WebSocket),
        (TunnelPolicy::Close, UpgradeKind::Other),
    ] {
        let (mut to_client, mut client) = pair().await;
        let (to_origin, mut origin) = pair().await;
        let tunnels = Tunnels::new(16);
        let (stage, stage_rx) = watch::channel(Stage::Serving);
        let c = ctx(&tunnels, stage_rx, policy, Duration::from_secs(10));
        let run = relay::run(&mut to_client, b"early", to_origin, b"", kind, c);
        let peers = async {
            let mut got = [0u8; 5];
            origin.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"early");
            stage.send_replace(Stage::Draining(Instant::now()));
            origin.write_all(&[0x81, 2, b'h', b'i']).await.unwrap();
            client.write_all(b"up").await.unwrap();
            let mut down = [0u8; 4];
            client.read_exact(&mut down).await.unwrap();
            assert_eq!(down, [0x81, 2, b'h', b'i']);
            let mut up = [0u8; 2];
            origin.read_exact(&mut up).await.unwrap();
            assert_eq!(&up, b"up");
            // Both ends close: the tunnel ends on its own.
            drop(origin);
            let mut rest = Vec::new();
            client.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty(), "{policy:?} {kind:?}: {rest:?}");
            drop(client);
        };
        let (end, ()) = tokio::join!(run, peers);
        assert_eq!(end, End::Closed, "{policy:?} {kind:?}");
        assert_eq!(tunnels.report().going_away, 0);
    }
}

#[tokio::test]
async fn a_tunnel_idle_for_the_body_timeout_is_closed() {
    let (mut to_client, mut client) = pair().await;
    let (to_origin, mut origin) = pair().await;
    let tunnels = Tunnels::new(16);
    let (_stage, stage_rx) = watch::channel(Stage::Serving);
    let idle = Duration::from_millis(300);
    let c = ctx(&tunnels, stage_rx, TunnelPolicy::Keep, idle);
    let started = Instant::now();
    let run = relay::run(
        &mut to_client,
        b"",
        to_origin,
        b"",
        UpgradeKind::WebSocket,
        c,
    );
    let peers = async {
        // Traffic at half the idle bound keeps it open past the bound...
        for _ in 0..3 {
            client.write_all(b"x").await.unwrap();
            let mut b = [0u8; 1];
            origin.read_exact(&mut b).await.unwrap();
            tokio::time::sleep(idle / 2).await;
        }
    };
    let (end, ()) =
        tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(run, peers) })
            .await
            .expect("the idle bound closes the tunnel");
    assert_eq!(end, End::Idle);
    assert!(
        // The last byte moved after two pauses of idle / 2 (activity is kept in whole ms).
        started.elapsed() + Duration::from_millis(2) >= idle * 2,
        "{:?}",
        started.elapsed()
    );
    // ...and silence closes it: both peers see the end (the client's socket is dropped by
    // its connection task once the tunnel returns).
    drop(to_client);
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest).await;
    let _ = origin.read_to_end(&mut rest).await;
    assert!(rest.is_empty());
}

#[tokio::test]
async fn a_close_asked_while_draining_holds_for_later_tunnels_one_while_serving_does_not() {
    for draining in [false, true] {
        let (mut to_client, mut client) = pair().await;
        let (to_origin, mut origin) = pair().await;
        let tunnels = Tunnels::new(16);
        // Asked before this tunnel started.
        tunnels.close_all(draining);
        let (_stage, stage_rx) = watch::channel(Stage::Serving);
        let c = ctx(
            &tunnels,
            stage_rx,
            TunnelPolicy::Keep,
            Duration::from_secs(10),
        );
        let run = relay::run(
            &mut to_client,
            b"",
            to_origin,
            b"",
            UpgradeKind::WebSocket,
            c,
        );
        let peers = async {
            origin.write_all(&[0x81, 2, b'h', b'i']).await.unwrap();
            let mut got = Vec::new();
            if draining {
                // Closed at once: the origin's frame is not relayed.
                client.read_to_end(&mut got).await.unwrap();
                assert_eq!(got, CLOSE_GOING_AWAY);
            } else {
                got.resize(4, 0);
                client.read_exact(&mut got).await.unwrap();
                assert_eq!(got, [0x81, 2, b'h', b'i']);
                drop(origin);
                let mut rest = Vec::new();
                client.read_to_end(&mut rest).await.unwrap();
                assert!(rest.is_empty(), "{rest:?}");
            }
            drop(client);
        };
        let (end, ()) = tokio::join!(run, peers);
        let expected = if draining {
            End::GoingAway
        } else {
            End::Closed
        };
        assert_eq!(end, expected, "draining {draining}");
    }
}

#[tokio::test]
async fn bytes_that_came_with_the_101_are_relayed_first_and_followed_as_frames() {
    let (mut to_client, mut client) = pair().await;
    let (to_origin, mut origin) = pair().await;
    let tunnels = Tunnels::new(16);
    let (stage, stage_rx) = watch::channel(Stage::Serving);
    let c = ctx(
        &tunnels,
        stage_rx,
        TunnelPolicy::Close,
        Duration::from_secs(10),
    );
    // The header and 3 bytes of a 10-byte frame came with the 101.
    let greeting = [0x82, 10, b'0', b'1', b'2'];
    let run = relay::run(
        &mut to_client,
        b"",
        to_origin,
        &greeting,
        UpgradeKind::WebSocket,
        c,
    );
    let peers = async {
        let mut got = [0u8; 5];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, greeting);
        stage.send_replace(Stage::Draining(Instant::now()));
        origin.write_all(b"3456789").await.unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        let mut expected = b"3456789".to_vec();
        expected.extend_from_slice(&CLOSE_GOING_AWAY);
        assert_eq!(rest, expected);
        drop(client);
    };
    let (end, ()) = tokio::join!(run, peers);
    assert_eq!(end, End::GoingAway);
}
