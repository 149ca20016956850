//! An OpenAI-compatible chat-completions backend (OpenAI, Azure OpenAI, vLLM, Ollama, LiteLLM…).
//!
//! The model is asked for a JSON object `{intent, confidence, language, reply}` grounded on the knowledge base, so
//! that escalation stays the chatbot's decision whatever model answers.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use super::ModelAnswer;
use super::genai::{Completed, GenAi};
use super::knowledge::{KnowledgeBase, UNKNOWN_INTENT};
use super::prices::{Prices, Tokens};
use crate::chat::Language;
use crate::metrics::Metrics;

/// Label value of this backend in the model metrics.
pub const MODEL_LABEL: &str = "openai";

/// Settings of the OpenAI-compatible endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// Base URL up to and including the version, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub model: String,
    /// `gen_ai.provider.name`: `openai`, `azure.ai.openai`, or whatever serves the endpoint.
    pub provider_name: String,
    pub api_key: Option<String>,
    /// Deadline of one attempt.
    pub timeout: Duration,
    /// Further attempts after a timeout, a connection error, a 429 or a 5xx.
    pub max_retries: u32,
}

/// Why a call failed; `status_label` is the bounded `status` label of `ai_model_calls_total`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Transport(String),
    #[error("endpoint answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("unusable answer: {0}")]
    BadAnswer(String),
}

impl CallError {
    fn retryable(&self) -> bool {
        match self {
            CallError::Timeout(_) | CallError::Transport(_) => true,
            CallError::Status { status, .. } => *status == 429 || *status >= 500,
            CallError::BadAnswer(_) => false,
        }
    }

    pub fn status_label(&self) -> &'static str {
        match self {
            CallError::Timeout(_) => "timeout",
            _ => "error",
        }
    }

    /// `error.type` of the GenAI metrics: the HTTP status when the endpoint answered one, else what went wrong.
    pub fn error_type(&self) -> String {
        match self {
            CallError::Timeout(_) => "timeout".into(),
            CallError::Transport(_) => "connection_error".into(),
            CallError::Status { status, .. } => status.to_string(),
            CallError::BadAnswer(_) => "invalid_response".into(),
        }
    }
}

/// The OpenAI-compatible client.
pub struct OpenAi {
    config: OpenAiConfig,
    http: reqwest::Client,
    system_prompt: String,
    intents: Vec<String>,
    genai: GenAi,
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<Usage>,
}

/// The `usage` object of a completion. `cached_tokens` is reported by OpenAI and some compatible servers only.
#[derive(Deserialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Deserialize)]
struct PromptTokensDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl Usage {
    fn tokens(&self) -> Tokens {
        Tokens {
            input: self.prompt_tokens,
            cached_input: self
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            output: self.completion_tokens,
        }
    }
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
}

#[derive(Deserialize)]
struct StructuredAnswer {
    intent: String,
    confidence: f64,
    language: String,
    reply: String,
}

impl OpenAi {
    pub fn new(config: OpenAiConfig, kb: &KnowledgeBase, prices: Prices, metrics: Metrics) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("chatbot-sav/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(OpenAi {
            genai: GenAi::new(&config.provider_name, &config.model, prices, metrics),
            system_prompt: system_prompt(kb),
            intents: kb.intents.iter().map(|i| i.name.clone()).collect(),
            config,
            http,
        })
    }

    /// Asks the model, retrying transient failures with exponential backoff. Every attempt is measured.
    pub async fn answer(&self, message: &str, metrics: &Metrics) -> Result<ModelAnswer, CallError> {
        let mut attempt = 0;
        loop {
            let start = Instant::now();
            let completion = self.call_once(message).await;
            let result = completion
                .as_ref()
                .map_err(CallError::clone)
                .and_then(|c| self.content(c));
            let elapsed = start.elapsed();
            let completed = completion.as_ref().ok().map(|c| Completed {
                response_model: c.model.as_deref(),
                usage: c.usage.as_ref().map(Usage::tokens),
            });
            let error_type = result.as_ref().err().map(CallError::error_type);
            self.genai.record(elapsed, completed.as_ref(), error_type.as_deref());
            metrics
                .ai_model_call_duration_seconds
                .with_label_values(&[MODEL_LABEL])
                .observe(elapsed.as_secs_f64());
            let status = match &result {
                Ok(_) => "success",
                Err(e) => e.status_label(),
            };
            metrics
                .ai_model_calls_total
                .with_label_values(&[MODEL_LABEL, status])
                .inc();
            match result {
                Err(e) if e.retryable() && attempt < self.config.max_retries => {
                    tracing::warn!(error = %e, attempt, "model call failed, retrying");
                    tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// One request: the completion as the endpoint returned it.
    async fn call_once(&self, message: &str) -> Result<Completion, CallError> {
        let url = format!("{}/chat/completions", self.config.base_url.trim_end_matches('/'));
        let body = json!({
            "model": self.config.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": self.system_prompt},
                {"role": "user", "content": message},
            ],
        });
        let mut request = self.http.post(url).json(&body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        let send = async {
            let response = request.send().await.map_err(|e| CallError::Transport(e.to_string()))?;
            let status = response.status();
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                return Err(CallError::Status {
                    status: status.as_u16(),
                    body: body.chars().take(200).collect(),
                });
            }
            response
                .json::<Completion>()
                .await
                .map_err(|e| CallError::BadAnswer(format!("not a chat completion: {e}")))
        };
        tokio::time::timeout(self.config.timeout, send)
            .await
            .map_err(|_| CallError::Timeout(self.config.timeout))?
    }

    /// The structured answer in a completion's first message.
    fn content(&self, completion: &Completion) -> Result<ModelAnswer, CallError> {
        let content = completion
            .choices
            .first()
            .and_then(|c| c.message.content.as_deref())
            .ok_or_else(|| CallError::BadAnswer("no message content".into()))?;
        self.parse_answer(content)
    }

    /// Checks the model's JSON against the knowledge base: unknown intents and out-of-range values are refused.
    fn parse_answer(&self, content: &str) -> Result<ModelAnswer, CallError> {
        let a: StructuredAnswer = serde_json::from_str(content.trim())
            .map_err(|e| CallError::BadAnswer(format!("content is not the requested JSON: {e}")))?;
        if a.intent != UNKNOWN_INTENT && !self.intents.contains(&a.intent) {
            return Err(CallError::BadAnswer(format!("unknown intent {:?}", a.intent)));
        }
        if !(0.0..=1.0).contains(&a.confidence) {
            return Err(CallError::BadAnswer(format!(
                "confidence {} is outside 0..1",
                a.confidence
            )));
        }
        let language = Language::parse(&a.language)
            .ok_or_else(|| CallError::BadAnswer(format!("language {:?} is not fr or en", a.language)))?;
        Ok(ModelAnswer {
            intent: a.intent,
            confidence: a.confidence,
            reply: a.reply,
            // Escalation is decided by the caller from intent and confidence, like the builtin model's.
            escalate: false,
            language,
        })
    }
}

/// The instructions and the knowledge base the model answers from.
fn system_prompt(kb: &KnowledgeBase) -> String {
    let mut p = String::from(
        "You are the customer-support assistant of an online shop. Answer in the customer's language (French or \
         English), briefly and politely, using only the facts below. Reply with a JSON object and nothing else: \
         {\"intent\": one of the intent names below or \"unknown\", \"confidence\": a number from 0 to 1, \
         \"language\": \"fr\" or \"en\", \"reply\": your answer}. If the customer asks for a human, use the intent \
         human_request.\n\nIntents and reference answers:\n",
    );
    for i in &kb.intents {
        p.push_str(&format!("- {}: {}\n", i.name, i.answer(Language::En)));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> OpenAi {
        let config = OpenAiConfig {
            base_url: "http://127.0.0.1:9/v1".into(),
            model: "m".into(),
            provider_name: "openai".into(),
            api_key: None,
            timeout: Duration::from_secs(1),
            max_retries: 0,
        };
        OpenAi::new(config, &KnowledgeBase::builtin(), Prices::default(), Metrics::new()).unwrap()
    }

    #[test]
    fn accepts_a_well_formed_answer() {
        let a = client()
            .parse_answer(r#"{"intent":"refund","confidence":0.9,"language":"en","reply":"Soon."}"#)
            .unwrap();
        assert_eq!(
            (a.intent.as_str(), a.language, a.reply.as_str()),
            ("refund", Language::En, "Soon.")
        );
    }

    #[test]
    fn refuses_answers_outside_the_contract() {
        let c = client();
        for bad in [
            "plain text",
            r#"{"intent":"poetry","confidence":0.9,"language":"en","reply":"x"}"#,
            r#"{"intent":"refund","confidence":7,"language":"en","reply":"x"}"#,
            r#"{"intent":"refund","confidence":0.9,"language":"de","reply":"x"}"#,
        ] {
            assert!(matches!(c.parse_answer(bad), Err(CallError::BadAnswer(_))), "{bad}");
        }
    }
}
