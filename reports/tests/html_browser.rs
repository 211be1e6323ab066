//! `report.html` opened in a real browser (headless Chromium), checked the
//! way a reader would see it: no missing glyph anywhere in its text, every
//! chart drawn (SVGs with a box, and non-blank pixels there in a screenshot),
//! no console error, no request of any kind (the page works offline), and its
//! explorer working (a bucket's numbers on hover, an action's row on click,
//! a case hidden, a table sorted).
//!
//! The page is opened as a copy with a probe: one script at the top of
//! `<head>` that records errors, console errors and policy violations, one
//! at the end of `<body>` that runs the checks after load and writes what it
//! found as JSON into the DOM, read back with `--dump-dom`.
//!
//! Without Chromium (`chromium`, `chromium-browser` or `google-chrome` on
//! PATH, or `RELOADBENCH_CHROMIUM`) the test says so and passes, unless
//! `RELOADBENCH_REQUIRE_BROWSER=1` (set by scripts/ci.sh): then it fails.
//! `scripts/install-peers chromium` installs it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use reloadbench_model::test_timing::scaled_secs;
use reloadbench_reports::RunReport;
use reloadbench_reports::export::Exporter;
use reloadbench_reports::export::html::HtmlExporter;
use reloadbench_reports::export::tables;
use reloadbench_reports::summary::{bucket_rps, fmt_ms};
use serde_json::Value;

/// Width of the desktop window, CSS pixels (device scale factor 1).
const WIDTH: u32 = 1280;

/// The checks the probe runs after load; it writes its findings into
/// `<pre id="rb-probe">`.
const PROBE_END: &str = r##"<script>
window.addEventListener("load", function () {
  var out = { errors: window.rbErrors };
  out.resources = performance.getEntriesByType("resource").map(function (e) { return e.name; });
  out.height = document.documentElement.scrollHeight;
  out.width = document.documentElement.scrollWidth;
  out.viewport = window.innerWidth;
  // Glyphs: each distinct non-ASCII, non-space character of the page's
  // text drawn on a canvas in the page's font, against an unassigned code
  // point (drawn as the missing-glyph box, or not at all).
  var walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT), seen = {}, n;
  while ((n = walker.nextNode())) {
    var p = n.parentNode.nodeName.toLowerCase();
    if (p === "script" || p === "style") continue;
    for (var ch of n.textContent) if (ch.codePointAt(0) > 127 && !/\s/.test(ch)) seen[ch] = true;
  }
  var cv = document.createElement("canvas"); cv.width = 48; cv.height = 48;
  var cx = cv.getContext("2d", { willReadFrequently: true });
  cx.font = "32px " + getComputedStyle(document.body).fontFamily;
  function pix(s) { cx.clearRect(0, 0, 48, 48); cx.fillText(s, 4, 36); return Array.prototype.join.call(cx.getImageData(0, 0, 48, 48).data, ","); }
  var missing = pix("\u0378"), missing2 = pix("\uFFFF");
  out.chars = Object.keys(seen).join("");
  out.missing = Object.keys(seen).filter(function (ch) { var q = pix(ch); return q === missing || q === missing2; });
  // Charts: every SVG of a figure, with its box and how much it holds.
  out.charts = Array.prototype.map.call(document.querySelectorAll("figure svg"), function (s) {
    var r = s.getBoundingClientRect(), f = s.closest("figure");
    return { figure: f.id, x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height, shapes: s.querySelectorAll("*").length };
  });
  // Explorer: the bucket read-out, an action's row, hiding a case, sorting.
  var data = JSON.parse(document.getElementById("rb-data").textContent), ax = data.axis;
  function at(panel, t) {
    var svg = panel.querySelector("svg"), r = svg.getBoundingClientRect();
    var x = r.left + (ax.x0 + t / ax.t_max_s * (ax.x1 - ax.x0)) * r.width / ax.width;
    return { clientX: x, clientY: r.top + r.height / 4, bubbles: true };
  }
  var probe = JSON.parse(document.getElementById("rb-want").textContent);
  if (probe.explore) {
  var panel = document.querySelector('.rb-panel[data-case="' + probe.hover_case + '"]');
  panel.dispatchEvent(new MouseEvent("mousemove", at(panel, probe.hover_t)));
  out.tip = panel.querySelector(".rb-tip").innerText;
  out.tip_shown = panel.querySelector(".rb-tip").style.display;
  var apanel = document.querySelector('.rb-panel[data-case="' + probe.action_case + '"]');
  apanel.dispatchEvent(new MouseEvent("click", at(apanel, probe.action_t)));
  var hl = document.querySelector("tr.rb-hl");
  out.action_row = hl ? Array.prototype.map.call(hl.cells, function (c) { return c.textContent; }) : null;
  out.action_info = apanel.nextSibling.innerText;
  var summary = document.querySelector("table");
  var boxes = document.querySelectorAll("#rb-cases input");
  out.case_boxes = boxes.length;
  boxes[probe.hide_case].click();
  out.hidden_panel = document.querySelector('.rb-panel[data-case="' + probe.hide_case + '"]').hidden;
  out.visible_summary_rows = Array.prototype.filter.call(summary.tBodies[0].rows, function (r) { return !r.hidden; }).map(function (r) { return r.cells[0].textContent; });
  boxes[probe.hide_case].click();
  var th = summary.tHead.rows[0].cells[probe.sort_col];
  th.click(); th.click();
  out.sort = th.getAttribute("aria-sort");
  out.sorted = Array.prototype.map.call(summary.tBodies[0].rows, function (r) { return r.cells[0].textContent; });
  }
  var pre = document.createElement("pre"); pre.id = "rb-probe"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"##;

/// Records errors from the first moment: uncaught ones, console.error,
/// and any request the page's Content-Security-Policy blocked.
const PROBE_HEAD: &str = r##"<script>
window.rbErrors = [];
window.addEventListener("error", function (e) { rbErrors.push("error: " + e.message); });
window.addEventListener("unhandledrejection", function (e) { rbErrors.push("rejection: " + e.reason); });
document.addEventListener("securitypolicyviolation", function (e) { rbErrors.push("blocked request: " + e.blockedURI + " (" + e.violatedDirective + ")"); });
(function () { var ce = console.error, cw = console.warn;
  console.error = function () { rbErrors.push("console.error: " + Array.prototype.join.call(arguments, " ")); return ce.apply(console, arguments); };
  console.warn = function () { rbErrors.push("console.warn: " + Array.prototype.join.call(arguments, " ")); return cw.apply(console, arguments); };
})();
</script>"##;

/// The Chromium to use, or `None` (after saying why) to skip.
fn chromium() -> Option<PathBuf> {
    let named = std::env::var_os("RELOADBENCH_CHROMIUM").map(PathBuf::from);
    let found = named.or_else(|| {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .flat_map(|d| ["chromium", "chromium-browser", "google-chrome"].map(|n| d.join(n)))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let msg = "report.html browser test: no Chromium found (chromium, chromium-browser or \
                   google-chrome on PATH, or RELOADBENCH_CHROMIUM); install it with \
                   `scripts/install-peers chromium`";
        assert!(
            std::env::var("RELOADBENCH_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "{msg} (RELOADBENCH_REQUIRE_BROWSER=1: not skipping)"
        );
        eprintln!("SKIPPED: {msg}");
    }
    found
}

/// A Chromium process group, killed whole when dropped (on every path,
/// panics included).
struct Browser {
    pgid: Pid,
    done: mpsc::Receiver<std::io::Result<std::process::ExitStatus>>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // ESRCH once it is gone: nothing to do.
        let _ = killpg(self.pgid, Signal::SIGKILL);
    }
}

/// Runs Chromium headless on `page` with `args`, in its own process group
/// and a fresh profile under `dir`, logging to stderr; returns stdout, and
/// the console messages of the page found in stderr (the page writes none:
/// each is a browser's complaint, such as an SVG attribute it rejected).
/// Fails after a (scaled) minute.
fn run_chromium(bin: &Path, dir: &Path, page: &Path, args: &[String]) -> (String, Vec<String>) {
    let profile = tempfile::tempdir_in(dir).unwrap();
    let out_path = dir.join("chromium.out");
    let err_path = dir.join("chromium.err");
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--disable-gpu",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--mute-audio",
        // Nothing the page could ask for resolves: the page must need nothing.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args);
    if nix::unistd::geteuid().is_root() {
        cmd.arg("--no-sandbox");
    }
    cmd.arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().expect("chromium starts");
    let pgid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let browser = Browser { pgid, done: rx };
    let limit: Duration = scaled_secs(60);
    let status = match browser.done.recv_timeout(limit) {
        Ok(status) => status.unwrap(),
        Err(_) => panic!(
            "chromium did not finish within {limit:?}: {}",
            std::fs::read_to_string(&err_path).unwrap_or_default()
        ),
    };
    drop(browser);
    assert!(
        status.success(),
        "chromium failed ({status}): {}",
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
    let console = std::fs::read_to_string(&err_path)
        .unwrap()
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    (std::fs::read_to_string(&out_path).unwrap(), console)
}

/// The page with the probe, and what the probe is asked to do.
fn probed(html: &str, want: &Value) -> String {
    let head = html.find("</title>").expect("page has a title") + "</title>".len();
    let end = html.rfind("</body>").expect("page has a body end");
    format!(
        "{}\n{PROBE_HEAD}{}<script type=\"application/json\" id=\"rb-want\">{want}</script>\n{PROBE_END}\n{}",
        &html[..head],
        &html[head..end],
        &html[end..]
    )
}

/// Share of non-white pixels of an RGB(A) screenshot within a CSS box.
fn inked(png_bytes: &[u8], x: f64, y: f64, w: f64, h: f64) -> f64 {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let (iw, ih) = (info.width as usize, info.height as usize);
    let (x0, y0) = (x.max(0.0) as usize, y.max(0.0) as usize);
    let (x1, y1) = (((x + w) as usize).min(iw), ((y + h) as usize).min(ih));
    let mut ink = 0usize;
    let mut all = 0usize;
    for py in y0..y1 {
        for px in x0..x1 {
            let i = (py * iw + px) * channels;
            all += 1;
            if buf[i..i + 3].iter().any(|&v| v < 235) {
                ink += 1;
            }
        }
    }
    if all == 0 {
        0.0
    } else {
        ink as f64 / all as f64
    }
}

/// Opens `html` with the probe (asked to do `want`) and returns what it
/// found, after checking what holds for every page: no console message, no
/// error, no request, no missing glyph, no emoji, no sideways scrolling, and
/// every chart with a box and shapes.
fn probe(
    bin: &Path,
    dir: &Path,
    (report, html): (&RunReport, &str),
    width: u32,
    want: &Value,
) -> Value {
    let page = dir.join("report.html");
    std::fs::write(&page, probed(html, want)).unwrap();
    let (dom, console) = run_chromium(
        bin,
        dir,
        &page,
        &[format!("--window-size={width},1000"), "--dump-dom".into()],
    );
    assert_eq!(console, Vec::<String>::new(), "console messages");
    let start = dom.find("<pre id=\"rb-probe\">").expect("the probe ran") + 19;
    let end = start + dom[start..].find("</pre>").unwrap();
    let text = dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    let probe: Value = serde_json::from_str(&text).unwrap();
    eprintln!("probe: {probe:#}");

    // No error, no request, no missing glyph.
    assert_eq!(probe["errors"], serde_json::json!([]), "console errors");
    assert_eq!(probe["resources"], serde_json::json!([]), "requests made");
    assert_eq!(probe["missing"], serde_json::json!([]), "missing glyphs");
    assert!(!html.contains(['✅', '❌']), "emoji in report.html");
    // Headless Chromium lays out no narrower than 500 px, whatever the window.
    let viewport = probe["viewport"].as_u64().unwrap();
    assert_eq!(viewport, u64::from(width.max(500)), "window width");
    let scroll = probe["width"].as_u64().unwrap();
    assert!(
        scroll <= viewport,
        "the page scrolls sideways: {scroll} px in a window of {viewport}"
    );

    // Every chart: a panel per case and the four other figures, each with a
    // box and shapes in it.
    let charts = probe["charts"].as_array().unwrap();
    let figures: Vec<&str> = charts
        .iter()
        .map(|c| c["figure"].as_str().unwrap())
        .collect();
    let mut expected = vec!["timeline"; report.cases.len()];
    expected.extend(["failures", "spectrum", "reload_time", "accept_queue"]);
    assert_eq!(figures, expected);
    for c in charts {
        assert!(c["w"].as_f64().unwrap() > 300.0, "{c}");
        assert!(c["h"].as_f64().unwrap() > 80.0, "{c}");
        // A figure without data (no accept-queue samples) still draws its
        // title and a sentence saying so.
        assert!(c["shapes"].as_u64().unwrap() >= 3, "{c}");
    }
    probe
}

/// A long run of one case (40 actions, a minute of buckets), at a phone's
/// width (500 px, the narrowest headless Chromium lays out): the page the explorer has the most to do on, one whose
/// charts once drew a shape of negative width, and one whose wide tables
/// must scroll within themselves, not the page.
#[test]
fn heavy_a_long_one_case_report_html_in_chromium() {
    let Some(bin) = chromium() else { return };
    let report = reloadbench_reports::synthetic::run(reloadbench_reports::synthetic::Shape {
        cases: 1,
        buckets: 600,
        actions: 40,
        failing_every: 3,
    });
    let html = String::from_utf8(HtmlExporter.render(&report).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let want = serde_json::json!({ "explore": false });
    probe(&bin, dir.path(), (&report, &html), 500, &want);
}

#[test]
fn heavy_report_html_in_chromium() {
    let Some(bin) = chromium() else { return };
    let report: RunReport = support::fixture();
    let html = String::from_utf8(HtmlExporter.render(&report).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();

    // What to point at: the restart case's bucket with the most failures,
    // and its first action; hide the second case; sort by requests/s.
    let hover_case = 1;
    let case = &report.cases[hover_case];
    let (bi, bucket) = case
        .load
        .buckets
        .iter()
        .enumerate()
        .filter(|(_, b)| b.ok > 0)
        .max_by_key(|(_, b)| b.failed_total())
        .unwrap();
    assert!(bucket.ok > 0 && bucket.failed_total() > 0, "fixture bucket");
    let bucket_s = case.load.config.bucket_ns() as f64 / 1e9;
    let action = &case.actions[0];
    let want = serde_json::json!({
        "explore": true,
        "hover_case": hover_case,
        "hover_t": bucket.start_ns as f64 / 1e9 + bucket_s / 2.0,
        "action_case": hover_case,
        "action_t": action.trigger_ns as f64 / 1e9,
        "hide_case": 1,
        "sort_col": 5,
    });
    let probe = probe(&bin, dir.path(), (&report, &html), WIDTH, &want);
    let charts = probe["charts"].as_array().unwrap();

    // The explorer: the hovered bucket's numbers as the data has them.
    let tip = probe["tip"].as_str().unwrap();
    assert_eq!(probe["tip_shown"], "block");
    let from = bucket.start_ns / 1_000_000;
    for part in [
        format!("{:.3}–", from as f64 / 1000.0),
        format!("ok/s: {:.1}", bucket_rps(&case.load, bi)),
        format!("p50 {} ms", fmt_ms(bucket.latency.p50_us)),
        format!("p99 {} ms", fmt_ms(bucket.latency.p99_us)),
        format!("max {} ms", fmt_ms(bucket.latency.max_us)),
    ] {
        assert!(tip.contains(&part), "{part:?} not in the read-out {tip:?}");
    }
    for f in &bucket.failed {
        let part = format!("{} {}", f.class.label(), f.count);
        assert!(tip.contains(&part), "{part:?} not in the read-out {tip:?}");
    }
    // The clicked action's row is the actions table's row.
    let table = tables::actions(case).unwrap();
    let row: Vec<String> = serde_json::from_value(probe["action_row"].clone()).unwrap();
    assert_eq!(row, table.rows[0]);
    let info = probe["action_info"].as_str().unwrap();
    assert!(
        info.contains(&format!("action #{}", action.index)),
        "{info}"
    );
    // Hiding a case hides its panel and its rows; sorting orders the rows.
    assert_eq!(probe["case_boxes"], report.cases.len());
    assert_eq!(probe["hidden_panel"], true);
    let visible: Vec<String> =
        serde_json::from_value(probe["visible_summary_rows"].clone()).unwrap();
    let mut others: Vec<String> = report.cases.iter().map(|c| c.label()).collect();
    others.remove(1);
    assert_eq!(visible, others);
    assert_eq!(probe["sort"], "descending");
    let summary = tables::summary(&report);
    let mut by_rps: Vec<(f64, String)> = summary
        .rows
        .iter()
        .map(|r| (r[5].parse::<f64>().unwrap(), r[0].clone()))
        .collect();
    by_rps.sort_by(|a, b| b.0.total_cmp(&a.0));
    let sorted: Vec<String> = serde_json::from_value(probe["sorted"].clone()).unwrap();
    assert_eq!(
        sorted,
        by_rps.into_iter().map(|(_, n)| n).collect::<Vec<_>>()
    );

    // A screenshot of the whole page: every chart's box has ink in it.
    let height = probe["height"].as_u64().unwrap();
    let shot = dir.path().join("shot.png");
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let (_, console) = run_chromium(
        &bin,
        dir.path(),
        &page,
        &[
            format!("--window-size={WIDTH},{height}"),
            format!("--screenshot={}", shot.display()),
        ],
    );
    assert_eq!(console, Vec::<String>::new(), "console messages");
    let png_bytes = std::fs::read(&shot).unwrap();
    for c in charts {
        let f = |k: &str| c[k].as_f64().unwrap();
        let ink = inked(&png_bytes, f("x"), f("y"), f("w"), f("h"));
        // A figure with data is covered with lines, bars and labels; one
        // that only says it has no data still shows that sentence.
        let least = if c["shapes"].as_u64().unwrap() > 20 {
            0.02
        } else {
            0.001
        };
        assert!(
            ink > least,
            "chart {c} is blank in the screenshot ({ink:.4} inked)"
        );
    }

    // It prints: a PDF comes out.
    let pdf = dir.path().join("report.pdf");
    let (_, console) = run_chromium(
        &bin,
        dir.path(),
        &page,
        &[
            "--no-pdf-header-footer".into(),
            format!("--print-to-pdf={}", pdf.display()),
        ],
    );
    assert_eq!(console, Vec::<String>::new(), "console messages");
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(
        bytes.starts_with(b"%PDF") && bytes.len() > 10_000,
        "{} bytes",
        bytes.len()
    );
}

/// A WebSocket run: the read-out of a bucket where connections were cut
/// and closed shows the bucket's WebSocket numbers and the old generations
/// in force, as the data has them.
#[test]
fn heavy_websocket_report_html_in_chromium() {
    let Some(bin) = chromium() else { return };
    let report: RunReport = support::ws_fixture();
    let html = String::from_utf8(HtmlExporter.render(&report).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let case = &report.cases[3];
    let want = serde_json::json!({
        "explore": true,
        "hover_case": 3,
        // Bucket 40 (4.0–4.1 s): 1 closed cleanly, 2 cut, 5 messages lost.
        "hover_t": 4.05,
        "action_case": 3,
        "action_t": case.actions[0].trigger_ns as f64 / 1e9,
        "hide_case": 1,
        "sort_col": 1,
    });
    let probe = probe(&bin, dir.path(), (&report, &html), WIDTH, &want);
    let tip = probe["tip"].as_str().unwrap();
    assert_eq!(probe["tip_shown"], "block");
    for part in [
        "connections open 97 · opened 0 · failed to open 0",
        "closed cleanly 1 · cut 2",
        "messages sent 100 · echoed 100 · lost 5 · late 0",
        "old processes 4 · old generations 2 · processes 7",
    ] {
        assert!(tip.contains(part), "{part:?} not in the read-out {tip:?}");
    }
}
