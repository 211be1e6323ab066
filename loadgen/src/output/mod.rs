//! Rendering a finished run: ab's familiar text block followed by loadgen's
//! own block ([`text`]), and the files of `-e`, `-g` and `--hdr`
//! ([`percentiles_csv`], [`gnuplot_tsv`], [`write_hdr_log`]).

mod files;
mod ws;

use std::fmt::Write as _;

use reloadbench_model::load::{H2Report, LoadReport, RetryPolicy, TimeRow, TlsReport};

pub use files::{OutputError, gnuplot_tsv, percentiles_csv, write_hdr_log};

/// Percentiles of ab's "Percentage of the requests served" table.
const AB_PERCENTILES: [f64; 9] = [50.0, 66.0, 75.0, 80.0, 90.0, 95.0, 98.0, 99.0, 100.0];

fn ms(us: f64) -> f64 {
    us / 1000.0
}

/// Host, port and path of the report's URL (as ab prints them).
fn url_parts(url: &str) -> (String, String, String) {
    match crate::target::parse_url(url) {
        Ok(p) => (p.host, p.port.to_string(), p.path),
        Err(_) => (url.to_owned(), String::new(), String::new()),
    }
}

fn time_row(out: &mut String, name: &str, r: &TimeRow) {
    let _ = writeln!(
        out,
        "{name:<12}{:>9.3} {:>9.3} {:>7.3} {:>9.3} {:>9.3}",
        ms(r.min_us as f64),
        ms(r.mean_us),
        ms(r.sd_us),
        ms(r.median_us as f64),
        ms(r.max_us as f64)
    );
}

/// The ab block (same labels as ab) and loadgen's block, as printed by the binary.
///
/// As ab, "Complete requests" counts the requests that finished, ok or failed, and
/// "Requests per second" and "Time per request" are computed from them. Unlike ab,
/// "Failed requests" counts every failure once (its breakdown plus write errors
/// plus non-2xx responses add up to it).
pub fn text(r: &LoadReport) -> String {
    let (host, port, path) = url_parts(&r.config.url);
    if let Some(ws) = &r.ws {
        // No request was made: the WebSocket block replaces ab's.
        return ws::text(r, ws, [&host, &port, &path]);
    }
    let mut o = String::new();
    let secs = r.elapsed_ns as f64 / 1e9;
    let per_sec = |n: f64| if secs > 0.0 { n / secs } else { 0.0 };
    let _ = writeln!(
        o,
        "Server Software:        {}",
        r.server_software.as_deref().unwrap_or("")
    );
    let _ = writeln!(o, "Server Hostname:        {host}");
    let _ = writeln!(o, "Server Port:            {port}");
    if let Some(tls) = &r.tls {
        let protocol = match (&tls.protocol, &tls.cipher) {
            (Some(p), Some(c)) => format!("{p}, {c}"),
            _ => "(no completed handshake)".to_owned(),
        };
        let _ = writeln!(o, "TLS protocol:           {protocol}");
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "Document Path:          {path}");
    match r.document_length {
        Some(n) => _ = writeln!(o, "Document Length:        {n} bytes"),
        None => _ = writeln!(o, "Document Length:        (no successful response)"),
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "Concurrency Level:      {}", r.config.concurrency);
    let _ = writeln!(o, "Time taken for tests:   {secs:.3} seconds");
    let complete = r.ok + r.failed;
    let _ = writeln!(o, "Complete requests:      {complete}");
    let _ = writeln!(o, "Failed requests:        {}", r.failed);
    let _ = writeln!(
        o,
        "   (Connect: {}, Receive: {}, Length: {}, Exceptions: {})",
        r.ab.connect, r.ab.receive, r.ab.length, r.ab.exceptions
    );
    let _ = writeln!(o, "Write errors:           {}", r.ab.write_errors);
    let _ = writeln!(o, "Non-2xx responses:      {}", r.ab.non_2xx);
    let _ = writeln!(o, "Total transferred:      {} bytes", r.total_bytes);
    let _ = writeln!(o, "HTML transferred:       {} bytes", r.body_bytes);
    let rps = per_sec(complete as f64);
    let _ = writeln!(o, "Requests per second:    {rps:.2} [#/sec] (mean)");
    let (tpr, tpr_all) = if complete > 0 {
        let all = secs * 1000.0 / complete as f64;
        (all * r.config.concurrency as f64, all)
    } else {
        (0.0, 0.0)
    };
    let _ = writeln!(o, "Time per request:       {tpr:.3} [ms] (mean)");
    let _ = writeln!(
        o,
        "Time per request:       {tpr_all:.3} [ms] (mean, across all concurrent requests)"
    );
    let kb = per_sec(r.total_bytes as f64 / 1024.0);
    let _ = writeln!(o, "Transfer rate:          {kb:.2} [Kbytes/sec] received");
    let _ = writeln!(o);
    let _ = writeln!(o, "Connection Times (ms)");
    let _ = writeln!(
        o,
        "                  min      mean  [+/-sd]   median       max"
    );
    let ct = &r.connection_times;
    time_row(&mut o, "Connect:", &ct.connect);
    time_row(&mut o, "Processing:", &ct.processing);
    time_row(&mut o, "Waiting:", &ct.waiting);
    time_row(&mut o, "Total:", &ct.total);
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Percentage of the requests served within a certain time (ms)"
    );
    for p in AB_PERCENTILES {
        let v = ms(r.latency.at(p).unwrap_or(0) as f64);
        let tail = if p == 100.0 { " (longest request)" } else { "" };
        let _ = writeln!(o, " {:>3}%  {v:>9.3}{tail}", p as u64);
    }
    let _ = writeln!(o);
    if let Some(tls) = &r.tls {
        tls_block(&mut o, tls);
    }
    if let Some(h2) = &r.h2 {
        h2_block(&mut o, h2, r.retries);
    }
    if let Some(ws) = &r.ws {
        ws::ws_block(&mut o, ws);
    }
    if let Some(s) = &r.stream {
        ws::stream_line(&mut o, s);
    }
    loadgen_block(&mut o, r);
    o
}

/// The TLS handshakes of an `https://` run and the percentiles of their time.
pub(crate) fn tls_block(o: &mut String, tls: &TlsReport) {
    let _ = writeln!(o, "{}", tls.handshakes_line());
    if let Some(line) = tls.failed_by_line() {
        let _ = writeln!(o, "{line}");
    }
    let _ = writeln!(o, "Handshake time (ms)");
    for p in AB_PERCENTILES {
        let v = ms(tls.handshake_time.at(p).unwrap_or(0) as f64);
        let tail = if p == 100.0 {
            " (longest handshake)"
        } else {
            ""
        };
        let _ = writeln!(o, " {:>3}%  {v:>9.3}{tail}", p as u64);
    }
    let _ = writeln!(o);
}

/// The HTTP/2 side of an `--h2` run: connections and streams, GOAWAYs
/// received, and what became of the streams that failed.
fn h2_block(o: &mut String, h2: &H2Report, retries: u64) {
    let _ = writeln!(o, "HTTP/2 streams:         {} per connection", h2.streams);
    let _ = writeln!(o, "{}", h2.goaway_line());
    let _ = writeln!(o, "Streams refused by GOAWAY: {}", h2.refused);
    if h2.retry_refused {
        let _ = writeln!(
            o,
            "Retries:                {retries} (--retry-refused: once, on a new connection)"
        );
    }
    let _ = writeln!(o, "{}", h2.reset_line());
    let _ = writeln!(o, "Streams lost:           {}", h2.lost);
    let _ = writeln!(o, "Protocol errors:        {}", h2.protocol_errors);
    let _ = writeln!(
        o,
        "Reconnects:             {} (after a GOAWAY or a closed connection)",
        h2.reconnects
    );
    let _ = writeln!(o);
}

/// The outcomes per method, when the run sent more than one method.
fn methods_block(o: &mut String, r: &LoadReport) {
    if r.methods.len() < 2 {
        return;
    }
    let after = r.after_retry.is_some();
    let _ = write!(
        o,
        "By method:                 ok     failed  retryable  not retryable    retries"
    );
    let _ = writeln!(o, "{}", if after { "  ok after retry" } else { "" });
    for m in &r.methods {
        let _ = write!(
            o,
            "  {:<16}{:>10} {:>10} {:>10} {:>14} {:>10}",
            m.method, m.ok, m.failed, m.failed_retryable, m.failed_not_retryable, m.retries
        );
        match &m.after_retry {
            Some(a) => _ = writeln!(o, "  {:>14}", a.ok),
            None => _ = writeln!(o),
        }
    }
}

/// loadgen's own block: the identity line, failures by class, back-off, schedule.
fn loadgen_block(o: &mut String, r: &LoadReport) {
    let _ = writeln!(
        o,
        "Planned: {} = {} ok + {} failed + {} not started",
        r.planned, r.ok, r.failed, r.not_started
    );
    let secs = r.elapsed_ns as f64 / 1e9;
    let ok_rps = if secs > 0.0 { r.ok as f64 / secs } else { 0.0 };
    let _ = writeln!(
        o,
        "Successful per second:  {ok_rps:.2} [#/sec] (ok / time taken)"
    );
    if r.classes.is_empty() {
        let _ = writeln!(o, "Failures by class:      none");
    } else {
        let _ = writeln!(
            o,
            "Failures by class:        count  on reused   first (s)    last (s)"
        );
        for c in &r.classes {
            let _ = writeln!(
                o,
                "  {:<22}{:>9}  {:>9}  {:>10.3}  {:>10.3}",
                c.class.label(),
                c.count,
                c.on_reused,
                c.first_ns as f64 / 1e9,
                c.last_ns as f64 / 1e9
            );
        }
    }
    let _ = writeln!(o, "Failed on reused connections: {}", r.failed_on_reused);
    let _ = writeln!(
        o,
        "Failed, retryable:      {} (idempotent, reused connection, no response byte)",
        r.failed_retryable
    );
    let _ = writeln!(o, "Failed, not retryable:  {}", r.failed_not_retryable);
    if r.config.retry.retries() {
        let _ = writeln!(
            o,
            "Retries:                {} (--retry-safe={}: once, on a new connection)",
            r.retries,
            r.config.retry.key()
        );
    }
    if r.config.retry == RetryPolicy::Safe {
        let _ = writeln!(
            o,
            "Stale connections:      {} (closed by the server while idle; not used)",
            r.stale_discarded
        );
    }
    if let Some(a) = &r.after_retry {
        let _ = writeln!(
            o,
            "After retry:            {} ok + {} failed (what a careful client saw)",
            a.ok, a.failed
        );
    }
    methods_block(o, r);
    let _ = writeln!(o, "Connections opened:     {}", r.connections);
    let _ = writeln!(
        o,
        "Refused back-off:       {:.3} s (summed over clients)",
        r.refused_backoff_ns as f64 / 1e9
    );
    if r.failures_dropped > 0 {
        let _ = writeln!(
            o,
            "Failure records:        {} kept, {} beyond the cap (counted only)",
            r.failures.len(),
            r.failures_dropped
        );
    }
    if let Some(s) = &r.schedule {
        let rate = r.config.rate.unwrap_or(0.0);
        if s.fell_behind {
            let _ = writeln!(
                o,
                "Schedule ({rate} req/s):  fell behind: {} late starts (> 1 ms), max lag {:.3} ms, {} not started",
                s.late_starts,
                ms(s.max_lag_us as f64),
                r.not_started
            );
        } else {
            let _ = writeln!(
                o,
                "Schedule ({rate} req/s):  kept (max lag {:.3} ms)",
                ms(s.max_lag_us as f64)
            );
        }
    }
}
