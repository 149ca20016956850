//! Deleting what is stored: the retention purge (everything older than a cutoff, in bounded batches, so that the
//! writer is never held for long) and the erasure of one conversation on request (GDPR's right to erasure).

use super::{Pool, StoreError, on_pool};

/// Rows deleted by one purge batch, by table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub messages: u64,
    pub tickets: u64,
    pub sessions: u64,
}

impl Purged {
    pub fn total(&self) -> u64 {
        self.messages + self.tickets + self.sessions
    }
}

/// Deletes at most `limit` rows of each table older than `cutoff` (unix milliseconds): messages and tickets by their
/// own age, then the sessions left with neither. A session still in use keeps its recent messages, so it stays.
pub(super) async fn purge_batch(pool: &Pool, cutoff: i64, limit: i64) -> Result<Purged, StoreError> {
    on_pool!(pool, p => {
        let mut tx = p.begin().await?;
        // The oldest rows first, by the created_at index (migration 0002).
        let mut deleted = [0u64; 2];
        for (n, table) in deleted.iter_mut().zip(["messages", "tickets"]) {
            let sql = format!(
                "DELETE FROM {table} WHERE id IN \
                 (SELECT id FROM {table} WHERE created_at < $1 ORDER BY created_at LIMIT $2)"
            );
            *n = sqlx::query(&sql).bind(cutoff).bind(limit).execute(&mut *tx).await?.rows_affected();
        }
        let [messages, tickets] = deleted;
        let sessions = sqlx::query(
            "DELETE FROM sessions WHERE id IN \
             (SELECT s.id FROM sessions s WHERE s.created_at < $1 \
              AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.session_id = s.id) \
              AND NOT EXISTS (SELECT 1 FROM tickets t WHERE t.session_id = s.id) \
              ORDER BY s.created_at LIMIT $2)",
        )
        .bind(cutoff)
        .bind(limit)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(Purged { messages, tickets, sessions })
    })
}

/// Deletes a conversation: its messages, its tickets (which hold the customer's words) and the session. `false` when
/// there was no such session.
pub(super) async fn erase_session(pool: &Pool, id: &str) -> Result<bool, StoreError> {
    on_pool!(pool, p => {
        let mut tx = p.begin().await?;
        sqlx::query("DELETE FROM messages WHERE session_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM tickets WHERE session_id = $1").bind(id).execute(&mut *tx).await?;
        let sessions = sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(sessions > 0)
    })
}
