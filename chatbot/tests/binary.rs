//! The `chatbot` binary itself: JSON logs, SIGTERM finishing in-flight requests, clear errors on bad configuration.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::Json;
use axum::routing::post;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_chatbot");

/// A model endpoint that takes `delay` to answer, so a request is in flight when SIGTERM arrives.
async fn slow_model(delay: Duration) -> String {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move || async move {
            tokio::time::sleep(delay).await;
            let content = json!({"intent": "refund", "confidence": 0.9, "language": "en", "reply": "Soon."});
            Json(json!({"choices": [{"message": {"role": "assistant", "content": content.to_string()}}]}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// Kills the chatbot if the test fails before the process has exited, so that none outlives a failed test.
struct Reap(Option<u32>);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_then_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let base = slow_model(Duration::from_millis(1500)).await;
    let mut child = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--internal-listen",
            "127.0.0.1:0",
            "--model-backend",
            "openai",
            "--openai-base-url",
            &base,
        ])
        .arg("--database-url")
        .arg(format!("sqlite://{}", dir.path().join("c.db").display()))
        .env_clear()
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reap = Reap(Some(child.id()));
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let v: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("log line is not JSON: {line}"));
            if lines_tx.send(v).is_err() {
                break;
            }
        }
    });
    let listening = lines_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a first log line");
    assert_eq!(listening["fields"]["message"], "listening", "{listening}");
    assert_eq!(listening["level"], "INFO");
    let address = listening["fields"]["address"].as_str().unwrap().to_owned();

    let in_flight = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("http://{address}/chat"))
            .json(&json!({"message": "refund?"}))
            .send()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());

    let response = in_flight.await.unwrap();
    assert_eq!(response.status(), 200, "the in-flight request was cut off");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["model"], "openai");

    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    reap.0 = None; // exited and reaped: its pid may be anyone's now
    assert!(status.success(), "exit status {status}");
    let messages: Vec<String> = lines_rx
        .try_iter()
        .filter_map(|v| v["fields"]["message"].as_str().map(str::to_owned))
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("shutdown requested")),
        "{messages:?}"
    );
    assert_eq!(messages.last().map(String::as_str), Some("stopped"), "{messages:?}");
}

#[test]
fn bad_configuration_exits_non_zero_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .env_clear()
        .args(["--model-backend", "gpt"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'gpt'"));

    // One connection writes and at least one reads.
    let out = Command::new(BIN)
        .env_clear()
        .args(["--db-max-connections", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid value '1' for '--db-max-connections") && stderr.contains("2.."),
        "{stderr}"
    );

    let kb = dir.path().join("kb.yaml");
    // The shipped base with only its version changed: the version check itself must refuse it.
    let shipped = include_str!("../knowledge/kb.yaml");
    std::fs::write(&kb, shipped.replacen("version: 1", "version: 2", 1)).unwrap();
    let stderr = refused_at_start(dir.path(), "--knowledge-file", &kb);
    assert!(
        stderr.contains("kb.yaml") && stderr.contains("knowledge base"),
        "{stderr}"
    );

    // A price table with a mistake names the file and the field; nothing is served on a wrong table.
    let prices = dir.path().join("prices.yaml");
    std::fs::write(
        &prices,
        "models:\n  gpt-4o-mini:\n    currency: USD\n    input: -0.15\n    output: 0.6\n",
    )
    .unwrap();
    let stderr = refused_at_start(dir.path(), "--prices-file", &prices);
    assert!(
        stderr.contains("prices.yaml") && stderr.contains("models.gpt-4o-mini.input"),
        "{stderr}"
    );
}

/// Starts the binary with `flag file` (and a database in `dir`), which it must refuse with exit code 1: its stderr.
fn refused_at_start(dir: &std::path::Path, flag: &str, file: &std::path::Path) -> String {
    let out = Command::new(BIN)
        .env_clear()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--internal-listen",
            "127.0.0.1:0",
            "--log-format",
            "text",
        ])
        .arg(flag)
        .arg(file)
        .arg("--database-url")
        .arg(format!("sqlite://{}", dir.join("c.db").display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The memory limit a chatbot runs under, read back from `/metrics` when it runs in a cgroup this test makes with a
/// 256 MiB limit (cgroup v1's `memory.limit_in_bytes` or v2's `memory.max`). Skipped, saying why, where this process
/// may not make a cgroup (not root, or a v2 hierarchy that does not delegate).
#[tokio::test]
async fn the_memory_limit_of_its_cgroup_is_exported() {
    use std::os::unix::process::CommandExt;
    let here = (
        std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
        std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(),
    );
    let Some(own) = chatbot::cgroup::locate(&here.0, &here.1) else {
        eprintln!("SKIPPED: no memory cgroup hierarchy mounted here");
        return;
    };
    let cgroup = own.dir.join(format!("chatbot-limit-test-{}", std::process::id()));
    let limit_file = if own.v2 { "memory.max" } else { "memory.limit_in_bytes" };
    let made = std::fs::create_dir(&cgroup).and_then(|()| std::fs::write(cgroup.join(limit_file), "268435456"));
    if let Err(e) = made {
        let _ = std::fs::remove_dir(&cgroup);
        eprintln!("SKIPPED: cannot make a memory cgroup under {} ({e})", own.dir.display());
        return;
    }
    let procs = cgroup.join("cgroup.procs");
    let dir = tempfile::tempdir().unwrap();
    let internal = testsupport::free_port().unwrap();
    let mut command = Command::new(BIN);
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--internal-listen",
            &format!("127.0.0.1:{internal}"),
        ])
        .arg("--database-url")
        .arg(format!("sqlite://{}", dir.path().join("c.db").display()))
        .env_clear()
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Prepared here: between fork and exec only async-signal-safe calls are allowed, no allocation.
    let procs = std::ffi::CString::new(procs.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: open(2), write(2) and close(2) on a path prepared before the fork; "0" moves the writing process, the
    // chatbot to be.
    unsafe {
        command.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let written = libc::write(fd, b"0".as_ptr().cast(), 1);
            libc::close(fd);
            if written == 1 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut child = command.spawn().expect("the chatbot starts in the cgroup");
    let _reap = Reap(Some(child.id()));
    let url = format!("http://127.0.0.1:{internal}/metrics");
    let mut text = String::new();
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(&url).await {
            text = r.text().await.unwrap_or_default();
            if text.contains("memory_limit_bytes") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir(&cgroup);
    let exposition = testsupport::Exposition::parse(&text);
    assert_eq!(
        exposition.get("memory_limit_bytes", &[]),
        Some(268435456.0),
        "in:\n{text}"
    );
}
