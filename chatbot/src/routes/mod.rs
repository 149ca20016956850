//! The HTTP API: one module per resource, the router that ties them to their route templates.

mod body_limit;
mod chat;
mod feedback;
mod history;
mod probes;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::routing::{get, post};

use crate::agents::AgentTokens;
use crate::error::ApiError;
use crate::http_metrics::HttpMetricsLayer;
use crate::limits::{ChatLimits, Limited};
use crate::metrics::Metrics;
use crate::model::Model;
use crate::store::{Store, StoreError};

pub use body_limit::{BODY_TIMEOUT, DRAIN_MAX_BYTES, MAX_BODY_BYTES};

/// What every handler shares. Cloning is cheap.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub model: Arc<Model>,
    pub metrics: Metrics,
    pub faults: Arc<FaultInjection>,
    pub agents: AgentTokens,
    pub limits: Arc<ChatLimits>,
}

impl axum::extract::FromRef<AppState> for AgentTokens {
    fn from_ref(state: &AppState) -> AgentTokens {
        state.agents.clone()
    }
}

/// Answers 503 to every Nth chat when asked to (`--fault-every`): demos and alert drills need 5xx on demand.
#[derive(Debug, Default)]
pub struct FaultInjection {
    every: u64,
    seen: std::sync::atomic::AtomicU64,
}

impl FaultInjection {
    pub fn every(n: u64) -> Self {
        FaultInjection {
            every: n,
            seen: Default::default(),
        }
    }

    /// True when this chat is one to fail.
    pub fn strike(&self) -> bool {
        self.every > 0 && (self.seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1) % self.every == 0
    }
}

/// A chat refused before its answer, counted by reason.
impl From<Limited> for ApiError {
    fn from(limited: Limited) -> Self {
        match limited {
            Limited::SessionRate { retry_after } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many messages in this session",
                Some("session_id"),
            )
            .retry_after(retry_after),
            Limited::ClientRate { retry_after } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many messages from this client",
                None,
            )
            .retry_after(retry_after),
            Limited::ModelBusy => ApiError::unavailable("every model call slot is busy, retry shortly")
                .retry_after(std::time::Duration::from_secs(1)),
        }
    }
}

/// A JSON request body: the content type checked (415 otherwise), the body read whole (its size was bounded before,
/// by `body_limit`).
fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/json",
            None,
        ));
    }
    body.map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text(), None))
}

/// A database failure as the client sees it: an outage is a 503 the client may retry; anything else is our bug, a 500.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => ApiError::unavailable("database unavailable, retry later"),
            StoreError::Erased => ApiError::new(
                StatusCode::GONE,
                "this conversation was erased; start a new one (send no session_id)",
                Some("session_id"),
            ),
            StoreError::Query(message) => {
                tracing::error!(%message, "database refused a statement");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error", None)
            }
        }
    }
}

/// The public API, what customers and agents reach (through an Ingress). `http_metrics` false leaves the metrics
/// layer out (to measure its overhead).
pub fn api_router(state: AppState, http_metrics: bool) -> Router {
    let routes = Router::new()
        .route("/chat", post(chat::post_chat))
        .route("/conversations", get(history::list_conversations))
        .route(
            "/conversations/{session_id}",
            get(history::get_conversation).delete(history::erase_conversation),
        )
        .route("/conversations/{session_id}/feedback", post(feedback::post_feedback))
        .route("/tickets/{ticket_id}", get(history::get_ticket));
    // Bodies read whole (and bounded) before any handler, unmatched routes included: see body_limit. Only here: the
    // internal routes take no body, and the layer would cost the probes and scrapes a clone of the route each.
    let routes = with_fallbacks(routes).layer(axum::middleware::from_fn(body_limit::bounded));
    finish(routes, state, http_metrics)
}

/// The probes and `/metrics`, on a listener of their own: exposing the API never exposes them, and a
/// NetworkPolicy can let only Prometheus and the kubelet reach them.
pub fn internal_router(state: AppState, http_metrics: bool) -> Router {
    let routes = Router::new()
        .route("/health", get(probes::health))
        .route("/ready", get(probes::ready))
        .route("/metrics", get(probes::metrics));
    finish(with_fallbacks(routes), state, http_metrics)
}

fn with_fallbacks(routes: Router<AppState>) -> Router<AppState> {
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

fn finish(router: Router<AppState>, state: AppState, http_metrics: bool) -> Router {
    let router = if http_metrics {
        // `layer` (not `route_layer`) so unmatched paths and 405s are counted too, as `unmatched` or their template.
        router.layer(HttpMetricsLayer::new(state.metrics.clone()))
    } else {
        router
    };
    router.with_state(state)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route for {method} {}", uri.path()),
        None,
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
        None,
    )
}
