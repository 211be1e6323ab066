//! Charts of a run far larger than the seed stay bounded: a synthetic run of
//! 10 cases × 36,000 buckets (an hour at 100 ms) × 1,000 actions each
//! renders the timeline and the accept-queue chart as SVGs under a fixed
//! byte bound and PNGs whose size depends only on the number of cases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reloadbench_reports::export::chart::{Chart, render_png, render_svg};
use reloadbench_reports::synthetic::{Shape, run};

/// Most bytes of the timeline and accept-queue SVGs of the large run, in
/// its worst form: every action of the restart and naive cases loses
/// requests, so every pixel column of their timelines draws a failure bar
/// (measured 1.08 MB and 56 KB; with one action in 7 failing, 0.73 MB; before
/// aggregation this run drew an 18 MB timeline and a 3.3 MB accept-queue
/// chart).
const SVG_BOUND: usize = 1_200_000;

fn png_size(bytes: &[u8]) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().expect("PNG decodes");
    (reader.info().width, reader.info().height)
}

#[test]
fn timeline_and_accept_queue_of_an_hour_of_10_cases_and_10000_actions_are_bounded() {
    let big = run(Shape {
        cases: 10,
        buckets: 36_000,
        actions: 1_000,
        failing_every: 1,
    });
    let small = run(Shape {
        cases: 10,
        buckets: 10,
        actions: 1,
        failing_every: 1,
    });
    for chart in [Chart::Timeline, Chart::AcceptQueue] {
        let svg = render_svg(chart, &big).unwrap();
        if let Some(dir) = std::env::var_os("RELOADBENCH_CHART_DUMP") {
            std::fs::create_dir_all(&dir).unwrap();
            let path = std::path::Path::new(&dir).join(format!("scale-{}.svg", chart.stem()));
            std::fs::write(path, &svg).unwrap();
        }
        eprintln!("{}: {} bytes of SVG", chart.stem(), svg.len());
        assert!(
            svg.len() < SVG_BOUND,
            "{}: {} bytes of SVG",
            chart.stem(),
            svg.len()
        );
        match chart {
            // One area per case for 1,000 sockets, not a line and a legend entry each.
            Chart::AcceptQueue => {
                assert_eq!(svg.matches("max of 1000 sockets").count(), 10);
                assert!(!svg.contains("socket 1: max"));
                assert_eq!(svg.matches("actions (rug)").count(), 10);
            }
            // Failing actions labelled in the lossy cases (restart, naive: 6 of 10).
            _ => assert_eq!(svg.matches("labelled ").count(), 6),
        }
        let png = render_png(chart, &big).unwrap();
        eprintln!("{}: {} bytes of PNG", chart.stem(), png.len());
        // Width fixed, height by the number of cases only.
        assert_eq!(png_size(&png), chart.size(&small), "{}", chart.stem());
        assert_eq!(chart.size(&small).0, 1200);
    }
}

#[test]
fn actions_two_pixels_apart_draw_a_bounded_rug() {
    // 417 actions on 834 px: a tick every 2 px, the most separate ticks a
    // rug could have without joining them.
    let run = run(Shape {
        cases: 10,
        buckets: 3_600,
        actions: 417,
        failing_every: 1,
    });
    for (chart, bound) in [(Chart::Timeline, SVG_BOUND), (Chart::AcceptQueue, 300_000)] {
        let svg = render_svg(chart, &run).unwrap();
        eprintln!("{}: {} bytes of SVG", chart.stem(), svg.len());
        assert!(svg.len() < bound, "{}: {} bytes", chart.stem(), svg.len());
    }
}
