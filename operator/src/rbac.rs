//! Every permission the operator's code uses, and no more: the Helm chart's RBAC is tested against this list, and
//! the reconcile tests check that each request they see is covered by it.

/// One RBAC rule: an API group, a resource (or subresource), and verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub group: &'static str,
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
}

/// Children that are always there: watched and server-side applied (create + patch), never deleted by the operator
/// (deleting the resource deletes them through owner references).
const APPLIED: &[&str] = &["get", "list", "watch", "create", "patch"];
/// Children of a part that can be switched off: also deleted then.
const REMOVABLE: &[&str] = &["get", "list", "watch", "create", "patch", "delete"];

/// Rules of the ClusterRole (or of the Role in the watched namespace).
pub const WATCHED_NAMESPACES: &[Permission] = &[
    // The resource itself: watched, never written but for its status.
    Permission {
        group: crate::crd::GROUP,
        resource: "chatbotmonitorings",
        verbs: &["get", "list", "watch"],
    },
    Permission {
        group: crate::crd::GROUP,
        resource: "chatbotmonitorings/status",
        verbs: &["get", "patch"],
    },
    Permission {
        group: "apps",
        resource: "deployments",
        verbs: APPLIED,
    },
    Permission {
        group: "",
        resource: "services",
        verbs: APPLIED,
    },
    Permission {
        group: "",
        resource: "configmaps",
        verbs: REMOVABLE,
    },
    Permission {
        group: "networking.k8s.io",
        resource: "networkpolicies",
        verbs: REMOVABLE,
    },
    Permission {
        group: crate::prometheus_operator::GROUP,
        resource: "servicemonitors",
        verbs: REMOVABLE,
    },
    Permission {
        group: crate::prometheus_operator::GROUP,
        resource: "prometheusrules",
        verbs: REMOVABLE,
    },
    Permission {
        group: crate::prometheus_operator::GROUP,
        resource: "alertmanagerconfigs",
        verbs: REMOVABLE,
    },
    // The chatbots' pods (watched by label), to say why they do not start: a missing Secret among other things.
    Permission {
        group: "",
        resource: "pods",
        verbs: &["list", "watch"],
    },
    Permission {
        group: "events.k8s.io",
        resource: "events",
        verbs: &["create", "patch"],
    },
];

/// With `--check-secrets` only: that a referenced Secret exists and holds the referenced key, asked before anything
/// is applied. Only its key names are kept, but RBAC cannot grant them without the data, hence opt-in.
pub const SECRET_CHECK: &[Permission] = &[Permission {
    group: "",
    resource: "secrets",
    verbs: &["get"],
}];

/// Rules that only a ClusterRole can grant, whatever namespaces are watched: which Prometheus servers and
/// Alertmanagers exist (they usually live in a monitoring namespace) and the labels of our namespace (for their
/// namespace selectors), all watched so that a change re-evaluates the resources at once (namespaces as metadata
/// only).
pub const CLUSTER_WIDE: &[Permission] = &[
    Permission {
        group: crate::prometheus_operator::GROUP,
        resource: "prometheuses",
        verbs: &["list", "watch"],
    },
    Permission {
        group: crate::prometheus_operator::GROUP,
        resource: "alertmanagers",
        verbs: &["list", "watch"],
    },
    Permission {
        group: "",
        resource: "namespaces",
        verbs: &["get", "list", "watch"],
    },
];

/// Rules of the Role in the operator's own namespace, for leader election.
pub const OPERATOR_NAMESPACE: &[Permission] = &[Permission {
    group: "coordination.k8s.io",
    resource: "leases",
    verbs: &["get", "create", "patch"],
}];

/// Whether `verb` on `group`/`resource` is granted by `rules`.
pub fn allows(rules: &[Permission], group: &str, resource: &str, verb: &str) -> bool {
    rules
        .iter()
        .any(|p| p.group == group && p.resource == resource && p.verbs.contains(&verb))
}

/// The rules as Kubernetes RBAC YAML: a ClusterRole for the watched namespaces and a Role for the Lease, for
/// platforms that install without the Helm chart (`chatbot-operator rbac [--check-secrets]`).
pub fn to_yaml(secret_check: bool) -> String {
    let rules = |list: &[Permission]| -> Vec<serde_json::Value> {
        list.iter()
            .map(|p| serde_json::json!({"apiGroups": [p.group], "resources": [p.resource], "verbs": p.verbs}))
            .collect()
    };
    let cluster = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "chatbot-operator"},
        "rules": rules(&[WATCHED_NAMESPACES, if secret_check { SECRET_CHECK } else { &[] }].concat()),
    });
    let selection = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "chatbot-operator-prometheus-selection"}, "rules": rules(CLUSTER_WIDE),
    });
    let lease = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "chatbot-operator-leader-election"}, "rules": rules(OPERATOR_NAMESPACE),
    });
    [cluster, selection, lease]
        .iter()
        .map(|d| format!("---\n{}", serde_yaml::to_string(d).expect("YAML serializes")))
        .collect()
}
