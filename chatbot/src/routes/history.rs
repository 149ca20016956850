//! Reading back what was stored: a session's conversation (for whoever holds its session id) and a ticket (for
//! agents only: it is the customer's complaint, and its id was shown to the customer, not kept secret).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};

use super::AppState;
use crate::agents::Agent;
use crate::error::ApiError;
use crate::store::{Conversation, Ticket};

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
fn path_id(id: Result<Path<String>, PathRejection>, field: &str) -> Result<String, ApiError> {
    match id {
        Ok(Path(id)) if !id.contains('\0') => Ok(id),
        Ok(Path(id)) => Err(ApiError::not_found(field, format!("no {field} {id:?}"))),
        Err(rejection) => Err(ApiError::new(rejection.status(), rejection.body_text(), Some(field))),
    }
}
