//! What customers said and what conversations came to, on both databases: ratings of answers (stored with the
//! conversation, counted, refused when wrong or late) and the outcome each conversation is decided with once idle.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, config, sql_count as count, sqlite_url};
use reqwest::StatusCode;
use serde_json::{Value, json};
use testsupport::{Exposition, TestPostgres};

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn rate(server: &TestServer, session: &str, body: Value) -> (StatusCode, Value) {
    let r = server
        .client
        .post(server.url(&format!("/conversations/{session}/feedback")))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A chat's (session id, exchange id, intent).
async fn chat(server: &TestServer, body: Value) -> (String, String, String) {
    let (status, body) = server.chat(body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let field = |f: &str| body[f].as_str().unwrap().to_owned();
    (field("session_id"), field("exchange_id"), field("intent"))
}

async fn ratings_are_stored_counted_and_refused_when_wrong(url: &str) {
    let server = TestServer::start(config(url)).await;
    let (session, exchange, intent) = chat(&server, json!({"message": "Où est ma commande ?"})).await;
    assert_eq!(intent, "order_tracking");
    let (other, other_exchange, _) = chat(&server, json!({"message": "Bonjour"})).await;

    let (status, body) = rate(
        &server,
        &session,
        json!({"exchange_id": exchange, "rating": "down", "comment": "Toujours rien reçu"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body,
        json!({"session_id": session, "exchange_id": exchange, "rating": "down"})
    );

    // One rating per answer: the first stands.
    let (status, body) = rate(&server, &session, json!({"exchange_id": exchange, "rating": "up"})).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::CONFLICT, Some("exchange_id")),
        "{body}"
    );
    // An answer of another conversation, or none, is not found in this one.
    for id in [other_exchange.as_str(), "no-such-answer"] {
        let (status, body) = rate(&server, &session, json!({"exchange_id": id, "rating": "up"})).await;
        assert_eq!(
            (status, body["field"].as_str()),
            (StatusCode::NOT_FOUND, Some("exchange_id")),
            "{body}"
        );
    }
    let (status, body) = rate(
        &server,
        "no-such-session",
        json!({"exchange_id": exchange, "rating": "up"}),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::NOT_FOUND, Some("session_id")),
        "{body}"
    );
    let (status, body) = rate(&server, &other, json!({"exchange_id": other_exchange, "rating": "5"})).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rating")),
        "{body}"
    );
    let (status, _) = server
        .post_raw(
            &format!("/conversations/{other}/feedback"),
            "text/plain",
            b"up".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // The rating and its comment are part of the conversation.
    let (_, conversation) = server.get(&format!("/conversations/{session}")).await;
    let answer = &conversation["messages"][1];
    assert_eq!(
        (&answer["exchange_id"], &answer["rating"], &answer["comment"]),
        (&json!(exchange), &json!("down"), &json!("Toujours rien reçu")),
        "{conversation}"
    );
    assert!(
        conversation["messages"][0].get("exchange_id").is_none(),
        "questions are not rated"
    );

    let m = server.metrics().await;
    let rated = |user_type, intent, rating| {
        m.get(
            "chat_feedback_total",
            &[("user_type", user_type), ("intent", intent), ("rating", rating)],
        )
    };
    assert_eq!(rated("customer", "order_tracking", "down"), Some(1.0));
    assert_eq!(
        rated("customer", "order_tracking", "up"),
        Some(0.0),
        "declared from the start"
    );
    assert_eq!(rated("guest", "unknown", "up"), Some(0.0));
    assert_eq!(m.series("chat_feedback_total").iter().map(|(_, v)| v).sum::<f64>(), 1.0);

    // Erased with the conversation; a rating afterwards is refused as for a chat.
    assert_eq!(
        server.delete(&format!("/conversations/{session}")).await,
        StatusCode::NO_CONTENT
    );
    let sql = format!("SELECT COUNT(*) FROM feedback WHERE session_id = '{session}'");
    assert_eq!(count(url, &sql).await, 0);
    let (status, body) = rate(&server, &session, json!({"exchange_id": exchange, "rating": "up"})).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::GONE, Some("session_id")),
        "{body}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn sqlite_ratings_are_stored_counted_and_refused_when_wrong() {
    let (_dir, url) = sqlite_url();
    ratings_are_stored_counted_and_refused_when_wrong(&url).await;
}

#[tokio::test]
async fn postgres_ratings_are_stored_counted_and_refused_when_wrong() {
    let pg = TestPostgres::start().expect("start PostgreSQL");
    ratings_are_stored_counted_and_refused_when_wrong(&pg.url()).await;
}

/// The conversations of [`known_conversations`], and the outcome each must be decided with.
const EXPECTED: [(&str, &str, &str); 5] = [
    ("customer", "none", "abandoned"),
    ("customer", "order_tracking", "resolved"),
    ("customer", "refund", "abandoned"),
    ("premium", "human_request", "escalated"),
    ("guest", "order_tracking", "resolved"),
];

/// Five conversations, one of each kind the README defines, written to `servers` in turn.
async fn known_conversations(servers: &[&TestServer]) {
    let on = |i: usize| servers[i % servers.len()];
    // Small talk only.
    chat(on(0), json!({"message": "Bonjour"})).await;
    // Small talk, then a question answered: the topic is the question's.
    let (s, _, _) = chat(on(1), json!({"message": "Bonjour"})).await;
    chat(on(2), json!({"message": "Où est ma commande ?", "session_id": s})).await;
    // Answered, then rated down: the customer left unhelped.
    let (s, e, _) = chat(on(3), json!({"message": "Quand serai-je remboursé ?"})).await;
    assert_eq!(
        rate(on(4), &s, json!({"exchange_id": e, "rating": "down"})).await.0,
        StatusCode::CREATED
    );
    // A human asked for.
    chat(
        on(5),
        json!({"message": "Je veux parler à un conseiller", "user_type": "premium"}),
    )
    .await;
    // Answered and rated up.
    let (s, e, _) = chat(on(6), json!({"message": "Where is my order?", "user_type": "guest"})).await;
    assert_eq!(
        rate(on(7), &s, json!({"exchange_id": e, "rating": "up"})).await.0,
        StatusCode::CREATED
    );
}

/// The sum of `chat_conversations_total` over every server, by (user_type, intent, outcome), zeros left out.
async fn decided(servers: &[&TestServer]) -> Vec<(String, String, String, f64)> {
    let mut all: std::collections::BTreeMap<(String, String, String), f64> = Default::default();
    for server in servers {
        let m: Exposition = server.metrics().await;
        for (series, value) in m.series("chat_conversations_total") {
            let label = |name: &str| {
                let start = series.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                series[start..].split('"').next().unwrap().to_owned()
            };
            *all.entry((label("user_type"), label("intent"), label("outcome")))
                .or_default() += value;
        }
    }
    all.into_iter()
        .filter(|(_, v)| *v > 0.0)
        .map(|((u, i, o), v)| (u, i, o, v))
        .collect()
}

async fn outcomes_of_known_conversations(url: &str, replicas: usize) {
    let mut c = config(url);
    c.conversation_idle = Duration::from_millis(1500);
    c.outcome_interval = Duration::from_millis(100);
    let mut servers = Vec::new();
    for _ in 0..replicas {
        servers.push(TestServer::start(c.clone()).await);
    }
    let refs: Vec<&TestServer> = servers.iter().collect();
    // A conversation whose last message predates the migration that started deciding outcomes: never decided, so
    // that an upgrade does not count months of conversations at once.
    let before = now_millis() - 2 * 3600 * 1000;
    common::sql_execute(
        url,
        &[
            format!("INSERT INTO sessions (id, user_type, language, created_at) VALUES ('before', 'customer', 'fr', {before})"),
            format!("INSERT INTO messages (session_id, role, content, created_at) VALUES ('before', 'user', 'ancien', {before})"),
        ],
    )
    .await;
    known_conversations(&refs).await;

    let mut expected: Vec<(String, String, String, f64)> = EXPECTED
        .iter()
        .map(|(u, i, o)| (u.to_string(), i.to_string(), o.to_string(), 1.0))
        .collect();
    expected.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = decided(&refs).await;
    while seen.len() < expected.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = decided(&refs).await;
    }
    assert_eq!(seen, expected);
    // Decided once: more rounds, on every replica, count nothing more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(decided(&refs).await, expected);
    let undecided = count(url, "SELECT COUNT(*) FROM sessions WHERE outcome IS NULL").await;
    assert_eq!(undecided, 1, "only the conversation from before the migration");
    assert_eq!(
        count(
            url,
            "SELECT COUNT(*) FROM sessions WHERE id = 'before' AND outcome IS NULL"
        )
        .await,
        1
    );
    for server in servers {
        server.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_outcomes_of_known_conversations() {
    let (_dir, url) = sqlite_url();
    outcomes_of_known_conversations(&url, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outcomes_of_known_conversations_on_two_replicas() {
    let pg = TestPostgres::start().expect("start PostgreSQL");
    outcomes_of_known_conversations(&pg.url(), 2).await;
}
