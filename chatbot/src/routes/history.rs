//! Reading back what was stored: a session's conversation and a ticket.

use axum::Json;
use axum::extract::{Path, State};

use crate::app::AppState;
use crate::error::ApiError;
use crate::store::{Conversation, StoreError, Ticket};

pub async fn get_conversation(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
) -> Result<Json<Conversation>, ApiError> {
    match state.store.conversation(&session_id).await.map_err(storage_error)? {
        Some(c) => Ok(Json(c)),
        None => Err(ApiError::not_found("session_id", format!("no session {session_id:?}"))),
    }
}

pub async fn get_ticket(
    State(state): State<AppState>,
    Path(ticket_id): Path<String>,
) -> Result<Json<Ticket>, ApiError> {
    match state.store.ticket(&ticket_id).await.map_err(storage_error)? {
        Some(t) => Ok(Json(t)),
        None => Err(ApiError::not_found("ticket_id", format!("no ticket {ticket_id:?}"))),
    }
}

/// An outage is a 503 the client may retry; anything else is our bug, a 500.
pub(super) fn storage_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Unavailable(_) => ApiError::unavailable("database unavailable, retry later"),
        StoreError::Query(message) => {
            tracing::error!(%message, "database refused a statement");
            ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal error", None)
        }
    }
}
