//! Is the resource really monitored? Pure evaluation of what the API server and a Prometheus answer: which
//! Prometheus selects our ServiceMonitor and PrometheusRule, and why not. Shared by the reconciler and the CLI.

pub mod selection;
