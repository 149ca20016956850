//! The fake OpenAI-compatible server (see `testsupport::fake_openai`) and a chatbot configuration that uses it.

use std::time::Duration;

// Not every test binary that includes `common` uses the fake.
#[allow(unused_imports)]
pub use testsupport::fake_openai::*;

/// The test defaults on `database_url`, answering with the `openai` backend at `base` (model `shop-assistant-1`).
pub fn openai_config(database_url: &str, base: &str) -> chatbot::config::Config {
    let mut c = super::config(database_url);
    c.model_backend = chatbot::config::ModelBackend::Openai;
    c.openai_base_url = base.to_owned();
    c.openai_model = "shop-assistant-1".into();
    c.openai_api_key = Some("sk-test-key".into());
    c.openai_timeout = Duration::from_secs(2);
    c
}
