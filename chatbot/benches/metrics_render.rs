//! Times `/metrics` rendering in-process with every series a busy chatbot has, and what recording one remote model
//! call's tokens, duration and spend costs (prints figures, asserts nothing).

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
        "save_feedback",
        "conclude",
        "load_erased",
        "load_session",
        "load_conversation",
        "load_ticket",
        "ping",
        "migrate",
    ] {
        m.db_timer(op).observe(0.001);
    }
    // The feedback and outcome series of every intent, and an openai backend's GenAI series (two response models).
    let kb = chatbot::model::knowledge::KnowledgeBase::builtin();
    m.declare_intents(kb.intent_names());
    for response_model in ["gpt-4o-mini-2024-07-18", "gpt-4o-mini-2025-01-01"] {
        for token_type in ["input", "output"] {
            m.gen_ai_client_token_usage
                .with_label_values(&["chat", "openai", token_type, "gpt-4o-mini", response_model])
                .observe(300.0);
        }
        // A call that got an answer has its response model; one that got none (a timeout, a 429) has none.
        for (response_model, error_type) in [
            (response_model, ""),
            (response_model, "invalid_response"),
            ("", "timeout"),
            ("", "429"),
        ] {
            m.gen_ai_client_operation_duration_seconds
                .with_label_values(&["chat", "openai", "gpt-4o-mini", response_model, error_type])
                .observe(0.8);
        }
    }
    m.ai_model_estimated_cost_total
        .with_label_values(&["openai", "gpt-4o-mini", "USD"])
        .inc_by(0.01);
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

    // One model call's GenAI metrics and spend, as the openai backend records them after every attempt.
    let prices = chatbot::model::prices::PriceTable::from_yaml(
        "models:\n  gpt-4o-mini: {currency: USD, input: 0.15, cachedInput: 0.075, output: 0.6}\n",
    )
    .unwrap();
    let genai = chatbot::model::genai::GenAi::new(
        "openai",
        "gpt-4o-mini",
        chatbot::model::prices::Prices::new(prices),
        m.clone(),
    );
    let completed = chatbot::model::genai::Completed {
        response_model: Some("gpt-4o-mini-2024-07-18"),
        usage: Some(chatbot::model::prices::Tokens {
            input: 1200,
            cached_input: 1024,
            output: 80,
        }),
    };
    let calls = 200_000;
    let start = Instant::now();
    for _ in 0..calls {
        genai.record(
            std::time::Duration::from_millis(700),
            Some(std::hint::black_box(&completed)),
            None,
        );
    }
    println!(
        "GenAI metrics of one model call: {:.2} µs to record (tokens, duration, spend), mean of {calls}",
        (start.elapsed() / calls).as_secs_f64() * 1e6
    );
}
