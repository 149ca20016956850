//! Tickets are for support agents: a bearer token from CHATBOT_AGENT_TOKENS (several at once, for rotation).
//! Without one, every ticket id — existing, unknown or malformed — gets the same 401 with the JSON error, counted
//! in http_requests_total; a customer still reads the conversation of the session id they were given, and only
//! agents list every conversation.

mod common;

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{AGENT_TOKEN, TestServer, config, sqlite_url};

async fn ticket_and_session(server: &TestServer) -> (String, String) {
    let (_, body) = server.chat(json!({"message": "Je veux parler à un conseiller"})).await;
    (
        body["ticket_id"].as_str().unwrap().to_owned(),
        body["session_id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_ticket_needs_an_agent_token_and_says_nothing_of_its_id_without_one() {
    let (_dir, url) = sqlite_url();
    let server = TestServer::start(config(&url)).await;
    let (ticket, session) = ticket_and_session(&server).await;

    let refusals = [
        None,
        Some("Bearer not-the-agent-token-at-all"),
        Some("Basic YWdlbnQ6cGFzcw=="),
        Some("Bearer "),
    ];
    let mut answers: Vec<(StatusCode, Value)> = Vec::new();
    for authorization in refusals {
        for id in [ticket.as_str(), "SAV-00000000000000000000", "%00"] {
            let (status, body) = server.get_as(&format!("/tickets/{id}"), authorization).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization:?} {id}: {body}");
            assert_eq!(body["field"], "authorization", "{body}");
            answers.push((status, body));
        }
    }
    // The same answer for an existing ticket as for one that does not exist.
    for chunk in answers.chunks(3) {
        assert!(chunk.iter().all(|a| a == &chunk[0]), "{chunk:?}");
    }

    let (status, body) = server
        .get_as(&format!("/tickets/{ticket}"), Some(&format!("Bearer {AGENT_TOKEN}")))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["session_id"], session.as_str());
    let (status, _) = server.get("/tickets/SAV-00000000000000000000").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an agent learns that it does not exist");

    // The customer reads their own conversation with the session id alone.
    let (status, conversation) = server.get_as(&format!("/conversations/{session}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(conversation["messages"].as_array().unwrap().len(), 2);

    let m = server.metrics().await;
    let count = |code: &str| {
        m.value(
            "http_requests_total",
            &[
                ("method", "GET"),
                ("endpoint", "/tickets/{ticket_id}"),
                ("status", code),
            ],
        )
    };
    assert_eq!(count("401"), 12.0);
    assert_eq!(count("200"), 1.0);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn tokens_rotate_without_downtime_and_none_means_no_agent_access() {
    let (_dir, url) = sqlite_url();
    let mut c = config(&url);
    c.agent_tokens = Some("old-agent-token-0123456789\nnew-agent-token-0123456789".into());
    let server = TestServer::start(c).await;
    let (ticket, _) = ticket_and_session(&server).await;
    for token in ["old-agent-token-0123456789", "new-agent-token-0123456789"] {
        let (status, _) = server
            .get_as(&format!("/tickets/{ticket}"), Some(&format!("Bearer {token}")))
            .await;
        assert_eq!(status, StatusCode::OK, "{token}");
    }
    server.stop().await.unwrap();

    let (_dir, url) = sqlite_url();
    let mut c = config(&url);
    c.agent_tokens = None;
    let server = TestServer::start(c).await;
    let (ticket, _) = ticket_and_session(&server).await;
    let (status, body) = server.get(&format!("/tickets/{ticket}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("not configured"), "{body}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_short_agent_token_stops_the_chatbot_at_startup() {
    let (_dir, url) = sqlite_url();
    let mut c = config(&url);
    c.agent_tokens = Some("short".into());
    let listeners = chatbot::app::Listeners::bind(&c).await.unwrap();
    let err = chatbot::app::serve(c, listeners, std::future::pending())
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("CHATBOT_AGENT_TOKENS"), "{err:#}");
}

/// Listing every conversation names every customer's session: agents only, a page at a time, newest first, with
/// no conversation skipped or repeated across pages.
async fn agents_list_conversations_page_by_page(url: &str) {
    let server = TestServer::start(config(url)).await;
    let mut sessions = Vec::new();
    // Tickets opened, by session, as the answers said.
    let mut tickets = std::collections::HashMap::<String, i64>::new();
    for i in 0..7 {
        let message = if i == 3 {
            "Je veux parler à un conseiller".to_owned()
        } else {
            format!("Où est ma commande {i} ?")
        };
        let (_, body) = server.chat(json!({"message": message})).await;
        let session = body["session_id"].as_str().unwrap().to_owned();
        *tickets.entry(session.clone()).or_default() += i64::from(body["ticket_id"].is_string());
        sessions.push(session);
        // Distinct creation times, so that "newest first" has one answer (ties are ordered by id).
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let (_, body) = server
        .chat(json!({"message": "et la suite ?", "session_id": sessions[0]}))
        .await;
    *tickets.get_mut(&sessions[0]).unwrap() += i64::from(body["ticket_id"].is_string());
    assert_eq!(tickets[&sessions[3]], 1, "an escalation opened a ticket");
    // Five conversations begun in the same millisecond an hour ago: the oldest, across a page boundary.
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 3_600_000;
    let mut tied: Vec<String> = (0..5).map(|i| format!("tied-{i}")).collect();
    let inserts: Vec<String> = tied
        .iter()
        .map(|id| {
            format!("INSERT INTO sessions (id, user_type, language, created_at) VALUES ('{id}', 'customer', 'fr', {hour_ago})")
        })
        .collect();
    common::sql_execute(url, &inserts).await;
    for id in &tied {
        tickets.insert(id.clone(), 0);
    }

    for authorization in [None, Some("Bearer not-the-agent-token-at-all")] {
        let (status, body) = server.get_as("/conversations", authorization).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["field"], "authorization");
    }

    let mut listed = Vec::new();
    let mut path = "/conversations?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let (status, page) = server.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        let items = page["conversations"].as_array().unwrap();
        assert!(items.len() <= 3);
        for c in items {
            let id = c["session_id"].as_str().unwrap().to_owned();
            let expected_messages = if id == sessions[0] {
                4
            } else if id.starts_with("tied-") {
                0
            } else {
                2
            };
            assert_eq!(c["messages"], expected_messages, "{c}");
            assert_eq!(c["tickets"], tickets[&id], "{c}");
            listed.push(id);
        }
        match page["next"].as_str() {
            Some(next) => {
                let url = reqwest::Url::parse_with_params("http://x/conversations", [("limit", "3"), ("before", next)]);
                path = format!("/conversations?{}", url.unwrap().query().unwrap());
            }
            None => break,
        }
    }
    assert_eq!(pages, 4);
    // Newest first: the reverse of the order they were created in, then the tied ones by id, descending.
    let mut expected = sessions.clone();
    expected.reverse();
    tied.reverse();
    expected.extend(tied);
    assert_eq!(listed, expected);

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=x", "limit"),
        ("before=nope", "before"),
    ] {
        let (status, body) = server.get(&format!("/conversations?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(body["field"], field, "{query}: {body}");
    }
    let (status, body) = server.get("/conversations?page=2").await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("query")),
        "{body}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn sqlite_agents_list_conversations_page_by_page() {
    let (_dir, url) = sqlite_url();
    agents_list_conversations_page_by_page(&url).await;
}

#[tokio::test]
async fn postgres_agents_list_conversations_page_by_page() {
    let pg = testsupport::TestPostgres::start().expect("start PostgreSQL");
    agents_list_conversations_page_by_page(&pg.url()).await;
}
