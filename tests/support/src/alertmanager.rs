//! A throwaway Alertmanager (Debian's `prometheus-alertmanager` package, whose templates it reads from disk) on
//! 127.0.0.1, alone (no cluster peers), with its data in a temporary directory, stopped on drop; and the calls of
//! its v2 API the tests make.

use anyhow::Context;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::prometheus::{http_get, request, wait_ready};

pub struct TestAlertmanager {
    child: Child,
    pub url: String,
    _data: tempfile::TempDir,
}

impl TestAlertmanager {
    /// Starts Alertmanager on `config` listening on `port` and waits until it is ready.
    pub fn start(config: &Path, port: u16) -> anyhow::Result<TestAlertmanager> {
        let data = tempfile::Builder::new().prefix("chatbot-am-").tempdir()?;
        let log = std::fs::File::create(data.path().join("alertmanager.log"))?;
        let child = Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", data.path().display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Alone: no gossip port to collide with another test's, and no settling wait for peers.
            .args(["--cluster.listen-address=", "--log.level=warn"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context(
                "starting prometheus-alertmanager: install Debian's `prometheus-alertmanager` package \
                 (scripts/install-deps.sh)",
            )?;
        let mut am = TestAlertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _data: data,
        };
        let log = am._data.path().join("alertmanager.log");
        wait_ready("alertmanager", &mut am.child, &am.url, &log)?;
        Ok(am)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._data.path().join("alertmanager.log")).unwrap_or_default()
    }

    /// `GET /api/v2/<path>` as JSON.
    pub fn get(&self, path: &str) -> Result<Value, String> {
        let (code, body) = http_get(&format!("{}/api/v2/{path}", self.url)).map_err(|e| e.to_string())?;
        if code != 200 {
            return Err(format!("HTTP {code}: {body}"));
        }
        serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))
    }

    /// `POST /api/v2/alerts`: alerts as a client (Prometheus) sends them.
    pub fn post_alerts(&self, alerts: &Value) -> Result<(), String> {
        let (code, body) =
            request("POST", &format!("{}/api/v2/alerts", self.url), &alerts.to_string()).map_err(|e| e.to_string())?;
        if code == 200 {
            Ok(())
        } else {
            Err(format!("HTTP {code}: {body}"))
        }
    }
}

impl Drop for TestAlertmanager {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}
