//! The aggregated timeline draws every failure class of a pixel column, each
//! at its largest count in one bucket: a class in a bucket next to a bigger
//! spike of another class is not hidden behind it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reloadbench_model::load::BucketFailures;
use reloadbench_model::outcome::FailureClass;
use reloadbench_reports::export::chart::{Chart, render_svg};
use reloadbench_reports::synthetic::{Shape, run, spike_bucket};

#[test]
fn a_class_next_to_a_bigger_spike_in_the_same_column_is_still_drawn() {
    let mut r = run(Shape {
        cases: 1,
        buckets: 36_000,
        actions: 0,
        failing_every: 0,
    });
    let case = &mut r.cases[0];
    // The planted spike (777 resets) shares its ~43-bucket column with the
    // next bucket, which alone holds the run's only connect-refused failures.
    let next = spike_bucket(36_000) + 1;
    case.load.buckets[next].failed.push(BucketFailures {
        class: FailureClass::ConnectRefused,
        count: 50,
    });
    case.load.failed += 50;
    let t = case.load.buckets[next].start_ns;
    case.load.classes.push(reloadbench_model::load::ClassCount {
        class: FailureClass::ConnectRefused,
        count: 50,
        on_reused: 0,
        first_ns: t,
        last_ns: t,
    });
    assert!(case.failed_of(FailureClass::ConnectRefused) > 0);
    let svg = render_svg(Chart::Timeline, &r).unwrap();
    // The legend swatch is there...
    assert!(svg.contains("connect refused"));
    // ...and a connect-refused bar is drawn besides it.
    let red = svg.matches("fill=\"#D62728\"").count();
    assert!(
        red >= 2,
        "only {red} red fills: the 50 refused are not drawn"
    );
}

#[test]
fn a_dense_action_that_failed_itself_is_labelled_though_it_lost_no_request() {
    let mut r = run(Shape {
        cases: 3,
        buckets: 600,
        actions: 500,
        failing_every: 0,
    });
    r.cases.truncate(1);
    let a = &mut r.cases[0].actions[250];
    a.ok = false;
    a.error = Some("reload failed: 4 old generations still draining".into());
    let label = format!("#250 {}", a.label);
    let svg = render_svg(Chart::Timeline, &r).unwrap();
    assert!(svg.contains(&label), "the failed action is labelled");
    assert!(svg.contains("action failed"));
    assert!(svg.contains("labelled 1 of 1 failing"));
}
