//! reloadbench's load generator: ab's command line and output, without ab's
//! flaws.
//!
//! Every request gets exactly one outcome, success or one
//! [`FailureClass`](reloadbench_model::outcome::FailureClass), time-stamped
//! on the shared monotonic clock, so that
//! `planned = ok + failed + not_started` always holds and each failure can
//! be attributed to the reload that caused it. The run never aborts.
//!
//! ```no_run
//! # async fn demo() -> Result<(), reloadbench_loadgen::LoadError> {
//! let mut config = reloadbench_loadgen::LoadConfig::new("http://127.0.0.1:8080/")?;
//! config.concurrency = 100;
//! config.requests = Some(100_000);
//! let run = reloadbench_loadgen::start(config)?;
//! run.wait_completed(50_000).await; // e.g. trigger a reload half-way
//! let outcome = run.finish_with_histograms().await?;
//! println!("{}", reloadbench_loadgen::output::text(&outcome.report));
//! # Ok(()) }
//! ```
//!
//! [`LoadRun::finish`] returns the [`LoadReport`](reloadbench_model::load::LoadReport)
//! alone; [`LoadRun::finish_with_histograms`] returns a [`LoadOutcome`] that
//! also holds one latency HdrHistogram per time bucket, which
//! [`output::write_hdr_log`] writes as a standard interval log.
//!
//! An `https://` URL runs over TLS (rustls): set [`LoadConfig::tls`]
//! ([`TlsOptions`]: a CA file or `insecure`, the version, session
//! resumption); the report's `tls` then counts the handshakes (full,
//! resumed, failed) and their time.
//!
//! [`LoadConfig::h2`] speaks HTTP/2 instead (h2c with prior knowledge for
//! `http://`, ALPN `h2` for `https://`), with [`LoadConfig::streams`]
//! concurrent streams on each of the `concurrency` connections; the
//! report's `h2` counts the GOAWAYs received and the streams refused,
//! reset and lost.

pub mod body_file;
mod client;
mod config;
mod error;
mod http2;
pub mod limits;
pub mod mix;
pub mod mix_file;
pub mod output;
mod record;
mod run;
mod target;
mod tls;
pub mod ws;

pub use config::{
    FRAMING_HEADERS, LoadConfig, MAX_BUCKET, MAX_CONCURRENCY, MIN_BUCKET, is_framing_header,
};
pub use error::LoadError;
pub use http2::{CONNECTION_HEADERS, MAX_STREAMS};
pub use mix::RequestKind;
pub use record::RequestSample;
pub use record::report::IntervalHistogram;
pub use reloadbench_model::load::RetryPolicy;
pub use run::{LoadOutcome, LoadRun, Progress, WsProgress, start};
pub use tls::{TlsOptions, TlsVersion};
pub use ws::WsOptions;
