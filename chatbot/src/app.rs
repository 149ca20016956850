//! Startup and shutdown: builds the shared state from the configuration, serves the router, drains on signal.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::agents::AgentTokens;
use crate::config::{Config, ModelBackend};
use crate::limits::ChatLimits;
use crate::metrics::Metrics;
use crate::model::knowledge::KnowledgeBase;
use crate::model::openai::{OpenAi, OpenAiConfig};
use crate::model::prices::{self, Prices};
use crate::model::{Backend, Model};
use crate::routes::{self, AppState, FaultInjection};
use crate::store::{Store, StoreConfig, redact};
use crate::system;

/// Loads the knowledge base named in the configuration, or the shipped one.
fn knowledge_base(config: &Config) -> anyhow::Result<KnowledgeBase> {
    match &config.knowledge_file {
        None => Ok(KnowledgeBase::builtin()),
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            KnowledgeBase::from_yaml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        }
    }
}

/// The two listeners: the public API, and the probes with `/metrics`.
pub struct Listeners {
    pub api: TcpListener,
    pub internal: TcpListener,
}

impl Listeners {
    /// Binds `--listen` and `--internal-listen`.
    pub async fn bind(config: &Config) -> anyhow::Result<Listeners> {
        let api = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let internal = TcpListener::bind(config.internal_listen)
            .await
            .with_context(|| format!("listening on {} (--internal-listen)", config.internal_listen))?;
        Ok(Listeners { api, internal })
    }
}

/// Serves on both listeners until `shutdown` completes, then finishes in-flight requests and closes the database.
pub async fn serve(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let metrics = Metrics::new();
    let kb = Arc::new(knowledge_base(&config)?);
    let mut background = Background::default();
    // The files first: a mistake in one stops the chatbot before anything is opened.
    let prices = price_table(&config, &metrics, &mut background)?;
    let model = Arc::new(model(&config, kb.clone(), prices, &metrics)?);
    let (store, writer) = Store::connect(
        &StoreConfig {
            url: config.database_url.clone(),
            max_connections: config.db_max_connections,
            acquire_timeout: config.db_acquire_timeout,
        },
        metrics.clone(),
    )
    .await
    .with_context(|| format!("opening the database {}", redact(&config.database_url)))?;
    background.start(&config, &store, &metrics, kb);
    let state = state(&config, store, model, metrics)?;
    tracing::info!(
        address = %listeners.api.local_addr()?,
        internal_address = %listeners.internal.local_addr()?,
        database = %redact(&config.database_url),
        model = ?config.model_backend,
        http_metrics = config.http_metrics,
        // 0: tickets cannot be read over the API (CHATBOT_AGENT_TOKENS).
        agent_tokens = state.agents.len(),
        retention = %humantime::format_duration(config.retention),
        "listening"
    );
    serve_until(&config, listeners, state, shutdown).await;
    background.stop();
    writer.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// The tasks that run beside the server, aborted once it has drained.
#[derive(Default)]
struct Background(Vec<tokio::task::JoinHandle<()>>);

impl Background {
    /// The resource sampler, the retention purge (unless the retention is 0s) and the outcome decisions.
    fn start(&mut self, config: &Config, store: &Store, metrics: &Metrics, kb: Arc<KnowledgeBase>) {
        self.0.push(tokio::spawn(system::sample_forever(
            metrics.clone(),
            config.sample_interval,
        )));
        if !config.retention.is_zero() {
            self.0.push(tokio::spawn(crate::retention::run(
                store.clone(),
                metrics.clone(),
                config.retention,
                config.retention_interval,
            )));
        }
        self.0.push(tokio::spawn(crate::outcomes::run(
            store.clone(),
            metrics.clone(),
            kb,
            config.conversation_idle,
            config.outcome_interval,
        )));
    }

    fn stop(self) {
        for task in self.0 {
            task.abort();
        }
    }
}

/// The price table of `--prices-file`, read now and again when it changes; empty without one.
fn price_table(config: &Config, metrics: &Metrics, background: &mut Background) -> anyhow::Result<Prices> {
    let prices = Prices::default();
    if let Some(path) = &config.prices_file {
        let (table, bytes) = prices::load(path)?;
        prices.replace(table);
        metrics.prices_reloaded(true);
        background.0.push(tokio::spawn(prices::reload_forever(
            path.clone(),
            prices.clone(),
            bytes,
            metrics.clone(),
            config.prices_reload_interval,
        )));
    }
    Ok(prices)
}

/// The model facade over the configured backend; declares the series of every intent.
fn model(config: &Config, kb: Arc<KnowledgeBase>, prices: Prices, metrics: &Metrics) -> anyhow::Result<Model> {
    let backend = match config.model_backend {
        ModelBackend::Builtin => Backend::Builtin,
        ModelBackend::Openai => Backend::OpenAi(Box::new(OpenAi::new(
            OpenAiConfig {
                base_url: config.openai_base_url.clone(),
                model: config.openai_model.clone(),
                provider_name: config.openai_provider_name.clone(),
                api_key: config.openai_api_key.clone(),
                timeout: config.openai_timeout,
                max_retries: config.openai_max_retries,
            },
            &kb,
            prices,
            metrics.clone(),
        )?)),
    };
    metrics.declare_intents(kb.intent_names());
    Ok(Model::new(kb, backend, config.answer_cache_size, metrics.clone()))
}

/// What every handler shares.
fn state(config: &Config, store: Store, model: Arc<Model>, metrics: Metrics) -> anyhow::Result<AppState> {
    if config.fault_every > 0 {
        tracing::warn!(
            every = config.fault_every,
            "fault injection on: every Nth chat answers 503"
        );
    }
    let agents = AgentTokens::parse(config.agent_tokens.as_deref().unwrap_or_default())
        .map_err(|e| anyhow::anyhow!("CHATBOT_AGENT_TOKENS: {e}"))?;
    Ok(AppState {
        store,
        model,
        metrics,
        faults: Arc::new(FaultInjection::every(config.fault_every)),
        agents,
        limits: Arc::new(ChatLimits::new(
            config.chat_rate_per_session,
            config.chat_rate_per_client,
            config.trusted_proxies.clone(),
            config.max_model_calls as usize,
            config.model_queue_timeout,
        )),
    })
}

/// Serves the API and the internal routes until `shutdown` completes, then lets both finish their requests.
async fn serve_until(
    config: &Config,
    listeners: Listeners,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let api = routes::api_router(state.clone(), config.http_metrics);
    let internal = routes::internal_router(state, config.http_metrics);
    // One shutdown for both listeners.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let timeout = config.header_timeout;
    tokio::join!(
        crate::connections::serve(listeners.api, api, timeout, stopped(stopping.clone())),
        crate::connections::serve(listeners.internal, internal, timeout, stopped(stopping)),
        async move {
            shutdown.await;
            let _ = stop.send(true);
        },
    );
}

/// Completes on SIGTERM (Kubernetes) or Ctrl-C.
pub async fn shutdown_signal() {
    shutdown::requested().await;
    tracing::info!("shutdown requested, finishing in-flight requests");
}
