//! `promtool test rules` unit tests for the rendered alerts, built from the resource's own thresholds: for every
//! alert, input series that make it fire (with its labels and annotations as Prometheus renders them) and series
//! that keep it silent. A user who changes a threshold regenerates them and proves the alerts still work.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::local_prometheus::RULES_FILE;
use super::template_format::{expand, go_g4};
use crate::crd::ChatbotMonitoringSpec;
use crate::prometheus_operator::{PrometheusRule, Rule};

/// File name of the tests next to the rules.
pub const TESTS_FILE: &str = "rules.test.yml";

/// The latency histograms' upper bounds (`http_request_duration_seconds`, `chat_response_time_seconds`), as the
/// chatbot exposes them: part of its metric contract. The operator does not link the chatbot, so this is a copy,
/// and `tests/live/tests/contract.rs` fails the build the day the two differ.
pub const LATENCY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0];
const BUCKETS: &[f64] = LATENCY_BUCKETS;

/// One scenario: input series, when to evaluate, and (when it fires) the alert's own labels and value.
struct Case {
    series: Vec<(String, String)>,
    eval_minutes: u64,
    fires: Option<(BTreeMap<String, String>, f64)>,
}

/// The test file for `rule`, rendered from `spec` for the resource `namespace`/`name`.
pub fn tests(spec: &ChatbotMonitoringSpec, rule: &PrometheusRule, namespace: &str, name: &str) -> Value {
    let mut tests = Vec::new();
    let rules: Vec<&Rule> = rule.spec.groups.iter().flat_map(|g| &g.rules).collect();
    for r in rules.iter().filter(|r| r.alert.is_some()) {
        let alert = r.alert.as_deref().unwrap();
        for (fires, case) in cases(alert, spec, namespace, name) {
            let Some(case) = case else { continue };
            let exp_alerts: Vec<Value> = match &case.fires {
                Some((labels, value)) if fires => {
                    let mut all: BTreeMap<String, String> = r.labels.clone();
                    all.extend(labels.clone());
                    let annotations: BTreeMap<String, String> = r
                        .annotations
                        .iter()
                        .map(|(k, v)| (k.clone(), expand(v, &all, *value)))
                        .collect();
                    vec![json!({"exp_labels": all, "exp_annotations": annotations})]
                }
                _ => vec![],
            };
            tests.push(json!({
                "name": format!("{alert} {}", if fires { "fires" } else { "stays silent" }),
                "interval": "1m",
                "input_series": case.series.iter().map(|(s, v)| json!({"series": s, "values": v})).collect::<Vec<_>>(),
                "alert_rule_test": [{
                    "eval_time": format!("{}m", case.eval_minutes),
                    "alertname": alert,
                    "exp_alerts": exp_alerts,
                }],
            }));
        }
    }
    json!({"rule_files": [RULES_FILE], "evaluation_interval": "1m", "tests": tests})
}

/// (fires?, scenario) for one alert; `None` when the thresholds make a case impossible (e.g. a latency threshold
/// above the largest histogram bucket can never be crossed).
fn cases(alert: &str, spec: &ChatbotMonitoringSpec, ns: &str, job: &str) -> Vec<(bool, Option<Case>)> {
    let a = &spec.alerts;
    let sel = format!("namespace=\"{ns}\", job=\"{job}\"");
    let scope = || {
        BTreeMap::from([
            ("namespace".to_owned(), ns.to_owned()),
            ("job".to_owned(), job.to_owned()),
        ])
    };
    let with = |extra: &[(&str, &str)]| {
        let mut l = scope();
        l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        l
    };
    let counter =
        |labels: &str, per_minute: u64, minutes: u64| (format!("{{{labels}}}"), format!("0+{per_minute}x{minutes}"));
    let long = |f: &str| minutes(f) + 15;
    match alert {
        "HighErrorRate" => {
            let t = &a.error_rate;
            let per_minute = (t.threshold * 60.0 * 2.0).ceil().max(1.0) as u64;
            let quiet = (t.threshold * 60.0 / 2.0).floor() as u64;
            let m = long(&t.for_);
            let s = |n| {
                vec![counter(
                    &format!(
                        "__name__=\"http_requests_total\", {sel}, method=\"POST\", endpoint=\"/chat\", status=\"503\""
                    ),
                    n,
                    m,
                )]
            };
            vec![
                (
                    true,
                    Some(Case {
                        series: s(per_minute),
                        eval_minutes: m,
                        fires: Some((scope(), per_minute as f64 / 60.0)),
                    }),
                ),
                (
                    false,
                    Some(Case {
                        series: s(quiet),
                        eval_minutes: m,
                        fires: None,
                    }),
                ),
            ]
        }
        "HighResponseTime" | "HighChatResponseTime" => {
            let (t, metric, extra) = if alert == "HighResponseTime" {
                (
                    &a.latency,
                    "http_request_duration_seconds_bucket",
                    "method=\"POST\", endpoint=\"/chat\"",
                )
            } else {
                (
                    &a.chat_latency,
                    "chat_response_time_seconds_bucket",
                    "user_type=\"customer\"",
                )
            };
            let m = long(&t.for_);
            let histogram = |lower_index: Option<usize>| -> Vec<(String, String)> {
                // Every observation falls in the bucket just above `lower_index`'s bound.
                let mut les: Vec<String> = BUCKETS.iter().map(|b| go_g4(*b)).collect();
                les.push("+Inf".into());
                les.iter()
                    .enumerate()
                    .map(|(i, le)| {
                        let filled = lower_index.is_none_or(|l| i > l);
                        counter(
                            &format!("__name__=\"{metric}\", {sel}, {extra}, le=\"{le}\""),
                            if filled { 60 } else { 0 },
                            m,
                        )
                    })
                    .collect()
            };
            // Smallest bucket whose lower bound is at least the threshold: its interpolated p95 is above it.
            let firing = (0..BUCKETS.len() - 1).find(|&i| BUCKETS[i] >= t.threshold).map(|i| {
                let p95 = BUCKETS[i] + (BUCKETS[i + 1] - BUCKETS[i]) * 0.95;
                Case {
                    series: histogram(Some(i)),
                    eval_minutes: m,
                    fires: Some((scope(), p95)),
                }
            });
            let silent = (BUCKETS[0] * 0.95 < t.threshold).then(|| Case {
                series: histogram(None),
                eval_minutes: m,
                fires: None,
            });
            vec![(true, firing), (false, silent)]
        }
        "HighMemoryUsage" => {
            let t = &a.memory;
            let m = long(&t.for_);
            let gauge = |v: f64| {
                vec![(
                    format!("memory_usage_bytes{{{sel}, pod=\"{job}-0\"}}"),
                    format!("{v}x{m}"),
                )]
            };
            // With a limit: a pod near it fires below the absolute threshold, and one far under it stays silent
            // above the absolute threshold (a 4 GiB pod at 12 % once paged).
            let limited = |usage: f64, limit: f64| {
                let mut series = gauge(usage);
                series.push((
                    format!("memory_limit_bytes{{{sel}, pod=\"{job}-0\"}}"),
                    format!("{limit}x{m}"),
                ));
                series
            };
            let limit = (t.threshold / 2.0).floor().max(1024.0);
            let near = (limit * (t.limit_percent + 100.0) / 200.0).ceil();
            let big_limit = (t.threshold * 2.0 * 400.0 / t.limit_percent).ceil();
            vec![
                (
                    true,
                    Some(Case {
                        series: gauge(t.threshold * 2.0),
                        eval_minutes: m,
                        fires: Some((with(&[("pod", &format!("{job}-0"))]), t.threshold * 2.0)),
                    }),
                ),
                (
                    false,
                    Some(Case {
                        series: gauge((t.threshold / 2.0).floor()),
                        eval_minutes: m,
                        fires: None,
                    }),
                ),
                (
                    true,
                    (near > limit * t.limit_percent / 100.0 && near <= limit).then(|| Case {
                        series: limited(near, limit),
                        eval_minutes: m,
                        fires: Some((with(&[("pod", &format!("{job}-0"))]), near)),
                    }),
                ),
                (
                    false,
                    Some(Case {
                        series: limited(t.threshold * 2.0, big_limit),
                        eval_minutes: m,
                        fires: None,
                    }),
                ),
            ]
        }
        "ChatbotDown" => {
            let up = |v: u8| vec![(format!("up{{{sel}, instance=\"10.0.0.7:8000\"}}"), format!("{v}x20"))];
            vec![
                (
                    true,
                    Some(Case {
                        series: up(0),
                        eval_minutes: 10,
                        fires: Some((with(&[("instance", "10.0.0.7:8000")]), 0.0)),
                    }),
                ),
                (
                    false,
                    Some(Case {
                        series: up(1),
                        eval_minutes: 10,
                        fires: None,
                    }),
                ),
            ]
        }
        "ChatbotTargetMissing" => {
            // Another chatbot's target must not hide this one's absence.
            let other = (
                format!("up{{namespace=\"{ns}\", job=\"{job}-other\", instance=\"10.0.0.9:8000\"}}"),
                "1x20".to_owned(),
            );
            vec![
                (
                    true,
                    Some(Case {
                        series: vec![other.clone()],
                        eval_minutes: 10,
                        fires: Some((scope(), 1.0)),
                    }),
                ),
                (
                    false,
                    Some(Case {
                        series: vec![
                            other,
                            (format!("up{{{sel}, instance=\"10.0.0.7:8000\"}}"), "1x20".into()),
                        ],
                        eval_minutes: 10,
                        fires: None,
                    }),
                ),
            ]
        }
        "AIModelErrorsHigh" => {
            let t = &a.model_errors;
            let m = long(&t.for_);
            let errors = ((t.threshold * 2.0).min(1.0) * 100.0).ceil() as u64;
            let calls = |e: u64| {
                vec![
                    counter(
                        &format!("__name__=\"ai_model_calls_total\", {sel}, model=\"openai\", status=\"error\""),
                        e,
                        m,
                    ),
                    counter(
                        &format!("__name__=\"ai_model_calls_total\", {sel}, model=\"openai\", status=\"success\""),
                        100 - e,
                        m,
                    ),
                ]
            };
            let fires = (t.threshold < 1.0).then(|| Case {
                series: calls(errors.min(100)),
                eval_minutes: m,
                fires: Some((with(&[("model", "openai")]), errors.min(100) as f64 / 100.0)),
            });
            vec![
                (true, fires),
                (
                    false,
                    Some(Case {
                        series: calls(0),
                        eval_minutes: m,
                        fires: None,
                    }),
                ),
            ]
        }
        "AIModelFallbacks" => {
            let s = |n| {
                vec![counter(
                    &format!("__name__=\"ai_model_fallbacks_total\", {sel}, model=\"openai\""),
                    n,
                    40,
                )]
            };
            vec![
                (
                    true,
                    Some(Case {
                        series: s(1),
                        eval_minutes: 40,
                        fires: Some((with(&[("model", "openai")]), 1.0 / 60.0)),
                    }),
                ),
                (
                    false,
                    Some(Case {
                        series: s(0),
                        eval_minutes: 40,
                        fires: None,
                    }),
                ),
            ]
        }
        "HighEscalationRate" => {
            let t = &a.escalations;
            let m = long(&t.for_) + 15;
            let escalated = ((t.threshold * 2.0).min(1.0) * 100.0).ceil() as u64;
            let s = |e: u64| {
                vec![
                    counter(
                        &format!("__name__=\"chat_escalations_total\", {sel}, reason=\"low_confidence\""),
                        e,
                        m,
                    ),
                    counter(
                        &format!("__name__=\"chat_requests_total\", {sel}, user_type=\"customer\", status=\"success\""),
                        100,
                        m,
                    ),
                ]
            };
            let fires = (t.threshold < 1.0).then(|| Case {
                series: s(escalated),
                eval_minutes: m,
                fires: Some((scope(), escalated as f64 / 100.0)),
            });
            vec![
                (true, fires),
                (
                    false,
                    Some(Case {
                        series: s(0),
                        eval_minutes: m,
                        fires: None,
                    }),
                ),
            ]
        }
        "DatabaseConnectionsSaturated" => {
            let t = &a.database_saturation;
            let m = long(&t.for_);
            let s = |active: u64| {
                vec![
                    (
                        format!("database_connections_active{{{sel}, pod=\"{job}-0\"}}"),
                        format!("{active}x{m}"),
                    ),
                    (
                        format!("database_connections_max{{{sel}, pod=\"{job}-0\"}}"),
                        format!("10x{m}"),
                    ),
                ]
            };
            let fires = (t.threshold < 1.0).then(|| Case {
                series: s(10),
                eval_minutes: m,
                fires: Some((with(&[("pod", &format!("{job}-0"))]), 1.0)),
            });
            vec![
                (true, fires),
                (
                    false,
                    Some(Case {
                        series: s(0),
                        eval_minutes: m,
                        fires: None,
                    }),
                ),
            ]
        }
        "ErrorBudgetBurnFast" | "ErrorBudgetBurnSlow" => {
            let Some(slo) = &a.slo else { return vec![] };
            let budget = super::prometheus_rule::error_budget(slo.availability_target);
            let factor = if alert == "ErrorBudgetBurnFast" { 14.4 } else { 6.0 };
            let m = if alert == "ErrorBudgetBurnFast" { 30 } else { 60 };
            let s = |errors: u64| {
                vec![
                    counter(
                        &format!(
                            "__name__=\"http_requests_total\", {sel}, method=\"POST\", endpoint=\"/chat\", status=\"503\""
                        ),
                        errors,
                        m,
                    ),
                    counter(
                        &format!(
                            "__name__=\"http_requests_total\", {sel}, method=\"POST\", endpoint=\"/chat\", status=\"200\""
                        ),
                        100 - errors,
                        m,
                    ),
                ]
            };
            // Half the requests failing burns any budget small enough to be worth alerting on.
            let fires = (factor * budget < 0.5).then(|| Case {
                series: s(50),
                eval_minutes: m,
                fires: Some((scope(), 0.5)),
            });
            vec![
                (true, fires),
                (
                    false,
                    Some(Case {
                        series: s(0),
                        eval_minutes: m,
                        fires: None,
                    }),
                ),
            ]
        }
        _ => vec![],
    }
}

/// Minutes of a duration such as `2m`, `90s`, `1h30m` (rounded up).
fn minutes(d: &str) -> u64 {
    let mut total_ms: u64 = 0;
    let mut number = String::new();
    let mut chars = d.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().unwrap_or(0);
        number.clear();
        total_ms += match c {
            'h' => n * 3_600_000,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                n
            }
            'm' => n * 60_000,
            's' => n * 1000,
            _ => 0,
        };
    }
    total_ms.div_ceil(60_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_minutes() {
        assert_eq!(minutes("2m"), 2);
        assert_eq!(minutes("90s"), 2);
        assert_eq!(minutes("1h30m"), 90);
        assert_eq!(minutes("500ms"), 1);
    }
}
