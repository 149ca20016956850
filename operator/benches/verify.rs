//! Cost of verification against a Prometheus HTTP API (a canned one in this process, answering for 100 chatbots):
//! HTTP requests and time of one round for one resource, then of 100 resources sharing one Prometheus through the
//! reconciler's `Verifier`, which asks for targets and rules once per period and one batched series request per
//! resource. Prints figures, asserts only that the checks passed (a benchmark of failing checks measures nothing).
//!
//!   cargo bench -p chatbot-operator --bench verify

#[path = "../tests/fake_prometheus/mod.rs"]
mod fake_prometheus;
mod support;

use std::time::{Duration, Instant};

use chatbot_operator::crd::ChatbotMonitoring;
use chatbot_operator::render::{DASHBOARDS, Desired, RenderOptions, render};
use chatbot_operator::verify::checks::{Subject, panel_selectors};
use chatbot_operator::verify::periodic::Verifier;
use chatbot_operator::verify::prometheus_api::PrometheusApi;
use chatbot_operator::verify::run::verify;
use futures::StreamExt;
use serde_json::{Value, json};

const RESOURCES: usize = 100;
const ROUNDS: u32 = 50;

fn desired(name: &str) -> Desired {
    let cbm: ChatbotMonitoring = serde_json::from_value(json!({
        "apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": {"alerts": {"slo": {"availabilityTarget": 99.9}}},
    }))
    .unwrap();
    render(&cbm, &RenderOptions::default()).unwrap()
}

fn groups(d: &Desired) -> Vec<String> {
    let rule = d.prometheus_rule.as_ref().unwrap();
    rule.spec.groups.iter().map(|g| g.name.clone()).collect()
}

/// Requests made by `answers` since `before` (targets, rules, series).
fn delta(answers: &fake_prometheus::Answers, before: (usize, usize, usize)) -> (usize, usize, usize) {
    (
        answers.requests("targets") - before.0,
        answers.requests("rules") - before.1,
        answers.requests("series") - before.2,
    )
}

fn counts(answers: &fake_prometheus::Answers) -> (usize, usize, usize) {
    delta(answers, (0, 0, 0))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let all: Vec<Desired> = (0..RESOURCES).map(|i| desired(&format!("bot-{i}"))).collect();
    let monitored: Vec<fake_prometheus::Monitored> = all
        .iter()
        .map(|d| fake_prometheus::Monitored {
            namespace: "default".into(),
            job: d.service.metadata.name.clone().unwrap(),
            groups: groups(d),
        })
        .collect();
    let answers = fake_prometheus::healthy(&monitored, true);
    let url = fake_prometheus::start(answers.clone()).await;
    let body_size = |v: &Value| {
        serde_json::to_vec(&json!({"status": "success", "data": v}))
            .unwrap()
            .len()
    };
    let targets_kib = body_size(&answers.targets.lock().unwrap()) as f64 / 1024.0;
    let rules_kib = body_size(&answers.rules.lock().unwrap()) as f64 / 1024.0;

    // One resource, one full round (targets, rules, series), as `chatbot-operator verify` does it.
    let api = PrometheusApi::new(&url, Duration::from_secs(5));
    let report = verify(&all[0], &api).await;
    assert!(report.ok(), "{report:?}");
    let before = counts(&answers);
    let (c0, t0) = (support::cpu(), Instant::now());
    for _ in 0..ROUNDS {
        std::hint::black_box(verify(&all[0], &api).await);
    }
    let (round_cpu, round_wall) = ((support::cpu() - c0) / ROUNDS, t0.elapsed() / ROUNDS);
    let (t, r, s) = delta(&answers, before);
    let per_round = (t + r + s) as f64 / ROUNDS as f64;

    // 100 resources sharing one Prometheus, through the reconciler's Verifier, 8 at a time as the controller runs.
    let verifier = Verifier::new(Duration::from_secs(60), Duration::from_secs(5), None);
    let before = counts(&answers);
    let (c0, t0) = (support::cpu(), Instant::now());
    let reports: Vec<_> = futures::stream::iter(&all)
        .map(|d| verifier.check(d, &url, verifier.period()))
        .buffer_unordered(8)
        .collect()
        .await;
    let (shared_cpu, shared_wall) = (support::cpu() - c0, t0.elapsed());
    assert!(reports.iter().all(|r| r.ok()), "every chatbot is healthy");
    let (st, sr, ss) = delta(&answers, before);

    // What a naive design would cost: every resource fetching targets and rules, and one query per panel selector.
    let subject = Subject {
        namespace: "default".into(),
        job: "bot-0".into(),
    };
    let selectors: usize = DASHBOARDS
        .iter()
        .map(|(_, text)| {
            panel_selectors(&serde_json::from_str(text).unwrap(), &subject)
                .unwrap()
                .len()
        })
        .sum();

    println!("verification benchmark (canned Prometheus API in-process, answering for {RESOURCES} chatbots)");
    println!(
        "  answer sizes: /api/v1/targets {targets_kib:.1} KiB, /api/v1/rules {rules_kib:.1} KiB ({} rule groups)",
        monitored.iter().map(|m| m.groups.len()).sum::<usize>()
    );
    println!(
        "  one round, one resource: {per_round:.0} HTTP requests (targets, rules, series), {:.2} ms wall, {:.2} ms CPU",
        round_wall.as_secs_f64() * 1e3,
        round_cpu.as_secs_f64() * 1e3
    );
    println!(
        "  {RESOURCES} resources sharing one Prometheus: {} requests ({st} targets, {sr} rules, {ss} series), \
         {:.1} ms wall, {:.1} ms CPU ({:.2} ms CPU per resource)",
        st + sr + ss,
        shared_wall.as_secs_f64() * 1e3,
        shared_cpu.as_secs_f64() * 1e3,
        shared_cpu.as_secs_f64() * 1e3 / RESOURCES as f64
    );
    println!(
        "  without sharing and batching it would be {} requests: {RESOURCES} x (targets + rules + {selectors} panel selectors)",
        RESOURCES * (2 + selectors)
    );
    println!("  (CPU figures include the canned server's side of each request: an upper bound of the operator's)");
}
