//! The chatbot's Prometheus metrics: a public contract that the operator's dashboards and alerts query.
//!
//! Names and labels must not change without changing `dashboards/` and the rendered rules. Every label value is
//! bounded: route templates (never raw paths), numeric status codes, the fixed [`UserType`](crate::chat::UserType)
//! set, model backend names and a closed list of database operations.

use std::sync::Arc;

use crate::counter_table::CounterTable;
use prometheus::{
    CounterVec, Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// HTTP latency buckets: 5 ms to 10 s, with the 0.5/1/2/5 s boundaries that the latency alerts compare against.
pub const HTTP_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0];
/// Model and database calls are faster than whole requests: start at 0.5 ms.
const FAST_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// `gen_ai.client.token.usage`'s advisory bucket bounds in the OpenTelemetry GenAI semantic conventions (powers of 4).
pub const TOKEN_BUCKETS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
    67108864.0,
];
/// `gen_ai.client.operation.duration`'s advisory bucket bounds, in seconds (doubling from 10 ms).
pub const GEN_AI_DURATION_BUCKETS: &[f64] = &[
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// Labels of `gen_ai_client_token_usage`, as the OTLP translation names the conventions' attributes.
const GEN_AI_TOKEN_LABELS: [&str; 5] = [
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_token_type",
    "gen_ai_request_model",
    "gen_ai_response_model",
];

/// `intent` of a conversation that never got past small talk.
pub const NO_TOPIC: &str = "none";

/// Label value for requests that matched no route, so that scanners cannot create series.
pub const UNMATCHED_ENDPOINT: &str = "unmatched";

/// Every metric the chatbot exposes, registered in one [`Registry`]. Cloning is one reference-count increment:
/// handlers and the HTTP layer clone it on every request.
#[derive(Clone)]
pub struct Metrics(Arc<MetricSet>);

impl std::ops::Deref for Metrics {
    type Target = MetricSet;
    fn deref(&self) -> &MetricSet {
        &self.0
    }
}

/// The metric handles behind [`Metrics`].
pub struct MetricSet {
    registry: Registry,
    pub http_requests_total: IntCounterVec,
    pub http_request_duration_seconds: HistogramVec,
    pub http_requests_active: IntGauge,
    pub memory_usage_bytes: IntGauge,
    /// No labels; present only while a memory limit applies (see `cgroup`).
    pub memory_limit_bytes: IntGaugeVec,
    pub cpu_usage_percent: prometheus::Gauge,
    pub chat_requests_total: IntCounterVec,
    pub chat_response_time_seconds: HistogramVec,
    pub ai_model_calls_total: IntCounterVec,
    pub ai_model_call_duration_seconds: HistogramVec,
    pub ai_model_fallbacks_total: IntCounterVec,
    pub gen_ai_client_token_usage: HistogramVec,
    pub gen_ai_client_operation_duration_seconds: HistogramVec,
    pub ai_model_usage_missing_total: IntCounterVec,
    pub ai_model_estimated_cost_total: CounterVec,
    pub ai_model_unpriced_tokens_total: IntCounterVec,
    /// No labels; present only when a price table file is configured.
    pub ai_model_prices_last_reload_successful: IntGaugeVec,
    /// No labels; present once a price table was loaded.
    pub ai_model_prices_last_reload_success_timestamp_seconds: GaugeVec,
    pub escalations_total: IntCounterVec,
    /// `chat_feedback_total` and `chat_conversations_total`, once the intents are known (see `declare_intents`).
    intent_tables: std::sync::OnceLock<[CounterTable; 2]>,
    pub chat_requests_limited_total: IntCounterVec,
    pub retention_deleted_rows_total: IntCounterVec,
    pub conversations_erased_total: IntCounter,
    pub database_connections_active: IntGauge,
    pub database_connections_idle: IntGauge,
    pub database_connections_max: IntGauge,
    pub db_query_duration_seconds: HistogramVec,
    pub cache_hits_total: IntCounter,
    pub cache_misses_total: IntCounter,
    build_info: IntGaugeVec,
}

impl Metrics {
    /// Creates and registers every metric, with the standard `process_*` collector.
    pub fn new() -> Self {
        let registry = Registry::new();
        let m = MetricSet {
            http_requests_total: IntCounterVec::new(
                Opts::new(
                    "http_requests_total",
                    "HTTP requests by method, route template and status code.",
                ),
                &["method", "endpoint", "status"],
            )
            .unwrap(),
            http_request_duration_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "http_request_duration_seconds",
                    "HTTP request duration in seconds by method and route template.",
                )
                .buckets(HTTP_BUCKETS.to_vec()),
                &["method", "endpoint"],
            )
            .unwrap(),
            http_requests_active: IntGauge::new("http_requests_active", "HTTP requests being served now.").unwrap(),
            memory_usage_bytes: IntGauge::new("memory_usage_bytes", "Resident set size of the process in bytes.")
                .unwrap(),
            memory_limit_bytes: IntGaugeVec::new(
                Opts::new(
                    "memory_limit_bytes",
                    "Memory limit of the process's cgroup in bytes (the container's limit); absent when unlimited.",
                ),
                &[],
            )
            .unwrap(),
            cpu_usage_percent: prometheus::Gauge::new(
                "cpu_usage_percent",
                "Process CPU usage over the last sampling interval, in percent of one core.",
            )
            .unwrap(),
            chat_requests_total: IntCounterVec::new(
                Opts::new(
                    "chat_requests_total",
                    "Chat requests by user type and outcome (success, error).",
                ),
                &["user_type", "status"],
            )
            .unwrap(),
            chat_response_time_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "chat_response_time_seconds",
                    "Time to answer a chat message, storage included, in seconds.",
                )
                .buckets(HTTP_BUCKETS.to_vec()),
                &["user_type"],
            )
            .unwrap(),
            ai_model_calls_total: IntCounterVec::new(
                Opts::new(
                    "ai_model_calls_total",
                    "Calls to the AI model backend by outcome (success, error, timeout).",
                ),
                &["model", "status"],
            )
            .unwrap(),
            ai_model_call_duration_seconds: HistogramVec::new(
                HistogramOpts::new("ai_model_call_duration_seconds", "AI model call duration in seconds.")
                    .buckets(FAST_BUCKETS.to_vec()),
                &["model"],
            )
            .unwrap(),
            ai_model_fallbacks_total: IntCounterVec::new(
                Opts::new(
                    "ai_model_fallbacks_total",
                    "Answers given by the builtin model because the configured model failed.",
                ),
                &["model"],
            )
            .unwrap(),
            gen_ai_client_token_usage: HistogramVec::new(
                HistogramOpts::new(
                    "gen_ai_client_token_usage",
                    "Tokens used per model call, by token type (input, output) (OpenTelemetry gen_ai.client.token.usage).",
                )
                .buckets(TOKEN_BUCKETS.to_vec()),
                &GEN_AI_TOKEN_LABELS,
            )
            .unwrap(),
            gen_ai_client_operation_duration_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "gen_ai_client_operation_duration_seconds",
                    "Model call duration in seconds, error_type set on failure (OpenTelemetry \
                     gen_ai.client.operation.duration).",
                )
                .buckets(GEN_AI_DURATION_BUCKETS.to_vec()),
                &[
                    "gen_ai_operation_name",
                    "gen_ai_provider_name",
                    "gen_ai_request_model",
                    "gen_ai_response_model",
                    "error_type",
                ],
            )
            .unwrap(),
            ai_model_usage_missing_total: IntCounterVec::new(
                Opts::new(
                    "ai_model_usage_missing_total",
                    "Model answers that reported no token usage (their tokens are unknown, not zero).",
                ),
                &["gen_ai_provider_name", "gen_ai_request_model"],
            )
            .unwrap(),
            ai_model_estimated_cost_total: CounterVec::new(
                Opts::new(
                    "ai_model_estimated_cost_total",
                    "Estimated spend on the model from the price table, in units of the currency label.",
                ),
                &["gen_ai_provider_name", "gen_ai_request_model", "currency"],
            )
            .unwrap(),
            ai_model_unpriced_tokens_total: IntCounterVec::new(
                Opts::new(
                    "ai_model_unpriced_tokens_total",
                    "Tokens of models the price table has no price for, by token type (input, output).",
                ),
                &["gen_ai_provider_name", "gen_ai_request_model", "gen_ai_token_type"],
            )
            .unwrap(),
            ai_model_prices_last_reload_successful: IntGaugeVec::new(
                Opts::new(
                    "ai_model_prices_last_reload_successful",
                    "1 when the price table file last read was valid, 0 when it was refused (the previous one is kept).",
                ),
                &[],
            )
            .unwrap(),
            ai_model_prices_last_reload_success_timestamp_seconds: GaugeVec::new(
                Opts::new(
                    "ai_model_prices_last_reload_success_timestamp_seconds",
                    "When the price table in use was loaded, in seconds since the Unix epoch.",
                ),
                &[],
            )
            .unwrap(),
            chat_requests_limited_total: IntCounterVec::new(
                Opts::new(
                    "chat_requests_limited_total",
                    "Chats refused before their answer, by reason (session_rate, client_rate: 429; model_busy: 503).",
                ),
                &["reason"],
            )
            .unwrap(),
            retention_deleted_rows_total: IntCounterVec::new(
                Opts::new(
                    "retention_deleted_rows_total",
                    "Rows deleted by the retention purge, by table (messages, tickets, feedback, sessions, erased_sessions).",
                ),
                &["table"],
            )
            .unwrap(),
            conversations_erased_total: IntCounter::new(
                "conversations_erased_total",
                "Conversations erased on request (DELETE /conversations/{session_id}).",
            )
            .unwrap(),
            escalations_total: IntCounterVec::new(
                Opts::new(
                    "chat_escalations_total",
                    "Conversations escalated to a human, by reason.",
                ),
                &["reason"],
            )
            .unwrap(),
            intent_tables: std::sync::OnceLock::new(),
            database_connections_active: IntGauge::new(
                "database_connections_active",
                "Database connections in use (checked out of the pool).",
            )
            .unwrap(),
            database_connections_idle: IntGauge::new(
                "database_connections_idle",
                "Open database connections waiting in the pool.",
            )
            .unwrap(),
            database_connections_max: IntGauge::new(
                "database_connections_max",
                "Most database connections the pool opens (saturation = active / max).",
            )
            .unwrap(),
            db_query_duration_seconds: HistogramVec::new(
                HistogramOpts::new("db_query_duration_seconds", "Database operation duration in seconds.")
                    .buckets(FAST_BUCKETS.to_vec()),
                &["operation"],
            )
            .unwrap(),
            cache_hits_total: IntCounter::new("cache_hits_total", "Answers served from the answer cache.").unwrap(),
            cache_misses_total: IntCounter::new("cache_misses_total", "Answers not found in the answer cache.")
                .unwrap(),
            build_info: IntGaugeVec::new(
                Opts::new("chatbot_build_info", "Always 1; the labels carry the build's version."),
                &["version"],
            )
            .unwrap(),
            registry,
        };
        m.build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        // Every known label combination exists from the start at 0: a query over a counter that has not moved yet
        // answers 0 rather than nothing, and rate() sees the first increment.
        // Histograms too: a fresh pod in a quiet hour otherwise has no `chat_response_time_seconds_*` at all, and
        // the dashboards, the latency alert and the operator's DashboardMetricsPresent find nothing to read.
        for user_type in crate::chat::UserType::ALL {
            for status in ["success", "error"] {
                m.chat_requests_total.with_label_values(&[user_type.as_str(), status]);
            }
            m.chat_response_time_seconds.with_label_values(&[user_type.as_str()]);
        }
        for reason in ["customer_request", "low_confidence"] {
            m.escalations_total.with_label_values(&[reason]);
        }
        for table in crate::store::Purged::TABLES {
            m.retention_deleted_rows_total.with_label_values(&[table]);
        }
        for reason in crate::limits::Limited::REASONS {
            m.chat_requests_limited_total.with_label_values(&[reason]);
        }
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.http_requests_total.clone()),
            Box::new(m.http_request_duration_seconds.clone()),
            Box::new(m.http_requests_active.clone()),
            Box::new(m.memory_usage_bytes.clone()),
            Box::new(m.memory_limit_bytes.clone()),
            Box::new(m.cpu_usage_percent.clone()),
            Box::new(m.chat_requests_total.clone()),
            Box::new(m.chat_response_time_seconds.clone()),
            Box::new(m.ai_model_calls_total.clone()),
            Box::new(m.ai_model_call_duration_seconds.clone()),
            Box::new(m.ai_model_fallbacks_total.clone()),
            Box::new(m.gen_ai_client_token_usage.clone()),
            Box::new(m.gen_ai_client_operation_duration_seconds.clone()),
            Box::new(m.ai_model_usage_missing_total.clone()),
            Box::new(m.ai_model_estimated_cost_total.clone()),
            Box::new(m.ai_model_unpriced_tokens_total.clone()),
            Box::new(m.ai_model_prices_last_reload_successful.clone()),
            Box::new(m.ai_model_prices_last_reload_success_timestamp_seconds.clone()),
            Box::new(m.escalations_total.clone()),
            Box::new(m.chat_requests_limited_total.clone()),
            Box::new(m.retention_deleted_rows_total.clone()),
            Box::new(m.conversations_erased_total.clone()),
            Box::new(m.database_connections_active.clone()),
            Box::new(m.database_connections_idle.clone()),
            Box::new(m.database_connections_max.clone()),
            Box::new(m.db_query_duration_seconds.clone()),
            Box::new(m.cache_hits_total.clone()),
            Box::new(m.cache_misses_total.clone()),
            Box::new(m.build_info.clone()),
        ];
        for c in collectors {
            m.registry.register(c).expect("metric names are unique");
        }
        #[cfg(target_os = "linux")]
        m.registry
            .register(Box::new(process_metrics::ProcessMetrics::for_self()))
            .expect("process collector registers once");
        Metrics(Arc::new(m))
    }

    /// Renders every metric in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding into a Vec cannot fail");
        let mut text = String::from_utf8(buf).expect("the text format is UTF-8");
        for table in self.intent_tables.get().into_iter().flatten() {
            table.encode(&mut text);
        }
        text
    }

    /// Creates the feedback and outcome series of every intent (the knowledge base's, at start), all at 0: a
    /// topic's first conversation and an intent's first rating are seen by `rate()`, and containment and
    /// satisfaction read 0 of N, not nothing. Only the first call counts.
    pub fn declare_intents<'a>(&self, intents: impl Iterator<Item = &'a str> + Clone) {
        let owned = |values: &mut dyn Iterator<Item = &str>| values.map(str::to_owned).collect::<Vec<_>>();
        let user_types = owned(&mut crate::chat::UserType::ALL.iter().map(|u| u.as_str()));
        let _ = self.intent_tables.set([
            CounterTable::new(
                "chat_feedback_total",
                "Customers' ratings of answers, by user type, the answer's intent and rating (up, down).",
                ["user_type", "intent", "rating"],
                [
                    user_types.clone(),
                    owned(&mut intents.clone()),
                    owned(&mut crate::chat::Rating::ALL.iter().map(|r| r.as_str())),
                ],
            ),
            CounterTable::new(
                "chat_conversations_total",
                "Conversations decided once idle, by user type, topic intent (none: only small talk) and outcome \
                 (resolved, escalated, abandoned).",
                ["user_type", "intent", "outcome"],
                [
                    user_types,
                    owned(&mut intents.chain([NO_TOPIC])),
                    owned(&mut crate::store::OUTCOMES.into_iter()),
                ],
            ),
        ]);
    }

    /// One rating; `user_type` as stored (always one of the fixed set), `intent` one of the knowledge base's.
    pub fn count_feedback(&self, user_type: &str, intent: &str, rating: crate::chat::Rating) {
        if let Some([feedback, _]) = self.intent_tables.get() {
            feedback.inc([user_type, intent, rating.as_str()]);
        }
    }

    /// One conversation decided; `topic` `None` is labelled `none`.
    pub fn count_outcome(&self, user_type: &str, topic: Option<&str>, outcome: &str) {
        if let Some([_, outcomes]) = self.intent_tables.get() {
            outcomes.inc([user_type, topic.unwrap_or(NO_TOPIC), outcome]);
        }
    }

    /// Whether the price table file last read was valid.
    pub fn prices_reloaded(&self, ok: bool) {
        let none: &[&str] = &[];
        self.ai_model_prices_last_reload_successful
            .with_label_values(none)
            .set(i64::from(ok));
        if ok {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            self.ai_model_prices_last_reload_success_timestamp_seconds
                .with_label_values(none)
                .set(now);
        }
    }

    /// Times one database operation; `operation` must come from the closed list in `store`.
    pub fn db_timer(&self, operation: &'static str) -> Histogram {
        self.db_query_duration_seconds.with_label_values(&[operation])
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_metric_is_exposed() {
        let m = Metrics::new();
        // Vec metrics appear only once a child exists: touch one of each.
        m.http_requests_total
            .with_label_values(&["GET", "/health", "200"])
            .inc();
        m.http_request_duration_seconds
            .with_label_values(&["GET", "/health"])
            .observe(0.001);
        m.chat_requests_total.with_label_values(&["customer", "success"]).inc();
        m.chat_response_time_seconds
            .with_label_values(&["customer"])
            .observe(0.001);
        m.ai_model_calls_total.with_label_values(&["builtin", "success"]).inc();
        m.ai_model_call_duration_seconds
            .with_label_values(&["builtin"])
            .observe(0.001);
        m.db_timer("ping").observe(0.001);
        let text = m.render();
        for name in [
            "http_requests_total",
            "http_request_duration_seconds_bucket",
            "http_requests_active",
            "memory_usage_bytes",
            "cpu_usage_percent",
            "chat_requests_total",
            "chat_response_time_seconds_bucket",
            "ai_model_calls_total",
            "ai_model_call_duration_seconds_bucket",
            "database_connections_active",
            "db_query_duration_seconds_bucket",
            "cache_hits_total",
            "cache_misses_total",
            "chat_requests_limited_total{reason=\"model_busy\"} 0",
            "retention_deleted_rows_total{table=\"messages\"} 0",
            "conversations_erased_total 0",
            "chatbot_build_info",
            "process_resident_memory_bytes",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(name)),
                "{name} missing from:\n{text}"
            );
        }
    }

    /// A pod that has answered nothing yet already has every series whose labels are known: the operator's
    /// DashboardMetricsPresent once stayed False on a quiet, healthy chatbot until its first chat.
    #[test]
    fn known_series_exist_before_any_chat() {
        let text = Metrics::new().render();
        for user_type in crate::chat::UserType::ALL {
            let u = user_type.as_str();
            for line in [
                format!("chat_response_time_seconds_bucket{{user_type=\"{u}\",le=\"+Inf\"}} 0"),
                format!("chat_response_time_seconds_count{{user_type=\"{u}\"}} 0"),
                format!("chat_response_time_seconds_sum{{user_type=\"{u}\"}} 0"),
                format!("chat_requests_total{{status=\"error\",user_type=\"{u}\"}} 0"),
            ] {
                assert!(text.lines().any(|l| l == line), "{line} missing from:\n{text}");
            }
        }
    }

    #[test]
    fn http_buckets_span_5ms_to_10s_with_alert_boundaries() {
        assert_eq!(HTTP_BUCKETS.first(), Some(&0.005));
        assert_eq!(HTTP_BUCKETS.last(), Some(&10.0));
        for b in [0.5, 1.0, 2.0, 5.0] {
            assert!(HTTP_BUCKETS.contains(&b), "missing bucket {b}");
        }
    }
}
