//! Deciding what each conversation came to, once it has gone idle: `escalated` (a ticket was opened), `abandoned`
//! (nothing beyond small talk was answered, or the customer's last rating was `down`), or `resolved` (anything
//! else). Each conversation is decided once, by one replica, when its last message is older than the idle period.

use super::{Pool, StoreError, on_pool};

/// The outcomes, as the `outcome` label names them.
pub const OUTCOMES: [&str; 3] = ["resolved", "escalated", "abandoned"];

/// One conversation just decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concluded {
    pub user_type: String,
    /// The intent of its first answer that is not small talk; `None` if there was none.
    pub topic: Option<String>,
    pub outcome: String,
}

/// Decides the conversations whose last message is older than `cutoff` (unix milliseconds) and newer than the
/// watermark of the previous decisions, looking at `span` milliseconds of messages at most; moves the watermark.
/// `None` when the watermark has reached `cutoff`.
pub(super) async fn conclude_idle(pool: &Pool, cutoff: i64, span: i64) -> Result<Option<Vec<Concluded>>, StoreError> {
    // PostgreSQL: the watermark row for update, so that two replicas never decide the same span; and the outer
    // `outcome IS NULL` is checked again on a row's latest version, so a conversation is never counted twice.
    let watermark_sql = match pool {
        Pool::Postgres(_) => "SELECT decided_before FROM outcome_watermark WHERE id = 1 FOR UPDATE",
        Pool::Sqlite(_) => "SELECT decided_before FROM outcome_watermark WHERE id = 1",
    };
    on_pool!(pool, p => {
        let mut tx = p.begin().await?;
        let (low,): (i64,) = sqlx::query_as(watermark_sql).fetch_one(&mut *tx).await?;
        if low >= cutoff {
            return Ok(None);
        }
        let high = cutoff.min(low.saturating_add(span));
        // The sessions with a message in (low, high] and none after high: idle since high at least, and never
        // decided before (their last message is after the previous watermark).
        let rows: Vec<(String, Option<String>, String)> = sqlx::query_as(
            "UPDATE sessions SET outcome = CASE \
                 WHEN EXISTS (SELECT 1 FROM tickets t WHERE t.session_id = sessions.id) THEN 'escalated' \
                 WHEN sessions.topic IS NULL THEN 'abandoned' \
                 WHEN (SELECT f.rating FROM feedback f WHERE f.session_id = sessions.id \
                       ORDER BY f.created_at DESC, f.exchange_id DESC LIMIT 1) = 'down' THEN 'abandoned' \
                 ELSE 'resolved' END \
             WHERE outcome IS NULL \
               AND id IN (SELECT m.session_id FROM messages m WHERE m.created_at > $1 AND m.created_at <= $2) \
               AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.session_id = sessions.id AND m.created_at > $2) \
             RETURNING user_type, topic, outcome",
        )
        .bind(low)
        .bind(high)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("UPDATE outcome_watermark SET decided_before = $1 WHERE id = 1")
            .bind(high)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(
            rows.into_iter()
                .map(|(user_type, topic, outcome)| Concluded { user_type, topic, outcome })
                .collect(),
        ))
    })
}
