//! What is stored (sessions, messages, tickets), how it reads back, and the batched insert used by the writer.

use std::collections::HashSet;

use serde::Serialize;
use sqlx::QueryBuilder;

use super::{Pool, StoreError, on_pool};

/// A session to create with the exchange, or `None` when the exchange continues an existing one.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub user_type: &'static str,
    pub language: &'static str,
}

#[derive(Debug, Clone)]
pub struct NewMessage {
    pub role: &'static str,
    pub content: String,
    pub intent: Option<String>,
    pub confidence: Option<f64>,
    pub model: Option<&'static str>,
    pub ticket_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewTicket {
    pub id: String,
    pub reason: &'static str,
    pub intent: String,
    pub message: String,
}

/// One question and its answer, written together or not at all.
#[derive(Debug, Clone)]
pub struct NewExchange {
    /// The answer's id, by which the customer rates it.
    pub exchange_id: String,
    /// What the conversation is about, from this answer (`None` for small talk): kept if it has none yet.
    pub topic: Option<String>,
    pub session_id: String,
    pub new_session: Option<NewSession>,
    pub user_type: &'static str,
    pub language: &'static str,
    pub created_at: i64,
    pub question: NewMessage,
    pub answer: NewMessage,
    pub ticket: Option<NewTicket>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SessionRecord {
    pub session_id: String,
    pub user_type: String,
    pub language: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MessageRecord {
    pub role: String,
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
    /// An answer's id, by which it is rated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange_id: Option<String>,
    /// The customer's rating of this answer, and the comment given with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub created_at: String,
}

/// `GET /conversations/{session_id}`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Conversation {
    #[serde(flatten)]
    pub session: SessionRecord,
    pub messages: Vec<MessageRecord>,
}

/// One conversation in an agent's list: who, when, and how much it holds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConversationSummary {
    #[serde(flatten)]
    pub session: SessionRecord,
    pub messages: i64,
    pub tickets: i64,
}

/// `GET /conversations`: newest first; `next` is the `before` of the following page, absent on the last one.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConversationPage {
    pub conversations: Vec<ConversationSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Where a page of conversations starts: strictly older than this session (creation time, then id, descending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub session_id: String,
}

impl Cursor {
    /// `<unix milliseconds>:<session id>`, as `next` gives it.
    pub fn parse(text: &str) -> Option<Cursor> {
        let (millis, id) = text.split_once(':')?;
        Some(Cursor {
            created_at: millis.parse().ok()?,
            session_id: id.to_owned(),
        })
    }

    fn format(&self) -> String {
        format!("{}:{}", self.created_at, self.session_id)
    }
}

/// `GET /tickets/{id}`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Ticket {
    pub ticket_id: String,
    pub session_id: String,
    pub status: String,
    pub reason: String,
    pub intent: String,
    pub user_type: String,
    pub language: String,
    pub message: String,
    pub created_at: String,
}

fn rfc3339(millis: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

pub(super) async fn load_session(pool: &Pool, id: &str) -> Result<Option<SessionRecord>, StoreError> {
    let row: Option<(String, String, String, i64)> = on_pool!(pool, p => {
        sqlx::query_as("SELECT id, user_type, language, created_at FROM sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await
    })?;
    Ok(row.map(|(session_id, user_type, language, created_at)| SessionRecord {
        session_id,
        user_type,
        language,
        created_at: rfc3339(created_at),
    }))
}

type MessageRow = (
    String,
    String,
    Option<String>,
    Option<f64>,
    Option<String>,
    Option<String>,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
);

pub(super) async fn load_conversation(pool: &Pool, id: &str) -> Result<Option<Conversation>, StoreError> {
    let Some(session) = load_session(pool, id).await? else {
        return Ok(None);
    };
    let rows: Vec<MessageRow> = on_pool!(pool, p => {
        sqlx::query_as(
            "SELECT m.role, m.content, m.intent, m.confidence, m.model, m.ticket_id, m.created_at, \
                    m.exchange_id, f.rating, f.comment \
             FROM messages m LEFT JOIN feedback f ON f.exchange_id = m.exchange_id \
             WHERE m.session_id = $1 ORDER BY m.id",
        )
        .bind(id)
        .fetch_all(p)
        .await
    })?;
    let messages = rows
        .into_iter()
        .map(
            |(role, content, intent, confidence, model, ticket_id, created_at, exchange_id, rating, comment)| {
                MessageRecord {
                    role,
                    content,
                    intent,
                    confidence,
                    model,
                    ticket_id,
                    exchange_id,
                    rating,
                    comment,
                    created_at: rfc3339(created_at),
                }
            },
        )
        .collect();
    Ok(Some(Conversation { session, messages }))
}

type SummaryRow = (String, String, String, i64, i64, i64);

/// A page of `limit` conversations older than `before`, newest first (keyset pagination: stable while new
/// conversations arrive, and one index range scan per page).
pub(super) async fn list_conversations(
    pool: &Pool,
    before: Option<&Cursor>,
    limit: i64,
) -> Result<ConversationPage, StoreError> {
    let (millis, id) = match before {
        Some(c) => (c.created_at, c.session_id.as_str()),
        None => (i64::MAX, ""),
    };
    let mut rows: Vec<SummaryRow> = on_pool!(pool, p => {
        sqlx::query_as(
            "SELECT s.id, s.user_type, s.language, s.created_at, \
                    (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id), \
                    (SELECT COUNT(*) FROM tickets t WHERE t.session_id = s.id) \
             FROM sessions s WHERE s.created_at <= $1 AND (s.created_at < $1 OR s.id < $2) \
             ORDER BY s.created_at DESC, s.id DESC LIMIT $3",
        )
        .bind(millis)
        .bind(id)
        .bind(limit + 1)
        .fetch_all(p)
        .await
    })?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = more.then(|| rows.last()).flatten().map(|(id, _, _, created_at, _, _)| {
        Cursor {
            created_at: *created_at,
            session_id: id.clone(),
        }
        .format()
    });
    let conversations = rows
        .into_iter()
        .map(
            |(session_id, user_type, language, created_at, messages, tickets)| ConversationSummary {
                session: SessionRecord {
                    session_id,
                    user_type,
                    language,
                    created_at: rfc3339(created_at),
                },
                messages,
                tickets,
            },
        )
        .collect();
    Ok(ConversationPage { conversations, next })
}

type TicketRow = (String, String, String, String, String, String, String, String, i64);

pub(super) async fn load_ticket(pool: &Pool, id: &str) -> Result<Option<Ticket>, StoreError> {
    let row: Option<TicketRow> = on_pool!(pool, p => {
        sqlx::query_as(
            "SELECT id, session_id, status, reason, intent, user_type, language, message, created_at \
             FROM tickets WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await
    })?;
    Ok(row.map(
        |(ticket_id, session_id, status, reason, intent, user_type, language, message, created_at)| Ticket {
            ticket_id,
            session_id,
            status,
            reason,
            intent,
            user_type,
            language,
            message,
            created_at: rfc3339(created_at),
        },
    ))
}

/// Inserts a batch of exchanges in one transaction: one multi-row INSERT per table, whatever the batch size.
/// Exchanges of a conversation erased meanwhile are left out: their session ids are returned.
pub(super) async fn insert_exchanges(pool: &Pool, batch: &[&NewExchange]) -> Result<HashSet<String>, StoreError> {
    // Only a conversation that existed before its chat can have been erased meanwhile: a new session's id was made
    // by the chat itself. Most batches under load are first contacts and skip both reads.
    let mut seen = HashSet::new();
    let continued: Vec<&str> = batch
        .iter()
        .filter(|e| e.new_session.is_none())
        .map(|e| e.session_id.as_str())
        .filter(|id| seen.insert(*id))
        .collect();
    let postgres = matches!(pool, Pool::Postgres(_));
    on_pool!(pool, p => {
        let mut tx = p.begin().await?;
        let mut erased = HashSet::new();
        if !continued.is_empty() {
            // PostgreSQL: key-share locks on those sessions first, so that an erasure in another replica either
            // committed before (its tombstone is read below) or waits for this commit (see `erase_session`).
            // SQLite has one writer, this one, which runs erasures between batches.
            if postgres {
                let mut q = QueryBuilder::new("SELECT id FROM sessions WHERE id IN (");
                let mut list = q.separated(", ");
                for id in &continued {
                    list.push_bind(*id);
                }
                q.push(") FOR KEY SHARE");
                q.build().persistent(false).execute(&mut *tx).await?;
            }
            let mut q = QueryBuilder::new("SELECT id FROM erased_sessions WHERE id IN (");
            let mut list = q.separated(", ");
            for id in &continued {
                list.push_bind(*id);
            }
            q.push(")");
            erased = q.build_query_scalar::<String>().persistent(false).fetch_all(&mut *tx).await?.into_iter().collect();
        }
        let batch: Vec<&NewExchange> =
            batch.iter().copied().filter(|e| !erased.contains(&e.session_id)).collect();
        if batch.is_empty() {
            tx.commit().await?;
            return Ok(erased);
        }
        // Every exchange's session, not only the new ones: one purged by retention between the chat's read and this
        // write is created again rather than the insert failing on its foreign key (an erased one was left out above).
        // Each session once (an upsert may not touch a row twice), with its batch's first topic; an existing row is
        // written only when it gets its first topic.
        let mut sessions: Vec<(&NewExchange, Option<&str>)> = Vec::new();
        let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for e in &batch {
            match index.get(e.session_id.as_str()) {
                Some(&i) => {
                    let topic: &mut Option<&str> = &mut sessions[i].1;
                    *topic = topic.or(e.topic.as_deref());
                }
                None => {
                    index.insert(e.session_id.as_str(), sessions.len());
                    sessions.push((e, e.topic.as_deref()));
                }
            }
        }
        let mut q = QueryBuilder::new("INSERT INTO sessions (id, user_type, language, created_at, topic) ");
        q.push_values(sessions, |mut row, (e, topic)| {
            let (user_type, language) = match &e.new_session {
                Some(s) => (s.user_type, s.language),
                None => (e.user_type, e.language),
            };
            row.push_bind(e.session_id.as_str())
                .push_bind(user_type)
                .push_bind(language)
                .push_bind(e.created_at)
                .push_bind(topic);
        });
        q.push(
            " ON CONFLICT (id) DO UPDATE SET topic = excluded.topic \
             WHERE sessions.topic IS NULL AND excluded.topic IS NOT NULL",
        );
        q.build().persistent(false).execute(&mut *tx).await?;
        let mut q = QueryBuilder::new(
            "INSERT INTO messages (session_id, exchange_id, role, content, intent, confidence, model, ticket_id, created_at) ",
        );
        let messages = batch.iter().flat_map(|e| [(*e, &e.question, None), (*e, &e.answer, Some(e.exchange_id.as_str()))]);
        q.push_values(messages, |mut row, (e, m, exchange_id)| {
            row.push_bind(e.session_id.as_str())
                .push_bind(exchange_id)
                .push_bind(m.role)
                .push_bind(m.content.as_str())
                .push_bind(m.intent.as_deref())
                .push_bind(m.confidence)
                .push_bind(m.model)
                .push_bind(m.ticket_id.as_deref())
                .push_bind(e.created_at);
        });
        q.build().persistent(false).execute(&mut *tx).await?;
        let tickets: Vec<(&NewExchange, &NewTicket)> =
            batch.iter().filter_map(|e| e.ticket.as_ref().map(|t| (*e, t))).collect();
        if !tickets.is_empty() {
            let mut q = QueryBuilder::new(
                "INSERT INTO tickets (id, session_id, status, reason, intent, user_type, language, message, created_at) ",
            );
            q.push_values(tickets, |mut row, (e, t)| {
                row.push_bind(t.id.as_str())
                    .push_bind(e.session_id.as_str())
                    .push_bind("open")
                    .push_bind(t.reason)
                    .push_bind(t.intent.as_str())
                    .push_bind(e.user_type)
                    .push_bind(e.language)
                    .push_bind(t.message.as_str())
                    .push_bind(e.created_at);
            });
            q.build().persistent(false).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(erased)
    })
}
