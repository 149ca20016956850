//! A team's webhook receiver for the real-node test: it answers 200 to every POST (Alertmanager retries otherwise),
//! keeps its body with its path, and serves everything kept as a JSON array on `GET /received`. The standard library
//! only, one request per connection: its image is the binary alone.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// A notification's body is a few kilobytes; anything far larger is not one.
const MAX_BODY: usize = 1 << 20;

fn main() {
    let address = std::env::args().nth(1).unwrap_or_else(|| "0.0.0.0:8080".into());
    let listener = TcpListener::bind(&address).unwrap_or_else(|e| panic!("listening on {address}: {e}"));
    eprintln!("webhook-recorder listening on {address}");
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    for stream in listener.incoming().flatten() {
        let received = received.clone();
        std::thread::spawn(move || {
            if let Err(e) = serve(stream, &received) {
                eprintln!("webhook-recorder: {e}");
            }
        });
    }
}

fn serve(mut stream: TcpStream, received: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0).min(MAX_BODY);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut words = request_line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, answer) = match (method, path) {
        ("POST", _) => match std::str::from_utf8(&body) {
            Ok(text) if text.trim_start().starts_with('{') => {
                let path: String = path
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || "/-_".contains(*c))
                    .collect();
                received
                    .lock()
                    .unwrap()
                    .push(format!("{{\"path\": \"{path}\", \"body\": {text}}}"));
                ("200 OK", String::new())
            }
            _ => (
                "400 Bad Request",
                "{\"error\": \"the body must be a JSON object\"}".into(),
            ),
        },
        ("GET", "/received") => ("200 OK", format!("[{}]", received.lock().unwrap().join(","))),
        // Probes.
        ("GET", _) => ("200 OK", "{}".into()),
        _ => ("405 Method Not Allowed", String::new()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    )
}
