//! A throwaway Prometheus server (Debian's `prometheus` package) on 127.0.0.1 and a free port, with its data in a
//! temporary directory, stopped on drop; and a small client for its HTTP API.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::free_port;

pub struct TestPrometheus {
    child: Child,
    pub url: String,
    _data: tempfile::TempDir,
}

impl TestPrometheus {
    /// Starts Prometheus on `dir/prometheus.yml` and waits until it is ready.
    pub fn start(dir: &Path) -> anyhow::Result<TestPrometheus> {
        let data = tempfile::Builder::new().prefix("chatbot-prom-").tempdir()?;
        let port = free_port()?;
        let log = std::fs::File::create(data.path().join("prometheus.log"))?;
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", data.path().join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(["--web.enable-lifecycle", "--log.level=warn"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting prometheus: install Debian's `prometheus` package (scripts/install-deps.sh)")?;
        let mut p = TestPrometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _data: data,
        };
        let log = p._data.path().join("prometheus.log");
        wait_ready("prometheus", &mut p.child, &p.url, &log)?;
        Ok(p)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._data.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Asks Prometheus to re-read its configuration and rule files.
    pub fn reload(&self) -> anyhow::Result<()> {
        let (code, body) = http_post(&format!("{}/-/reload", self.url))?;
        anyhow::ensure!(code == 200, "reload answered {code}: {body}");
        Ok(())
    }

    /// `GET /api/v1/<path>`: the `data` of a success, or the error Prometheus gave.
    pub fn api(&self, path_and_query: &str) -> Result<Value, String> {
        let (code, body) = http_get(&format!("{}/api/v1/{path_and_query}", self.url)).map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if code == 200 && v["status"] == "success" {
            Ok(v["data"].clone())
        } else {
            Err(format!("{}: {}", v["errorType"], v["error"]))
        }
    }

    /// An instant query: its result vector (or the parse/execution error).
    pub fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self.api(&format!("query?query={}", encode(expr)))?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// Waits up to 30 s for the server `child` to answer 200 on `<url>/-/ready` (Prometheus and Alertmanager alike);
/// fails with its log when it exits or never does.
pub(crate) fn wait_ready(name: &str, child: &mut Child, url: &str, log: &Path) -> anyhow::Result<()> {
    let log = || std::fs::read_to_string(log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!("{name} exited ({status}):\n{}", log());
        }
        if http_get(&format!("{url}/-/ready")).is_ok_and(|(code, _)| code == 200) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{name} did not become ready:\n{}", log())
}

/// Percent-encodes a query parameter.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A blocking HTTP/1.0 GET on 127.0.0.1, enough for Prometheus' API without an HTTP client dependency.
pub(crate) fn http_get(url: &str) -> std::io::Result<(u16, String)> {
    request("GET", url, "")
}

fn http_post(url: &str) -> std::io::Result<(u16, String)> {
    request("POST", url, "")
}

/// A blocking HTTP/1.0 request with a JSON body (empty for none).
pub(crate) fn request(method: &str, url: &str, body: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, body))
}
