use super::*;

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn a_forged_key_id_is_refused_not_a_panic() {
    // The key id is the ticket's first bytes, chosen by the client.
    let mut forged = vec![0xff; ID_LEN];
    forged.extend_from_slice(&[0u8; 64]);
    let t0 = unix_now();
    let keys = TicketKeys::random(HOUR);
    assert!(keys.decrypt_at(t0, &forged).is_none());
    let file = TicketKeys::from_file(&[7u8; 80], HOUR);
    assert!(file.decrypt_at(t0, &forged).is_none());
}

#[test]
fn the_announced_lifetime_is_at_most_seven_days() {
    use rustls::server::ProducesTickets;
    assert_eq!(TicketKeys::random(HOUR).lifetime(), 3600);
    let month = TicketKeys::random(Duration::from_secs(30 * 24 * 3600));
    assert_eq!(month.lifetime(), 604_800);
}

#[test]
fn a_key_file_is_a_regular_file_read_no_further_than_its_largest_size() {
    let e = read_key_file(std::path::Path::new("/dev/zero")).unwrap_err();
    assert!(matches!(e, KeyFileError::Read(_)), "{e:?}");
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.key");
    std::fs::write(&big, [1u8; 4096]).unwrap();
    let e = read_key_file(&big).unwrap_err();
    assert!(matches!(e, KeyFileError::Size(81)), "{e:?}");
}

#[test]
fn a_ticket_from_before_a_rotation_resumes_after_it_but_not_after_two() {
    let keys = TicketKeys::random(HOUR);
    let t0 = keys.lock().rotated_at;
    let ticket = keys.encrypt_at(t0, b"session").unwrap();
    assert_eq!(keys.decrypt_at(t0, &ticket).unwrap(), b"session");
    // After one rotation the previous key still opens it.
    assert_eq!(keys.decrypt_at(t0 + 3600, &ticket).unwrap(), b"session");
    let second = keys.encrypt_at(t0 + 3600, b"second").unwrap();
    assert_ne!(second[..ID_LEN], ticket[..ID_LEN], "a new key id");
    // After two it is gone; the one sealed after the first rotation still opens.
    assert!(keys.decrypt_at(t0 + 7200, &ticket).is_none());
    assert_eq!(keys.decrypt_at(t0 + 7200, &second).unwrap(), b"second");
    // Idle for two periods or more at once: both keys are new.
    assert!(keys.decrypt_at(t0 + 4 * 3600, &second).is_none());
    let fresh = keys.encrypt_at(t0 + 4 * 3600, b"again").unwrap();
    assert_eq!(keys.decrypt_at(t0 + 4 * 3600, &fresh).unwrap(), b"again");
}

#[test]
fn keys_after_a_rotation_are_not_derived_from_the_earlier_ones() {
    // Two processes handed the same state agree until one of them rotates; after a
    // rotation each has a fresh random key that the other cannot compute.
    let origin = TicketKeys::random(HOUR);
    let t0 = origin.lock().rotated_at;
    let state = origin.export_at(t0).unwrap();
    let a = TicketKeys::adopt(&state, HOUR).unwrap();
    let b = TicketKeys::adopt(&state, HOUR).unwrap();
    a.resume();
    b.resume();
    let before = a.encrypt_at(t0, b"s0").unwrap();
    assert_eq!(b.decrypt_at(t0, &before).unwrap(), b"s0");
    let t1 = t0 + 3600;
    let after_a = a.encrypt_at(t1, b"a1").unwrap();
    let after_b = b.encrypt_at(t1, b"b1").unwrap();
    assert!(
        b.decrypt_at(t1, &after_a).is_none(),
        "b cannot open a's new key"
    );
    assert!(
        a.decrypt_at(t1, &after_b).is_none(),
        "a cannot open b's new key"
    );
    assert_ne!(
        a.export_at(t1).unwrap().current.key,
        b.export_at(t1).unwrap().current.key
    );
    // Both still open the ticket of before (the previous key).
    assert_eq!(a.decrypt_at(t1, &before).unwrap(), b"s0");
    assert_eq!(b.decrypt_at(t1, &before).unwrap(), b"s0");
    // The same for two processes started from the same key file: one fixed key each,
    // nothing rotates and nothing is derived per period.
    let f1 = TicketKeys::from_file(&[7u8; 80], HOUR);
    let f2 = TicketKeys::from_file(&[7u8; 80], HOUR);
    let sealed = f1.encrypt_at(t0, b"f").unwrap();
    assert_eq!(f2.decrypt_at(t0 + 10 * 3600, &sealed).unwrap(), b"f");
    assert_eq!(f1.schedule(), Schedule::Fixed);
    assert!(f1.export().is_none());
    f1.rotate_at(t0 + 3600);
    assert_eq!(
        f2.decrypt_at(t0, &f1.encrypt_at(t0, b"g").unwrap())
            .unwrap(),
        b"g"
    );
    assert!(
        TicketKeys::from_file(&[8u8; 48], HOUR)
            .decrypt_at(t0, &sealed)
            .is_none()
    );
}

#[test]
fn workers_pushed_the_masters_keys_agree_across_rotations() {
    let master = TicketKeys::for_master(HOUR);
    let t0 = master.lock().rotated_at;
    let w1 = TicketKeys::adopt(&master.export_at(t0).unwrap(), HOUR).unwrap();
    assert_eq!(w1.schedule(), Schedule::Pushed);
    let old = w1.encrypt_at(t0, b"old").unwrap();
    // A worker never rotates on its own, however late it is.
    let late = w1.encrypt_at(t0 + 10 * 3600, b"late").unwrap();
    assert_eq!(late[..ID_LEN], old[..ID_LEN]);
    // The master rotates and pushes; a worker started after gets the same set.
    master.rotate_at(t0 + 3600);
    assert!(w1.install(&master.export_at(t0 + 3600).unwrap()));
    let w2 = TicketKeys::adopt(&master.export_at(t0 + 3600).unwrap(), HOUR).unwrap();
    let from_w1 = w1.encrypt_at(t0 + 3600, b"w1").unwrap();
    assert_eq!(w2.decrypt_at(t0 + 3600, &from_w1).unwrap(), b"w1");
    let from_w2 = w2.encrypt_at(t0 + 3600, b"w2").unwrap();
    assert_eq!(w1.decrypt_at(t0 + 3600, &from_w2).unwrap(), b"w2");
    // The ticket of before the rotation opens on both, not after the next one.
    assert_eq!(w2.decrypt_at(t0 + 3600, &old).unwrap(), b"old");
    master.rotate_at(t0 + 7200);
    let state = master.export_at(t0 + 7200).unwrap();
    assert!(w1.install(&state) && w2.install(&state));
    assert!(w1.decrypt_at(t0 + 7200, &old).is_none());
    assert!(w2.decrypt_at(t0 + 7200, &old).is_none());
    assert_eq!(w2.decrypt_at(t0 + 7200, &from_w1).unwrap(), b"w1");
    // Keys that rotate on their own refuse a push.
    assert!(!TicketKeys::random(HOUR).install(&state));
}

#[test]
fn a_held_process_does_not_rotate_until_resumed() {
    let keys = TicketKeys::random(HOUR);
    let t0 = keys.lock().rotated_at;
    let state = keys.export_at(t0).unwrap();
    assert!(state.self_rotating);
    keys.hold();
    let successor = TicketKeys::adopt(&state, HOUR).unwrap();
    // Both serve for a moment during a handoff: neither rotates, both agree.
    let t1 = t0 + 3600;
    let from_old = keys.encrypt_at(t1, b"old").unwrap();
    let from_new = successor.encrypt_at(t1, b"new").unwrap();
    assert_eq!(successor.decrypt_at(t1, &from_old).unwrap(), b"old");
    assert_eq!(keys.decrypt_at(t1, &from_new).unwrap(), b"new");
    // Confirmed: the successor rotates on the schedule it was handed; the ticket of the
    // handoff still opens once.
    successor.resume();
    let rotated = successor.encrypt_at(t1, b"r").unwrap();
    assert_ne!(rotated[..ID_LEN], from_old[..ID_LEN]);
    assert_eq!(successor.decrypt_at(t1, &from_old).unwrap(), b"old");
}

#[test]
fn a_state_for_another_rotation_or_malformed_is_not_adopted() {
    let state = TicketKeys::random(HOUR).export().unwrap();
    assert!(TicketKeys::adopt(&state, 2 * HOUR).is_none());
    let mut bad = state.clone();
    bad.current.key.truncate(5);
    assert!(TicketKeys::adopt(&bad, HOUR).is_none());
    let pushed = TicketKeys::for_master(HOUR);
    assert!(!pushed.install(&bad));
    // Another process's random keys open nothing of this one.
    let t0 = unix_now();
    let keys = TicketKeys::adopt(&state, HOUR).unwrap();
    let ticket = keys.encrypt_at(t0, b"s").unwrap();
    assert!(TicketKeys::random(HOUR).decrypt_at(t0, &ticket).is_none());
}

#[test]
fn tampered_or_short_tickets_do_not_open() {
    let keys = TicketKeys::random(HOUR);
    let t0 = unix_now();
    let mut ticket = keys.encrypt_at(t0, b"session").unwrap();
    let last = ticket.len() - 1;
    ticket[last] ^= 1;
    assert!(keys.decrypt_at(t0, &ticket).is_none());
    assert!(keys.decrypt_at(t0, &ticket[..5]).is_none());
    assert!(keys.decrypt_at(t0, b"").is_none());
}

#[test]
fn the_state_debug_shows_no_key() {
    let state = TicketKeys::random(HOUR).export().unwrap();
    let shown = format!("{state:?}");
    assert!(shown.contains("redacted"));
    assert!(!shown.contains(&format!("{:?}", state.current.key)));
}
