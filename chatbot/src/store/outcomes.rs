//! Deciding what each conversation came to, once it has gone idle: `escalated` (a ticket was opened), `abandoned`
//! (nothing beyond small talk was answered, or the customer's last rating was `down`), or `resolved` (anything
//! else). Each conversation is decided once, by one replica.

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

/// Decides at most `limit` conversations with no message since `cutoff` (unix milliseconds), oldest first.
pub(super) async fn conclude_idle(pool: &Pool, cutoff: i64, limit: i64) -> Result<Vec<Concluded>, StoreError> {
    // The outer `outcome IS NULL AND last_active_at < $1` is checked again on the row's latest version when another
    // replica updated it meanwhile (PostgreSQL's read committed): a conversation is never decided, or counted, twice,
    // nor decided after a new message made it active again.
    let rows: Vec<(String, Option<String>, String)> = on_pool!(pool, p => {
        sqlx::query_as(
            "UPDATE sessions SET outcome = CASE \
                 WHEN EXISTS (SELECT 1 FROM tickets t WHERE t.session_id = sessions.id) THEN 'escalated' \
                 WHEN sessions.topic IS NULL THEN 'abandoned' \
                 WHEN (SELECT f.rating FROM feedback f WHERE f.session_id = sessions.id \
                       ORDER BY f.created_at DESC, f.exchange_id DESC LIMIT 1) = 'down' THEN 'abandoned' \
                 ELSE 'resolved' END \
             WHERE outcome IS NULL AND last_active_at < $1 AND id IN \
                 (SELECT id FROM sessions WHERE outcome IS NULL AND last_active_at < $1 \
                  ORDER BY last_active_at LIMIT $2) \
             RETURNING user_type, topic, outcome",
        )
        .bind(cutoff)
        .bind(limit)
        .fetch_all(p)
        .await
    })?;
    Ok(rows
        .into_iter()
        .map(|(user_type, topic, outcome)| Concluded {
            user_type,
            topic,
            outcome,
        })
        .collect())
}
