//! Group commit: one task takes the exchanges waiting to be written, commits them in one transaction, and tells
//! each waiting request how it went. SQLite has a single writer anyway; this turns N commits into one. Deletions
//! (a retention batch, an erasure), ratings and
//! outcomes go through the same task, between two commits, so they never contend with it.

use std::collections::HashSet;

use tokio::sync::{mpsc, oneshot};

use super::deletion::{Purged, erase_session, purge_batch};
use super::feedback::{NewFeedback, Rated, rate};
use super::now_millis;
use super::outcomes::{Concluded, conclude_idle};
use super::records::{NewExchange, insert_exchanges};
use super::{Pool, StoreError};
use crate::metrics::Metrics;

/// Most exchanges per transaction: keeps statements under SQLite's bound-parameter limit with a wide margin.
const MAX_BATCH: usize = 128;
/// Requests waiting for the writer before `save` itself waits (backpressure instead of unbounded memory).
const QUEUE: usize = 4096;

/// What the writer does, in the order asked: exchanges in a row are committed together.
// Nearly every job is a Save, the large one: boxing it would cost an allocation per chat to shrink the rare others.
#[allow(clippy::large_enum_variant)]
pub(super) enum Job {
    Save(Save),
    Purge {
        cutoff: i64,
        limit: i64,
        done: oneshot::Sender<Result<Purged, StoreError>>,
    },
    Erase {
        session_id: String,
        done: oneshot::Sender<Result<bool, StoreError>>,
    },
    Rate {
        feedback: NewFeedback,
        done: oneshot::Sender<Result<Rated, StoreError>>,
    },
    Conclude {
        cutoff: i64,
        span: i64,
        done: oneshot::Sender<Result<Option<Vec<Concluded>>, StoreError>>,
    },
}

pub(super) struct Save {
    pub exchange: NewExchange,
    pub done: oneshot::Sender<Result<(), StoreError>>,
}

pub(super) fn spawn(pool: Pool, metrics: Metrics) -> (mpsc::Sender<Job>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let task = tokio::spawn(run(pool, metrics, rx));
    (tx, task)
}

async fn run(pool: Pool, metrics: Metrics, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut saves = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        for job in jobs.drain(..) {
            match job {
                Job::Save(save) => saves.push(save),
                Job::Purge { cutoff, limit, done } => {
                    save_all(&pool, &metrics, &mut saves).await;
                    let _timer = metrics.db_timer("purge").start_timer();
                    let _ = done.send(purge_batch(&pool, cutoff, limit).await);
                }
                Job::Erase { session_id, done } => {
                    save_all(&pool, &metrics, &mut saves).await;
                    let _timer = metrics.db_timer("erase").start_timer();
                    let _ = done.send(erase_session(&pool, &session_id, now_millis()).await);
                }
                // After the exchanges queued before it: the answer rated is stored by then.
                Job::Rate { feedback, done } => {
                    save_all(&pool, &metrics, &mut saves).await;
                    let _timer = metrics.db_timer("save_feedback").start_timer();
                    let _ = done.send(rate(&pool, &feedback).await);
                }
                Job::Conclude { cutoff, span, done } => {
                    save_all(&pool, &metrics, &mut saves).await;
                    let _timer = metrics.db_timer("conclude").start_timer();
                    let _ = done.send(conclude_idle(&pool, cutoff, span).await);
                }
            }
        }
        save_all(&pool, &metrics, &mut saves).await;
    }
}

/// Commits `saves` in one transaction and tells each how it went.
async fn save_all(pool: &Pool, metrics: &Metrics, saves: &mut Vec<Save>) {
    if saves.is_empty() {
        return;
    }
    match write(pool, metrics, saves).await {
        // A statement error in a batch may come from one exchange only: retry them one by one so that the
        // others are not refused with it. An outage fails them all at once instead of waiting N times.
        Err(StoreError::Query(_)) if saves.len() > 1 => {
            for save in saves.drain(..) {
                let r = write(pool, metrics, std::slice::from_ref(&save)).await;
                answer(save, r);
            }
        }
        result => {
            if let Err(e) = &result {
                tracing::warn!(error = %e, exchanges = saves.len(), "could not store exchanges");
            }
            for save in saves.drain(..) {
                answer(save, result.clone());
            }
        }
    }
}

/// Tells a request how its batch went: refused if its conversation was erased meanwhile.
fn answer(save: Save, batch: Result<HashSet<String>, StoreError>) {
    let result = batch.and_then(|erased| match erased.contains(&save.exchange.session_id) {
        true => Err(StoreError::Erased),
        false => Ok(()),
    });
    let _ = save.done.send(result);
}

async fn write(pool: &Pool, metrics: &Metrics, saves: &[Save]) -> Result<HashSet<String>, StoreError> {
    let _timer = metrics.db_timer("save_exchanges").start_timer();
    let batch: Vec<&NewExchange> = saves.iter().map(|j| &j.exchange).collect();
    insert_exchanges(pool, &batch).await
}
