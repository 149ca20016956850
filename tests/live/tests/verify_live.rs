//! `chatbot-operator verify`'s checks against a real Prometheus and chatbot: all pass on a healthy chatbot; a
//! dashboard selector on a metric that does not exist is named by panel and selector; a rule file withheld from
//! Prometheus fails RulesLoaded; a stopped chatbot fails Scraped with the scrape error within two scrape intervals.

use std::time::{Duration, Instant};

use chatbot::config::Config;
use chatbot_operator::crd::ChatbotMonitoring;
use chatbot_operator::render::{RenderOptions, local_prometheus, render};
use chatbot_operator::verify::checks::{self, Subject};
use chatbot_operator::verify::prometheus_api::PrometheusApi;
use chatbot_operator::verify::run::verify;
use serde_json::json;
use testsupport::TestPrometheus;

fn resource() -> ChatbotMonitoring {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/minimal.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_on_a_healthy_chatbot_and_names_each_failure() {
    let db = tempfile::tempdir().unwrap();
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.internal_listen = "127.0.0.1:0".parse().unwrap();
    let listeners = chatbot::app::Listeners::bind(&config).await.unwrap();
    let api_address = listeners.api.local_addr().unwrap().to_string();
    // Prometheus scrapes the internal listener, as the ServiceMonitor's `metrics` port does.
    let address = listeners.internal.local_addr().unwrap().to_string();
    config.database_url = format!("sqlite://{}", db.path().join("c.db").display());
    config.model_backend = chatbot::config::ModelBackend::Builtin;
    config.http_metrics = true;
    // The traffic comes from one address and session faster than a person types.
    config.chat_rate_per_session = 0;
    config.chat_rate_per_client = 0;
    config.sample_interval = Duration::from_secs(1);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(chatbot::app::serve(config, listeners, async {
        let _ = stopped.await;
    }));

    let desired = render(&resource(), &RenderOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    local_prometheus::write(dir.path(), &desired, std::slice::from_ref(&address), Some("1s"), None).unwrap();
    let prom = TestPrometheus::start(dir.path()).expect("start Prometheus");
    let api = PrometheusApi::new(&prom.url, Duration::from_secs(5));
    let client = reqwest::Client::new();
    for m in ["Where is my order?", "Je veux parler à un conseiller", "xyzzy"] {
        client
            .post(format!("http://{api_address}/chat"))
            .json(&json!({"message": m}))
            .send()
            .await
            .unwrap();
    }

    // Healthy: every check passes once the first scrapes and rule evaluations are in.
    let deadline = Instant::now() + Duration::from_secs(20);
    let report = loop {
        let report = verify(&desired, &api).await;
        if report.ok() || Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(report.ok(), "{report:#?}");
    assert_eq!(report.checks.len(), 3);
    assert_eq!(report.checks[0].message, "1/1 up");

    // A panel reading a metric the chatbot never exposes is reported by panel name and selector.
    let subject = Subject {
        namespace: "default".into(),
        job: "chatbot".into(),
    };
    let dashboard = json!({"panels": [{"title": "Orders shipped", "targets": [{"expr":
        "sum(rate(orders_shipped_total{namespace=\"$namespace\", job=\"$job\"}[$__rate_interval]))"}]},
        {"title": "Requests", "targets": [{"expr":
        "sum(rate(http_requests_total{namespace=\"$namespace\", job=\"$job\", status=~\"5..\"}[$__rate_interval]))"}]}]});
    let selectors = checks::panel_selectors(&dashboard, &subject).unwrap();
    let matcher = "{__name__=~\"orders_shipped_total|http_requests_total\", namespace=\"default\", job=\"chatbot\"}";
    let series = api.get("series", &[("match[]", matcher.into())]).await.unwrap();
    let check = checks::dashboard_metrics(&selectors, &checks::exposed(&series));
    assert!(!check.ok);
    assert!(
        check.message.contains("panel \"Orders shipped\"") && check.message.contains("orders_shipped_total{"),
        "{}",
        check.message
    );
    assert!(
        !check.message.contains("Requests"),
        "no 5xx today is fine: {}",
        check.message
    );

    // The rule file withheld from Prometheus: RulesLoaded fails and names the missing groups.
    std::fs::write(dir.path().join(local_prometheus::RULES_FILE), "groups: []\n").unwrap();
    prom.reload().unwrap();
    let report = verify(&desired, &api).await;
    let rules = report.checks.iter().find(|c| c.name == "RulesLoaded").unwrap();
    assert!(!rules.ok && rules.reason == "RulesNotLoaded", "{rules:?}");
    assert!(
        rules.message.contains("0/5") && rules.message.contains("chatbot-sav.http"),
        "{}",
        rules.message
    );

    // The chatbot stops: within two scrape intervals (1 s each, plus Prometheus' own latency) Scraped fails with
    // the scrape error.
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    let stopped_at = Instant::now();
    let scraped = loop {
        let report = verify(&desired, &api).await;
        let scraped = report.checks.iter().find(|c| c.name == "Scraped").unwrap().clone();
        if !scraped.ok || stopped_at.elapsed() > Duration::from_secs(10) {
            break scraped;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let took = stopped_at.elapsed();
    assert!(!scraped.ok && scraped.reason == "TargetDown", "{scraped:?}");
    assert!(
        scraped.message.starts_with("0/1 up") && scraped.message.contains("connection refused"),
        "{}",
        scraped.message
    );
    assert!(took <= Duration::from_secs(3), "Scraped turned False after {took:?}");
    println!("Scraped turned False {took:?} after the chatbot stopped");
}
