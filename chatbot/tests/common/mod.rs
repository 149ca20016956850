//! Starts the real chatbot server on an ephemeral 127.0.0.1 port and talks HTTP to it.
#![allow(dead_code)]

pub mod fake_openai;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use testsupport::Exposition;
use tokio::sync::oneshot;

use chatbot::config::Config;

pub struct TestServer {
    /// The public API.
    pub base: String,
    /// The probes and /metrics.
    pub internal: String,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// The agent token every test server accepts (`get` sends it).
pub const AGENT_TOKEN: &str = "agent-token-for-the-tests-0001";

/// The defaults, on a given database, with settings that keep tests fast and isolated.
pub fn config(database_url: &str) -> Config {
    let mut c = Config::defaults();
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.internal_listen = "127.0.0.1:0".parse().unwrap();
    c.database_url = database_url.to_owned();
    // The product's default: the first SQLite connection is opened under it too, and 500 ms was not always enough
    // for several tests starting their chatbots at once on two cores (a CI run failed so).
    c.db_acquire_timeout = Duration::from_secs(2);
    c.sample_interval = Duration::from_millis(200);
    // Whatever the environment says (Config::defaults reads it like the binary does), tests run on these.
    c.model_backend = chatbot::config::ModelBackend::Builtin;
    c.openai_api_key = None;
    c.openai_max_retries = 2;
    c.knowledge_file = None;
    c.answer_cache_size = 4096;
    c.http_metrics = true;
    c.db_max_connections = 8;
    c.fault_every = 0;
    c.agent_tokens = Some(AGENT_TOKEN.to_owned());
    // The limits have their own tests (tests/limits.rs); elsewhere they would only throttle the traffic.
    c.chat_rate_per_session = 0;
    c.chat_rate_per_client = 0;
    c
}

/// A SQLite URL in a fresh temporary directory (kept alive by the returned guard).
pub fn sqlite_url() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("chatbot.db").display());
    (dir, url)
}

impl TestServer {
    pub async fn start(config: Config) -> TestServer {
        let listeners = chatbot::app::Listeners::bind(&config).await.unwrap();
        let base = format!("http://{}", listeners.api.local_addr().unwrap());
        let internal = format!("http://{}", listeners.internal.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(chatbot::app::serve(config, listeners, async {
            let _ = rx.await;
        }));
        let server = TestServer {
            base,
            internal,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            task,
        };
        // serve() opens the database before accepting: wait until it answers (up to 10 s on a loaded machine).
        for _ in 0..500 {
            if server.client.get(server.url("/health")).send().await.is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the chatbot did not start");
    }

    /// The URL of `path`: the probes and /metrics on the internal listener, the rest on the API's.
    pub fn url(&self, path: &str) -> String {
        match path {
            "/health" | "/ready" | "/metrics" => format!("{}{}", self.internal, path),
            _ => format!("{}{}", self.base, path),
        }
    }

    pub async fn chat(&self, body: Value) -> (StatusCode, Value) {
        let r = self.client.post(self.url("/chat")).json(&body).send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap())
    }

    /// Sends a raw body with a content type, for malformed input.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let r = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A GET as a support agent (with the agent token).
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.get_as(path, Some(&format!("Bearer {AGENT_TOKEN}"))).await
    }

    /// A GET with this `Authorization` header, or none.
    pub async fn get_as(&self, path: &str, authorization: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.client.get(self.url(path));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let r = request.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A DELETE as a support agent.
    pub async fn delete(&self, path: &str) -> StatusCode {
        let r = self
            .client
            .delete(self.url(path))
            .bearer_auth(AGENT_TOKEN)
            .send()
            .await
            .unwrap();
        r.status()
    }

    pub async fn metrics(&self) -> Exposition {
        let r = self.client.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
        Exposition::parse(&r.text().await.unwrap())
    }

    /// Graceful shutdown, as on SIGTERM; returns what `serve` returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.take().unwrap().send(()).ok();
        self.task.await.unwrap()
    }
}

/// Runs `statements` in one transaction, straight on the database (not through the API under test).
pub async fn sql_execute(url: &str, statements: &[String]) {
    macro_rules! run {
        ($pool:ty) => {{
            let pool = <$pool>::connect(url).await.unwrap();
            let mut tx = pool.begin().await.unwrap();
            for s in statements {
                sqlx::query(s).execute(&mut *tx).await.unwrap();
            }
            tx.commit().await.unwrap();
            pool.close().await;
        }};
    }
    if url.starts_with("sqlite:") {
        run!(sqlx::SqlitePool)
    } else {
        run!(sqlx::PgPool)
    }
}

/// The count a `SELECT COUNT(*) …` answers, straight from the database.
pub async fn sql_count(url: &str, sql: &str) -> i64 {
    macro_rules! count {
        ($pool:ty) => {{
            let pool = <$pool>::connect(url).await.unwrap();
            let n: (i64,) = sqlx::query_as(sql).fetch_one(&pool).await.unwrap();
            pool.close().await;
            n.0
        }};
    }
    if url.starts_with("sqlite:") {
        count!(sqlx::SqlitePool)
    } else {
        count!(sqlx::PgPool)
    }
}
