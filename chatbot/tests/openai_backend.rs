//! The `openai` backend against a fake OpenAI-compatible server started by the test: success, timeout, errors,
//! retries and the fallback to `builtin`, as the customer and the metrics see them.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::fake_openai::{Behaviour, Fake, openai_config, refund_answer};
use common::{TestServer, sqlite_url};
use serde_json::json;

async fn server(base: &str, retries: u32, timeout: Duration) -> (tempfile::TempDir, TestServer) {
    let (dir, url) = sqlite_url();
    let mut c = openai_config(&url, base);
    c.openai_max_retries = retries;
    c.openai_timeout = timeout;
    (dir, TestServer::start(c).await)
}

#[tokio::test]
async fn answers_with_the_remote_model() {
    let (fake, base) = Fake::start(Behaviour::Answer(refund_answer())).await;
    let (_dir, server) = server(&base, 2, Duration::from_secs(2)).await;
    let (status, body) = server.chat(json!({"message": "When is my money back?"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["model"], "openai");
    assert_eq!(body["intent"], "refund");
    assert_eq!(body["reply"], "Refunds take 5 to 10 days.");
    assert_eq!(body["escalated"], false);

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let (headers, sent) = &requests[0];
    assert_eq!(headers["authorization"], "Bearer sk-test-key");
    assert_eq!(sent["model"], "shop-assistant-1");
    assert_eq!(sent["messages"][1]["content"], "When is my money back?");
    assert!(sent["messages"][0]["content"].as_str().unwrap().contains("refund"));

    let m = server.metrics().await;
    assert_eq!(
        m.get("ai_model_calls_total", &[("model", "openai"), ("status", "success")]),
        Some(1.0)
    );
    assert_eq!(
        m.get("ai_model_call_duration_seconds_count", &[("model", "openai")]),
        Some(1.0)
    );
    assert_eq!(m.get("ai_model_fallbacks_total", &[("model", "openai")]), Some(0.0));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_chatbot_still_decides_escalation() {
    let (fake, base) = Fake::start(Behaviour::Answer(
        json!({"intent": "human_request", "confidence": 0.99, "language": "fr", "reply": "Je vous passe un conseiller."}),
    ))
    .await;
    let (_dir, server) = server(&base, 0, Duration::from_secs(2)).await;
    let (_, body) = server.chat(json!({"message": "un humain svp"})).await;
    assert_eq!(body["escalated"], true);
    assert!(body["ticket_id"].as_str().unwrap().starts_with("SAV-"));

    // A confident-sounding model below the threshold does not get its guess shown.
    fake.set(Behaviour::Answer(
        json!({"intent": "refund", "confidence": 0.2, "language": "en", "reply": "Maybe a refund?"}),
    ));
    let (_, body) = server.chat(json!({"message": "something odd"})).await;
    assert_eq!(body["escalated"], true);
    assert!(!body["reply"].as_str().unwrap().contains("Maybe"), "{body}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn timeouts_are_retried_then_fall_back_to_builtin() {
    let (fake, base) = Fake::start(Behaviour::Slow(Duration::from_secs(5))).await;
    let (_dir, server) = server(&base, 1, Duration::from_millis(300)).await;
    let (status, body) = server.chat(json!({"message": "Where is my order?"})).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a model failure must never reach the customer as an error"
    );
    assert_eq!(body["model"], "builtin");
    assert_eq!(body["intent"], "order_tracking");
    assert_eq!(fake.calls(), 2);

    let m = server.metrics().await;
    assert_eq!(
        m.get("ai_model_calls_total", &[("model", "openai"), ("status", "timeout")]),
        Some(2.0)
    );
    assert_eq!(m.get("ai_model_fallbacks_total", &[("model", "openai")]), Some(1.0));
    assert_eq!(
        m.get("ai_model_calls_total", &[("model", "builtin"), ("status", "success")]),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "chat_requests_total",
            &[("user_type", "customer"), ("status", "success")]
        ),
        Some(1.0)
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn server_errors_are_retried_client_errors_are_not() {
    let (fake, base) = Fake::start(Behaviour::Status(503)).await;
    let (_dir, server) = server(&base, 2, Duration::from_secs(2)).await;
    let (status, body) = server.chat(json!({"message": "I forgot my password"})).await;
    assert_eq!((status, body["model"].as_str()), (StatusCode::OK, Some("builtin")));
    assert_eq!(fake.calls(), 3, "one call and two retries");

    fake.set(Behaviour::Status(401));
    let (_, body) = server.chat(json!({"message": "Can I pay with PayPal?"})).await;
    assert_eq!(body["model"], "builtin");
    assert_eq!(fake.calls(), 4, "a 401 is not retried");

    let m = server.metrics().await;
    assert_eq!(
        m.get("ai_model_calls_total", &[("model", "openai"), ("status", "error")]),
        Some(4.0)
    );
    assert_eq!(m.get("ai_model_fallbacks_total", &[("model", "openai")]), Some(2.0));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_unusable_answer_falls_back_and_recovery_is_picked_up() {
    let (fake, base) = Fake::start(Behaviour::Content("Sure! Your refund is on its way :)")).await;
    let (_dir, server) = server(&base, 2, Duration::from_secs(2)).await;
    let (_, body) = server.chat(json!({"message": "When will I get my refund?"})).await;
    assert_eq!(
        (body["model"].as_str(), body["intent"].as_str()),
        (Some("builtin"), Some("refund"))
    );
    assert_eq!(fake.calls(), 1, "a malformed answer is not retried");

    // The fallback answer was not cached: once the model is back, the same question reaches it.
    fake.set(Behaviour::Answer(refund_answer()));
    let (_, body) = server.chat(json!({"message": "When will I get my refund?"})).await;
    assert_eq!(body["model"], "openai");
    // And now it is cached: a third ask costs no call.
    let (_, body) = server.chat(json!({"message": "when will i get my REFUND"})).await;
    assert_eq!(body["model"], "openai");
    assert_eq!(fake.calls(), 2);
    let m = server.metrics().await;
    assert_eq!(m.get("cache_hits_total", &[]), Some(1.0));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_that_hangs_up_is_counted_499_and_leaves_no_active_request() {
    let (_fake, base) = Fake::start(Behaviour::Slow(Duration::from_secs(3))).await;
    let (_dir, server) = server(&base, 0, Duration::from_secs(2)).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = impatient
        .post(server.url("/chat"))
        .json(&json!({"message": "refund?"}))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    // The server notices the closed connection and drops the request.
    let mut m = server.metrics().await;
    for _ in 0..50 {
        if m.get("http_requests_active", &[]) == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        m = server.metrics().await;
    }
    assert_eq!(
        m.get("http_requests_active", &[]),
        Some(1.0),
        "only the scrape is in flight"
    );
    assert_eq!(
        m.get(
            "http_requests_total",
            &[("method", "POST"), ("endpoint", "/chat"), ("status", "499")]
        ),
        Some(1.0)
    );
    server.stop().await.unwrap();
}
