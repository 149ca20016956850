//! Step 3 of a reconcile: the status, patched only when it changed, and an event for each transition a person should
//! hear about. Which transitions those are is decided by [`announcements`] (pure).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::{Context, Error};
use crate::crd::{ChatbotMonitoring, ChatbotMonitoringStatus};
use crate::render::MANAGER;
use crate::status::{self, reason};

/// Patches the status when it changed, then publishes the events of its transitions.
pub async fn status(cbm: &ChatbotMonitoring, ctx: &Context, new: ChatbotMonitoringStatus) -> Result<(), Error> {
    if cbm.status.as_ref() == Some(&new) {
        return Ok(());
    }
    let events = announcements(cbm.status.as_ref(), &new);
    apply_status(ctx, cbm, &new).await?;
    for event in &events {
        publish(ctx, cbm, event).await;
    }
    Ok(())
}

/// The events that tell a person about the transitions from `previous` to `new` of `Ready`, `Selected` and the
/// verification conditions: a changed status or reason is news; a disabled part is not; `Ready` turning False for
/// the reason another announced condition gives is told once, by that condition.
pub fn announcements(previous: Option<&ChatbotMonitoringStatus>, new: &ChatbotMonitoringStatus) -> Vec<Event> {
    let transitions: Vec<&Condition> = new
        .conditions
        .iter()
        .filter(|c| status::ANNOUNCED.contains(&c.type_.as_str()))
        .filter(|c| {
            let was = previous.and_then(|s| s.conditions.iter().find(|p| p.type_ == c.type_));
            was.is_none_or(|p| p.status != c.status || p.reason != c.reason)
        })
        .collect();
    let told_elsewhere = |c: &Condition| {
        c.type_ == status::READY
            && transitions
                .iter()
                .any(|o| o.type_ != status::READY && o.reason == c.reason && o.status == c.status)
    };
    transitions
        .iter()
        .filter(|c| !told_elsewhere(c) && c.reason != reason::DISABLED)
        .map(|c| Event {
            // Pods starting, or Prometheus still loading a change, is news, not trouble.
            type_: if c.status == "True" || c.reason == reason::PROGRESSING || c.reason == reason::PENDING {
                EventType::Normal
            } else {
                EventType::Warning
            },
            reason: c.reason.clone(),
            note: Some(format!("{}: {}", c.type_, c.message)),
            action: "Reconcile".into(),
            secondary: None,
        })
        .collect()
}

/// On failure: a `Ready=False` condition with the error's reason, and a Warning event when that is news; both best
/// effort, since the API server may be what failed.
pub async fn failure(cbm: &ChatbotMonitoring, ctx: &Context, error: &Error) {
    let previous = cbm.status.as_ref();
    let message = error.to_string();
    let new = status::with_failure(
        previous,
        cbm.metadata.generation,
        error.reason(),
        &message,
        Timestamp::now(),
    );
    if previous == Some(&new) {
        return;
    }
    if let Err(e) = apply_status(ctx, cbm, &new).await {
        tracing::warn!(error = %e, "could not record the failure in the status");
    }
    let event = Event {
        type_: EventType::Warning,
        reason: error.reason().into(),
        note: Some(message),
        action: "Reconcile".into(),
        secondary: None,
    };
    publish(ctx, cbm, &event).await;
}

/// Server-side applies the status subresource with our field manager.
async fn apply_status(
    ctx: &Context,
    cbm: &ChatbotMonitoring,
    status: &ChatbotMonitoringStatus,
) -> Result<(), kube::Error> {
    let api = Api::<ChatbotMonitoring>::namespaced(ctx.client.clone(), &cbm.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": ChatbotMonitoring::api_version(&()),
        "kind": ChatbotMonitoring::kind(&()),
        "status": status,
    });
    api.patch_status(
        &cbm.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(drop)
}

async fn publish(ctx: &Context, cbm: &ChatbotMonitoring, event: &Event) {
    if let Err(e) = ctx.recorder.publish(event, &cbm.object_ref(&())).await {
        tracing::warn!(error = %e, reason = %event.reason, "could not publish an event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(conditions: &[(&str, &str, &str)]) -> ChatbotMonitoringStatus {
        ChatbotMonitoringStatus {
            conditions: conditions
                .iter()
                .map(|(type_, status, reason)| Condition {
                    type_: type_.to_string(),
                    status: status.to_string(),
                    reason: reason.to_string(),
                    message: format!("{type_} is {status}"),
                    last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::UNIX_EPOCH),
                    observed_generation: Some(1),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn told(events: &[Event]) -> Vec<(String, bool)> {
        events
            .iter()
            .map(|e| (e.reason.clone(), e.type_ == EventType::Warning))
            .collect()
    }

    #[test]
    fn the_first_status_tells_what_is_announced_and_not_disabled_parts() {
        let new = with(&[
            ("Ready", "False", "Progressing"),
            ("DeploymentReady", "False", "Progressing"),
            ("Selected", "True", "Selected"),
            ("Scraped", "False", "Disabled"),
        ]);
        assert_eq!(
            told(&announcements(None, &new)),
            [("Progressing".to_owned(), false), ("Selected".to_owned(), false)],
            "DeploymentReady is not announced; pods starting is Normal"
        );
    }

    #[test]
    fn only_a_changed_status_or_reason_is_news() {
        let before = with(&[("Ready", "True", "Reconciled"), ("Scraped", "True", "TargetsUp")]);
        assert!(announcements(Some(&before), &before).is_empty());
        let message_only = ChatbotMonitoringStatus {
            conditions: before
                .conditions
                .iter()
                .map(|c| Condition {
                    message: "other words".into(),
                    ..c.clone()
                })
                .collect(),
            ..before.clone()
        };
        assert!(announcements(Some(&before), &message_only).is_empty());
        let down = with(&[("Ready", "True", "Reconciled"), ("Scraped", "False", "TargetDown")]);
        assert_eq!(
            told(&announcements(Some(&before), &down)),
            [("TargetDown".to_owned(), true)]
        );
    }

    #[test]
    fn ready_failing_for_another_conditions_reason_is_told_once() {
        let before = with(&[("Ready", "True", "Reconciled"), ("Selected", "True", "Selected")]);
        let after = with(&[
            ("Ready", "False", "LabelMismatch"),
            ("Selected", "False", "LabelMismatch"),
        ]);
        assert_eq!(
            told(&announcements(Some(&before), &after)),
            [("LabelMismatch".to_owned(), true)]
        );
    }
}
