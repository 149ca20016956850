//! What is kept and for how long, on both databases: the retention purge deletes exactly what is older than the
//! retention (in several batches, while chats are being written), and an agent erases a conversation on request.

mod common;

use std::time::{Duration, Instant};

use common::fake_openai::{Behaviour, Fake, openai_config, refund_answer};
use common::{AGENT_TOKEN, TestServer, config, sql_count as count, sql_execute as execute, sqlite_url};
use reqwest::StatusCode;
use serde_json::json;
use testsupport::TestPostgres;

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

const OLD_SESSIONS: i64 = 1200;

/// `OLD_SESSIONS` conversations of two hours ago (two messages each, a ticket every tenth), and one started two hours
/// ago but still going (an old message and a recent one).
fn seed(now: i64) -> Vec<String> {
    let old = now - 2 * 3600 * 1000;
    let mut s = Vec::new();
    for i in 0..OLD_SESSIONS {
        let t = old - i;
        s.push(format!(
            "INSERT INTO sessions (id, user_type, language, created_at) VALUES ('old-{i}', 'customer', 'fr', {t})"
        ));
        for role in ["user", "assistant"] {
            s.push(format!(
                "INSERT INTO messages (session_id, role, content, created_at) VALUES ('old-{i}', '{role}', 'ancien', {t})"
            ));
        }
        if i % 100 == 0 {
            // A conversation erased two hours ago: its tombstone goes with the retention, a recent one stays.
            s.push(format!(
                "INSERT INTO erased_sessions (id, erased_at) VALUES ('erased-{i}', {t}), ('erased-now-{i}', {now})"
            ));
            // A rating with its comment: the customer's words go with the retention like the messages.
            s.push(format!(
                "INSERT INTO feedback (exchange_id, session_id, rating, comment, intent, user_type, created_at) \
                 VALUES ('fb-old-{i}', 'old-{i}', 'down', 'ancien', 'refund', 'customer', {t})"
            ));
        }
        if i % 10 == 0 {
            s.push(format!(
                "INSERT INTO tickets (id, session_id, status, reason, intent, user_type, language, message, created_at) \
                 VALUES ('SAV-OLD-{i}', 'old-{i}', 'open', 'customer_request', 'human_request', 'customer', 'fr', 'ancien', {t})"
            ));
        }
    }
    s.push(format!(
        "INSERT INTO sessions (id, user_type, language, created_at) VALUES ('going', 'customer', 'fr', {old})"
    ));
    s.push(format!(
        "INSERT INTO messages (session_id, role, content, created_at) VALUES ('going', 'user', 'ancien', {old})"
    ));
    s.push(format!(
        "INSERT INTO messages (session_id, role, content, created_at) VALUES ('going', 'user', 'récent', {now})"
    ));
    s
}

async fn retention_purges_exactly_what_is_old(url: &str) {
    // The schema first (the chatbot migrates at start), then the old rows.
    let first = TestServer::start(config(url)).await;
    first.stop().await.unwrap();
    let start = now_millis();
    execute(url, &seed(start)).await;

    let mut c = config(url);
    c.retention = Duration::from_secs(3600);
    c.retention_interval = Duration::from_millis(200);
    let server = TestServer::start(c).await;
    // Chats written while the purge runs: none of them may be lost.
    let mut ok = 0;
    for round in 0..8 {
        let chats = (0..5).map(|i| server.chat(json!({"message": format!("Où est ma commande {round}-{i} ?")})));
        for (status, body) in futures::future::join_all(chats).await {
            assert_eq!(status, StatusCode::OK, "{body}");
            ok += 1;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let old = format!("SELECT COUNT(*) FROM messages WHERE created_at < {start} - 3600000");
    while count(url, &old).await > 0 || count(url, "SELECT COUNT(*) FROM sessions WHERE id LIKE 'old-%'").await > 0 {
        assert!(Instant::now() < deadline, "old rows still there after 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        count(url, "SELECT COUNT(*) FROM tickets WHERE id LIKE 'SAV-OLD-%'").await,
        0
    );
    // Everything recent is there: the 40 chats (two messages each), the going conversation's recent message.
    let recent = format!("SELECT COUNT(*) FROM messages WHERE created_at >= {start}");
    assert_eq!(count(url, &recent).await, 2 * ok + 1);
    assert_eq!(count(url, "SELECT COUNT(*) FROM sessions WHERE id = 'going'").await, 1);
    assert_eq!(
        count(url, "SELECT COUNT(*) FROM messages WHERE session_id = 'going'").await,
        1
    );
    let m = server.metrics().await;
    let deleted = |table: &str| m.value("retention_deleted_rows_total", &[("table", table)]);
    assert_eq!(
        deleted("messages"),
        (2 * OLD_SESSIONS + 1) as f64,
        "in several batches of 500"
    );
    assert_eq!(deleted("tickets"), (OLD_SESSIONS / 10) as f64);
    assert_eq!(deleted("sessions"), OLD_SESSIONS as f64);
    let erased = |like: &str| format!("SELECT COUNT(*) FROM erased_sessions WHERE id LIKE '{like}'");
    assert_eq!(count(url, &erased("erased-now-%")).await, OLD_SESSIONS / 100);
    assert_eq!(
        count(url, &erased("erased-%")).await,
        OLD_SESSIONS / 100,
        "only recent tombstones"
    );
    assert_eq!(deleted("erased_sessions"), (OLD_SESSIONS / 100) as f64);
    assert_eq!(deleted("feedback"), (OLD_SESSIONS / 100) as f64);
    assert_eq!(count(url, "SELECT COUNT(*) FROM feedback").await, 0);
    server.stop().await.unwrap();
}

async fn an_agent_erases_a_conversation(url: &str) {
    let server = TestServer::start(config(url)).await;
    let (_, first) = server.chat(json!({"message": "Où est ma commande ?"})).await;
    let session = first["session_id"].as_str().unwrap().to_owned();
    let (_, second) = server
        .chat(json!({"message": "Je veux parler à un conseiller", "session_id": session}))
        .await;
    let ticket = second["ticket_id"].as_str().unwrap().to_owned();
    let (_, other) = server.chat(json!({"message": "Bonjour"})).await;
    let other = other["session_id"].as_str().unwrap().to_owned();

    let client = reqwest::Client::new();
    let erase = |authorization: Option<String>| {
        let mut r = client.delete(server.url(&format!("/conversations/{session}")));
        if let Some(a) = authorization {
            r = r.header("authorization", a);
        }
        r.send()
    };
    let refused = erase(None).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        server.get(&format!("/conversations/{session}")).await.0,
        StatusCode::OK,
        "nothing erased"
    );

    let erased = erase(Some(format!("Bearer {AGENT_TOKEN}"))).await.unwrap();
    assert_eq!(erased.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        server.get(&format!("/conversations/{session}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(server.get(&format!("/tickets/{ticket}")).await.0, StatusCode::NOT_FOUND);
    for table in ["messages", "tickets"] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE session_id = '{session}'");
        assert_eq!(count(url, &sql).await, 0, "{table}");
    }
    assert_eq!(
        count(url, &format!("SELECT COUNT(*) FROM sessions WHERE id = '{session}'")).await,
        0
    );
    assert_eq!(
        server.get(&format!("/conversations/{other}")).await.0,
        StatusCode::OK,
        "others untouched"
    );

    let again = erase(Some(format!("Bearer {AGENT_TOKEN}"))).await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let m = server.metrics().await;
    assert_eq!(m.value("conversations_erased_total", &[]), 1.0);
    server.stop().await.unwrap();
}

/// A chat in flight while its conversation is erased must not bring the conversation back. The model's answer is
/// held until the erasure has returned, then let go: the chat is refused, and so is any later one for that session.
/// With `replicas` 2 (PostgreSQL), another replica erases the conversation.
async fn an_erased_conversation_stays_erased(url: &str, replicas: usize) {
    let (fake, base) = Fake::start(Behaviour::Answer(refund_answer())).await;
    let server = TestServer::start(openai_config(url, &base)).await;
    let other = match replicas {
        1 => None,
        _ => Some(TestServer::start(config(url)).await),
    };
    let eraser = other.as_ref().unwrap_or(&server);
    let (_, first) = server.chat(json!({"message": "When is my money back?"})).await;
    let session = first["session_id"].as_str().unwrap().to_owned();

    fake.hold();
    let racing = {
        let (client, chat) = (server.client.clone(), server.url("/chat"));
        let body = json!({"message": "And for a gift card?", "session_id": session});
        tokio::spawn(async move {
            let r = client.post(chat).json(&body).send().await.unwrap();
            (r.status(), r.json::<serde_json::Value>().await.unwrap())
        })
    };
    fake.wait_for_calls(2).await;
    assert_eq!(
        eraser.delete(&format!("/conversations/{session}")).await,
        StatusCode::NO_CONTENT
    );
    fake.release(1);
    let (status, body) = racing.await.unwrap();
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(body["field"], "session_id", "{body}");

    for table in ["messages", "tickets"] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE session_id = '{session}'");
        assert_eq!(count(url, &sql).await, 0, "{table} written after the erasure");
    }
    let sql = format!("SELECT COUNT(*) FROM sessions WHERE id = '{session}'");
    assert_eq!(count(url, &sql).await, 0, "the session came back");
    assert_eq!(
        server.get(&format!("/conversations/{session}")).await.0,
        StatusCode::NOT_FOUND
    );

    // Later, the same session id is refused the same way, and nothing is stored for it.
    fake.release(10);
    let (status, body) = server
        .chat(json!({"message": "Hello again", "session_id": session}))
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::GONE, Some("session_id")),
        "{body}"
    );
    assert_eq!(count(url, &sql).await, 0);
    // A refusal is the client's to act on (start a new conversation), not a failed chat.
    let m = server.metrics().await;
    assert_eq!(
        m.value("chat_requests_total", &[("user_type", "customer"), ("status", "error")]),
        0.0
    );
    server.stop().await.unwrap();
    if let Some(other) = other {
        other.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_erased_conversation_stays_erased() {
    let (_dir, url) = sqlite_url();
    an_erased_conversation_stays_erased(&url, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_erased_conversation_stays_erased() {
    let pg = TestPostgres::start().expect("start PostgreSQL");
    an_erased_conversation_stays_erased(&pg.url(), 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_conversation_erased_by_another_replica_stays_erased() {
    let pg = TestPostgres::start().expect("start PostgreSQL");
    an_erased_conversation_stays_erased(&pg.url(), 2).await;
}

/// Chats, ratings and erasures racing freely on two replicas of one PostgreSQL database: every erasure succeeds,
/// every chat and rating is stored or refused as erased, and no erased conversation keeps a row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_chats_racing_erasures_on_two_replicas_leave_nothing() {
    let pg = TestPostgres::start().expect("start PostgreSQL");
    let url = pg.url();
    let (a, b) = (
        TestServer::start(config(&url)).await,
        TestServer::start(config(&url)).await,
    );
    let mut sessions = Vec::new();
    for i in 0..20 {
        let (_, body) = a.chat(json!({"message": format!("Où est ma commande {i} ?")})).await;
        let id = |f: &str| body[f].as_str().unwrap().to_owned();
        sessions.push((id("session_id"), id("exchange_id")));
    }
    let (ra, rb) = (&a, &b);
    let races = sessions.iter().map(|(session, exchange)| async move {
        let chats = (0..8).map(|i| rb.chat(json!({"message": format!("Et ma facture {i} ?"), "session_id": session})));
        let rating = rb.client.post(rb.url(&format!("/conversations/{session}/feedback")));
        let rating = rating
            .json(&json!({"exchange_id": exchange, "rating": "down", "comment": "lent"}))
            .send();
        let path = format!("/conversations/{session}");
        futures::join!(futures::future::join_all(chats), rating, ra.delete(&path))
    });
    for (chats, rating, erased) in futures::future::join_all(races).await {
        assert_eq!(erased, StatusCode::NO_CONTENT);
        for (status, body) in chats {
            assert!(
                status == StatusCode::OK || status == StatusCode::GONE,
                "{status} {body}"
            );
        }
        let rating = rating.unwrap().status();
        assert!(rating == StatusCode::CREATED || rating == StatusCode::GONE, "{rating}");
    }
    let list = sessions
        .iter()
        .map(|(s, _)| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    for (table, column) in [
        ("messages", "session_id"),
        ("tickets", "session_id"),
        ("feedback", "session_id"),
        ("sessions", "id"),
    ] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE {column} IN ({list})");
        assert_eq!(count(&url, &sql).await, 0, "{table} of erased conversations");
    }
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_retention_purges_exactly_what_is_old() {
    let (_dir, url) = sqlite_url();
    retention_purges_exactly_what_is_old(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_retention_purges_exactly_what_is_old() {
    let pg = TestPostgres::start().expect("start PostgreSQL");
    retention_purges_exactly_what_is_old(&pg.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_agent_erases_a_conversation() {
    let (_dir, url) = sqlite_url();
    an_agent_erases_a_conversation(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_agent_erases_a_conversation() {
    let pg = TestPostgres::start().expect("start PostgreSQL");
    an_agent_erases_a_conversation(&pg.url()).await;
}
