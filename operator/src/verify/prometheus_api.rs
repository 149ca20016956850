//! The few calls of Prometheus' HTTP API the checks need, with a timeout: one each for targets, rules and the
//! chatbot's series, whatever the number of panels (the series request is batched over every metric they read).

use std::time::Duration;

use serde_json::Value;

#[derive(Clone)]
pub struct PrometheusApi {
    base: String,
    http: reqwest::Client,
}

/// Why the API could not answer: a condition, never a crash. The messages are one sentence a person reads in
/// `kubectl describe`: the server and the endpoint, never the request's URL with its (long) query.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Prometheus at {url} could not be reached: {error}")]
    Unreachable { url: String, error: String },
    #[error("Prometheus at {url} answered HTTP {status} to /api/v1/{path}: {error}")]
    Refused {
        url: String,
        path: String,
        status: u16,
        error: String,
    },
}

impl PrometheusApi {
    pub fn new(base_url: &str, timeout: Duration) -> Self {
        PrometheusApi {
            base: base_url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .expect("a client with a timeout builds"),
        }
    }

    /// The base URL, as messages name it.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The `data` of a successful `GET /api/v1/<path>`.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ApiError> {
        let url = format!("{}/api/v1/{path}", self.base);
        let response = self
            .http
            .get(&url)
            .query(query)
            .send()
            .await
            .map_err(|e| ApiError::Unreachable {
                url: self.base.clone(),
                error: cause(&e),
            })?;
        let status = response.status().as_u16();
        let body = self.bounded_body(response, path).await?;
        read_answer(&self.base, path, status, &body)
    }

    /// The body, refused past MAX_ANSWER_BYTES: the URL may be any server (`spec.monitoring.prometheus.url`), and
    /// one that streams without end must not take the operator's memory with it.
    async fn bounded_body(&self, response: reqwest::Response, path: &str) -> Result<Vec<u8>, ApiError> {
        let status = response.status().as_u16();
        read_bounded(response).await.map_err(|e| match e {
            BodyError::TooLarge => ApiError::Refused {
                url: self.base.clone(),
                path: path.to_owned(),
                status,
                error: e.to_string(),
            },
            BodyError::Broken(error) => ApiError::Unreachable {
                url: self.base.clone(),
                error,
            },
        })
    }
}

/// Why a body could not be read whole.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("the answer is larger than {} MiB", MAX_ANSWER_BYTES >> 20)]
    TooLarge,
    #[error("{0}")]
    Broken(String),
}

/// A response's body, refused past MAX_ANSWER_BYTES.
pub(crate) async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) if body.len() + chunk.len() > MAX_ANSWER_BYTES => return Err(BodyError::TooLarge),
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => return Ok(body),
            Err(e) => return Err(BodyError::Broken(cause(&e))),
        }
    }
}

/// The largest answer read from Prometheus: a cluster's active targets or rules are a few MiB at most, and two
/// answers are read at once, each parsed into several times its size, within the operator's memory limit.
pub const MAX_ANSWER_BYTES: usize = 16 << 20;

/// The `data` of Prometheus' answer to `GET /api/v1/<path>` (HTTP `status`, `body`), or why it is not one: any body
/// a server sends, however malformed, is one or the other (fuzzed: `fuzz/fuzz_targets/prometheus_answers.rs`).
pub fn read_answer(base: &str, path: &str, status: u16, body: &[u8]) -> Result<Value, ApiError> {
    let mut v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if status == 200 && v["status"] == "success" {
        Ok(v["data"].take())
    } else {
        Err(ApiError::Refused {
            url: base.to_owned(),
            path: path.to_owned(),
            status,
            error: explanation(&v, body),
        })
    }
}

/// The longest server-given explanation kept in a message.
const MAX_DETAIL: usize = 160;

/// What went wrong with a request, without its URL: the innermost cause (connection refused, name not resolved).
pub(crate) fn cause(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "no answer before the deadline".into();
    }
    // reqwest's own message names the URL; the causes under it never do.
    let mut innermost = None;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        innermost = Some(s);
        source = s.source();
    }
    match innermost {
        Some(s) => shorten(&s.to_string()),
        None if e.is_connect() => "connection failed".into(),
        None => "request failed".into(),
    }
}

/// Prometheus' `error` field when the body (`v` parsed) is its JSON envelope, else the body's first line; at most
/// MAX_DETAIL.
fn explanation(v: &Value, body: &[u8]) -> String {
    match v["error"].as_str() {
        Some(error) => shorten(error),
        None => {
            let text = String::from_utf8_lossy(&body[..body.len().min(4 * MAX_DETAIL)]);
            shorten(text.lines().next().unwrap_or("empty answer"))
        }
    }
}

pub(crate) fn shorten(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= MAX_DETAIL {
        return text.to_owned();
    }
    let cut: String = text.chars().take(MAX_DETAIL).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_prometheus_is_one_sentence_without_the_query() {
        // A port nothing listens on.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let api = PrometheusApi::new(&base, Duration::from_secs(2));
        let long = "x".repeat(700);
        let e = api.get("series", &[("match[]", long)]).await.unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("Prometheus at {base} could not be reached: ")),
            "{e}"
        );
        assert!(
            !e.contains("match") && !e.contains("xxx") && !e.contains("/api/v1"),
            "{e}"
        );
        assert!(e.len() < 200, "{e}");
    }

    /// A "Prometheus" that streams without end (any URL can be named in a spec) is refused past the bound, and the
    /// operator's memory stays bounded.
    #[tokio::test]
    async fn an_endless_answer_is_refused_past_the_bound() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n";
            socket.write_all(head.as_bytes()).await.unwrap();
            let chunk = vec![b' '; 1 << 20];
            // Until the client hangs up.
            while socket.write_all(&chunk).await.is_ok() {}
        });
        let api = PrometheusApi::new(&base, Duration::from_secs(30));
        let e = api.get("targets", &[]).await.unwrap_err().to_string();
        assert!(e.ends_with("the answer is larger than 16 MiB"), "{e}");
    }

    #[test]
    fn any_answer_is_data_or_a_refusal() {
        let ok = read_answer(
            "http://p",
            "rules",
            200,
            br#"{"status":"success","data":{"groups":[]}}"#,
        )
        .unwrap();
        assert_eq!(ok, serde_json::json!({"groups": []}));
        for (status, body) in [
            (200, "not json"),
            (200, r#"{"status":"error"}"#),
            (503, ""),
            (200, "\u{0}"),
        ] {
            let e = read_answer("http://p", "rules", status, body.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!("Prometheus at http://p answered HTTP {status}")),
                "{e}"
            );
        }
    }

    #[test]
    fn a_refusal_keeps_prometheus_explanation_short() {
        let body = format!(
            r#"{{"status":"error","errorType":"bad_data","error":"{}"}}"#,
            "y".repeat(500)
        );
        let e = explanation(&serde_json::from_str(&body).unwrap(), body.as_bytes());
        assert!(e.starts_with("yyy") && e.ends_with('…') && e.chars().count() == MAX_DETAIL + 1);
        assert_eq!(
            explanation(&Value::Null, b"404 page not found\nmore"),
            "404 page not found"
        );
    }
}
