//! Reading back what was stored: a session's conversation (for whoever holds its session id), and for agents only
//! the list of every conversation and a ticket (the customer's complaint, whose id was shown to the customer, not
//! kept secret).

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use super::AppState;
use crate::agents::Agent;
use crate::error::ApiError;
use crate::store::{Conversation, ConversationPage, Cursor, Ticket};

/// The most conversations one page holds, and the default.
pub const MAX_PAGE: i64 = 100;
const DEFAULT_PAGE: i64 = 50;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<String>,
    before: Option<String>,
}

/// Every conversation, newest first, a page at a time (`?limit=`, `?before=` the previous page's `next`): agents
/// only, since it names every customer's session.
pub async fn list_conversations(
    _agent: Agent,
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ConversationPage>, ApiError> {
    let Query(query) = query.map_err(|r| ApiError::invalid("query", r.body_text()))?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", format!("limit must be an integer from 1 to {MAX_PAGE}")))?,
    };
    let before = match query.before.as_deref() {
        None => None,
        Some(text) => Some(
            Cursor::parse(text)
                .ok_or_else(|| ApiError::invalid("before", "before must be the `next` of a previous page"))?,
        ),
    };
    Ok(Json(state.store.conversations(before.as_ref(), limit).await?))
}

pub async fn get_conversation(
    State(state): State<AppState>,
    session_id: Result<Path<String>, PathRejection>,
) -> Result<Json<Conversation>, ApiError> {
    let session_id = path_id(session_id, "session_id")?;
    match state.store.conversation(&session_id).await? {
        Some(c) => Ok(Json(c)),
        None => Err(ApiError::not_found("session_id", format!("no session {session_id:?}"))),
    }
}

/// Erases a conversation (messages, tickets, session) on a customer's request, made by an agent: 204, or 404.
pub async fn erase_conversation(
    _agent: Agent,
    State(state): State<AppState>,
    session_id: Result<Path<String>, PathRejection>,
) -> Result<axum::http::StatusCode, ApiError> {
    let session_id = path_id(session_id, "session_id")?;
    if state.store.erase(&session_id).await? {
        state.metrics.conversations_erased_total.inc();
        tracing::info!(%session_id, "conversation erased on request");
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("session_id", format!("no session {session_id:?}")))
    }
}

pub async fn get_ticket(
    // First, so that without a token nothing is said of the id, even whether it is well formed.
    _agent: Agent,
    State(state): State<AppState>,
    ticket_id: Result<Path<String>, PathRejection>,
) -> Result<Json<Ticket>, ApiError> {
    let ticket_id = path_id(ticket_id, "ticket_id")?;
    match state.store.ticket(&ticket_id).await? {
        Some(t) => Ok(Json(t)),
        None => Err(ApiError::not_found("ticket_id", format!("no ticket {ticket_id:?}"))),
    }
}

/// A path segment that is not valid UTF-8, or holds a NUL, names nothing we could have stored.
pub(super) fn path_id(id: Result<Path<String>, PathRejection>, field: &str) -> Result<String, ApiError> {
    match id {
        Ok(Path(id)) if !id.contains('\0') => Ok(id),
        Ok(Path(id)) => Err(ApiError::not_found(field, format!("no {field} {id:?}"))),
        Err(rejection) => Err(ApiError::new(rejection.status(), rejection.body_text(), Some(field))),
    }
}
