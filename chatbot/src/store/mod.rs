//! Conversation storage through sqlx: SQLite (a file, the default) or PostgreSQL (several replicas, one database).
//!
//! Reads go straight to the pool. Writes go through [`writer`], which commits the exchanges of concurrent requests
//! in one transaction (group commit) and answers each request only once its exchange is durable.

mod deletion;
mod feedback;
mod outcomes;
mod records;
mod writer;

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
pub use deletion::Purged;
pub use feedback::{NewFeedback, Rated};
pub use outcomes::{Concluded, OUTCOMES};
pub use records::{
    Conversation, ConversationPage, ConversationSummary, Cursor, MessageRecord, NewExchange, NewMessage, NewSession,
    NewTicket, SessionRecord, Ticket,
};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `sqlite://PATH` (created when missing) or `postgres://…`.
    pub url: String,
    /// Connections in all: one for the writer, the others (at least one) for reads.
    pub max_connections: u32,
    /// How long a request waits for a connection before it is answered 503.
    pub acquire_timeout: Duration,
}

/// A storage failure as the API sees it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached now; the request may be retried and the service recovers by itself.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database refused the statement: a bug, not an outage.
    #[error("database error: {0}")]
    Query(String),
    /// The conversation was erased (possibly while this exchange was being answered): nothing was stored for it.
    #[error("the conversation was erased")]
    Erased,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let outage = match &e {
            sqlx::Error::Database(db) => {
                let sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some();
                db.code().is_some_and(|c| is_outage_code(&c, sqlite))
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => true,
            _ => false,
        };
        if outage {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Query(e.to_string())
        }
    }
}

/// Database error codes that mean "the database cannot serve now" rather than "this statement is wrong":
/// PostgreSQL SQLSTATE classes 08 (connection), 53 (resources), 57 (shutdown); SQLite primary result codes BUSY (5),
/// LOCKED (6), READONLY (8), IOERR (10), FULL (13), CANTOPEN (14), which sqlx reports as (extended) numbers.
fn is_outage_code(code: &str, sqlite: bool) -> bool {
    if sqlite {
        code.parse::<i32>()
            .is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 8 | 10 | 13 | 14))
    } else {
        code.starts_with("08") || code.starts_with("53") || code.starts_with("57")
    }
}

/// One of the two supported databases. Both speak the same SQL here; [`on_pool!`] runs one body on either.
#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same code on whichever pool is configured; queries use `$N` placeholders, which both accept.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::store::Pool::Sqlite($p) => $body,
            $crate::store::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use on_pool;

/// The store handle shared by request handlers. Cloning is cheap.
#[derive(Clone)]
pub struct Store {
    /// Reads.
    pool: Pool,
    /// The writer task's single connection.
    writer_pool: Pool,
    writes: mpsc::Sender<writer::Job>,
    metrics: Metrics,
    schema: Arc<Schema>,
}

/// Whether the migrations have run; until then every operation is refused as "unavailable" (503), not attempted
/// against tables that may not exist.
#[derive(Default)]
struct Schema {
    ready: AtomicBool,
    last_error: Mutex<String>,
}

/// Owns the writer task; [`StoreWriter::shutdown`] drains it and closes the pool.
pub struct StoreWriter {
    task: tokio::task::JoinHandle<()>,
    /// Migrations still being retried in the background, if the database was down at startup.
    migrating: Option<tokio::task::JoinHandle<()>>,
    pools: [Pool; 2],
}

impl Store {
    /// Connects, applies the migrations and starts the writer.
    pub async fn connect(config: &StoreConfig, metrics: Metrics) -> anyhow::Result<(Store, StoreWriter)> {
        let readers = config.max_connections.saturating_sub(1).max(1);
        let (pool, writer_pool) = if config.url.starts_with("postgres://") || config.url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(&config.url)?.application_name("chatbot");
            let pool = |max| {
                PgPoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(config.acquire_timeout)
                    .connect_lazy_with(options.clone())
            };
            (Pool::Postgres(pool(readers)), Pool::Postgres(pool(1)))
        } else if config.url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(&config.url)?
                .create_if_missing(true)
                // WAL lets readers run beside the writer; NORMAL is durable across process crashes in WAL mode.
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
                .pragma("cache_size", "-512");
            let pool = |max| {
                SqlitePoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(config.acquire_timeout)
                    // A local file does not drop connections: skip the ping before every query.
                    .test_before_acquire(false)
                    .connect_with(options.clone())
            };
            let read_pool = pool(readers).await?;
            // Created after the readers, so that the file exists in WAL mode before the second pool opens it.
            let write_pool = pool(1).await?;
            (Pool::Sqlite(read_pool), Pool::Sqlite(write_pool))
        } else {
            anyhow::bail!(
                "unsupported database URL {:?}: use sqlite://PATH or postgres://USER:PASSWORD@HOST/DB",
                redact(&config.url)
            );
        };
        let schema = Arc::new(Schema::default());
        let migrating = match migrate(&pool, &metrics).await {
            Ok(()) => {
                schema.ready.store(true, Ordering::Release);
                None
            }
            // A PostgreSQL server that is not up yet (it often starts beside the chatbot): serve anyway, not ready,
            // and keep trying; the pod joins its Service once the schema is in place. A database that answers
            // but refuses the schema, or a SQLite file that cannot be opened, is a configuration error.
            Err(e) if matches!(pool, Pool::Postgres(_)) && ping(&pool).await.is_err() => {
                tracing::warn!(error = %e, "the database is not reachable yet; serving as not ready and retrying");
                *schema.last_error.lock().unwrap() = e.to_string();
                Some(tokio::spawn(migrate_until_done(
                    pool.clone(),
                    metrics.clone(),
                    schema.clone(),
                )))
            }
            Err(e) => return Err(e.into()),
        };
        metrics.database_connections_max.set(i64::from(readers) + 1);
        // All writes go through one connection of their own: its page cache stays warm from one group commit to
        // the next, where a pooled connection would be a different one each time and re-read the pages it touches.
        let (writes, task) = writer::spawn(writer_pool.clone(), metrics.clone());
        Ok((
            Store {
                pool: pool.clone(),
                writer_pool: writer_pool.clone(),
                writes,
                metrics,
                schema,
            },
            StoreWriter {
                task,
                migrating,
                pools: [pool, writer_pool],
            },
        ))
    }

    /// Stores one exchange (and its ticket) durably; returns once it is committed.
    pub async fn save(&self, exchange: NewExchange) -> Result<(), StoreError> {
        self.schema_ready()?;
        self.ask(|done| writer::Job::Save(writer::Save { exchange, done }))
            .await
    }

    /// Deletes one batch (at most `limit` rows a table) of what is older than `cutoff` (unix milliseconds).
    pub async fn purge(&self, cutoff: i64, limit: i64) -> Result<Purged, StoreError> {
        self.schema_ready()?;
        self.ask(|done| writer::Job::Purge { cutoff, limit, done }).await
    }

    /// Erases the conversation `session_id` (messages, tickets, session); `false` when there is none.
    pub async fn erase(&self, session_id: &str) -> Result<bool, StoreError> {
        self.schema_ready()?;
        let session_id = session_id.to_owned();
        self.ask(|done| writer::Job::Erase { session_id, done }).await
    }

    /// Stores a customer's rating of an answer.
    pub async fn rate(&self, feedback: NewFeedback) -> Result<Rated, StoreError> {
        self.schema_ready()?;
        self.ask(|done| writer::Job::Rate { feedback, done }).await
    }

    /// Decides the conversations idle since `cutoff` (unix milliseconds) among `span` milliseconds of messages
    /// after the previous decisions; `None` once every conversation idle since `cutoff` is decided.
    pub async fn conclude(&self, cutoff: i64, span: i64) -> Result<Option<Vec<Concluded>>, StoreError> {
        self.schema_ready()?;
        self.ask(|done| writer::Job::Conclude { cutoff, span, done }).await
    }

    /// Hands a job to the writer and waits for its answer.
    async fn ask<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> writer::Job,
    ) -> Result<T, StoreError> {
        let (done, result) = oneshot::channel();
        let gone = || StoreError::Unavailable("the store is shutting down".into());
        self.writes.send(job(done)).await.map_err(|_| gone())?;
        result.await.map_err(|_| gone())?
    }

    /// Checks that the database answers, for `/ready`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.schema_ready()?;
        let _timer = self.metrics.db_timer("ping").start_timer();
        // Read a table, not a constant: SQLite answers `SELECT 1` even when its file is gone or unreadable.
        on_pool!(&self.pool, p => sqlx::query("SELECT 1 FROM sessions LIMIT 1").execute(p).await.map(drop))?;
        Ok(())
    }

    pub async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.schema_ready()?;
        let _timer = self.metrics.db_timer("load_session").start_timer();
        records::load_session(&self.pool, id).await
    }

    /// Whether `id` is a conversation erased on request (within the retention).
    pub async fn erased(&self, id: &str) -> Result<bool, StoreError> {
        self.schema_ready()?;
        let _timer = self.metrics.db_timer("load_erased").start_timer();
        deletion::is_erased(&self.pool, id).await
    }

    pub async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        self.schema_ready()?;
        let _timer = self.metrics.db_timer("load_conversation").start_timer();
        records::load_conversation(&self.pool, id).await
    }

    /// A page of conversations for an agent, newest first.
    pub async fn conversations(&self, before: Option<&Cursor>, limit: i64) -> Result<ConversationPage, StoreError> {
        self.schema_ready()?;
        let _timer = self.metrics.db_timer("list_conversations").start_timer();
        records::list_conversations(&self.pool, before, limit).await
    }

    pub async fn ticket(&self, id: &str) -> Result<Option<Ticket>, StoreError> {
        self.schema_ready()?;
        let _timer = self.metrics.db_timer("load_ticket").start_timer();
        records::load_ticket(&self.pool, id).await
    }

    fn schema_ready(&self) -> Result<(), StoreError> {
        if self.schema.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        Err(StoreError::Unavailable(format!(
            "the database schema is not in place yet (the database was unreachable at startup: {})",
            self.schema.last_error.lock().unwrap()
        )))
    }

    /// Refreshes the connection gauges; called when `/metrics` is scraped.
    pub fn update_pool_gauges(&self) {
        let (size, idle) = [&self.pool, &self.writer_pool]
            .into_iter()
            .map(|pool| on_pool!(pool, p => (p.size() as i64, p.num_idle() as i64)))
            .fold((0, 0), |(s, i), (ps, pi)| (s + ps, i + pi));
        self.metrics.database_connections_active.set((size - idle).max(0));
        self.metrics.database_connections_idle.set(idle);
    }
}

impl StoreWriter {
    /// Stops the writer once the server has finished its requests, then closes the pool.
    pub async fn shutdown(self) {
        // Every handler awaited its write before answering, so once the server is drained nothing is queued.
        self.task.abort();
        let _ = self.task.await;
        if let Some(migrating) = self.migrating {
            migrating.abort();
            let _ = migrating.await;
        }
        for pool in &self.pools {
            on_pool!(pool, p => p.close().await);
        }
    }
}

async fn migrate(pool: &Pool, metrics: &Metrics) -> Result<(), sqlx::migrate::MigrateError> {
    let _timer = metrics.db_timer("migrate").start_timer();
    match pool {
        Pool::Sqlite(p) => SQLITE_MIGRATIONS.run(p).await,
        Pool::Postgres(p) => POSTGRES_MIGRATIONS.run(p).await,
    }
}

async fn ping(pool: &Pool) -> Result<(), sqlx::Error> {
    on_pool!(pool, p => sqlx::query("SELECT 1").execute(p).await.map(drop))
}

/// Retries the migrations (0.5 s, doubling to 30 s) until they succeed, then marks the schema ready.
async fn migrate_until_done(pool: Pool, metrics: Metrics, schema: Arc<Schema>) {
    let mut delay = Duration::from_millis(500);
    loop {
        tokio::time::sleep(delay).await;
        match migrate(&pool, &metrics).await {
            Ok(()) => {
                schema.ready.store(true, Ordering::Release);
                tracing::info!("the database is reachable and its schema in place: ready");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "the database is still not reachable");
                *schema.last_error.lock().unwrap() = e.to_string();
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Milliseconds since the Unix epoch, the storage's time unit.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Hides a password in a database URL before it is logged or shown.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outage_codes() {
        for code in ["08006", "57P01", "53300"] {
            assert!(is_outage_code(code, false), "{code}");
        }
        for code in ["23505", "22021"] {
            assert!(!is_outage_code(code, false), "{code}");
        }
        for code in ["5", "10", "266", "14", "8"] {
            assert!(is_outage_code(code, true), "{code}");
        }
        for code in ["19", "1", "2067"] {
            assert!(!is_outage_code(code, true), "{code}");
        }
    }

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(
            redact("postgres://bot:s3cret@db:5432/chat"),
            "postgres://bot:***@db:5432/chat"
        );
        assert_eq!(redact("sqlite://chatbot.db"), "sqlite://chatbot.db");
    }
}
