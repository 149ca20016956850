//! `POST /conversations/{session_id}/feedback`: a customer rates one answer, up or down, with an optional comment.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;

use super::AppState;
use super::chat::limited;
use super::history::path_id;
use crate::chat::FeedbackRequest;
use crate::error::ApiError;
use crate::limits::Peer;
use crate::store::{NewFeedback, Rated, StoreError, now_millis};

/// What a stored rating answers (201).
#[derive(Debug, Serialize)]
pub struct FeedbackResponse {
    session_id: String,
    exchange_id: String,
    rating: &'static str,
}

/// Rate-limited like chats (the client's rate, then the session's), so that ratings cannot be used to flood the
/// database either.
pub async fn post_feedback(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    session_id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<FeedbackResponse>), ApiError> {
    state
        .limits
        .check_client(peer.as_ref(), &headers)
        .map_err(|l| limited(&state, l))?;
    let session_id = path_id(session_id, "session_id")?;
    let request = FeedbackRequest::from_json(&super::json_body(&headers, body)?)?;
    // Made-up session ids never take room in the session rate table: only a session that exists is counted.
    if state.store.session(&session_id).await?.is_none() {
        return Err(match state.store.erased(&session_id).await? {
            true => StoreError::Erased.into(),
            false => unknown_session(&session_id),
        });
    }
    state
        .limits
        .check_session(&session_id)
        .map_err(|l| limited(&state, l))?;
    let feedback = NewFeedback {
        session_id: session_id.clone(),
        exchange_id: request.exchange_id.clone(),
        rating: request.rating.as_str(),
        comment: request.comment,
        created_at: now_millis(),
    };
    match state.store.rate(feedback).await? {
        Rated::Stored { intent, user_type } => {
            let kb = state.model.knowledge();
            state
                .metrics
                .count_feedback(&user_type, kb.intent_label(&intent), request.rating);
            Ok((
                StatusCode::CREATED,
                Json(FeedbackResponse {
                    session_id,
                    exchange_id: request.exchange_id,
                    rating: request.rating.as_str(),
                }),
            ))
        }
        Rated::UnknownSession => Err(unknown_session(&session_id)),
        Rated::UnknownExchange => Err(ApiError::not_found(
            "exchange_id",
            format!("no answer {:?} in this conversation", request.exchange_id),
        )),
        Rated::AlreadyRated => Err(ApiError::new(
            StatusCode::CONFLICT,
            "this answer was rated already; the first rating stands",
            Some("exchange_id"),
        )),
    }
}

fn unknown_session(session_id: &str) -> ApiError {
    ApiError::not_found("session_id", format!("no session {session_id:?}"))
}
