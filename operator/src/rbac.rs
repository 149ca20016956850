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
        group: "monitoring.chatbot-sav.io",
        resource: "chatbotmonitorings",
        verbs: &["get", "list", "watch"],
    },
    Permission {
        group: "monitoring.chatbot-sav.io",
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
        group: "monitoring.coreos.com",
        resource: "servicemonitors",
        verbs: REMOVABLE,
    },
    Permission {
        group: "monitoring.coreos.com",
        resource: "prometheusrules",
        verbs: REMOVABLE,
    },
    // Only that a referenced Secret exists (its metadata); its data is never read.
    Permission {
        group: "",
        resource: "secrets",
        verbs: &["get"],
    },
    Permission {
        group: "events.k8s.io",
        resource: "events",
        verbs: &["create", "patch"],
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
