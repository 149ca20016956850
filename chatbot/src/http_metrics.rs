//! The tower layer that records the HTTP series (`http_requests_total`, `http_request_duration_seconds`,
//! `http_requests_active`) for every request, rejected and unmatched ones included.
//!
//! A layer of its own rather than `axum::middleware::from_fn`: that one clones the boxed inner service for every
//! request (an allocation and a free on the hot path); this one calls it in place and wraps its future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use tower::{Layer, Service};

use crate::metrics::{Metrics, UNMATCHED_ENDPOINT};

/// Status label of a request whose client went away before the answer: nginx's "client closed request".
pub const CLIENT_CLOSED_STATUS: &str = "499";

#[derive(Clone)]
pub struct HttpMetricsLayer {
    metrics: Metrics,
}

impl HttpMetricsLayer {
    pub fn new(metrics: Metrics) -> Self {
        HttpMetricsLayer { metrics }
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;

    fn layer(&self, inner: S) -> HttpMetrics<S> {
        HttpMetrics {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub struct HttpMetrics<S> {
    inner: S,
    metrics: Metrics,
}

impl<S> Service<Request> for HttpMetrics<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Tracked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The matched route template keeps the label bounded; raw paths would let any client create series.
        let guard = InFlight {
            metrics: self.metrics.clone(),
            method: method_label(request.method()),
            endpoint: request.extensions().get::<MatchedPath>().cloned(),
            start: Instant::now(),
            status: None,
        };
        guard.metrics.http_requests_active.inc();
        Tracked {
            inner: self.inner.call(request),
            guard,
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner future, and the record of its request (written when the future is dropped).
    pub struct Tracked<F> {
        #[pin]
        inner: F,
        guard: InFlight,
    }
}

impl<F, E> Future for Tracked<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = ready!(this.inner.poll(cx));
        if let Ok(response) = &out {
            this.guard.status = Some(response.status());
        }
        Poll::Ready(out)
    }
}

/// Records a request when it ends, answered or not: a client that disconnects drops the handler's future, and the
/// active gauge must still come down.
struct InFlight {
    metrics: Metrics,
    method: &'static str,
    endpoint: Option<MatchedPath>,
    start: Instant,
    status: Option<StatusCode>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let m = &self.metrics;
        m.http_requests_active.dec();
        let endpoint = self.endpoint.as_ref().map_or(UNMATCHED_ENDPOINT, MatchedPath::as_str);
        let status = self.status.as_ref().map_or(CLIENT_CLOSED_STATUS, |s| s.as_str());
        m.http_requests_total
            .with_label_values(&[self.method, endpoint, status])
            .inc();
        m.http_request_duration_seconds
            .with_label_values(&[self.method, endpoint])
            .observe(self.start.elapsed().as_secs_f64());
    }
}

/// Maps a method to a static label; extension methods collapse to `OTHER` so they cannot create series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}
