//! The product end to end without a cluster: the real chatbot (on a real PostgreSQL), a real Prometheus loaded with
//! the scrape configuration and rules the operator renders, traffic with errors and escalations, then through
//! Prometheus' HTTP API: every rule loaded and healthy, every dashboard query and rule parses and finds its metrics,
//! the monitoring guide's queries return data, and with the database stopped the error alert goes pending.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chatbot::config::Config;
use chatbot_operator::crd::{
    ChatbotMonitoring, LatencySlo, ModelBackend, OpenAiSpec, PricesSource, SecretKeyRef, Severity, SloSpec, SpendAlert,
};
use chatbot_operator::render::{DASHBOARDS, PanelSet, RenderOptions, local_prometheus, render, with_panels};
use chatbot_operator::verify::checks::{self, Subject};
use serde_json::{Value, json};
use testsupport::fake_openai::{Behaviour, Fake};
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

/// The daily budget of the `openai` case: far above what the test spends, far under what its pace would spend in
/// a day, so that ModelSpendForecast goes pending and ModelSpendOverBudget does not.
const DAILY_BUDGET: f64 = 1.0;
/// Per million tokens: a chat of 120 input tokens (100 cached) and 30 output costs 330 µEUR.
const PRICES: &str =
    "models:\n  shop-assistant-1:\n    currency: EUR\n    input: 2\n    cachedInput: 0.5\n    output: 8\n";

fn resource(backend: ModelBackend) -> ChatbotMonitoring {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/minimal.yaml");
    let mut cbm: ChatbotMonitoring = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    if backend == ModelBackend::Openai {
        let model = &mut cbm.spec.chatbot.model;
        model.backend = ModelBackend::Openai;
        let secret = |name: &str| SecretKeyRef {
            name: name.into(),
            key: "k".into(),
        };
        model.openai = Some(OpenAiSpec {
            endpoint: "http://127.0.0.1:9/v1".into(),
            model: "shop-assistant-1".into(),
            api_key_secret_ref: secret("openai"),
            timeout: None,
            provider_name: None,
            prices: Some(PricesSource {
                config_map_key_ref: None,
                secret_key_ref: Some(secret("prices")),
            }),
        });
        cbm.spec.alerts.spend = Some(SpendAlert {
            daily_budget: DAILY_BUDGET,
            currency: "EUR".into(),
            forecast: "6h".into(),
            severity: Severity::Warning,
        });
    }
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
    chat_answer(client, base, body).await.0
}

/// The status and the answer (`Null` when there is none).
async fn chat_answer(client: &reqwest::Client, base: &str, body: Value) -> (u16, Value) {
    match client.post(format!("{base}/chat")).json(&body).send().await {
        Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or(Value::Null)),
        Err(_) => (0, Value::Null),
    }
}

/// Conversations rated up and down, that go idle and get their outcomes.
async fn ratings(client: &reqwest::Client, base: &str) {
    for (i, rating) in ["up", "down", "up"].iter().enumerate() {
        let (status, answer) = chat_answer(client, base, json!({"message": format!("Où est ma commande {i} ?")})).await;
        assert_eq!(status, 200, "{answer}");
        let session = answer["session_id"].as_str().unwrap();
        let r = client
            .post(format!("{base}/conversations/{session}/feedback"))
            .json(&json!({"exchange_id": answer["exchange_id"], "rating": rating}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
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
    dashboards_rules_and_guide_queries(ModelBackend::Builtin).await;
}

/// With a remote model (the fake OpenAI server, reporting usage, and a price table): the model's panels find
/// data, and the spend forecast goes pending while the spend is still under the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_models_panels_and_the_spend_forecast_work_on_a_real_prometheus() {
    dashboards_rules_and_guide_queries(ModelBackend::Openai).await;
}

async fn dashboards_rules_and_guide_queries(backend: ModelBackend) {
    let pg = TestPostgres::start().expect("start PostgreSQL");
    let (fake, fake_base) = Fake::start(Behaviour::Answer(json!({
        "intent": "order_tracking", "confidence": 0.9, "language": "fr", "reply": "Votre commande arrive demain."
    })))
    .await;
    fake.set_usage(Some(json!({
        "prompt_tokens": 120, "completion_tokens": 30, "prompt_tokens_details": {"cached_tokens": 100}
    })));
    let prices = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(prices.path(), PRICES).unwrap();
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
    if backend == ModelBackend::Openai {
        config.model_backend = chatbot::config::ModelBackend::Openai;
        config.openai_base_url = fake_base;
        config.openai_model = "shop-assistant-1".into();
        config.openai_api_key = Some("sk-test".into());
        config.prices_file = Some(prices.path().to_owned());
    }
    // Conversations are decided within the test.
    config.conversation_idle = Duration::from_secs(2);
    config.outcome_interval = Duration::from_millis(200);
    config.http_metrics = true;
    // The traffic comes from one address and session faster than a person types.
    config.chat_rate_per_session = 0;
    config.chat_rate_per_client = 0;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(chatbot::app::serve(config, listeners, async {
        let _ = stopped.await;
    }));

    // What the operator renders, as a plain Prometheus would load it, scraping every second.
    let desired = render(&resource(backend), &RenderOptions::default()).unwrap();
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
        .flat_map(|(_, text)| checks::panel_queries(&with_panels(text, desired.dashboard_panels)))
        .filter(|(title, _)| title.contains("budget remaining"))
        .collect();
    assert_eq!(budgets.len(), 2, "{budgets:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (title, expr) in &budgets {
        let result = prom.query(&checks::substitute(expr, &subject)).unwrap();
        assert!(result.is_empty(), "{title} without traffic: {result:?}");
    }
    traffic(&client, &base).await;
    ratings(&client, &base).await;
    // A few more scrapes so that rate() has samples on both sides of the traffic.
    for _ in 0..4 {
        traffic(&client, &base).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    // The conversations go idle and are decided (the database must be up for that).
    wait_for("conversations decided", Duration::from_secs(20), || {
        let r = prom.query("sum(chat_conversations_total{namespace=\"default\", job=\"chatbot\"}) > 0")?;
        if r.is_empty() {
            Err("none decided yet".into())
        } else {
            Ok(())
        }
    })
    .await;
    assert_eq!(
        desired.dashboard_panels,
        match backend {
            ModelBackend::Builtin => PanelSet::Builtin,
            ModelBackend::Openai => PanelSet::RemoteModelPriced,
        }
    );
    if backend == ModelBackend::Openai {
        // A day's spend so far, recorded per currency, far under the budget; at this pace it would pass it within
        // the forecast: ModelSpendForecast pending, ModelSpendOverBudget not.
        wait_for("ModelSpendForecast pending", Duration::from_secs(30), || {
            let spent = prom
                .query("chatbot:ai_model_spend:increase1d{namespace=\"default\", job=\"chatbot\", currency=\"EUR\"}")?;
            let value: f64 = spent
                .first()
                .and_then(|s| s["value"][1].as_str())
                .and_then(|v| v.parse().ok())
                .ok_or("no spend recorded yet")?;
            assert!(value > 0.0 && value < DAILY_BUDGET, "{value}");
            let forecast =
                prom.query("ALERTS{alertname=\"ModelSpendForecast\", alertstate=\"pending\", currency=\"EUR\"}")?;
            if forecast.is_empty() {
                Err(format!("not pending; {value} EUR spent"))
            } else {
                Ok(())
            }
        })
        .await;
        let over = prom.query("ALERTS{alertname=\"ModelSpendOverBudget\"}").unwrap();
        assert!(over.is_empty(), "{over:?}");
        assert!(fake.calls() > 0);
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
        .flat_map(|(_, text)| checks::panel_queries(&with_panels(text, desired.dashboard_panels)));
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
