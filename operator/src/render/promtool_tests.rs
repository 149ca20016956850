//! `promtool test rules` unit tests for the rendered alerts, built from the resource's own thresholds: for every
//! alert, input series that make it fire (with its labels and annotations as Prometheus renders them) and series
//! that keep it silent. A user who changes a threshold regenerates them and proves the alerts still work.

mod business;

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::local_prometheus::RULES_FILE;
use super::template_format::{expand, go_g4};
use crate::crd::{ChatbotMonitoringSpec, LATENCY_BUCKETS};
use crate::prometheus_operator::{PrometheusRule, Rule};

/// File name of the tests next to the rules.
pub const TESTS_FILE: &str = "rules.test.yml";

const BUCKETS: &[f64] = LATENCY_BUCKETS;

/// Input series of `n` bad events in every 100, per minute.
type Scenario<'a> = dyn Fn(u64) -> Vec<(String, String)> + 'a;

/// One scenario: input series, when to evaluate, and (when it fires) the alert's own labels and value.
struct Case {
    series: Vec<(String, String)>,
    eval_minutes: u64,
    fires: Option<(BTreeMap<String, String>, f64)>,
    /// Other times at which the alert must not be firing.
    silent_at: Vec<u64>,
}

/// The test file for `rule`, rendered from `spec` for the resource `namespace`/`name`.
pub fn tests(spec: &ChatbotMonitoringSpec, rule: &PrometheusRule, namespace: &str, name: &str) -> Value {
    let mut tests = Vec::new();
    let rules: Vec<&Rule> = rule.spec.groups.iter().flat_map(|g| &g.rules).collect();
    for r in rules.iter().filter(|r| r.alert.is_some()) {
        let alert = r.alert.as_deref().unwrap();
        let unnamed = cases(alert, spec, namespace, name)
            .into_iter()
            .filter_map(|(fires, case)| Some((String::new(), fires, case?)));
        let named = availability_cases(alert, spec, namespace, name)
            .into_iter()
            .chain(business::cases(alert, spec, namespace, name));
        for (scenario, fires, case) in unnamed.chain(named) {
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
                "name": format!("{alert} {}{scenario}", if fires { "fires" } else { "stays silent" }),
                "interval": "1m",
                "input_series": case.series.iter().map(|(s, v)| json!({"series": s, "values": v})).collect::<Vec<_>>(),
                "alert_rule_test": std::iter::once(json!({
                    "eval_time": format!("{}m", case.eval_minutes),
                    "alertname": alert,
                    "exp_alerts": exp_alerts,
                }))
                .chain(case.silent_at.iter().map(|m| json!({
                    "eval_time": format!("{m}m"),
                    "alertname": alert,
                    "exp_alerts": [],
                })))
                .collect::<Vec<_>>(),
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
                        silent_at: Vec::new(),
                        fires: Some((scope(), per_minute as f64 / 60.0)),
                    }),
                ),
                (
                    false,
                    Some(Case {
                        series: s(quiet),
                        eval_minutes: m,
                        silent_at: Vec::new(),
                        fires: None,
                    }),
                ),
            ]
        }
        "HighResponseTime" | "HighChatResponseTime" => {
            let (threshold, for_, metric, extra) = if alert == "HighResponseTime" {
                (
                    a.latency.threshold,
                    &a.latency.for_,
                    "http_request_duration_seconds_bucket",
                    "method=\"POST\", endpoint=\"/chat\"",
                )
            } else {
                (
                    a.chat_latency.threshold,
                    &a.chat_latency.for_,
                    "chat_response_time_seconds_bucket",
                    "user_type=\"customer\"",
                )
            };
            let m = long(for_);
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
            let firing = (0..BUCKETS.len() - 1).find(|&i| BUCKETS[i] >= threshold).map(|i| {
                let p95 = BUCKETS[i] + (BUCKETS[i + 1] - BUCKETS[i]) * 0.95;
                Case {
                    series: histogram(Some(i)),
                    eval_minutes: m,
                    silent_at: Vec::new(),
                    fires: Some((scope(), p95)),
                }
            });
            let silent = (BUCKETS[0] * 0.95 < threshold).then(|| Case {
                series: histogram(None),
                eval_minutes: m,
                silent_at: Vec::new(),
                fires: None,
            });
            vec![(true, firing), (false, silent)]
        }
        "HighMemoryUsage" => {
            let limit_percent = a.memory.limit_percent;
            let t = &a.memory.alert;
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
            let near = (limit * (limit_percent + 100.0) / 200.0).ceil();
            let big_limit = (t.threshold * 2.0 * 400.0 / limit_percent).ceil();
            vec![
                (
                    true,
                    Some(Case {
                        series: gauge(t.threshold * 2.0),
                        eval_minutes: m,
                        silent_at: Vec::new(),
                        fires: Some((with(&[("pod", &format!("{job}-0"))]), t.threshold * 2.0)),
                    }),
                ),
                (
                    false,
                    Some(Case {
                        series: gauge((t.threshold / 2.0).floor()),
                        eval_minutes: m,
                        silent_at: Vec::new(),
                        fires: None,
                    }),
                ),
                (
                    true,
                    (near > limit * limit_percent / 100.0 && near <= limit).then(|| Case {
                        series: limited(near, limit),
                        eval_minutes: m,
                        silent_at: Vec::new(),
                        fires: Some((with(&[("pod", &format!("{job}-0"))]), near)),
                    }),
                ),
                (
                    false,
                    Some(Case {
                        series: limited(t.threshold * 2.0, big_limit),
                        eval_minutes: m,
                        silent_at: Vec::new(),
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
                        silent_at: Vec::new(),
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
                        silent_at: Vec::new(),
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
                silent_at: Vec::new(),
                fires: Some((with(&[("model", "openai")]), errors.min(100) as f64 / 100.0)),
            });
            vec![
                (true, fires),
                (
                    false,
                    Some(Case {
                        series: calls(0),
                        eval_minutes: m,
                        silent_at: Vec::new(),
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
                        silent_at: Vec::new(),
                        fires: Some((with(&[("model", "openai")]), 1.0 / 60.0)),
                    }),
                ),
                (
                    false,
                    Some(Case {
                        series: s(0),
                        eval_minutes: 40,
                        silent_at: Vec::new(),
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
                silent_at: Vec::new(),
                fires: Some((scope(), escalated as f64 / 100.0)),
            });
            vec![
                (true, fires),
                (
                    false,
                    Some(Case {
                        series: s(0),
                        eval_minutes: m,
                        silent_at: Vec::new(),
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
                silent_at: Vec::new(),
                fires: Some((with(&[("pod", &format!("{job}-0"))]), 1.0)),
            });
            vec![
                (true, fires),
                (
                    false,
                    Some(Case {
                        series: s(0),
                        eval_minutes: m,
                        silent_at: Vec::new(),
                        fires: None,
                    }),
                ),
            ]
        }
        "ErrorBudgetBurnFast" | "ErrorBudgetBurnSlow" | "LatencyBudgetBurnFast" | "LatencyBudgetBurnSlow" => {
            let Some(slo) = &a.slo else { return vec![] };
            let fast = alert.ends_with("Fast");
            let factor = if fast { 14.4 } else { 6.0 };
            let m = if fast { 30 } else { 60 };
            // Per minute, 100 events of which `bad` are bad: 5xx responses, or chats answered after the threshold.
            let (target, events): (f64, Box<Scenario>) = if alert.starts_with("Error") {
                let Some(target) = slo.availability_target else {
                    return vec![];
                };
                let requests = move |status: &str, n: u64| {
                    counter(
                        &format!(
                            "__name__=\"http_requests_total\", {sel}, method=\"POST\", endpoint=\"/chat\", status=\"{status}\""
                        ),
                        n,
                        m,
                    )
                };
                (
                    target,
                    Box::new(move |bad| vec![requests("503", bad), requests("200", 100 - bad)]),
                )
            } else {
                let Some(latency) = &slo.latency else { return vec![] };
                let chats = move |bad: u64| {
                    let bucket = |le: &str, n: u64| {
                        counter(
                            &format!(
                                "__name__=\"chat_response_time_seconds_bucket\", {sel}, user_type=\"customer\", le=\"{le}\""
                            ),
                            n,
                            m,
                        )
                    };
                    // The fast ones take the smallest bucket's time, the slow ones more than the largest bound.
                    let mut series: Vec<(String, String)> =
                        BUCKETS.iter().map(|b| bucket(&go_g4(*b), 100 - bad)).collect();
                    series.push(bucket("+Inf", 100));
                    series.push(counter(
                        &format!("__name__=\"chat_response_time_seconds_count\", {sel}, user_type=\"customer\""),
                        100,
                        m,
                    ));
                    series
                };
                (latency.target, Box::new(chats))
            };
            let budget = super::prometheus_rule::error_budget(target);
            // Half the events bad, or more where the budget is large; none when even all of them would not do.
            let bad = ((factor * budget * 100.0).floor() as u64 + 1).max(50);
            let fires = (bad <= 100).then(|| Case {
                series: events(bad),
                eval_minutes: m,
                fires: Some((scope(), bad as f64 / 100.0)),
                silent_at: Vec::new(),
            });
            vec![
                (true, fires),
                (
                    false,
                    Some(Case {
                        series: events(0),
                        eval_minutes: m,
                        fires: None,
                        silent_at: Vec::new(),
                    }),
                ),
            ]
        }
        _ => vec![],
    }
}

/// ChatbotDown and ChatbotTargetsDown for the resource's own replicas and thresholds: every target down, the
/// fewest down that make the chatbot down, the most down that do not, every target up, and a rolling update.
fn availability_cases(alert: &str, spec: &ChatbotMonitoringSpec, ns: &str, job: &str) -> Vec<(String, bool, Case)> {
    let critical = alert == "ChatbotDown";
    if !critical && alert != "ChatbotTargetsDown" {
        return Vec::new();
    }
    let av = &spec.alerts.availability;
    let n = spec.chatbot.replicas.max(1) as usize;
    let sel = format!("namespace=\"{ns}\", job=\"{job}\"");
    let up = |i: usize| format!("up{{{sel}, instance=\"10.0.{}.{}:8081\"}}", i / 200, i % 200 + 10);
    // As Prometheus computes it: the share of targets up against the rendered ratio.
    let down = |k: usize| {
        let share = (n - k) as f64 / n as f64;
        share == 0.0 || share < super::prometheus_rule::ratio(av.min_up_percent)
    };
    let m = minutes(&av.for_).max(minutes(&av.partial_for)) + 5;
    let with_down =
        |k: usize| -> Vec<(String, String)> { (0..n).map(|i| (up(i), format!("{}x{m}", u8::from(i >= k)))).collect() };
    let scope = BTreeMap::from([
        ("namespace".to_owned(), ns.to_owned()),
        ("job".to_owned(), job.to_owned()),
    ]);
    let case = |k: usize| {
        // ChatbotDown's value is the share up, ChatbotTargetsDown's the share down.
        let fires = if critical { down(k) } else { k > 0 && !down(k) };
        let value = if critical {
            (n - k) as f64 / n as f64
        } else {
            k as f64 / n as f64
        };
        let scenario = match k {
            0 => " with every target up".to_owned(),
            k if k == n => format!(" with all {n} targets down"),
            k => format!(" with {k} of {n} targets down"),
        };
        (
            scenario,
            fires,
            Case {
                series: with_down(k),
                eval_minutes: m,
                fires: fires.then(|| (scope.clone(), value)),
                silent_at: Vec::new(),
            },
        )
    };
    let fewest_down = (1..n).find(|&k| down(k));
    let most_up = (1..n).rev().find(|&k| !down(k));
    let mut cases: Vec<_> = [Some(n), fewest_down, most_up, Some(0)]
        .into_iter()
        .flatten()
        .collect::<std::collections::BTreeSet<usize>>()
        .into_iter()
        .rev()
        .map(case)
        .collect();
    if let (false, Some(k)) = (critical, most_up) {
        // A target down for less than `partialFor` (a pod restarting) warns no one.
        let before = minutes(&av.partial_for).saturating_sub(1);
        if before > 0 {
            cases.push((
                format!(" with {k} of {n} targets down for less than {}", av.partial_for),
                false,
                Case {
                    series: with_down(k),
                    eval_minutes: before,
                    fires: None,
                    silent_at: Vec::new(),
                },
            ));
        }
    }
    cases.push(rolling_update(n, &up));
    cases
}

/// A Deployment's rolling update with the default `maxSurge` and `maxUnavailable` of 25 %: every two minutes a batch
/// of new pods appears (scraped up at once) and as many old ones stop (down for one scrape, then gone). Neither
/// availability alert fires at any minute of it.
fn rolling_update(n: usize, up: &dyn Fn(usize) -> String) -> (String, bool, Case) {
    let batch = (n / 4 + n.div_ceil(4)).max(1);
    let steps = n.div_ceil(batch);
    let end = 2 * steps as u64 + 4;
    let values = |state: &dyn Fn(u64) -> &'static str| (0..=end).map(state).collect::<Vec<_>>().join(" ");
    let mut series = Vec::new();
    for i in 0..n {
        let start = 2 * (i / batch) as u64 + 1;
        // Old pod i, then its replacement (instances numbered after the old ones).
        series.push((
            up(i),
            values(&|t| match t {
                t if t <= start => "1",
                t if t == start + 1 => "0",
                t if t == start + 2 => "stale",
                _ => "_",
            }),
        ));
        series.push((up(n + i), values(&|t| if t < start { "_" } else { "1" })));
    }
    (
        format!(" during a rolling update of {n} pods"),
        false,
        Case {
            series,
            eval_minutes: end,
            fires: None,
            silent_at: (0..end).collect(),
        },
    )
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
