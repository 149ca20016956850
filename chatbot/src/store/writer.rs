//! Group commit: one task takes the exchanges waiting to be written, commits them in one transaction, and tells
//! each waiting request how it went. SQLite has a single writer anyway; this turns N commits into one.

use tokio::sync::{mpsc, oneshot};

use super::records::{NewExchange, insert_exchanges};
use super::{Pool, StoreError};
use crate::metrics::Metrics;

/// Most exchanges per transaction: keeps statements under SQLite's bound-parameter limit with a wide margin.
const MAX_BATCH: usize = 128;
/// Requests waiting for the writer before `save` itself waits (backpressure instead of unbounded memory).
const QUEUE: usize = 4096;

pub(super) struct Job {
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
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let result = write(&pool, &metrics, &jobs).await;
        match result {
            // A statement error in a batch may come from one exchange only: retry them one by one so that the
            // others are not refused with it. An outage fails them all at once instead of waiting N times.
            Err(StoreError::Query(_)) if jobs.len() > 1 => {
                for job in jobs.drain(..) {
                    let r = write(&pool, &metrics, std::slice::from_ref(&job)).await;
                    let _ = job.done.send(r);
                }
            }
            result => {
                if let Err(e) = &result {
                    tracing::warn!(error = %e, exchanges = jobs.len(), "could not store exchanges");
                }
                for job in jobs.drain(..) {
                    let _ = job.done.send(result.clone());
                }
            }
        }
    }
}

async fn write(pool: &Pool, metrics: &Metrics, jobs: &[Job]) -> Result<(), StoreError> {
    let _timer = metrics.db_timer("save_exchanges").start_timer();
    let batch: Vec<&NewExchange> = jobs.iter().map(|j| &j.exchange).collect();
    insert_exchanges(pool, &batch).await
}
