//! Customers' ratings of answers: one per answer, kept with the conversation (erased with it, purged with the
//! retention).

use super::{Pool, StoreError, on_pool};

/// A rating to store.
#[derive(Debug, Clone)]
pub struct NewFeedback {
    pub session_id: String,
    pub exchange_id: String,
    pub rating: &'static str,
    pub comment: Option<String>,
    pub created_at: i64,
}

/// How storing a rating went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rated {
    /// Stored; the labels of `chat_feedback_total`.
    Stored {
        intent: String,
        user_type: String,
    },
    UnknownSession,
    /// No answer with this id in this conversation.
    UnknownExchange,
    /// This answer was rated already: the first rating stands.
    AlreadyRated,
}

/// Stores a rating. An erased conversation is refused ([`StoreError::Erased`]), also when the erasure ran while
/// this request was on its way: on PostgreSQL the session row is key-share locked first, as for an exchange.
pub(super) async fn rate(pool: &Pool, f: &NewFeedback) -> Result<Rated, StoreError> {
    let lock = if matches!(pool, Pool::Postgres(_)) {
        " FOR KEY SHARE"
    } else {
        ""
    };
    let session_sql = format!("SELECT user_type FROM sessions WHERE id = $1{lock}");
    on_pool!(pool, p => {
        let mut tx = p.begin().await?;
        let session: Option<(String,)> =
            sqlx::query_as(&session_sql).bind(&f.session_id).fetch_optional(&mut *tx).await?;
        let Some((user_type,)) = session else {
            let erased: Option<(String,)> = sqlx::query_as("SELECT id FROM erased_sessions WHERE id = $1")
                .bind(&f.session_id)
                .fetch_optional(&mut *tx)
                .await?;
            return match erased {
                Some(_) => Err(StoreError::Erased),
                None => Ok(Rated::UnknownSession),
            };
        };
        let answer: Option<(Option<String>,)> =
            sqlx::query_as("SELECT intent FROM messages WHERE exchange_id = $1 AND session_id = $2")
                .bind(&f.exchange_id)
                .bind(&f.session_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((intent,)) = answer else {
            return Ok(Rated::UnknownExchange);
        };
        let intent = intent.unwrap_or_else(|| crate::model::knowledge::UNKNOWN_INTENT.to_owned());
        let inserted = sqlx::query(
            "INSERT INTO feedback (exchange_id, session_id, rating, comment, intent, user_type, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (exchange_id) DO NOTHING",
        )
        .bind(&f.exchange_id)
        .bind(&f.session_id)
        .bind(f.rating)
        .bind(f.comment.as_deref())
        .bind(&intent)
        .bind(&user_type)
        .bind(f.created_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(match inserted {
            0 => Rated::AlreadyRated,
            _ => Rated::Stored { intent, user_type },
        })
    })
}
