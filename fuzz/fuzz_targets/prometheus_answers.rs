//! What a Prometheus (or whatever answers at the URL a resource names) sends to `verify`: the first byte picks the
//! endpoint, the rest is the body. Every answer is data or a refusal, and every check says something short.
#![no_main]

use std::sync::LazyLock;

use chatbot_operator::render::DASHBOARDS;
use chatbot_operator::verify::checks::{self, MAX_MESSAGE, Selector, Subject};
use chatbot_operator::verify::prometheus_api::read_answer;
use libfuzzer_sys::fuzz_target;

static SELECTORS: LazyLock<Vec<Selector>> = LazyLock::new(|| {
    let subject = subject();
    DASHBOARDS
        .iter()
        .flat_map(|(_, text)| checks::template_selectors(&serde_json::from_str(text).unwrap()).unwrap())
        .map(|s| s.for_subject(&subject))
        .collect()
});

fn subject() -> Subject {
    Subject {
        namespace: "shop".into(),
        job: "sav".into(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let path = ["targets", "rules", "series"][usize::from(which) % 3];
    let data = match read_answer("http://prometheus:9090", path, 200, body) {
        Ok(data) => data,
        Err(e) => {
            assert!(e.to_string().chars().count() <= MAX_MESSAGE, "{e}");
            return;
        }
    };
    let check = match path {
        "targets" => checks::scraped(&data, &subject()),
        "rules" => checks::rules_loaded(&data, &subject(), &["chatbot.rules".to_owned(), "slo".to_owned()]).0,
        _ => checks::dashboard_metrics(&SELECTORS, &checks::exposed(&data)),
    };
    assert!(check.message.chars().count() <= MAX_MESSAGE, "{}", check.message.len());
});
