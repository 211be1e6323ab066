//! Running a load: [`start`] spawns the worker threads, [`LoadRun`] observes,
//! stops and finishes the run.
//!
//! Like wrk, each worker is an OS thread with its own current-thread tokio
//! runtime and its share of the clients; it records into its own
//! [`crate::record::Recorder`], so the hot path takes no lock. The workers'
//! recorders are merged once, by [`LoadRun::finish`].

mod shared;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use reloadbench_model::fd_limit::FdLimit;
use reloadbench_model::load::LoadReport;
use tokio::sync::oneshot;
use tokio::task::LocalSet;

use crate::client::{self, ClientCtx};
use crate::config::LoadConfig;
use crate::error::LoadError;
use crate::record::report::{self, IntervalHistogram, RunFacts};
use crate::record::{Recorder, RequestSample};
use shared::PlanSpec;
pub(crate) use shared::{FirstResponse, Shared};

/// A cheap snapshot of a running load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Requests finished (ok + failed).
    pub completed: u64,
    /// Successful requests.
    pub ok: u64,
    /// Failed requests.
    pub failed: u64,
    /// Time since the start.
    pub elapsed: Duration,
}

/// A cheap snapshot of a running `--ws` load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsProgress {
    /// Connections opened.
    pub opened: u64,
    /// Connections that ended (closed by the server or cut).
    pub ended: u64,
    /// Attempts that failed to open.
    pub failed: u64,
}

/// Everything a finished run produced.
#[derive(Debug)]
pub struct LoadOutcome {
    /// The report (what `--json` writes).
    pub report: LoadReport,
    /// One latency histogram per time bucket, in order, aligned with
    /// `report.buckets` (for the HdrHistogram interval log, see
    /// [`crate::output::write_hdr_log`]).
    pub intervals: Vec<IntervalHistogram>,
    /// One sample per successful request, in start order; empty unless
    /// [`LoadConfig::record_requests`] was set.
    pub samples: Vec<RequestSample>,
}

type WorkerResult = Result<Recorder, LoadError>;

/// A running load. Dropping it stops the run (in-flight requests still finish).
#[derive(Debug)]
pub struct LoadRun {
    shared: Arc<Shared>,
    results: Vec<oneshot::Receiver<WorkerResult>>,
    config: LoadConfig,
    fd_limit: FdLimit,
}

/// Starts the run described by `config` and returns at once.
///
/// The clients run on their own worker threads ([`LoadConfig::threads`]);
/// call this from within a tokio runtime so that the returned [`LoadRun`]'s
/// async methods can be awaited.
pub fn start(config: LoadConfig) -> Result<LoadRun, LoadError> {
    let v = config.validate()?;
    if config.keep_alive || config.h2 {
        crate::limits::source_ports(config.concurrency, v.addr, config.source_ips)?;
    }
    let fd_limit = crate::limits::open_files(config.concurrency)?;
    let spec = PlanSpec {
        requests: config.requests,
        duration: config.duration,
        interval_ns: config.rate.map(|r| 1e9 / r),
        failure_cap: config.failure_records_cap,
    };
    let shared = Arc::new(Shared::new(spec, v.threads));
    let ctx = Arc::new(ClientCtx {
        addr: v.addr,
        kinds: v.kinds,
        schedule: v.schedule,
        keep_alive: config.keep_alive,
        timeout: config.timeout,
        source_ips: config.source_ips,
        retry: config.retry,
        think_time: config.think_time,
        tls: v.tls,
        ws: v.ws,
    });
    let h2 = v.h2;
    let bucket_ns = config.bucket.as_nanos() as u64;
    let mut results = Vec::with_capacity(v.threads);
    for index in 0..v.threads {
        let clients: Vec<u64> = (index as u64..config.concurrency)
            .step_by(v.threads)
            .collect();
        let (tx, rx) = oneshot::channel();
        let (shared2, ctx2, h2_2) = (shared.clone(), ctx.clone(), h2.clone());
        let keep_samples = config.record_requests;
        let spawned = std::thread::Builder::new()
            .name(format!("loadgen-{index}"))
            .spawn(move || {
                let clients = Clients {
                    ids: clients,
                    h1: ctx2,
                    h2: h2_2,
                };
                let result = run_worker(index, clients, &shared2, bucket_ns, keep_samples);
                let _ = tx.send(result);
                if shared2
                    .workers_running
                    .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
                    == 1
                {
                    shared2.end();
                }
            });
        if let Err(source) = spawned {
            shared.stop();
            // The threads not started will never report: account for them.
            for _ in index..v.threads {
                if shared
                    .workers_running
                    .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
                    == 1
                {
                    shared.end();
                }
            }
            return Err(LoadError::Worker { index, source });
        }
        results.push(rx);
    }
    Ok(LoadRun {
        shared,
        results,
        config,
        fd_limit,
    })
}

/// The clients of one worker: HTTP/1.1 clients, or with an `--h2` context
/// HTTP/2 connection slots, by id.
struct Clients {
    ids: Vec<u64>,
    h1: Arc<ClientCtx>,
    h2: Option<Arc<crate::http2::H2Ctx>>,
}

/// Runs HTTP/2 connection slots `ids` to the end; the first reason the run
/// could not go on, if any.
async fn run_h2_slots(
    ids: &[u64],
    shared: &Arc<Shared>,
    h2: &Arc<crate::http2::H2Ctx>,
    rec: &Rc<RefCell<Recorder>>,
) -> Option<String> {
    let handles: Vec<_> = ids
        .iter()
        .map(|id| {
            tokio::task::spawn_local(crate::http2::run_slot(
                *id,
                shared.clone(),
                h2.clone(),
                rec.clone(),
            ))
        })
        .collect();
    let mut failure = None;
    for h in handles {
        match h.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failure.get_or_insert(e.to_string());
            }
            Err(e) => {
                shared.stop();
                failure.get_or_insert(e.to_string());
            }
        }
    }
    failure
}

/// One worker thread: a current-thread runtime running its clients to the end.
fn run_worker(
    index: usize,
    clients: Clients,
    shared: &Arc<Shared>,
    bucket_ns: u64,
    keep_samples: bool,
) -> WorkerResult {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| LoadError::Worker { index, source })?;
    let rec = Rc::new(RefCell::new(Recorder::new(bucket_ns, keep_samples)));
    let scratch = Rc::new(client::Scratch::new());
    let local = LocalSet::new();
    let failure = local.block_on(&rt, async {
        if let Some(h2) = &clients.h2 {
            return run_h2_slots(&clients.ids, shared, h2, &rec).await;
        }
        let ctx = clients.h1;
        let handles: Vec<_> = clients
            .ids
            .into_iter()
            .map(|id| {
                if ctx.ws.is_some() {
                    return crate::ws::run_for(id, shared.clone(), ctx.clone(), rec.clone());
                }
                client::run_for(
                    id,
                    shared.clone(),
                    ctx.clone(),
                    rec.clone(),
                    scratch.clone(),
                )
            })
            .collect();
        let mut failure = None;
        for h in handles {
            if let Err(e) = h.await {
                shared.stop();
                failure = Some(e.to_string());
            }
        }
        // `--ws --h2` against a server that takes no extended CONNECT.
        let over_h2 = ctx.ws.as_ref().and_then(|w| w.h2.as_ref());
        if let Some(reason) = over_h2.and_then(|h| h.fatal()) {
            failure.get_or_insert_with(|| reason.to_owned());
        }
        failure
    });
    if let Some(reason) = failure {
        return Err(LoadError::WorkerFailed { index, reason });
    }
    drop(local);
    let mut rec = Rc::try_unwrap(rec)
        .map_err(|_| LoadError::WorkerFailed {
            index,
            reason: "recorder still in use after all clients ended".to_owned(),
        })?
        .into_inner();
    rec.finish();
    Ok(rec)
}

impl LoadRun {
    /// The open-file limit the run found and left (raised to the hard limit
    /// when it was lower, see [`crate::limits`]).
    pub fn fd_limit(&self) -> FdLimit {
        self.fd_limit
    }

    /// Monotonic clock reading ([`reloadbench_model::clock::monotonic_ns`]) at the start.
    pub fn started_mono_ns(&self) -> u64 {
        self.shared.started_mono_ns
    }

    /// Current counts.
    pub fn progress(&self) -> Progress {
        let completed = self.shared.completed();
        let failed = self.shared.failed().min(completed);
        Progress {
            completed,
            ok: completed - failed,
            failed,
            elapsed: self.shared.start.elapsed(),
        }
    }

    /// `--ws`: connections opened, ended (closed or cut) and attempts that
    /// failed to open, so far.
    pub fn ws_progress(&self) -> WsProgress {
        let get = |i: usize| self.shared.ws[i].load(std::sync::atomic::Ordering::SeqCst);
        WsProgress {
            opened: get(0),
            ended: get(1),
            failed: get(2),
        }
    }

    /// Resolves once at least `n` requests completed, or the run ended.
    pub async fn wait_completed(&self, n: u64) {
        self.shared.wait_completed(n).await;
    }

    /// Resolves once the run has ended (every worker finished).
    pub async fn wait_ended(&self) {
        self.shared.wait_completed(u64::MAX).await;
    }

    /// Starts no new requests; in-flight ones finish normally and the rest
    /// of the plan counts as not started.
    pub fn stop(&self) {
        self.shared.stop();
    }

    /// Waits for the end of the run and returns its report.
    pub async fn finish(self) -> Result<LoadReport, LoadError> {
        Ok(self.finish_with_histograms().await?.report)
    }

    /// Waits for the end of the run and returns the report together with the
    /// per-bucket latency histograms (and samples, if recorded).
    pub async fn finish_with_histograms(mut self) -> Result<LoadOutcome, LoadError> {
        let mut recorders = Vec::with_capacity(self.results.len());
        let mut first_err = None;
        for (index, rx) in std::mem::take(&mut self.results).into_iter().enumerate() {
            match rx.await {
                Ok(Ok(r)) => recorders.push(r),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(LoadError::WorkerFailed {
                        index,
                        reason: "worker thread ended without a result".to_owned(),
                    });
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        let shared = &self.shared;
        let planned = shared.planned();
        let first = shared.first_response.get().cloned();
        let facts = RunFacts {
            config: self.config.summary(),
            bucket_ns: self.config.bucket.as_nanos() as u64,
            started_mono_ns: shared.started_mono_ns,
            planned,
            not_started: planned.saturating_sub(shared.started()),
            rate_mode: self.config.rate.is_some(),
            server_software: first.as_ref().and_then(|f| f.server.clone()),
            document_length: first.map(|f| f.body_len),
            kind_methods: self.config.kind_methods(),
            retry: self.config.retry,
            tls_resumption: target_is_tls(&self.config.url).then_some(self.config.tls.resume),
            h2: (self.config.h2 && self.config.ws.is_none())
                .then_some((self.config.streams, self.config.retry_refused)),
            ws: self.config.ws.clone(),
            stream: self.config.stream,
        };
        let mut built = report::build(recorders, facts);
        if self.config.ws.is_some() {
            // WebSocket clients record no request: the run lasted until now.
            built.report.elapsed_ns = shared.start.elapsed().as_nanos() as u64;
        }
        Ok(LoadOutcome {
            report: built.report,
            intervals: built.intervals,
            samples: built.samples,
        })
    }
}

impl Drop for LoadRun {
    fn drop(&mut self) {
        // Also reached when a `finish` future is dropped before the end:
        // the workers then stop starting requests and exit on their own.
        self.shared.stop();
    }
}

/// Whether `url` is an `https://` URL.
fn target_is_tls(url: &str) -> bool {
    crate::target::parse_url(url).is_ok_and(|u| u.tls)
}
