//! The pluggable "AI model": which backend answers, the answer cache in front of it, and the fallback to the
//! builtin model when the configured one fails. Every call is measured here, once.

pub mod builtin;
pub mod genai;
pub mod knowledge;
pub mod openai;
pub mod prices;

use std::sync::Arc;
use std::time::Instant;

use quick_cache::sync::Cache;

use crate::chat::Language;
use crate::metrics::Metrics;
use builtin::Builtin;
use knowledge::{KnowledgeBase, tokenize};
use openai::OpenAi;

/// Longest normalised message kept in the answer cache: bounds the keys at about capacity × 256 bytes.
const MAX_CACHED_KEY_BYTES: usize = 256;

/// Label value of the builtin backend in the model metrics.
pub const BUILTIN_LABEL: &str = "builtin";

/// What a backend answered to one message.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelAnswer {
    pub intent: String,
    pub confidence: f64,
    /// Empty when the bot has nothing it is sure of to say; the escalation text is added by the caller.
    pub reply: String,
    pub escalate: bool,
    pub language: Language,
}

/// An answer with the backend that produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answered {
    pub answer: ModelAnswer,
    pub model: &'static str,
}

/// Which backend the chatbot asks first.
pub enum Backend {
    Builtin,
    OpenAi(Box<OpenAi>),
}

/// The model facade used by the chat handler.
pub struct Model {
    kb: Arc<KnowledgeBase>,
    builtin: Builtin,
    backend: Backend,
    /// Keyed by the normalised message: "Où est ma commande ?" and "ou est ma commande" share an entry.
    cache: Option<Cache<String, Arc<Answered>>>,
    metrics: Metrics,
}

impl Model {
    /// `cache_capacity` 0 disables the answer cache.
    pub fn new(kb: Arc<KnowledgeBase>, backend: Backend, cache_capacity: usize, metrics: Metrics) -> Self {
        // The series of the configured backends exist from the start at 0 (see Metrics::new).
        let mut labels = vec![BUILTIN_LABEL];
        if matches!(backend, Backend::OpenAi(_)) {
            labels.push(openai::MODEL_LABEL);
        }
        // Zero fallbacks is true of the builtin backend too, and keeps the fallback panel and alert answering.
        metrics
            .ai_model_fallbacks_total
            .with_label_values(&[openai::MODEL_LABEL]);
        for model in labels {
            for status in ["success", "error", "timeout"] {
                metrics.ai_model_calls_total.with_label_values(&[model, status]);
            }
            metrics.ai_model_call_duration_seconds.with_label_values(&[model]);
        }
        Model {
            builtin: Builtin::new(kb.clone()),
            kb,
            backend,
            cache: (cache_capacity > 0).then(|| Cache::new(cache_capacity)),
            metrics,
        }
    }

    pub fn knowledge(&self) -> &KnowledgeBase {
        &self.kb
    }

    /// Answers a message. Never fails: a failing remote model falls back to the builtin one, and that is counted.
    pub async fn answer(&self, message: &str) -> Arc<Answered> {
        let key = tokenize(message).join(" ");
        // Frequent questions are short; a long message is almost surely unique and would only fill the cache.
        let cache = self.cache.as_ref().filter(|_| key.len() <= MAX_CACHED_KEY_BYTES);
        if let Some(cache) = cache {
            if let Some(hit) = cache.get(&key) {
                self.metrics.cache_hits_total.inc();
                return hit;
            }
            self.metrics.cache_misses_total.inc();
        }
        let answered = match &self.backend {
            Backend::Builtin => Arc::new(self.ask_builtin(message)),
            Backend::OpenAi(client) => match client.answer(message, &self.metrics).await {
                Ok(answer) => Arc::new(Answered {
                    answer: self.decide_escalation(answer),
                    model: openai::MODEL_LABEL,
                }),
                Err(error) => {
                    tracing::warn!(%error, "model failed, answering with the builtin model");
                    self.metrics
                        .ai_model_fallbacks_total
                        .with_label_values(&[openai::MODEL_LABEL])
                        .inc();
                    // Not cached: the next message should try the configured model again.
                    return Arc::new(self.ask_builtin(message));
                }
            },
        };
        if let Some(cache) = cache {
            cache.insert(key, answered.clone());
        }
        answered
    }

    fn ask_builtin(&self, message: &str) -> Answered {
        let start = Instant::now();
        let answer = self.builtin.answer(message);
        self.metrics
            .ai_model_call_duration_seconds
            .with_label_values(&[BUILTIN_LABEL])
            .observe(start.elapsed().as_secs_f64());
        self.metrics
            .ai_model_calls_total
            .with_label_values(&[BUILTIN_LABEL, "success"])
            .inc();
        Answered {
            answer,
            model: BUILTIN_LABEL,
        }
    }

    /// Applies the knowledge base's escalation policy to a remote model's answer.
    fn decide_escalation(&self, mut answer: ModelAnswer) -> ModelAnswer {
        let requested = self.kb.intent(&answer.intent).is_some_and(|i| i.escalate);
        let unsure = answer.intent == knowledge::UNKNOWN_INTENT || answer.confidence < self.kb.escalation_threshold;
        if unsure && !requested {
            answer.reply.clear();
        }
        answer.escalate = requested || unsure;
        answer
    }
}
