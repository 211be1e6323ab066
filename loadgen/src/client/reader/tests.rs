//! The reader fed every split of a response gives the same outcome as one read.

use super::*;

const ASKED: Asked = Asked {
    head_request: false,
    upgrade: false,
    want_server: true,
};

/// What a reader made of `wire` fed in the given pieces, then EOF if it wanted more.
fn read(pieces: &[&[u8]], asked: Asked) -> Result<(u16, bool, u64, u64, Option<String>), Failed> {
    let mut r = Reader::new(asked);
    let mut done = false;
    for p in pieces {
        if r.feed(p)? == Fed::Done {
            done = true;
            break;
        }
    }
    if !done {
        r.eof()?;
    }
    let f = r.finish().expect("finished");
    Ok((
        f.head.status,
        f.head.keep_alive,
        f.body_bytes,
        f.total_bytes,
        f.head.server,
    ))
}

/// Every two-piece split of `wire` gives what the whole does.
fn same_at_every_split(wire: &[u8], asked: Asked) {
    let whole = read(&[wire], asked);
    for at in 0..=wire.len() {
        let (a, b) = wire.split_at(at);
        assert_eq!(read(&[a, b], asked), whole, "split at {at}");
    }
    let bytes: Vec<&[u8]> = wire.chunks(1).collect();
    assert_eq!(read(&bytes, asked), whole, "byte by byte");
}

#[test]
fn interim_statuses() {
    for status in [100, 102, 103, 150, 199] {
        assert!(is_interim(status));
    }
    // Final when asked for; refused by the reader before this test when not.
    assert!(!is_interim(101));
    for status in [99, 200, 204, 304, 404, 502] {
        assert!(!is_interim(status));
    }
}

#[test]
fn content_length_at_every_split() {
    let wire = b"HTTP/1.1 200 OK\r\nServer: s1\r\nContent-Length: 5\r\n\r\nhello";
    assert_eq!(
        read(&[wire], ASKED),
        Ok((200, true, 5, wire.len() as u64, Some("s1".to_owned())))
    );
    same_at_every_split(wire, ASKED);
}

#[test]
fn chunked_with_interim_at_every_split() {
    let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\nde\n0\r\nX: y\r\n\r\n";
    assert_eq!(
        read(&[wire], ASKED),
        Ok((200, true, 5, wire.len() as u64, None))
    );
    same_at_every_split(wire, ASKED);
}

#[test]
fn until_close_ends_with_the_connection() {
    let wire = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabcdef";
    assert_eq!(
        read(&[wire], ASKED),
        Ok((200, false, 6, wire.len() as u64, None))
    );
    same_at_every_split(wire, ASKED);
}

#[test]
fn bytes_after_the_body_end_the_connection() {
    // Something no request asked for: the response counts, the connection is not
    // reused (its next response could not be told from these bytes).
    for wire in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"[..],
        b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nX",
    ] {
        let (status, keep_alive, ..) = read(&[wire], ASKED).unwrap();
        assert_eq!((status / 100, keep_alive), (2, false), "{wire:?}");
    }
    // Exactly one response: reused.
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    assert!(read(&[wire], ASKED).unwrap().1);
}

#[test]
fn a_head_over_the_limit_is_refused_however_it_is_split() {
    let mut wire = b"HTTP/1.1 200 OK\r\nX-Filler: ".to_vec();
    wire.resize(MAX_RESPONSE_HEAD + 10, b'a');
    wire.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
    for at in [40_000, MAX_RESPONSE_HEAD - 1, wire.len() - 1] {
        let (a, b) = wire.split_at(at);
        let failed = read(&[a, b], ASKED).unwrap_err();
        assert_eq!(failed.class, FailureClass::BadResponse, "split at {at}");
    }
}

#[test]
fn head_request_has_no_body() {
    let asked = Asked {
        head_request: true,
        ..ASKED
    };
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n";
    assert_eq!(
        read(&[wire], asked),
        Ok((200, true, 0, wire.len() as u64, None))
    );
}

#[test]
fn switching_protocols_only_when_asked() {
    let wire = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nnew";
    let upgrade = Asked {
        upgrade: true,
        ..ASKED
    };
    assert_eq!(
        read(&[wire], upgrade),
        Ok((101, false, 0, wire.len() as u64, None))
    );
    let refused = read(&[wire], ASKED).unwrap_err();
    assert_eq!(refused.class, FailureClass::BadResponse);
}

#[test]
fn ends_and_errors_by_phase() {
    let fails = |pieces: &[&[u8]]| read(pieces, ASKED).unwrap_err();
    assert_eq!(
        fails(&[]),
        Failed {
            class: FailureClass::Closed,
            bytes: 0
        }
    );
    assert_eq!(fails(&[b"HTTP/1.1 2"]).class, FailureClass::Truncated);
    assert_eq!(
        fails(&[b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"]).class,
        FailureClass::Truncated
    );
    assert_eq!(
        fails(&[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab"]).class,
        FailureClass::Truncated
    );
    assert_eq!(
        fails(&[b"HTTP/1.1 2x0 OK\r\n\r\n"]).class,
        FailureClass::BadResponse
    );
    assert_eq!(
        fails(&[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]).class,
        FailureClass::BadResponse
    );
    let r = Reader::new(ASKED);
    assert_eq!(r.read_error().class, FailureClass::Reset);
    let mut r = Reader::new(ASKED);
    assert_eq!(r.feed(b"HTTP/1.1"), Ok(Fed::More));
    assert_eq!(
        r.read_error(),
        Failed {
            class: FailureClass::Truncated,
            bytes: 8
        }
    );
}

#[test]
fn a_head_that_never_ends_is_refused_at_the_limit() {
    let mut r = Reader::new(ASKED);
    let start = b"HTTP/1.1 200 OK\r\nX-Filler: ";
    assert_eq!(r.feed(start), Ok(Fed::More));
    // One long field (not many: the field count has its own limit).
    let field = [b'a'; 1000];
    let mut fed = start.len();
    let failed = loop {
        match r.feed(&field) {
            Ok(Fed::More) => fed += field.len(),
            Ok(Fed::Done) => panic!("no head end was sent"),
            Err(f) => break f,
        }
    };
    assert_eq!(failed.class, FailureClass::BadResponse);
    assert!(fed < MAX_RESPONSE_HEAD && fed + field.len() >= MAX_RESPONSE_HEAD);
}

#[test]
fn a_head_in_one_read_keeps_no_copy() {
    let mut r = Reader::new(ASKED);
    assert_eq!(
        r.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab"),
        Ok(Fed::More)
    );
    assert_eq!(r.partial.capacity(), 0);
    let mut r = Reader::new(ASKED);
    assert_eq!(r.feed(b"HTTP/1.1 200 OK\r\nContent-"), Ok(Fed::More));
    assert!(!r.partial.is_empty());
    assert_eq!(r.feed(b"Length: 4\r\n\r\nab"), Ok(Fed::More));
    assert_eq!(r.partial.capacity(), 0, "freed once the head is complete");
}
