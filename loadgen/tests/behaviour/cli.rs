//! The `loadgen` binary: usage errors, ab's output block, `--json -`.

use reloadbench_model::load::LoadReport;
use std::process::Stdio;
use tokio::process::Command;

use crate::mix::{Bodies, MixServer, Plan};
use crate::support::{Behaviour, TestServer, wait};
use crate::tls_support::{Mode, Pki, Resume, TlsServer, get};

pub(crate) struct Output {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

pub(crate) async fn loadgen(args: &[&str]) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_loadgen")).args(args)).await
}

/// Runs `command` (loadgen, or a shell that execs it) to its end, within [`wait`].
pub(crate) async fn run(command: &mut Command) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn loadgen");
    let out = tokio::time::timeout(wait(), child.wait_with_output())
        .await
        .expect("loadgen ends in time")
        .expect("loadgen output");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn bad_flags_exit_2_with_a_clear_message() {
    for (args, needle) in [
        (&["--bogus", "http://127.0.0.1:1/"][..], "--bogus"),
        (&["-c", "many", "http://127.0.0.1:1/"][..], "many"),
        (&["ftp://127.0.0.1:1/"][..], "ftp"),
        (&["https://127.0.0.1:1/"][..], "--cacert FILE"),
        (&["--tls-version", "1.1", "https://127.0.0.1:1/"][..], "1.1"),
        (&["-n", "0", "http://127.0.0.1:1/"][..], "requests"),
        (&["-s", "0", "http://127.0.0.1:1/"][..], "-s"),
        (&["-H", "NoColon", "http://127.0.0.1:1/"][..], "NoColon"),
        (
            &["-H", "Transfer-Encoding: chunked", "http://127.0.0.1:1/"][..],
            "Transfer-Encoding is written by loadgen from the body",
        ),
        (&[][..], "URL"),
    ] {
        let out = loadgen(args).await;
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
}

#[tokio::test]
async fn heavy_normal_run_prints_ab_block_and_identity() {
    let server = TestServer::start(Behaviour::Respond { body: 1234 });
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("p.csv");
    let tsv = dir.path().join("g.tsv");
    let hlog = dir.path().join("l.hlog");
    let out = loadgen(&[
        "-n",
        "200",
        "-c",
        "4",
        "-k",
        "-e",
        csv.to_str().unwrap(),
        "-g",
        tsv.to_str().unwrap(),
        "--hdr",
        hlog.to_str().unwrap(),
        &server.url(),
    ])
    .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for line in [
        "Server Software:        test",
        "Document Length:        1234 bytes",
        "Concurrency Level:      4",
        "Complete requests:      200",
        "Failed requests:        0",
        "Requests per second:",
        "Connection Times (ms)",
        "Percentage of the requests served within a certain time (ms)",
        "100%",
        "Planned: 200 = 200 ok + 0 failed + 0 not started",
        "Successful per second:",
    ] {
        assert!(
            out.stdout.contains(line),
            "missing {line:?} in\n{}",
            out.stdout
        );
    }
    // As ab: every 10% of -n but at most every 100 requests, then "Finished".
    assert!(
        out.stderr
            .contains("Completed 100 requests\nCompleted 200 requests\nFinished 200 requests"),
        "{}",
        out.stderr
    );
    let csv = std::fs::read_to_string(csv).unwrap();
    assert_eq!(csv.lines().count(), 102);
    let tsv = std::fs::read_to_string(tsv).unwrap();
    assert_eq!(tsv.lines().count(), 201);
    let hlog = std::fs::read_to_string(hlog).unwrap();
    assert!(hlog.contains("\"StartTimestamp\""));
}

#[tokio::test]
async fn heavy_json_dash_prints_only_json_on_stdout() {
    let server = TestServer::start(Behaviour::BadGateway);
    let out = loadgen(&[
        "-q",
        "-n",
        "20",
        "-c",
        "2",
        "-s",
        "5",
        "--json",
        "-",
        &server.url(),
    ])
    .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r: LoadReport = serde_json::from_str(&out.stdout).expect("stdout is a LoadReport");
    assert_eq!(r.schema_version, reloadbench_model::SCHEMA_VERSION);
    assert_eq!((r.planned, r.ok, r.failed, r.ab.non_2xx), (20, 0, 20, 20));
    assert!(
        out.stderr
            .contains("Planned: 20 = 0 ok + 20 failed + 0 not started"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn heavy_mix_file_with_retry_both_prints_methods_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let body: Vec<u8> = (0..1000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.path().join("body.bin"), &body).unwrap();
    let mix = dir.path().join("mix.toml");
    std::fs::write(
        &mix,
        "[[request]]\nweight = 3\n\n[[request]]\nweight = 1\nmethod = \"POST\"\n\
         body_file = \"body.bin\"\ncontent_type = \"application/octet-stream\"\n",
    )
    .unwrap();
    let bodies: Bodies = std::sync::Arc::new([("POST".to_owned(), body)].into_iter().collect());
    let plan = Plan {
        close_after: Some(2),
        ..Plan::default()
    };
    let server = MixServer::start(plan, bodies).await;
    let mix_arg = mix.to_str().unwrap();
    let out = loadgen(&[
        "-q",
        "-k",
        "-n",
        "200",
        "-c",
        "2",
        "--mix",
        mix_arg,
        "--retry-safe=both",
        "--json",
        "-",
        &server.url,
    ])
    .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r: LoadReport = serde_json::from_str(&out.stdout).expect("stdout is a LoadReport");
    let (get, post) = (server.record.seen("GET"), server.record.seen("POST"));
    assert_eq!(post.bodies_wrong, 0);
    assert_eq!(get.requests + post.requests, 200 + r.retries);
    assert_eq!(r.retries, get.closed_reused);
    assert_eq!(r.failed_retryable, get.closed_reused);
    assert_eq!(r.method("POST").unwrap().failed, post.closed_reused);
    let after = r.after_retry.clone().unwrap();
    assert_eq!(after.failed, post.closed_reused);
    for line in [
        "By method:",
        "  GET ",
        "  POST ",
        &format!("Failed, retryable:      {}", get.closed_reused),
        &format!(
            "Retries:                {} (--retry-safe=both",
            get.closed_reused
        ),
        "After retry:",
    ] {
        assert!(
            out.stderr.contains(line),
            "missing {line:?} in\n{}",
            out.stderr
        );
    }

    // A wrong entry is a usage error naming the entry and its field.
    std::fs::write(&mix, "[[request]]\n[[request]]\nweight = 0\n").unwrap();
    let out = loadgen(&["--mix", mix_arg, &server.url]).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("request 2: weight: must be at least 1"),
        "{}",
        out.stderr
    );
    std::fs::write(&mix, "[[request]]\nmethod = \"GE T\"\n").unwrap();
    let out = loadgen(&["--mix", mix_arg, &server.url]).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("request 1: method"), "{}", out.stderr);
}

#[tokio::test]
async fn heavy_https_run_prints_the_tls_lines_and_json() {
    let pki = Pki::new();
    let versions = [&rustls::version::TLS13];
    let server = TlsServer::start(&pki, &versions, Resume::Tickets, Mode::Serve).await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = loadgen(&[
        "-q",
        "-n",
        "40",
        "-c",
        "2",
        "--cacert",
        pki.ca_file.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        &server.url(),
    ])
    .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r: LoadReport = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let t = r.tls.as_ref().expect("tls in the JSON report");
    let (full, resumed) = (get(&server.counters.full), get(&server.counters.resumed));
    assert_eq!((t.full, t.resumed, t.failed), (full, resumed, 0));
    assert_eq!(full + resumed, 40);
    let cipher = t.cipher.as_deref().unwrap();
    for line in [
        format!("TLS protocol:           TLSv1.3, {cipher}\n"),
        format!("TLS handshakes:         40 (full {full}, resumed {resumed}, failed 0)\n"),
        "Handshake time (ms)\n  50%".to_owned(),
        "(longest handshake)".to_owned(),
        "Complete requests:      40".to_owned(),
    ] {
        assert!(
            out.stdout.contains(&line),
            "missing {line:?} in\n{}",
            out.stdout
        );
    }
}
