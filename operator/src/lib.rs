//! The `ChatbotMonitoring` operator: turns one resource into a running chatbot, the ServiceMonitor that gets it
//! scraped, the PrometheusRule with its alerts, the AlertmanagerConfig that routes them to people, and the Grafana
//! dashboards, and reports in the status whether a Prometheus really selects, scrapes and evaluates them and an
//! Alertmanager routes their alerts.
//!
//! A map, in the order a reconcile runs through it:
//!
//! - What the user writes: [`crd`] (the `ChatbotMonitoring` kind, its defaults and CEL rules) and the reduced
//!   Prometheus Operator kinds it produces, [`prometheus_operator`]; [`admission`] refuses a file as the API server
//!   would refuse the resource (schema, defaults, CEL), for the CLI.
//! - What should exist, pure: [`render`] (every child, the dashboards, the local Prometheus and Alertmanager files,
//!   the promtool tests of the rules and the amtool tests of the routes) and [`last_applied`] (the hash of what was
//!   applied).
//! - The loop: [`controller`] wires the watches to [`reconcile`], which applies the children, asks for verification
//!   and publishes the status. The watches fill [`cache`] (read instead of the API server), keep [`settled`] resources
//!   from being read again, report to [`watch_health`], and retry with [`backoff`]. [`discovery`] says which
//!   Prometheus Operator kinds the cluster serves.
//! - Is it really monitored: [`selection`] (does a Prometheus select the children, an Alertmanager the
//!   AlertmanagerConfig, from the API server's objects, pure) and [`verify`] (does Prometheus scrape it, load its
//!   rules, have the dashboards' metrics, send its alerts to an Alertmanager that loaded the routing, over HTTP).
//! - What is said about it, pure: [`status`] (conditions, and the reasons that are the resource's public API).
//! - The process: [`leader`] (one replica reconciles), [`http`] (`/metrics`, `/healthz`, `/readyz`), [`metrics`]
//!   (the operator's own), [`rbac`] (the permissions the code uses, which the chart grants).

pub mod admission;
pub mod backoff;
pub mod cache;
pub mod controller;
pub mod crd;
pub mod discovery;
pub mod http;
pub mod last_applied;
pub mod leader;
pub mod metrics;
pub mod prometheus_operator;
pub mod rbac;
pub mod reconcile;
pub mod render;
pub mod selection;
pub mod settled;
pub mod status;
pub mod verify;
pub mod watch_health;
