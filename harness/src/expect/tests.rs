//! Evaluation of every metric and operator against hand-built case reports.

use reloadbench_model::load::{
    Bucket, BucketLatency, ClassCount, ConnectionTimes, LatencySummary, LoadConfigSummary,
    LoadReport, Percentile,
};
use reloadbench_model::outcome::{AbView, FailureClass};
use reloadbench_model::run::{ActionKind, ActionReport, CaseReport, ClassTotal, CpuUsage};

use super::*;

fn bucket(start_ms: u64, ok: u64, p99_us: u64) -> Bucket {
    Bucket {
        start_ns: start_ms * 1_000_000,
        ok,
        failed: Vec::new(),
        latency: BucketLatency {
            p99_us,
            ..BucketLatency::default()
        },
        connections: 0,
        failed_retryable: 0,
        handshakes: Default::default(),
        goaways: 0,
    }
}

fn action(kind: ActionKind, trigger_ms: u64, failures: &[(FailureClass, u64)]) -> ActionReport {
    ActionReport {
        index: 0,
        kind,
        mode: None,
        label: "reload".into(),
        trigger_ns: trigger_ms * 1_000_000,
        ready_ns: Some(trigger_ms * 1_000_000 + 40_000_000),
        drained_ns: None,
        exited_ns: None,
        ok: true,
        error: None,
        failures: failures
            .iter()
            .map(|&(class, count)| ClassTotal { class, count })
            .collect(),
        disruption_start_ns: None,
        disruption_end_ns: None,
        recovery_ns: None,
        kernel: None,
        lost_after_forwarding: None,
        observed: None,
    }
}

/// 2 s, 9,990 ok, 10 failed (7 refused, 3 reset), buckets of 100 ms with p99
/// 1 ms except 4 ms in the 1.0–1.1 s bucket, two reloads at 1.0 s and 1.5 s.
fn case() -> CaseReport {
    let mut buckets: Vec<Bucket> = (0..20).map(|i| bucket(i * 100, 500, 1_000)).collect();
    buckets[10].latency.p99_us = 4_000;
    buckets[19].ok = 490;
    let classes = vec![
        ClassCount {
            class: FailureClass::ConnectRefused,
            count: 7,
            on_reused: 0,
            first_ns: 0,
            last_ns: 0,
        },
        ClassCount {
            class: FailureClass::Reset,
            count: 3,
            on_reused: 2,
            first_ns: 0,
            last_ns: 0,
        },
    ];
    let load = LoadReport {
        schema_version: 1,
        config: LoadConfigSummary {
            url: "http://127.0.0.1:1/".into(),
            method: "GET".into(),
            concurrency: 10,
            requests: Some(10_000),
            duration_ms: None,
            rate: None,
            keep_alive: false,
            timeout_ms: 10_000,
            bucket_ms: 100,
            mix: Vec::new(),
            retry: Default::default(),
            think_time_ms: None,
            tls: None,
        },
        started_mono_ns: 1,
        elapsed_ns: 2_000_000_000,
        planned: 10_000,
        ok: 9_990,
        failed: 10,
        not_started: 0,
        failed_on_reused: 2,
        body_bytes: 0,
        total_bytes: 0,
        connections: 10_000,
        refused_backoff_ns: 0,
        server_software: None,
        document_length: None,
        classes,
        ab: AbView {
            connect: 7,
            receive: 3,
            ..AbView::default()
        },
        latency: LatencySummary {
            count: 9_990,
            min_us: 100,
            mean_us: 800.0,
            stdev_us: 10.0,
            max_us: 12_000,
            percentiles: [(50.0, 700), (90.0, 900), (99.0, 2_500), (99.9, 9_000)]
                .into_iter()
                .map(|(p, us)| Percentile { p, us })
                .collect(),
        },
        connection_times: ConnectionTimes::default(),
        schedule: None,
        buckets,
        failures: Vec::new(),
        failures_dropped: 0,
        failed_retryable: 0,
        failed_not_retryable: 10,
        retries: 0,
        stale_discarded: 0,
        methods: Vec::new(),
        after_retry: None,
        tls: None,
        h2: None,
        ws: None,
        stream: None,
    };
    let mut second = action(ActionKind::Reload, 1_500, &[(FailureClass::Reset, 3)]);
    second.ok = false;
    second.ready_ns = Some(1_500_000_000 + 120_000_000);
    CaseReport {
        name: "c".into(),
        description: String::new(),
        load,
        actions: vec![
            action(
                ActionKind::Reload,
                1_000,
                &[(FailureClass::ConnectRefused, 7)],
            ),
            second,
            action(ActionKind::Signal, 1_800, &[]),
        ],
        expectations: Vec::new(),
        cpu: CpuUsage::default(),
        error: None,
        diagnosis: Vec::new(),
        trial: None,
        kernel: None,
        machine: None,
        ledger: Some(reloadbench_model::ledger::Ledger {
            origin: Some(Default::default()),
            lost_after_forwarding: Some(0),
            balanced: true,
            ..Default::default()
        }),
        evidence: None,
        old_generations_max: None,
        generations: None,
    }
}

fn actual(key: &str) -> Option<f64> {
    Metric::from_key(key)
        .unwrap_or_else(|| panic!("unknown {key}"))
        .measure(&case())
}

fn check(key: &str, cond: &str) -> bool {
    let e = parse_condition(key, &toml::Value::String(cond.into())).unwrap();
    e.evaluate(&case()).passed
}

#[test]
fn counters_and_classes_are_measured() {
    assert_eq!(actual("failed"), Some(10.0));
    assert_eq!(actual("ok"), Some(9_990.0));
    assert_eq!(actual("not_started"), Some(0.0));
    assert_eq!(actual("failed_on_reused"), Some(2.0));
    assert_eq!(actual("failed_ratio"), Some(0.001));
    assert_eq!(actual("connect_refused"), Some(7.0));
    assert_eq!(actual("reset"), Some(3.0));
    assert_eq!(actual("truncated"), Some(0.0));
    assert_eq!(actual("ab_connect"), Some(7.0));
    assert_eq!(actual("ab_receive"), Some(3.0));
    assert_eq!(actual("ab_length"), Some(0.0));
    assert_eq!(actual("ab_exceptions"), Some(0.0));
    assert_eq!(actual("ab_write_errors"), Some(0.0));
    assert_eq!(actual("ab_non_2xx"), Some(0.0));
    assert_eq!(actual("rps"), Some(5_000.0));
    assert_eq!(actual("ok_rps"), Some(4_995.0));
}

#[test]
fn latency_is_in_milliseconds() {
    assert_eq!(actual("p50_ms"), Some(0.7));
    assert_eq!(actual("p90_ms"), Some(0.9));
    assert_eq!(actual("p99_ms"), Some(2.5));
    assert_eq!(actual("p999_ms"), Some(9.0));
    assert_eq!(actual("max_ms"), Some(12.0));
    assert_eq!(actual("mean_ms"), Some(0.8));
}

#[test]
fn reload_metrics_take_the_worst_reload() {
    assert_eq!(actual("per_reload.failed"), Some(7.0));
    assert_eq!(actual("per_reload.reset"), Some(3.0));
    assert_eq!(actual("per_reload.connect_refused"), Some(7.0));
    assert_eq!(actual("reload_failed"), Some(1.0));
    assert_eq!(actual("reload_time_ms"), Some(120.0));
}

#[test]
fn p99_reload_ratio_compares_window_buckets_with_the_rest() {
    // Windows [1.0 s, 1.04 s) and [1.5 s, 1.62 s) overlap buckets 10, 15 and 16:
    // mean p99 inside = (4 + 1 + 1) / 3 ms = 2 ms, outside 1 ms.
    let r = actual("p99_reload_ratio").unwrap();
    assert!((r - 2.0).abs() < 1e-9, "{r}");
    let mut quiet = case();
    quiet.actions.clear();
    assert_eq!(Metric::P99ReloadRatio.measure(&quiet), None);
    assert_eq!(Metric::PerReloadFailed.measure(&quiet), None);
    assert_eq!(Metric::ReloadFailed.measure(&quiet), None);
}

#[test]
fn every_operator_compares() {
    assert!(check("failed", "= 10"));
    assert!(check("failed", "== 10"));
    assert!(check("failed", "10"));
    assert!(!check("failed", "!= 10"));
    assert!(check("failed", "< 11"));
    assert!(!check("failed", "< 10"));
    assert!(check("failed", "<= 10"));
    assert!(check("failed", "> 9"));
    assert!(!check("failed", "> 10"));
    assert!(check("failed", ">= 10"));
    assert!(check("failed_ratio", "<= 0.001"));
    assert!(check("rps", ">= 1_000"));
}

#[test]
fn numbers_mean_equality_and_expr_keeps_the_text() {
    let e = parse_condition("failed", &toml::Value::Integer(0)).unwrap();
    assert_eq!(
        (e.op, e.value, e.expr.as_str()),
        (Op::Eq, 0.0, "failed = 0")
    );
    let r = e.evaluate(&case());
    assert_eq!((r.actual, r.passed), (Some(10.0), false));
    let e = parse_condition("failed_ratio", &toml::Value::String("< 0.001".into())).unwrap();
    assert_eq!(e.expr, "failed_ratio < 0.001");
    let e = parse_condition("p99_ms", &toml::Value::Float(2.5)).unwrap();
    assert!(e.evaluate(&case()).passed);
    let e = parse_condition("per_reload.failed", &toml::Value::String("<=1".into())).unwrap();
    assert_eq!(e.expr, "per_reload.failed <= 1");
    let all = evaluate(&[e], &case());
    assert_eq!(all[0].actual, Some(7.0));
    assert!(!all[0].passed);
}

#[test]
fn a_metric_that_cannot_be_computed_fails() {
    let mut c = case();
    c.load.latency = LatencySummary::default();
    let e = parse_condition("p99_ms", &toml::Value::String("< 1000".into())).unwrap();
    let r = e.evaluate(&c);
    assert_eq!((r.actual, r.passed), (None, false));
}

#[test]
fn bad_keys_and_conditions_are_errors() {
    let s = |t: &str| toml::Value::String(t.into());
    assert!(matches!(
        parse_condition("fails", &s("0")),
        Err(ExpectParseError::UnknownMetric { .. })
    ));
    assert!(matches!(
        parse_condition("per_reload.nope", &s("0")),
        Err(ExpectParseError::UnknownMetric { .. })
    ));
    assert!(matches!(
        parse_condition("failed", &s("about 5")),
        Err(ExpectParseError::BadCondition { .. })
    ));
    assert!(matches!(
        parse_condition("failed", &s("<")),
        Err(ExpectParseError::BadCondition { .. })
    ));
    assert!(matches!(
        parse_condition("failed", &toml::Value::Boolean(true)),
        Err(ExpectParseError::BadType { .. })
    ));
}

#[test]
fn unknown_metric_suggests_the_closest_key() {
    let e = parse_condition("fails", &toml::Value::Integer(0)).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("unknown metric \"fails\" (did you mean \"failed\"?); known: failed,"),
        "{msg}"
    );
    let e = parse_condition("latency", &toml::Value::Integer(0)).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("unknown metric \"latency\"; known:"),
        "{e}"
    );
}

#[test]
fn every_key_round_trips() {
    // A case over TLS and HTTP/2 measures every metric.
    let mut c = tls_case();
    c.load.h2 = h2_case().load.h2;
    c.load.buckets[10].goaways = 2;
    c.load.ws = ws_case().load.ws;
    c.old_generations_max = Some(2);
    for key in Metric::all_keys() {
        let m = Metric::from_key(&key).unwrap();
        assert_eq!(m.key(), key);
        assert!(m.measure(&c).is_some(), "{key} not measured");
    }
}

#[test]
fn ledger_metrics_read_the_ledger_and_are_unmeasured_without_origin_counts() {
    use reloadbench_model::ledger::{Ledger, OriginSide};
    let mut c = case();
    c.ledger = None;
    let m = |c: &CaseReport, key: &str| Metric::from_key(key).unwrap().measure(c);
    assert_eq!(m(&c, "lost_after_forwarding"), None);
    assert_eq!(m(&c, "ledger_balanced"), None);
    c.ledger = Some(Ledger {
        lost_after_forwarding: Some(4),
        balanced: true,
        ..Ledger::default()
    });
    assert_eq!(m(&c, "lost_after_forwarding"), Some(4.0));
    assert_eq!(
        m(&c, "ledger_balanced"),
        None,
        "no origin counts: not measured"
    );
    let l = c.ledger.as_mut().unwrap();
    l.origin = Some(OriginSide::default());
    assert_eq!(m(&c, "ledger_balanced"), Some(1.0));
    c.ledger.as_mut().unwrap().balanced = false;
    assert_eq!(m(&c, "ledger_balanced"), Some(0.0));
}

#[test]
fn retry_and_per_method_metrics_read_the_per_method_counts_and_failure_kinds() {
    use reloadbench_model::load::{FailureRecord, MethodCounts, RequestKindSummary};
    let mut c = case();
    let kind = |method: &str| RequestKindSummary {
        weight: 1,
        method: method.into(),
        path: "/".into(),
        body_bytes: 0,
    };
    c.load.config.mix = vec![kind("GET"), kind("POST")];
    let counts = |method: &str, ok, failed| MethodCounts {
        method: method.into(),
        ok,
        failed,
        failed_retryable: 0,
        failed_not_retryable: failed,
        retries: 0,
        failed_by_class: Default::default(),
        after_retry: None,
    };
    c.load.methods = vec![counts("GET", 7_990, 6), counts("POST", 2_000, 4)];
    c.load.failed_retryable = 3;
    c.load.failed_not_retryable = 7;
    c.load.retries = 3;
    // Failures at 1.01 s (first reload's window): 2 POST, 1 GET; at 1.51 s
    // (second reload's): 1 POST.
    let f = |t_ms: u64, kind: u16| FailureRecord {
        t_ns: t_ms * 1_000_000,
        start_ns: 0,
        class: FailureClass::Reset,
        reused: true,
        id: None,
        retryable: kind == 0,
        kind,
    };
    c.load.failures = vec![f(1_010, 1), f(1_011, 0), f(1_012, 1), f(1_510, 1)];
    c.actions[0].disruption_start_ns = Some(1_010_000_000);
    c.actions[0].disruption_end_ns = Some(1_012_000_000);
    c.actions[1].disruption_start_ns = Some(1_510_000_000);
    c.actions[1].disruption_end_ns = Some(1_510_000_000);
    let m = |c: &CaseReport, key: &str| Metric::from_key(key).unwrap().measure(c);
    assert_eq!(m(&c, "failed.POST"), Some(4.0));
    assert_eq!(m(&c, "failed.GET"), Some(6.0));
    assert_eq!(m(&c, "failed.PUT"), None, "not sent: not measured");
    assert_eq!(m(&c, "per_reload.failed.POST"), Some(2.0));
    assert_eq!(m(&c, "per_reload.failed.GET"), Some(1.0));
    assert_eq!(m(&c, "failed_retryable"), Some(3.0));
    assert_eq!(m(&c, "failed_not_retryable"), Some(7.0));
    assert_eq!(m(&c, "retries"), Some(3.0));
    // A capped failure list cannot be split per reload exactly.
    c.load.failures_dropped = 1;
    assert_eq!(m(&c, "per_reload.failed.POST"), None);
    // Method names are upper case, class keys lower case: no collision.
    assert_eq!(
        Metric::from_key("failed.POST"),
        Some(Metric::FailedMethod("POST".into()))
    );
    assert_eq!(Metric::from_key("failed.reset"), None);
    assert_eq!(Metric::from_key("failed."), None);
    assert_eq!(Metric::from_key("failed.123"), None);
    let e = parse_condition("failed.post", &toml::Value::Integer(0)).unwrap_err();
    assert!(
        e.to_string().contains("(did you mean \"failed.POST\"?)"),
        "{e}"
    );
    let e = Expectation::new(Metric::FailedMethod("POST".into()), Op::Eq, 0.0);
    assert_eq!(e.expr, "failed.POST = 0");
    let r = e.evaluate(&c);
    assert!(!r.passed);
    assert_eq!(r.actual, Some(4.0));
}

#[test]
fn a_single_method_file_without_per_method_counts_uses_its_method() {
    let c = case();
    assert!(c.load.methods.is_empty());
    let m = |key: &str| Metric::from_key(key).unwrap().measure(&c);
    assert_eq!(m("failed.GET"), Some(10.0));
    assert_eq!(m("failed.POST"), None);
}

/// [`case`] over TLS: 10 full and 490 resumed handshakes per bucket, but 250
/// and 250 in the bucket of the first reload; 2 failed handshakes.
fn tls_case() -> CaseReport {
    let mut c = case();
    for b in &mut c.load.buckets {
        b.handshakes.full = 10;
        b.handshakes.resumed = 490;
    }
    c.load.buckets[10].handshakes.full = 250;
    c.load.buckets[10].handshakes.resumed = 250;
    // The 2 failed handshakes, in the second after the first reload.
    c.load.buckets[12]
        .failed
        .push(reloadbench_model::load::BucketFailures {
            class: FailureClass::TlsHandshake,
            count: 2,
        });
    c.load.classes.push(ClassCount {
        class: FailureClass::TlsHandshake,
        count: 2,
        on_reused: 0,
        first_ns: 0,
        last_ns: 0,
    });
    c.load.tls = Some(reloadbench_model::load::TlsReport {
        protocol: Some("TLSv1.3".into()),
        cipher: None,
        resumption: true,
        handshakes: 10_002,
        full: 430,
        resumed: 9_570,
        failed: 2,
        handshake_time: LatencySummary {
            count: 10_000,
            percentiles: [(50.0, 400), (99.0, 3_000)]
                .into_iter()
                .map(|(p, us)| Percentile { p, us })
                .collect(),
            ..LatencySummary::default()
        },
        failed_by: Default::default(),
    });
    c
}

#[test]
fn tls_metrics_count_handshakes_and_take_the_worst_second_after_a_reload() {
    let c = tls_case();
    let m = |key: &str| Metric::from_key(key).unwrap().measure(&c);
    assert_eq!(m("tls_failed"), Some(2.0));
    // Resumed / handshakes, the failed ones included.
    assert_eq!(m("tls_resumed_ratio"), Some(9_570.0 / 10_002.0));
    assert_eq!(m("handshake_p99_ms"), Some(3.0));
    // Reload 1 ready at 1.04 s: buckets 10..=19 (340 full, 4660 resumed, 2 failed);
    // reload 2 ready at 1.62 s: buckets 16..=19 (40 full, 1960 resumed).
    assert_eq!(
        c.tls_resumed_ratios_after_reloads(),
        vec![Some(4_660.0 / 5_002.0), Some(1_960.0 / 2_000.0)]
    );
    assert_eq!(m("per_reload.tls_resumed_ratio"), Some(4_660.0 / 5_002.0));
    let e = parse_condition(
        "per_reload.tls_resumed_ratio",
        &toml::Value::String(">= 0.95".into()),
    )
    .unwrap();
    assert!(!e.evaluate(&c).passed);
    // A cleartext case has none of them.
    for key in [
        "tls_failed",
        "tls_resumed_ratio",
        "handshake_p99_ms",
        "per_reload.tls_resumed_ratio",
    ] {
        assert_eq!(
            Metric::from_key(key).unwrap().measure(&case()),
            None,
            "{key}"
        );
    }
    assert!(Metric::PerReloadTlsResumedRatio.needs_reloads());
}

/// [`case`] over HTTP/2: GOAWAYs in buckets 4 (no window), 10 and 12
/// (reload 1's window, 1.0–1.24 s), 15 (reload 2's, 1.5–1.8 s) and 18 (the
/// signal's); 4 streams lost, 3 of them in reload 2's window.
fn h2_case() -> CaseReport {
    let mut c = case();
    for (i, n) in [(4, 1), (10, 2), (12, 1), (15, 2), (18, 5)] {
        c.load.buckets[i].goaways = n;
    }
    c.load.classes.push(ClassCount {
        class: FailureClass::StreamLost,
        count: 4,
        on_reused: 4,
        first_ns: 0,
        last_ns: 0,
    });
    c.actions[1].failures.push(ClassTotal {
        class: FailureClass::StreamLost,
        count: 3,
    });
    c.load.h2 = Some(reloadbench_model::load::H2Report {
        streams: 10,
        goaway: 11,
        goaway_graceful: 11,
        lost: 4,
        ..Default::default()
    });
    c
}

#[test]
fn h2_metrics_count_goaways_per_reload_and_the_stream_classes() {
    let c = h2_case();
    let m = |key: &str| Metric::from_key(key).unwrap().measure(&c);
    assert_eq!(m("goaway"), Some(11.0));
    // Reload 1: 2 + 1; reload 2: 2; bucket 18 is the signal's, bucket 4 nobody's.
    assert_eq!(super::goaway::per_reload(&c), vec![3, 2]);
    assert_eq!(m("per_reload.goaway"), Some(3.0));
    assert_eq!(m("stream_lost"), Some(4.0));
    assert_eq!(m("per_reload.stream_lost"), Some(3.0));
    assert_eq!(m("goaway_refused"), Some(0.0));
    assert_eq!(m("per_reload.stream_reset"), Some(0.0));
    let e = parse_condition("per_reload.goaway", &toml::Value::String("<= 2".into())).unwrap();
    assert!(!e.evaluate(&c).passed);
    // An HTTP/1.1 case received no GOAWAY: not measured.
    for key in ["goaway", "per_reload.goaway"] {
        assert_eq!(
            Metric::from_key(key).unwrap().measure(&case()),
            None,
            "{key}"
        );
    }
    assert!(Metric::PerReloadGoaway.needs_reloads() && !Metric::Goaway.needs_reloads());
}

/// [`case`] under a WebSocket load: cuts in buckets 4 (no window), 10 and 12
/// (reload 1's window, 1.0–1.24 s) and 15 (reload 2's, 1.5–1.8 s); clean
/// closes and lost messages only in reload 2's; a failed open in the
/// signal's bucket 18; reconnect p99 12.5 ms.
fn ws_case() -> CaseReport {
    use reloadbench_model::ws::{WsBuckets, WsReport};
    let mut c = case();
    c.load.ws = Some(WsReport {
        opened: 30,
        failed: 1,
        closed_cleanly: 4,
        cut: 6,
        open_at_end: 20,
        sent: 1000,
        echoed: 993,
        lost: 7,
        reconnect_time: LatencySummary {
            count: 10,
            percentiles: vec![Percentile {
                p: 99.0,
                us: 12_500,
            }],
            ..LatencySummary::default()
        },
        buckets: WsBuckets {
            width_ns: 100_000_000,
            cut: vec![(4, 1), (10, 2), (12, 1), (15, 2)],
            closed_cleanly: vec![(15, 4)],
            lost: vec![(15, 7)],
            failed: vec![(18, 1)],
            ..WsBuckets::default()
        },
        ..WsReport::default()
    });
    c
}

#[test]
fn ws_metrics_count_connection_ends_and_lost_messages_in_total_and_per_reload() {
    let c = ws_case();
    let m = |key: &str| Metric::from_key(key).unwrap().measure(&c);
    assert_eq!(m("ws_cut"), Some(6.0));
    assert_eq!(m("ws_closed"), Some(4.0));
    assert_eq!(m("ws_failed"), Some(1.0));
    assert_eq!(m("messages_lost"), Some(7.0));
    assert_eq!(m("reconnect_p99_ms"), Some(12.5));
    // 7 lost over 4 + 6 ended connections.
    assert_eq!(m("messages_lost_per_close"), Some(0.7));
    let mut none_ended = c.clone();
    if let Some(w) = none_ended.load.ws.as_mut() {
        (w.closed_cleanly, w.cut) = (0, 0);
    }
    assert_eq!(
        Metric::from_key("messages_lost_per_close")
            .unwrap()
            .measure(&none_ended),
        None
    );
    // Reload 1: 2 + 1 cuts; reload 2: 2; bucket 4 is nobody's.
    assert_eq!(super::ws::per_reload(&c, WsMetric::Cut), Some(vec![3, 2]));
    assert_eq!(m("per_reload.ws_cut"), Some(3.0));
    assert_eq!(m("per_reload.ws_closed"), Some(4.0));
    assert_eq!(m("per_reload.messages_lost"), Some(7.0));
    // The failed open is the signal's, no reload's.
    assert_eq!(m("per_reload.ws_failed"), Some(0.0));
    let e = parse_condition("per_reload.ws_cut", &toml::Value::String("<= 2".into())).unwrap();
    assert!(!e.evaluate(&c).passed);
    // A request load holds no WebSocket: not measured, so an expectation fails.
    for key in [
        "ws_cut",
        "ws_closed",
        "ws_failed",
        "messages_lost",
        "reconnect_p99_ms",
        "per_reload.ws_cut",
        "messages_lost_per_close",
    ] {
        assert_eq!(
            Metric::from_key(key).unwrap().measure(&case()),
            None,
            "{key}"
        );
    }
    assert!(Metric::PerReloadWs(WsMetric::Cut).needs_reloads());
    assert!(!Metric::Ws(WsMetric::Cut).needs_reloads());
    // Old generations come from the proxy's events: absent, not measured.
    let m = Metric::from_key("old_generations_max").unwrap();
    assert_eq!(m.measure(&c), None);
    let mut held = c.clone();
    held.old_generations_max = Some(3);
    assert_eq!(m.measure(&held), Some(3.0));
    // `truncated` (a streamed response cut mid-body) is a failure class.
    assert_eq!(
        Metric::from_key("truncated"),
        Some(Metric::Class(FailureClass::Truncated))
    );
}
