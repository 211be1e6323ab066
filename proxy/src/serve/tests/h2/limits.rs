//! HTTP/2 limits and protocol errors: concurrent streams, header list size, rapid reset,
//! bad frames, connection-specific fields; other connections served meanwhile.

use super::*;

/// RST_STREAM and GOAWAY codes (RFC 9113 7).
const PROTOCOL_ERROR: u32 = 0x1;
const REFUSED_STREAM: u32 = 0x7;
const CANCEL: u32 = 0x8;
/// The CONTINUATION frame type.
const CONTINUATION: u8 = 0x9;
const ENHANCE_YOUR_CALM: u32 = 0xb;
/// SETTINGS_MAX_CONCURRENT_STREAMS.
const MAX_CONCURRENT_STREAMS: u16 = 0x3;

#[tokio::test]
async fn a_stream_beyond_max_concurrent_streams_is_refused() {
    let mut origin = gated_origin().await;
    let (server, addr) = h2_proxy(vec![origin.addr], |c| c.http2.max_concurrent_streams = 2);
    let mut raw = Raw::connect(addr).await;
    raw.get(1, "/slow").await;
    raw.get(3, "/slow").await;
    origin.arrival("/slow").await;
    origin.arrival("/slow").await;
    raw.get(5, "/slow").await;
    let seen = raw.until(|f| f.kind == RST_STREAM).await;
    let reset = seen.last().unwrap();
    assert_eq!((reset.stream, reset.reset_code()), (5, REFUSED_STREAM));
    assert!(
        raw.settings.contains(&(MAX_CONCURRENT_STREAMS, 2)),
        "{:?}",
        raw.settings
    );
    origin.gate.send_replace(true);
    raw.until(|f| ends(f, 1) || ends(f, 3)).await;
    raw.until(|f| ends(f, 1) || ends(f, 3)).await;
    // The refused stream never reached the origin.
    assert_eq!(origin.served(), 2);
    assert_eq!(server.counters().completed, 2);
}

#[tokio::test]
async fn a_header_list_over_the_limit_gets_431_and_the_connection_goes_on() {
    let origin = origin(5).await;
    let (server, addr) = h2_proxy(vec![origin.addr()], |c| c.http2.max_header_list_size = 4096);
    let send = h2c(addr).await;
    let big = "x".repeat(8000);
    let req = ::http::Request::get("http://localhost/")
        .header("x-big", big.as_str())
        .body(())
        .unwrap();
    let refused = h2_send(&send, req, &[]).await;
    let status = refused.as_ref().map(|r| r.status).map_err(|e| e.reason());
    assert_eq!(status, Ok(431), "h2 answers 431 (then resets the stream)");
    let ok = h2_get(&send, "/").await.unwrap();
    assert_eq!((ok.status, ok.body.len()), (200, 5));
    assert_eq!(origin.requests(), 1);
    assert_eq!(server.counters().completed, 1);
}

#[tokio::test]
async fn a_connection_specific_field_resets_the_stream_with_protocol_error() {
    let origin = origin(5).await;
    let (_server, addr) = h2_proxy(vec![origin.addr()], |_| {});
    let mut raw = Raw::connect(addr).await;
    let fields = [
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "localhost"),
        (":path", "/"),
        ("connection", "keep-alive"),
    ];
    raw.write(&Raw::headers_bytes(1, &fields, true)).await;
    let seen = raw.until(|f| f.kind == RST_STREAM).await;
    let reset = seen.last().unwrap();
    assert_eq!((reset.stream, reset.reset_code()), (1, PROTOCOL_ERROR));
    // The connection goes on.
    raw.get(3, "/").await;
    let answer = raw.until(|f| ends(f, 3)).await;
    assert!(answer.iter().any(|f| f.kind == HEADERS && f.stream == 3));
    assert_eq!(origin.requests(), 1);
}

#[tokio::test]
async fn a_frame_breaking_the_protocol_gets_goaway_protocol_error_alone() {
    let origin = origin(5).await;
    let (_server, addr) = h2_proxy(vec![origin.addr()], |_| {});
    let other = h2c(addr).await;
    let mut raw = Raw::connect(addr).await;
    // A client may not open an even-numbered stream.
    raw.get(2, "/").await;
    let seen = raw.until(|f| f.kind == GOAWAY).await;
    assert_eq!(seen.last().unwrap().goaway().1, PROTOCOL_ERROR);
    raw.until_closed().await;
    let ok = h2_get(&other, "/").await.unwrap();
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn rapid_reset_closes_the_connection_with_enhance_your_calm_and_others_are_served() {
    let origin = origin(5).await;
    let (server, addr) = h2_proxy(vec![origin.addr()], |c| {
        c.http2.max_pending_reset_streams = 20
    });
    let other = h2c(addr).await;
    let mut raw = Raw::connect(addr).await;
    // 100 streams opened and reset at once, in one write.
    let mut burst = Vec::new();
    let fields = [
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "localhost"),
        (":path", "/"),
    ];
    for i in 0..100u32 {
        let id = 1 + 2 * i;
        burst.extend(Raw::headers_bytes(id, &fields, true));
        burst.extend(Raw::frame_bytes(RST_STREAM, 0, id, &CANCEL.to_be_bytes()));
    }
    raw.write(&burst).await;
    let seen = raw.until(|f| f.kind == GOAWAY).await;
    assert_eq!(
        seen.last().unwrap().goaway().1,
        ENHANCE_YOUR_CALM,
        "{seen:?}"
    );
    raw.until_closed().await;
    // Far fewer than the 100 streams reached the origin.
    let reached = origin.requests();
    assert!(reached < 50, "{reached} requests reached the origin");
    let ok = h2_get(&other, "/").await.unwrap();
    assert_eq!(ok.status, 200);
    let counted = server.counters();
    // Each stream that reached the origin is counted once, as completed or aborted.
    assert!(counted.forwarded >= reached, "{counted:?} vs {reached}");
}

#[tokio::test]
async fn a_continuation_flood_ends_the_connection_and_others_are_served() {
    let origin = origin(5).await;
    let (_server, addr) = h2_proxy(vec![origin.addr()], |c| c.http2.max_header_list_size = 4096);
    let other = h2c(addr).await;
    let mut raw = Raw::connect(addr).await;
    let fields = [
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "localhost"),
        (":path", "/"),
    ];
    // HEADERS without END_HEADERS, then CONTINUATION frames that never end the head.
    let mut flood = Raw::headers_bytes(1, &fields, true);
    flood[4] &= !END_HEADERS;
    let value = "v".repeat(100);
    let one = Raw::headers_bytes(1, &[("x-a", value.as_str())], false);
    for _ in 0..1000 {
        flood.extend(Raw::frame_bytes(CONTINUATION, 0, 1, &one[9..]));
    }
    let _ = raw.stream.write_all(&flood).await;
    let seen = raw.until_closed().await;
    let goaways: Vec<(u32, u32)> = seen
        .iter()
        .filter(|f| f.kind == GOAWAY)
        .map(Frame::goaway)
        .collect();
    assert_eq!(goaways, vec![(0, ENHANCE_YOUR_CALM)], "{seen:?}");
    assert_eq!(origin.requests(), 0);
    assert_eq!(h2_get(&other, "/").await.unwrap().status, 200);
}

/// What the proxy does with a request with these regular fields: the first RST_STREAM
/// or GOAWAY it sends, as (frame type, error code), or the response's HEADERS (0).
async fn verdict(addr: SocketAddr, extra: &[(&str, &str)], end_stream: bool) -> (u8, u32) {
    let mut raw = Raw::connect(addr).await;
    let mut fields = vec![
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "localhost"),
        (":path", "/"),
    ];
    fields.extend_from_slice(extra);
    raw.write(&Raw::headers_bytes(1, &fields, end_stream)).await;
    let seen = raw
        .until(|f| f.kind == RST_STREAM || f.kind == GOAWAY || (f.kind == HEADERS && f.stream == 1))
        .await;
    let f = seen.last().unwrap();
    match f.kind {
        RST_STREAM => (RST_STREAM, f.reset_code()),
        GOAWAY => (GOAWAY, f.goaway().1),
        _ => (HEADERS, 0),
    }
}

#[tokio::test]
async fn a_field_value_that_would_split_the_http1_head_never_reaches_the_origin() {
    let origin = echo_origin("h2").await;
    let (server, addr) = h2_proxy(vec![origin], |_| {});
    let other = h2c(addr).await;
    // h2 refuses such a value as a connection error.
    for value in ["a\r\ntransfer-encoding: chunked", "a\nx: 1", "a\0b"] {
        let got = verdict(addr, &[("x-smuggle", value)], true).await;
        assert_eq!(got, (GOAWAY, PROTOCOL_ERROR), "{value:?}");
    }
    // Two different lengths, or a `te` other than `trailers`: a malformed request,
    // reset alone.
    let two = [("content-length", "1"), ("content-length", "2")];
    assert_eq!(
        verdict(addr, &two, false).await,
        (RST_STREAM, PROTOCOL_ERROR)
    );
    let te = [("te", "gzip")];
    assert_eq!(verdict(addr, &te, true).await, (RST_STREAM, PROTOCOL_ERROR));
    assert_eq!(server.counters().forwarded, 0);
    // `te: trailers` is allowed (and not forwarded: a hop-by-hop field).
    let ok = verdict(addr, &[("te", "trailers")], true).await;
    assert_eq!(ok, (HEADERS, 0));
    assert_eq!(h2_get(&other, "/").await.unwrap().status, 200);
}

#[tokio::test]
async fn the_settings_announce_the_configured_limits_and_windows() {
    let origin = origin(5).await;
    let (_server, addr) = h2_proxy(vec![origin.addr()], |c| {
        c.http2.max_concurrent_streams = 33;
        c.http2.max_header_list_size = 12345;
        c.http2.initial_stream_window = 100_000;
        c.http2.initial_connection_window = 3_000_000;
    });
    let mut raw = Raw::connect(addr).await;
    raw.get(1, "/").await;
    // The connection window grows from 65535 by a WINDOW_UPDATE on stream 0.
    raw.until(|f| ends(f, 1)).await;
    let mut all = raw.settings.clone();
    all.sort();
    // SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_INITIAL_WINDOW_SIZE,
    // SETTINGS_MAX_HEADER_LIST_SIZE.
    for expected in [(0x3, 33), (0x4, 100_000), (0x6, 12345)] {
        assert!(all.contains(&expected), "{expected:?} not in {all:?}");
    }
    let mut raw = Raw::connect(addr).await;
    let update = raw
        .until(|f| f.kind == WINDOW_UPDATE && f.stream == 0)
        .await;
    let inc = u32::from_be_bytes(update.last().unwrap().payload[..4].try_into().unwrap());
    assert_eq!(inc, 3_000_000 - 65_535);
}

#[tokio::test]
async fn streams_reset_for_errors_beyond_the_limit_end_the_connection_with_enhance_your_calm() {
    let origin = origin(5).await;
    let (server, addr) = h2_proxy(vec![origin.addr()], |c| {
        c.http2.max_local_error_reset_streams = 5
    });
    let other = h2c(addr).await;
    let mut raw = Raw::connect(addr).await;
    let fields = [
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "localhost"),
        (":path", "/"),
        ("te", "gzip"),
    ];
    let mut burst = Vec::new();
    for i in 0..20u32 {
        burst.extend(Raw::headers_bytes(1 + 2 * i, &fields, true));
    }
    let _ = raw.stream.write_all(&burst).await;
    let seen = raw.until_closed().await;
    let resets = seen.iter().filter(|f| f.kind == RST_STREAM).count();
    let goaways: Vec<u32> = seen
        .iter()
        .filter(|f| f.kind == GOAWAY)
        .map(|f| f.goaway().1)
        .collect();
    let goaway = goaways.first().copied();
    assert_eq!(goaways.len(), 1, "{seen:?}");
    assert_eq!(goaway, Some(ENHANCE_YOUR_CALM), "after {resets} resets");
    // In a burst, h2 may end the connection before the resets it queued are written.
    assert!(resets <= 6, "{resets} resets before the GOAWAY");
    assert_eq!(server.counters().forwarded, 0);
    assert_eq!(h2_get(&other, "/").await.unwrap().status, 200);
    // The control: under the default limit (1024) the same burst resets 20 streams, and
    // the connection goes on.
    let (_server, addr) = h2_proxy(vec![origin.addr()], |_| {});
    let mut raw = Raw::connect(addr).await;
    let _ = raw.stream.write_all(&burst).await;
    raw.get(41, "/").await;
    let seen = raw.until(|f| ends(f, 41)).await;
    assert!(seen.iter().all(|f| f.kind != GOAWAY), "{seen:?}");
    assert_eq!(seen.iter().filter(|f| f.kind == RST_STREAM).count(), 20);
}

#[tokio::test]
async fn frames_of_the_wrong_size_end_the_connection() {
    const FRAME_SIZE_ERROR: u32 = 0x6;
    let origin = origin(5).await;
    let (_server, addr) = h2_proxy(vec![origin.addr()], |_| {});
    // A frame larger than SETTINGS_MAX_FRAME_SIZE (16384): FRAME_SIZE_ERROR.
    let mut raw = Raw::connect(addr).await;
    raw.get(1, "/").await;
    raw.until(|f| ends(f, 1)).await;
    let _ = raw
        .stream
        .write_all(&Raw::frame_bytes(DATA, 0, 3, &[0; 20_000]))
        .await;
    let seen = raw.until(|f| f.kind == GOAWAY).await;
    assert_eq!(seen.last().unwrap().goaway(), (1, FRAME_SIZE_ERROR));
    raw.until_closed().await;
    // A PING of 7 bytes (it carries 8): h2 says PROTOCOL_ERROR (RFC 9113 6.7 asks for
    // FRAME_SIZE_ERROR).
    let mut raw = Raw::connect(addr).await;
    raw.send(PING, 0, 0, &[0; 7]).await;
    let seen = raw.until(|f| f.kind == GOAWAY).await;
    assert_eq!(seen.last().unwrap().goaway(), (0, PROTOCOL_ERROR));
    raw.until_closed().await;
}
