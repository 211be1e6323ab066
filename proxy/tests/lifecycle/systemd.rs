//! systemd notifications and the `--events` file.

use std::ffi::OsStr;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::support::*;

fn next(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = sock
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_socket_gets_ready_reloading_mainpid_and_stopping() {
    let o = origin(100, None).await;
    let s = Scratch::new();
    let cfg = s.config("p.toml", &Conf::new(o.addr()));
    let notify_path = s.path("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(scaled(20))).unwrap();
    let args = [OsStr::new("--config"), cfg.as_os_str()];
    let mut old = Proxy::spawn_env(args, s.path("gen1.log"), Some(&notify_path)).unwrap();
    old.ready().await.unwrap();
    assert_eq!(next(&notify), "READY=1\n");

    let ctl = s.control();
    let args = [
        OsStr::new("--config"),
        cfg.as_os_str(),
        OsStr::new("--upgrade-from"),
        ctl.as_os_str(),
        OsStr::new("--mode"),
        OsStr::new("fd-pass"),
    ];
    let mut new = Proxy::spawn_env(args, s.path("gen2.log"), Some(&notify_path)).unwrap();
    new.ready().await.unwrap();
    let reloading = next(&notify);
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading}"
    );
    assert_eq!(next(&notify), format!("MAINPID={}\nREADY=1\n", new.pid));
    old.wait_exit(scaled(20)).await.unwrap();
    new.stop().await.unwrap();
    assert_eq!(next(&notify), "STOPPING=1\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_go_to_the_events_file_when_asked() {
    let o = origin(100, None).await;
    let s = Scratch::new();
    let cfg = s.config("p.toml", &Conf::new(o.addr()));
    let file = s.path("events.jsonl");
    let args = [
        OsStr::new("--config"),
        cfg.as_os_str(),
        OsStr::new("--events"),
        file.as_os_str(),
    ];
    let mut p = Proxy::spawn(args, s.path("p.log")).unwrap();
    let deadline = tokio::time::Instant::now() + scaled(20);
    while !std::fs::read_to_string(&file)
        .unwrap_or_default()
        .contains("\"ready\"")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no ready in {}",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    p.stop().await.unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let kinds: Vec<String> = text
        .lines()
        .map(|l| {
            crate::fd_pass::kind(&reloadbench_model::event::Event::parse_line(l).unwrap().kind)
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        ["ready", "draining", "drained", "counters", "exited"]
    );
    assert!(p.all_events().await.is_empty(), "nothing on stdout");
}
