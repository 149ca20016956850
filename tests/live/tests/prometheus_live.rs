//! The product end to end without a cluster: the real chatbot (on a real PostgreSQL), a real Prometheus loaded with
//! the scrape configuration and rules the operator renders, traffic with errors and escalations, then through
//! Prometheus' HTTP API: every rule loaded and healthy, every dashboard query and rule parses and finds its metrics,
//! the monitoring guide's queries return data, and with the database stopped the error alert goes pending.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chatbot::config::Config;
use chatbot_operator::crd::{ChatbotMonitoring, LatencySlo, SloSpec};
use chatbot_operator::render::{DASHBOARDS, RenderOptions, local_prometheus, render};
use chatbot_operator::verify::checks::{self, Subject};
use serde_json::{Value, json};
use testsupport::{Exposition, TestPostgres, TestPrometheus};

const GUIDE_QUERIES: &[&str] = &[
    "rate(http_requests_total[1m])",
    "rate(http_request_duration_seconds_sum[5m]) / rate(http_request_duration_seconds_count[5m])",
    "memory_usage_bytes / 1024 / 1024",
    "http_requests_active",
    "rate(chat_requests_total[5m])",
    "rate(chat_response_time_seconds_sum[5m]) / rate(chat_response_time_seconds_count[5m])",
    "rate(ai_model_calls_total[5m])",
];

fn resource() -> ChatbotMonitoring {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/minimal.yaml");
    let mut cbm: ChatbotMonitoring = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    // With an SLO, so the burn-rate rules and their recording rules are loaded too.
    cbm.spec.alerts.slo = Some(SloSpec {
        availability_target: Some(99.9),
        latency: Some(LatencySlo {
            target: 99.0,
            threshold: 2.0,
        }),
    });
    cbm
}

async fn chat(client: &reqwest::Client, base: &str, body: Value) -> u16 {
    client
        .post(format!("{base}/chat"))
        .json(&body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// A mix of customers: both languages, every user type, escalations, bad input, history reads, unknown routes.
async fn traffic(client: &reqwest::Client, base: &str) {
    let messages = [
        "Où est ma commande ?",
        "Where is my order?",
        "Je voudrais retourner un article",
        "When will I get my refund?",
        "Je veux parler à un conseiller",
        "xyzzy plugh",
        "Can I pay with PayPal?",
    ];
    for (i, m) in messages.iter().cycle().take(35).enumerate() {
        let user_type = ["guest", "customer", "premium", "agent"][i % 4];
        let status = chat(client, base, json!({"message": m, "user_type": user_type})).await;
        assert_eq!(status, 200, "{m}");
    }
    assert_eq!(chat(client, base, json!({"message": ""})).await, 422);
    assert_eq!(
        chat(client, base, json!({"message": "hi", "user_type": "vip"})).await,
        422
    );
    let _ = client.get(format!("{base}/conversations/nope")).send().await;
    let _ = client.get(format!("{base}/wp-login.php")).send().await;
}

async fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_rules_and_guide_queries_work_on_a_real_prometheus() {
    let pg = TestPostgres::start().expect("start PostgreSQL");
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.internal_listen = "127.0.0.1:0".parse().unwrap();
    let listeners = chatbot::app::Listeners::bind(&config).await.unwrap();
    let base = format!("http://{}", listeners.api.local_addr().unwrap());
    // Prometheus scrapes the internal listener, as the ServiceMonitor's `metrics` port does.
    let address = listeners.internal.local_addr().unwrap().to_string();
    config.database_url = pg.url();
    config.db_acquire_timeout = Duration::from_millis(300);
    config.sample_interval = Duration::from_secs(1);
    config.model_backend = chatbot::config::ModelBackend::Builtin;
    config.http_metrics = true;
    // The traffic comes from one address and session faster than a person types.
    config.chat_rate_per_session = 0;
    config.chat_rate_per_client = 0;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(chatbot::app::serve(config, listeners, async {
        let _ = stopped.await;
    }));

    // What the operator renders, as a plain Prometheus would load it, scraping every second.
    let desired = render(&resource(), &RenderOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    local_prometheus::write(dir.path(), &desired, std::slice::from_ref(&address), Some("1s"), None).unwrap();
    let prom = TestPrometheus::start(dir.path()).expect("start Prometheus");

    let client = reqwest::Client::new();
    wait_for("the chatbot target is up", Duration::from_secs(20), || {
        let r = prom.query("up{namespace=\"default\", job=\"chatbot\"} == 1")?;
        if r.is_empty() { Err("not up yet".into()) } else { Ok(()) }
    })
    .await;
    // Scraped, but no customer yet: an objective's budget is unknown (no data), never a perfect 100 %.
    let subject = Subject {
        namespace: "default".into(),
        job: "chatbot".into(),
    };
    let budgets: Vec<(String, String)> = DASHBOARDS
        .iter()
        .flat_map(|(_, text)| checks::panel_queries(&serde_json::from_str(text).unwrap()))
        .filter(|(title, _)| title.contains("budget remaining"))
        .collect();
    assert_eq!(budgets.len(), 2, "{budgets:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (title, expr) in &budgets {
        let result = prom.query(&checks::substitute(expr, &subject)).unwrap();
        assert!(result.is_empty(), "{title} without traffic: {result:?}");
    }
    traffic(&client, &base).await;
    // A few more scrapes so that rate() has samples on both sides of the traffic.
    for _ in 0..4 {
        traffic(&client, &base).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
    }

    // Every rule group is loaded and healthy.
    let rules = prom.api("rules").unwrap();
    let groups = rules["groups"].as_array().unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(
        names.len(),
        desired.prometheus_rule.as_ref().unwrap().spec.groups.len(),
        "{names:?}"
    );
    for g in groups {
        for r in g["rules"].as_array().unwrap() {
            assert_eq!(r["health"], "ok", "{}: {}", r["name"], r["lastError"]);
        }
    }

    // The metric names the chatbot exposes, from its own /metrics.
    let scrape = client
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exposition = Exposition::parse(&scrape);
    let mut exposed: BTreeSet<String> = BTreeSet::new();
    for (family, kind) in &exposition.types {
        exposed.insert(family.clone());
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                exposed.insert(format!("{family}{suffix}"));
            }
        }
    }
    let rule_list: Vec<(String, String)> = desired
        .prometheus_rule
        .as_ref()
        .unwrap()
        .spec
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .map(|r| (r.alert.clone().or(r.record.clone()).unwrap(), r.expr.clone()))
        .collect();
    let recorded: BTreeSet<String> = desired
        .prometheus_rule
        .as_ref()
        .unwrap()
        .spec
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter_map(|r| r.record.clone())
        .collect();
    let from_prometheus: BTreeSet<String> = ["up", "ALERTS"].iter().map(|s| s.to_string()).collect();

    // Every rule parses with a real PromQL parser and in Prometheus, and reads only metrics that exist.
    for (name, expr) in &rule_list {
        let used = checks::expr_metric_names(expr).unwrap_or_else(|e| panic!("{name}: {e}"));
        for m in used {
            assert!(
                exposed.contains(&m)
                    || recorded.contains(&m)
                    || from_prometheus.contains(&m)
                    // Exposed only under a memory limit, which this chatbot (in the test's process) has none of.
                    || checks::CONDITIONAL.contains(&m.as_str()),
                "rule {name} reads {m}, which the chatbot does not expose"
            );
        }
        prom.query(expr)
            .unwrap_or_else(|e| panic!("rule {name} does not evaluate: {e}"));
    }

    // The monitoring guide's queries return data.
    for q in GUIDE_QUERIES {
        let result = prom.query(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert!(!result.is_empty(), "the guide's query {q} returned no data");
    }

    // Errors: the database goes away, /chat answers 503, and the error-rate alert goes pending.
    pg.stop_server().unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut pending = false;
    while Instant::now() < deadline && !pending {
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(chat(&client, &base, json!({"message": "Where is my order?"})).await);
        }
        assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
        let alerts = prom
            .query("ALERTS{alertname=\"HighErrorRate\", namespace=\"default\", job=\"chatbot\"}")
            .unwrap();
        pending = alerts.iter().any(|a| a["metric"]["alertstate"] == "pending");
    }
    assert!(pending, "HighErrorRate did not go pending with the database down");

    // Now every panel of every dashboard finds data, alerts panel included, and reads only exposed metrics.
    let mut empty = Vec::new();
    let queries = DASHBOARDS
        .iter()
        .flat_map(|(_, text)| checks::panel_queries(&serde_json::from_str(text).unwrap()));
    for (title, expr) in queries {
        let expr = checks::substitute(&expr, &subject);
        let used = checks::expr_metric_names(&expr).unwrap_or_else(|e| panic!("panel {title:?}: {e}: {expr}"));
        // The memory limit exists only under one, which this chatbot (a process of the test) does not run.
        if used.iter().all(|m| checks::CONDITIONAL.contains(&m.as_str())) {
            continue;
        }
        for m in used {
            assert!(
                exposed.contains(&m) || from_prometheus.contains(&m),
                "panel {title:?} reads {m}, which the chatbot does not expose"
            );
        }
        match prom.query(&expr) {
            Ok(result) if result.is_empty() => empty.push(format!("{title}: {expr}")),
            Ok(_) => {}
            Err(e) => panic!("panel {title:?} does not evaluate: {e}: {expr}"),
        }
    }
    assert!(empty.is_empty(), "panels without data:\n{}", empty.join("\n"));
    // The objectives' ratios are recorded from the chatbot's own series (the latency one through its `le`
    // matcher, which must match this Prometheus' spelling of the bucket bound).
    for record in ["chatbot:http_error_ratio:rate5m", "chatbot:chat_slow_ratio:rate5m"] {
        let result = prom.query(record).unwrap();
        assert!(!result.is_empty(), "{record} has no data");
    }

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
}
