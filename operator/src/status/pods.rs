//! Why the chatbot's pods do not become ready (pure): from the Deployment's conditions, where the deployment
//! controller copies its ReplicaSet's `ReplicaFailure` (pods the API server refused to create: Pod Security, a
//! quota, a LimitRange, an admission webhook) and says when the rollout stopped progressing, and from the pods'
//! status as the kubelet and the scheduler report it: a referenced Secret that does not exist shows there as
//! `CreateContainerConfigError`, which is how the operator learns of it without reading Secrets.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;

use super::reason;

/// What keeps a pod from running, for the `DeploymentReady` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    pub reason: &'static str,
    pub message: String,
}

/// Container states that will not resolve by waiting a little: each needs a person (or a Secret, or an image).
const STUCK: &[&str] = &[
    "CreateContainerConfigError",
    "CreateContainerError",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CrashLoopBackOff",
    "RunContainerError",
];

/// Why a Deployment's pods are not all ready, most specific first: pods the API server refused to create (the
/// Deployment's `ReplicaFailure`), then what the pods themselves say (`pods`, as the watch last saw them: a missing
/// Secret, a crash loop), and only then that the rollout gave up (`ProgressDeadlineExceeded`), which pods stuck for
/// any of those reasons also cause.
pub fn why_not_ready(deployment: &Deployment, pods: Option<&[Pod]>) -> Option<PodProblem> {
    let name = deployment.metadata.name.as_deref().unwrap_or("?");
    let conditions = deployment
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let failed = |type_: &str, status: &str| {
        conditions
            .iter()
            .find(|c| c.type_.as_deref() == Some(type_) && c.status.as_deref() == Some(status))
    };
    let refused = failed("ReplicaFailure", "True").map(|c| PodProblem {
        reason: reason::POD_CREATION_FAILED,
        message: format!(
            "Deployment {name} cannot create its pods ({}): {}",
            c.reason.as_deref().unwrap_or("ReplicaFailure"),
            c.message.as_deref().unwrap_or("no message")
        ),
    });
    let stalled = || {
        let c = failed("Progressing", "False").filter(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded"))?;
        Some(PodProblem {
            reason: reason::PROGRESS_DEADLINE_EXCEEDED,
            message: format!(
                "Deployment {name} stopped progressing: {}",
                c.message.as_deref().unwrap_or("no message")
            ),
        })
    };
    refused.or_else(|| pods.and_then(diagnose)).or_else(stalled)
}

/// The first problem among `pods` (by name, so that the message is stable), if any.
pub fn diagnose(pods: &[Pod]) -> Option<PodProblem> {
    let mut pods: Vec<&Pod> = pods.iter().collect();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    pods.into_iter().find_map(problem_of)
}

fn problem_of(pod: &Pod) -> Option<PodProblem> {
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    let status = pod.status.as_ref()?;
    let containers = status.init_container_statuses.iter().flatten();
    let waiting = containers
        .chain(status.container_statuses.iter().flatten())
        .filter_map(|c| c.state.as_ref()?.waiting.as_ref())
        .find(|w| w.reason.as_deref().is_some_and(|r| STUCK.contains(&r)));
    if let Some(w) = waiting {
        let why = w.reason.as_deref().unwrap_or_default();
        let said = w.message.as_deref().unwrap_or("no message");
        // The kubelet says `secret "x" not found` or `couldn't find key k in Secret ns/x`.
        let secret = why == "CreateContainerConfigError" && said.to_ascii_lowercase().contains("secret");
        return Some(if secret {
            PodProblem {
                reason: reason::SECRET_MISSING,
                message: format!("pod {name} cannot start: {said} (create the Secret the spec references)"),
            }
        } else {
            PodProblem {
                reason: reason::PODS_FAILING,
                message: format!("pod {name}: {why}: {said}"),
            }
        });
    }
    let unschedulable =
        status.conditions.iter().flatten().find(|c| {
            c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
        })?;
    Some(PodProblem {
        reason: reason::PODS_FAILING,
        message: format!(
            "pod {name}: Unschedulable: {}",
            unschedulable.message.as_deref().unwrap_or("no message")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name}, "status": status})).unwrap()
    }

    fn waiting(reason: &str, message: &str) -> serde_json::Value {
        json!({"containerStatuses": [{"name": "chatbot", "image": "i", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"waiting": {"reason": reason, "message": message}}}]})
    }

    #[test]
    fn a_missing_secret_is_said_as_such() {
        let pods = [pod(
            "bot-1",
            waiting("CreateContainerConfigError", "secret \"chatbot-openai\" not found"),
        )];
        let problem = diagnose(&pods).unwrap();
        assert_eq!(problem.reason, "SecretMissing");
        assert!(problem.message.contains("bot-1") && problem.message.contains("\"chatbot-openai\" not found"));
        let key = [pod(
            "bot-1",
            waiting(
                "CreateContainerConfigError",
                "couldn't find key api-key in Secret shop/chatbot-openai",
            ),
        )];
        assert_eq!(diagnose(&key).unwrap().reason, "SecretMissing");
    }

    #[test]
    fn other_stuck_states_and_unschedulable_pods_are_failing_pods() {
        let pull = [pod(
            "bot-2",
            waiting("ImagePullBackOff", "Back-off pulling image \"nope\""),
        )];
        assert_eq!(
            diagnose(&pull),
            Some(PodProblem {
                reason: "PodsFailing",
                message: "pod bot-2: ImagePullBackOff: Back-off pulling image \"nope\"".into()
            })
        );
        let pending = [pod(
            "bot-3",
            json!({"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient memory."}]}),
        )];
        assert_eq!(
            diagnose(&pending).unwrap().message,
            "pod bot-3: Unschedulable: 0/3 nodes are available: 3 Insufficient memory."
        );
    }

    fn deployment(conditions: serde_json::Value) -> Deployment {
        serde_json::from_value(
            json!({"metadata": {"name": "bot"}, "spec": {"selector": {}, "template": {}},
                                      "status": {"conditions": conditions}}),
        )
        .unwrap()
    }

    /// Found on a real node: pods that Pod Security refused left the resource at "0/1 pods ready" for minutes.
    #[test]
    fn pods_the_api_server_refuses_to_create_are_said_with_its_words() {
        let refused = deployment(json!([
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
            {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"},
            {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
             "message": "pods \"bot-7d9f-x2x\" is forbidden: violates PodSecurity \"restricted:latest\": \
                         allowPrivilegeEscalation != false"},
        ]));
        assert_eq!(
            why_not_ready(&refused, None),
            Some(PodProblem {
                reason: "PodCreationFailed",
                message: "Deployment bot cannot create its pods (FailedCreate): pods \"bot-7d9f-x2x\" is forbidden: \
                          violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"
                    .into()
            })
        );
        let stalled = deployment(json!([{"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"bot-7d9f\" has timed out progressing."}]));
        assert_eq!(
            why_not_ready(&stalled, None).map(|p| (p.reason, p.message)),
            Some((
                "ProgressDeadlineExceeded",
                "Deployment bot stopped progressing: ReplicaSet \"bot-7d9f\" has timed out progressing.".into()
            ))
        );
        let rolling = deployment(
            json!([{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"},
                                        {"type": "ReplicaFailure", "status": "False"}]),
        );
        assert_eq!(why_not_ready(&rolling, None), None);
    }

    /// A pod stuck on a missing Secret stalls the rollout too: the Secret is what a person must fix, not the
    /// deadline (the deadline used to win).
    #[test]
    fn a_stuck_pod_says_more_than_the_rollout_deadline_it_causes() {
        let stalled = deployment(json!([{"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"bot-7d9f\" has timed out progressing."}]));
        let stuck = [pod(
            "bot-7d9f-x2x",
            waiting("CreateContainerConfigError", "secret \"openai\" not found"),
        )];
        assert_eq!(
            why_not_ready(&stalled, Some(&stuck)).map(|p| p.reason),
            Some("SecretMissing")
        );
        let refused = deployment(
            json!([{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
            "message": "exceeded quota"}]),
        );
        assert_eq!(
            why_not_ready(&refused, Some(&stuck)).map(|p| p.reason),
            Some("PodCreationFailed"),
            "pods never created say nothing of the ones the server refused"
        );
    }

    #[test]
    fn pods_on_their_way_are_no_problem() {
        let starting = [
            pod("bot-4", waiting("ContainerCreating", "")),
            pod("bot-5", json!({"phase": "Pending"})),
            pod(
                "bot-6",
                json!({"conditions": [{"type": "PodScheduled", "status": "True"}]}),
            ),
        ];
        assert_eq!(diagnose(&starting), None);
    }
}
