//! The shipped Grafana dashboards as Grafana and the monitoring guide expect them: current JSON, the guide's panels
//! grouped in its rows, units everywhere, and every query scoped by the namespace and chatbot variables.

use chatbot_operator::render::DASHBOARDS;
use serde_json::Value;

fn dashboards() -> Vec<(&'static str, Value)> {
    DASHBOARDS
        .iter()
        .map(|(id, text)| (*id, serde_json::from_str(text).unwrap()))
        .collect()
}

fn panels(d: &Value) -> Vec<&Value> {
    d["panels"].as_array().unwrap().iter().collect()
}

#[test]
fn current_grafana_json_with_variables() {
    for (id, d) in dashboards() {
        // Grafana's current dashboard schemaVersion, as in tests/charts/test_dashboards.py (which says why).
        assert_eq!(d["schemaVersion"].as_i64(), Some(42), "{id}");
        assert!(d["uid"].as_str().unwrap().len() <= 40, "{id}");
        let vars = d["templating"]["list"].as_array().unwrap();
        let var = |n: &str| {
            vars.iter()
                .find(|v| v["name"] == n)
                .unwrap_or_else(|| panic!("{id}: no ${n}"))
        };
        assert_eq!(
            (var("datasource")["type"].as_str(), var("datasource")["query"].as_str()),
            (Some("datasource"), Some("prometheus"))
        );
        assert!(var("namespace")["query"].as_str().unwrap().contains("namespace"));
        assert!(
            var("job")["query"]
                .as_str()
                .unwrap()
                .contains("namespace=\"$namespace\"")
        );
    }
}

#[test]
fn panels_have_units_datasource_and_scoped_queries() {
    for (id, d) in dashboards() {
        for p in panels(&d) {
            let kind = p["type"].as_str().unwrap();
            assert!(
                ["timeseries", "stat", "gauge", "table", "row"].contains(&kind),
                "{id}: {kind} panel"
            );
            if kind == "row" {
                continue;
            }
            let title = p["title"].as_str().unwrap();
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
            assert!(
                p["fieldConfig"]["defaults"]["unit"]
                    .as_str()
                    .is_some_and(|u| !u.is_empty()),
                "{title}: no unit"
            );
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{title}");
            for t in targets {
                let expr = t["expr"].as_str().unwrap();
                assert!(
                    expr.contains("namespace=\"$namespace\"") && expr.contains("job=\"$job\""),
                    "{title}: {expr}"
                );
                // Rate windows follow the scrape interval, except totals over the dashboard's range, and the
                // objectives' own windows: 30 days for a budget, the burn-rate alerts' 1h and 6h.
                let objective = title.contains("budget remaining") || title.starts_with("Burn rates");
                for window in expr.split('[').skip(1).map(|w| w.split(']').next().unwrap()) {
                    assert!(
                        window == "$__rate_interval"
                            || window == "$__range"
                            || (objective && ["30d", "1h", "6h"].contains(&window)),
                        "{title}: window [{window}]"
                    );
                }
            }
        }
    }
}

#[test]
fn the_guides_panels_grouped_in_its_rows() {
    let (_, d) = dashboards().into_iter().find(|(id, _)| *id == "overview").unwrap();
    let rows: Vec<&str> = panels(&d)
        .iter()
        .filter(|p| p["type"] == "row")
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        rows,
        [
            "HTTP",
            "System",
            "Business (chatbot)",
            "Database",
            "Model (tokens and spend)",
            "Customers (ratings and outcomes)",
            "Service-level objectives & alerts"
        ]
    );
    let titles: Vec<String> = panels(&d)
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_lowercase())
        .collect();
    for wanted in [
        "requests per minute",
        "response time per endpoint",
        "status code",
        "cpu",
        "memory",
        "active requests",
        "chat requests per user type",
        "chat response time",
        "ai model calls",
        "database connections",
        "query time",
        "error ratio",
        "availability budget remaining",
        "latency budget remaining",
        "burn rates",
        "alerts",
        // Issue 25: what the model costs and how customers rate it.
        "tokens per second by type",
        "spend per hour",
        "spend per conversation",
        "fallback share",
        "model latency by model",
        "conversation outcomes",
        "containment",
        "satisfaction",
        "escalations per hour by intent",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(wanted)),
            "no panel for {wanted:?} in {titles:?}"
        );
    }
}

#[test]
fn panels_do_not_overlap() {
    for (id, d) in dashboards() {
        let boxes: Vec<(i64, i64, i64, i64, &str)> = panels(&d)
            .iter()
            .map(|p| {
                let g = &p["gridPos"];
                (
                    g["x"].as_i64().unwrap(),
                    g["y"].as_i64().unwrap(),
                    g["w"].as_i64().unwrap(),
                    g["h"].as_i64().unwrap(),
                    p["title"].as_str().unwrap(),
                )
            })
            .collect();
        for (i, a) in boxes.iter().enumerate() {
            assert!(a.0 + a.2 <= 24, "{id}: {} wider than the grid", a.4);
            for b in &boxes[i + 1..] {
                let overlap = a.0 < b.0 + b.2 && b.0 < a.0 + a.2 && a.1 < b.1 + b.3 && b.1 < a.1 + a.3;
                assert!(!overlap, "{id}: {} overlaps {}", a.4, b.4);
            }
        }
    }
}

/// The SLO panels show the resource's own objectives: their thresholds, budgets and titles.
#[test]
fn slo_panels_follow_the_resources_objectives() {
    use chatbot_operator::crd::ChatbotMonitoring;
    use chatbot_operator::render::{RenderOptions, render};
    let rendered = |slo: serde_json::Value| -> Value {
        let cbm: ChatbotMonitoring = serde_json::from_value(serde_json::json!({
            "apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
            "metadata": {"name": "bot", "namespace": "shop"}, "spec": {"alerts": slo},
        }))
        .unwrap();
        let desired = render(&cbm, &RenderOptions::default()).unwrap();
        let data = desired.dashboards[0].data.as_ref().unwrap();
        serde_json::from_str(data.values().next().unwrap()).expect("the rendered dashboard is valid JSON")
    };
    let panel = |d: &Value, prefix: &str| -> Value {
        panels(d)
            .into_iter()
            .find(|p| p["title"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("no panel {prefix}"))
            .clone()
    };
    for (slo, percent, ratio, budget) in [
        (serde_json::json!({}), "99.9", 0.999, "0.001"),
        (
            serde_json::json!({"slo": {"availabilityTarget": 99.5}}),
            "99.5",
            0.995,
            "0.005",
        ),
        (
            serde_json::json!({"slo": {"availabilityTarget": 99.95}}),
            "99.95",
            0.9995,
            "0.0005",
        ),
    ] {
        let d = rendered(slo);
        let availability = panel(&d, "Availability");
        let steps = availability["fieldConfig"]["defaults"]["thresholds"]["steps"]
            .as_array()
            .unwrap();
        assert_eq!(steps.last().unwrap()["value"].as_f64(), Some(ratio), "{percent}");
        assert!(
            availability["description"]
                .as_str()
                .unwrap()
                .contains(&format!("{percent} %"))
        );
        let remaining = panel(&d, "Availability budget remaining");
        assert_eq!(
            remaining["title"].as_str().unwrap(),
            format!("Availability budget remaining ({percent} %, 30 days)")
        );
        let expr = remaining["targets"][0]["expr"].as_str().unwrap();
        assert!(expr.ends_with(&format!("/ (1 - {ratio}))")), "{expr}");
        assert!(
            remaining["description"]
                .as_str()
                .unwrap()
                .contains(&format!("/ {budget} ("))
        );
    }
    // The latency objective: 99 % within 2 s unless the resource sets one; its `le` matcher and budget follow.
    for (slo, title, le, budget) in [
        (serde_json::json!({}), "99 % within 2 s", "le=~\"2|2.0\"", "/ 0.01)"),
        (
            serde_json::json!({"slo": {"latency": {"target": 95, "threshold": 0.5}}}),
            "95 % within 0.5 s",
            "le=\"0.5\"",
            "/ 0.05)",
        ),
    ] {
        let d = rendered(slo);
        let remaining = panel(&d, "Latency budget remaining");
        assert_eq!(
            remaining["title"].as_str().unwrap(),
            format!("Latency budget remaining ({title}, 30 days)")
        );
        let burn = panel(&d, "Burn rates");
        for expr in std::iter::once(&remaining["targets"][0]).chain(&burn["targets"].as_array().unwrap()[2..]) {
            let expr = expr["expr"].as_str().unwrap();
            assert!(expr.contains(le) && expr.ends_with(budget), "{title}: {expr}");
        }
        assert!(burn["description"].as_str().unwrap().contains(title));
    }
}
