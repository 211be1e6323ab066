//! The top of the program: parse the command line, pick the mode, map errors to exit codes.

use std::path::PathBuf;
use std::sync::Arc;

use reloadbench_model::event::EventKind;

use crate::cli::{Cli, Command, ServeArgs};
use crate::config;
use crate::control::{self, ControlPath};
use crate::error::ProxyError;
use crate::instance::{Instance, Setup};
use crate::listeners;
use crate::master;
use crate::phase::{Events, Notifier};
use crate::upgrade::{self, UpgradeArgs};

/// Runs refproxy as the command line asks; returns the process exit code
/// (0 success, 1 runtime failure, 2 invalid config or usage).
pub fn run(cli: Cli) -> i32 {
    init_logging();
    match cli.command {
        Some(Command::Check { config }) => check(&config),
        None => serve(cli.serve),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("REFPROXY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Raises the open-file limit to the hard limit, as HAProxy does: a proxy holds two
/// descriptors per forwarded connection, and inherits the limit of whatever started it
/// (1,024 from many shells). Workers and successors inherit the raised limit.
fn raise_fd_limit() {
    match reloadbench_model::fd_limit::raise() {
        Ok(limit) if limit.raised() => tracing::info!(
            from = limit.before,
            to = limit.soft,
            "open-file limit raised to the hard limit"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

fn check(path: &std::path::Path) -> i32 {
    let checked = config::load(path)
        .map_err(|e| e.to_string())
        .and_then(
            |cfg| match cfg.control_socket.as_deref().map(control::check_path) {
                Some(Err(e)) => Err(format!("{}: control_socket: {e}", path.display())),
                _ => Ok(()),
            },
        );
    match checked {
        Ok(()) => {
            println!("{}: ok", path.display());
            0
        }
        Err(e) => {
            eprintln!("refproxy: {e}");
            2
        }
    }
}

fn serve(args: ServeArgs) -> i32 {
    let Some(config) = args.config.clone() else {
        eprintln!("refproxy: --config is required");
        return 2;
    };
    raise_fd_limit();
    let events = match Events::open(&args.events) {
        Ok(e) => e,
        Err(source) => {
            eprintln!(
                "refproxy: {}",
                ProxyError::Events {
                    path: PathBuf::from(&args.events),
                    source
                }
            );
            return 1;
        }
    };
    // The control plane (signals, control socket, handoffs, drain) runs here; client
    // connections are served on the server's own per-core threads (see `serve`).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("refproxy: cannot start the runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(serve_mode(&args, config, events.clone()));
    // Connections still open after a fast stop are cut at the process exit, without waiting.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("refproxy: {e}");
            let code = e.exit_code();
            events.emit(EventKind::Exited {
                generation: 0,
                code,
            });
            code
        }
    }
}

async fn serve_mode(args: &ServeArgs, config: PathBuf, events: Events) -> Result<i32, ProxyError> {
    let notifier = Notifier::from_env();
    let faults = master::Faults::from(args);
    if let Some(fd) = args.worker {
        let link = master::worker::link_from_fd(fd)?;
        return master::worker::run(&config, link, faults, events).await;
    }
    if args.master {
        return master::run(&config, faults, events, notifier).await;
    }
    if let (Some(from), Some(mode)) = (&args.upgrade_from, args.mode) {
        let up = UpgradeArgs {
            config: &config,
            from,
            mode,
            faults,
        };
        return upgrade::run(up, events, notifier).await;
    }
    let cfg = Arc::new(config::load(&config)?);
    let listeners = listeners::bind_all(&cfg.listen)?;
    let control = cfg
        .control_socket
        .as_deref()
        .map(ControlPath::bind)
        .transpose()?;
    let instance = Instance::start(Setup {
        cfg,
        generation: args.generation,
        listeners,
        events,
        notifier: notifier.clone(),
        tickets: None,
    })?;
    instance.announce_ready();
    notifier.ready(false);
    Ok(instance.run(control, None).await)
}

impl From<&ServeArgs> for master::Faults {
    /// The fault injection the command line asks for (`--fail-before-ready`,
    /// `--freeze-at`).
    fn from(args: &ServeArgs) -> master::Faults {
        master::Faults {
            fail_before_ready: args.fail_before_ready,
            freeze_at: args.freeze_at,
        }
    }
}
