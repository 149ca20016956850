//! The promtool cases of the model's and the customers' alerts (spend, tokens per chat, satisfaction, containment),
//! from the resource's own thresholds and windows: each fires where it should and stays silent just short of it,
//! including with too few events to judge.

use std::collections::BTreeMap;

use super::{Case, minutes};
use crate::crd::ChatbotMonitoringSpec;
use crate::render::prometheus_rule::ratio;

/// (scenario, fires?, case) for `alert`, or nothing when it is not one of these.
pub(super) fn cases(alert: &str, spec: &ChatbotMonitoringSpec, ns: &str, job: &str) -> Vec<(String, bool, Case)> {
    let sel = format!("namespace=\"{ns}\", job=\"{job}\"");
    let scope = |extra: &[(&str, &str)]| {
        let mut l = BTreeMap::from([
            ("namespace".to_owned(), ns.to_owned()),
            ("job".to_owned(), job.to_owned()),
        ]);
        l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        l
    };
    let a = &spec.alerts;
    match alert {
        "LowSatisfaction" => {
            let s = &a.satisfaction;
            let series = |rating: &str, values: String| {
                (
                    format!(
                        "chat_feedback_total{{{sel}, user_type=\"customer\", intent=\"refund\", rating=\"{rating}\"}}"
                    ),
                    values,
                )
            };
            share_cases(
                ratio(s.max_down_percent),
                s.min_ratings,
                &s.window,
                &s.for_,
                true,
                &|bad, good| vec![series("down", bad), series("up", good)],
                scope(&[]),
                "ratings",
            )
        }
        "LowContainment" => {
            let Some(c) = &a.containment else { return vec![] };
            let series = |outcome: &str, values: String| {
                (
                    format!(
                        "chat_conversations_total{{{sel}, user_type=\"customer\", intent=\"refund\", outcome=\"{outcome}\"}}"
                    ),
                    values,
                )
            };
            // Bad events here are conversations not resolved; the alert's value is the share resolved.
            share_cases(
                ratio(c.min_percent),
                c.min_conversations,
                &c.window,
                &c.for_,
                false,
                &|bad, good| vec![series("escalated", bad), series("resolved", good)],
                scope(&[]),
                "conversations",
            )
        }
        "TokensPerChatHigh" => tokens_per_chat(spec, &sel, scope(&[])),
        "ModelSpendOverBudget" | "ModelSpendForecast" => {
            let Some(spend) = &a.spend else { return vec![] };
            let budget = spend.daily_budget;
            let counter = |per_minute: f64, minutes: u64| {
                (
                    format!(
                        "ai_model_estimated_cost_total{{{sel}, gen_ai_provider_name=\"openai\", \
                         gen_ai_request_model=\"gpt-4o-mini\", currency=\"{}\"}}",
                        spend.currency
                    ),
                    format!("0+{per_minute:e}x{minutes}"),
                )
            };
            let labels = scope(&[("currency", &spend.currency)]);
            if alert == "ModelSpendOverBudget" {
                // A counter that starts within the day: its increase over 1d is all it counted (no extrapolation
                // before a counter's zero), so half an hour of data stands for a day's spend.
                let m = 30;
                let case = |spent: f64, fires: bool| Case {
                    series: vec![counter(spent / m as f64, m)],
                    eval_minutes: m,
                    fires: fires.then(|| (labels.clone(), spent)),
                    silent_at: Vec::new(),
                };
                return vec![
                    (" having spent twice the budget".into(), true, case(2.0 * budget, true)),
                    (" having spent half the budget".into(), false, case(budget / 2.0, false)),
                ];
            }
            // An hour and a quarter into the day, still under the budget: at a pace that passes it within the
            // forecast, and at one that does not.
            let (m, horizon) = (60 + 15 + 5, minutes(&spend.forecast));
            let fast = 2.0 * budget / (2 * m + horizon) as f64;
            let slow = budget / (2 * (m + horizon)) as f64;
            let case = |pace: f64, fires: bool| Case {
                series: vec![counter(pace, m)],
                eval_minutes: m,
                fires: fires.then(|| (labels.clone(), pace * (m + horizon) as f64)),
                silent_at: Vec::new(),
            };
            vec![
                (
                    format!(" on course to pass the budget within {}", spend.forecast),
                    true,
                    case(fast, true),
                ),
                (
                    format!(" on course to spend half the budget in {}", spend.forecast),
                    false,
                    case(slow, false),
                ),
            ]
        }
        _ => vec![],
    }
}

/// A share of bad events over a window against a threshold (`above`: fires over it; else under it), judged only
/// with at least `min_events` in the window. Per minute, `total` events of which `bad(n)` are bad.
#[allow(clippy::too_many_arguments)]
fn share_cases(
    threshold: f64,
    min_events: u32,
    window: &str,
    for_: &str,
    above: bool,
    series: &dyn Fn(String, String) -> Vec<(String, String)>,
    labels: BTreeMap<String, String>,
    what: &str,
) -> Vec<(String, bool, Case)> {
    let w = minutes(window);
    let m = w + minutes(for_) + 5;
    let total: u64 = 100.max((2 * min_events as u64).div_ceil(w));
    let steady = |bad: u64| series(format!("0+{bad}x{m}"), format!("0+{}x{m}", total - bad));
    // Fires with the bad share halfway between the threshold and the end of the scale, stays silent at half of it.
    let (bad_fires, bad_silent) = if above {
        (
            (total as f64 * (1.0 + threshold) / 2.0).ceil() as u64,
            (total as f64 * threshold / 2.0).floor() as u64,
        )
    } else {
        let good_fires = (total as f64 * threshold / 2.0).floor() as u64;
        let good_silent = (total as f64 * (1.0 + threshold) / 2.0).ceil() as u64;
        (total - good_fires, total - good_silent.min(total))
    };
    // The alert's value: the bad share (satisfaction), or the good one (containment).
    let value = |bad: u64| {
        let bad_share = bad as f64 / total as f64;
        if above { bad_share } else { 1.0 - bad_share }
    };
    let fires_possible = if above {
        value(bad_fires) > threshold
    } else {
        value(bad_fires) < threshold
    };
    // Every event of the window bad, but one fewer in it than needed to judge.
    let few = min_events.saturating_sub(1) as u64;
    let sparse: Vec<String> = (0..=m).map(|t| (t * few / w).to_string()).collect();
    let zeros: Vec<&str> = (0..=m).map(|_| "0").collect();
    let sparse_series = series(sparse.join(" "), zeros.join(" "));
    let mut cases = Vec::new();
    if fires_possible {
        cases.push((
            String::new(),
            true,
            Case {
                series: steady(bad_fires),
                eval_minutes: m,
                fires: Some((labels.clone(), value(bad_fires))),
                silent_at: Vec::new(),
            },
        ));
    }
    cases.push((
        String::new(),
        false,
        Case {
            series: steady(bad_silent),
            eval_minutes: m,
            fires: None,
            silent_at: Vec::new(),
        },
    ));
    cases.push((
        format!(" with {few} {what} in {window}, fewer than {min_events}"),
        false,
        Case {
            series: sparse_series,
            eval_minutes: m,
            fires: None,
            silent_at: Vec::new(),
        },
    ));
    cases
}

/// Chats at a steady cost, then at many times it for the window and the `for`; and the steady cost throughout.
fn tokens_per_chat(
    spec: &ChatbotMonitoringSpec,
    sel: &str,
    labels: BTreeMap<String, String>,
) -> Vec<(String, bool, Case)> {
    let t = &spec.alerts.tokens_per_chat;
    let (w, b) = (minutes(&t.window), minutes(&t.baseline));
    let spike_minutes = w + minutes(&t.for_) + 5;
    let (f, l) = (t.factor, spike_minutes as f64);
    // Steady long enough before the spike that the baseline stays near the steady cost; counters that start at 0
    // inside the baseline window make its rate the average of what they counted (no extrapolation before a zero),
    // so a week of history is not needed.
    let steady_minutes = ((4.0 * f * l) as u64).max(240);
    let m = steady_minutes + spike_minutes;
    let chats: u64 = 10.max((2 * t.min_chats as u64).div_ceil(w));
    let steady = 100 * chats;
    // The baseline holds the spike too: over D minutes of it, of which L spike, the spike must cost k times the
    // steady with k (D - F L) > F (D - L), or it never clears F times the baseline.
    let d = m.min(b) as f64;
    let spike_factor = (d > f * l).then(|| ((2.0 * f * (d - l) / (d - f * l)).ceil().max(2.0 * f)) as u64);
    let series = |factor: Option<u64>| {
        let tokens = match factor {
            None => format!("0+{steady}x{m}"),
            Some(k) => format!(
                "0+{steady}x{steady_minutes} {}+{}x{}",
                steady * (steady_minutes + k),
                steady * k,
                spike_minutes - 1
            ),
        };
        vec![
            (
                format!(
                    "gen_ai_client_token_usage_sum{{{sel}, gen_ai_operation_name=\"chat\", gen_ai_provider_name=\"openai\", \
                     gen_ai_token_type=\"input\", gen_ai_request_model=\"gpt-4o-mini\", gen_ai_response_model=\"gpt-4o-mini\"}}"
                ),
                tokens,
            ),
            (
                format!("chat_requests_total{{{sel}, user_type=\"customer\", status=\"success\"}}"),
                format!("0+{chats}x{m}"),
            ),
        ]
    };
    let mut cases = Vec::new();
    if let Some(k) = spike_factor {
        cases.push((
            format!(" at {k} times the usual tokens per chat"),
            true,
            Case {
                series: series(Some(k)),
                eval_minutes: m,
                fires: Some((labels, (steady * k / chats) as f64)),
                silent_at: Vec::new(),
            },
        ));
    }
    cases.push((
        " at the usual tokens per chat".into(),
        false,
        Case {
            series: series(None),
            eval_minutes: m,
            fires: None,
            silent_at: Vec::new(),
        },
    ));
    cases
}
