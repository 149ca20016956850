//! The HTTP API end to end on SQLite: answers, escalation, history, bad input, and the exact metrics they produce.

mod common;

use common::{TestServer, config, sqlite_url};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn answers_each_intent_in_french_and_english() {
    let (_dir, url) = sqlite_url();
    let server = TestServer::start(config(&url)).await;
    let cases = [
        ("Bonjour", "greeting", "fr"),
        ("Où est ma commande ?", "order_tracking", "fr"),
        ("Mon colis n'est toujours pas livré", "delivery", "fr"),
        ("Je voudrais retourner un article", "returns", "fr"),
        ("Quand vais-je être remboursé ?", "refund", "fr"),
        ("Mon téléphone est en panne, il est sous garantie ?", "warranty", "fr"),
        ("Puis-je payer en plusieurs fois ?", "payment", "fr"),
        ("J'ai oublié mon mot de passe", "account", "fr"),
        ("Quels sont vos horaires d'ouverture ?", "opening_hours_contact", "fr"),
        ("Merci beaucoup", "thanks", "fr"),
        ("Hello there", "greeting", "en"),
        ("Where is my order?", "order_tracking", "en"),
        ("My parcel hasn't been delivered yet", "delivery", "en"),
        ("I want to return an item", "returns", "en"),
        ("When will I get my refund?", "refund", "en"),
        ("My laptop broke, is it under warranty?", "warranty", "en"),
        ("Can I pay with PayPal?", "payment", "en"),
        ("I forgot my password", "account", "en"),
        ("What are your opening hours?", "opening_hours_contact", "en"),
        ("Thanks a lot", "thanks", "en"),
    ];
    for (message, intent, language) in cases {
        let (status, body) = server.chat(json!({"message": message})).await;
        assert_eq!(status, StatusCode::OK, "{message}: {body}");
        assert_eq!(body["intent"], intent, "{message}: {body}");
        assert_eq!(body["language"], language, "{message}: {body}");
        assert_eq!(body["escalated"], false, "{message}: {body}");
        assert!(body.get("ticket_id").is_none(), "{message}: {body}");
        assert_eq!(body["model"], "builtin");
        assert!(body["reply"].as_str().unwrap().len() > 20, "{message}: {body}");
        assert!(body["confidence"].as_f64().unwrap() >= 0.45, "{message}: {body}");
    }
    // The French answer is in French, the English one in English.
    let (_, fr) = server.chat(json!({"message": "Où est ma commande ?"})).await;
    let (_, en) = server.chat(json!({"message": "Where is my order?"})).await;
    assert!(fr["reply"].as_str().unwrap().contains("commande"), "{fr}");
    assert!(en["reply"].as_str().unwrap().contains("order"), "{en}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn escalates_to_a_human_with_a_ticket_that_can_be_read_back() {
    let (_dir, url) = sqlite_url();
    let server = TestServer::start(config(&url)).await;

    let (status, body) = server
        .chat(json!({"message": "Je veux parler à un conseiller", "user_type": "premium"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["intent"].as_str(), body["escalated"].as_bool()),
        (Some("human_request"), Some(true))
    );
    let ticket_id = body["ticket_id"].as_str().unwrap().to_owned();
    assert!(ticket_id.starts_with("SAV-") && ticket_id.len() == 24, "{ticket_id}");
    assert!(body["reply"].as_str().unwrap().contains(&ticket_id), "{body}");

    let (status, ticket) = server.get(&format!("/tickets/{ticket_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ticket["session_id"], body["session_id"]);
    assert_eq!(ticket["status"], "open");
    assert_eq!(ticket["reason"], "customer_request");
    assert_eq!(ticket["user_type"], "premium");
    assert_eq!(ticket["language"], "fr");
    assert_eq!(ticket["message"], "Je veux parler à un conseiller");

    // What the bot cannot answer is escalated too, with its own reason.
    let (_, unsure) = server.chat(json!({"message": "xyzzy plugh"})).await;
    assert_eq!(
        (unsure["intent"].as_str(), unsure["escalated"].as_bool()),
        (Some("unknown"), Some(true))
    );
    let (_, ticket) = server
        .get(&format!("/tickets/{}", unsure["ticket_id"].as_str().unwrap()))
        .await;
    assert_eq!(ticket["reason"], "low_confidence");

    let m = server.metrics().await;
    assert_eq!(
        m.value("chat_escalations_total", &[("reason", "customer_request")]),
        1.0
    );
    assert_eq!(m.value("chat_escalations_total", &[("reason", "low_confidence")]), 1.0);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_session_keeps_its_whole_history_in_order() {
    let (_dir, url) = sqlite_url();
    let server = TestServer::start(config(&url)).await;
    let (_, first) = server.chat(json!({"message": "Bonjour", "user_type": "guest"})).await;
    let session = first["session_id"].as_str().unwrap().to_owned();
    let (status, second) = server
        .chat(json!({"message": "Où est ma commande ?", "session_id": session, "user_type": "guest"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["session_id"], session.as_str());

    let (status, history) = server.get(&format!("/conversations/{session}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history["session_id"], session.as_str());
    assert_eq!(history["user_type"], "guest");
    let messages = history["messages"].as_array().unwrap();
    let summary: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| (m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    assert_eq!(summary.len(), 4);
    assert_eq!(summary[0], ("user", "Bonjour"));
    assert_eq!(summary[1], ("assistant", first["reply"].as_str().unwrap()));
    assert_eq!(summary[2], ("user", "Où est ma commande ?"));
    assert_eq!(summary[3], ("assistant", second["reply"].as_str().unwrap()));
    assert_eq!(messages[3]["intent"], "order_tracking");
    assert_eq!(messages[3]["model"], "builtin");
    server.stop().await.unwrap();
}

/// Each bad input: its status, the field named in the body, and its count in `http_requests_total`.
#[tokio::test]
async fn bad_input_gets_a_4xx_naming_the_field_and_is_counted() {
    let (_dir, url) = sqlite_url();
    let server = TestServer::start(config(&url)).await;
    let json_type = "application/json";
    let cases: Vec<(&str, &str, Vec<u8>, StatusCode, Value)> = vec![
        (
            "malformed JSON",
            json_type,
            b"{\"message\": ".to_vec(),
            StatusCode::BAD_REQUEST,
            Value::Null,
        ),
        (
            "missing message",
            json_type,
            br#"{"user_type":"guest"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("message"),
        ),
        (
            "empty message",
            json_type,
            br#"{"message":"  "}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("message"),
        ),
        (
            "message of the wrong type",
            json_type,
            br#"{"message":12}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("message"),
        ),
        (
            "message over 4 KiB",
            json_type,
            format!(r#"{{"message":"{}"}}"#, "é".repeat(2049)).into_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("message"),
        ),
        (
            "unknown user_type",
            json_type,
            br#"{"message":"hi","user_type":"vip"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("user_type"),
        ),
        (
            "unknown field",
            json_type,
            br#"{"message":"hi","mesage":"x"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("mesage"),
        ),
        (
            "oversized body",
            json_type,
            vec![b' '; 64 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            Value::Null,
        ),
        (
            "not JSON",
            "text/plain",
            b"hello".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Value::Null,
        ),
        (
            "unknown session",
            json_type,
            br#"{"message":"hi","session_id":"no-such-session"}"#.to_vec(),
            StatusCode::NOT_FOUND,
            json!("session_id"),
        ),
    ];
    for (what, content_type, body, status, field) in &cases {
        let (got, body) = server.post_raw("/chat", content_type, body.clone()).await;
        assert_eq!(got, *status, "{what}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}: {body}");
        assert_eq!(body["field"], *field, "{what}: {body}");
    }
    let (status, body) = server.get("/conversations/no-such-session").await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::NOT_FOUND, Some("session_id"))
    );
    let (status, body) = server.get("/conversations/%FF").await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("session_id")),
        "{body}"
    );
    let (status, body) = server.get("/conversations/a%00b").await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::NOT_FOUND, Some("session_id")),
        "{body}"
    );
    let (status, body) = server.get("/tickets/SAV-0000").await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::NOT_FOUND, Some("ticket_id"))
    );
    let (status, body) = server.get("/wp-admin/login.php").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("/wp-admin/login.php"));

    let m = server.metrics().await;
    let count = |endpoint: &str, status: &str| {
        m.value(
            "http_requests_total",
            &[("method", "POST"), ("endpoint", endpoint), ("status", status)],
        )
    };
    assert_eq!(count("/chat", "400"), 1.0);
    assert_eq!(count("/chat", "422"), 6.0);
    assert_eq!(count("/chat", "413"), 1.0);
    assert_eq!(count("/chat", "415"), 1.0);
    assert_eq!(count("/chat", "404"), 1.0);
    let get = |endpoint: &str| {
        m.value(
            "http_requests_total",
            &[("method", "GET"), ("endpoint", endpoint), ("status", "404")],
        )
    };
    assert_eq!(get("/conversations/{session_id}"), 2.0);
    assert_eq!(get("/tickets/{ticket_id}"), 1.0);
    // The raw path of an unknown route never becomes a label value.
    assert_eq!(get("unmatched"), 1.0);
    assert!(!m.samples.keys().any(|k| k.contains("wp-admin")));
    // Client mistakes are not chat failures: the chat counters saw none of them.
    assert!(
        m.series("chat_requests_total").iter().all(|(_, v)| *v == 0.0),
        "{:?}",
        m.series("chat_requests_total")
    );
    server.stop().await.unwrap();
}

/// A known sequence of requests and the exact series it must produce.
#[tokio::test]
async fn metrics_match_a_known_sequence_of_requests() {
    let (_dir, url) = sqlite_url();
    let server = TestServer::start(config(&url)).await;
    for _ in 0..3 {
        server
            .chat(json!({"message": "Where is my order?", "user_type": "guest"}))
            .await;
    }
    server
        .chat(json!({"message": "I forgot my password", "user_type": "premium"}))
        .await;
    server.chat(json!({"message": "I want to talk to a human agent"})).await;
    let (_, body) = server.chat(json!({"message": "hi", "user_type": "robot"})).await;
    assert_eq!(body["field"], "user_type");
    server.get("/health").await;
    server.get("/health").await;
    server.get("/ready").await;
    server.get("/nope").await;

    let m = server.metrics().await;
    let http = |method: &str, endpoint: &str, status: &str| {
        m.get(
            "http_requests_total",
            &[("method", method), ("endpoint", endpoint), ("status", status)],
        )
    };
    assert_eq!(http("POST", "/chat", "200"), Some(5.0));
    assert_eq!(http("POST", "/chat", "422"), Some(1.0));
    // Two, and the one TestServer::start sent to see the server up.
    assert_eq!(http("GET", "/health", "200"), Some(3.0));
    assert_eq!(http("GET", "/ready", "200"), Some(1.0));
    assert_eq!(http("GET", "unmatched", "404"), Some(1.0));
    assert_eq!(
        m.series("http_requests_total").len(),
        5,
        "{:?}",
        m.series("http_requests_total")
    );

    let duration_count = |endpoint: &str| {
        m.get(
            "http_request_duration_seconds_count",
            &[("method", "POST"), ("endpoint", endpoint)],
        )
    };
    assert_eq!(duration_count("/chat"), Some(6.0));
    let bucket = |le: &str| {
        m.get(
            "http_request_duration_seconds_bucket",
            &[("method", "POST"), ("endpoint", "/chat"), ("le", le)],
        )
    };
    let les: Vec<String> = m
        .series("http_request_duration_seconds_bucket")
        .iter()
        .filter(|(k, _)| k.contains("endpoint=\"/chat\"") && k.contains("method=\"POST\""))
        .map(|(k, _)| k.split("le=\"").nth(1).unwrap().split('"').next().unwrap().to_owned())
        .collect();
    let mut expected: Vec<String> = chatbot::metrics::HTTP_BUCKETS.iter().map(|b| b.to_string()).collect();
    expected.push("+Inf".into());
    let mut les_sorted = les.clone();
    les_sorted.sort_by(|a, b| le_value(a).total_cmp(&le_value(b)));
    assert_eq!(les_sorted, expected);
    assert_eq!(bucket("+Inf"), Some(6.0));
    // The scrape itself is the one request in flight.
    assert_eq!(m.get("http_requests_active", &[]), Some(1.0));

    let chat =
        |user_type: &str, status: &str| m.get("chat_requests_total", &[("user_type", user_type), ("status", status)]);
    assert_eq!(chat("guest", "success"), Some(3.0));
    assert_eq!(chat("premium", "success"), Some(1.0));
    assert_eq!(chat("customer", "success"), Some(1.0));
    // Every user type and outcome exists from the start (at 0), the others stayed there.
    assert_eq!(m.series("chat_requests_total").len(), 8);
    assert_eq!(chat("agent", "success"), Some(0.0));
    assert_eq!(chat("guest", "error"), Some(0.0));
    assert_eq!(
        m.get("ai_model_calls_total", &[("model", "builtin"), ("status", "timeout")]),
        Some(0.0)
    );
    assert_eq!(
        m.get("ai_model_calls_total", &[("model", "openai"), ("status", "success")]),
        None,
        "not configured"
    );
    assert_eq!(
        m.get("chat_response_time_seconds_count", &[("user_type", "guest")]),
        Some(3.0)
    );

    // The same question three times: one model call, two cache hits.
    assert_eq!(
        m.get("ai_model_calls_total", &[("model", "builtin"), ("status", "success")]),
        Some(3.0)
    );
    assert_eq!(
        m.get("ai_model_call_duration_seconds_count", &[("model", "builtin")]),
        Some(3.0)
    );
    assert_eq!(m.get("cache_hits_total", &[]), Some(2.0));
    assert_eq!(m.get("cache_misses_total", &[]), Some(3.0));

    // Five exchanges, each written by the writer, plus the /ready ping and the startup migration.
    let saves = m
        .get("db_query_duration_seconds_count", &[("operation", "save_exchanges")])
        .unwrap();
    assert!((1.0..=5.0).contains(&saves), "{saves}");
    assert_eq!(
        m.get("db_query_duration_seconds_count", &[("operation", "ping")]),
        Some(1.0)
    );
    assert_eq!(
        m.get("db_query_duration_seconds_count", &[("operation", "migrate")]),
        Some(1.0)
    );
    // sqlx hands a released connection back to the pool from a spawned task: wait for it to settle at 0.
    let mut active = m.get("database_connections_active", &[]);
    for _ in 0..50 {
        if active == Some(0.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        active = server.metrics().await.get("database_connections_active", &[]);
    }
    assert_eq!(active, Some(0.0));

    assert_eq!(m.get("database_connections_max", &[]), Some(8.0));
    assert_eq!(
        m.get("chatbot_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        Some(1.0)
    );
    assert!(m.get("memory_usage_bytes", &[]).unwrap() > 1e6);
    assert!(m.get("cpu_usage_percent", &[]).is_some());
    assert!(m.get("process_resident_memory_bytes", &[]).unwrap() > 1e6);
    for (family, kind) in [
        ("http_requests_total", "counter"),
        ("http_request_duration_seconds", "histogram"),
        ("http_requests_active", "gauge"),
        ("memory_usage_bytes", "gauge"),
        ("cpu_usage_percent", "gauge"),
        ("chat_requests_total", "counter"),
        ("chat_response_time_seconds", "histogram"),
        ("ai_model_calls_total", "counter"),
        ("ai_model_call_duration_seconds", "histogram"),
        ("database_connections_active", "gauge"),
        ("db_query_duration_seconds", "histogram"),
        ("cache_hits_total", "counter"),
        ("cache_misses_total", "counter"),
    ] {
        assert_eq!(m.types.get(family).map(String::as_str), Some(kind), "{family}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn fault_injection_fails_every_nth_chat_with_a_counted_503() {
    let (_dir, url) = sqlite_url();
    let mut c = config(&url);
    c.fault_every = 3;
    let server = TestServer::start(c).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(server.chat(json!({"message": "Where is my order?"})).await.0.as_u16());
    }
    assert_eq!(statuses, [200, 200, 503, 200, 200, 503]);
    let m = server.metrics().await;
    assert_eq!(
        m.get("chat_requests_total", &[("user_type", "customer"), ("status", "error")]),
        Some(2.0)
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn probes_answer() {
    let (_dir, url) = sqlite_url();
    let server = TestServer::start(config(&url)).await;
    assert_eq!(server.get("/health").await, (StatusCode::OK, json!({"status": "ok"})));
    assert_eq!(server.get("/ready").await, (StatusCode::OK, json!({"status": "ready"})));
    let r = server.client.delete(server.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    server.stop().await.unwrap();
}

fn le_value(le: &str) -> f64 {
    if le == "+Inf" {
        f64::INFINITY
    } else {
        le.parse().unwrap()
    }
}

/// The API and the internal endpoints are on two listeners: exposing the API (an Ingress) never exposes /metrics or
/// the probes, and the internal listener serves nothing of the API.
#[tokio::test]
async fn metrics_and_probes_are_only_on_the_internal_listener() {
    let (_dir, url) = sqlite_url();
    let server = TestServer::start(config(&url)).await;
    let client = reqwest::Client::new();
    for path in ["/metrics", "/health", "/ready"] {
        let on_api = client.get(format!("{}{path}", server.base)).send().await.unwrap();
        assert_eq!(on_api.status(), StatusCode::NOT_FOUND, "{path} on the API listener");
        let internal = client.get(format!("{}{path}", server.internal)).send().await.unwrap();
        assert_eq!(internal.status(), StatusCode::OK, "{path} on the internal listener");
    }
    let chat = client
        .post(format!("{}/chat", server.internal))
        .json(&json!({"message": "bonjour"}))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), StatusCode::NOT_FOUND);
    server.stop().await.unwrap();
}

/// The metric names a PromQL expression mentions: identifiers followed by `{` (every dashboard selector is scoped
/// by namespace and job, so each has braces).
fn selector_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    for (i, _) in expr.match_indices('{') {
        let start = expr[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .map_or(0, |p| p + 1);
        if start < i && !bytes[start].is_ascii_digit() {
            names.push(expr[start..i].to_owned());
        }
    }
    names
}

/// The metric names the shipped dashboard's panels read; without the row of the remote model's tokens and spend
/// when `remote` is false (the operator leaves it out for a builtin resource).
fn dashboard_metric_names(remote: bool) -> std::collections::BTreeSet<String> {
    let dashboard: Value =
        serde_json::from_str(include_str!("../../dashboards/chatbot-overview.json")).expect("dashboard JSON");
    let mut wanted = std::collections::BTreeSet::new();
    let mut in_model_row = false;
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            in_model_row = panel["title"] == "Model (tokens and spend)";
        }
        if in_model_row && !remote {
            continue;
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            wanted.extend(selector_names(target["expr"].as_str().unwrap_or("")));
        }
    }
    // Prometheus' own series.
    wanted.remove("up");
    wanted.remove("ALERTS");
    // Exposed only under a memory limit (see the binary's test that runs it in a cgroup).
    wanted.remove("memory_limit_bytes");
    wanted
}

/// A healthy pod that nobody has chatted with yet: every series the shipped dashboard reads already exists, so
/// that the operator's `DashboardMetricsPresent` (and `Ready`) holds from the first scrape. On a real node a
/// fresh pod once stayed `MetricsMissing` for minutes, until its first chat, for want of the two histograms.
#[tokio::test]
async fn a_fresh_chatbot_exposes_every_series_the_dashboard_reads_before_any_chat() {
    let wanted = dashboard_metric_names(false);
    assert!(wanted.contains("chat_response_time_seconds_bucket"), "{wanted:?}");
    assert!(wanted.contains("chat_conversations_total"), "{wanted:?}");

    let (_dir, url) = sqlite_url();
    let server = TestServer::start(config(&url)).await;
    // As the kubelet does before any customer arrives.
    assert_eq!(server.get("/ready").await.0, StatusCode::OK);
    let m = server.metrics().await;
    let missing: Vec<&String> = wanted.iter().filter(|name| m.series(name).is_empty()).collect();
    assert!(missing.is_empty(), "not exposed before the first chat: {missing:?}");
    assert_eq!(
        m.get("ai_model_call_duration_seconds_count", &[("model", "builtin")]),
        Some(0.0)
    );
    server.stop().await.unwrap();
}

/// The same with a remote model and a price table: the model row's series (tokens, spend, model latency) exist
/// before the first call too.
#[tokio::test]
async fn a_fresh_chatbot_on_a_remote_model_exposes_the_model_rows_series_before_any_chat() {
    let wanted = dashboard_metric_names(true);
    assert!(wanted.contains("gen_ai_client_token_usage_sum"), "{wanted:?}");
    let (_fake, base) = common::fake_openai::Fake::start(common::fake_openai::Behaviour::Status(500)).await;
    let (dir, url) = sqlite_url();
    let prices = dir.path().join("prices.yaml");
    std::fs::write(
        &prices,
        "models:\n  shop-assistant-1: {currency: EUR, input: 1, output: 2}\n",
    )
    .unwrap();
    let mut c = common::fake_openai::openai_config(&url, &base);
    c.prices_file = Some(prices);
    let server = TestServer::start(c).await;
    let m = server.metrics().await;
    let missing: Vec<&String> = wanted.iter().filter(|name| m.series(name).is_empty()).collect();
    assert!(missing.is_empty(), "not exposed before the first chat: {missing:?}");
    server.stop().await.unwrap();
}
