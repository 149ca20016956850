//! `POST /chat`: validate, answer, open a ticket when escalating, store the exchange, reply.

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;

use super::AppState;
use crate::chat::{ChatRequest, ChatResponse, Language};
use crate::error::ApiError;
use crate::limits::{Limited, Peer};
use crate::store::{NewExchange, NewMessage, NewSession, NewTicket, StoreError, now_millis};

pub async fn post_chat(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ChatResponse>, ApiError> {
    let start = Instant::now();
    // The client's rate before anything else is spent on it (the session's once the session is known to exist).
    state
        .limits
        .check_client(peer.as_ref(), &headers)
        .map_err(|l| limited(&state, l))?;
    let request = parse(&headers, body)?;
    let user_type = request.user_type.as_str();
    let result = answer(&state, request).await;
    // A client mistake found late (an unknown session) is a 4xx in the HTTP series, not a failed chat.
    let status = match &result {
        Ok(_) => Some("success"),
        Err(e) if e.status.is_server_error() => Some("error"),
        Err(_) => None,
    };
    if let Some(status) = status {
        let m = &state.metrics;
        m.chat_requests_total.with_label_values(&[user_type, status]).inc();
        m.chat_response_time_seconds
            .with_label_values(&[user_type])
            .observe(start.elapsed().as_secs_f64());
    }
    result.map(Json)
}

/// Checks the content type and the body, naming the field at fault.
fn parse(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<ChatRequest, ApiError> {
    ChatRequest::from_json(&super::json_body(headers, body)?)
}

/// A request refused by a limit: counted by reason, answered 429 or 503.
pub(super) fn limited(state: &AppState, l: Limited) -> ApiError {
    state
        .metrics
        .chat_requests_limited_total
        .with_label_values(&[l.reason()])
        .inc();
    ApiError::from(l)
}

/// Everything after validation. An error here is counted as a failed chat.
async fn answer(state: &AppState, request: ChatRequest) -> Result<ChatResponse, ApiError> {
    if state.faults.strike() {
        return Err(ApiError::unavailable("injected fault (--fault-every)"));
    }
    let existing = match &request.session_id {
        Some(id) => match state.store.session(id).await? {
            Some(session) => Some(session),
            None if state.store.erased(id).await? => return Err(StoreError::Erased.into()),
            None => return Err(ApiError::not_found("session_id", format!("no session {id:?}"))),
        },
        None => None,
    };
    // Made-up session ids never take room in the session table: only a session that exists is counted.
    if let Some(session) = &existing {
        state
            .limits
            .check_session(&session.session_id)
            .map_err(|l| limited(state, l))?;
    }
    let answered = {
        let _slot = state.limits.model_slot().await.map_err(|l| limited(state, l))?;
        state.model.answer(&request.message).await
    };
    let a = &answered.answer;
    let language: Language = a.language;

    let ticket = a.escalate.then(|| {
        let reason = if state.model.knowledge().intent(&a.intent).is_some_and(|i| i.escalate) {
            "customer_request"
        } else {
            "low_confidence"
        };
        NewTicket {
            id: new_ticket_id(),
            reason,
            intent: a.intent.clone(),
            message: request.message.clone(),
        }
    });
    let reply = match &ticket {
        None => a.reply.clone(),
        Some(t) => {
            let handover = state.model.knowledge().escalation_reply(language, &t.id);
            if a.reply.is_empty() {
                handover
            } else {
                format!("{} {handover}", a.reply)
            }
        }
    };

    let session_id = match &existing {
        Some(s) => s.session_id.clone(),
        // Time-ordered (UUIDv7, 74 random bits): new sessions append to the indexes on session ids instead of
        // dirtying a random page of each per insert, which was most of the write cost under load.
        None => uuid::Uuid::now_v7().to_string(),
    };
    let exchange_id = uuid::Uuid::now_v7().to_string();
    let exchange = NewExchange {
        exchange_id: exchange_id.clone(),
        topic: state.model.knowledge().topic(&a.intent).map(str::to_owned),
        new_session: existing.is_none().then(|| NewSession {
            id: session_id.clone(),
            user_type: request.user_type.as_str(),
            language: language.as_str(),
        }),
        session_id: session_id.clone(),
        user_type: request.user_type.as_str(),
        language: language.as_str(),
        created_at: now_millis(),
        question: NewMessage {
            role: "user",
            content: request.message,
            intent: None,
            confidence: None,
            model: None,
            ticket_id: None,
        },
        answer: NewMessage {
            role: "assistant",
            content: reply.clone(),
            intent: Some(a.intent.clone()),
            confidence: Some(a.confidence),
            model: Some(answered.model),
            ticket_id: ticket.as_ref().map(|t| t.id.clone()),
        },
        ticket: ticket.clone(),
    };
    state.store.save(exchange).await?;

    if let Some(t) = &ticket {
        state.metrics.escalations_total.with_label_values(&[t.reason]).inc();
        tracing::info!(ticket_id = %t.id, %session_id, reason = t.reason, intent = %a.intent, "escalated to a human");
    }
    Ok(ChatResponse {
        session_id,
        exchange_id,
        reply,
        intent: a.intent.clone(),
        confidence: a.confidence,
        escalated: ticket.is_some(),
        ticket_id: ticket.map(|t| t.id),
        model: answered.model.to_owned(),
        language,
    })
}

/// `SAV-` and 20 hex digits: 80 random bits, short enough to read out on the phone in groups.
fn new_ticket_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    format!("SAV-{}", &hex[..20])
}
