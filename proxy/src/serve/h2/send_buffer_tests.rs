//! What refproxy buffers for a stream whose client takes nothing: the client opens its
//! windows wide and then never reads the connection, so every response byte refproxy
//! accepts stays in refproxy (h2's stream queue and codec) or in the pipe. The pipe is an
//! in-memory one of a known size, so the bytes the [`ResponseWriter`] accepted, less the
//! pipe's size, are what refproxy holds; they stay within `limits.h2_max_send_buffer`
//! plus one frame.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, DuplexStream};

use super::body::ResponseWriter;
use super::{PREFACE, builder};
use crate::config::Http2Config;
use reloadbench_model::test_timing::scaled;

/// Bytes the pipe between refproxy and the client holds.
const PIPE: usize = 16 * 1024;
/// The largest DATA frame without a SETTINGS_MAX_FRAME_SIZE from the client, which h2's
/// codec may hold besides the stream's queue.
const FRAME: usize = 16 * 1024;

/// An HTTP/2 frame's bytes.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The client's side: the preface, SETTINGS with the largest initial window, the
/// connection window opened to the largest, and `GET /` on stream 1 (HPACK static
/// table entries: `:method GET`, `:scheme http`, `:path /`).
fn greedy_client_bytes() -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    let window: u32 = (1 << 31) - 1;
    let mut settings = 0x4u16.to_be_bytes().to_vec();
    settings.extend_from_slice(&window.to_be_bytes());
    out.extend(frame(4, 0, 0, &settings));
    out.extend(frame(8, 0, 0, &(window - 65_535).to_be_bytes()));
    out.extend(frame(1, 0x4 | 0x1, 1, &[0x82, 0x86, 0x84]));
    out
}

/// Bytes a [`ResponseWriter`] on a server made by [`builder`] for `cfg` accepts for a
/// client that never reads: writes go on until one makes no progress for a while.
async fn accepted_for_a_client_that_never_reads(cfg: Http2Config) -> usize {
    let (mut client, server): (DuplexStream, DuplexStream) = tokio::io::duplex(PIPE);
    client.write_all(&greedy_client_bytes()).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let conn = tokio::spawn(async move {
        let mut conn = builder(&cfg).handshake::<_, Bytes>(server).await.unwrap();
        let (_req, respond) = conn.accept().await.unwrap().unwrap();
        let _ = tx.send(respond);
        // Drives the connection: frames out, SETTINGS and window updates in.
        while conn.accept().await.is_some() {}
    });
    let respond = tokio::time::timeout(scaled(Duration::from_secs(30)), rx)
        .await
        .unwrap()
        .unwrap();
    let mut w = ResponseWriter::new(respond);
    // The head and body bytes in one write, as a relay may write them: body bytes go
    // through h2's capacity like the rest.
    let head = b"HTTP/1.1 200 OK\r\ncontent-length: 100000000\r\n\r\n";
    let mut out = head.to_vec();
    out.resize(head.len() + (8 << 20), b'x');
    let mut taken = 0;
    // The client never reads: once h2 stops taking bytes it never takes more, so
    // stopping at the first pause only ever measures less.
    while let Ok(n) = tokio::time::timeout(
        Duration::from_millis(500),
        w.write(out.get(taken..).unwrap()),
    )
    .await
    {
        taken += n.unwrap();
        assert!(taken < out.len(), "refproxy takes everything");
    }
    let accepted = taken.saturating_sub(head.len());
    drop(client);
    conn.abort();
    accepted
}

#[tokio::test]
async fn a_stream_of_a_client_that_never_reads_buffers_at_most_max_send_buffer() {
    for max in [16 * 1024, 64 * 1024] {
        let cfg = Http2Config {
            max_send_buffer: max,
            ..Http2Config::default()
        };
        let accepted = accepted_for_a_client_that_never_reads(cfg).await;
        let held = accepted.saturating_sub(PIPE);
        assert!(
            held <= max as usize + FRAME,
            "max_send_buffer {max}: accepted {accepted}, held {held}"
        );
        // Not a vacuous bound: the pipe filled and h2 took bytes beyond it.
        assert!(accepted > PIPE, "accepted {accepted}");
        eprintln!("max_send_buffer {max}: accepted {accepted}, held at most {held}");
    }
}
