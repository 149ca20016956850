//! A counter over a fixed cross product of three labels' values, every series present from the start: atomics in a
//! table, written straight to the text format.
//!
//! `chat_feedback_total` and `chat_conversations_total` have a series for every user type, intent and rating or
//! outcome (about 250), so that `rate()` sees the first increment of each. Through the prometheus crate's registry
//! every scrape cloned every label of every one of them into its protobuf structures first: they alone doubled the
//! time to render `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct CounterTable {
    name: &'static str,
    help: &'static str,
    labels: [&'static str; 3],
    /// Each label's values, as counted.
    values: [Vec<String>; 3],
    /// The same, escaped for the text format once.
    escaped: [Vec<String>; 3],
    counts: Vec<AtomicU64>,
}

impl CounterTable {
    pub fn new(name: &'static str, help: &'static str, labels: [&'static str; 3], values: [Vec<String>; 3]) -> Self {
        let size = values.iter().map(Vec::len).product();
        CounterTable {
            name,
            help,
            labels,
            escaped: values.clone().map(|v| v.iter().map(|s| escape(s)).collect()),
            values,
            counts: (0..size).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Adds one to the series of these label values; `false` (and nothing counted) for a value not in the table.
    pub fn inc(&self, values: [&str; 3]) -> bool {
        let mut index = 0;
        for (known, value) in self.values.iter().zip(values) {
            let Some(i) = known.iter().position(|k| k == value) else {
                return false;
            };
            index = index * known.len() + i;
        }
        self.counts[index].fetch_add(1, Ordering::Relaxed);
        true
    }

    /// The family in the Prometheus text format.
    pub fn encode(&self, out: &mut String) {
        let [a, b, c] = &self.escaped;
        let [la, lb, lc] = self.labels;
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} counter", self.name);
        let mut counts = self.counts.iter();
        for va in a {
            for vb in b {
                for vc in c {
                    let n = counts.next().map_or(0, |n| n.load(Ordering::Relaxed));
                    let _ = writeln!(out, "{}{{{la}=\"{va}\",{lb}=\"{vb}\",{lc}=\"{vc}\"}} {n}", self.name);
                }
            }
        }
    }
}

/// A label value as the text format writes it between quotes.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_written_and_counts_where_its_values_say() {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        let t = CounterTable::new(
            "t_total",
            "Help.",
            ["a", "b", "c"],
            [owned(&["x", "y"]), owned(&["odd \"one\""]), owned(&["1", "2", "3"])],
        );
        assert!(t.inc(["y", "odd \"one\"", "2"]));
        assert!(t.inc(["y", "odd \"one\"", "2"]));
        assert!(!t.inc(["z", "odd \"one\"", "2"]), "a value outside the table");
        let mut out = String::new();
        t.encode(&mut out);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2 + 6);
        assert_eq!(lines[1], "# TYPE t_total counter");
        assert!(lines.contains(&r#"t_total{a="y",b="odd \"one\"",c="2"} 2"#), "{out}");
        assert!(lines.contains(&r#"t_total{a="x",b="odd \"one\"",c="3"} 0"#), "{out}");
    }
}
