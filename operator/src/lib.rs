//! The `ChatbotMonitoring` operator: turns one resource into a running chatbot, the ServiceMonitor that gets it
//! scraped, the PrometheusRule with its alerts and the Grafana dashboards, and reports what it did in the status.
//!
//! `render` says what should exist (pure), `reconcile` makes the cluster match it, `status` says what happened (pure).

pub mod backoff;
pub mod cache;
pub mod controller;
pub mod crd;
pub mod discovery;
pub mod http;
pub mod last_applied;
pub mod leader;
pub mod prometheus_operator;
pub mod rbac;
pub mod reconcile;
pub mod render;
pub mod settled;
pub mod status;
pub mod telemetry;
pub mod verify;
pub mod watch_health;
