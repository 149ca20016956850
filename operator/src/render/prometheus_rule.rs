//! The PrometheusRule: the monitoring guide's alerts with the resource's thresholds, the chatbot-down alerts, and
//! multi-window multi-burn-rate alerts on the error budget when an SLO is set. Every expression is scoped to this
//! resource's chatbot (`namespace`, `job`), so two resources never alert on each other's traffic.

use std::collections::BTreeMap;

use super::Context;
use crate::crd::{AlertsSpec, ChatbotMonitoringSpec, ModelBackend, Severity, SloSpec};
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
            rules: slo_rules(ctx, &spec.alerts, slo),
        });
    }
    // The model's tokens and spend exist with a remote model only: no rule reads what cannot be there.
    if spec.chatbot.model.backend == ModelBackend::Openai {
        groups.push(RuleGroup {
            name: "chatbot-sav.model".into(),
            rules: model_rules(ctx, &spec.alerts),
        });
    }
    groups.push(RuleGroup {
        name: "chatbot-sav.customers".into(),
        rules: customer_alerts(ctx, &spec.alerts),
    });
    groups.retain(|g| !g.rules.is_empty());
    PrometheusRule {
        metadata: ctx.meta(&ctx.name, &spec.monitoring.labels),
        spec: PrometheusRuleSpec { groups },
        status: None,
    }
}

/// The share of requests an availability target (in percent) allows to fail, rounded so that 99.9 gives 0.001,
/// not 0.000999…9 from binary floating point.
pub fn error_budget(target_percent: f64) -> f64 {
    ratio(100.0 - target_percent)
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
                ratio(a.memory.limit_percent),
                a.memory.alert.threshold
            ),
            &a.memory.alert.for_,
            a.memory.alert.severity,
            "High memory usage",
            format!(
                "Pod {{{{ $labels.pod }}}} of chatbot {{{{ $labels.namespace }}}}/{{{{ $labels.job }}}} uses \
                 {{{{ $value | humanize1024 }}}}B of resident memory: over {}% of its memory limit or, with no \
                 limit, over {}B.",
                a.memory.limit_percent, a.memory.alert.threshold
            ),
        ),
    ]
}

/// Availability by share of targets up, as kubernetes-mixin's `TargetDown`: the chatbot down is critical (and the
/// one alert that silences the others, see `alertmanager_config::ROOT_CAUSES`); some targets down for longer than a
/// rollout takes is a warning; a rollout, with at most a quarter of the pods unavailable, neither.
fn availability_alerts(ctx: &Context, a: &AlertsSpec) -> Vec<Rule> {
    let sel = ctx.selector();
    let av = &a.availability;
    let down = chatbot_down(&sel, av.min_up_percent);
    vec![
        alert(
            ctx,
            a,
            "ChatbotDown",
            down.clone(),
            &av.for_,
            Severity::Critical,
            "Chatbot down",
            if av.min_up_percent > 0.0 {
                format!(
                    "Only {{{{ $value | humanizePercentage }}}} of the targets of chatbot {{{{ $labels.namespace }}}}/\
                     {{{{ $labels.job }}}} are up, under {}%: customers get few or no answers.",
                    av.min_up_percent
                )
            } else {
                "No target of chatbot {{ $labels.namespace }}/{{ $labels.job }} is up: customers get no answers.".into()
            },
        ),
        alert(
            ctx,
            a,
            "ChatbotTargetsDown",
            format!(
                "count by (namespace, job) (up{{{sel}}} == 0) / count by (namespace, job) (up{{{sel}}}) > 0 \
                 unless on (namespace, job) ({down})"
            ),
            &av.partial_for,
            Severity::Warning,
            "Some chatbot targets down",
            "{{ $value | humanizePercentage }} of the targets of chatbot {{ $labels.namespace }}/{{ $labels.job }} \
             are down: the others still answer, with less capacity."
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

/// ChatbotDown's condition: the share of targets up under `min_up_percent`, or none up at all.
fn chatbot_down(sel: &str, min_up_percent: f64) -> String {
    let up_share = format!("sum by (namespace, job) (up{{{sel}}}) / count by (namespace, job) (up{{{sel}}})");
    if min_up_percent > 0.0 {
        format!("{up_share} < {}", ratio(min_up_percent))
    } else {
        format!("{up_share} == 0")
    }
}

/// A percentage as a ratio, rounded so that 33.3 gives 0.333, not 0.33299999999999996.
pub(super) fn ratio(percent: f64) -> f64 {
    (percent * 1e6).round() / 1e8
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

/// The recording rule of the spend over a rolling day, by currency: ModelSpendForecast extrapolates it.
pub const SPEND_PER_DAY: &str = "chatbot:ai_model_spend:increase1d";

/// The model's cost: spend against a daily budget (and its forecast), tokens per chat against their usual level.
fn model_rules(ctx: &Context, a: &AlertsSpec) -> Vec<Rule> {
    let sel = ctx.selector();
    let mut rules = Vec::new();
    if let Some(spend) = &a.spend {
        rules.push(Rule {
            record: Some(SPEND_PER_DAY.into()),
            expr: format!("sum by (namespace, job, currency) (increase(ai_model_estimated_cost_total{{{sel}}}[1d]))"),
            ..Rule::default()
        });
        let (budget, currency) = (spend.daily_budget, &spend.currency);
        let day = format!("{SPEND_PER_DAY}{{{sel}, currency=\"{currency}\"}}");
        let over = format!("{day} > {budget}");
        rules.push(alert(
            ctx,
            a,
            "ModelSpendOverBudget",
            over.clone(),
            "5m",
            spend.severity,
            "Model spend over its daily budget",
            format!(
                "Chatbot {{{{ $labels.namespace }}}}/{{{{ $labels.job }}}} spent {{{{ $value | humanize }}}} {currency} on \
                 its model over the last 24 hours (budget {budget} {currency})."
            ),
        ));
        // The CRD's pattern is a subset of what humantime reads.
        let horizon = humantime::parse_duration(&spend.forecast).map_or(0, |d| d.as_secs());
        rules.push(alert(
            ctx,
            a,
            "ModelSpendForecast",
            format!("predict_linear({day}[1h], {horizon}) > {budget} unless {over}"),
            "15m",
            spend.severity,
            "Model spend on course to pass its daily budget",
            format!(
                "At the trend of the last hour, chatbot {{{{ $labels.namespace }}}}/{{{{ $labels.job }}}} will have \
                 spent {{{{ $value | humanize }}}} {currency} over 24 hours within {} (budget {budget} {currency}).",
                spend.forecast
            ),
        ));
    }
    let t = &a.tokens_per_chat;
    if t.enabled {
        let per_chat = |w: &str| {
            format!(
                "sum by (namespace, job) (rate(gen_ai_client_token_usage_sum{{{sel}}}[{w}])) / sum by (namespace, job) \
                 (rate(chat_requests_total{{{sel}, status=\"success\"}}[{w}]))"
            )
        };
        rules.push(alert(
            ctx,
            a,
            "TokensPerChatHigh",
            format!(
                "({}) > {} * ({}) and on (namespace, job) sum by (namespace, job) \
                 (increase(chat_requests_total{{{sel}, status=\"success\"}}[{}])) >= {}",
                per_chat(&t.window),
                t.factor,
                per_chat(&t.baseline),
                t.window,
                t.min_chats
            ),
            &t.for_,
            t.severity,
            "Chats cost far more tokens than usual",
            format!(
                "Chats of {{{{ $labels.namespace }}}}/{{{{ $labels.job }}}} use {{{{ $value | humanize }}}} tokens each \
                 over {}, more than {} times their level over {}: a prompt injection, a loop, or a changed prompt.",
                t.window, t.factor, t.baseline
            ),
        ));
    }
    rules
}

/// What customers say and get: the share of answers rated down, the share of conversations the bot resolves.
fn customer_alerts(ctx: &Context, a: &AlertsSpec) -> Vec<Rule> {
    let sel = ctx.selector();
    let mut rules = Vec::new();
    let s = &a.satisfaction;
    if s.enabled {
        let (w, ratings) = (
            &s.window,
            format!(
                "sum by (namespace, job) (increase(chat_feedback_total{{{sel}}}[{}]))",
                s.window
            ),
        );
        rules.push(alert(
            ctx,
            a,
            "LowSatisfaction",
            format!(
                "sum by (namespace, job) (increase(chat_feedback_total{{{sel}, rating=\"down\"}}[{w}])) / {ratings} > {} \
                 and on (namespace, job) {ratings} >= {}",
                ratio(s.max_down_percent),
                s.min_ratings
            ),
            &s.for_,
            s.severity,
            "Customers rate many answers down",
            format!(
                "{{{{ $value | humanizePercentage }}}} of the answers rated over {w} on {{{{ $labels.namespace }}}}/\
                 {{{{ $labels.job }}}} were rated down (threshold {}%).",
                s.max_down_percent
            ),
        ));
    }
    if let Some(c) = &a.containment {
        let w = &c.window;
        let decided = format!("sum by (namespace, job) (increase(chat_conversations_total{{{sel}}}[{w}]))");
        rules.push(alert(
            ctx,
            a,
            "LowContainment",
            format!(
                "sum by (namespace, job) (increase(chat_conversations_total{{{sel}, outcome=\"resolved\"}}[{w}])) \
                 / {decided} < {} and on (namespace, job) {decided} >= {}",
                ratio(c.min_percent),
                c.min_conversations
            ),
            &c.for_,
            c.severity,
            "Few conversations resolved by the bot",
            format!(
                "Only {{{{ $value | humanizePercentage }}}} of the conversations decided over {w} on \
                 {{{{ $labels.namespace }}}}/{{{{ $labels.job }}}} were resolved by the bot alone (floor {}%).",
                c.min_percent
            ),
        ));
    }
    rules
}

/// One service-level objective, as its burn-rate rules need it.
struct Objective<'a> {
    /// The recording rules' name, before `:rate<window>`.
    record: &'a str,
    /// The fast and the slow alert.
    alerts: [&'a str; 2],
    /// What is burning, for the summaries (`Error budget`, `Latency budget`).
    budget_name: &'a str,
    /// The budget with its objective, for the descriptions.
    what: String,
    /// What the ratio measures, for the descriptions.
    bad_ratio: String,
    target_percent: f64,
    /// The bad events over a window, and all of them, as PromQL summed by namespace and job.
    bad: &'a dyn Fn(&str) -> String,
    all: &'a dyn Fn(&str) -> String,
}

/// The rules of the objectives the resource sets.
fn slo_rules(ctx: &Context, a: &AlertsSpec, slo: &SloSpec) -> Vec<Rule> {
    let sel = ctx.selector();
    let mut rules = Vec::new();
    if let Some(target) = slo.availability_target {
        let all = |w: &str| format!("sum by (namespace, job) (rate(http_requests_total{{{sel}, {NOT_PROBES}}}[{w}]))");
        let bad = |w: &str| {
            format!("sum by (namespace, job) (rate(http_requests_total{{{sel}, {NOT_PROBES}, status=~\"5..\"}}[{w}]))")
        };
        rules.extend(burn_rate_rules(
            ctx,
            a,
            &Objective {
                record: "chatbot:http_error_ratio",
                alerts: ["ErrorBudgetBurnFast", "ErrorBudgetBurnSlow"],
                budget_name: "Error budget",
                what: format!("{target}% availability budget"),
                bad_ratio: "5xx ratio".into(),
                target_percent: target,
                bad: &bad,
                all: &all,
            },
        ));
    }
    if let Some(latency) = &slo.latency {
        let all = |w: &str| format!("sum by (namespace, job) (rate(chat_response_time_seconds_count{{{sel}}}[{w}]))");
        let le = le_matcher(latency.threshold);
        let bad = |w: &str| {
            format!(
                "{} - sum by (namespace, job) (rate(chat_response_time_seconds_bucket{{{sel}, {le}}}[{w}]))",
                all(w)
            )
        };
        rules.extend(burn_rate_rules(
            ctx,
            a,
            &Objective {
                record: "chatbot:chat_slow_ratio",
                alerts: ["LatencyBudgetBurnFast", "LatencyBudgetBurnSlow"],
                budget_name: "Latency budget",
                what: format!(
                    "latency budget ({}% of chats answered within {}s)",
                    latency.target, latency.threshold
                ),
                bad_ratio: format!("chats slower than {}s", latency.threshold),
                target_percent: latency.target,
                bad: &bad,
                all: &all,
            },
        ));
    }
    rules
}

/// The `le` matcher of a bucket bound. Prometheus 3 stores `le="2.0"` where the chatbot writes `le="2"` (and
/// Prometheus 2 kept it as written): both are matched.
pub(super) fn le_matcher(bound: f64) -> String {
    if bound.fract() == 0.0 {
        format!("le=~\"{bound}|{bound}.0\"")
    } else {
        format!("le=\"{bound}\"")
    }
}

/// The Google SRE workbook's multi-window multi-burn-rate alerts on a 30-day budget: 14.4x over 1h and 5m pages,
/// 6x over 6h and 30m opens a ticket. The ratio of bad events is recorded once per window so the alerts stay
/// cheap; with no events in a window there is no ratio (no data, not a perfect score), and with events but no bad
/// ones it is 0.
fn burn_rate_rules(ctx: &Context, a: &AlertsSpec, o: &Objective) -> Vec<Rule> {
    let sel = ctx.selector();
    let budget = error_budget(o.target_percent);
    let (record, what, bad_ratio) = (o.record, &o.what, &o.bad_ratio);
    let mut rules: Vec<Rule> = ["5m", "30m", "1h", "6h"]
        .iter()
        .map(|w| Rule {
            record: Some(format!("{record}:rate{w}")),
            expr: format!("(({}) or 0 * {}) / ({} > 0)", (o.bad)(w), (o.all)(w), (o.all)(w)),
            ..Rule::default()
        })
        .collect();
    let ratio = |w: &str| format!("{record}:rate{w}{{{sel}}}");
    rules.push(alert(
        ctx,
        a,
        o.alerts[0],
        format!(
            "{} > (14.4 * {budget}) and {} > (14.4 * {budget})",
            ratio("1h"),
            ratio("5m")
        ),
        "2m",
        Severity::Critical,
        &format!("{} burning fast", o.budget_name),
        format!(
            "Chatbot {{{{ $labels.namespace }}}}/{{{{ $labels.job }}}} is burning its {what} at 14.4x or more \
             ({bad_ratio} {{{{ $value | humanizePercentage }}}} over 1h): 2% of a 30-day budget per hour."
        ),
    ));
    rules.push(alert(
        ctx,
        a,
        o.alerts[1],
        format!("{} > (6 * {budget}) and {} > (6 * {budget})", ratio("6h"), ratio("30m")),
        "15m",
        Severity::Warning,
        &format!("{} burning", o.budget_name),
        format!(
            "Chatbot {{{{ $labels.namespace }}}}/{{{{ $labels.job }}}} is burning its {what} at 6x or more \
             ({bad_ratio} {{{{ $value | humanizePercentage }}}} over 6h): 5% of a 30-day budget in 6 hours."
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
