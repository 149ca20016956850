//! Agent access: what only a support agent may read or erase (tickets, any conversation's erasure) needs a bearer
//! token from `CHATBOT_AGENT_TOKENS` (a Secret). Several tokens may be valid at once, so that one can be rotated
//! without downtime. Only their SHA-256 digests are kept, and a presented token is compared with every one of them
//! in constant time, so that neither the timing nor the order of the list says how close a guess was.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// Shortest token accepted: a token is a password that no person types, so it can be long.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The valid agent tokens, as digests.
#[derive(Clone, Default)]
pub struct AgentTokens {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for AgentTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AgentTokens({} token(s))", self.digests.len())
    }
}

impl AgentTokens {
    /// Tokens separated by commas or newlines (a Secret's value either way); blanks ignored.
    pub fn parse(raw: &str) -> Result<AgentTokens, String> {
        let mut digests = Vec::new();
        for (i, token) in raw
            .split([',', '\n'])
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .enumerate()
        {
            if token.chars().count() < MIN_TOKEN_CHARS {
                return Err(format!(
                    "agent token #{} is shorter than {MIN_TOKEN_CHARS} characters",
                    i + 1
                ));
            }
            digests.push(digest(token));
        }
        Ok(AgentTokens { digests })
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Whether `token` is one of them; every digest is compared, whatever matches.
    pub fn admits(&self, token: &str) -> bool {
        let presented = digest(token);
        self.digests
            .iter()
            .fold(subtle::Choice::from(0), |found, d| found | d.ct_eq(&presented))
            .into()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Proof that the request carries a valid agent token; a handler that takes it is for agents only.
pub struct Agent;

/// What an agent-only route answers without a valid token: 401 with the JSON error, the same whatever the id asked
/// for, so that it says nothing of what exists.
pub struct Unauthorized(&'static str);

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let mut response = ApiError::new(StatusCode::UNAUTHORIZED, self.0, Some("authorization")).into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"agents\""),
        );
        response
    }
}

impl<S> FromRequestParts<S> for Agent
where
    S: Send + Sync,
    AgentTokens: axum::extract::FromRef<S>,
{
    type Rejection = Unauthorized;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let tokens = <AgentTokens as axum::extract::FromRef<S>>::from_ref(state);
        if tokens.is_empty() {
            return Err(Unauthorized(
                "agent access is not configured (CHATBOT_AGENT_TOKENS is empty)",
            ));
        }
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        match presented {
            None => Err(Unauthorized(
                "an agent token is required: Authorization: Bearer <token>",
            )),
            Some(token) if tokens.admits(token) => Ok(Agent),
            Some(_) => Err(Unauthorized("the agent token is not valid")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_tokens_are_valid_at_once_for_rotation() {
        let tokens = AgentTokens::parse("old-token-0123456789, new-token-0123456789\n\n").unwrap();
        assert_eq!(tokens.len(), 2);
        assert!(tokens.admits("old-token-0123456789"));
        assert!(tokens.admits("new-token-0123456789"));
        assert!(!tokens.admits("new-token-012345678"));
        assert!(!tokens.admits(""));
    }

    #[test]
    fn short_tokens_are_refused_and_none_means_no_agent_access() {
        let err = AgentTokens::parse("long-enough-token-123,short").unwrap_err();
        assert!(err.contains("#2") && err.contains("16"), "{err}");
        assert!(AgentTokens::parse(" , \n").unwrap().is_empty());
        assert!(!AgentTokens::default().admits("anything-at-all-here"));
    }

    #[test]
    fn the_tokens_never_show_in_debug_output() {
        let tokens = AgentTokens::parse("secret-token-0123456789").unwrap();
        assert_eq!(format!("{tokens:?}"), "AgentTokens(1 token(s))");
    }
}
