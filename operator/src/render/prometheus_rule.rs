//! The PrometheusRule: the monitoring guide's alerts with the resource's thresholds, the chatbot-down alerts, and
//! multi-window multi-burn-rate alerts on the error budget when an SLO is set. Every expression is scoped to this
//! resource's chatbot (`namespace`, `job`), so two resources never alert on each other's traffic.

use std::collections::BTreeMap;

use super::Context;
use crate::crd::{AlertsSpec, ChatbotMonitoringSpec, Severity};
use crate::prometheus_operator::{PrometheusRule, PrometheusRuleSpec, Rule, RuleGroup};

/// Probes and scrapes are not customer traffic: a failing readiness probe alone must not page as an error rate.
const NOT_PROBES: &str = "endpoint!~\"/health|/ready|/metrics\"";

pub(super) fn render(ctx: &Context, spec: &ChatbotMonitoringSpec) -> PrometheusRule {
    let mut groups = vec![
        RuleGroup {
            name: "chatbot-sav.http".into(),
            rules: http_alerts(ctx, &spec.alerts),
        },
        RuleGroup {
            name: "chatbot-sav.availability".into(),
            rules: availability_alerts(ctx, &spec.alerts),
        },
        RuleGroup {
            name: "chatbot-sav.business".into(),
            rules: business_alerts(ctx, &spec.alerts),
        },
        RuleGroup {
            name: "chatbot-sav.database".into(),
            rules: database_alerts(ctx, &spec.alerts),
        },
    ];
    if let Some(slo) = &spec.alerts.slo {
        groups.push(RuleGroup {
            name: "chatbot-sav.slo".into(),
            rules: slo_rules(ctx, &spec.alerts, slo.availability_target),
        });
    }
    PrometheusRule {
        metadata: ctx.meta(&ctx.name, &spec.monitoring.labels),
        spec: PrometheusRuleSpec { groups },
        status: None,
    }
}

/// The share of requests an availability target (in percent) allows to fail, rounded so that 99.9 gives 0.001,
/// not 0.000999…9 from binary floating point.
pub fn error_budget(target_percent: f64) -> f64 {
    ((100.0 - target_percent) * 1e6).round() / 1e8
}

/// Names of the alerting rules a spec renders, in order (for the status and the printer column).
pub fn alert_names(rule: &PrometheusRule) -> Vec<&str> {
    rule.spec
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter_map(|r| r.alert.as_deref())
        .collect()
}

fn http_alerts(ctx: &Context, a: &AlertsSpec) -> Vec<Rule> {
    let sel = ctx.selector();
    vec![
        alert(
            ctx,
            a,
            "HighErrorRate",
            format!(
                "sum by (namespace, job) (rate(http_requests_total{{{sel}, {NOT_PROBES}, status=~\"5..\"}}[5m])) > {}",
                a.error_rate.threshold
            ),
            &a.error_rate.for_,
            a.error_rate.severity,
            "High rate of 5xx responses",
            format!(
                "Chatbot {{{{ $labels.namespace }}}}/{{{{ $labels.job }}}} answers {{{{ $value | humanize }}}} 5xx \
                 responses per second (threshold {}).",
                a.error_rate.threshold
            ),
        ),
        alert(
            ctx,
            a,
            "HighResponseTime",
            format!(
                "histogram_quantile(0.95, sum by (namespace, job, le) (rate(http_request_duration_seconds_bucket{{{sel}}}[5m]))) > {}",
                a.latency.threshold
            ),
            &a.latency.for_,
            a.latency.severity,
            "High HTTP response time (p95)",
            format!(
                "The 95th percentile of HTTP response time of chatbot {{{{ $labels.namespace }}}}/{{{{ $labels.job }}}} \
                 is {{{{ $value | humanizeDuration }}}} (threshold {}s).",
                a.latency.threshold
            ),
        ),
        alert(
            ctx,
            a,
            "HighMemoryUsage",
            // Against the limit where the pod has one; the absolute threshold only where it has none.
            format!(
                "max by (namespace, job, pod) (memory_usage_bytes{{{sel}}}) > on (namespace, job, pod) {} * max by \
                 (namespace, job, pod) (memory_limit_bytes{{{sel}}}) or (max by (namespace, job, pod) \
                 (memory_usage_bytes{{{sel}}}) > {} unless on (namespace, job, pod) memory_limit_bytes{{{sel}}})",
                a.memory.limit_percent / 100.0,
                a.memory.threshold
            ),
            &a.memory.for_,
            a.memory.severity,
            "High memory usage",
            format!(
                "Pod {{{{ $labels.pod }}}} of chatbot {{{{ $labels.namespace }}}}/{{{{ $labels.job }}}} uses \
                 {{{{ $value | humanize1024 }}}}B of resident memory: over {}% of its memory limit or, with no \
                 limit, over {}B.",
                a.memory.limit_percent, a.memory.threshold
            ),
        ),
    ]
}

fn availability_alerts(ctx: &Context, a: &AlertsSpec) -> Vec<Rule> {
    let sel = ctx.selector();
    vec![
        alert(
            ctx,
            a,
            "ChatbotDown",
            format!("up{{{sel}}} == 0"),
            "2m",
            Severity::Critical,
            "Chatbot target down",
            "Prometheus cannot scrape {{ $labels.instance }} of chatbot {{ $labels.namespace }}/{{ $labels.job }} \
             (up = {{ $value }})."
                .into(),
        ),
        alert(
            ctx,
            a,
            "ChatbotTargetMissing",
            format!("absent(up{{{sel}}})"),
            "5m",
            Severity::Critical,
            "Chatbot not scraped at all",
            format!(
                "Prometheus has no target for chatbot {}/{}: the ServiceMonitor is not selected, or no pod runs.",
                ctx.namespace, ctx.name
            ),
        ),
    ]
}

fn business_alerts(ctx: &Context, a: &AlertsSpec) -> Vec<Rule> {
    let sel = ctx.selector();
    vec![
        alert(
            ctx,
            a,
            "HighChatResponseTime",
            format!(
                "histogram_quantile(0.95, sum by (namespace, job, le) (rate(chat_response_time_seconds_bucket{{{sel}}}[5m]))) > {}",
                a.chat_latency.threshold
            ),
            &a.chat_latency.for_,
            a.chat_latency.severity,
            "Chat answers are slow (p95)",
            format!(
                "The 95th percentile of the time to answer a chat message on {{{{ $labels.namespace }}}}/{{{{ $labels.job }}}} \
                 is {{{{ $value | humanizeDuration }}}} (threshold {}s).",
                a.chat_latency.threshold
            ),
        ),
        alert(
            ctx,
            a,
            "AIModelErrorsHigh",
            format!(
                "sum by (namespace, job, model) (rate(ai_model_calls_total{{{sel}, status!=\"success\"}}[5m])) \
                 / sum by (namespace, job, model) (rate(ai_model_calls_total{{{sel}}}[5m])) > {}",
                a.model_errors.threshold
            ),
            &a.model_errors.for_,
            a.model_errors.severity,
            "AI model calls failing",
            format!(
                "{{{{ $value | humanizePercentage }}}} of the calls to model {{{{ $labels.model }}}} of chatbot \
                 {{{{ $labels.namespace }}}}/{{{{ $labels.job }}}} fail or time out (threshold {}).",
                a.model_errors.threshold
            ),
        ),
        alert(
            ctx,
            a,
            "AIModelFallbacks",
            format!("sum by (namespace, job, model) (rate(ai_model_fallbacks_total{{{sel}}}[5m])) > 0"),
            "15m",
            Severity::Warning,
            "Answers come from the builtin fallback",
            "Chatbot {{ $labels.namespace }}/{{ $labels.job }} falls back from {{ $labels.model }} to the builtin \
             model {{ $value | humanize }} times per second."
                .into(),
        ),
        alert(
            ctx,
            a,
            "HighEscalationRate",
            format!(
                "sum by (namespace, job) (rate(chat_escalations_total{{{sel}}}[15m])) \
                 / sum by (namespace, job) (rate(chat_requests_total{{{sel}, status=\"success\"}}[15m])) > {}",
                a.escalations.threshold
            ),
            &a.escalations.for_,
            a.escalations.severity,
            "Many chats handed to a human",
            format!(
                "{{{{ $value | humanizePercentage }}}} of the chats of {{{{ $labels.namespace }}}}/{{{{ $labels.job }}}} \
                 are escalated to a human (threshold {}).",
                a.escalations.threshold
            ),
        ),
    ]
}

fn database_alerts(ctx: &Context, a: &AlertsSpec) -> Vec<Rule> {
    let sel = ctx.selector();
    vec![alert(
        ctx,
        a,
        "DatabaseConnectionsSaturated",
        format!(
            "max by (namespace, job, pod) (database_connections_active{{{sel}}} / database_connections_max{{{sel}}}) > {}",
            a.database_saturation.threshold
        ),
        &a.database_saturation.for_,
        a.database_saturation.severity,
        "Database connection pool nearly exhausted",
        format!(
            "Pod {{{{ $labels.pod }}}} of chatbot {{{{ $labels.namespace }}}}/{{{{ $labels.job }}}} uses \
             {{{{ $value | humanizePercentage }}}} of its database connections (threshold {}).",
            a.database_saturation.threshold
        ),
    )]
}

/// The Google SRE workbook's multi-window multi-burn-rate alerts: 14.4× over 1h and 5m pages, 6× over 6h and 30m
/// opens a ticket. The ratios are recorded once per window so the alerts stay cheap.
fn slo_rules(ctx: &Context, a: &AlertsSpec, target_percent: f64) -> Vec<Rule> {
    let sel = ctx.selector();
    let budget = error_budget(target_percent);
    let mut rules: Vec<Rule> = ["5m", "30m", "1h", "6h"]
        .iter()
        .map(|w| Rule {
            record: Some(format!("chatbot:http_error_ratio:rate{w}")),
            expr: format!(
                "sum by (namespace, job) (rate(http_requests_total{{{sel}, {NOT_PROBES}, status=~\"5..\"}}[{w}])) \
                 / sum by (namespace, job) (rate(http_requests_total{{{sel}, {NOT_PROBES}}}[{w}]))"
            ),
            ..Rule::default()
        })
        .collect();
    let ratio = |w: &str| format!("chatbot:http_error_ratio:rate{w}{{{sel}}}");
    rules.push(alert(
        ctx,
        a,
        "ErrorBudgetBurnFast",
        format!(
            "{} > (14.4 * {budget}) and {} > (14.4 * {budget})",
            ratio("1h"),
            ratio("5m")
        ),
        "2m",
        Severity::Critical,
        "Error budget burning fast",
        format!(
            "Chatbot {{{{ $labels.namespace }}}}/{{{{ $labels.job }}}} is burning its {target_percent}% availability \
             budget at 14.4x or more (5xx ratio {{{{ $value | humanizePercentage }}}} over 1h): 2% of a 30-day budget \
             per hour."
        ),
    ));
    rules.push(alert(
        ctx,
        a,
        "ErrorBudgetBurnSlow",
        format!("{} > (6 * {budget}) and {} > (6 * {budget})", ratio("6h"), ratio("30m")),
        "15m",
        Severity::Warning,
        "Error budget burning",
        format!(
            "Chatbot {{{{ $labels.namespace }}}}/{{{{ $labels.job }}}} is burning its {target_percent}% availability \
             budget at 6x or more (5xx ratio {{{{ $value | humanizePercentage }}}} over 6h): 5% of a 30-day budget \
             in 6 hours."
        ),
    ));
    rules
}

#[allow(clippy::too_many_arguments)]
fn alert(
    ctx: &Context,
    a: &AlertsSpec,
    name: &str,
    expr: String,
    for_: &str,
    severity: Severity,
    summary: &str,
    description: String,
) -> Rule {
    Rule {
        alert: Some(name.into()),
        expr,
        for_: Some(for_.into()),
        labels: BTreeMap::from([
            ("severity".into(), severity.as_str().into()),
            ("chatbot".into(), ctx.name.clone()),
        ]),
        annotations: BTreeMap::from([
            ("summary".into(), summary.into()),
            ("description".into(), description),
            (
                "runbook_url".into(),
                format!("{}/{name}.md", a.runbook_base_url.trim_end_matches('/')),
            ),
        ]),
        ..Rule::default()
    }
}
