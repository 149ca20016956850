//! Customer-support (SAV) chatbot: answers in French and English, escalates to a human with a ticket, stores every
//! exchange, and exposes the Prometheus metrics that the operator's dashboards and alerts query.

pub mod agents;
pub mod app;
pub mod cgroup;
pub mod chat;
pub mod config;
pub mod connections;
pub mod counter_table;
pub mod error;
pub mod http_metrics;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod outcomes;
pub mod retention;
pub mod routes;
pub mod store;
pub mod system;
