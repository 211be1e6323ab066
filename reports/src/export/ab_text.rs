//! The ab-style text block of one case, laid out like ApacheBench's output so
//! it can be put side by side with a real `ab` run.
//!
//! The numbers are reloadbench's, not ab's: every failed request is counted
//! once, in one of ab's counters (see [`reloadbench_model::outcome::AbView`]);
//! "Failed requests" covers Connect, Receive, Length and Exceptions as in ab,
//! while write errors and non-2xx responses have their own lines.

use std::fmt::Write as _;

use reloadbench_model::load::{H2Report, LoadReport, TimeRow};
use reloadbench_model::run::CaseReport;

/// ab's "Percentage of the requests served within a certain time" rows.
const AB_PERCENTILES: [f64; 8] = [50.0, 66.0, 75.0, 80.0, 90.0, 95.0, 98.0, 99.0];

/// Renders one case as ab would print it.
pub fn ab_text(case: &CaseReport) -> String {
    let load = &case.load;
    let (host, port, path) = split_url(&load.config.url);
    let elapsed_s = load.elapsed_ns as f64 / 1e9;
    let complete = load.ok + load.failed;
    let ab = &load.ab;
    let ab_failed = ab.connect + ab.receive + ab.length + ab.exceptions;
    let mut out = String::new();
    let w = &mut out;
    // Writing into a String cannot fail.
    let _ = writeln!(
        w,
        "Server Software:        {}",
        load.server_software.as_deref().unwrap_or("")
    );
    let _ = writeln!(w, "Server Hostname:        {host}");
    let _ = writeln!(w, "Server Port:            {port}");
    if let Some(tls) = &load.tls {
        let protocol = match (&tls.protocol, &tls.cipher) {
            (Some(p), Some(c)) => format!("{p}, {c}"),
            _ => "(no completed handshake)".to_owned(),
        };
        let _ = writeln!(w, "TLS protocol:           {protocol}");
    }
    let _ = writeln!(w);
    let _ = writeln!(w, "Document Path:          {path}");
    let _ = writeln!(
        w,
        "Document Length:        {} bytes",
        load.document_length.unwrap_or(0)
    );
    let _ = writeln!(w);
    let _ = writeln!(w, "Concurrency Level:      {}", load.config.concurrency);
    let _ = writeln!(w, "Time taken for tests:   {elapsed_s:.3} seconds");
    let _ = writeln!(w, "Complete requests:      {complete}");
    let _ = writeln!(w, "Failed requests:        {ab_failed}");
    if ab_failed > 0 {
        let _ = writeln!(
            w,
            "   (Connect: {}, Receive: {}, Length: {}, Exceptions: {})",
            ab.connect, ab.receive, ab.length, ab.exceptions
        );
    }
    let _ = writeln!(w, "Write errors:           {}", ab.write_errors);
    if ab.non_2xx > 0 {
        let _ = writeln!(w, "Non-2xx responses:      {}", ab.non_2xx);
    }
    if load.not_started > 0 {
        let _ = writeln!(w, "Not started:            {}", load.not_started);
    }
    if load.config.keep_alive {
        let _ = writeln!(
            w,
            "Keep-Alive requests:    {}",
            load.ok + load.failed_on_reused
        );
    }
    let _ = writeln!(
        w,
        "Connections opened:     {} (reloadbench only: ab and wrk do not count them)",
        load.connections
    );
    let _ = writeln!(w, "Total transferred:      {} bytes", load.total_bytes);
    let _ = writeln!(w, "HTML transferred:       {} bytes", load.body_bytes);
    let (rps, tpr, tpr_all, kbps) = rates(load, complete, elapsed_s);
    let _ = writeln!(w, "Requests per second:    {rps:.2} [#/sec] (mean)");
    let _ = writeln!(w, "Time per request:       {tpr:.3} [ms] (mean)");
    let _ = writeln!(
        w,
        "Time per request:       {tpr_all:.3} [ms] (mean, across all concurrent requests)"
    );
    let _ = writeln!(w, "Transfer rate:          {kbps:.2} [Kbytes/sec] received");
    let _ = writeln!(w);
    let ct = &load.connection_times;
    let _ = writeln!(w, "Connection Times (ms)");
    let _ = writeln!(w, "              min  mean[+/-sd] median   max");
    for (name, row) in [
        ("Connect:", &ct.connect),
        ("Processing:", &ct.processing),
        ("Waiting:", &ct.waiting),
        ("Total:", &ct.total),
    ] {
        let _ = writeln!(w, "{}", time_row(name, row));
    }
    if load.latency.count > 0 {
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "Percentage of the requests served within a certain time (ms)"
        );
        for p in AB_PERCENTILES {
            if let Some(us) = load.latency.at(p) {
                let _ = writeln!(w, "  {:>3}% {:>6}", p as u32, ms_round(us));
            }
        }
        let _ = writeln!(
            w,
            "  100% {:>6} (longest request)",
            ms_round(load.latency.max_us)
        );
    }
    if let Some(tls) = &load.tls {
        let _ = writeln!(w);
        let _ = writeln!(w, "{}", tls.handshakes_line());
        if let Some(line) = tls.failed_by_line() {
            let _ = writeln!(w, "{line}");
        }
        if tls.handshake_time.count > 0 {
            let _ = writeln!(w, "Handshake time (ms)");
            for p in AB_PERCENTILES {
                if let Some(us) = tls.handshake_time.at(p) {
                    let _ = writeln!(w, "  {:>3}% {:>6}", p as u32, ms_round(us));
                }
            }
        }
    }
    if let Some(h2) = &load.h2 {
        let _ = writeln!(w);
        h2_lines(w, h2, load.retries);
    }
    // loadgen's WebSocket and stream lines, as it prints them.
    if let Some(ws) = &load.ws {
        let _ = writeln!(w);
        let _ = writeln!(w, "{}", ws.connections_line());
        let _ = writeln!(w, "{}", ws.messages_line());
    }
    if let Some(stream) = &load.stream {
        let _ = writeln!(w);
        let _ = writeln!(w, "{}", stream.line());
    }
    out
}

/// loadgen's HTTP/2 lines: streams per connection, GOAWAYs, what became of
/// the failed streams, reconnects.
fn h2_lines(w: &mut String, h2: &H2Report, retries: u64) {
    let _ = writeln!(w, "HTTP/2 streams:         {} per connection", h2.streams);
    let _ = writeln!(w, "{}", h2.goaway_line());
    let _ = writeln!(w, "Streams refused by GOAWAY: {}", h2.refused);
    if h2.retry_refused {
        let _ = writeln!(
            w,
            "Retries:                {retries} (retry_refused: once, on a new connection)"
        );
    }
    let _ = writeln!(w, "{}", h2.reset_line());
    let _ = writeln!(w, "Streams lost:           {}", h2.lost);
    let _ = writeln!(w, "Protocol errors:        {}", h2.protocol_errors);
    let _ = writeln!(
        w,
        "Reconnects:             {} (after a GOAWAY or a closed connection)",
        h2.reconnects
    );
}

fn rates(load: &LoadReport, complete: u64, elapsed_s: f64) -> (f64, f64, f64, f64) {
    if elapsed_s <= 0.0 || complete == 0 {
        return (0.0, 0.0, 0.0, 0.0);
    }
    let rps = complete as f64 / elapsed_s;
    let tpr_all = elapsed_s * 1000.0 / complete as f64;
    let tpr = tpr_all * load.config.concurrency as f64;
    let kbps = load.total_bytes as f64 / 1024.0 / elapsed_s;
    (rps, tpr, tpr_all, kbps)
}

fn ms_round(us: u64) -> u64 {
    (us + 500) / 1000
}

fn time_row(name: &str, row: &TimeRow) -> String {
    format!(
        "{name:<11} {:>5} {:>4} {:>5.1} {:>6} {:>7}",
        ms_round(row.min_us),
        (row.mean_us / 1000.0).round() as u64,
        row.sd_us / 1000.0,
        ms_round(row.median_us),
        ms_round(row.max_us)
    )
}

/// Splits `http://host:port/path` into ab's hostname, port and document path.
fn split_url(url: &str) -> (String, String, String) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let default_port = if scheme == "https" { "443" } else { "80" };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !p.contains(']') => (h, p),
        _ => (authority, default_port),
    };
    (host.to_string(), port.to_string(), path.to_string())
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn url_is_split_like_ab() {
        let s = |u: &str| split_url(u);
        assert_eq!(
            s("http://127.0.0.1:8080/x?y"),
            ("127.0.0.1".into(), "8080".into(), "/x?y".into())
        );
        assert_eq!(
            s("http://localhost"),
            ("localhost".into(), "80".into(), "/".into())
        );
        assert_eq!(
            s("http://[::1]:9000/"),
            ("[::1]".into(), "9000".into(), "/".into())
        );
    }
}
