//! The command line: ab's flags with ab's meaning, plus loadgen's own.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use reloadbench_loadgen::{LoadConfig, RequestKind, RetryPolicy, TlsVersion, WsOptions};

/// An ab-compatible HTTP/1.1 and HTTP/2 load generator that counts every request exactly once.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about, max_term_width = 100)]
pub(crate) struct Cli {
    /// Number of requests to perform (default 1; no limit when only -t is given).
    #[arg(short = 'n', value_name = "REQUESTS")]
    pub(crate) requests: Option<u64>,
    /// Number of multiple requests to make at a time.
    #[arg(short = 'c', value_name = "CONCURRENCY", default_value_t = 1)]
    pub(crate) concurrency: u64,
    /// Seconds to max. to spend on benchmarking (no request starts after it).
    #[arg(short = 't', value_name = "TIMELIMIT")]
    pub(crate) timelimit: Option<f64>,
    /// Seconds to max. wait for a connect, and for each response once connected.
    #[arg(short = 's', value_name = "TIMEOUT", default_value_t = 30.0)]
    pub(crate) timeout: f64,
    /// Use HTTP KeepAlive.
    #[arg(short = 'k')]
    pub(crate) keep_alive: bool,
    /// Accepted for ab compatibility: loadgen never exits on socket errors.
    #[arg(short = 'r')]
    pub(crate) no_exit_on_error: bool,
    /// Add an arbitrary header line, e.g. 'Accept-Encoding: gzip' (repeatable).
    #[arg(short = 'H', value_name = "HEADER")]
    pub(crate) headers: Vec<String>,
    /// Method name (default GET, or POST with -p).
    #[arg(short = 'm', value_name = "METHOD", conflicts_with = "mix")]
    pub(crate) method: Option<String>,
    /// File containing data to POST (remember to also set -T).
    #[arg(short = 'p', value_name = "POSTFILE", conflicts_with = "mix")]
    pub(crate) postfile: Option<PathBuf>,
    /// Content-type header for the POST data (default text/plain).
    #[arg(short = 'T', value_name = "CONTENT_TYPE", conflicts_with = "mix")]
    pub(crate) content_type: Option<String>,
    /// A weighted mix of requests from a TOML file of `[[request]]` entries (weight,
    /// method, path, body or body_file, content_type, headers); -H applies to all.
    #[arg(long, value_name = "FILE")]
    pub(crate) mix: Option<PathBuf>,
    /// Retry a retryable failure (idempotent method, reused connection, no response
    /// byte) once on a new connection, as Go and browsers do: 'safe' (the default
    /// value) reports the outcome after the retry, 'both' the raw outcome and the
    /// outcome after the retry.
    #[arg(long, value_name = "MODE", num_args = 0..=1, require_equals = true,
          default_missing_value = "safe", value_parser = parse_retry)]
    pub(crate) retry_safe: Option<RetryPolicy>,
    /// Pause of each client after each of its requests, e.g. 50ms (not in any latency;
    /// kept-alive connections sit idle meanwhile). Not with --rate.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) think_time: Option<Duration>,
    /// Do not show progress when doing more than 150 requests.
    #[arg(short = 'q')]
    pub(crate) quiet: bool,
    /// Accepted for ab compatibility: responses of varying length are never failures.
    #[arg(short = 'l')]
    pub(crate) variable_length: bool,
    /// Output CSV file with the percentage served (0..100) and the time in ms.
    #[arg(short = 'e', value_name = "CSV_FILE")]
    pub(crate) csv: Option<PathBuf>,
    /// Output all measured values as a 'gnuplot' (TSV) file.
    #[arg(short = 'g', value_name = "GNUPLOT_FILE")]
    pub(crate) gnuplot: Option<PathBuf>,
    /// Write the full JSON report to FILE ('-': JSON on stdout, text on stderr).
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<String>,
    /// Write an HdrHistogram interval log (one histogram per bucket) to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) hdr: Option<PathBuf>,
    /// Open loop: start R requests per second in total, latency from the intended start.
    #[arg(long, value_name = "R")]
    pub(crate) rate: Option<f64>,
    /// Width of a time bucket (e.g. 100ms, 1s).
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub(crate) bucket: Duration,
    /// Spread client source addresses over 127.0.0.1..=127.0.0.N (127.x targets only).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) source_ips: u32,
    /// Worker threads (0: one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) threads: usize,
    /// Failures kept individually in the JSON report; beyond it they are counted only.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub(crate) failure_records: usize,
    /// Send `x-reloadbench-id: <n>` with every request (n = its index in the run, from
    /// 0) and list each failure's id in the JSON report.
    #[arg(long)]
    pub(crate) request_ids: bool,
    /// https://: verify the server's certificate against the CA certificates of this
    /// PEM file.
    #[arg(long, value_name = "FILE")]
    pub(crate) cacert: Option<PathBuf>,
    /// https://: accept any server certificate (no verification).
    #[arg(long, conflicts_with = "cacert")]
    pub(crate) insecure: bool,
    /// https://: offer only this TLS version, 1.2 or 1.3 (default: both).
    #[arg(long, value_name = "VERSION", value_parser = parse_tls_version)]
    pub(crate) tls_version: Option<TlsVersion>,
    /// https://: never resume a TLS session (every handshake is a full one).
    #[arg(long)]
    pub(crate) no_resume: bool,
    /// HTTP/2: prior knowledge (h2c) for http://, ALPN h2 for https://; -c is then
    /// the number of connections.
    #[arg(long)]
    pub(crate) h2: bool,
    /// With --h2: concurrent streams per connection (c × N requests in flight).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "h2")]
    pub(crate) streams: u64,
    /// With --h2: send a stream refused by a GOAWAY (never processed by the server)
    /// once more on a new connection, and count the retries.
    #[arg(long, requires = "h2")]
    pub(crate) retry_refused: bool,
    /// WebSocket clients instead of requests: -c connections held for -t seconds
    /// (required), each sending a message every --message-interval and expecting its
    /// echo; a connection that ends is reopened. The URL may be ws:// or wss://.
    /// With --h2: WebSockets over HTTP/2 streams (RFC 8441 extended CONNECT), one
    /// connection per client.
    #[arg(long, conflicts_with_all = ["mix", "stream", "rate"])]
    pub(crate) ws: bool,
    /// --ws: pause between two messages of a connection.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub(crate) message_interval: Duration,
    /// --ws: bytes per message (at least 8: a sequence number).
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    pub(crate) message_bytes: usize,
    /// --ws: an echo not back within this makes the message late.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration)]
    pub(crate) message_timeout: Duration,
    /// --ws: pause between a connection's end and the next attempt.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub(crate) reconnect_delay: Duration,
    /// The URL answers with a long, streamed response (the origin's
    /// /stream?seconds=S&interval=I): a response is ok only when complete, one cut
    /// mid-body is truncated, with the bytes received counted.
    #[arg(long, conflicts_with = "h2")]
    pub(crate) stream: bool,
    /// Target URL, `http[s]://host[:port][/path]` (HTTP/1.1 or, with --h2, HTTP/2,
    /// over TCP or TLS; ws:// or wss:// with --ws).
    #[arg(value_name = "URL")]
    pub(crate) url: String,
}

fn parse_retry(v: &str) -> Result<RetryPolicy, String> {
    RetryPolicy::from_key(v).ok_or_else(|| format!("expected safe, both or none, got {v:?}"))
}

fn parse_tls_version(v: &str) -> Result<TlsVersion, String> {
    TlsVersion::from_key(v).ok_or_else(|| format!("expected 1.2 or 1.3, got {v:?}"))
}

fn seconds(name: &str, v: f64) -> Result<Duration, String> {
    if v.is_finite() && v > 0.0 && v < 1e9 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!(
            "{name} must be a positive number of seconds, got {v}"
        ))
    }
}

impl Cli {
    /// The library configuration; `body` is the content of `-p`, `mix` that of `--mix`.
    pub(crate) fn to_config(
        &self,
        body: Option<Vec<u8>>,
        mix: Vec<RequestKind>,
    ) -> Result<LoadConfig, String> {
        let url = match (
            self.url.strip_prefix("ws://"),
            self.url.strip_prefix("wss://"),
        ) {
            (Some(rest), _) if self.ws => format!("http://{rest}"),
            (_, Some(rest)) if self.ws => format!("https://{rest}"),
            _ => self.url.clone(),
        };
        let mut c = LoadConfig::new(&url).map_err(|e| e.to_string())?;
        if self.ws {
            if self.timelimit.is_none() {
                return Err("--ws needs -t (how long the connections are held)".to_owned());
            }
            c.ws = Some(WsOptions {
                message_interval: self.message_interval,
                message_bytes: self.message_bytes,
                message_timeout: self.message_timeout,
                reconnect_delay: self.reconnect_delay,
            });
            c.keep_alive = true;
        }
        c.stream = self.stream;
        c.concurrency = self.concurrency;
        c.requests = match (self.requests, self.timelimit) {
            (Some(n), _) => Some(n),
            (None, Some(_)) => None,
            (None, None) => Some(1),
        };
        c.duration = self.timelimit.map(|t| seconds("-t", t)).transpose()?;
        c.timeout = seconds("-s", self.timeout)?;
        c.keep_alive = self.keep_alive || c.ws.is_some();
        for h in &self.headers {
            let Some((k, v)) = h.split_once(':') else {
                return Err(format!("-H {h:?}: expected 'Name: value'"));
            };
            c.headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        c.method = match (&self.method, &body) {
            (Some(m), _) => m.clone(),
            (None, Some(_)) => "POST".to_owned(),
            (None, None) => "GET".to_owned(),
        };
        c.body = body;
        c.content_type = self.content_type.clone();
        c.mix = mix;
        c.retry = self.retry_safe.unwrap_or_default();
        c.think_time = self.think_time;
        c.rate = self.rate;
        c.bucket = self.bucket;
        c.source_ips = self.source_ips;
        c.threads = self.threads;
        c.failure_records_cap = self.failure_records;
        c.record_requests = self.gnuplot.is_some();
        c.request_ids = self.request_ids;
        c.tls.ca_file.clone_from(&self.cacert);
        c.tls.insecure = self.insecure;
        c.tls.version = self.tls_version;
        c.tls.resume = !self.no_resume;
        c.h2 = self.h2;
        c.streams = self.streams;
        c.retry_refused = self.retry_refused;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn ab_defaults() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "-t",
            "2",
            "-k",
            "-H",
            "X-A: b",
            "http://127.0.0.1:1/",
        ])
        .unwrap();
        let c = cli.to_config(None, Vec::new()).unwrap();
        assert_eq!(c.requests, None);
        assert_eq!(c.duration, Some(Duration::from_secs(2)));
        assert_eq!(c.headers, vec![("X-A".to_owned(), "b".to_owned())]);
        let cli = Cli::try_parse_from(["loadgen", "http://127.0.0.1:1/"]).unwrap();
        let c = cli.to_config(Some(b"x".to_vec()), Vec::new()).unwrap();
        assert_eq!((c.requests, c.method.as_str()), (Some(1), "POST"));
        let cli = Cli::try_parse_from(["loadgen", "-s", "0", "http://127.0.0.1:1/"]).unwrap();
        assert!(cli.to_config(None, Vec::new()).is_err());
    }

    #[test]
    fn retry_and_think_time_flags() {
        let parse = |args: &[&str]| {
            let mut all = vec!["loadgen"];
            all.extend_from_slice(args);
            all.push("http://127.0.0.1:1/");
            Cli::try_parse_from(all).map(|c| c.to_config(None, Vec::new()).unwrap())
        };
        assert_eq!(parse(&[]).unwrap().retry, RetryPolicy::None);
        assert_eq!(parse(&["--retry-safe"]).unwrap().retry, RetryPolicy::Safe);
        assert_eq!(
            parse(&["--retry-safe=both"]).unwrap().retry,
            RetryPolicy::Both
        );
        assert!(parse(&["--retry-safe=maybe"]).is_err());
        let c = parse(&["--think-time", "50ms"]).unwrap();
        assert_eq!(c.think_time, Some(Duration::from_millis(50)));
        assert!(
            parse(&["--mix", "m.toml", "-p", "b"]).is_err(),
            "--mix replaces -p"
        );
    }

    #[test]
    fn h2_flags() {
        let parse = |args: &[&str]| {
            let mut all = vec!["loadgen"];
            all.extend_from_slice(args);
            all.push("http://127.0.0.1:1/");
            Cli::try_parse_from(all).map(|c| c.to_config(None, Vec::new()).unwrap())
        };
        let c = parse(&[]).unwrap();
        assert!(!c.h2 && c.streams == 1 && !c.retry_refused);
        let c = parse(&["--h2", "--streams", "10", "--retry-refused"]).unwrap();
        assert!(c.h2 && c.streams == 10 && c.retry_refused);
        assert!(parse(&["--streams", "10"]).is_err(), "needs --h2");
        assert!(parse(&["--retry-refused"]).is_err(), "needs --h2");
        let c = parse(&["--h2", "--retry-safe"]).unwrap();
        assert!(c.check().is_err(), "--retry-safe is HTTP/1.1's");
        let c = parse(&["--h2", "--streams", "0"]).unwrap();
        assert!(c.check().is_err());
    }

    #[test]
    fn ws_and_stream_flags() {
        let parse = |args: &[&str]| {
            let mut all = vec!["loadgen"];
            all.extend_from_slice(args);
            Cli::try_parse_from(all).map(|c| c.to_config(None, Vec::new()))
        };
        let c = parse(&["--ws", "-t", "2", "-c", "3", "ws://127.0.0.1:1/ws"])
            .unwrap()
            .unwrap();
        assert_eq!(c.url, "http://127.0.0.1:1/ws");
        assert_eq!(c.ws, Some(WsOptions::default()));
        assert!(c.keep_alive);
        let c = parse(&[
            "--ws",
            "-t",
            "1",
            "--message-interval",
            "10ms",
            "--message-bytes",
            "100",
            "--message-timeout",
            "2s",
            "--reconnect-delay",
            "5ms",
            "wss://127.0.0.1:1/ws",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.url, "https://127.0.0.1:1/ws");
        let ws = c.ws.unwrap();
        assert_eq!(ws.message_interval, Duration::from_millis(10));
        assert_eq!(ws.message_bytes, 100);
        assert_eq!(ws.message_timeout, Duration::from_secs(2));
        assert_eq!(ws.reconnect_delay, Duration::from_millis(5));
        assert!(
            parse(&["--ws", "ws://127.0.0.1:1/"]).unwrap().is_err(),
            "-t needed"
        );
        assert!(parse(&["--ws", "--stream", "-t", "1", "http://127.0.0.1:1/"]).is_err());
        let c = parse(&["--stream", "http://127.0.0.1:1/stream?seconds=1"])
            .unwrap()
            .unwrap();
        assert!(c.stream && c.ws.is_none());
        // WebSockets over HTTP/2 (RFC 8441); one per connection, so no --streams.
        let c = parse(&["--ws", "--h2", "-t", "1", "ws://127.0.0.1:1/ws"])
            .unwrap()
            .unwrap();
        assert!(c.h2 && c.ws.is_some() && c.check().is_ok());
        let c = parse(&["--ws", "--h2", "--streams", "2", "-t", "1", "ws://h:1/ws"])
            .unwrap()
            .unwrap();
        assert!(c.check().unwrap_err().to_string().contains("--streams"));
        assert!(parse(&["--stream", "--h2", "http://127.0.0.1:1/stream"]).is_err());
    }

    #[test]
    fn tls_flags() {
        let parse = |args: &[&str]| {
            let mut all = vec!["loadgen"];
            all.extend_from_slice(args);
            all.push("https://127.0.0.1:1/");
            Cli::try_parse_from(all).map(|c| c.to_config(None, Vec::new()).unwrap())
        };
        let c = parse(&[]).unwrap();
        assert_eq!(c.tls, reloadbench_loadgen::TlsOptions::default());
        assert!(c.tls.resume, "resumption is on by default");
        let c = parse(&["--cacert", "ca.pem", "--tls-version", "1.2", "--no-resume"]).unwrap();
        assert_eq!(c.tls.ca_file, Some(PathBuf::from("ca.pem")));
        assert_eq!(c.tls.version, Some(TlsVersion::Tls12));
        assert!(!c.tls.resume && !c.tls.insecure);
        assert!(parse(&["--insecure"]).unwrap().tls.insecure);
        assert!(parse(&["--tls-version", "1.1"]).is_err());
        assert!(parse(&["--insecure", "--cacert", "ca.pem"]).is_err());
    }
}
