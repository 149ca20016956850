//! A Prometheus HTTP API answering from canned JSON, counting the requests per path: `/api/v1/targets`,
//! `/api/v1/rules`, `/api/v1/alertmanagers`, and `/api/v1/series` answered for the `job` its `match[]` names, as a
//! real one filters. The same server answers Alertmanager's `/api/v2/status`, with a configuration set by the test.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::routing::get;
use chatbot_operator::render::DASHBOARDS;
use chatbot_operator::verify::checks::{Subject, panel_selectors};
use serde_json::{Value, json};

#[derive(Clone, Default)]
pub struct Answers {
    pub targets: Arc<Mutex<Value>>,
    pub rules: Arc<Mutex<Value>>,
    /// Every series of every job; a series request gets those of the job it asks for.
    pub series: Arc<Mutex<Value>>,
    /// `/api/v1/alertmanagers`' data.
    pub alertmanagers: Arc<Mutex<Value>>,
    /// Alertmanager's loaded configuration, as YAML (`config.original` of `/api/v2/status`).
    pub alertmanager_config: Arc<Mutex<String>>,
    pub requests: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl Answers {
    pub fn requests(&self, what: &str) -> usize {
        self.requests.lock().unwrap().get(what).copied().unwrap_or(0)
    }
}

/// Serves `answers` on a free port of 127.0.0.1; returns its base URL.
pub async fn start(answers: Answers) -> String {
    let app = axum::Router::new()
        .route("/api/v1/{what}", get(answer))
        .route("/api/v2/status", get(alertmanager_status))
        .with_state(answers);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn answer(
    State(a): State<Answers>,
    Path(what): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> axum::Json<Value> {
    *a.requests.lock().unwrap().entry(what.clone()).or_default() += 1;
    let data = match what.as_str() {
        "targets" => a.targets.lock().unwrap().clone(),
        "alertmanagers" => a.alertmanagers.lock().unwrap().clone(),
        "rules" => a.rules.lock().unwrap().clone(),
        _ => {
            let job = query
                .get("match[]")
                .and_then(|m| m.split("job=\"").nth(1))
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default()
                .to_owned();
            let all = a.series.lock().unwrap();
            Value::Array(
                all.as_array()
                    .into_iter()
                    .flatten()
                    .filter(|s| s["job"] == job.as_str())
                    .cloned()
                    .collect(),
            )
        }
    };
    axum::Json(json!({"status": "success", "data": data}))
}

async fn alertmanager_status(State(a): State<Answers>) -> axum::Json<Value> {
    *a.requests.lock().unwrap().entry("status".into()).or_default() += 1;
    let original = a.alertmanager_config.lock().unwrap().clone();
    axum::Json(
        json!({"cluster": {"status": "disabled", "peers": []}, "config": {"original": original},
                      "versionInfo": {"version": "0.25.0"}, "uptime": "2026-12-04T15:13:36.804Z"}),
    )
}

/// One monitored chatbot: its namespace, job (the Service name) and rule group names.
pub struct Monitored {
    pub namespace: String,
    pub job: String,
    pub groups: Vec<String>,
}

/// Answers of a Prometheus that scrapes every chatbot of `monitored` (up or down), loaded their rules (the
/// `chatbot-sav.http` group's HighErrorRate firing), and holds every metric their dashboards read.
pub fn healthy(monitored: &[Monitored], up: bool) -> Answers {
    let mut targets = Vec::new();
    let mut groups = Vec::new();
    let mut series = Vec::new();
    for m in monitored {
        let subject = Subject {
            namespace: m.namespace.clone(),
            job: m.job.clone(),
        };
        for (_, text) in DASHBOARDS {
            let dashboard: Value = serde_json::from_str(text).unwrap();
            for s in panel_selectors(&dashboard, &subject).unwrap() {
                let mut labels = serde_json::Map::new();
                labels.insert("__name__".into(), json!(s.metric));
                labels.insert("namespace".into(), json!(m.namespace));
                labels.insert("job".into(), json!(m.job));
                for l in s.labels {
                    labels.insert(l, json!("x"));
                }
                series.push(Value::Object(labels));
            }
        }
        let file = format!(
            "/etc/prometheus/rules/prometheus-kps-rulefiles-0/{}-{}-5e1f7a2c-0000-4000-8000-000000000001.yaml",
            m.namespace, m.job
        );
        groups.extend(m.groups.iter().map(|g| {
            json!({"name": g, "file": file,
                   "rules": [{"name": "HighErrorRate", "health": "ok",
                              "labels": {"namespace": m.namespace, "job": m.job},
                              "state": if g == "chatbot-sav.http" { "firing" } else { "inactive" }}]})
        }));
        targets.push(json!({"labels": {"namespace": m.namespace, "job": m.job},
            "health": if up { "up" } else { "down" }, "scrapeUrl": "http://10.0.0.3:8000/metrics",
            "lastError": if up { "" } else { "Get \"http://10.0.0.3:8000/metrics\": connection refused" }}));
    }
    let a = Answers::default();
    *a.targets.lock().unwrap() = json!({"activeTargets": targets});
    *a.rules.lock().unwrap() = json!({"groups": groups});
    *a.series.lock().unwrap() = Value::Array(series);
    *a.alertmanagers.lock().unwrap() = json!({"activeAlertmanagers": [{"url": "http://10.0.0.9:9093/api/v2/alerts"}],
                                              "droppedAlertmanagers": []});
    *a.alertmanager_config.lock().unwrap() = "route:\n  receiver: \"null\"\nreceivers:\n- name: \"null\"\n".into();
    a
}
