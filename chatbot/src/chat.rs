//! The chat API's vocabulary: requests, their validation, and the closed sets that label metrics.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Longest accepted message, in bytes of UTF-8.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Longest accepted session id; ours are 36-character UUIDs.
const MAX_SESSION_ID_BYTES: usize = 64;

/// Who is writing. A closed set: it labels `chat_requests_total` and `chat_response_time_seconds`, so it must stay
/// bounded. `guest` (not signed in), `customer` (signed in, the default), `premium` (loyalty programme), `agent`
/// (a support agent testing or using the bot on a customer's behalf).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserType {
    Guest,
    Customer,
    Premium,
    Agent,
}

impl UserType {
    pub const ALL: [UserType; 4] = [UserType::Guest, UserType::Customer, UserType::Premium, UserType::Agent];

    pub fn as_str(self) -> &'static str {
        match self {
            UserType::Guest => "guest",
            UserType::Customer => "customer",
            UserType::Premium => "premium",
            UserType::Agent => "agent",
        }
    }

    pub fn parse(s: &str) -> Option<UserType> {
        UserType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for UserType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The languages the bot answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Fr,
    En,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Fr => "fr",
            Language::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Language> {
        match s {
            "fr" => Some(Language::Fr),
            "en" => Some(Language::En),
            _ => None,
        }
    }
}

/// Longest accepted feedback comment, in bytes of UTF-8.
pub const MAX_COMMENT_BYTES: usize = 2048;

/// A customer's rating of one answer: thumbs up or down. One click under each answer gets far more ratings than a
/// survey at the end, and each rating belongs to the intent that produced the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rating {
    Up,
    Down,
}

impl Rating {
    pub const ALL: [Rating; 2] = [Rating::Up, Rating::Down];

    pub fn as_str(self) -> &'static str {
        match self {
            Rating::Up => "up",
            Rating::Down => "down",
        }
    }
}

/// `POST /conversations/{session_id}/feedback` body as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeedbackRequest {
    exchange_id: Option<String>,
    rating: Option<String>,
    comment: Option<String>,
}

/// A validated rating of one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackRequest {
    pub exchange_id: String,
    pub rating: Rating,
    /// `None` when absent or blank.
    pub comment: Option<String>,
}

impl FeedbackRequest {
    /// Parses and validates a JSON body, naming the field at fault in the error.
    pub fn from_json(body: &[u8]) -> Result<FeedbackRequest, ApiError> {
        let raw: RawFeedbackRequest = decode_json(body)?;
        let exchange_id = raw
            .exchange_id
            .filter(|id| !id.is_empty() && id.len() <= MAX_SESSION_ID_BYTES && !id.contains('\0'))
            .ok_or_else(|| {
                ApiError::invalid(
                    "exchange_id",
                    format!("exchange_id is required: the exchange_id of the answer rated (1 to {MAX_SESSION_ID_BYTES} bytes)"),
                )
            })?;
        let rating = match raw.rating.as_deref() {
            Some("up") => Rating::Up,
            Some("down") => Rating::Down,
            Some(other) => {
                return Err(ApiError::invalid(
                    "rating",
                    format!("unknown rating {other:?}; expected up or down"),
                ));
            }
            None => return Err(ApiError::invalid("rating", "rating is required: up or down")),
        };
        let comment = match raw.comment {
            Some(c) if c.contains('\0') => {
                return Err(ApiError::invalid("comment", "comment must not contain NUL characters"));
            }
            Some(c) if c.len() > MAX_COMMENT_BYTES => {
                return Err(ApiError::invalid(
                    "comment",
                    format!("comment is {} bytes long; the limit is {MAX_COMMENT_BYTES}", c.len()),
                ));
            }
            Some(c) if c.trim().is_empty() => None,
            other => other,
        };
        Ok(FeedbackRequest {
            exchange_id,
            rating,
            comment,
        })
    }
}

/// `POST /chat` body as sent. Fields are optional here so that a missing one is reported by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChatRequest {
    message: Option<String>,
    user_type: Option<String>,
    session_id: Option<String>,
}

/// A validated chat request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub message: String,
    pub user_type: UserType,
    pub session_id: Option<String>,
}

impl ChatRequest {
    /// Parses and validates a JSON body, naming the field at fault in the error.
    pub fn from_json(body: &[u8]) -> Result<ChatRequest, ApiError> {
        let raw: RawChatRequest = decode_json(body)?;
        let message = raw
            .message
            .ok_or_else(|| ApiError::invalid("message", "message is required"))?;
        // PostgreSQL text cannot hold NUL: refuse it here for both databases rather than fail in storage.
        if message.contains('\0') {
            return Err(ApiError::invalid("message", "message must not contain NUL characters"));
        }
        if message.trim().is_empty() {
            return Err(ApiError::invalid("message", "message must not be empty"));
        }
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(ApiError::invalid(
                "message",
                format!(
                    "message is {} bytes long; the limit is {MAX_MESSAGE_BYTES}",
                    message.len()
                ),
            ));
        }
        let user_type = match raw.user_type.as_deref() {
            None => UserType::Customer,
            Some(s) => UserType::parse(s).ok_or_else(|| {
                ApiError::invalid(
                    "user_type",
                    format!("unknown user_type {s:?}; expected one of guest, customer, premium, agent"),
                )
            })?,
        };
        let session_id = match raw.session_id {
            None => None,
            Some(s) if s.is_empty() || s.len() > MAX_SESSION_ID_BYTES || s.contains('\0') => {
                return Err(ApiError::invalid(
                    "session_id",
                    format!("session_id must be 1 to {MAX_SESSION_ID_BYTES} bytes, without NUL"),
                ));
            }
            Some(s) => Some(s),
        };
        Ok(ChatRequest {
            message,
            user_type,
            session_id,
        })
    }
}

/// Decodes one JSON document into `T`: malformed JSON is a 400, a field of the wrong type or unknown a 422 naming it.
fn decode_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                format!("malformed JSON: {inner}"),
                None,
            )
        } else if path == "." {
            // Unknown fields and a body that is not an object land here; serde names the field in the text.
            let field = unknown_field_name(&inner.to_string());
            ApiError::invalid(field.as_deref().unwrap_or("body"), inner.to_string())
        } else {
            ApiError::invalid(&path, inner.to_string())
        }
    })?;
    // `{"message":"hi"} trailing` is not one JSON document.
    de.end().map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            format!("malformed JSON: {e}"),
            None,
        )
    })?;
    Ok(value)
}

/// serde reports an unknown field as "unknown field `x`, expected …": pull `x` out so the client sees it by name.
fn unknown_field_name(text: &str) -> Option<String> {
    let rest = text.strip_prefix("unknown field `")?;
    rest.split('`').next().map(str::to_owned)
}

/// `POST /chat` answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatResponse {
    pub session_id: String,
    /// The answer's id, to rate it (`POST /conversations/{session_id}/feedback`).
    pub exchange_id: String,
    pub reply: String,
    pub intent: String,
    pub confidence: f64,
    pub escalated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
    pub model: String,
    pub language: Language,
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn err(body: &str) -> ApiError {
        ChatRequest::from_json(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn defaults_user_type_to_customer() {
        let r = ChatRequest::from_json(br#"{"message":"hi"}"#).unwrap();
        assert_eq!(r.user_type, UserType::Customer);
        assert_eq!(r.session_id, None);
    }

    #[test]
    fn names_the_field_at_fault() {
        let e = err("{not json");
        assert_eq!((e.status, e.field), (StatusCode::BAD_REQUEST, None));
        let e = err(r#"{"user_type":"guest"}"#);
        assert_eq!(
            (e.status, e.field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("message"))
        );
        let e = err(r#"{"message":"   "}"#);
        assert_eq!(e.field.as_deref(), Some("message"));
        let e = err(r#"{"message":42}"#);
        assert_eq!(e.field.as_deref(), Some("message"));
        let e = err(r#"{"message":"hi","user_type":"vip"}"#);
        assert_eq!(e.field.as_deref(), Some("user_type"));
        let e = err(r#"{"message":"hi","usertype":"guest"}"#);
        assert_eq!(e.field.as_deref(), Some("usertype"));
        let e = err(r#"{"message":"hi","session_id":""}"#);
        assert_eq!(e.field.as_deref(), Some("session_id"));
        let e = err(r#"{"message":"hi"} {}"#);
        assert_eq!((e.status, e.field), (StatusCode::BAD_REQUEST, None));
        let e = err(r#"{"message":"a\u0000b"}"#);
        assert_eq!(e.field.as_deref(), Some("message"));
        let e = err(r#"["hi"]"#);
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn limits_message_to_4_kib() {
        let ok = format!(r#"{{"message":"{}"}}"#, "a".repeat(MAX_MESSAGE_BYTES));
        assert!(ChatRequest::from_json(ok.as_bytes()).is_ok());
        let long = format!(r#"{{"message":"{}"}}"#, "a".repeat(MAX_MESSAGE_BYTES + 1));
        assert_eq!(err(&long).field.as_deref(), Some("message"));
    }

    #[test]
    fn feedback_names_the_field_at_fault() {
        let ok = FeedbackRequest::from_json(br#"{"exchange_id":"x","rating":"down","comment":"  "}"#).unwrap();
        assert_eq!((ok.rating, ok.comment), (Rating::Down, None), "a blank comment is none");
        for (body, field) in [
            (r#"{"rating":"up"}"#, "exchange_id"),
            (r#"{"exchange_id":"","rating":"up"}"#, "exchange_id"),
            (r#"{"exchange_id":"x"}"#, "rating"),
            (r#"{"exchange_id":"x","rating":"5"}"#, "rating"),
            (r#"{"exchange_id":"x","rating":1}"#, "rating"),
            (r#"{"exchange_id":"x","rating":"up","comment":7}"#, "comment"),
            (r#"{"exchange_id":"x","rating":"up","coment":"typo"}"#, "coment"),
        ] {
            let e = FeedbackRequest::from_json(body.as_bytes()).unwrap_err();
            assert_eq!(
                (e.status, e.field.as_deref()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
                "{body}"
            );
        }
        let long = format!(
            r#"{{"exchange_id":"x","rating":"up","comment":"{}"}}"#,
            "é".repeat(MAX_COMMENT_BYTES / 2 + 1)
        );
        let e = FeedbackRequest::from_json(long.as_bytes()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("comment"));
    }
}
