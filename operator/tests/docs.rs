//! The resource's status is its public API: every reason the conditions about monitoring can carry is documented in
//! docs/not-monitored.md under its condition, and the document names no reason the operator does not give.

use std::collections::BTreeSet;

use chatbot_operator::status::reason::OF_MONITORING;

fn document() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/not-monitored.md");
    std::fs::read_to_string(path).expect("docs/not-monitored.md")
}

/// The reasons in the tables of the section about `condition`: the first cell of each row.
fn documented(doc: &str, condition: &str) -> BTreeSet<String> {
    let heading = format!("## `{condition}`");
    let section = doc
        .split("\n## ")
        .map(|s| format!("## {s}"))
        .find(|s| s.starts_with(&heading))
        .unwrap_or_else(|| panic!("no section {heading}"));
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(reason, _)| reason.to_owned()))
        .collect()
}

#[test]
fn every_reason_is_documented_under_its_condition_and_nothing_else_is() {
    let doc = document();
    for (condition, reasons) in OF_MONITORING {
        let documented = documented(&doc, condition);
        // PrometheusUnavailable is told once, under the first check that asks Prometheus.
        let expected: BTreeSet<String> = reasons
            .iter()
            .filter(|r| **r != "PrometheusUnavailable" || *condition == "Scraped")
            .map(|r| r.to_string())
            .collect();
        assert_eq!(documented, expected, "reasons of {condition} in docs/not-monitored.md");
    }
}
