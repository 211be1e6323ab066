//! Unit tests of the head parsers and the chunked scanner.

use super::*;

const XFF: &[u8] = b"127.0.0.1";

fn req(raw: &str) -> Result<Option<RequestHead>, Reject> {
    parse_request(raw.as_bytes(), XFF)
}

fn upstream(raw: &str) -> String {
    String::from_utf8(req(raw).unwrap().unwrap().upstream).unwrap()
}

fn resp(raw: &str, head: bool, http10: bool) -> ResponseHead {
    match parse_response(raw.as_bytes(), head, http10).unwrap() {
        Parsed::Final(h) => h,
        other => panic!("{other:?}"),
    }
}

#[test]
fn get_is_rewritten_for_the_origin() {
    let up = upstream(
        "GET /a?b HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Private\r\nX-Private: 1\r\n\
         Keep-Alive: timeout=5\r\nTE: trailers\r\nX-Forwarded-For: 10.0.0.1\r\nAccept: */*\r\n\r\n",
    );
    assert_eq!(
        up,
        "GET /a?b HTTP/1.1\r\nHost: h\r\nAccept: */*\r\nx-forwarded-for: 10.0.0.1, 127.0.0.1\r\n"
    );
}

#[test]
fn empty_forwarded_for_values_are_dropped() {
    let up = upstream("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For:\r\n\r\n");
    assert!(up.ends_with("x-forwarded-for: 127.0.0.1\r\n"), "{up}");
}

#[test]
fn request_flags_follow_version_method_and_connection() {
    let r = req("GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap().unwrap();
    assert!(r.keep_alive && r.replayable && r.has_host && !r.http10 && !r.is_head);
    assert_eq!(r.body, Framing::None);
    let r = req("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(!r.keep_alive);
    let r = req("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
    assert!(!r.keep_alive && r.http10 && !r.has_host);
    let r = req("HEAD / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(r.keep_alive && r.is_head);
    let r = req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(!r.replayable && r.body == Framing::None);
    let r = req("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(!r.replayable && r.expect_continue);
    assert_eq!(r.body, Framing::Length(5));
}

#[test]
fn incomplete_heads_wait_and_oversized_heads_are_refused() {
    assert!(req("GET / HTTP/1.1\r\nHost: h\r\n").unwrap().is_none());
    let big = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_REQUEST_HEAD + 1));
    assert_eq!(req(&big).unwrap_err(), Reject::TooLarge);
    let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_eq!(
        req(&format!("GET / HTTP/1.1\r\n{many}\r\n")).unwrap_err(),
        Reject::TooLarge
    );
}

#[test]
fn framing_conflicts_and_bad_heads_are_refused() {
    for (raw, why) in [
        ("GARBAGE\x01 / NOT-HTTP\r\n\r\n", Reject::BadRequest),
        (
            "GET / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            Reject::BadRequest,
        ),
        (
            "GET / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            Reject::BadRequest,
        ),
        (
            "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            Reject::BadRequest,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            Reject::BadRequest,
        ),
        ("GET / HTTP/1.1\r\nFoo : bar\r\n\r\n", Reject::BadRequest),
        (
            "GET / HTTP/1.1\r\nFoo: bar\r\n baz\r\n\r\n",
            Reject::BadRequest,
        ),
        (
            "GET nowhere HTTP/1.1\r\nHost: h\r\n\r\n",
            Reject::BadRequest,
        ),
        ("GET / HTTP/1.1\r\n\r\n", Reject::BadRequest),
        (
            "GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n",
            Reject::BadRequest,
        ),
        ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", Reject::BadRequest),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            Reject::BadRequest,
        ),
        ("CONNECT h:443 HTTP/1.1\r\n\r\n", Reject::NotImplemented),
        (
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            Reject::NotImplemented,
        ),
        (
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            Reject::BadRequest,
        ),
        (
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            Reject::NotImplemented,
        ),
        (
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            Reject::BadRequest,
        ),
    ] {
        assert_eq!(req(raw).unwrap_err(), why, "{raw:?}");
    }
    // Equal repeated lengths are one length.
    let r = req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3, 3\r\n\r\n");
    assert_eq!(r.unwrap().unwrap().body, Framing::Length(3));
}

#[test]
fn chunked_requests_are_relayed_chunked_and_absolute_targets_reduced() {
    let r = req(
        "POST http://example.test/p?q=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .unwrap()
    .unwrap();
    assert_eq!(r.body, Framing::Chunked);
    let up = String::from_utf8(r.upstream).unwrap();
    assert!(up.starts_with("POST /p?q=1 HTTP/1.1\r\n"), "{up}");
    assert!(up.ends_with("transfer-encoding: chunked\r\n"), "{up}");
    assert!(upstream("GET HTTP://h HTTP/1.1\r\nHost: h\r\n\r\n").starts_with("GET / HTTP/1.1\r\n"));
    assert!(
        upstream("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").starts_with("OPTIONS * HTTP/1.1\r\n")
    );
}

#[test]
fn response_framing_follows_rfc_9112() {
    let r = resp(
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        false,
        false,
    );
    assert_eq!(
        (r.body, r.reusable, r.close_delimited),
        (Framing::Length(5), true, false)
    );
    assert_eq!(r.head_len, 38);
    let r = resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, false);
    assert_eq!(r.body, Framing::None);
    assert!(
        String::from_utf8(r.downstream)
            .unwrap()
            .contains("content-length: 5\r\n")
    );
    for status in [204, 304] {
        let r = resp(&format!("HTTP/1.1 {status} X\r\n\r\n"), false, false);
        assert_eq!((r.body, r.reusable), (Framing::None, true));
    }
    let r = resp("HTTP/1.1 200 OK\r\n\r\n", false, false);
    assert_eq!(
        (r.body, r.reusable, r.close_delimited),
        (Framing::UntilClose, false, true)
    );
    let r = resp(
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
        false,
        false,
    );
    assert!(!r.reusable && !r.close_delimited);
    let r = resp("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false, false);
    assert!(!r.reusable);
    let r = resp(
        "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n",
        false,
        false,
    );
    assert!(r.reusable);
}

#[test]
fn chunked_responses_are_relayed_or_dechunked_for_http10() {
    let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\nKeep-Alive: x\r\n\r\n";
    let r = resp(raw, false, false);
    assert_eq!(
        (r.body, r.dechunk, r.close_delimited, r.reusable),
        (Framing::Chunked, false, false, false)
    );
    let head = String::from_utf8(r.downstream).unwrap();
    assert_eq!(head, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n");
    let r = resp(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        false,
        true,
    );
    assert!(r.dechunk && r.close_delimited && r.reusable);
    assert_eq!(
        String::from_utf8(r.downstream).unwrap(),
        "HTTP/1.1 200 OK\r\n"
    );
}

#[test]
fn other_transfer_codings_are_relayed_with_their_header() {
    let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    let r = resp(raw, false, false);
    assert_eq!((r.body, r.dechunk), (Framing::Chunked, false));
    let head = String::from_utf8(r.downstream).unwrap();
    assert_eq!(
        head,
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n"
    );
    let to_http10 = parse_response(raw.as_bytes(), false, true);
    assert_eq!(to_http10.unwrap_err(), BadResponse::Coding);
    let r = resp(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        false,
        false,
    );
    assert_eq!((r.body, r.reusable), (Framing::UntilClose, false));
}

#[test]
fn interim_and_bad_responses() {
    let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n";
    assert!(matches!(
        parse_response(raw, false, false),
        Ok(Parsed::Interim(25))
    ));
    assert!(matches!(
        parse_response(b"HTTP/1.1 200 OK\r\n", false, false),
        Ok(Parsed::Partial)
    ));
    for (raw, why) in [
        (&b"garbage\r\n\r\n"[..], BadResponse::Malformed),
        (b"HTTP/1.1 101 Switching\r\n\r\n", BadResponse::Switch),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            BadResponse::Length,
        ),
    ] {
        assert_eq!(parse_response(raw, false, false).unwrap_err(), why);
    }
    let big = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(MAX_RESPONSE_HEAD));
    assert_eq!(
        parse_response(big.as_bytes(), false, false).unwrap_err(),
        BadResponse::TooLarge
    );
}

/// Scans `parts` in turn; returns (bytes used, data, done).
fn scan_parts(parts: &[&[u8]]) -> Result<(usize, Vec<u8>, bool), ChunkError> {
    let mut s = ChunkedScanner::default();
    let (mut used, mut data) = (0, Vec::new());
    for p in parts {
        let mut ranges = Vec::new();
        used += s.scan(p, |piece| {
            if let Piece::Data(r) = piece {
                ranges.push(r);
            }
        })?;
        for r in ranges {
            data.extend_from_slice(&p[r]);
        }
    }
    Ok((used, data, s.is_done()))
}

#[test]
fn chunked_scanner_finds_data_and_end_across_reads() {
    let body = b"5 ;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT";
    let (used, data, done) = scan_parts(&[body]).unwrap();
    assert_eq!((used, done), (body.len() - 4, true));
    assert_eq!(data, b"hello0123456789");
    // Byte by byte gives the same.
    let parts: Vec<&[u8]> = body[..body.len() - 4].chunks(1).collect();
    let (used, data, done) = scan_parts(&parts).unwrap();
    assert_eq!((used, done), (body.len() - 4, true));
    assert_eq!(data, b"hello0123456789");
    let (_, _, done) = scan_parts(&[b"5\r\nhel"]).unwrap();
    assert!(!done);
}

#[test]
fn chunked_scanner_refuses_broken_codings() {
    for bad in [
        &b"x\r\n"[..],
        b"5\nhello\r\n",
        b"5\r\nhelloX\r\n",
        b"11111111111111111\r\n",
        b"0\r\nTrailer: x\n\r\n",
        b"0\r\n\rX",
        b"5 junk\r\nhello\r\n",
        b"5 \r\nhello\r\n",
    ] {
        assert!(
            scan_parts(&[bad]).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn chunked_scanner_limits_chunk_lines_and_trailer_sections() {
    let mut line = b"5;".to_vec();
    line.extend(std::iter::repeat_n(b'x', MAX_CHUNK_LINE));
    line.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
    assert_eq!(
        scan_parts(&[&line]).unwrap_err(),
        ChunkError::Malformed {
            what: "chunk line longer than 4 KiB",
            at: At::Body(MAX_CHUNK_LINE as u64),
        }
    );
    let mut ok_line = b"5;".to_vec();
    ok_line.extend(std::iter::repeat_n(b'x', MAX_CHUNK_LINE - 3));
    ok_line.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
    assert!(scan_parts(&[&ok_line]).unwrap().2);
    let mut trailers = b"0\r\nX: ".to_vec();
    trailers.extend(std::iter::repeat_n(b'a', MAX_TRAILERS));
    assert_eq!(
        scan_parts(&[&trailers]).unwrap_err(),
        ChunkError::TrailersTooLarge {
            at: At::Body(3 + MAX_TRAILERS as u64)
        }
    );
}

#[test]
fn chunked_scanner_reports_the_trailer_section_across_reads() {
    let body = b"3\r\nabc\r\n0\r\nX: 1\r\n\r\n";
    for split in 1..body.len() {
        let mut s = ChunkedScanner::default();
        let mut section = Vec::new();
        for part in [&body[..split], &body[split..]] {
            s.scan(part, |p| {
                if let Piece::Trailers(r) = p {
                    section.extend_from_slice(&part[r]);
                }
            })
            .unwrap();
        }
        assert_eq!(section, b"X: 1\r\n\r\n", "split at {split}");
    }
}

#[test]
fn trailers_are_checked_like_heads_and_filtered() {
    let mut out = Vec::new();
    forward_trailers(
        b"X-Sum: 1\r\nContent-Length: 9\r\nHost: e\r\nTrailer: x\r\nConnection: x-a\r\nX-A: 2\r\n\r\n",
        &ConnectionNames::default(),
        &mut out,
    )
    .unwrap();
    assert_eq!(out, b"X-Sum: 1\r\n\r\n");
    for bad in [
        &b"GET /smug HTTP/1.1\r\n\r\n"[..],
        b"X: 1\r\n folded\r\n\r\n",
        b"X 1\r\n\r\n",
        b"X: 1\r\n\r\nmore",
    ] {
        assert!(
            matches!(
                forward_trailers(bad, &ConnectionNames::default(), &mut Vec::new()),
                Err(ChunkError::Malformed { .. })
            ),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let many: Vec<u8> = (0..=MAX_HEADERS)
        .flat_map(|i| format!("X-{i}: v\r\n").into_bytes())
        .chain(*b"\r\n")
        .collect();
    assert_eq!(
        forward_trailers(&many, &ConnectionNames::default(), &mut Vec::new()),
        Err(ChunkError::TrailersTooLarge { at: At::Unknown })
    );
}

#[test]
fn trailers_named_by_the_heads_connection_are_dropped() {
    let request = req(
        "POST / HTTP/1.1\r\nHost: h\r\nConnection: close, X-Secret\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .unwrap()
    .unwrap();
    let response = resp(
        "HTTP/1.1 200 OK\r\nConnection: x-secret\r\nTransfer-Encoding: chunked\r\n\r\n",
        false,
        false,
    );
    for named in [&request.connection_names, &response.connection_names] {
        let mut out = Vec::new();
        forward_trailers(b"x-SECRET: b\r\nX-Sum: 1\r\n\r\n", named, &mut out).unwrap();
        assert_eq!(String::from_utf8_lossy(&out), "X-Sum: 1\r\n\r\n");
    }
    // `close` and `keep-alive` are options, not names.
    let plain = req("GET / HTTP/1.1\r\nHost: h\r\nConnection: close, keep-alive\r\n\r\n");
    assert_eq!(
        plain.unwrap().unwrap().connection_names,
        ConnectionNames::default()
    );
}

#[test]
fn status_codes_outside_100_to_599_are_malformed() {
    for status in ["000", "099", "600", "999"] {
        let raw = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            parse_response(raw.as_bytes(), false, false).unwrap_err(),
            BadResponse::Malformed,
            "{status}"
        );
    }
    resp("HTTP/1.1 599 X\r\nContent-Length: 0\r\n\r\n", false, false);
}

#[test]
fn error_responses_carry_length_extra_headers_and_close() {
    let r = String::from_utf8(error_response(
        502,
        b"x-served-by: gen=1 pid=2\r\n",
        true,
        false,
    ))
    .unwrap();
    assert!(r.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{r}");
    assert!(r.contains("content-length: 16\r\nx-served-by: gen=1 pid=2\r\nconnection: close\r\n\r\n502 Bad Gateway\n"), "{r}");
}

#[test]
fn chunked_errors_say_where_across_reads() {
    // The bad byte is the `X` at offset 10 of the body, found in the second read.
    let mut s = ChunkedScanner::default();
    s.scan(b"5\r\nhel", |_| {}).unwrap();
    let err = s.scan(b"lo\r\nX\r\n", |_| {}).unwrap_err();
    assert_eq!(
        err,
        ChunkError::Malformed {
            what: "chunk size expected",
            at: At::Body(10),
        }
    );
    assert_eq!(
        err.to_string(),
        "malformed chunked body at byte 10 of the body: chunk size expected"
    );
}

#[test]
fn upgrade_requests_keep_upgrade_and_connection_upgrade() {
    let raw = "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
               Sec-WebSocket-Key: k\r\n\r\n";
    let head = req(raw).unwrap().unwrap();
    assert_eq!(head.upgrade, Some(UpgradeKind::WebSocket));
    assert_eq!(
        String::from_utf8(head.upstream).unwrap(),
        "GET /ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: k\r\nx-forwarded-for: 127.0.0.1\r\n\
         upgrade: websocket\r\nconnection: upgrade\r\n"
    );
    let other = req("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n");
    assert_eq!(other.unwrap().unwrap().upgrade, Some(UpgradeKind::Other));
}

#[test]
fn upgrade_without_connection_upgrade_with_a_body_or_in_http10_is_stripped() {
    for raw in [
        "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\nContent-Length: 2\r\n\r\n",
        "GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    ] {
        let head = req(raw).unwrap().unwrap();
        assert_eq!(head.upgrade, None, "{raw}");
        let up = String::from_utf8(head.upstream).unwrap();
        assert!(!up.to_ascii_lowercase().contains("upgrade"), "{up}");
    }
}
