//! The contract between reloadbench's processes and crates.
//!
//! Everything that is written by one program and read by another lives here:
//! the JSON-lines events a proxy or origin prints on stdout ([`event`]), the
//! failure classes every request is sorted into ([`outcome`]), the load
//! generator's result file ([`load`]), the run report `results.json`
//! ([`run`]) and the three-way ledger of client, proxy and origin ([`ledger`]). Timestamps are nanoseconds of the system-wide monotonic clock
//! ([`clock`]), so events of different processes can be put on one timeline.

pub mod bucket_columns;
pub mod clock;
mod columnar;
pub mod cpu_columns;
pub mod diagnosis;
pub mod event;
pub mod evidence;
pub mod failure_columns;
pub mod fd_limit;
pub mod generations;
pub mod json_layout;
pub mod kernel;
pub mod ledger;
pub mod load;
pub mod outcome;
pub mod run;
#[cfg(any(test, feature = "test-timing"))]
#[doc(hidden)]
pub mod test_timing;
pub mod words;
pub mod ws;

/// Version of the JSON schemas in this crate (load results and run reports).
///
/// Readers refuse files with a newer version than they know, and read older
/// ones. History: 2 added [`run::RunReport::planned_cases`] and
/// [`run::RunReport::interrupted`] (absent in version 1 files: read as empty).
/// 3 added the evidence of a case (all absent in older files, read as
/// `None` or empty): `description`, `trial`, `ledger`, `evidence`, `kernel`,
/// `machine` and `diagnosis` on a case; `observed`, `kernel` and
/// `lost_after_forwarding` on an action; `connections` on a bucket; the
/// request `id` of a failure; `trial` on an interruption.
/// 4 writes [`load::LoadReport::buckets`] ([`bucket_columns`]),
/// [`load::LoadReport::failures`] ([`failure_columns`]) and
/// [`kernel::MachineLoad::seconds`] ([`cpu_columns`]) as columns (the
/// arrays of objects of older files are still read).
/// 5 added request mixes and retries (all absent in older files, read as 0,
/// empty or `None`): on a load report `failed_retryable`,
/// `failed_not_retryable`, `retries`, `methods` and `after_retry`; `mix`,
/// `retry` and `think_time_ms` in its config; the `retryable` and `kind`
/// failure columns; the `retryable` bucket column. A schema 4 reader
/// refuses the new columns, hence the new version.
pub const SCHEMA_VERSION: u32 = 5;
