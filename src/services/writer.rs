//! Background writers that are supervised and drained. A `BatchWriter` is a bounded queue
//! that one task empties in batches (the audit trail, impressions), with periodic upkeep
//! between batches (flushing aggregated counts, deleting what is past its retention).
//!
//! - **Supervised.** The task runs under a supervisor: when it panics, the panic is logged,
//!   counted in `stagefit_background_restarts_total{task}`, and the task starts again on
//!   the same queue after a short pause. What was queued stays queued; only the batch in
//!   hand when it panicked is lost, and its callers are told (their reply channels close).
//! - **Drained.** [`WriterHandle::drain`] closes the queue, writes everything in it, runs the
//!   upkeep once more, and only then returns: what a caller was told is recorded is written
//!   before the process exits.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc, watch};

/// What a background writer does with its queue.
pub trait BatchWork: Send + Sync + 'static {
    type Item: Send + 'static;
    /// Writes one batch (at most the writer's batch size, in queue order).
    fn write(&self, batch: Vec<Self::Item>) -> impl Future<Output = ()> + Send;
    /// Periodic upkeep, every `upkeep` interval and once more after draining.
    fn upkeep(&self) -> impl Future<Output = ()> + Send;
}

/// Work an upkeep does less often than it runs (deleting past a retention every hour):
/// `due` says yes the first time and then once per `every`.
pub struct Cadence {
    every: Duration,
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Cadence {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: std::sync::Mutex::new(None),
        }
    }

    pub fn due(&self) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| at.elapsed() < self.every) {
            return false;
        }
        *last = Some(std::time::Instant::now());
        true
    }
}

/// How a writer runs.
#[derive(Clone, Copy, Debug)]
pub struct WriterSettings {
    /// Names the task in logs and metrics.
    pub name: &'static str,
    /// Items the queue holds; senders wait for room past it.
    pub capacity: usize,
    /// Items written together at most.
    pub batch: usize,
    /// How often the upkeep runs.
    pub upkeep: Duration,
}

/// Where producers put items. Cheap to clone.
pub struct BatchWriter<T> {
    sender: mpsc::Sender<T>,
}

impl<T> Clone for BatchWriter<T> {
    fn clone(&self) -> Self {
        Self {
            sender: self.sender.clone(),
        }
    }
}

/// The writer has stopped (the server is shutting down): the item was not queued.
#[derive(Debug)]
pub struct WriterStopped;

impl<T> BatchWriter<T> {
    /// Queues an item, waiting for room when the queue is full.
    pub async fn send(&self, item: T) -> Result<(), WriterStopped> {
        self.sender.send(item).await.map_err(|_| WriterStopped)
    }

    /// Items waiting to be written.
    pub fn queued(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }
}

/// The supervisor of a writer, to drain it.
pub struct WriterHandle {
    name: &'static str,
    stop: watch::Sender<bool>,
    supervisor: tokio::task::JoinHandle<()>,
}

/// The longest a drain waits for the queue to be written (a database that does not answer
/// must not keep the process from exiting).
const DRAIN_PATIENCE: Duration = Duration::from_secs(30);

impl WriterHandle {
    /// Stops taking items, writes all that are queued, runs the upkeep a last time.
    pub async fn drain(self) {
        let _ = self.stop.send(true);
        let mut supervisor = self.supervisor;
        if tokio::time::timeout(DRAIN_PATIENCE, &mut supervisor)
            .await
            .is_err()
        {
            tracing::error!(
                task = self.name,
                "the queue was not written within {} s; stopping without it",
                DRAIN_PATIENCE.as_secs()
            );
            supervisor.abort();
        }
    }
}

/// Pause before a task that panicked starts again; doubles up to [`MAX_BACKOFF`] while it
/// keeps failing.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Starts `work` on a queue of `settings.capacity` items.
pub fn start<W: BatchWork>(
    work: Arc<W>,
    settings: WriterSettings,
) -> (BatchWriter<W::Item>, WriterHandle) {
    let (sender, receiver) = mpsc::channel(settings.capacity);
    let (stop, stopping) = watch::channel(false);
    let receiver = Arc::new(Mutex::new(receiver));
    let supervisor = tokio::spawn(async move {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let run = tokio::spawn(run(
                work.clone(),
                receiver.clone(),
                stopping.clone(),
                settings,
            ));
            match run.await {
                Ok(()) => return,
                Err(err) if err.is_panic() => {
                    metrics::counter!(crate::metrics::BACKGROUND_RESTARTS, "task" => settings.name)
                        .increment(1);
                    tracing::error!(
                        task = settings.name,
                        error = %panic_message(err),
                        "a background writer panicked; starting it again"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(_) => return,
            }
        }
    });
    (
        BatchWriter { sender },
        WriterHandle {
            name: settings.name,
            stop,
            supervisor,
        },
    )
}

fn panic_message(err: tokio::task::JoinError) -> String {
    match err.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_owned()),
        Err(err) => err.to_string(),
    }
}

async fn run<W: BatchWork>(
    work: Arc<W>,
    receiver: Arc<Mutex<mpsc::Receiver<W::Item>>>,
    mut stopping: watch::Receiver<bool>,
    settings: WriterSettings,
) {
    let mut receiver = receiver.lock().await;
    let mut upkeep = tokio::time::interval(settings.upkeep);
    upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if *stopping.borrow() {
            break;
        }
        tokio::select! {
            _ = stopping.changed() => {}
            first = receiver.recv() => {
                let Some(first) = first else { break };
                let batch = more(&mut receiver, first, settings.batch);
                work.write(batch).await;
            }
            _ = upkeep.tick() => work.upkeep().await,
        }
    }
    // Draining: nothing new comes in; everything queued goes out.
    receiver.close();
    while let Some(first) = receiver.recv().await {
        let batch = more(&mut receiver, first, settings.batch);
        work.write(batch).await;
    }
    work.upkeep().await;
}

/// `first` and whatever else is queued, up to `max` items.
fn more<T>(receiver: &mut mpsc::Receiver<T>, first: T, max: usize) -> Vec<T> {
    let mut batch = vec![first];
    while batch.len() < max {
        match receiver.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Writes numbers; panics on the first 13 it sees.
    #[derive(Default)]
    struct Numbers {
        written: std::sync::Mutex<Vec<u32>>,
        upkeeps: AtomicUsize,
        panicked: std::sync::atomic::AtomicBool,
    }

    impl BatchWork for Numbers {
        type Item = u32;
        async fn write(&self, batch: Vec<u32>) {
            if batch.contains(&13) && !self.panicked.swap(true, Ordering::SeqCst) {
                panic!("thirteen");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            self.written
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(batch);
        }
        async fn upkeep(&self) {
            self.upkeeps.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_writer_that_panics_starts_again_and_a_drain_writes_everything_queued() {
        let work = Arc::new(Numbers::default());
        let (writer, handle) = start(
            work.clone(),
            WriterSettings {
                name: "test",
                capacity: 1_000,
                batch: 1,
                upkeep: Duration::from_secs(3600),
            },
        );
        for n in 0..500 {
            writer.send(n).await.unwrap();
        }
        handle.drain().await;
        let written = work.written.lock().unwrap().clone();
        // Only the batch in hand when it panicked (13 alone) is lost; the rest, in order.
        let expected: Vec<u32> = (0..500).filter(|n| *n != 13).collect();
        assert_eq!(written, expected);
        assert!(work.panicked.load(Ordering::SeqCst));
        // At least the last one, after draining (the interval's first tick may have come
        // too).
        assert!(work.upkeeps.load(Ordering::SeqCst) >= 1);
        // Closed: nothing more is taken.
        assert!(writer.send(1).await.is_err());
    }
}
