//! What a remote model call costs, in the OpenTelemetry GenAI semantic conventions' client metrics
//! (`gen_ai.client.token.usage`, `gen_ai.client.operation.duration`) under the names, labels and bucket bounds that
//! Prometheus' OTLP translation gives them, so that a dashboard reads the same series whether the chatbot is scraped
//! or pushes OTLP; and the estimated spend from the [price table](super::prices).
//!
//! Only a backend that reports usage records here: the builtin model has no tokens and no spend, and invents none.

use std::sync::Mutex;
use std::time::Duration;

use super::prices::{Prices, Tokens};
use crate::metrics::Metrics;

/// `gen_ai.operation.name` of a chat completion.
pub const OPERATION_CHAT: &str = "chat";

/// Response models kept as label values; the endpoint chooses them, so any further one is [`OTHER`].
const MAX_RESPONSE_MODELS: usize = 8;
/// The conventions' value for a label value outside the known set.
pub const OTHER: &str = "_OTHER";

/// What one attempt returned, when it returned a completion at all.
#[derive(Debug, Clone, Default)]
pub struct Completed<'a> {
    /// The `model` field of the answer (often a dated snapshot of the requested model).
    pub response_model: Option<&'a str>,
    /// `None` when the answer had no `usage` object: counted as missing, never as zero tokens.
    pub usage: Option<Tokens>,
}

/// Records the GenAI metrics of one configured remote model.
pub struct GenAi {
    provider: String,
    request_model: String,
    response_models: Mutex<Vec<String>>,
    prices: Prices,
    metrics: Metrics,
}

impl GenAi {
    /// The series whose labels are known from the configuration exist from the start, at 0.
    pub fn new(provider: &str, request_model: &str, prices: Prices, metrics: Metrics) -> GenAi {
        let (p, r) = (provider, request_model);
        metrics
            .gen_ai_client_operation_duration_seconds
            .with_label_values(&[OPERATION_CHAT, p, r, "", ""]);
        for token_type in ["input", "output"] {
            metrics
                .gen_ai_client_token_usage
                .with_label_values(&[OPERATION_CHAT, p, token_type, r, ""]);
            metrics
                .ai_model_unpriced_tokens_total
                .with_label_values(&[p, r, token_type]);
        }
        metrics.ai_model_usage_missing_total.with_label_values(&[p, r]);
        if let Some(price) = prices.current().price(&[r]) {
            metrics
                .ai_model_estimated_cost_total
                .with_label_values(&[p, r, &price.currency]);
        }
        GenAi {
            provider: provider.to_owned(),
            request_model: request_model.to_owned(),
            response_models: Mutex::default(),
            prices,
            metrics,
        }
    }

    /// Records one attempt: its duration (with `error_type` when it failed), and for a completion its tokens and
    /// spend, or that it reported no usage. Tokens are counted even when the content is then refused: they were
    /// billed all the same.
    pub fn record(&self, duration: Duration, completed: Option<&Completed>, error_type: Option<&str>) {
        let (p, r) = (self.provider.as_str(), self.request_model.as_str());
        let response_model = completed
            .and_then(|c| c.response_model)
            .map(|m| self.response_model_label(m))
            .unwrap_or_default();
        let m = &self.metrics;
        m.gen_ai_client_operation_duration_seconds
            .with_label_values(&[OPERATION_CHAT, p, r, &response_model, error_type.unwrap_or("")])
            .observe(duration.as_secs_f64());
        let Some(completed) = completed else { return };
        let Some(tokens) = completed.usage else {
            m.ai_model_usage_missing_total.with_label_values(&[p, r]).inc();
            return;
        };
        for (token_type, n) in [("input", tokens.input), ("output", tokens.output)] {
            m.gen_ai_client_token_usage
                .with_label_values(&[OPERATION_CHAT, p, token_type, r, &response_model])
                .observe(n as f64);
        }
        let table = self.prices.current();
        let models: Vec<&str> = completed.response_model.into_iter().chain([r]).collect();
        match table.price(&models) {
            Some(price) => {
                let cost = price.cost(tokens);
                m.ai_model_estimated_cost_total
                    .with_label_values(&[p, r, cost.currency])
                    .inc_by(cost.amount);
            }
            None => {
                for (token_type, n) in [("input", tokens.input), ("output", tokens.output)] {
                    m.ai_model_unpriced_tokens_total
                        .with_label_values(&[p, r, token_type])
                        .inc_by(n);
                }
            }
        }
    }

    /// The response model as a label value: the first few distinct well-formed names, then [`OTHER`].
    fn response_model_label(&self, model: &str) -> String {
        let well_formed = !model.is_empty()
            && model.len() <= 128
            && model
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-:/@+".contains(&b));
        if !well_formed {
            return OTHER.to_owned();
        }
        let mut known = self.response_models.lock().unwrap();
        if known.iter().any(|k| k == model) {
            return model.to_owned();
        }
        if known.len() < MAX_RESPONSE_MODELS {
            known.push(model.to_owned());
            return model.to_owned();
        }
        OTHER.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::prices::PriceTable;

    fn genai(table: &str) -> (GenAi, Metrics) {
        let metrics = Metrics::new();
        let prices = Prices::new(PriceTable::from_yaml(table).unwrap());
        (GenAi::new("openai", "m", prices, metrics.clone()), metrics)
    }

    #[test]
    fn response_models_are_bounded() {
        let (g, _) = genai("models: {}");
        for i in 0..MAX_RESPONSE_MODELS {
            assert_eq!(g.response_model_label(&format!("m-{i}")), format!("m-{i}"));
        }
        assert_eq!(g.response_model_label("m-0"), "m-0", "a known one stays");
        assert_eq!(g.response_model_label("one-too-many"), OTHER);
        assert_eq!(g.response_model_label("bad name\n"), OTHER);
        assert_eq!(g.response_model_label(&"x".repeat(129)), OTHER);
    }

    #[test]
    fn unpriced_tokens_are_not_free() {
        let (g, m) = genai("models: {}");
        let usage = Tokens {
            input: 100,
            cached_input: 0,
            output: 7,
        };
        let completed = Completed {
            response_model: Some("m-2026"),
            usage: Some(usage),
        };
        g.record(Duration::from_millis(300), Some(&completed), None);
        let unpriced = |t: &str| {
            m.ai_model_unpriced_tokens_total
                .with_label_values(&["openai", "m", t])
                .get()
        };
        assert_eq!((unpriced("input"), unpriced("output")), (100, 7));
        g.record(
            Duration::from_millis(300),
            Some(&Completed::default()),
            Some("invalid_response"),
        );
        assert_eq!(
            m.ai_model_usage_missing_total.with_label_values(&["openai", "m"]).get(),
            1
        );
        assert_eq!(unpriced("input"), 100, "a missing usage adds no tokens");
    }
}
