//! The `openai` backend against a fake OpenAI-compatible server started by the test: success, timeout, errors,
//! retries and the fallback to `builtin`, as the customer and the metrics see them.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::fake_openai::{Behaviour, Fake, RESPONSE_MODEL, openai_config, refund_answer};
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

/// Prices of the test model per million tokens: 20 fresh input tokens, 100 cached and 30 output cost 330 µEUR.
const PRICES: &str =
    "models:\n  shop-assistant-1:\n    currency: EUR\n    input: 2\n    cachedInput: 0.5\n    output: 8\n";

/// A known sequence of completions and the exact token, duration and spend series it produces.
async fn tokens_and_spend_of_a_known_sequence(url: &str) {
    let (fake, base) = Fake::start(Behaviour::Answer(refund_answer())).await;
    fake.set_usage(Some(json!({
        "prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
        "prompt_tokens_details": {"cached_tokens": 100},
    })));
    let dir = tempfile::tempdir().unwrap();
    let prices = dir.path().join("prices.yaml");
    std::fs::write(&prices, PRICES).unwrap();
    let mut c = openai_config(url, &base);
    c.answer_cache_size = 0;
    c.openai_max_retries = 0;
    c.prices_file = Some(prices.clone());
    c.prices_reload_interval = Duration::from_millis(100);
    let server = TestServer::start(c).await;

    // Two answers with usage, one without, one whose content is refused (its tokens were billed all the same), and
    // one HTTP error (no completion, no tokens).
    for message in ["When is my money back?", "And the shipping costs?"] {
        assert_eq!(server.chat(json!({"message": message})).await.0, StatusCode::OK);
    }
    fake.set_usage(None);
    assert_eq!(server.chat(json!({"message": "A third one"})).await.0, StatusCode::OK);
    fake.set_usage(Some(json!({"prompt_tokens": 50, "completion_tokens": 5})));
    fake.set(Behaviour::Content("not json"));
    assert_eq!(server.chat(json!({"message": "A fourth one"})).await.0, StatusCode::OK);
    fake.set(Behaviour::Status(503));
    assert_eq!(server.chat(json!({"message": "A fifth one"})).await.0, StatusCode::OK);

    let m = server.metrics().await;
    let chat = [
        ("gen_ai_operation_name", "chat"),
        ("gen_ai_provider_name", "openai"),
        ("gen_ai_request_model", "shop-assistant-1"),
    ];
    let tokens = |token_type: &'static str, suffix: &str| {
        let mut labels = chat.to_vec();
        labels.extend([
            ("gen_ai_token_type", token_type),
            ("gen_ai_response_model", RESPONSE_MODEL),
        ]);
        m.get(&format!("gen_ai_client_token_usage_{suffix}"), &labels)
    };
    assert_eq!(tokens("input", "count"), Some(3.0), "two answers and the refused one");
    assert_eq!(tokens("input", "sum"), Some(2.0 * 120.0 + 50.0));
    assert_eq!(tokens("output", "sum"), Some(2.0 * 30.0 + 5.0));
    // The conventions' bucket bounds: 30 output tokens fall under 64, not under 16.
    let bucket = |le: &'static str| {
        let mut labels = chat.to_vec();
        labels.extend([
            ("gen_ai_token_type", "output"),
            ("gen_ai_response_model", RESPONSE_MODEL),
            ("le", le),
        ]);
        m.get("gen_ai_client_token_usage_bucket", &labels)
    };
    assert_eq!(
        (bucket("4"), bucket("16"), bucket("64")),
        (Some(0.0), Some(1.0), Some(3.0))
    );
    let duration = |response_model: &'static str, error_type: &'static str| {
        let mut labels = chat.to_vec();
        labels.extend([("gen_ai_response_model", response_model), ("error_type", error_type)]);
        m.get("gen_ai_client_operation_duration_seconds_count", &labels)
    };
    assert_eq!(duration(RESPONSE_MODEL, ""), Some(3.0));
    assert_eq!(duration(RESPONSE_MODEL, "invalid_response"), Some(1.0));
    assert_eq!(duration("", "503"), Some(1.0));
    let provider = [
        ("gen_ai_provider_name", "openai"),
        ("gen_ai_request_model", "shop-assistant-1"),
    ];
    assert_eq!(m.get("ai_model_usage_missing_total", &provider), Some(1.0));
    let mut eur = provider.to_vec();
    eur.push(("currency", "EUR"));
    // 2 × 330 µEUR, and the refused answer's 50 input and 5 output tokens: 140 µEUR.
    let spend = m.get("ai_model_estimated_cost_total", &eur).unwrap();
    assert!((spend - (2.0 * 330e-6 + 140e-6)).abs() < 1e-12, "{spend}");
    assert_eq!(m.get("ai_model_prices_last_reload_successful", &[]), Some(1.0));
    // The public series of before stay as they were.
    assert_eq!(
        m.get("ai_model_calls_total", &[("model", "openai"), ("status", "success")]),
        Some(3.0)
    );

    // A table without the model: once reloaded, its tokens are unpriced, not free; the spend so far stays.
    let loaded = "ai_model_prices_last_reload_success_timestamp_seconds";
    let first_load = m.get(loaded, &[]).unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    std::fs::write(&prices, "models: {}\n").unwrap();
    let m = wait_for_metrics(&server, |m| m.get(loaded, &[]) > Some(first_load)).await;
    assert_eq!(m.get("ai_model_prices_last_reload_successful", &[]), Some(1.0));
    fake.set(Behaviour::Answer(refund_answer()));
    assert_eq!(
        server.chat(json!({"message": "Is it priced now?"})).await.0,
        StatusCode::OK
    );
    let m = server.metrics().await;
    let unpriced = |t: &'static str| {
        let mut labels = provider.to_vec();
        labels.push(("gen_ai_token_type", t));
        m.get("ai_model_unpriced_tokens_total", &labels)
    };
    assert_eq!((unpriced("input"), unpriced("output")), (Some(50.0), Some(5.0)));
    assert_eq!(m.get("ai_model_estimated_cost_total", &eur), Some(spend));

    // A broken table is refused and the last good one kept.
    std::fs::write(&prices, "models:\n  shop-assistant-1: {currency: euro}\n").unwrap();
    wait_for_metrics(&server, |m| {
        m.get("ai_model_prices_last_reload_successful", &[]) == Some(0.0)
    })
    .await;
    assert_eq!(
        server.chat(json!({"message": "Still unpriced?"})).await.0,
        StatusCode::OK
    );
    let m = server.metrics().await;
    assert_eq!(m.get("ai_model_estimated_cost_total", &eur), Some(spend));
    server.stop().await.unwrap();
}

/// Scrapes until `ready` holds (at most 5 s).
async fn wait_for_metrics(
    server: &TestServer,
    ready: impl Fn(&testsupport::Exposition) -> bool,
) -> testsupport::Exposition {
    for _ in 0..100 {
        let m = server.metrics().await;
        if ready(&m) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the metrics never showed the expected change");
}

#[tokio::test]
async fn sqlite_tokens_and_spend_of_a_known_sequence() {
    let (_dir, url) = sqlite_url();
    tokens_and_spend_of_a_known_sequence(&url).await;
}

#[tokio::test]
async fn postgres_tokens_and_spend_of_a_known_sequence() {
    let pg = testsupport::TestPostgres::start().expect("start PostgreSQL");
    tokens_and_spend_of_a_known_sequence(&pg.url()).await;
}

/// The builtin model has no tokens and no spend: none of those series exist, rather than zeros that would lie.
#[tokio::test]
async fn the_builtin_model_reports_no_tokens_and_no_spend() {
    let (_dir, url) = sqlite_url();
    let server = TestServer::start(common::config(&url)).await;
    server.chat(json!({"message": "Where is my order?"})).await;
    let m = server.metrics().await;
    for family in m.families() {
        assert!(
            !family.starts_with("gen_ai_") && !family.contains("cost") && !family.contains("tokens"),
            "{family}"
        );
    }
    server.stop().await.unwrap();
}
