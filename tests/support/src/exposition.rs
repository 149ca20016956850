//! Parses the Prometheus text exposition format into series keyed as `name{label="value",…}` with labels sorted,
//! so a test can look a series up exactly.

use std::collections::BTreeMap;

/// Every sample of one scrape, plus the `# TYPE` of each metric family.
#[derive(Debug, Default, Clone)]
pub struct Exposition {
    pub samples: BTreeMap<String, f64>,
    pub types: BTreeMap<String, String>,
}

impl Exposition {
    /// Parses a scrape; panics on a malformed line, since a test should fail on one.
    pub fn parse(text: &str) -> Exposition {
        let mut e = Exposition::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE line has a name and a type");
                e.types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = split_sample(line);
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                "NaN" => f64::NAN,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            e.samples.insert(canonical(series), value);
        }
        e
    }

    /// The value of one series, e.g. `get("http_requests_total", &[("endpoint", "/chat"), ("status", "200")])`.
    /// Every label of the series must be given.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples.get(&key(name, labels)).copied()
    }

    /// The value, or 0 when the series does not exist (a counter never incremented).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// All series of a metric name.
    pub fn series(&self, name: &str) -> Vec<(&str, f64)> {
        let prefix_plain = name.to_owned();
        let prefix_labels = format!("{name}{{");
        self.samples
            .iter()
            .filter(|(k, _)| **k == prefix_plain || k.starts_with(&prefix_labels))
            .map(|(k, v)| (k.as_str(), *v))
            .collect()
    }

    /// Names of the metric families present (from `# TYPE` lines).
    pub fn families(&self) -> Vec<&str> {
        self.types.keys().map(String::as_str).collect()
    }
}

/// The canonical key of a series.
pub fn key(name: &str, labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return name.to_owned();
    }
    let mut labels: Vec<_> = labels.to_vec();
    labels.sort();
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

fn split_sample(line: &str) -> (&str, &str) {
    // Label values may contain spaces: the value starts after the closing brace when there is one.
    let end = line
        .rfind('}')
        .map(|i| i + 1)
        .unwrap_or_else(|| line.find(' ').expect("sample has a value"));
    let (series, rest) = line.split_at(end);
    let value = rest.split_whitespace().next().expect("sample has a value");
    (series.trim(), value)
}

fn canonical(series: &str) -> String {
    let Some(open) = series.find('{') else {
        return series.to_owned();
    };
    let name = &series[..open];
    let body = &series[open + 1..series.len() - 1];
    let mut labels = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let eq = rest.find("=\"").expect("label has a value");
        let label = rest[..eq].trim_start_matches(',').trim();
        let mut value = String::new();
        let mut chars = rest[eq + 2..].char_indices();
        let mut consumed = 0;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(match n {
                            'n' => '\n',
                            other => other,
                        });
                    }
                }
                '"' => {
                    consumed = eq + 2 + i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.push((label.to_owned(), value));
        rest = rest[consumed..].trim_start_matches(',');
    }
    labels.sort();
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_in_any_order_and_values() {
        let e = Exposition::parse("# TYPE x counter\nx{b=\"2\",a=\"1 1\"} 3\ny 4.5\nz{a=\"q\\\"\"} +Inf\n");
        assert_eq!(e.get("x", &[("a", "1 1"), ("b", "2")]), Some(3.0));
        assert_eq!(e.get("y", &[]), Some(4.5));
        assert_eq!(e.get("z", &[("a", "q\"")]), Some(f64::INFINITY));
        assert_eq!(e.families(), ["x"]);
        assert_eq!(e.series("x").len(), 1);
    }
}
