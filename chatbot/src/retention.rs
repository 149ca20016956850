//! The retention purge: in the background, everything stored longer than the retention is deleted, in batches of
//! bounded size (each one short for the writer, which the chats share), until nothing old is left; then it sleeps.

use std::time::Duration;

use crate::metrics::Metrics;
use crate::store::{Purged, Store, now_millis};

/// Rows of each table one batch deletes at most.
pub const BATCH: i64 = 500;
/// Pause between two batches of one round, so that the chats' writes go first.
const BETWEEN_BATCHES: Duration = Duration::from_millis(20);

/// Purges every `every` what is older than `retention`, for ever (the task is aborted on shutdown).
pub async fn run(store: Store, metrics: Metrics, retention: Duration, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let cutoff = now_millis() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        match purge_older_than(&store, &metrics, cutoff).await {
            Ok(p) if p.total() > 0 => tracing::info!(
                messages = p.messages,
                tickets = p.tickets,
                feedback = p.feedback,
                sessions = p.sessions,
                erased_sessions = p.erased_sessions,
                "retention: purged what was older than the retention"
            ),
            Ok(_) => {}
            // An outage or a conflict with another replica's purge: the next round starts over.
            Err(e) => tracing::warn!(error = %e, "retention purge failed; retried next round"),
        }
    }
}

/// Deletes batch after batch until a batch finds nothing more to delete; the rows deleted in all.
pub async fn purge_older_than(
    store: &Store,
    metrics: &Metrics,
    cutoff: i64,
) -> Result<Purged, crate::store::StoreError> {
    let mut all = Purged::default();
    loop {
        let p = store.purge(cutoff, BATCH).await?;
        for (table, n) in p.by_table() {
            metrics
                .retention_deleted_rows_total
                .with_label_values(&[table])
                .inc_by(n);
        }
        all.add(&p);
        if p.by_table().iter().all(|(_, n)| *n < BATCH as u64) {
            return Ok(all);
        }
        tokio::time::sleep(BETWEEN_BATCHES).await;
    }
}
