//! The Grafana dashboard ConfigMaps, one dashboard per ConfigMap as the Grafana sidecar expects. The JSON comes from
//! `dashboards/` at the repository root; each resource gets its own copy whose variables default to its chatbot.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Value, json};

use super::Context;
use super::prometheus_rule::{error_budget, le_matcher};
use crate::crd::{ChatbotMonitoringSpec, LatencySlo};

/// The dashboards shipped in the operator: (short id, Grafana JSON).
pub const DASHBOARDS: &[(&str, &str)] = &[("overview", include_str!("../../../dashboards/chatbot-overview.json"))];

/// Each dashboard serialized once, with placeholders where a resource's own values go: rendering a resource is
/// then a few string replacements instead of cloning and re-serializing a 60 KB JSON tree on every reconcile.
static TEMPLATES: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
    DASHBOARDS
        .iter()
        .map(|(id, text)| {
            let mut d: Value = serde_json::from_str(text).expect("shipped dashboards are valid JSON");
            d["uid"] = json!(UID);
            let title = d["title"].as_str().unwrap_or("Chatbot SAV").to_owned();
            d["title"] = json!(format!("{title} ({NAMESPACE}/{NAME})"));
            if let Some(vars) = d["templating"]["list"].as_array_mut() {
                for v in vars {
                    let current = match v["name"].as_str() {
                        Some("namespace") => NAMESPACE,
                        Some("job") => NAME,
                        _ => continue,
                    };
                    v["current"] = json!({"selected": true, "text": current, "value": current});
                }
            }
            let mut text = serde_json::to_string_pretty(&d).expect("JSON serializes");
            // The shipped JSON shows the default objectives (99.9 % availability, 99 % of chats within 2 s); each
            // resource gets its own.
            for (shipped, placeholder) in [
                ("\"value\": 0.999", format!("\"value\": {SLO_RATIO}")),
                ("(1 - 0.999)", format!("(1 - {SLO_RATIO})")),
                ("99.9 %", format!("{SLO_PERCENT} %")),
                ("/ 0.001 (", format!("/ {SLO_BUDGET} (")),
                (
                    "99 % within 2 s",
                    format!("{LATENCY_PERCENT} % within {LATENCY_THRESHOLD} s"),
                ),
                ("/ 0.01)", format!("/ {LATENCY_BUDGET})")),
                (r#"le=~\"2|2.0\""#, LATENCY_LE.to_owned()),
            ] {
                assert!(text.contains(shipped), "dashboard {id} no longer shows {shipped:?}");
                text = text.replace(shipped, &placeholder);
            }
            (*id, text)
        })
        .collect()
});

const UID: &str = "@@cbm-uid@@";
const NAMESPACE: &str = "@@cbm-namespace@@";
const NAME: &str = "@@cbm-name@@";
const SLO_RATIO: &str = "@@cbm-slo-ratio@@";
const SLO_PERCENT: &str = "@@cbm-slo-percent@@";
const SLO_BUDGET: &str = "@@cbm-slo-budget@@";
const LATENCY_PERCENT: &str = "@@cbm-latency-percent@@";
const LATENCY_THRESHOLD: &str = "@@cbm-latency-threshold@@";
const LATENCY_BUDGET: &str = "@@cbm-latency-budget@@";
const LATENCY_LE: &str = "@@cbm-latency-le@@";
/// The objectives the dashboards show when the resource sets none.
const DEFAULT_AVAILABILITY_TARGET: f64 = 99.9;
const DEFAULT_LATENCY: LatencySlo = LatencySlo {
    target: 99.0,
    threshold: 2.0,
};

pub(super) fn render(ctx: &Context, spec: &ChatbotMonitoringSpec) -> Vec<ConfigMap> {
    let d = &spec.dashboards;
    let slo = spec.alerts.slo.as_ref();
    let target = slo
        .and_then(|s| s.availability_target)
        .unwrap_or(DEFAULT_AVAILABILITY_TARGET);
    let budget = error_budget(target);
    let latency = slo.and_then(|s| s.latency.as_ref()).unwrap_or(&DEFAULT_LATENCY);
    // The matcher goes inside a JSON string: escaped as one, less the quotes.
    let le = serde_json::to_string(&le_matcher(latency.threshold)).expect("a string serializes");
    let le = &le[1..le.len() - 1];
    TEMPLATES
        .iter()
        .map(|(id, template)| {
            // Kubernetes names and namespaces are DNS labels: nothing in them needs JSON escaping.
            let json = template
                .replace(UID, &dashboard_uid(&ctx.namespace, &ctx.name, id))
                .replace(NAMESPACE, &ctx.namespace)
                .replace(NAME, &ctx.name)
                .replace(SLO_RATIO, &(1.0 - budget).to_string())
                .replace(SLO_PERCENT, &target.to_string())
                .replace(SLO_BUDGET, &budget.to_string())
                .replace(LATENCY_PERCENT, &latency.target.to_string())
                .replace(LATENCY_THRESHOLD, &latency.threshold.to_string())
                .replace(LATENCY_BUDGET, &error_budget(latency.target).to_string())
                .replace(LATENCY_LE, le);
            let mut meta = ctx.meta(&format!("{}-dashboard-{id}", ctx.name), &d.labels);
            meta.annotations = Some(BTreeMap::from([(d.folder_annotation.clone(), d.folder.clone())]));
            ConfigMap {
                metadata: meta,
                // The sidecar writes every key of every selected ConfigMap into one directory: the key must be
                // unique across resources, or two chatbots' dashboards overwrite each other.
                data: Some(BTreeMap::from([(
                    format!("{}-{}-{id}.json", ctx.namespace, ctx.name),
                    json,
                )])),
                ..ConfigMap::default()
            }
        })
        .collect()
}

/// A stable uid per resource and dashboard: Grafana refuses two dashboards with one uid, and uids are at most
/// 40 characters.
pub fn dashboard_uid(namespace: &str, name: &str, id: &str) -> String {
    format!("cbm-{id}-{:016x}", fnv1a(&format!("{namespace}/{name}")))
}

/// FNV-1a, 64 bits: stable across builds and platforms, unlike the standard library's hasher.
fn fnv1a(s: &str) -> u64 {
    s.bytes()
        .fold(0xcbf29ce484222325, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}
