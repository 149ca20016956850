//! Deleting what is stored: the retention purge (everything older than a cutoff, in bounded batches, so that the
//! writer is never held for long) and the erasure of one conversation on request (GDPR's right to erasure).

use super::{Pool, StoreError, on_pool};

/// Rows deleted by one purge batch, by table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub messages: u64,
    pub tickets: u64,
    pub feedback: u64,
    pub sessions: u64,
    /// Ids of erased sessions kept so that they stay erased (see [`erase_session`]).
    pub erased_sessions: u64,
}

impl Purged {
    /// The tables the purge deletes from, as the `table` label names them.
    pub const TABLES: [&'static str; 5] = ["messages", "tickets", "feedback", "sessions", "erased_sessions"];

    /// Rows deleted, by table, in the order of [`Purged::TABLES`].
    pub fn by_table(&self) -> [(&'static str, u64); 5] {
        let [m, t, f, s, e] = Self::TABLES;
        [
            (m, self.messages),
            (t, self.tickets),
            (f, self.feedback),
            (s, self.sessions),
            (e, self.erased_sessions),
        ]
    }

    pub fn total(&self) -> u64 {
        self.by_table().iter().map(|(_, n)| n).sum()
    }

    pub fn add(&mut self, other: &Purged) {
        self.messages += other.messages;
        self.tickets += other.tickets;
        self.feedback += other.feedback;
        self.sessions += other.sessions;
        self.erased_sessions += other.erased_sessions;
    }
}

/// Deletes at most `limit` rows of each table older than `cutoff` (unix milliseconds): messages, tickets and ratings
/// by their own age, then the sessions left with none of them. A session still in use keeps its recent messages, so it stays.
pub(super) async fn purge_batch(pool: &Pool, cutoff: i64, limit: i64) -> Result<Purged, StoreError> {
    on_pool!(pool, p => {
        let mut tx = p.begin().await?;
        // The oldest rows first, by the created_at index (migration 0002).
        let mut deleted = [0u64; 3];
        for (n, (table, key)) in deleted.iter_mut().zip([("messages", "id"), ("tickets", "id"), ("feedback", "exchange_id")]) {
            let sql = format!(
                "DELETE FROM {table} WHERE {key} IN \
                 (SELECT {key} FROM {table} WHERE created_at < $1 ORDER BY created_at LIMIT $2)"
            );
            *n = sqlx::query(&sql).bind(cutoff).bind(limit).execute(&mut *tx).await?.rows_affected();
        }
        let [messages, tickets, feedback] = deleted;
        let sessions = sqlx::query(
            "DELETE FROM sessions WHERE id IN \
             (SELECT s.id FROM sessions s WHERE s.created_at < $1 \
              AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.session_id = s.id) \
              AND NOT EXISTS (SELECT 1 FROM tickets t WHERE t.session_id = s.id) \
              AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.session_id = s.id) \
              ORDER BY s.created_at LIMIT $2)",
        )
        .bind(cutoff)
        .bind(limit)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let erased_sessions = sqlx::query(
            "DELETE FROM erased_sessions WHERE id IN \
             (SELECT id FROM erased_sessions WHERE erased_at < $1 ORDER BY erased_at LIMIT $2)",
        )
        .bind(cutoff)
        .bind(limit)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(Purged { messages, tickets, feedback, sessions, erased_sessions })
    })
}

/// Deletes a conversation: its ratings, messages, tickets (which hold the customer's words) and the session, and records
/// its id as erased so that an exchange answered meanwhile is refused (see `insert_exchanges`). `false` when there
/// was no such session.
pub(super) async fn erase_session(pool: &Pool, id: &str, now: i64) -> Result<bool, StoreError> {
    // PostgreSQL: the session row first, for update. A replica writing an exchange for it holds a key-share lock on
    // it until its commit; the erasure waits for that commit and then deletes what it wrote, or it goes first and the
    // writer finds the tombstone. SQLite has one writer, which serialises both already.
    let lock = matches!(pool, Pool::Postgres(_)).then_some("SELECT id FROM sessions WHERE id = $1 FOR UPDATE");
    on_pool!(pool, p => {
        let mut tx = p.begin().await?;
        if let Some(lock) = lock {
            sqlx::query(lock).bind(id).execute(&mut *tx).await?;
        }
        for table in ["feedback", "messages", "tickets"] {
            let sql = format!("DELETE FROM {table} WHERE session_id = $1");
            sqlx::query(&sql).bind(id).execute(&mut *tx).await?;
        }
        let sessions = sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if sessions > 0 {
            sqlx::query("INSERT INTO erased_sessions (id, erased_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(sessions > 0)
    })
}

/// Whether `id` names a conversation that was erased (and whose tombstone the retention has not purged yet).
pub(super) async fn is_erased(pool: &Pool, id: &str) -> Result<bool, StoreError> {
    let row: Option<(String,)> = on_pool!(pool, p => {
        sqlx::query_as("SELECT id FROM erased_sessions WHERE id = $1").bind(id).fetch_optional(p).await
    })?;
    Ok(row.is_some())
}
