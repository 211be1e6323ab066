//! The config file the harness writes for `refproxy` in each case.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::scenario::ReferenceProxy;

use super::super::runner::RunnerError;

/// The `[tls]` table of a case whose load speaks TLS.
#[derive(Debug, Clone, Copy)]
pub(super) struct ProxyTls<'a> {
    /// The server certificate (PEM).
    pub cert: &'a Path,
    /// Its key (PEM).
    pub key: &'a Path,
    /// `share_ticket_keys`.
    pub share_ticket_keys: bool,
    /// `ticket_keys_file`, if any.
    pub ticket_keys_file: Option<&'a Path>,
}

/// Writes `proxy.toml` at `path`: listening on `listen`, forwarding to
/// `origin`, with the scenario's drain and reload settings, terminating TLS
/// with `tls` when given, serving HTTP/2 to clients when `http2`.
pub(super) fn write(
    path: &Path,
    cfg: &ReferenceProxy,
    listen: &str,
    origin: SocketAddr,
    control_socket: &Path,
    tls: Option<ProxyTls<'_>>,
    http2: bool,
) -> Result<(), RunnerError> {
    let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let h = |d: Duration| q(&humantime::format_duration(d).to_string());
    let mut text = format!(
        "# Written by reloadbench for this case.\n\
         listen = [{listen}]\n\
         origins = [{origin}]\n\
         control_socket = {sock}\n\
         generation_header = {gh}\n\
         http2 = {http2}\n\n\
         [drain]\ndeadline = {dd}\nidle_close = {ic}\ntunnels = {tn}\n\n\
         [reload]\nready_timeout = {rt}\n",
        listen = q(listen),
        origin = q(&origin.to_string()),
        sock = q(&control_socket.display().to_string()),
        gh = cfg.generation_header,
        http2 = http2,
        dd = h(cfg.drain_deadline),
        ic = h(cfg.idle_close),
        tn = q(cfg.drain_tunnels.key()),
        rt = h(cfg.ready_timeout),
    );
    if let Some(t) = tls {
        let p = |p: &Path| q(&p.display().to_string());
        let _ = write!(
            text,
            "\n[tls]\ncert = {}\nkey = {}\nshare_ticket_keys = {}\n",
            p(t.cert),
            p(t.key),
            t.share_ticket_keys
        );
        if let Some(f) = t.ticket_keys_file {
            let _ = writeln!(text, "ticket_keys_file = {}", p(f));
        }
    }
    std::fs::write(path, text).map_err(|source| RunnerError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_config_refproxy_can_read_as_toml() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("proxy.toml");
        let cfg = ReferenceProxy {
            drain_deadline: Duration::from_secs(10),
            idle_close: Duration::from_secs(1),
            ready_timeout: Duration::from_secs(5),
            generation_header: false,
            share_ticket_keys: true,
            ticket_keys_file: None,
            drain_tunnels: crate::scenario::DrainTunnels::Keep,
        };
        let origin = SocketAddr::from(([127, 0, 0, 1], 8080));
        write(
            &p,
            &cfg,
            "127.0.0.1:0",
            origin,
            Path::new("/tmp/a \"b\".sock"),
            None,
            false,
        )
        .unwrap();
        let v: toml::Table = std::fs::read_to_string(&p).unwrap().parse().unwrap();
        assert_eq!(v["listen"][0].as_str(), Some("127.0.0.1:0"));
        assert_eq!(v["origins"][0].as_str(), Some("127.0.0.1:8080"));
        assert_eq!(v["control_socket"].as_str(), Some("/tmp/a \"b\".sock"));
        assert_eq!(v["drain"]["deadline"].as_str(), Some("10s"));
        assert_eq!(v["drain"]["tunnels"].as_str(), Some("keep"));
        assert_eq!(v["reload"]["ready_timeout"].as_str(), Some("5s"));
        assert!(v.get("tls").is_none());
        assert_eq!(v["http2"].as_bool(), Some(false));
    }

    #[test]
    fn an_http2_case_turns_http2_on() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("proxy.toml");
        let origin = SocketAddr::from(([127, 0, 0, 1], 8080));
        let cfg = ReferenceProxy::default();
        write(&p, &cfg, "127.0.0.1:0", origin, Path::new("/s"), None, true).unwrap();
        let v: toml::Table = std::fs::read_to_string(&p).unwrap().parse().unwrap();
        assert_eq!(v["http2"].as_bool(), Some(true));
        assert!(v.get("tls").is_none());
    }

    #[test]
    fn drain_tunnels_close_becomes_the_drain_tables_tunnels() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("proxy.toml");
        let origin = SocketAddr::from(([127, 0, 0, 1], 8080));
        let cfg = ReferenceProxy {
            drain_tunnels: crate::scenario::DrainTunnels::Close,
            ..ReferenceProxy::default()
        };
        write(
            &p,
            &cfg,
            "127.0.0.1:0",
            origin,
            Path::new("/s"),
            None,
            false,
        )
        .unwrap();
        let v: toml::Table = std::fs::read_to_string(&p).unwrap().parse().unwrap();
        assert_eq!(v["drain"]["tunnels"].as_str(), Some("close"));
    }

    #[test]
    fn a_tls_case_gets_a_tls_table_with_its_files_and_key_sharing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("proxy.toml");
        let origin = SocketAddr::from(([127, 0, 0, 1], 8080));
        let tls = ProxyTls {
            cert: Path::new("/run/tls/server.pem"),
            key: Path::new("/run/tls/server.key"),
            share_ticket_keys: false,
            ticket_keys_file: Some(Path::new("/run/case/ticket.key")),
        };
        let cfg = ReferenceProxy::default();
        write(
            &p,
            &cfg,
            "127.0.0.1:0",
            origin,
            Path::new("/s"),
            Some(tls),
            false,
        )
        .unwrap();
        let v: toml::Table = std::fs::read_to_string(&p).unwrap().parse().unwrap();
        assert_eq!(v["tls"]["cert"].as_str(), Some("/run/tls/server.pem"));
        assert_eq!(v["tls"]["key"].as_str(), Some("/run/tls/server.key"));
        assert_eq!(v["tls"]["share_ticket_keys"].as_bool(), Some(false));
        assert_eq!(
            v["tls"]["ticket_keys_file"].as_str(),
            Some("/run/case/ticket.key")
        );
    }
}
