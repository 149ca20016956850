//! Command-line flags and their environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelBackend {
    /// The embedded intent classifier over the knowledge base: no network, deterministic.
    Builtin,
    /// Any OpenAI-compatible chat-completions endpoint, falling back to `builtin` when it fails.
    Openai,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Customer-support (SAV) chatbot with Prometheus metrics.
#[derive(Debug, Clone, Parser)]
#[command(name = "chatbot", version, about)]
pub struct Config {
    /// Address of the public API (`/chat`, `/conversations`, `/tickets`).
    #[arg(long, env = "CHATBOT_LISTEN", default_value = "0.0.0.0:8000")]
    pub listen: SocketAddr,

    /// Address of `/metrics`, `/health` and `/ready`, kept off the public API.
    #[arg(long, env = "CHATBOT_INTERNAL_LISTEN", default_value = "0.0.0.0:8081")]
    pub internal_listen: SocketAddr,

    /// sqlite://PATH (created with its schema when missing) or postgres://USER:PASSWORD@HOST:PORT/DB.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://chatbot.db",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Largest number of database connections: one for writes, the rest for reads.
    #[arg(long, env = "CHATBOT_DB_MAX_CONNECTIONS", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(2..))]
    pub db_max_connections: u32,

    /// How long a request waits for a database connection before it is answered 503.
    #[arg(long, env = "CHATBOT_DB_ACQUIRE_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub db_acquire_timeout: Duration,

    /// Which model answers.
    #[arg(long, env = "CHATBOT_MODEL_BACKEND", value_enum, default_value_t = ModelBackend::Builtin)]
    pub model_backend: ModelBackend,

    /// Base URL of the OpenAI-compatible API, up to the version (`…/v1`).
    #[arg(long, env = "OPENAI_BASE_URL", default_value = "https://api.openai.com/v1")]
    pub openai_base_url: String,

    /// Model name sent to the OpenAI-compatible API.
    #[arg(long, env = "OPENAI_MODEL", default_value = "gpt-4o-mini")]
    pub openai_model: String,

    /// `gen_ai.provider.name` in the GenAI metrics: `openai`, `azure.ai.openai`, or what serves the endpoint (`vllm`…).
    #[arg(long, env = "OPENAI_PROVIDER_NAME", default_value = "openai")]
    pub openai_provider_name: String,

    /// Prices per million tokens by model (YAML, see README); read again when it changes. None: no spend estimated,
    /// tokens counted as unpriced.
    #[arg(long, env = "CHATBOT_PRICES_FILE")]
    pub prices_file: Option<PathBuf>,

    /// How often the price table file is read again (a mounted ConfigMap or Secret changes within a minute anyway).
    #[arg(long, env = "CHATBOT_PRICES_RELOAD_INTERVAL", default_value = "10s", value_parser = positive_duration)]
    pub prices_reload_interval: Duration,

    /// API key, read from the environment only so that it never shows in a process listing.
    #[arg(skip = std::env::var("OPENAI_API_KEY").ok().filter(|k| !k.is_empty()))]
    pub openai_api_key: Option<String>,

    /// Bearer tokens of the support agents (comma- or newline-separated, from a Secret), for reading tickets; read
    /// from the environment only. None: agent-only routes answer 401.
    #[arg(skip = std::env::var("CHATBOT_AGENT_TOKENS").ok().filter(|t| !t.trim().is_empty()))]
    pub agent_tokens: Option<String>,

    /// How long conversations, messages and tickets are kept (`180d`, `720h`); `0s` keeps them for ever.
    #[arg(long, env = "CHATBOT_RETENTION", default_value = "180d", value_parser = humantime::parse_duration)]
    pub retention: Duration,

    /// A conversation with no message for this long is decided: resolved, escalated or abandoned (see README).
    #[arg(long, env = "CHATBOT_CONVERSATION_IDLE", default_value = "30m", value_parser = positive_duration)]
    pub conversation_idle: Duration,

    /// How often idle conversations are looked for.
    #[arg(long, env = "CHATBOT_OUTCOME_INTERVAL", default_value = "1m", value_parser = positive_duration)]
    pub outcome_interval: Duration,

    /// How often the retention purge runs.
    #[arg(long, env = "CHATBOT_RETENTION_INTERVAL", default_value = "10m", value_parser = positive_duration)]
    pub retention_interval: Duration,

    /// A request's headers must arrive within this, and a kept-alive connection is closed after this long idle.
    /// Longer than ingress controllers' idle upstream connections (60 s) so that they never reuse one being closed.
    #[arg(long, env = "CHATBOT_HEADER_TIMEOUT", default_value = "75s", value_parser = positive_duration)]
    pub header_timeout: Duration,

    /// Chats a minute one session may send (bursts of ten seconds' worth); 0: no limit.
    #[arg(long, env = "CHATBOT_CHAT_RATE_PER_SESSION", default_value_t = 30)]
    pub chat_rate_per_session: u32,

    /// Chats a minute one client address (an IPv6 /64) may send; 0 (the default): no limit. Behind an Ingress every
    /// client arrives from the proxy's address: set --trusted-proxies with it, or they would all share one bucket.
    #[arg(long, env = "CHATBOT_CHAT_RATE_PER_CLIENT", default_value_t = 0)]
    pub chat_rate_per_client: u32,

    /// Address ranges (comma-separated CIDRs) of the proxies whose X-Forwarded-For is believed, e.g. the ingress
    /// controller's pods; none by default.
    #[arg(long, env = "CHATBOT_TRUSTED_PROXIES", value_delimiter = ',', num_args = 0..)]
    pub trusted_proxies: Vec<crate::limits::Cidr>,

    /// Model calls in progress at once; a chat beyond waits for a slot.
    #[arg(long, env = "CHATBOT_MAX_MODEL_CALLS", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_model_calls: u32,

    /// How long a chat waits for a model call slot before it is answered 503.
    #[arg(long, env = "CHATBOT_MODEL_QUEUE_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub model_queue_timeout: Duration,

    /// Deadline of one call to the OpenAI-compatible API.
    #[arg(long, env = "OPENAI_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub openai_timeout: Duration,

    /// Retries of a timed-out or failed (429, 5xx, connection) call before falling back to builtin.
    #[arg(long, env = "OPENAI_MAX_RETRIES", default_value_t = 2)]
    pub openai_max_retries: u32,

    /// A knowledge base YAML file replacing the shipped one.
    #[arg(long, env = "CHATBOT_KNOWLEDGE_FILE")]
    pub knowledge_file: Option<PathBuf>,

    /// Answers kept in the answer cache (0 turns it off).
    #[arg(long, env = "CHATBOT_ANSWER_CACHE_SIZE", default_value_t = 4096)]
    pub answer_cache_size: usize,

    /// Record the HTTP metrics (switch off only to measure their overhead).
    #[arg(long, env = "CHATBOT_HTTP_METRICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub http_metrics: bool,

    /// How often memory_usage_bytes and cpu_usage_percent are sampled.
    #[arg(long, env = "CHATBOT_SAMPLE_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub sample_interval: Duration,

    /// Answer 503 to every Nth chat (0: never). For demos and alert drills only.
    #[arg(long, env = "CHATBOT_FAULT_EVERY", default_value_t = 0)]
    pub fault_every: u64,

    /// Log format.
    #[arg(long, env = "CHATBOT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

/// A duration that must not be zero (a zero interval or timeout is a mistake, not a way to turn something off).
fn positive_duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("must be longer than 0s".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

impl Config {
    /// The defaults, as if the binary had been started with no flags and no environment.
    pub fn defaults() -> Config {
        Config::parse_from(["chatbot"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_interval_or_timeout_is_refused() {
        for flag in ["--retention-interval", "--header-timeout"] {
            let err = Config::try_parse_from(["chatbot", flag, "0s"]).unwrap_err();
            assert!(err.to_string().contains("longer than 0s"), "{flag}: {err}");
        }
        assert!(
            Config::try_parse_from(["chatbot", "--retention", "0s"]).is_ok(),
            "0s retention keeps everything"
        );
    }
}
