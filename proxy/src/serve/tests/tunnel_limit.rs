//! `limits.tunnels`: tunnels hold no origin slot (`limits.origin_connections` is for
//! requests), and an upgrade beyond the bound is answered 503 without being forwarded.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::tunnel_close::{Then, TunnelOrigin, UPGRADE, upgrade};
use super::{Client, proxy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tunnels_hold_no_origin_slot_and_are_bounded_by_limits_tunnels() {
    let o = TunnelOrigin::start(Then::Echo {
        greeting: Vec::new(),
    })
    .await;
    let (server, addr) = proxy(vec![o.addr], |c| {
        c.limits.origin_connections = 2;
        c.limits.tunnels = 3;
        c.timeouts.connect = Duration::from_millis(500);
    });
    // As many idle tunnels as there are origin slots, and one more.
    let mut tunnels = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(addr).await;
        assert!(upgrade(&mut c).await.is_empty());
        c.send(b"t").await;
        let mut b = Vec::new();
        assert!(super::fill_from(&mut c.stream, &mut b).await);
        assert_eq!(b, b"t");
        tunnels.push(c);
    }
    // Ordinary requests still get origin slots.
    for _ in 0..2 {
        let r = Client::connect(addr).await.get("/plain").await;
        assert_eq!((r.status, r.text().as_str()), (200, "plain"));
    }
    // One tunnel more than limits.tunnels: 503, never forwarded, counted.
    let mut extra = Client::connect(addr).await;
    extra.send(UPGRADE).await;
    let r = extra.response().await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.closes());
    assert_eq!(o.upgrades.load(Ordering::SeqCst), 3);
    assert_eq!(o.plain.load(Ordering::SeqCst), 2);
    let t = server.tunnels();
    assert_eq!((t.opened, t.open, t.refused), (3, 3, 1), "{t:?}");
    let counters = server.counters();
    assert_eq!(
        counters.errors.get("tunnels_full"),
        Some(&1),
        "{counters:?}"
    );
    assert_eq!(counters.errors_total(), 1, "{counters:?}");
    drop(tunnels);
}
