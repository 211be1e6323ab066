//! The TLS table and the handshake strip of the timeline: present for a run
//! whose cases spoke TLS, with the numbers of its handshakes and of the
//! second after each reload; absent (report unchanged) for a cleartext run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reloadbench_model::load::{LatencySummary, Percentile, TlsReport};
use reloadbench_reports::RunReport;
use reloadbench_reports::export::chart::{Chart, render_svg};

/// The fixture with TLS on its fd-pass case (index 3): 9 full and 91
/// resumed handshakes per bucket, but 60 full and 40 resumed in the bucket
/// where the first reload's new process became ready.
fn tls_fixture() -> RunReport {
    let mut r = support::fixture();
    let case = &mut r.cases[3];
    let ready = case.actions[0].ready_ns.expect("the reload was ready");
    let width = case.load.config.bucket_ns();
    for b in &mut case.load.buckets {
        b.handshakes.full = 9;
        b.handshakes.resumed = 91;
        if b.start_ns <= ready && ready < b.start_ns + width {
            b.handshakes.full = 60;
            b.handshakes.resumed = 40;
        }
    }
    let full: u64 = case.load.buckets.iter().map(|b| b.handshakes.full).sum();
    let resumed: u64 = case.load.buckets.iter().map(|b| b.handshakes.resumed).sum();
    case.load.tls = Some(TlsReport {
        protocol: Some("TLSv1.3".into()),
        cipher: Some("TLS13_AES_128_GCM_SHA256".into()),
        resumption: true,
        handshakes: full + resumed + 1,
        full,
        resumed,
        failed: 1,
        handshake_time: LatencySummary {
            count: full + resumed,
            percentiles: [(50.0, 420), (99.0, 2_350)]
                .into_iter()
                .map(|(p, us)| Percentile { p, us })
                .collect(),
            ..LatencySummary::default()
        },
        failed_by: Default::default(),
    });
    r
}

#[test]
fn a_tls_case_gets_a_row_of_handshakes_and_the_worst_second_after_a_reload() {
    let run = tls_fixture();
    let case = &run.cases[3];
    let tls = case.load.tls.as_ref().unwrap();
    let lowest = case.lowest_tls_resumed_ratio_after_reload().unwrap();
    assert!(lowest < 0.91 && lowest > 0.4, "{lowest}");
    let md = reloadbench_reports::render_markdown(&run);
    assert!(md.contains("### TLS handshakes"), "{md}");
    let row = md
        .lines()
        .find(|l| l.starts_with(&format!("| {} |", case.name)) && l.contains("| TLSv1.3 |"))
        .expect("a TLS row for the fd-pass case");
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(
        &cells[1..11],
        &[
            case.name.as_str(),
            "TLSv1.3",
            &tls.handshakes.to_string(),
            &tls.full.to_string(),
            &tls.resumed.to_string(),
            "1",
            &format!("{:.3}", tls.resumed_ratio().unwrap()),
            &format!("{lowest:.3}"),
            "0.42",
            "2.35",
        ],
        "{row}"
    );
    // Only the TLS case has a row, and an ab block with its TLS lines.
    assert_eq!(md.matches("| TLSv1.3 |").count(), 1, "{md}");
    let ab = reloadbench_reports::ab_text(case);
    assert!(
        ab.contains("TLS protocol:           TLSv1.3, TLS13_AES_128_GCM_SHA256\n"),
        "{ab}"
    );
    let line = format!(
        "TLS handshakes:         {} (full {}, resumed {}, failed 1)\n",
        tls.handshakes, tls.full, tls.resumed
    );
    assert!(ab.contains(&line), "{ab}");
    assert!(
        ab.contains("Handshake time (ms)\n   50%      0\n   99%      2\n"),
        "{ab}"
    );
    assert!(!reloadbench_reports::ab_text(&run.cases[2]).contains("TLS"));
    let svg = render_svg(Chart::Timeline, &run).unwrap();
    if let Some(dir) = std::env::var_os("RELOADBENCH_CHART_DUMP") {
        let png = reloadbench_reports::export::chart::render_png(Chart::Timeline, &run).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(std::path::Path::new(&dir).join("timeline-tls.png"), png).unwrap();
    }
    assert!(svg.contains("full handshakes") && svg.contains("resumed handshakes"));
    assert!(svg.contains("handshakes per 100 ms"));
    let (_, h) = Chart::Timeline.size(&run);
    let (_, plain_h) = Chart::Timeline.size(&support::fixture());
    assert!(
        h > plain_h,
        "the TLS case's panel has its strip: {h} vs {plain_h}"
    );
}

#[test]
fn a_cleartext_run_has_no_tls_table_and_no_handshake_strip() {
    let run = support::fixture();
    let md = reloadbench_reports::render_markdown(&run);
    assert!(!md.contains("TLS handshakes"));
    let svg = render_svg(Chart::Timeline, &run).unwrap();
    assert!(!svg.contains("handshakes"));
}

#[test]
fn the_load_sentence_states_the_tls_options_of_the_load() {
    let mut run = support::fixture();
    for case in &mut run.cases {
        case.load.config.requests = Some(1_000);
        case.load.config.tls = Some(reloadbench_model::load::TlsSummary {
            version: None,
            insecure: false,
            ca_file: Some("run/ca.pem".into()),
            resume: true,
        });
    }
    let md = reloadbench_reports::render_markdown(&run);
    assert!(
        md.contains(
            "time buckets of 100 ms. Over TLS 1.2 and 1.3, certificate checked against \
             run/ca.pem, resumption on."
        ),
        "{md}"
    );
    // Another option on one case: the cases no longer share one load sentence.
    let tls = run.cases[1].load.config.tls.as_mut().unwrap();
    tls.resume = false;
    tls.insecure = true;
    tls.version = Some("1.3".into());
    assert_eq!(
        tls.describe(),
        "TLS 1.3 only, certificate not verified (insecure), resumption off"
    );
    let md = reloadbench_reports::render_markdown(&run);
    assert!(!md.contains("Load of every case:"), "{md}");
    // A cleartext load says nothing of TLS.
    let md = reloadbench_reports::render_markdown(&support::fixture());
    assert!(!md.contains("resumption on"), "{md}");
}
