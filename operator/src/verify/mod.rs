//! Is the resource really monitored, asked of a Prometheus over its HTTP API: is the chatbot scraped, are its rules
//! loaded, does every dashboard panel find its metrics. Pure checks of the answers (`checks`), one round of requests
//! (`run`, shared with `chatbot-operator verify`), the reconciler's periodic rounds (`periodic`), and the HTTP client
//! (`prometheus_api`); where a server the Prometheus Operator runs is reached (`in_cluster`). And are its alerts routed: Prometheus sends to an Alertmanager that loaded the routing
//! (`routing`).

pub mod checks;
pub mod in_cluster;
pub mod periodic;
pub mod prometheus_api;
pub mod routing;
pub mod run;
