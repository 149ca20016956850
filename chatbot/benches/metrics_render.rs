//! Times `/metrics` rendering in-process with every series a busy chatbot has (prints figures, asserts nothing).

use std::time::Instant;

use chatbot::chat::UserType;
use chatbot::metrics::Metrics;

fn main() {
    let m = Metrics::new();
    let endpoints = [
        "/chat",
        "/conversations/{session_id}",
        "/tickets/{ticket_id}",
        "/health",
        "/ready",
        "/metrics",
        "unmatched",
    ];
    for endpoint in endpoints {
        for status in ["200", "400", "404", "413", "415", "422", "503"] {
            m.http_requests_total
                .with_label_values(&["POST", endpoint, status])
                .inc_by(1000);
        }
        m.http_request_duration_seconds
            .with_label_values(&["POST", endpoint])
            .observe(0.01);
        m.http_request_duration_seconds
            .with_label_values(&["GET", endpoint])
            .observe(0.01);
    }
    for t in UserType::ALL {
        for status in ["success", "error"] {
            m.chat_requests_total.with_label_values(&[t.as_str(), status]).inc();
        }
        m.chat_response_time_seconds
            .with_label_values(&[t.as_str()])
            .observe(0.02);
    }
    for model in ["builtin", "openai"] {
        for status in ["success", "error", "timeout"] {
            m.ai_model_calls_total.with_label_values(&[model, status]).inc();
        }
        m.ai_model_call_duration_seconds
            .with_label_values(&[model])
            .observe(0.3);
    }
    for op in [
        "save_exchanges",
        "load_session",
        "load_conversation",
        "load_ticket",
        "ping",
        "migrate",
    ] {
        m.db_timer(op).observe(0.001);
    }
    let text = m.render();
    let series = text.lines().filter(|l| !l.starts_with('#')).count();
    let iterations = 2000;
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..iterations {
        bytes += std::hint::black_box(m.render()).len();
    }
    let per = start.elapsed() / iterations;
    println!(
        "/metrics render: {:.1} µs per render ({series} series, {} bytes), mean of {iterations}",
        per.as_secs_f64() * 1e6,
        bytes / iterations as usize
    );
}
