//! Every reason a condition can carry, as a person reads them in `kubectl describe`: with the condition types, the
//! resource's public API.

pub const APPLIED: &str = "Applied";
pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
/// A verification check that has not passed yet, within the time Prometheus needs to load a change.
pub const PENDING: &str = "Pending";
pub const DISABLED: &str = "Disabled";
pub const PROMETHEUS_OPERATOR_MISSING: &str = "PrometheusOperatorMissing";
pub const SECRET_MISSING: &str = "SecretMissing";
pub const PODS_FAILING: &str = "PodsFailing";
pub const POD_CREATION_FAILED: &str = "PodCreationFailed";
pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
pub const API_ERROR: &str = "ApiError";
pub const INVALID_SPEC: &str = "InvalidSpec";
pub const RECONCILED: &str = "Reconciled";

// `Selected`
pub const SELECTED: &str = "Selected";
pub const NO_PROMETHEUS: &str = "NoPrometheus";
pub const PROMETHEUS_KIND_MISSING: &str = "PrometheusKindMissing";
pub const AMBIGUOUS_PROMETHEUS: &str = "AmbiguousPrometheus";
pub const LABEL_MISMATCH: &str = "LabelMismatch";
pub const NAMESPACE_NOT_SELECTED: &str = "NamespaceNotSelected";
pub const PORT_NAME_MISMATCH: &str = "PortNameMismatch";
pub const NO_SCRAPER_ADMITTED: &str = "NoScraperAdmitted";
pub const NAME_TAKEN: &str = "NameTaken";
pub const REJECTED: &str = "Rejected";
pub const BINDING_DISAGREEMENT: &str = "BindingDisagreement";

// `Routed`
pub const ROUTED: &str = "Routed";
pub const NO_ALERTMANAGER: &str = "NoAlertmanager";
pub const AMBIGUOUS_ALERTMANAGER: &str = "AmbiguousAlertmanager";
pub const ALERTMANAGER_KIND_MISSING: &str = "AlertmanagerKindMissing";
pub const NO_ALERTMANAGER_CONNECTED: &str = "NoAlertmanagerConnected";
pub const ROUTES_NOT_LOADED: &str = "RoutesNotLoaded";
pub const ALERTMANAGER_UNAVAILABLE: &str = "AlertmanagerUnavailable";

// The checks against Prometheus
pub const PROMETHEUS_UNAVAILABLE: &str = "PrometheusUnavailable";
pub const TARGETS_UP: &str = "TargetsUp";
pub const NO_TARGET: &str = "NoTarget";
pub const TARGET_DOWN: &str = "TargetDown";
pub const LOADED: &str = "Loaded";
pub const RULES_NOT_LOADED: &str = "RulesNotLoaded";
pub const RULE_UNHEALTHY: &str = "RuleUnhealthy";
pub const METRICS_PRESENT: &str = "MetricsPresent";
pub const METRICS_MISSING: &str = "MetricsMissing";

/// The reasons of the conditions that say whether the resource is really monitored, each as documented in
/// `docs/not-monitored.md` (a test holds the two together).
pub const OF_MONITORING: &[(&str, &[&str])] = &[
    (
        super::SELECTED,
        &[
            SELECTED,
            PROMETHEUS_OPERATOR_MISSING,
            NO_PROMETHEUS,
            PROMETHEUS_KIND_MISSING,
            AMBIGUOUS_PROMETHEUS,
            LABEL_MISMATCH,
            NAMESPACE_NOT_SELECTED,
            PORT_NAME_MISMATCH,
            REJECTED,
            BINDING_DISAGREEMENT,
        ],
    ),
    (
        super::NETWORK_POLICY_READY,
        &[APPLIED, NO_SCRAPER_ADMITTED, NAME_TAKEN, DISABLED],
    ),
    (
        super::ROUTED,
        &[
            ROUTED,
            SELECTED,
            PROMETHEUS_OPERATOR_MISSING,
            NAME_TAKEN,
            NO_ALERTMANAGER,
            ALERTMANAGER_KIND_MISSING,
            AMBIGUOUS_ALERTMANAGER,
            LABEL_MISMATCH,
            NAMESPACE_NOT_SELECTED,
            NO_ALERTMANAGER_CONNECTED,
            ROUTES_NOT_LOADED,
            ALERTMANAGER_UNAVAILABLE,
            PROMETHEUS_UNAVAILABLE,
            PENDING,
        ],
    ),
    (
        super::SCRAPED,
        &[TARGETS_UP, NO_TARGET, TARGET_DOWN, PROMETHEUS_UNAVAILABLE, PENDING],
    ),
    (
        super::RULES_LOADED,
        &[
            LOADED,
            RULES_NOT_LOADED,
            RULE_UNHEALTHY,
            PROMETHEUS_UNAVAILABLE,
            PENDING,
        ],
    ),
    (
        super::DASHBOARD_METRICS_PRESENT,
        &[METRICS_PRESENT, METRICS_MISSING, PROMETHEUS_UNAVAILABLE, PENDING],
    ),
];
