//! Persistence on both databases: history survives a restart, every accepted message is stored under concurrency,
//! and a PostgreSQL outage gives 503s and recovers by itself.

mod common;

use std::time::Duration;

use common::{TestServer, config, sqlite_url};
use reqwest::StatusCode;
use serde_json::json;
use testsupport::TestPostgres;

/// Counts rows straight from the database, not through the API under test.
async fn count_rows(url: &str, table: &str) -> i64 {
    common::sql_count(url, &format!("SELECT COUNT(*) FROM {table}")).await
}

async fn history_survives_a_restart(url: &str) {
    let server = TestServer::start(config(url)).await;
    let (_, first) = server
        .chat(json!({"message": "Where is my order?", "user_type": "agent"}))
        .await;
    let session = first["session_id"].as_str().unwrap().to_owned();
    let (_, second) = server
        .chat(json!({"message": "I want to talk to a human", "session_id": session}))
        .await;
    let ticket = second["ticket_id"].as_str().unwrap().to_owned();
    let (_, before) = server.get(&format!("/conversations/{session}")).await;
    let (_, ticket_before) = server.get(&format!("/tickets/{ticket}")).await;
    server.stop().await.unwrap();

    let server = TestServer::start(config(url)).await;
    let (status, after) = server.get(&format!("/conversations/{session}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after, before);
    assert_eq!(after["messages"].as_array().unwrap().len(), 4);
    assert_eq!(after["user_type"], "agent");
    let (status, ticket_after) = server.get(&format!("/tickets/{ticket}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ticket_after, ticket_before);
    // The session goes on after the restart.
    let (status, third) = server
        .chat(json!({"message": "Thanks a lot", "session_id": session}))
        .await;
    assert_eq!(
        (status, third["session_id"].as_str()),
        (StatusCode::OK, Some(session.as_str()))
    );
    server.stop().await.unwrap();
    assert_eq!(count_rows(url, "messages").await, 6);
    assert_eq!(count_rows(url, "sessions").await, 1);
    assert_eq!(count_rows(url, "tickets").await, 1);
}

/// 200 chats at once: 200 answers, 200 sessions and 400 messages in the database (group commit loses nothing).
async fn every_accepted_message_is_stored(url: &str) {
    let server = TestServer::start(config(url)).await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let client = server.client.clone();
        let target = server.url("/chat");
        let message = if i % 10 == 0 {
            "je veux un humain"
        } else {
            "Où est mon colis ?"
        };
        tasks.push(tokio::spawn(async move {
            client
                .post(target)
                .json(&json!({"message": message}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == StatusCode::OK {
            ok += 1;
        }
    }
    assert_eq!(ok, 200);
    let m = server.metrics().await;
    let batches = m.value("db_query_duration_seconds_count", &[("operation", "save_exchanges")]);
    assert!((1.0..=200.0).contains(&batches));
    server.stop().await.unwrap();
    assert_eq!(count_rows(url, "sessions").await, 200);
    assert_eq!(count_rows(url, "messages").await, 400);
    assert_eq!(count_rows(url, "tickets").await, 20);
    println!("200 concurrent chats stored in {batches} transactions");
}

#[tokio::test]
async fn sqlite_history_survives_a_restart() {
    let (_dir, url) = sqlite_url();
    history_survives_a_restart(&url).await;
}

#[tokio::test]
async fn sqlite_stores_every_accepted_message() {
    let (_dir, url) = sqlite_url();
    every_accepted_message_is_stored(&url).await;
}

#[tokio::test]
async fn sqlite_file_is_created_with_its_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    assert!(!path.exists());
    let url = format!("sqlite://{}", path.display());
    let server = TestServer::start(config(&url)).await;
    server.stop().await.unwrap();
    assert!(path.exists());
    assert_eq!(count_rows(&url, "messages").await, 0);
}

#[tokio::test]
async fn unsupported_database_url_is_refused_with_a_message() {
    let c = config("mysql://root:pw@db/chat");
    let listeners = chatbot::app::Listeners::bind(&c).await.unwrap();
    let err = chatbot::app::serve(c, listeners, async {}).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("unsupported database URL"), "{text}");
    assert!(!text.contains("pw@"), "the password leaked: {text}");
}

#[tokio::test]
async fn postgres_history_survives_a_restart() {
    let pg = TestPostgres::start().expect("start PostgreSQL");
    history_survives_a_restart(&pg.url()).await;
}

#[tokio::test]
async fn postgres_stores_every_accepted_message() {
    let pg = TestPostgres::start().expect("start PostgreSQL");
    every_accepted_message_is_stored(&pg.url()).await;
}

/// Two replicas share one PostgreSQL database: what one stores, the other reads.
#[tokio::test]
async fn postgres_replicas_share_conversations() {
    let pg = TestPostgres::start().expect("start PostgreSQL");
    let a = TestServer::start(config(&pg.url())).await;
    let b = TestServer::start(config(&pg.url())).await;
    let (_, first) = a.chat(json!({"message": "Bonjour"})).await;
    let session = first["session_id"].as_str().unwrap();
    let (status, _) = b
        .chat(json!({"message": "Où est ma commande ?", "session_id": session}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, history) = a.get(&format!("/conversations/{session}")).await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 4);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test]
async fn postgres_outage_gives_503_and_recovers_by_itself() {
    let pg = TestPostgres::start().expect("start PostgreSQL");
    let server = TestServer::start(config(&pg.url())).await;
    let (status, before) = server.chat(json!({"message": "Where is my order?"})).await;
    assert_eq!(status, StatusCode::OK);

    pg.stop_server().unwrap();
    let (status, body) = server.get("/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "unavailable");
    let (status, body) = server.chat(json!({"message": "Where is my order?"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["error"].as_str().unwrap().contains("database"), "{body}");
    let session = before["session_id"].as_str().unwrap();
    let (status, _) = server
        .chat(json!({"message": "Where is my order?", "session_id": session}))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        server.get(&format!("/conversations/{session}")).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(server.get("/tickets/SAV-X").await.0, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = server.get("/health").await;
    assert_eq!(status, StatusCode::OK, "liveness must not depend on the database");

    pg.start_server().unwrap();
    let mut recovered = false;
    for _ in 0..50 {
        if server.get("/ready").await.0 == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "/ready did not recover");
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..20 {
        status = server.chat(json!({"message": "Where is my order?"})).await.0;
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::OK);

    let m = server.metrics().await;
    assert!(m.value("chat_requests_total", &[("user_type", "customer"), ("status", "error")]) >= 1.0);
    assert!(
        m.value(
            "http_requests_total",
            &[("method", "POST"), ("endpoint", "/chat"), ("status", "503")]
        ) >= 1.0
    );
    server.stop().await.unwrap();
    // What was accepted before the outage is still there.
    let server = TestServer::start(config(&pg.url())).await;
    assert_eq!(server.get(&format!("/conversations/{session}")).await.0, StatusCode::OK);
    server.stop().await.unwrap();
}

/// PostgreSQL often starts beside the chatbot: a database that is down when the chatbot starts makes it serve as
/// not ready (liveness fine, so Kubernetes does not restart it), then migrate and turn ready once it answers.
#[tokio::test]
async fn postgres_down_at_startup_serves_not_ready_then_migrates_and_recovers() {
    let pg = TestPostgres::start().expect("start PostgreSQL");
    pg.stop_server().unwrap();
    let server = TestServer::start(config(&pg.url())).await;
    assert_eq!(server.get("/health").await.0, StatusCode::OK);
    let (status, body) = server.get("/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("schema is not in place"),
        "{body}"
    );
    let (status, body) = server.chat(json!({"message": "Where is my order?"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["error"].as_str().unwrap().contains("database"), "{body}");

    pg.start_server().unwrap();
    let start = std::time::Instant::now();
    while server.get("/ready").await.0 != StatusCode::OK {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not ready 30 s after PostgreSQL came up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = server.chat(json!({"message": "Where is my order?"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(count_rows(&pg.url(), "messages").await, 2);
    let m = server.metrics().await;
    assert!(m.value("db_query_duration_seconds_count", &[("operation", "migrate")]) >= 2.0);
    server.stop().await.unwrap();
}
