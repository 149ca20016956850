//! The few calls of Prometheus' HTTP API the checks need, with a timeout: one each for targets, rules and the
//! chatbot's series, whatever the number of panels (the series request is batched over every metric they read).

use std::time::Duration;

use serde_json::Value;

#[derive(Clone)]
pub struct PrometheusApi {
    base: String,
    http: reqwest::Client,
}

/// Why the API could not answer: a condition, never a crash.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Prometheus at {url} is unreachable: {error}")]
    Unreachable { url: String, error: String },
    #[error("Prometheus answered {status} to {path}: {body}")]
    Refused { path: String, status: u16, body: String },
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
                error: e.to_string(),
            })?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if status == 200 && v["status"] == "success" {
            Ok(v["data"].clone())
        } else {
            Err(ApiError::Refused {
                path: path.to_owned(),
                status,
                body: body.chars().take(300).collect(),
            })
        }
    }
}
