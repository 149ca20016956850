//! Why the chatbot's pods do not become ready, from their status as the kubelet and the scheduler report it (pure):
//! a referenced Secret that does not exist shows here as `CreateContainerConfigError`, which is how the operator
//! learns of it without reading Secrets.

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
