//! Reconcile cost against the scripted API server, and memory with many resources cached (prints figures, asserts
//! nothing). The fake API server runs in this process, so the CPU figures include its side of each request: they
//! are an upper bound of the operator's own cost.
//!
//!   cargo bench -p chatbot-operator --bench reconcile

#[path = "../tests/fake_api/mod.rs"]
mod fake_api;
mod support;

use std::sync::Arc;
use std::time::Instant;

use chatbot_operator::cache::{Cached, Caches};
use chatbot_operator::crd::ChatbotMonitoring;
use chatbot_operator::metrics::Metrics;
use chatbot_operator::reconcile::{Context, reconcile};
use chatbot_operator::render::{Desired, RenderOptions, render};
use chatbot_operator::settled::Settled;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher;
use serde_json::json;

const CBM_PATH: &str = "/apis/monitoring.chatbot-sav.io/v1alpha1/namespaces/default/chatbotmonitorings/";

fn resource(name: &str) -> ChatbotMonitoring {
    serde_json::from_value(json!({
        "apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "generation": 1,
                     "resourceVersion": "1"},
        "spec": {"monitoring": {"labels": {"release": "kube-prometheus-stack"}}, "alerts": {"slo": {"availabilityTarget": 99.9}}},
    }))
    .unwrap()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (client, fake) = fake_api::FakeApi::start();
    let recorder = Recorder::new(client.clone(), Reporter::from("chatbot-operator".to_owned()));
    let ctx = Arc::new(Context::new(
        client,
        recorder,
        RenderOptions::default(),
        Arc::new(Metrics::new()),
    ));
    let n = 200;

    // First reconcile of fresh resources: every child applied once.
    let resources: Vec<ChatbotMonitoring> = (0..n).map(|i| resource(&format!("bot-{i}"))).collect();
    for r in &resources {
        fake.put(
            &format!("{CBM_PATH}{}", r.metadata.name.as_ref().unwrap()),
            serde_json::to_value(r).unwrap(),
        );
    }
    fake.take_calls();
    let (c0, t0) = (support::cpu(), Instant::now());
    for r in &resources {
        reconcile(Arc::new(r.clone()), ctx.clone()).await.unwrap();
    }
    let (first_cpu, first_wall) = (support::cpu() - c0, t0.elapsed());
    let first_calls = fake.take_calls();
    let first_writes = first_calls
        .iter()
        .filter(|c| c.starts_with("PATCH") && !c.ends_with("/status"))
        .count();

    // Unchanged resources (their status as stored): only reads.
    let stored: Vec<ChatbotMonitoring> = resources
        .iter()
        .map(|r| {
            serde_json::from_value(
                fake.get(&format!("{CBM_PATH}{}", r.metadata.name.as_ref().unwrap()))
                    .unwrap(),
            )
            .unwrap()
        })
        .collect();
    let (c0, t0) = (support::cpu(), Instant::now());
    for r in &stored {
        reconcile(Arc::new(r.clone()), ctx.clone()).await.unwrap();
    }
    let (noop_cpu, noop_wall) = (support::cpu() - c0, t0.elapsed());
    let noop_calls = fake.take_calls();
    let noop_writes = noop_calls.iter().filter(|c| !c.starts_with("GET")).count();

    // The controller's way: resources settled by a full pass, reconciled again with no watch event in between.
    let (client, settled_fake) = fake_api::FakeApi::start();
    let recorder = Recorder::new(client.clone(), Reporter::from("chatbot-operator".to_owned()));
    let settled_ctx = Arc::new(
        Context::new(client, recorder, RenderOptions::default(), Arc::new(Metrics::new()))
            .with_settled(Settled::default()),
    );
    for r in &stored {
        settled_fake.put(
            &format!("{CBM_PATH}{}", r.metadata.name.as_ref().unwrap()),
            serde_json::to_value(r).unwrap(),
        );
        reconcile(Arc::new(r.clone()), settled_ctx.clone()).await.unwrap();
    }
    let settled_stored: Vec<ChatbotMonitoring> = stored
        .iter()
        .map(|r| {
            serde_json::from_value(
                settled_fake
                    .get(&format!("{CBM_PATH}{}", r.metadata.name.as_ref().unwrap()))
                    .unwrap(),
            )
            .unwrap()
        })
        .collect();
    settled_fake.take_calls();
    let (c0, t0) = (support::cpu(), Instant::now());
    for r in &settled_stored {
        reconcile(Arc::new(r.clone()), settled_ctx.clone()).await.unwrap();
    }
    let (settled_cpu, settled_wall) = (support::cpu() - c0, t0.elapsed());
    let settled_calls = settled_fake.take_calls().len();

    // The pure part alone: render of one resource.
    let iterations = 2000;
    let (c0, t0) = (support::cpu(), Instant::now());
    for _ in 0..iterations {
        std::hint::black_box(render(&stored[0], &RenderOptions::default()).unwrap());
    }
    let render_cpu = (support::cpu() - c0) / iterations;
    let _ = t0;

    // Memory: 1,000 and 10,000 resources with their status in a reflector store, as the controller caches them.
    let before = support::rss_kib();
    let mut writer: Writer<ChatbotMonitoring> = Writer::default();
    let mut figures = Vec::new();
    let mut count = 0;
    for target in [1_000, 10_000] {
        while count < target {
            let mut r = stored[count % stored.len()].clone();
            r.metadata.name = Some(format!("cached-{count}"));
            r.metadata.uid = Some(format!("uid-cached-{count}"));
            writer.apply_watcher_event(&watcher::Event::Apply(r));
            count += 1;
        }
        figures.push((target, support::rss_kib().saturating_sub(before)));
    }
    let store = writer.as_reader();

    // Their children, as the controller's watches cache them (slim, see `cache`): 10,000 resources' worth of each kind.
    let rendered: Vec<Desired> = (0..10_000)
        .map(|i| render(&resource(&format!("cached-{i}")), &RenderOptions::default()).unwrap())
        .collect();
    let mut children = ChildStores::default();
    let mut children_figures = Vec::new();
    for kind in ["Deployment", "Service", "ServiceMonitor", "PrometheusRule", "ConfigMap"] {
        let before = support::rss_kib();
        for desired in &rendered {
            children.add(kind, desired.clone());
        }
        children_figures.push((kind, support::rss_kib().saturating_sub(before)));
    }
    drop(rendered);

    // What the settled cache adds for 10,000 resources (one snapshot each, as a full pass leaves it).
    let before_settled = support::rss_kib();
    let settled = Settled::default();
    let sample = settled_ctx.settled.as_ref().unwrap();
    let key = ("default".to_owned(), stored[0].metadata.name.clone().unwrap());
    let uid = stored[0].metadata.uid.clone().unwrap();
    let snapshot = sample
        .lookup(&key, &uid, stored[0].metadata.generation)
        .expect("settled");
    for i in 0..10_000 {
        let key = ("default".to_owned(), format!("cached-{i}"));
        // A deep copy: each resource has its own snapshot.
        settled.settle(settled.ticket(&key), Arc::new((*snapshot).clone()));
    }
    let settled_kib = support::rss_kib().saturating_sub(before_settled);

    println!("operator reconcile benchmark ({n} resources, scripted API server in-process)");
    println!(
        "  first reconcile: {:.3} ms CPU, {:.3} ms wall per resource; {} child applies ({:.1} per resource)",
        first_cpu.as_secs_f64() * 1e3 / n as f64,
        first_wall.as_secs_f64() * 1e3 / n as f64,
        first_writes,
        first_writes as f64 / n as f64
    );
    println!(
        "  unchanged resource: {:.3} ms CPU, {:.3} ms wall per resource; {} writes, {} reads",
        noop_cpu.as_secs_f64() * 1e3 / n as f64,
        noop_wall.as_secs_f64() * 1e3 / n as f64,
        noop_writes,
        noop_calls.len()
    );
    println!(
        "  unchanged and settled (the controller's way): {:.3} ms CPU, {:.3} ms wall per resource; {} requests",
        settled_cpu.as_secs_f64() * 1e3 / n as f64,
        settled_wall.as_secs_f64() * 1e3 / n as f64,
        settled_calls
    );
    println!(
        "  render alone: {:.1} µs CPU per resource",
        render_cpu.as_secs_f64() * 1e6
    );
    for (target, kib) in figures {
        println!("  {target} resources cached: +{:.1} MiB RSS", kib as f64 / 1024.0);
    }
    for (kind, kib) in children_figures {
        println!(
            "  10000 children of kind {kind} cached (slim): +{:.1} MiB RSS ({:.1} KiB each)",
            kib as f64 / 1024.0,
            kib as f64 / 10_000.0
        );
    }
    println!(
        "  10000 resources settled: +{:.1} MiB RSS ({} snapshots)",
        settled_kib as f64 / 1024.0,
        settled.len()
    );
    println!(
        "  process RSS now: {:.1} MiB ({} objects in the store)",
        support::rss_kib() as f64 / 1024.0,
        store.len()
    );
    std::hint::black_box(children);
}

/// The controller's caches of children.
#[derive(Default)]
struct ChildStores(Caches);

impl ChildStores {
    fn add(&mut self, kind: &str, desired: Desired) {
        fn put<K: Cached>(caches: &Caches, mut object: K) {
            object.slim();
            let slot = K::slot(caches);
            let cache = slot.ready().unwrap_or_else(|| {
                let cache = slot.renew();
                cache.apply(&watcher::Event::Init);
                cache.apply(&watcher::Event::InitDone);
                cache
            });
            cache.apply(&watcher::Event::Apply(object));
        }
        let caches = &self.0;
        match kind {
            "Deployment" => put(caches, desired.deployment),
            "Service" => put(caches, desired.service),
            "ServiceMonitor" => put(caches, desired.service_monitor.unwrap()),
            "PrometheusRule" => put(caches, desired.prometheus_rule.unwrap()),
            _ => {
                for cm in desired.dashboards {
                    put(caches, cm);
                }
            }
        }
    }
}
