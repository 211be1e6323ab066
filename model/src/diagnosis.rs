//! The diagnosis of a case: sentences that say *why* requests failed (or
//! why none did), each written from the case's evidence and only when the
//! evidence supports it. Written by the report renderer
//! (`reloadbench_reports::diagnose`) and kept in `results.json`.

use serde::{Deserialize, Serialize};

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Connections queued on a listening socket were reset when it closed.
    QueuedReset,
    /// Connects were refused while nobody listened on the address.
    NoListener,
    /// The origin answered requests whose responses never reached the client.
    LostAfterForwarding,
    /// The kernel dropped connection attempts on a full accept queue.
    ListenOverflow,
    /// The kernel moved queued connections to another listening socket.
    Migrated,
    /// Failures on the load generator's own side.
    ClientSide,
    /// The three-way ledger does not balance.
    LedgerUnbalanced,
    /// Other processes used the machine while the case ran.
    BusyMachine,
    /// Failures the evidence does not explain.
    Unexplained,
    /// Actions ran and no request failed: how the socket survived.
    NothingLost,
}

/// One sentence of a case's diagnosis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// What it is about.
    pub kind: FindingKind,
    /// The sentence, with the numbers it rests on.
    pub text: String,
}
