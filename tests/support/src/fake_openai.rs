//! A fake OpenAI-compatible server for the tests, on 127.0.0.1 in the test's tokio runtime: it answers chat
//! completions as told (an answer with or without a `usage` object, a delay, an HTTP error, malformed content),
//! records every request, and can hold answers until the test releases them, to race a chat against something else.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

/// What the next completions answer.
#[derive(Clone)]
pub enum Behaviour {
    /// The structured answer as the message content, with [`Fake::set_usage`]'s usage.
    Answer(Value),
    /// Waits, then answers 504 (the client's timeout is shorter).
    Slow(Duration),
    Status(u16),
    /// Content that is not the requested JSON.
    Content(&'static str),
}

/// The model name the fake reports in its answers: a dated snapshot of the requested one, as hosted APIs do.
pub const RESPONSE_MODEL: &str = "shop-assistant-1-2026-10-01";

#[derive(Clone)]
pub struct Fake {
    behaviour: Arc<Mutex<Behaviour>>,
    usage: Arc<Mutex<Option<Value>>>,
    requests: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    /// When set, every answer waits for a permit.
    gate: Arc<Mutex<Option<Arc<Semaphore>>>>,
}

impl Fake {
    /// Starts on an ephemeral 127.0.0.1 port; returns the base URL (`…/v1`). Answers carry no usage until
    /// [`Fake::set_usage`].
    pub async fn start(behaviour: Behaviour) -> (Fake, String) {
        let fake = Fake {
            behaviour: Arc::new(Mutex::new(behaviour)),
            usage: Arc::default(),
            requests: Arc::default(),
            gate: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (fake, base)
    }

    pub fn set(&self, b: Behaviour) {
        *self.behaviour.lock().unwrap() = b;
    }

    /// The `usage` object of the next answers; `None` leaves it out.
    pub fn set_usage(&self, usage: Option<Value>) {
        *self.usage.lock().unwrap() = usage;
    }

    /// Holds every answer from now on until [`Fake::release`] gives it a permit.
    pub fn hold(&self) {
        *self.gate.lock().unwrap() = Some(Arc::new(Semaphore::new(0)));
    }

    /// Lets `n` held answers go.
    pub fn release(&self, n: usize) {
        if let Some(gate) = self.gate.lock().unwrap().as_ref() {
            gate.add_permits(n);
        }
    }

    pub fn calls(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn requests(&self) -> Vec<(HeaderMap, Value)> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until `n` requests have arrived (a held one counts once it is waiting).
    pub async fn wait_for_calls(&self, n: usize) {
        for _ in 0..500 {
            if self.calls() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the fake model got {} calls, expected {n}", self.calls());
    }
}

async fn completions(State(fake): State<Fake>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    fake.requests.lock().unwrap().push((headers, body));
    let gate = fake.gate.lock().unwrap().clone();
    if let Some(gate) = gate {
        gate.acquire().await.unwrap().forget();
    }
    let behaviour = fake.behaviour.lock().unwrap().clone();
    let content = match behaviour {
        Behaviour::Answer(v) => v.to_string(),
        Behaviour::Content(c) => c.to_owned(),
        Behaviour::Slow(d) => {
            tokio::time::sleep(d).await;
            return StatusCode::GATEWAY_TIMEOUT.into_response();
        }
        Behaviour::Status(s) => {
            return (StatusCode::from_u16(s).unwrap(), "upstream trouble").into_response();
        }
    };
    let mut answer = json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": RESPONSE_MODEL,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
    });
    if let Some(usage) = fake.usage.lock().unwrap().clone() {
        answer["usage"] = usage;
    }
    Json(answer).into_response()
}

/// A confident answer of the knowledge base's `refund` intent.
pub fn refund_answer() -> Value {
    json!({"intent": "refund", "confidence": 0.92, "language": "en", "reply": "Refunds take 5 to 10 days."})
}
