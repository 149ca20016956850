//! Is the resource really monitored? Pure evaluation of what the API server and a Prometheus answer: which
//! Prometheus selects our ServiceMonitor and PrometheusRule and why not, whether the chatbot is scraped, the rules
//! loaded, and every dashboard panel finds its metrics. Shared by the reconciler and `chatbot-operator verify`.

pub mod binding;
pub mod checks;
pub mod periodic;
pub mod ports;
pub mod prometheus_api;
pub mod run;
pub mod selection;
pub mod workload_bindings;
