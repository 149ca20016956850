//! The operator's own metrics: reconcile counts, errors by reason and duration by outcome, and leadership.

use std::time::Duration;

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    pub reconciliations: IntCounterVec,
    pub failures: IntCounterVec,
    pub duration: HistogramVec,
    pub leader: IntGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let m = Metrics {
            reconciliations: IntCounterVec::new(
                Opts::new(
                    "chatbot_operator_reconciliations_total",
                    "Reconciliations by outcome (success, error).",
                ),
                &["outcome"],
            )
            .unwrap(),
            failures: IntCounterVec::new(
                Opts::new(
                    "chatbot_operator_reconcile_errors_total",
                    "Failed reconciliations by condition reason.",
                ),
                &["reason"],
            )
            .unwrap(),
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "chatbot_operator_reconcile_duration_seconds",
                    "Reconcile duration by outcome.",
                )
                .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 10.0]),
                &["outcome"],
            )
            .unwrap(),
            leader: IntGauge::new(
                "chatbot_operator_leader",
                "1 while this replica holds the leader lease.",
            )
            .unwrap(),
            registry,
        };
        m.registry.register(Box::new(m.reconciliations.clone())).unwrap();
        m.registry.register(Box::new(m.failures.clone())).unwrap();
        m.registry.register(Box::new(m.duration.clone())).unwrap();
        m.registry.register(Box::new(m.leader.clone())).unwrap();
        #[cfg(target_os = "linux")]
        m.registry
            .register(Box::new(process_metrics::ProcessMetrics::for_self()))
            .unwrap();
        m
    }

    /// One reconcile that took `elapsed`: a success, or a failure with its condition reason.
    pub fn record(&self, failure: Option<&'static str>, elapsed: Duration) {
        let outcome = if failure.is_none() { "success" } else { "error" };
        self.reconciliations.with_label_values(&[outcome]).inc();
        self.duration
            .with_label_values(&[outcome])
            .observe(elapsed.as_secs_f64());
        if let Some(reason) = failure {
            self.failures.with_label_values(&[reason]).inc();
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }
}
