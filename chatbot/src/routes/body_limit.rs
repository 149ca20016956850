//! The request body bound, so that a client over it reads its 413. Refusing a body and closing the connection while
//! the client is still sending makes the kernel reset it, and the client sees a broken pipe instead of the answer.
//! So the rest of an oversized body is read and thrown away, up to a bound and a deadline, and only then answered.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use crate::error::ApiError;

/// Largest accepted request body. A chat body is a 4 KiB message plus a few fields; JSON escaping can grow it.
pub const MAX_BODY_BYTES: usize = 32 * 1024;
/// How much of an oversized body is read to deliver its 413 on a connection that stays usable. Beyond it the answer
/// goes out with `Connection: close`: reading more would let one client keep a worker busy for free.
pub const DRAIN_MAX_BYTES: usize = 16 << 20;
/// How long a body may take to arrive, whole or drained.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the body (at most [`MAX_BODY_BYTES`]) before the handler runs, and answers 413 for more.
pub async fn bounded(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_MAX_BYTES as u64) {
        return too_large(true);
    }
    match tokio::time::timeout(BODY_TIMEOUT, read(body)).await {
        Ok(Read::Whole(bytes)) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Ok(Read::TooLarge { drained }) => too_large(!drained),
        Ok(Read::Broken(e)) => {
            ApiError::new(StatusCode::BAD_REQUEST, format!("reading the body: {e}"), None).into_response()
        }
        Err(_) => closing(
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!("the body did not arrive within {} s", BODY_TIMEOUT.as_secs()),
                None,
            )
            .into_response(),
        ),
    }
}

enum Read {
    Whole(Bytes),
    /// Over the limit; `drained` when the whole body was read (the connection can serve the next request).
    TooLarge {
        drained: bool,
    },
    Broken(axum::Error),
}

async fn read(body: Body) -> Read {
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => return Read::Broken(e),
        };
        seen += chunk.len();
        if seen > DRAIN_MAX_BYTES {
            return Read::TooLarge { drained: false };
        }
        if seen <= MAX_BODY_BYTES {
            kept.extend_from_slice(&chunk);
        }
    }
    if seen > MAX_BODY_BYTES {
        Read::TooLarge { drained: true }
    } else {
        Read::Whole(Bytes::from(kept))
    }
}

fn too_large(close: bool) -> Response {
    let response = ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is larger than {MAX_BODY_BYTES} bytes"),
        None,
    )
    .into_response();
    if close { closing(response) } else { response }
}

/// Tells the client the connection ends with this answer (its body was not read to the end).
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
