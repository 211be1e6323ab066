//! The scenario file as written: serde structs mirroring the TOML, with
//! spans on the fields checked after deserialization. Unknown fields are
//! errors everywhere.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// A string field with its place in the file.
pub(super) type SStr = Spanned<String>;
/// A free-form field (checked by hand) with its place in the file.
pub(super) type SVal = Spanned<toml::Value>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub(super) name: Option<SStr>,
    pub(super) description: Option<String>,
    pub(super) origin: Option<Spanned<RawOrigin>>,
    pub(super) load: Option<Spanned<RawLoad>>,
    pub(super) proxy: Option<Spanned<RawProxy>>,
    /// Trials of every case (`[run] repeat` says the same).
    pub(super) repeat: Option<Spanned<i64>>,
    pub(super) run: Option<Spanned<RawRun>>,
    #[serde(rename = "case", default)]
    pub(super) cases: Vec<Spanned<RawCase>>,
}

/// `[run]`: how the cases are run.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRun {
    pub(super) repeat: Option<Spanned<i64>>,
}

/// `[origin]`: built-in (`body_bytes`, `delay`) or external (`command`, `ready`, ...).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOrigin {
    pub(super) body_bytes: Option<Spanned<i64>>,
    pub(super) delay: Option<SStr>,
    pub(super) command: Option<SStr>,
    pub(super) ready: Option<SVal>,
    pub(super) binary: Option<SStr>,
    pub(super) install: Option<String>,
}

/// `[load]` and `[case.load]`: every field optional, merged case over scenario.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLoad {
    pub(super) concurrency: Option<Spanned<i64>>,
    pub(super) requests: Option<Spanned<i64>>,
    pub(super) duration: Option<SStr>,
    pub(super) rate: Option<Spanned<f64>>,
    pub(super) keep_alive: Option<Spanned<bool>>,
    pub(super) timeout: Option<SStr>,
    pub(super) path: Option<SStr>,
    pub(super) bucket: Option<SStr>,
    pub(super) method: Option<SStr>,
    pub(super) body: Option<SStr>,
    pub(super) body_file: Option<SStr>,
    pub(super) content_type: Option<SStr>,
    pub(super) headers: Option<Spanned<BTreeMap<String, SVal>>>,
    /// `[[load.request]]`: a weighted mix (a case's list replaces the scenario's).
    pub(super) request: Option<Spanned<Vec<Spanned<RawRequest>>>>,
    pub(super) think_time: Option<SStr>,
    pub(super) retry: Option<SStr>,
    /// `tls = true`: the load speaks TLS to the system under test.
    pub(super) tls: Option<Spanned<bool>>,
    pub(super) tls_resume: Option<Spanned<bool>>,
    pub(super) tls_version: Option<SStr>,
    /// `http2 = true`: the load speaks HTTP/2 (h2c, or ALPN `h2` with TLS).
    pub(super) http2: Option<Spanned<bool>>,
    /// With `http2`: concurrent streams per connection.
    pub(super) streams: Option<Spanned<i64>>,
    /// With `http2`: retry a stream refused by a GOAWAY once.
    pub(super) retry_refused: Option<Spanned<bool>>,
    /// `kind = "requests" | "websocket" | "stream"`: what the load holds.
    pub(super) kind: Option<SStr>,
    /// With `kind = "websocket"`: pause between two messages of a connection.
    pub(super) message_interval: Option<SStr>,
    /// With `kind = "websocket"`: bytes per message.
    pub(super) message_bytes: Option<Spanned<i64>>,
    /// With `kind = "websocket"`: an echo later than this is late.
    pub(super) message_timeout: Option<SStr>,
    /// With `kind = "websocket"`: pause between a connection's end and the next attempt.
    pub(super) reconnect_delay: Option<SStr>,
}

/// One `[[load.request]]` entry: one kind of request of a weighted mix.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequest {
    pub(super) weight: Option<Spanned<i64>>,
    pub(super) method: Option<SStr>,
    pub(super) path: Option<SStr>,
    pub(super) body: Option<SStr>,
    pub(super) body_file: Option<SStr>,
    pub(super) content_type: Option<SStr>,
    pub(super) headers: Option<Spanned<BTreeMap<String, SVal>>>,
}

impl RawLoad {
    /// Fields of `over` replace those of `self`.
    pub(super) fn merged(&self, over: &RawLoad) -> RawLoad {
        RawLoad {
            concurrency: over
                .concurrency
                .clone()
                .or_else(|| self.concurrency.clone()),
            requests: over.requests.clone().or_else(|| self.requests.clone()),
            duration: over.duration.clone().or_else(|| self.duration.clone()),
            rate: over.rate.clone().or_else(|| self.rate.clone()),
            keep_alive: over.keep_alive.clone().or_else(|| self.keep_alive.clone()),
            timeout: over.timeout.clone().or_else(|| self.timeout.clone()),
            path: over.path.clone().or_else(|| self.path.clone()),
            bucket: over.bucket.clone().or_else(|| self.bucket.clone()),
            method: over.method.clone().or_else(|| self.method.clone()),
            // A body of the case replaces the scenario's, however it is given.
            body: if over.body.is_some() || over.body_file.is_some() {
                over.body.clone()
            } else {
                self.body.clone()
            },
            body_file: if over.body.is_some() || over.body_file.is_some() {
                over.body_file.clone()
            } else {
                self.body_file.clone()
            },
            content_type: over
                .content_type
                .clone()
                .or_else(|| self.content_type.clone()),
            headers: over.headers.clone().or_else(|| self.headers.clone()),
            request: over.request.clone().or_else(|| self.request.clone()),
            think_time: over.think_time.clone().or_else(|| self.think_time.clone()),
            retry: over.retry.clone().or_else(|| self.retry.clone()),
            tls: over.tls.clone().or_else(|| self.tls.clone()),
            tls_resume: over.tls_resume.clone().or_else(|| self.tls_resume.clone()),
            tls_version: over
                .tls_version
                .clone()
                .or_else(|| self.tls_version.clone()),
            http2: over.http2.clone().or_else(|| self.http2.clone()),
            streams: over.streams.clone().or_else(|| self.streams.clone()),
            retry_refused: over
                .retry_refused
                .clone()
                .or_else(|| self.retry_refused.clone()),
            kind: over.kind.clone().or_else(|| self.kind.clone()),
            message_interval: over
                .message_interval
                .clone()
                .or_else(|| self.message_interval.clone()),
            message_bytes: over
                .message_bytes
                .clone()
                .or_else(|| self.message_bytes.clone()),
            message_timeout: over
                .message_timeout
                .clone()
                .or_else(|| self.message_timeout.clone()),
            reconnect_delay: over
                .reconnect_delay
                .clone()
                .or_else(|| self.reconnect_delay.clone()),
        }
    }
}

/// `[proxy]` and `[case.proxy]`: the union of the fields of every kind; each
/// kind rejects the others'.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProxy {
    pub(super) kind: Option<SStr>,
    // kind = "reference"
    pub(super) drain_deadline: Option<SStr>,
    pub(super) idle_close: Option<SStr>,
    pub(super) ready_timeout: Option<SStr>,
    pub(super) generation_header: Option<Spanned<bool>>,
    pub(super) share_ticket_keys: Option<Spanned<bool>>,
    pub(super) ticket_keys_file: Option<SVal>,
    pub(super) drain_tunnels: Option<SStr>,
    // kind = "command"
    pub(super) binary: Option<SStr>,
    pub(super) install: Option<SStr>,
    pub(super) version: Option<SStr>,
    pub(super) config_template: Option<SStr>,
    pub(super) config_name: Option<SStr>,
    pub(super) pidfile: Option<SStr>,
    pub(super) stats_socket: Option<SStr>,
    pub(super) main_pid: Option<SStr>,
    pub(super) start: Option<SStr>,
    pub(super) ready: Option<SVal>,
    pub(super) stop: Option<SVal>,
    pub(super) stop_timeout: Option<SStr>,
    pub(super) restart: Option<SVal>,
    pub(super) reload: Option<Spanned<BTreeMap<String, SVal>>>,
    // kind = "external"
    pub(super) target: Option<SStr>,
    pub(super) ca_file: Option<SStr>,
    pub(super) insecure: Option<Spanned<bool>>,
    pub(super) reloads_in_place: Option<Spanned<bool>>,
}

impl RawProxy {
    /// Fields of `over` replace those of `self`.
    pub(super) fn merged(&self, over: &RawProxy) -> RawProxy {
        let o = over.clone();
        let b = self.clone();
        RawProxy {
            kind: o.kind.or(b.kind),
            drain_deadline: o.drain_deadline.or(b.drain_deadline),
            idle_close: o.idle_close.or(b.idle_close),
            ready_timeout: o.ready_timeout.or(b.ready_timeout),
            generation_header: o.generation_header.or(b.generation_header),
            share_ticket_keys: o.share_ticket_keys.or(b.share_ticket_keys),
            ticket_keys_file: o.ticket_keys_file.or(b.ticket_keys_file),
            drain_tunnels: o.drain_tunnels.or(b.drain_tunnels),
            binary: o.binary.or(b.binary),
            install: o.install.or(b.install),
            version: o.version.or(b.version),
            config_template: o.config_template.or(b.config_template),
            config_name: o.config_name.or(b.config_name),
            pidfile: o.pidfile.or(b.pidfile),
            stats_socket: o.stats_socket.or(b.stats_socket),
            main_pid: o.main_pid.or(b.main_pid),
            start: o.start.or(b.start),
            ready: o.ready.or(b.ready),
            stop: o.stop.or(b.stop),
            stop_timeout: o.stop_timeout.or(b.stop_timeout),
            restart: o.restart.or(b.restart),
            reload: o.reload.or(b.reload),
            target: o.target.or(b.target),
            ca_file: o.ca_file.or(b.ca_file),
            insecure: o.insecure.or(b.insecure),
            reloads_in_place: o.reloads_in_place.or(b.reloads_in_place),
        }
    }
}

/// One `[[case]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCase {
    pub(super) name: Option<SStr>,
    pub(super) description: Option<String>,
    pub(super) load: Option<Spanned<RawLoad>>,
    pub(super) proxy: Option<Spanned<RawProxy>>,
    #[serde(default)]
    pub(super) actions: Vec<Spanned<RawAction>>,
    pub(super) expect: Option<Spanned<BTreeMap<String, SVal>>>,
    pub(super) repeat: Option<Spanned<i64>>,
}

/// One entry of `actions = [...]`: a trigger plus `do` and its fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAction {
    pub(super) at: Option<SStr>,
    pub(super) every: Option<SStr>,
    pub(super) count: Option<Spanned<i64>>,
    pub(super) start: Option<SStr>,
    pub(super) after_requests: Option<Spanned<i64>>,
    #[serde(rename = "do")]
    pub(super) what: Option<SStr>,
    pub(super) mode: Option<SStr>,
    pub(super) variant: Option<SStr>,
    pub(super) signal: Option<SStr>,
    pub(super) target: Option<SStr>,
    pub(super) command: Option<SStr>,
    pub(super) timeout: Option<SStr>,
    pub(super) key: Option<SStr>,
    pub(super) value: Option<SVal>,
    pub(super) restart: Option<Spanned<bool>>,
    pub(super) pid_file: Option<SStr>,
    pub(super) pid_command: Option<SStr>,
}
