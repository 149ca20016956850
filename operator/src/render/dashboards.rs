//! The Grafana dashboard ConfigMaps, one dashboard per ConfigMap as the Grafana sidecar expects. The JSON comes from
//! `dashboards/` at the repository root; each resource gets its own copy whose variables default to its chatbot.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Value, json};

use super::Context;
use super::prometheus_rule::{error_budget, le_matcher};
use crate::crd::{ChatbotMonitoringSpec, LatencySlo, ModelBackend};

/// The dashboards shipped in the operator: (short id, Grafana JSON).
pub const DASHBOARDS: &[(&str, &str)] = &[("overview", include_str!("../../../dashboards/chatbot-overview.json"))];

/// The row whose panels read what only a remote model produces (tokens, spend, model latency): a resource on the
/// builtin model gets its dashboards without it, rather than panels that can never show data.
pub const REMOTE_MODEL_ROW: &str = "Model (tokens and spend)";

/// The metric only a priced remote model has: the estimated spend needs the price table.
const SPEND_METRIC: &str = "ai_model_estimated_cost_total";

/// Which panels a resource's dashboards hold: those whose metrics its chatbot can have. A panel that could never
/// show data is left out, rather than shown empty and reported missing by verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanelSet {
    /// The builtin model: no tokens, no spend, no model latency; the remote model's row is left out.
    Builtin,
    /// A remote model without a price table: its row, less the spend panels.
    RemoteModel,
    /// A remote model with a price table: every panel.
    RemoteModelPriced,
}

impl PanelSet {
    pub const ALL: [PanelSet; 3] = [PanelSet::Builtin, PanelSet::RemoteModel, PanelSet::RemoteModelPriced];

    pub fn of(spec: &ChatbotMonitoringSpec) -> PanelSet {
        let model = &spec.chatbot.model;
        match (&model.backend, &model.openai) {
            (ModelBackend::Openai, Some(o)) if o.prices.is_some() => PanelSet::RemoteModelPriced,
            (ModelBackend::Openai, _) => PanelSet::RemoteModel,
            (ModelBackend::Builtin, _) => PanelSet::Builtin,
        }
    }

    /// Its place in [`PanelSet::ALL`], where tables built per panel set keep it.
    pub fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|p| *p == self)
            .expect("every panel set is in ALL")
    }
}

/// A shipped dashboard with the panels of `set` only.
pub fn with_panels(text: &str, set: PanelSet) -> Value {
    let mut d: Value = serde_json::from_str(text).expect("shipped dashboards are valid JSON");
    if let Some(panels) = d["panels"].as_array_mut() {
        let mut in_remote_row = false;
        panels.retain(|p| {
            if p["type"] == "row" {
                in_remote_row = p["title"] == REMOTE_MODEL_ROW;
            }
            let reads_spend = p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| t["expr"].as_str().is_some_and(|e| e.contains(SPEND_METRIC)));
            match set {
                PanelSet::Builtin => !in_remote_row,
                PanelSet::RemoteModel => !reads_spend,
                PanelSet::RemoteModelPriced => true,
            }
        });
    }
    d
}

/// Each dashboard serialized once per panel set (in the order of [`PanelSet::ALL`]), with placeholders where a
/// resource's own values go: rendering a resource is then a few string replacements instead of cloning and
/// re-serializing a 60 KB JSON tree on every reconcile.
static TEMPLATES: LazyLock<Vec<(&'static str, [String; 3])>> = LazyLock::new(|| {
    DASHBOARDS
        .iter()
        .map(|(id, text)| (*id, PanelSet::ALL.map(|set| template(id, text, set))))
        .collect()
});

fn template(id: &str, text: &str, set: PanelSet) -> String {
    let mut d = with_panels(text, set);
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
    text
}

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
    let variant = PanelSet::of(spec).index();
    TEMPLATES
        .iter()
        .map(|(id, templates)| {
            let template = &templates[variant];
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::checks::template_selectors;

    /// Metrics the chatbot has only with a remote model (issue 25): the builtin model reports no tokens or spend.
    const REMOTE_ONLY: &[&str] = &[
        "gen_ai_client_token_usage",
        "gen_ai_client_operation_duration_seconds",
        "ai_model_estimated_cost_total",
        "ai_model_unpriced_tokens_total",
        "ai_model_usage_missing_total",
    ];

    fn metrics(d: &Value) -> Vec<String> {
        template_selectors(d).unwrap().into_iter().map(|s| s.metric).collect()
    }

    #[test]
    fn a_builtin_resource_gets_no_panel_that_reads_what_it_cannot_have() {
        let (_, text) = DASHBOARDS[0];
        let remote = |m: &String| REMOTE_ONLY.iter().any(|r| m.starts_with(r));
        let openai = with_panels(text, PanelSet::RemoteModelPriced);
        let builtin = with_panels(text, PanelSet::Builtin);
        assert!(
            metrics(&openai).iter().any(remote),
            "the openai dashboard shows tokens and spend"
        );
        let left: Vec<String> = metrics(&builtin).into_iter().filter(remote).collect();
        assert!(left.is_empty(), "{left:?}");
        let titles = |d: &Value| -> Vec<String> {
            d["panels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["title"].as_str().unwrap().to_owned())
                .collect()
        };
        let (all, kept) = (titles(&openai), titles(&builtin));
        assert!(!kept.contains(&REMOTE_MODEL_ROW.to_owned()));
        // Only the model row's own panels go: the customers' row after it stays whole.
        assert_eq!(all.len() - kept.len(), 7, "{all:?}");
        assert!(kept.contains(&"Customers (ratings and outcomes)".to_owned()));
        // Without a price table, the spend panels go and the rest of the model's row stays.
        let unpriced = with_panels(text, PanelSet::RemoteModel);
        assert!(!metrics(&unpriced).contains(&SPEND_METRIC.to_owned()));
        assert_eq!(all.len() - titles(&unpriced).len(), 2, "{:?}", titles(&unpriced));
        assert!(titles(&unpriced).contains(&REMOTE_MODEL_ROW.to_owned()));
    }
}
