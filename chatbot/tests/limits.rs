//! Oversized requests get their status: a client sending a body over the limit reads its 413 with the JSON error,
//! on a fresh connection and on one already used, instead of a connection reset while it is still sending. Both as
//! an HTTP client library sends (reqwest: the body first, then the answer) and over raw TCP (reading while sending).

mod common;

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::TestServer;

/// Writes one request with `body`, sending the body while the answer is read (as a client does), and returns the
/// status and JSON body of the answer; an error when the connection breaks before a whole answer arrives.
async fn exchange(conn: &mut TcpStream, path: &str, body: Vec<u8>) -> std::io::Result<(u16, Value)> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let (mut reader, mut writer) = conn.split();
    let send = async {
        writer.write_all(head.as_bytes()).await?;
        // The server may answer before it read everything; a write error then is the client's business, not ours.
        let _ = writer.write_all(&body).await;
        Ok::<_, std::io::Error>(())
    };
    let receive = read_response(&mut reader);
    let (sent, received) = tokio::join!(send, receive);
    sent?;
    received
}

async fn read_response(reader: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<(u16, Value)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed before the answer",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed within the answer",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = serde_json::from_slice(&buf[head_end..head_end + length]).unwrap_or(Value::Null);
    Ok((status, body))
}

fn oversized(len: usize) -> Vec<u8> {
    let mut body = br#"{"message":""#.to_vec();
    body.resize(len - 2, b'a');
    body.extend_from_slice(br#""}"#);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_gets_its_413_on_fresh_and_reused_connections() {
    let (_dir, url) = common::sqlite_url();
    let server = TestServer::start(common::config(&url)).await;
    let addr = server.url("").trim_start_matches("http://").to_owned();
    for size in [64 << 10, 256 << 10, 1 << 20, 2 << 20, 8 << 20] {
        for attempt in 0..4 {
            let mut conn = TcpStream::connect(&addr).await.unwrap();
            if attempt % 2 == 1 {
                // A keep-alive connection that already carried a request.
                let ok = exchange(&mut conn, "/chat", br#"{"message":"bonjour"}"#.to_vec())
                    .await
                    .unwrap();
                assert_eq!(ok.0, 200, "{ok:?}");
            }
            let (status, body) =
                tokio::time::timeout(Duration::from_secs(30), exchange(&mut conn, "/chat", oversized(size)))
                    .await
                    .expect("answered within 30 s")
                    .unwrap_or_else(|e| panic!("{size} bytes, attempt {attempt}: no 413 but {e}"));
            assert_eq!(status, 413, "{size} bytes: {body}");
            assert!(body["error"].as_str().unwrap().contains("larger than"), "{body}");
        }
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_client_reads_its_413_whatever_the_body_size() {
    let (_dir, url) = common::sqlite_url();
    let server = TestServer::start(common::config(&url)).await;
    let reused = reqwest::Client::new();
    let mut failures = Vec::new();
    for size in [64 << 10, 256 << 10, 1 << 20, 2 << 20, 8 << 20] {
        for attempt in 0..6 {
            let client = if attempt % 2 == 0 {
                reqwest::Client::new()
            } else {
                reused.clone()
            };
            let sent = client
                .post(server.url("/chat"))
                .header("content-type", "application/json")
                .body(oversized(size))
                .send()
                .await;
            match sent {
                Ok(r) if r.status() == 413 => {
                    let body: Value = r.json().await.unwrap();
                    assert!(body["error"].as_str().unwrap().contains("larger than"), "{body}");
                }
                Ok(r) => failures.push(format!("{size} bytes: {}", r.status())),
                Err(e) => failures.push(format!("{size} bytes, attempt {attempt}: {e:?}")),
            }
        }
        // The reused client's connection (kept alive after its drained 413) still serves the next request.
        let next = reused
            .post(server.url("/chat"))
            .json(&serde_json::json!({"message": "bonjour"}))
            .send()
            .await;
        assert_eq!(next.unwrap().status(), 200);
    }
    assert!(
        failures.is_empty(),
        "{} of 30 got no 413: {failures:#?}",
        failures.len()
    );
    server.stop().await.unwrap();
}

/// A body declared larger than what is worth draining is refused at once, and the connection is closed with the
/// answer (saying so), rather than read for nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_too_large_to_drain_is_refused_before_it_is_sent() {
    let (_dir, url) = common::sqlite_url();
    let server = TestServer::start(common::config(&url)).await;
    let addr = server.url("").trim_start_matches("http://").to_owned();
    let mut conn = TcpStream::connect(&addr).await.unwrap();
    let declared = chatbot::routes::DRAIN_MAX_BYTES + 1;
    let head = format!(
        "POST /chat HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {declared}\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut answer))
        .await
        .expect("answered and closed without waiting for the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 413"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(answer.contains("larger than 32768 bytes"), "{answer}");
    server.stop().await.unwrap();
}

/// A POST /chat with a forwarded-for header; status, Retry-After and JSON body.
async fn chat_from(server: &TestServer, body: Value, forwarded_for: Option<&str>) -> (u16, Option<u64>, Value) {
    let mut request = reqwest::Client::new().post(server.url("/chat")).json(&body);
    if let Some(xff) = forwarded_for {
        request = request.header("x-forwarded-for", xff);
    }
    let r = request.send().await.unwrap();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (r.status().as_u16(), retry, r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_over_its_rate_gets_429_with_retry_after_and_others_are_not_slowed() {
    let (_dir, url) = common::sqlite_url();
    let mut c = common::config(&url);
    c.chat_rate_per_session = 6; // bursts of 5 (the floor), then one every 10 s
    let server = TestServer::start(c).await;
    let (_, _, first) = chat_from(&server, serde_json::json!({"message": "bonjour"}), None).await;
    let session = first["session_id"].as_str().unwrap().to_owned();
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let (status, retry, body) = chat_from(
            &server,
            serde_json::json!({"message": "où est ma commande", "session_id": session}),
            None,
        )
        .await;
        statuses.push(status);
        if status == 429 {
            assert!(retry.is_some_and(|s| (1..=10).contains(&s)), "{retry:?}");
            assert_eq!(body["field"], "session_id", "{body}");
        }
    }
    // The chat that opened the session named none; the five that name it are the burst, then 429.
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);
    // Ratings draw on the same bucket: they cannot flood the database either.
    let rating = reqwest::Client::new()
        .post(server.url(&format!("/conversations/{session}/feedback")))
        .json(&serde_json::json!({"exchange_id": first["exchange_id"], "rating": "up"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rating.status(), 429);
    assert!(rating.headers().contains_key("retry-after"));
    let body: Value = rating.json().await.unwrap();
    assert_eq!(body["field"], "session_id", "{body}");
    // Another session is not slowed.
    let (status, _, _) = chat_from(&server, serde_json::json!({"message": "bonjour"}), None).await;
    assert_eq!(status, 200);
    let m = server.metrics().await;
    assert_eq!(
        m.value("chat_requests_limited_total", &[("reason", "session_rate")]),
        3.0
    );
    assert_eq!(
        m.value(
            "http_requests_total",
            &[("method", "POST"), ("endpoint", "/chat"), ("status", "429")]
        ),
        2.0
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_is_known_by_its_address_and_forwarded_for_only_through_a_trusted_proxy() {
    let (_dir, url) = common::sqlite_url();
    let mut c = common::config(&url);
    c.chat_rate_per_client = 5; // bursts of 5
    let server = TestServer::start(c.clone()).await;
    // Not a trusted proxy: a client cannot dodge its limit by writing the header.
    let mut statuses = Vec::new();
    for i in 0..6 {
        let xff = format!("198.51.100.{i}");
        statuses.push(
            chat_from(&server, serde_json::json!({"message": "bonjour"}), Some(&xff))
                .await
                .0,
        );
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
    server.stop().await.unwrap();

    // The test connects from 127.0.0.1: as the trusted ingress, each forwarded client has its own bucket.
    c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    let server = TestServer::start(c).await;
    for i in 0..6 {
        let xff = format!("6.6.6.6, 198.51.100.{i}");
        let (status, _, body) = chat_from(&server, serde_json::json!({"message": "bonjour"}), Some(&xff)).await;
        assert_eq!(status, 200, "{i}: {body}");
    }
    let mut last = 0;
    for _ in 0..5 {
        last = chat_from(
            &server,
            serde_json::json!({"message": "bonjour"}),
            Some("6.6.6.6, 198.51.100.0"),
        )
        .await
        .0;
    }
    assert_eq!(last, 429, "198.51.100.0 spent its burst");
    let m = server.metrics().await;
    assert!(m.value("chat_requests_limited_total", &[("reason", "client_rate")]) >= 1.0);
    server.stop().await.unwrap();
}

/// With every model slot taken, a chat waits the queue timeout, then is shed with 503 and Retry-After, counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_model_slots_is_shed_with_503() {
    let (_dir, url) = common::sqlite_url();
    let mut c = common::config(&url);
    c.max_model_calls = 1;
    c.model_queue_timeout = Duration::from_millis(300);
    // A model that takes its time: an OpenAI-compatible endpoint that answers after 2 s.
    let slow = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_addr = slow.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = slow.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 65536];
                let _ = s.read(&mut buf).await;
                tokio::time::sleep(Duration::from_secs(2)).await;
                let body = r#"{"choices":[{"message":{"role":"assistant","content":"ok"}}]}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    c.model_backend = chatbot::config::ModelBackend::Openai;
    c.openai_base_url = format!("http://{slow_addr}/v1");
    c.openai_api_key = Some("sk-test".into());
    c.openai_timeout = Duration::from_secs(5);
    c.answer_cache_size = 0;
    let server = TestServer::start(c).await;
    let first = chat_from(&server, serde_json::json!({"message": "Where is my order?"}), None);
    let second = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        chat_from(&server, serde_json::json!({"message": "Can I pay with PayPal?"}), None).await
    };
    let ((s1, _, b1), (s2, retry, b2)) = tokio::join!(first, second);
    assert_eq!(s1, 200, "{b1}");
    assert_eq!(s2, 503, "{b2}");
    assert_eq!(retry, Some(1));
    assert!(b2["error"].as_str().unwrap().contains("busy"), "{b2}");
    let m = server.metrics().await;
    assert_eq!(m.value("chat_requests_limited_total", &[("reason", "model_busy")]), 1.0);
    server.stop().await.unwrap();
}

/// Reads until the server closes the connection; how long that took, or `None` if it stays open `within`.
async fn closed_within(conn: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = std::time::Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(within.saturating_sub(start.elapsed()), conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => continue, // an answer (a 408, or the previous response): keep reading
            Err(_) => return None,
        }
    }
}

/// Headers sent a byte at a time (slow loris), or a kept-alive connection left idle: cut after the header timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_idle_connections_are_cut_by_the_header_timeout() {
    let (_dir, url) = common::sqlite_url();
    let mut c = common::config(&url);
    c.header_timeout = Duration::from_secs(1);
    let server = TestServer::start(c).await;
    let addr = server.url("").trim_start_matches("http://").to_owned();

    let mut loris = TcpStream::connect(&addr).await.unwrap();
    loris.write_all(b"POST /chat HTTP/1.1\r\nhost: test\r\n").await.unwrap();
    let cut = closed_within(&mut loris, Duration::from_secs(5))
        .await
        .expect("a stalled head is cut");
    assert!(cut >= Duration::from_millis(900), "{cut:?}");

    let mut idle = TcpStream::connect(&addr).await.unwrap();
    let (status, _) = exchange(&mut idle, "/chat", br#"{"message":"bonjour"}"#.to_vec())
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)).await.is_some(),
        "an idle connection is closed"
    );

    // A connection in use is not: three requests a little apart on one connection.
    let mut busy = TcpStream::connect(&addr).await.unwrap();
    for _ in 0..3 {
        let (status, _) = exchange(&mut busy, "/chat", br#"{"message":"bonjour"}"#.to_vec())
            .await
            .unwrap();
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    server.stop().await.unwrap();
}
