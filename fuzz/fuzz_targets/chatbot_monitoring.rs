//! A `ChatbotMonitoring` file, as `chatbot-operator render` and `verify` read it: refused in the API server's words,
//! or admitted and rendered (every child, the local Prometheus and Alertmanager files, the generated rule and route
//! tests) without a panic.
#![no_main]

use chatbot_operator::admission;
use chatbot_operator::render::local_alertmanager::{self, Integrations};
use chatbot_operator::render::{self, RenderOptions, local_prometheus, promtool_tests};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(object) = serde_yaml::from_str::<serde_json::Value>(text) else {
        return;
    };
    let mut cbm = match admission::admit(&object) {
        Ok(cbm) => cbm,
        Err(refused) => {
            assert!(!refused.0.is_empty());
            return;
        }
    };
    if cbm.metadata.namespace.is_none() {
        cbm.metadata.namespace = Some("default".into());
    }
    let Ok(desired) = render::render(&cbm, &RenderOptions::default()) else {
        return;
    };
    render::to_yaml_stream(&desired).expect("every child serializes");
    let _ = local_prometheus::config(&desired, &["127.0.0.1:8081".to_owned()], None, Some("127.0.0.1:9093"));
    if let Some(rule) = &desired.prometheus_rule {
        let _ = local_prometheus::rules(rule);
        let _ = promtool_tests::tests(&cbm.spec, rule, "default", "bot");
        if let (Some(amc), Some(n)) = (&desired.alertmanager_config, &cbm.spec.notifications) {
            local_alertmanager::config(amc, Integrations::Omitted).expect("routing needs no Secret");
            let cases = local_alertmanager::route_cases("default", "bot", n, rule);
            let _ = local_alertmanager::routes_test_script(&cases);
        }
    }
});
