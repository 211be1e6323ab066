//! Chart tests: every figure renders from the fixture as SVG and PNG with the
//! expected size, and the SVG carries the labels a reader needs.
//!
//! Set `RELOADBENCH_CHART_DUMP=<dir>` to also write the rendered files there
//! for looking at them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reloadbench_reports::export::chart::{Chart, render_png, render_svg};

fn dump(name: &str, bytes: &[u8]) {
    if let Some(dir) = std::env::var_os("RELOADBENCH_CHART_DUMP") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(std::path::Path::new(&dir).join(name), bytes).unwrap();
    }
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().expect("PNG decodes");
    let info = reader.info();
    (info.width, info.height)
}

#[test]
fn every_chart_renders_as_svg_and_png_of_the_announced_size() {
    let run = support::fixture();
    for chart in Chart::ALL {
        let svg = render_svg(chart, &run).unwrap();
        let png = render_png(chart, &run).unwrap();
        dump(&format!("{}.svg", chart.stem()), svg.as_bytes());
        dump(&format!("{}.png", chart.stem()), &png);
        let (w, h) = chart.size(&run);
        assert!(
            svg.starts_with("<svg"),
            "{} is an SVG document",
            chart.stem()
        );
        assert!(
            svg.contains(&format!("width=\"{w}\"")),
            "{} SVG width",
            chart.stem()
        );
        assert_eq!(png_size(&png), (w, h), "{} PNG size", chart.stem());
    }
}

#[test]
fn timeline_shows_every_case_and_labels_its_actions() {
    let run = support::fixture();
    let svg = render_svg(Chart::Timeline, &run).unwrap();
    for case in &run.cases {
        assert!(svg.contains(&case.name), "panel of {}", case.name);
    }
    for label in [
        "restart",
        "reload (naive)",
        "reload (fd-pass)",
        "action triggered",
        "new process ready",
    ] {
        assert!(svg.contains(label), "marker label {label:?}");
    }
    for axis in [
        "ok requests/s",
        "latency ms (log)",
        "time since load start (s)",
        "failed per 100 ms",
    ] {
        assert!(svg.contains(axis), "axis {axis:?}");
    }
}

#[test]
fn timeline_panels_state_their_failures_so_small_counts_are_not_lost() {
    let run = support::fixture();
    let svg = render_svg(Chart::Timeline, &run).unwrap();
    for caption in [
        "normal: no failed requests",
        "restart: 117 failed requests, at most 55 per 100 ms",
        "reload without socket: 3 failed requests, at most 2 per 100 ms",
        "reload with socket: no failed requests",
    ] {
        assert!(svg.contains(caption), "panel caption {caption:?}");
    }
    // Failures attributed to each action, written at its marker.
    for count in ["59 failed", "58 failed", "2 failed", "1 failed"] {
        assert!(svg.contains(count), "action failure count {count:?}");
    }
    // Only the panels with failures get a failures axis.
    assert_eq!(svg.matches("failed per 100 ms").count(), 2);
}

#[test]
fn other_charts_carry_their_labels() {
    let run = support::fixture();
    let failures = render_svg(Chart::Failures, &run).unwrap();
    assert!(failures.contains("117 failed") && failures.contains("truncated response"));
    // The tallest class segment (restart: 96 truncated responses) carries its count.
    assert!(failures.lines().any(|l| l.trim() == "96"), "segment count");
    let spectrum = render_svg(Chart::Spectrum, &run).unwrap();
    for label in ["50%", "99%", "99.9%", "99.99%", "max", "reload with socket"] {
        assert!(spectrum.contains(label), "spectrum label {label:?}");
    }
    let reload = render_svg(Chart::ReloadTime, &run).unwrap();
    for label in [
        "restart #0: restart",
        "ready 182 ms",
        "reload with socket #1: reload (fd-pass)",
    ] {
        assert!(reload.contains(label), "reload time label {label:?}");
    }
}

#[test]
fn degenerate_runs_render_without_panicking() {
    let mut empty = support::fixture();
    empty.cases.clear();
    let mut dead = support::fixture();
    dead.cases.truncate(1);
    let case = &mut dead.cases[0];
    case.name = "nothing answered".into();
    case.load.ok = 0;
    case.load.latency = Default::default();
    case.load.buckets.clear();
    case.error = Some("origin did not start".into());
    case.actions = support::fixture().cases[1].actions.clone();
    for a in &mut case.actions {
        a.ready_ns = None;
        a.drained_ns = None;
        a.ok = false;
    }
    for run in [&empty, &dead] {
        for chart in Chart::ALL {
            let (w, h) = chart.size(run);
            let png = render_png(chart, run).unwrap();
            dump(
                &format!("degenerate-{}-{}.png", run.cases.len(), chart.stem()),
                &png,
            );
            assert_eq!(png_size(&png), (w, h));
            render_svg(chart, run).unwrap();
        }
        let md = reloadbench_reports::render_markdown(run);
        assert!(md.contains("## Summary"));
    }
    let md = reloadbench_reports::render_markdown(&dead);
    assert!(
        md.contains("did not run to its end: origin did not start"),
        "{md}"
    );
    assert!(md.contains("❌ failed"));
}

/// The fixture with `n` fd-pass actions `spacing_ms` apart in its last case.
fn with_actions(n: u32, spacing_ms: u64) -> reloadbench_reports::RunReport {
    let mut run = support::fixture();
    run.cases.truncate(4);
    let case = &mut run.cases[3];
    let template = case.actions[0].clone();
    case.actions = (0..n)
        .map(|i| {
            let mut a = template.clone();
            a.index = i;
            a.trigger_ns = u64::from(i) * spacing_ms * 1_000_000;
            a.ready_ns = Some(a.trigger_ns + 20_000_000);
            a
        })
        .collect();
    run
}

#[test]
fn close_actions_keep_every_marker_but_only_labels_that_fit() {
    // 10 actions 290 ms apart on a 3 s axis of 834 px: 80 px apart, at most
    // 2 in any 100 px, so still lines; their labels are wider than that.
    let run = with_actions(10, 290);
    let svg = render_svg(Chart::Timeline, &run).unwrap();
    let labels = svg.matches("reload (fd-pass)").count();
    assert!((2..10).contains(&labels), "{labels} labels for 10 actions");
    assert!(!svg.contains("(rug)"));
}

#[test]
fn dense_actions_become_a_rug_counted_per_bin() {
    // 50 actions 50 ms apart: 14 px apart, 7 in 100 px.
    let run = with_actions(50, 50);
    let svg = render_svg(Chart::Timeline, &run).unwrap();
    // None failed, so none is labelled; the legend names the rug.
    assert_eq!(svg.matches("reload (fd-pass)").count(), 0);
    assert!(svg.contains("reloads (rug)"));
    // The band counts every action once.
    let counted: u64 = svg
        .lines()
        .filter_map(|l| l.trim().strip_suffix(" reloads"))
        .map(|n| n.parse::<u64>().unwrap())
        .sum();
    assert_eq!(counted, 50);
    // The other panels are as they were: lines and labels.
    assert!(svg.contains("action triggered") && svg.contains("reload (naive)"));
}

/// Every chart of runs of one and of several cases, as SVG, has no shape of
/// negative size (a browser does not draw one, and reports it in its console:
/// the failures bar of a one-case run was drawn with a width of -80).
#[test]
fn no_svg_shape_has_a_negative_size() {
    let mut one = support::fixture();
    one.cases.truncate(2);
    one.cases.remove(0);
    assert!(one.cases[0].load.failed > 0);
    for run in [support::fixture(), one] {
        for chart in Chart::ALL {
            let svg = render_svg(chart, &run).unwrap();
            for bad in ["width=\"-", "height=\"-"] {
                assert!(
                    !svg.contains(bad),
                    "{} cases, {}: {}",
                    run.cases.len(),
                    chart.stem(),
                    svg.lines().find(|l| l.contains(bad)).unwrap_or_default()
                );
            }
        }
    }
}
