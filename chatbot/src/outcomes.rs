//! In the background, each conversation idle for `--conversation-idle` is decided (resolved, escalated, abandoned:
//! see `store::outcomes`) and counted in `chat_conversations_total`, once, whichever replica decides it.

use std::sync::Arc;
use std::time::Duration;

use crate::metrics::Metrics;
use crate::model::knowledge::KnowledgeBase;
use crate::store::{Store, StoreError, now_millis};

/// Milliseconds of messages one transaction looks at, at most: after a long stop, the backlog is decided in steps
/// that let the chats' writes through between them.
const SPAN: i64 = 10 * 60 * 1000;

/// Decides every `every` the conversations idle for `idle`, for ever (the task is aborted on shutdown).
pub async fn run(store: Store, metrics: Metrics, kb: Arc<KnowledgeBase>, idle: Duration, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let cutoff = now_millis() - i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
        match conclude_idle(&store, &metrics, &kb, cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(conversations = n, "outcomes decided"),
            // An outage: the conversations stay undecided and the next round takes them.
            Err(e) => tracing::warn!(error = %e, "deciding conversation outcomes failed; retried next round"),
        }
    }
}

/// Decides span after span until every conversation idle since `cutoff` is; how many were decided.
pub async fn conclude_idle(
    store: &Store,
    metrics: &Metrics,
    kb: &KnowledgeBase,
    cutoff: i64,
) -> Result<usize, StoreError> {
    let mut decided = 0;
    while let Some(batch) = store.conclude(cutoff, SPAN).await? {
        for c in &batch {
            let topic = c.topic.as_deref().map(|t| kb.intent_label(t));
            metrics.count_outcome(&c.user_type, topic, &c.outcome);
        }
        decided += batch.len();
    }
    Ok(decided)
}
