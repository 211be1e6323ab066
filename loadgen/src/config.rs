//! [`LoadConfig`]: what a run does, and its validation into the settings the
//! workers use.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reloadbench_model::load::{LoadConfigSummary, RetryPolicy};
use reloadbench_model::outcome::is_idempotent;

use crate::error::LoadError;
use crate::mix::{self, MAX_MIX_CYCLE, MAX_MIX_KINDS, PreparedKind, RequestKind, Schedule};
use crate::target::{self, RequestSpec};
use crate::tls::{self, TlsOptions};

/// The most concurrent clients a run accepts.
pub const MAX_CONCURRENCY: u64 = 1_000_000;
/// The narrowest time bucket.
pub const MIN_BUCKET: Duration = Duration::from_millis(1);
/// The widest time bucket (wider buckets say nothing about a reload, and
/// their width in ns must fit the report's arithmetic).
pub const MAX_BUCKET: Duration = Duration::from_secs(3600);

/// Settings of one load run. Build with [`LoadConfig::new`], then set fields.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadConfig {
    /// Target URL, `http[s]://host[:port][/path]`; parsed and resolved by [`crate::start`].
    pub url: String,
    /// HTTP method (default `GET`); not used with a [`LoadConfig::mix`].
    pub method: String,
    /// Extra request headers, sent with every request (of every kind of a
    /// mix); a `Host`, `User-Agent`, `Accept` or `Connection` header here
    /// replaces loadgen's default one.
    pub headers: Vec<(String, String)>,
    /// Request body, sent with every request (with [`LoadConfig::content_type`]);
    /// must be `None` with a [`LoadConfig::mix`] (each kind has its own).
    pub body: Option<Vec<u8>>,
    /// Content type of the body (default `text/plain` when a body is set);
    /// must be `None` with a [`LoadConfig::mix`].
    pub content_type: Option<String>,
    /// A weighted mix of request kinds (`--mix`): request `i` of the run is
    /// of the kind a smooth weighted round-robin gives index `i` (see
    /// [`crate::mix`]). Empty (the default): every request is
    /// [`LoadConfig::method`] on the URL's path with [`LoadConfig::body`].
    pub mix: Vec<RequestKind>,
    /// How retryable failures are retried (`--retry-safe`; default: never).
    pub retry: RetryPolicy,
    /// Pause of each client after each of its requests, before the next
    /// (`--think-time`; closed loop only). Not part of any latency; a
    /// kept-alive connection sits idle meanwhile.
    pub think_time: Option<Duration>,
    /// Concurrent clients, each with at most one request in flight (default
    /// 1); with [`LoadConfig::h2`], connections, each with
    /// [`LoadConfig::streams`] requests in flight.
    pub concurrency: u64,
    /// Number of requests (`-n`). `None` means no count limit: the run ends
    /// with [`LoadConfig::duration`] or [`crate::LoadRun::stop`].
    pub requests: Option<u64>,
    /// Time limit (`-t`): no request starts after it.
    pub duration: Option<Duration>,
    /// Open loop: requests per second over all clients (`--rate`).
    pub rate: Option<f64>,
    /// Keep connections alive between requests (`-k`).
    pub keep_alive: bool,
    /// Connect timeout, and time allowed for a complete response once connected (`-s`, default 30 s).
    pub timeout: Duration,
    /// Width of a time bucket (default 100 ms).
    pub bucket: Duration,
    /// Spread client source addresses over 127.0.0.1..=127.0.0.N (0 or 1: the default source).
    pub source_ips: u32,
    /// How many failures are kept individually; beyond it they are only counted.
    pub failure_records_cap: usize,
    /// Worker threads, each running its share of the clients (0: one per available core).
    pub threads: usize,
    /// Keep one sample per successful request (memory grows with the run; for ab's `-g`).
    pub record_requests: bool,
    /// Send `x-reloadbench-id: <n>` with every request (`n` its index in the run, from
    /// 0) and record each failure's id, so a server can tell which requests it answered.
    pub request_ids: bool,
    /// How an `https://` URL speaks TLS (CA file or none, version, session
    /// resumption); not used for `http://`.
    pub tls: TlsOptions,
    /// Speak HTTP/2 (`--h2`): prior knowledge for `http://` (h2c), ALPN
    /// `h2` for `https://`. [`LoadConfig::concurrency`] is then the number
    /// of connections.
    pub h2: bool,
    /// With [`LoadConfig::h2`]: concurrent streams per connection
    /// (`--streams`, default 1).
    pub streams: u64,
    /// With [`LoadConfig::h2`]: retry a stream refused by a GOAWAY once on
    /// a new connection (`--retry-refused`).
    pub retry_refused: bool,
    /// `--ws`: WebSocket clients instead of requests (each of the
    /// [`LoadConfig::concurrency`] clients holds one connection for the
    /// run's [`LoadConfig::duration`], see [`crate::ws`]); `None`: requests.
    pub ws: Option<crate::ws::WsOptions>,
    /// `--stream`: the URL answers with a long (streamed) response; the
    /// report gets a [`StreamReport`](reloadbench_model::ws::StreamReport).
    pub stream: bool,
    /// Connect to this address instead of resolving the URL's host (which
    /// stays the TLS server name and the `Host` header): a caller that
    /// checked where the host resolves gives the checked address here.
    pub connect_to: Option<SocketAddr>,
}

impl LoadConfig {
    /// Defaults for `url`: one `GET`, one client, no keep-alive, 30 s timeout.
    ///
    /// The URL is checked for syntax here (`http://` or `https://`); it is resolved by [`crate::start`].
    pub fn new(url: &str) -> Result<LoadConfig, LoadError> {
        target::parse_url(url)?;
        Ok(LoadConfig {
            url: url.to_owned(),
            method: "GET".to_owned(),
            headers: Vec::new(),
            body: None,
            content_type: None,
            mix: Vec::new(),
            retry: RetryPolicy::None,
            think_time: None,
            concurrency: 1,
            requests: Some(1),
            duration: None,
            rate: None,
            keep_alive: false,
            timeout: Duration::from_secs(30),
            bucket: Duration::from_millis(100),
            source_ips: 0,
            failure_records_cap: 1_000_000,
            threads: 0,
            record_requests: false,
            request_ids: false,
            tls: TlsOptions::default(),
            h2: false,
            streams: 1,
            retry_refused: false,
            ws: None,
            stream: false,
            connect_to: None,
        })
    }

    /// The settings as written into the report.
    pub fn summary(&self) -> LoadConfigSummary {
        let url_path = target::parse_url(&self.url).map_or_else(|_| "/".to_owned(), |u| u.path);
        LoadConfigSummary {
            url: self.url.clone(),
            method: self.summary_method(),
            concurrency: self.concurrency,
            requests: self.requests,
            duration_ms: self.duration.map(|d| d.as_millis() as u64),
            rate: self.rate,
            keep_alive: self.keep_alive,
            timeout_ms: self.timeout.as_millis() as u64,
            bucket_ms: self.bucket.as_millis() as u64,
            mix: self.mix.iter().map(|k| k.summary(&url_path)).collect(),
            retry: self.retry,
            think_time_ms: self.think_time.map(|d| d.as_millis() as u64),
            tls: self.tls_summary(),
        }
    }

    /// The TLS options as reported: `None` for an `http://` URL.
    fn tls_summary(&self) -> Option<reloadbench_model::load::TlsSummary> {
        let tls = target::parse_url(&self.url).is_ok_and(|u| u.tls);
        tls.then(|| reloadbench_model::load::TlsSummary {
            version: self.tls.version.map(|v| match v {
                crate::tls::TlsVersion::Tls12 => "1.2".to_owned(),
                crate::tls::TlsVersion::Tls13 => "1.3".to_owned(),
            }),
            insecure: self.tls.insecure,
            ca_file: self.tls.ca_file.as_ref().map(|p| p.display().to_string()),
            resume: self.tls.resume,
        })
    }

    /// The method as reported: [`LoadConfig::method`], or with a mix its
    /// distinct methods in order of first appearance, joined by `+`.
    fn summary_method(&self) -> String {
        if self.mix.is_empty() {
            return self.method.clone();
        }
        let mut seen: Vec<&str> = Vec::new();
        for k in &self.mix {
            if !seen.contains(&k.method.as_str()) {
                seen.push(&k.method);
            }
        }
        seen.join("+")
    }

    /// The method of each request kind, by kind index.
    pub(crate) fn kind_methods(&self) -> Vec<String> {
        if self.mix.is_empty() {
            return vec![self.method.clone()];
        }
        self.mix.iter().map(|k| k.method.clone()).collect()
    }

    /// The request kinds of the run: the mix, or the one kind of
    /// `method`, `body` and `content_type`.
    fn kinds(&self) -> Vec<RequestKind> {
        if !self.mix.is_empty() {
            return self.mix.clone();
        }
        vec![RequestKind {
            weight: 1,
            method: self.method.clone(),
            path: None,
            headers: Vec::new(),
            body: self.body.clone(),
            content_type: self.content_type.clone(),
        }]
    }

    /// Checks every setting without touching the network: the URL's syntax
    /// and each limit. [`crate::start`] runs the same check; a caller that
    /// validates its own configuration files (the reloadbench harness) calls it
    /// up front so a run never fails on a setting after it started.
    pub fn check(&self) -> Result<(), LoadError> {
        self.check_settings().map(|_| ())
    }

    fn check_settings(&self) -> Result<target::UrlParts, LoadError> {
        let bad = |field: &'static str, reason: &str| LoadError::InvalidConfig {
            field,
            reason: reason.to_owned(),
        };
        let url = target::parse_url(&self.url)?;
        if self.concurrency == 0 {
            return Err(bad("concurrency", "must be at least 1"));
        }
        if self.concurrency > MAX_CONCURRENCY {
            return Err(bad(
                "concurrency",
                &format!("must be at most {MAX_CONCURRENCY}"),
            ));
        }
        if let Some(n) = self.requests
            && n == 0
        {
            return Err(bad("requests", "must be at least 1"));
        }
        if let Some(r) = self.rate
            && !(r.is_finite() && r > 0.0)
        {
            return Err(bad(
                "rate",
                "must be a positive number of requests per second",
            ));
        }
        if self.timeout.is_zero() {
            return Err(bad("timeout", "must be positive"));
        }
        if self.bucket < MIN_BUCKET {
            return Err(bad("bucket", "must be at least 1ms"));
        }
        if self.bucket > MAX_BUCKET {
            return Err(bad("bucket", "must be at most 1h"));
        }
        if let Some(reason) = method_problem(&self.method) {
            return Err(bad("method", &reason));
        }
        if let Some(reason) = headers_problem(&self.headers) {
            return Err(bad("headers", &reason));
        }
        self.check_mix()?;
        if let Some(t) = self.think_time {
            if self.rate.is_some() {
                return Err(bad(
                    "think_time",
                    "only in a closed loop (not with rate): a rate already sets when requests start",
                ));
            }
            if t > MAX_BUCKET {
                return Err(bad("think_time", "must be at most 1h"));
            }
        }
        if url.tls && !self.tls.insecure && self.tls.ca_file.is_none() {
            return Err(bad(
                "tls.ca_file",
                "an https:// URL needs a CA file (--cacert FILE) or --insecure",
            ));
        }
        self.check_h2()?;
        if self.source_ips > 254 {
            return Err(bad(
                "source_ips",
                "at most 254 addresses (127.0.0.1..=127.0.0.254)",
            ));
        }
        if let Some(ws) = &self.ws {
            crate::ws::check(ws, self)?;
            crate::ws::WsCtx::new(ws, &url, self.bucket)?;
        }
        Ok(url)
    }

    /// Checks the HTTP/2 settings: `streams` and `retry_refused` only with
    /// `h2`, and no HTTP/1.1 retry policy with it.
    fn check_h2(&self) -> Result<(), LoadError> {
        let bad = |field: &'static str, reason: &str| LoadError::InvalidConfig {
            field,
            reason: reason.to_owned(),
        };
        if self.streams == 0 || self.streams > crate::http2::MAX_STREAMS {
            return Err(bad(
                "streams",
                &format!("must be in 1..={}", crate::http2::MAX_STREAMS),
            ));
        }
        if !self.h2 && (self.streams != 1 || self.retry_refused) {
            return Err(bad(
                "streams",
                "--streams and --retry-refused are HTTP/2 settings: add --h2",
            ));
        }
        if self.h2 && self.retry != RetryPolicy::None {
            return Err(bad(
                "retry",
                "--retry-safe is the HTTP/1.1 retry; with --h2 use --retry-refused",
            ));
        }
        if self.h2 && self.concurrency.saturating_mul(self.streams) > MAX_CONCURRENCY {
            return Err(bad(
                "streams",
                &format!("connections × streams must be at most {MAX_CONCURRENCY}"),
            ));
        }
        Ok(())
    }

    /// Checks the mix: its size, and each kind's weight, method, path and
    /// headers; errors name the kind (`request N`, from 1) and its field.
    fn check_mix(&self) -> Result<(), LoadError> {
        if self.mix.is_empty() {
            return Ok(());
        }
        let bad = |reason: String| LoadError::InvalidConfig {
            field: "mix",
            reason,
        };
        if self.body.is_some() || self.content_type.is_some() {
            return Err(bad(
                "a mix sets the body of each request kind: body and content_type must be unset"
                    .to_owned(),
            ));
        }
        if self.mix.len() > MAX_MIX_KINDS {
            return Err(bad(format!(
                "{} request kinds, at most {MAX_MIX_KINDS}",
                self.mix.len()
            )));
        }
        for (i, k) in self.mix.iter().enumerate() {
            let n = i + 1;
            if k.weight == 0 {
                return Err(bad(format!("request {n}: weight: must be at least 1")));
            }
            if let Some(reason) = method_problem(&k.method) {
                return Err(bad(format!("request {n}: method: {reason}")));
            }
            if let Some(path) = &k.path
                && let Some(reason) = target::path_problem(path)
            {
                return Err(bad(format!("request {n}: path {path:?}: {reason}")));
            }
            if let Some(reason) = headers_problem(&k.headers) {
                return Err(bad(format!("request {n}: headers: {reason}")));
            }
            if k.content_type.is_some() && k.body.is_none() {
                return Err(bad(format!("request {n}: content_type: only with a body")));
            }
        }
        let weights: Vec<u32> = self.mix.iter().map(|k| k.weight).collect();
        let len = mix::cycle_len(&weights);
        if len > MAX_MIX_CYCLE {
            return Err(bad(format!(
                "the weights divided by their greatest common divisor add up to {len}, at most {MAX_MIX_CYCLE}"
            )));
        }
        Ok(())
    }

    /// Checks the settings and resolves the target.
    pub(crate) fn validate(&self) -> Result<Validated, LoadError> {
        let url = self.check_settings()?;
        let addr = match self.connect_to {
            Some(a) => a,
            None => target::resolve(&url)?,
        };
        if self.source_ips > 1 {
            let loopback4 = matches!(addr.ip(), IpAddr::V4(ip) if ip.octets()[0] == 127);
            if !loopback4 {
                return Err(LoadError::InvalidConfig {
                    field: "source_ips",
                    reason: "only for targets on 127.0.0.0/8".to_owned(),
                });
            }
        }
        let kinds: Vec<RequestKind> = self.kinds();
        let weights: Vec<u32> = kinds.iter().map(|k| k.weight).collect();
        let prepared = kinds.iter().map(|k| self.prepare(&url, k)).collect();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = if self.threads == 0 {
            cores
        } else {
            self.threads
        };
        let threads = threads.min(self.concurrency as usize).max(1);
        let tls = match url.tls {
            false => None,
            true => Some(crate::client::TlsCtx {
                config: tls::client_config(&self.tls, self.concurrency)?,
                server_name: tls::server_name(&url.host)?,
            }),
        };
        let tls = match tls {
            Some(t) if self.h2 && self.ws.is_some() => Some(crate::ws::over_h2::alpn_h2(t)),
            other => other,
        };
        // `--ws --h2`: WebSocket clients over HTTP/2 streams, not request streams.
        let h2 = match self.h2 && self.ws.is_none() {
            false => None,
            true => Some(Arc::new(self.h2_ctx(&url, addr)?)),
        };
        let ws = match &self.ws {
            None => None,
            Some(o) => {
                let mut ws = crate::ws::WsCtx::new(o, &url, self.bucket)?;
                if self.h2 {
                    let over = crate::ws::over_h2::OverH2::new(&url, self.retry_refused);
                    ws.h2 = Some(Arc::new(over));
                }
                Some(Arc::new(ws))
            }
        };
        Ok(Validated {
            h2,
            ws,
            tls: tls.map(Arc::new),
            addr,
            kinds: prepared,
            schedule: Schedule::new(&weights),
            threads,
        })
    }

    /// The shared settings of the HTTP/2 stream loops.
    fn h2_ctx(
        &self,
        url: &target::UrlParts,
        addr: SocketAddr,
    ) -> Result<crate::http2::H2Ctx, LoadError> {
        let kinds = self
            .kinds()
            .iter()
            .map(|k| {
                let headers = self.kind_headers(k);
                crate::http2::kind(&crate::http2::KindSpec {
                    method: &k.method,
                    scheme: if url.tls { "https" } else { "http" },
                    authority: &url.host_header,
                    path: k.path.as_deref().unwrap_or(&url.path),
                    headers: &headers,
                    body: k.body.as_deref(),
                    content_type: k.content_type.as_deref(),
                    idempotent: is_idempotent(&k.method),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let weights: Vec<u32> = self.kinds().iter().map(|k| k.weight).collect();
        let tls = match url.tls {
            false => None,
            true => {
                let mut config =
                    Arc::unwrap_or_clone(tls::client_config(&self.tls, self.concurrency)?);
                config.alpn_protocols = vec![b"h2".to_vec()];
                Some(Arc::new(crate::client::TlsCtx {
                    config: Arc::new(config),
                    server_name: tls::server_name(&url.host)?,
                }))
            }
        };
        Ok(crate::http2::H2Ctx {
            addr,
            kinds,
            schedule: Schedule::new(&weights),
            timeout: self.timeout,
            source_ips: self.source_ips,
            think_time: self.think_time,
            streams: self.streams,
            retry_refused: self.retry_refused,
            request_ids: self.request_ids,
            tls,
        })
    }

    /// The headers of one kind: the run's, replaced by the kind's own of the
    /// same name, then the kind's others.
    fn kind_headers(&self, kind: &RequestKind) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .filter(|(k, _)| !kind.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(k)))
            .cloned()
            .collect();
        headers.extend(kind.headers.iter().cloned());
        headers
    }

    /// The request bytes and facts of one kind: the run's headers, replaced
    /// by the kind's own of the same name, then the kind's others.
    fn prepare(&self, url: &target::UrlParts, kind: &RequestKind) -> PreparedKind {
        let headers = self.kind_headers(kind);
        let mut url = url.clone();
        if let Some(path) = &kind.path {
            url.path.clone_from(path);
        }
        let request = target::build_request(&RequestSpec {
            method: &kind.method,
            url: &url,
            headers: &headers,
            body: kind.body.as_deref(),
            content_type: kind.content_type.as_deref(),
            keep_alive: self.keep_alive,
        });
        let id_at = self
            .request_ids
            .then(|| target::head_end(&request))
            .flatten();
        PreparedKind {
            request,
            id_at,
            // Methods are case-sensitive (RFC 9110 §9.1): only `HEAD` is HEAD.
            head_request: kind.method == "HEAD",
            asks_upgrade: headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("upgrade")),
            idempotent: is_idempotent(&kind.method),
        }
    }
}

/// What is wrong with `method`, if anything: it must be a token.
fn method_problem(method: &str) -> Option<String> {
    let token = !method.is_empty()
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (!token).then(|| "must be a token such as GET or POST".to_owned())
}

/// Header fields that frame the request body: loadgen writes them from the body
/// itself, so a request always says truthfully where it ends (a user's own value
/// would make the server read another request out of the body, or wait for bytes
/// that never come).
pub const FRAMING_HEADERS: [&str; 2] = ["Content-Length", "Transfer-Encoding"];

/// Whether `name` is one of [`FRAMING_HEADERS`] (in any case).
pub fn is_framing_header(name: &str) -> bool {
    FRAMING_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// What is wrong with `headers`, if anything: a name must be a token and not a
/// framing header ([`FRAMING_HEADERS`]), and a value may not hold a line break.
fn headers_problem(headers: &[(String, String)]) -> Option<String> {
    headers.iter().find_map(|(k, v)| {
        let bad_name = k.is_empty() || k.bytes().any(|b| b <= b' ' || b == b':' || b >= 0x7f);
        if is_framing_header(k) {
            return Some(format!(
                "{k} is written by loadgen from the body (-p, body, body_file), not given"
            ));
        }
        (bad_name || v.bytes().any(|b| b == b'\r' || b == b'\n'))
            .then(|| format!("invalid header {k:?}: {v:?}"))
    })
}

/// Settings derived from a checked [`LoadConfig`].
#[derive(Debug, Clone)]
pub(crate) struct Validated {
    /// Resolved target address.
    pub(crate) addr: SocketAddr,
    /// The request kinds (one without a mix), ready to send.
    pub(crate) kinds: Vec<PreparedKind>,
    /// Which kind each request is.
    pub(crate) schedule: Schedule,
    /// Worker threads to start.
    pub(crate) threads: usize,
    /// For an `https://` URL: the TLS client of the run.
    pub(crate) tls: Option<Arc<crate::client::TlsCtx>>,
    /// For an `--h2` run: what its stream loops share.
    pub(crate) h2: Option<Arc<crate::http2::H2Ctx>>,
    /// For a `--ws` run: the WebSocket settings of its clients.
    pub(crate) ws: Option<Arc<crate::ws::WsCtx>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let mut c = LoadConfig::new("http://127.0.0.1:9/").unwrap();
        assert_eq!(c.requests, Some(1));
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert!(c.validate().is_ok());
        c.concurrency = 0;
        assert!(c.validate().is_err());
        c.concurrency = 2;
        c.rate = Some(0.0);
        assert!(c.validate().is_err());
        c.rate = None;
        c.headers.push(("Bad Name".into(), "x".into()));
        assert!(c.validate().is_err());
        c.headers.clear();
        c.url = "http://[::1]:9/".into();
        c.source_ips = 4;
        assert!(c.validate().is_err());
    }

    #[test]
    fn the_summary_states_the_tls_options_of_an_https_run_only() {
        let mut c = LoadConfig::new("https://127.0.0.1:9/").unwrap();
        c.tls.ca_file = Some("ca.pem".into());
        c.tls.version = Some(crate::tls::TlsVersion::Tls12);
        c.tls.resume = false;
        let tls = c.summary().tls.unwrap();
        assert_eq!(tls.version.as_deref(), Some("1.2"));
        assert_eq!(tls.ca_file.as_deref(), Some("ca.pem"));
        assert!(!tls.insecure && !tls.resume);
        c.tls.insecure = true;
        c.tls.version = None;
        let tls = c.summary().tls.unwrap();
        assert!(tls.insecure && tls.version.is_none());
        c.url = "http://127.0.0.1:9/".into();
        assert_eq!(c.summary().tls, None);
    }

    #[test]
    fn https_needs_a_ca_file_or_insecure() {
        let mut c = LoadConfig::new("https://127.0.0.1:9/").unwrap();
        assert!(
            matches!(
                c.check(),
                Err(LoadError::InvalidConfig {
                    field: "tls.ca_file",
                    ..
                })
            ),
            "{:?}",
            c.check()
        );
        c.tls.insecure = true;
        assert!(c.validate().unwrap().tls.is_some());
        c.tls.insecure = false;
        c.tls.ca_file = Some("/nonexistent/ca.pem".into());
        assert!(c.check().is_ok(), "the file is read by validate");
        let e = c.validate().unwrap_err();
        assert!(matches!(e, LoadError::CaFile { .. }), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here").unwrap();
        c.tls.ca_file = Some(empty);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("no CERTIFICATE"), "{e}");
        let plain = LoadConfig::new("http://127.0.0.1:9/").unwrap();
        assert!(plain.validate().unwrap().tls.is_none());
    }

    #[test]
    fn check_enforces_the_limits_without_resolving() {
        let mut c = LoadConfig::new("http://no-such-host.invalid:9/").unwrap();
        assert!(c.check().is_ok(), "no lookup in check");
        c.concurrency = MAX_CONCURRENCY + 1;
        let e = c.check().unwrap_err();
        assert!(
            matches!(
                e,
                LoadError::InvalidConfig {
                    field: "concurrency",
                    ..
                }
            ),
            "{e}"
        );
        c.concurrency = MAX_CONCURRENCY;
        c.bucket = MAX_BUCKET + Duration::from_millis(1);
        assert!(matches!(
            c.check(),
            Err(LoadError::InvalidConfig {
                field: "bucket",
                ..
            })
        ));
        c.bucket = MAX_BUCKET;
        c.url = "http://127.0.0.1:9/a b".into();
        assert!(matches!(c.check(), Err(LoadError::InvalidUrl { .. })));
    }
}
