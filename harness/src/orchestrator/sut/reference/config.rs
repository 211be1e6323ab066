//! The config file the harness writes for `refproxy` in each case.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::scenario::ReferenceProxy;

use super::super::runner::RunnerError;

/// Writes `proxy.toml` at `path`: listening on `listen`, forwarding to
/// `origin`, with the scenario's drain and reload settings.
pub(super) fn write(
    path: &Path,
    cfg: &ReferenceProxy,
    listen: &str,
    origin: SocketAddr,
    control_socket: &Path,
) -> Result<(), RunnerError> {
    let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let h = |d: Duration| q(&humantime::format_duration(d).to_string());
    let text = format!(
        "# Written by reloadbench for this case.\n\
         listen = [{listen}]\n\
         origins = [{origin}]\n\
         control_socket = {sock}\n\
         generation_header = {gh}\n\n\
         [drain]\ndeadline = {dd}\nidle_close = {ic}\n\n\
         [reload]\nready_timeout = {rt}\n",
        listen = q(listen),
        origin = q(&origin.to_string()),
        sock = q(&control_socket.display().to_string()),
        gh = cfg.generation_header,
        dd = h(cfg.drain_deadline),
        ic = h(cfg.idle_close),
        rt = h(cfg.ready_timeout),
    );
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
        };
        let origin = SocketAddr::from(([127, 0, 0, 1], 8080));
        write(
            &p,
            &cfg,
            "127.0.0.1:0",
            origin,
            Path::new("/tmp/a \"b\".sock"),
        )
        .unwrap();
        let v: toml::Table = std::fs::read_to_string(&p).unwrap().parse().unwrap();
        assert_eq!(v["listen"][0].as_str(), Some("127.0.0.1:0"));
        assert_eq!(v["origins"][0].as_str(), Some("127.0.0.1:8080"));
        assert_eq!(v["control_socket"].as_str(), Some("/tmp/a \"b\".sock"));
        assert_eq!(v["drain"]["deadline"].as_str(), Some("10s"));
        assert_eq!(v["reload"]["ready_timeout"].as_str(), Some("5s"));
    }
}
