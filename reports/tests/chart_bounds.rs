//! Charts of large runs stay bounded: the reload-time chart switches from one
//! bar per action to distributions per case and phase above its threshold
//! (40 timed actions in the run), and the failures and spectrum charts do not
//! grow with actions, buckets or failure records.
//!
//! Set `RELOADBENCH_CHART_DUMP=<dir>` to also write the rendered files there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reloadbench_reports::RunReport;
use reloadbench_reports::export::chart::{Chart, render_png, render_svg};
use reloadbench_reports::synthetic::{Shape, run};

/// Height of the distribution form: 180 px of title, legend and axis plus
/// 5 rows of 26 px per case, whatever the number of actions.
const fn distribution_height(cases: u32) -> u32 {
    180 + cases * 5 * 26
}

/// Upper bound of the reload-time SVG of the synthetic 10,000-action run
/// (its times are whole milliseconds: a few dozen bins per row).
const SVG_BOUND: usize = 400_000;

/// Upper bound of the reload-time SVG when the times fill every bin. Every
/// shape is per row or per 2-pixel bin: 30 rows × 353 bins × (dots + ticks)
/// is at most 21,180 rectangles of about 100 bytes, whatever the actions.
const SPREAD_SVG_BOUND: usize = 2_500_000;

fn dump(name: &str, bytes: &[u8]) {
    if let Some(dir) = std::env::var_os("RELOADBENCH_CHART_DUMP") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(std::path::Path::new(&dir).join(name), bytes).unwrap();
    }
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    let reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("PNG decodes");
    (reader.info().width, reader.info().height)
}

/// `#index at T s, N ms` of the action with the largest trigger → ready of
/// every case (ties: the earliest), computed here from the run's data.
fn slowest_of_each_case(run: &RunReport) -> Vec<String> {
    run.cases
        .iter()
        .map(|c| {
            let mut best: Option<(u64, u64, u32)> = None;
            for a in &c.actions {
                let Some(ready) = a.ready_ns else { continue };
                let took = ready - a.trigger_ns;
                if best.is_none_or(|(t, _, _)| took > t) {
                    best = Some((took, a.trigger_ns, a.index));
                }
            }
            let (took, trigger, index) = best.expect("a ready action");
            format!(
                "#{index} at {:.1} s, {:.0} ms",
                trigger as f64 / 1e9,
                took as f64 / 1e6
            )
        })
        .collect()
}

#[test]
fn reload_time_of_ten_thousand_actions_is_bounded_and_names_the_slowest() {
    let big = run(Shape {
        cases: 10,
        buckets: 36,
        actions: 1000,
        failing_every: 50,
    });
    let (w, h) = Chart::ReloadTime.size(&big);
    assert_eq!((w, h), (1200, distribution_height(10)));
    // The height does not depend on the actions.
    let fewer = run(Shape {
        cases: 10,
        buckets: 36,
        actions: 50,
        failing_every: 50,
    });
    assert_eq!(Chart::ReloadTime.size(&fewer), (w, h));
    let svg = render_svg(Chart::ReloadTime, &big).unwrap();
    dump("big-reload_time.svg", svg.as_bytes());
    assert!(
        svg.len() < SVG_BOUND,
        "{} bytes of SVG for 10,000 actions",
        svg.len()
    );
    for name in slowest_of_each_case(&big) {
        assert!(svg.contains(&name), "slowest action {name:?} named");
    }
    for case in &big.cases {
        assert!(svg.contains(&case.name), "block of {}", case.name);
        let lossy = case.actions.iter().filter(|a| a.failed_total() > 0).count();
        if lossy > 0 {
            assert!(
                svg.contains(&format!("· {lossy} with failed requests")),
                "{}: {lossy} actions with failures stated",
                case.name
            );
        }
    }
    for phase in [
        "trigger → ready",
        "trigger → drained",
        "trigger → old exited",
    ] {
        assert_eq!(svg.matches(phase).count(), 10, "{phase} row per case");
    }
    let png = render_png(Chart::ReloadTime, &big).unwrap();
    dump("big-reload_time.png", &png);
    assert_eq!(png_size(&png), (w, h));
}

#[test]
fn reload_time_of_actions_spread_over_the_whole_axis_stays_bounded() {
    // The worst case for the strips: times spread log-uniformly over five
    // decades, so every 2-pixel bin of every row holds some action.
    let mut big = run(Shape {
        cases: 10,
        buckets: 36,
        actions: 1000,
        failing_every: 2,
    });
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut ms = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        0.05 * 1e5f64.powf((state % 1_000_000) as f64 / 1e6)
    };
    for case in &mut big.cases {
        for a in &mut case.actions {
            let t = a.trigger_ns;
            a.ready_ns = Some(t + (ms() * 1e6) as u64);
            a.drained_ns = Some(t + (ms() * 1e6) as u64);
            a.exited_ns = Some(t + (ms() * 1e6) as u64);
        }
    }
    assert_eq!(
        Chart::ReloadTime.size(&big),
        (1200, distribution_height(10))
    );
    let svg = render_svg(Chart::ReloadTime, &big).unwrap();
    dump("spread-reload_time.svg", svg.as_bytes());
    assert!(
        svg.len() < SPREAD_SVG_BOUND,
        "{} bytes of SVG for 10,000 actions spread over the axis",
        svg.len()
    );
    for name in slowest_of_each_case(&big) {
        assert!(svg.contains(&name), "slowest action {name:?} named");
    }
}

#[test]
fn reload_time_of_a_failed_action_is_named_in_its_case() {
    let mut big = run(Shape {
        cases: 1,
        buckets: 10,
        actions: 100,
        failing_every: 0,
    });
    big.cases[0].actions[42].ok = false;
    let svg = render_svg(Chart::ReloadTime, &big).unwrap();
    assert!(
        svg.contains("100 actions · 1 failed: #42"),
        "failed action named"
    );
    assert!(svg.contains("no failed requests at an action"));
}

#[test]
fn reload_time_up_to_the_threshold_draws_one_bar_per_action() {
    // 4 cases × 10 actions: 40 timed actions, the threshold itself.
    let small = run(Shape {
        cases: 4,
        buckets: 10,
        actions: 10,
        failing_every: 5,
    });
    assert_eq!(Chart::ReloadTime.size(&small), (1200, 140 + 40 * 34));
    let svg = render_svg(Chart::ReloadTime, &small).unwrap();
    // Every action has its labelled row and its dark trigger → ready bar.
    for case in &small.cases {
        for a in &case.actions {
            let label = format!("{} #{}: {}", case.name, a.index, a.label);
            assert!(svg.contains(&label), "row {label:?}");
        }
    }
    assert_eq!(
        svg.matches("fill=\"#4E79A7\"").count(),
        40 + 1,
        "40 bars and the legend's"
    );
    // One more action switches to the distributions.
    let mut over = small.clone();
    let extra = over.cases[0].actions[0].clone();
    over.cases[0].actions.push(extra);
    assert_eq!(
        Chart::ReloadTime.size(&over),
        (1200, distribution_height(4))
    );
}

#[test]
fn failures_and_spectrum_do_not_grow_with_actions_buckets_or_failure_records() {
    let small = run(Shape {
        cases: 4,
        buckets: 30,
        actions: 3,
        // Every action loses requests: the same failure classes as the big run.
        failing_every: 1,
    });
    let big = run(Shape {
        cases: 4,
        buckets: 3_000,
        actions: 500,
        failing_every: 2,
    });
    assert!(
        big.cases[1].load.failures.len() > 5_000,
        "many failure records"
    );
    for chart in [Chart::Failures, Chart::Spectrum] {
        assert_eq!(chart.size(&small), chart.size(&big), "{}", chart.stem());
        let (s, b) = (
            render_svg(chart, &small).unwrap(),
            render_svg(chart, &big).unwrap(),
        );
        dump(&format!("big-{}.svg", chart.stem()), b.as_bytes());
        // The same shapes (the failures chart may write a count in each of
        // its 4 × 2 case × class segments once they are tall enough); only
        // the numbers written in it differ.
        let elements = |svg: &str| svg.matches('<').count();
        let slack = if chart == Chart::Failures { 4 * 2 } else { 0 };
        assert!(
            elements(&b) <= elements(&s) + slack && b.len() < 2 * s.len(),
            "{}: {} elements and {} bytes for the big run, {} and {} for the small one",
            chart.stem(),
            elements(&b),
            b.len(),
            elements(&s),
            s.len()
        );
    }
}
