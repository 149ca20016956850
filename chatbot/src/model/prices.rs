//! The price table that turns token counts into an estimated spend: per model, the price of a million input, cached
//! input and output tokens, in a currency. There are no built-in prices: a model absent from the table is unpriced,
//! and its tokens are counted as such, never as free.
//!
//! The table is a YAML file (`--prices-file`, from a ConfigMap or Secret the resource names), read at start (a bad
//! file stops the chatbot with the field at fault) and read again when it changes (a bad change is refused and the
//! previous table kept), so that a new price needs no restart and the spend counters keep their history.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Deserialize;

use crate::metrics::Metrics;

/// Prices of one model, per million tokens.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModelPrice {
    /// ISO 4217 code, e.g. `EUR`: the `currency` label of the spend counter.
    pub currency: String,
    pub input: f64,
    /// Input tokens the endpoint served from its prompt cache; the input price when absent.
    #[serde(default)]
    pub cached_input: Option<f64>,
    pub output: f64,
}

/// The whole table, keyed by model name.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    pub models: BTreeMap<String, ModelPrice>,
}

/// Tokens of one completion, as its `usage` reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    /// Every input token, cached ones included (OpenAI's `prompt_tokens`).
    pub input: u64,
    /// The part of `input` served from the prompt cache.
    pub cached_input: u64,
    pub output: u64,
}

/// What a completion cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Cost<'a> {
    pub amount: f64,
    pub currency: &'a str,
}

impl PriceTable {
    /// Parses and checks a table; the error names the field at fault.
    pub fn from_yaml(text: &str) -> Result<PriceTable, String> {
        let de = serde_yaml::Deserializer::from_str(text);
        let table: PriceTable = serde_path_to_error::deserialize(de).map_err(|e| match e.path().to_string() {
            path if path == "." => e.inner().to_string(),
            path => format!("{path}: {}", e.inner()),
        })?;
        for (name, price) in &table.models {
            if name.trim().is_empty() {
                return Err("models: a model name is empty".into());
            }
            let c = &price.currency;
            if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(format!(
                    "models.{name}.currency: {c:?} is not an ISO 4217 code (three capital letters, e.g. EUR)"
                ));
            }
            let fields = [
                ("input", Some(price.input)),
                ("cachedInput", price.cached_input),
                ("output", Some(price.output)),
            ];
            for (field, value) in fields {
                if let Some(v) = value.filter(|v| !v.is_finite() || *v < 0.0) {
                    return Err(format!(
                        "models.{name}.{field}: {v} is not a price (a number of at least 0, per million tokens)"
                    ));
                }
            }
        }
        Ok(table)
    }

    /// The price of the first of `models` the table has: the response model (a dated snapshot) before the
    /// requested one, so that a table can price a snapshot apart from its alias.
    pub fn price<'a>(&'a self, models: &[&str]) -> Option<&'a ModelPrice> {
        models.iter().find_map(|m| self.models.get(*m))
    }
}

impl ModelPrice {
    pub fn cost(&self, tokens: Tokens) -> Cost<'_> {
        let cached = tokens.cached_input.min(tokens.input);
        let per_token = |price: f64| price / 1_000_000.0;
        let amount = (tokens.input - cached) as f64 * per_token(self.input)
            + cached as f64 * per_token(self.cached_input.unwrap_or(self.input))
            + tokens.output as f64 * per_token(self.output);
        Cost {
            amount,
            currency: &self.currency,
        }
    }
}

/// The table in use, shared by the model client and the reloader.
#[derive(Debug, Clone, Default)]
pub struct Prices(Arc<RwLock<Arc<PriceTable>>>);

impl Prices {
    pub fn new(table: PriceTable) -> Prices {
        Prices(Arc::new(RwLock::new(Arc::new(table))))
    }

    pub fn current(&self) -> Arc<PriceTable> {
        self.0.read().unwrap().clone()
    }

    pub fn replace(&self, table: PriceTable) {
        *self.0.write().unwrap() = Arc::new(table);
    }
}

/// Reads the table at start: a missing or invalid file is an error with the path and the field.
pub fn load(path: &std::path::Path) -> anyhow::Result<(PriceTable, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("reading the price table {}: {e}", path.display()))?;
    let table = parse(&bytes).map_err(|e| anyhow::anyhow!("the price table {}: {e}", path.display()))?;
    Ok((table, bytes))
}

/// A table from a file's bytes.
fn parse(bytes: &[u8]) -> Result<PriceTable, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    PriceTable::from_yaml(text)
}

/// Reads the file again every `every` and swaps the table when its content changed and is valid. Kubernetes
/// updates a mounted ConfigMap or Secret by swapping a symlink, so the content is compared, not the mtime.
pub async fn reload_forever(path: PathBuf, prices: Prices, mut seen: Vec<u8>, metrics: Metrics, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let bytes = match std::fs::read(&path) {
            Ok(bytes) if bytes == seen => continue,
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the price table; keeping the previous one");
                metrics.prices_reloaded(false);
                continue;
            }
        };
        match parse(&bytes) {
            Ok(table) => {
                tracing::info!(path = %path.display(), models = table.models.len(), "price table reloaded");
                prices.replace(table);
                metrics.prices_reloaded(true);
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "price table refused; keeping the previous one");
                metrics.prices_reloaded(false);
            }
        }
        seen = bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "models:\n  gpt-4o-mini:\n    currency: USD\n    input: 0.15\n    cachedInput: 0.075\n    \
                         output: 0.6\n  mistral-small:\n    currency: EUR\n    input: 0.1\n    output: 0.3\n";

    #[test]
    fn costs_count_cached_input_at_its_own_price() {
        let table = PriceTable::from_yaml(TABLE).unwrap();
        let price = table.price(&["gpt-4o-mini-2024-07-18", "gpt-4o-mini"]).unwrap();
        let cost = price.cost(Tokens {
            input: 1_000_000,
            cached_input: 400_000,
            output: 100_000,
        });
        assert_eq!(cost.currency, "USD");
        // 600k × 0.15 + 400k × 0.075 + 100k × 0.6, per million.
        assert!((cost.amount - (0.09 + 0.03 + 0.06)).abs() < 1e-12, "{}", cost.amount);
        // Without a cached price, cached tokens cost the input price: never an underestimate.
        let eur = table.price(&["mistral-small"]).unwrap().cost(Tokens {
            input: 2_000_000,
            cached_input: 2_000_000,
            output: 0,
        });
        assert!((eur.amount - 0.2).abs() < 1e-12);
        assert_eq!(table.price(&["gpt-5"]), None, "no built-in prices");
    }

    #[test]
    fn a_snapshot_is_priced_before_its_alias() {
        let table = PriceTable::from_yaml(&format!(
            "{TABLE}  gpt-4o-mini-2024-07-18:\n    currency: USD\n    input: 1\n    output: 1\n"
        ))
        .unwrap();
        assert_eq!(
            table.price(&["gpt-4o-mini-2024-07-18", "gpt-4o-mini"]).unwrap().input,
            1.0
        );
    }

    #[test]
    fn bad_tables_name_the_field() {
        for (yaml, expected) in [
            (
                "models:\n  m:\n    currency: euro\n    input: 1\n    output: 1\n",
                "models.m.currency",
            ),
            (
                "models:\n  m:\n    currency: EUR\n    input: -1\n    output: 1\n",
                "models.m.input",
            ),
            (
                "models:\n  m:\n    currency: EUR\n    input: 1\n    output: .nan\n",
                "models.m.output",
            ),
            (
                "models:\n  m:\n    currency: EUR\n    input: 1\n",
                "models.m: missing field `output`",
            ),
            (
                "models:\n  m:\n    currency: EUR\n    input: 1\n    output: 1\n    outptu: 2\n",
                "models.m: unknown field",
            ),
            ("model: {}\n", "unknown field `model`"),
            (
                "models:\n  m:\n    currency: EUR\n    input: one\n    output: 1\n",
                "models.m.input",
            ),
        ] {
            let err = PriceTable::from_yaml(yaml).unwrap_err();
            assert!(err.contains(expected), "{yaml}: {err}");
        }
    }
}
