//! The config file as written: serde types with spans, before validation.

use serde::Deserialize;
use toml::Spanned;

/// The top level of a refproxy config file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) listen: Spanned<Vec<Spanned<String>>>,
    pub(crate) origins: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(crate) control_socket: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) generation_header: bool,
    #[serde(default)]
    pub(crate) http2: bool,
    #[serde(default)]
    pub(crate) timeouts: RawTimeouts,
    #[serde(default)]
    pub(crate) drain: RawDrain,
    #[serde(default)]
    pub(crate) reload: RawReload,
    #[serde(default)]
    pub(crate) limits: RawLimits,
    #[serde(default)]
    pub(crate) tls: Option<RawTls>,
}

/// `[tls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub(crate) cert: Spanned<String>,
    pub(crate) key: Spanned<String>,
    pub(crate) listen: Option<Spanned<Vec<Spanned<RawListenRef>>>>,
    pub(crate) handshake_timeout: Option<Spanned<String>>,
    pub(crate) ticket_key_rotation: Option<Spanned<String>>,
    pub(crate) share_ticket_keys: Option<bool>,
    pub(crate) ticket_keys_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) sni: Vec<RawSni>,
}

/// One entry of `tls.listen`: a `listen` address as written there, or the index of a
/// `listen` entry (which tells apart two entries written alike, e.g. `127.0.0.1:0`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawListenRef {
    /// The index of a `listen` entry, from 0.
    Index(i64),
    /// A `listen` address.
    Addr(String),
}

/// `[[tls.sni]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSni {
    pub(crate) names: Spanned<Vec<Spanned<String>>>,
    pub(crate) cert: Spanned<String>,
    pub(crate) key: Spanned<String>,
}

/// `[timeouts]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeouts {
    pub(crate) connect: Option<Spanned<String>>,
    pub(crate) header_read: Option<Spanned<String>>,
    pub(crate) idle: Option<Spanned<String>>,
    pub(crate) request: Option<Spanned<String>>,
    pub(crate) body: Option<Spanned<String>>,
    pub(crate) h2_ping_interval: Option<Spanned<String>>,
    pub(crate) h2_ping_timeout: Option<Spanned<String>>,
}

/// `[drain]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDrain {
    pub(crate) deadline: Option<Spanned<String>>,
    pub(crate) idle_close: Option<Spanned<String>>,
    pub(crate) linger: Option<Spanned<String>>,
    pub(crate) tunnels: Option<Spanned<String>>,
}

/// `[reload]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReload {
    pub(crate) ready_timeout: Option<Spanned<String>>,
    pub(crate) takeover_timeout: Option<Spanned<String>>,
    pub(crate) max_old_generations: Option<Spanned<i64>>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub(crate) origin_connections: Option<Spanned<i64>>,
    pub(crate) tunnels: Option<Spanned<i64>>,
    pub(crate) min_send_rate: Option<Spanned<i64>>,
    pub(crate) min_send_rate_window: Option<Spanned<String>>,
    pub(crate) h2_max_concurrent_streams: Option<Spanned<i64>>,
    pub(crate) h2_max_header_list_size: Option<Spanned<i64>>,
    pub(crate) h2_initial_stream_window: Option<Spanned<i64>>,
    pub(crate) h2_initial_connection_window: Option<Spanned<i64>>,
    pub(crate) h2_max_pending_reset_streams: Option<Spanned<i64>>,
    pub(crate) h2_max_local_error_reset_streams: Option<Spanned<i64>>,
    pub(crate) h2_premature_reset_window: Option<Spanned<String>>,
    pub(crate) h2_max_premature_resets: Option<Spanned<i64>>,
    pub(crate) h2_address_premature_resets_per_second: Option<Spanned<i64>>,
    pub(crate) h2_address_premature_resets_burst: Option<Spanned<i64>>,
    pub(crate) h2_max_send_buffer: Option<Spanned<i64>>,
    pub(crate) h2_max_origin_slots_per_connection: Option<Spanned<i64>>,
}
