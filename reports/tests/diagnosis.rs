//! The diagnosis of a case says what the evidence supports, with its
//! numbers, and calls the rest unexplained: checked on the fixture's cases
//! with evidence planted whose meaning is known.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reloadbench_model::diagnosis::{Finding, FindingKind};
use reloadbench_model::evidence::{CaseEvidence, QueueSeries};
use reloadbench_model::kernel::{CounterScope, KernelCounters};
use reloadbench_reports::{CaseReport, diagnose, render_markdown};

const MS: u64 = 1_000_000;

fn case(name: &str) -> CaseReport {
    support::fixture()
        .cases
        .into_iter()
        .find(|c| c.name == name)
        .unwrap()
}

fn queue(first_ms: u64, last_ms: u64, depth: &[(u64, u32)]) -> QueueSeries {
    QueueSeries {
        inode: first_ms + 1,
        backlog: 128,
        max_depth: depth.iter().map(|d| d.1).max().unwrap_or(0),
        first_seen_ns: first_ms * MS,
        last_seen_ns: last_ms * MS,
        depth: depth.iter().map(|(t, d)| (t * MS, *d)).collect(),
        owners: Vec::new(),
    }
}

fn evidence(queues: Vec<QueueSeries>) -> Option<CaseEvidence> {
    Some(CaseEvidence {
        address: "127.0.0.1:8080".into(),
        fast_interval_ns: 5 * MS,
        slow_interval_ns: 100 * MS,
        queues,
        ..Default::default()
    })
}

fn of(findings: &[Finding], kind: FindingKind) -> Vec<&str> {
    findings
        .iter()
        .filter(|f| f.kind == kind)
        .map(|f| f.text.as_str())
        .collect()
}

#[test]
fn resets_of_a_socket_closed_with_a_queue_are_explained_and_the_rest_is_not() {
    // Naive reloads at 1 s and 2 s: the fixture attributes 2 resets to the
    // first and 1 to the second. Only the first reload's old socket was seen
    // closing (with 12 queued); the second's closed after sampling ended.
    let mut c = case("reload without socket");
    c.evidence = evidence(vec![
        queue(0, 1_030, &[(0, 0), (1_005, 5), (1_025, 12)]),
        queue(1_002, 3_000, &[(1_002, 0)]),
        queue(2_001, 3_000, &[(2_001, 0)]),
    ]);
    let d = diagnose(&c);
    let reset = of(&d, FindingKind::QueuedReset);
    assert_eq!(reset.len(), 1, "{d:#?}");
    // Action 0 has 2 resets, one of which the origin answered (the fixture's
    // ledger): that one was accepted and forwarded, so it was not queued.
    assert!(
        reset[0].starts_with(
            "1 request reset or closed before any response byte on new connections, after 1 action where a listening socket closed with connections waiting in its accept queue (12 queued"
        ),
        "{}",
        reset[0]
    );
    let rest = of(&d, FindingKind::Unexplained);
    assert_eq!(
        rest,
        [
            "1 of 3 failures not explained by the evidence recorded (see the failures table for their classes and times)."
        ]
    );
}

#[test]
fn resets_on_reused_keep_alive_connections_are_not_blamed_on_the_queue() {
    // The same evidence, but every reset came on a reused connection: none
    // of them waited in an accept queue. Nothing is credited to the queue.
    let mut c = case("reload without socket");
    for f in &mut c.load.failures {
        f.reused = true;
    }
    c.evidence = evidence(vec![
        queue(0, 1_030, &[(0, 0), (1_025, 12)]),
        queue(1_002, 3_000, &[(1_002, 0)]),
    ]);
    let d = diagnose(&c);
    assert!(of(&d, FindingKind::QueuedReset).is_empty(), "{d:#?}");
    assert_eq!(
        of(&d, FindingKind::Unexplained),
        [
            "2 of 3 failures not explained by the evidence recorded (see the failures table for their classes and times)."
        ]
    );
}

#[test]
fn an_empty_queue_at_the_close_is_said_so_not_blamed() {
    let mut c = case("reload without socket");
    c.evidence = evidence(vec![
        queue(0, 1_030, &[(0, 0)]),
        queue(1_002, 3_000, &[(1_002, 0)]),
    ]);
    let d = diagnose(&c);
    let reset = of(&d, FindingKind::QueuedReset);
    assert!(
        reset[0].starts_with("2 requests reset or closed before any response byte after 1 action where a listening socket closed with an empty accept queue at its last sample: the samples do not show where these connections waited."),
        "{}",
        reset[0]
    );
    assert!(!reset[0].contains("tcp_migrate_req"), "{}", reset[0]);
    // Not credited: all 3 stay unexplained but the 1 the origin answered.
    assert_eq!(
        of(&d, FindingKind::Unexplained),
        [
            "2 of 3 failures not explained by the evidence recorded (see the failures table for their classes and times)."
        ]
    );
}

#[test]
fn refused_connects_in_a_gap_without_a_listener_and_lost_answers_are_explained() {
    // Restarts at 1 s and 2 s; nobody listened from 1.010 to 1.060 s and
    // from 2.010 to 2.040 s. The fixture attributes 9 refused connects to each.
    let mut c = case("restart");
    c.evidence = evidence(vec![
        queue(0, 1_010, &[(0, 0)]),
        queue(1_060, 2_010, &[(1_060, 0)]),
        queue(2_040, 3_000, &[(2_040, 0)]),
    ]);
    c.kernel = Some(KernelCounters {
        scope: CounterScope::CaseNetns,
        deltas: [("TcpAttemptFails".to_owned(), 18)].into_iter().collect(),
        from_ns: 0,
        to_ns: 3_000 * MS,
        netns_sysctls: Default::default(),
    });
    let ledger = c.ledger.as_mut().unwrap();
    ledger.lost_after_forwarding = Some(48);
    c.actions[0].lost_after_forwarding = Some(48);
    let d = diagnose(&c);
    let refused = of(&d, FindingKind::NoListener);
    assert_eq!(refused.len(), 1, "{d:#?}");
    assert!(refused[0].starts_with("18 connects refused: after 2 actions nobody listened on 127.0.0.1:8080 (2 gaps without a listening socket, the longest at most 50 ms"), "{}", refused[0]);
    assert!(refused[0].ends_with("The kernel counted 18 failed connection attempts in the case's namespace (TcpAttemptFails) against 18 refused at the client in the whole case."), "{}", refused[0]);
    let lost = of(&d, FindingKind::LostAfterForwarding);
    assert!(lost[0].starts_with("48 failed requests had been answered by the origin, but the answer never reached the client (48 after #0 restart): lost after forwarding, between the origin and the client. The action stopped the process that was relaying them."), "{}", lost[0]);
    // 117 failed: 18 refused + 48 lost explained; the 2 resets came after
    // sockets that closed with empty queues: not credited; 51 unexplained.
    assert_eq!(
        of(&d, FindingKind::Unexplained),
        [
            "51 of 117 failures not explained by the evidence recorded (see the failures table for their classes and times)."
        ]
    );
    // The fixture's restart ledger does not balance: said, with the equality.
    let unbalanced = of(&d, FindingKind::LedgerUnbalanced);
    assert!(
        unbalanced[0]
            .contains("client ok = origin answered ids - lost after forwarding (7,624 ≠ 7,626)"),
        "{}",
        unbalanced[0]
    );
}

#[test]
fn no_failure_across_reloads_says_how_the_socket_survived() {
    let mut c = case("reload with socket");
    c.evidence = evidence(vec![queue(0, 3_000, &[(0, 0), (1_001, 3), (1_003, 0)])]);
    let d = diagnose(&c);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].kind, FindingKind::NothingLost);
    assert!(
        d[0].text.starts_with("No request failed across 2 actions."),
        "{}",
        d[0].text
    );
    assert!(
        d[0].text
            .contains("One listening socket served the whole load"),
        "{}",
        d[0].text
    );
}

#[test]
fn a_case_without_actions_or_failures_has_nothing_to_say() {
    assert!(diagnose(&case("normal")).is_empty());
}

#[test]
fn kernel_counters_of_overflows_and_migrations_are_reported_with_their_scope() {
    let mut c = case("reload with socket");
    c.kernel = Some(KernelCounters {
        scope: CounterScope::CaseNetns,
        deltas: [
            ("TcpExtListenOverflows".to_owned(), 7),
            ("TcpExtListenDrops".to_owned(), 7),
            ("TcpExtTCPMigrateReqSuccess".to_owned(), 12),
        ]
        .into_iter()
        .collect(),
        from_ns: 0,
        to_ns: 3_000 * MS,
        netns_sysctls: Default::default(),
    });
    let d = diagnose(&c);
    let overflow = of(&d, FindingKind::ListenOverflow);
    assert!(
        overflow[0]
            .contains("7 times (TcpExtListenOverflows 7, ListenDrops 7; counters case netns)"),
        "{}",
        overflow[0]
    );
    let migrated = of(&d, FindingKind::Migrated);
    assert!(
        migrated[0].contains("moved 12 queued connections"),
        "{}",
        migrated[0]
    );
}

#[test]
fn the_report_has_a_diagnosis_section_with_each_cases_description() {
    let mut run = support::fixture();
    run.cases[2].description = "the new process binds its own socket".into();
    let md = render_markdown(&run);
    let at = md.find("## Diagnosis").expect("section");
    let section = &md[at..];
    assert!(
        section.contains("**reload without socket**\n*the new process binds its own socket*"),
        "{section}"
    );
    assert!(
        section.contains("- 2 of 3 failures not explained"),
        "{section}"
    );
}

#[test]
fn resets_are_credited_to_the_queue_no_more_than_connections_were_never_accepted() {
    // refproxy accepted every connection the client opened: none waited in
    // a queue until it was reset, whatever closed in the window.
    let mut c = case("reload without socket");
    let opened = c.load.connections;
    c.ledger
        .as_mut()
        .unwrap()
        .proxy
        .as_mut()
        .unwrap()
        .total
        .accepted = opened;
    c.evidence = evidence(vec![
        queue(0, 1_030, &[(0, 0), (1_025, 12)]),
        queue(1_002, 3_000, &[(1_002, 0)]),
    ]);
    let d = diagnose(&c);
    let reset = of(&d, FindingKind::QueuedReset);
    assert!(
        reset[0].contains("so at most 0 of them were connections reset in a queue"),
        "{}",
        reset[0]
    );
    assert_eq!(
        of(&d, FindingKind::Unexplained),
        [
            "2 of 3 failures not explained by the evidence recorded (see the failures table for their classes and times)."
        ]
    );
}

#[test]
fn sockets_listed_out_of_close_order_are_counted_once_per_action() {
    // Sockets come in inode order: closes in actions 1, 0, 1.
    let mut c = case("reload without socket");
    c.evidence = evidence(vec![
        queue(1_002, 2_030, &[(2_025, 3)]),
        queue(0, 1_030, &[(1_025, 12)]),
        queue(2_001, 2_040, &[(2_030, 2)]),
        queue(2_035, 3_000, &[]),
    ]);
    let d = diagnose(&c);
    let reset = of(&d, FindingKind::QueuedReset);
    assert!(reset[0].contains("after 2 actions"), "{}", reset[0]);
}

#[test]
fn text_from_a_run_cannot_break_the_markdown_report() {
    let mut run = support::fixture();
    run.cases[1].error = Some("boom\n\n# ✅ passed <script>x</script>".into());
    run.cases[1].description = "a <img src=x onerror=y> b".into();
    let md = render_markdown(&run);
    assert!(!md.contains("<script>") && !md.contains("<img"), "{md}");
    assert!(!md.contains("\n# ✅ passed"), "{md}");
}
