//! The indexer: the one task per process that follows the change log into the index.
//!
//! It wakes when this process writes (`nudge`) and on a timer (writes by other processes or
//! replicas), applies every change after the index's position in batches, commits each
//! batch with its last position, and publishes the new position so writers can wait for
//! their own changes (read-your-writes).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::error::{AppError, AppResult};
use crate::search::{IndexOp, IndexWriterHandle, SearchIndex};
use crate::store::Store;

/// How long a writer waits for the index to show its change before answering anyway (the
/// change is committed in the database either way).
const READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_secs(30);
const REBUILD_PAGE: u64 = 2_000;

#[derive(Clone)]
pub struct FollowerHandle {
    nudge: Arc<Notify>,
    applied: watch::Receiver<i64>,
    stop: Arc<Notify>,
}

impl FollowerHandle {
    /// Returns once the index reflects change-log position `seq`.
    pub async fn wait_for(&self, seq: i64) {
        self.nudge.notify_one();
        let mut applied = self.applied.clone();
        let waited =
            tokio::time::timeout(READ_YOUR_WRITES_TIMEOUT, applied.wait_for(|s| *s >= seq)).await;
        if !matches!(waited, Ok(Ok(_))) {
            tracing::warn!(
                seq,
                "the index did not catch up in time; answering from the database write"
            );
        }
    }

    pub fn applied_seq(&self) -> i64 {
        *self.applied.borrow()
    }

    /// The handle of an index nobody follows here (opened read-only at position `seq`).
    pub fn fixed(seq: i64) -> Self {
        let (_, applied) = watch::channel(seq);
        Self {
            nudge: Arc::new(Notify::new()),
            applied,
            stop: Arc::new(Notify::new()),
        }
    }

    /// Reads the change log now rather than at the next poll.
    pub fn nudge(&self) {
        self.nudge.notify_one();
    }
}

pub struct IndexFollower {
    handle: FollowerHandle,
    task: JoinHandle<Arc<Mutex<IndexWriterHandle>>>,
}

impl IndexFollower {
    /// Catches the index up with the database, then keeps following in the background.
    pub async fn start(
        store: Store,
        writer: IndexWriterHandle,
        batch: usize,
        interval: Duration,
    ) -> anyhow::Result<Self> {
        let writer = Arc::new(Mutex::new(writer));
        let seq = catch_up(&store, &writer, batch).await?;
        let (sender, applied) = watch::channel(seq);
        let nudge = Arc::new(Notify::new());
        let stop = Arc::new(Notify::new());
        let handle = FollowerHandle {
            nudge: nudge.clone(),
            applied,
            stop: stop.clone(),
        };
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = nudge.notified() => {}
                    _ = tokio::time::sleep(interval) => {}
                    _ = stop.notified() => break,
                }
                match catch_up(&store, &writer, batch).await {
                    Ok(seq) => {
                        sender.send_if_modified(|s| {
                            let changed = *s != seq;
                            *s = seq;
                            changed
                        });
                    }
                    Err(err) => {
                        tracing::error!(error = %format!("{err:#}"), "indexing failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
            writer
        });
        Ok(Self { handle, task })
    }

    pub fn handle(&self) -> FollowerHandle {
        self.handle.clone()
    }

    /// Stops following and waits for background merges to finish.
    pub async fn stop(self) {
        self.handle.stop.notify_one();
        let writer = match self.task.await {
            Ok(writer) => writer,
            Err(err) => return tracing::error!(error = %err, "the indexer task failed"),
        };
        let Ok(writer) = Arc::try_unwrap(writer) else {
            return tracing::warn!("the index writer is still in use; not waiting for merges");
        };
        let writer = writer
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let finished = tokio::task::spawn_blocking(move || writer.finish()).await;
        if !matches!(finished, Ok(Ok(()))) {
            tracing::warn!("index merges did not finish cleanly");
        }
    }
}

/// Applies every change after the index's position; returns the new position. An empty
/// index (position 0) is filled from a scan of the library rather than the whole log.
pub async fn catch_up(
    store: &Store,
    writer: &Arc<Mutex<IndexWriterHandle>>,
    batch: usize,
) -> anyhow::Result<i64> {
    let mut seq = lock(writer)?.applied_seq();
    if seq <= 0 {
        seq = rebuild(store, writer).await?;
    }
    loop {
        let changes = store.changes_since(seq, batch as u64).await?;
        let Some(last) = changes.last().map(|c| c.seq) else {
            return Ok(seq);
        };
        let mut ids: Vec<String> = changes
            .into_iter()
            .filter(|c| c.entity == "asset")
            .map(|c| c.entity_id)
            .collect();
        ids.sort();
        ids.dedup();
        let assets = store.load_assets(&ids).await?;
        let mut ops = Vec::with_capacity(ids.len());
        let mut found = assets.into_iter().peekable();
        for id in ids {
            // Both lists are in id order; an id with no row left was deleted.
            match found.next_if(|a| a.id.as_str() == id) {
                Some(asset) => ops.push(IndexOp::Upsert(Box::new(asset))),
                None => ops.push(IndexOp::Delete(id)),
            }
        }
        apply(writer, ops, Some(last)).await?;
        seq = last;
    }
}

/// Fills an empty index from the whole library; returns the position it reflects. Pages
/// are loaded from the database while the previous page is being indexed.
pub async fn rebuild(store: &Store, writer: &Arc<Mutex<IndexWriterHandle>>) -> anyhow::Result<i64> {
    // Read the position first: writes after it are replayed from the log afterwards, and
    // replaying an upsert the scan already saw is harmless.
    let seq = store.last_seq().await?;
    let started = std::time::Instant::now();
    let (pages, mut received) = tokio::sync::mpsc::channel(2);
    let loader_store = store.clone();
    let loader = tokio::spawn(async move {
        let mut after: Option<String> = None;
        loop {
            let page = loader_store
                .assets_after(after.as_deref(), REBUILD_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.to_string());
            if pages.send(page).await.is_err() {
                break;
            }
        }
        anyhow::Ok(())
    });
    let mut count = 0usize;
    while let Some(page) = received.recv().await {
        count += page.len();
        let ops = page
            .into_iter()
            .map(|a| IndexOp::Upsert(Box::new(a)))
            .collect();
        apply(writer, ops, None).await?;
    }
    loader.await??;
    apply(writer, Vec::new(), Some(seq)).await?;
    if count > 0 {
        tracing::info!(
            assets = count,
            seconds = started.elapsed().as_secs_f64(),
            "index built from the database"
        );
    }
    Ok(seq)
}

async fn apply(
    writer: &Arc<Mutex<IndexWriterHandle>>,
    ops: Vec<IndexOp>,
    commit_at: Option<i64>,
) -> anyhow::Result<()> {
    let writer = writer.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut w = lock(&writer)?;
        w.stage(ops)?;
        if let Some(seq) = commit_at {
            w.commit(seq)?;
        }
        Ok(())
    })
    .await?
}

pub(super) fn lock(
    writer: &Arc<Mutex<IndexWriterHandle>>,
) -> anyhow::Result<std::sync::MutexGuard<'_, IndexWriterHandle>> {
    writer
        .lock()
        .map_err(|_| anyhow::anyhow!("the index writer was poisoned by an earlier failure"))
}

/// How an index differs from the database, asset by asset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexDifference {
    /// Assets in the database and in the index.
    pub database_assets: usize,
    pub index_documents: usize,
    /// Change-log positions: the database's and the one the index has applied.
    pub database_seq: i64,
    pub index_seq: i64,
    /// In the database, not in the index.
    pub missing: Vec<String>,
    /// In the index, not in the database.
    pub extra: Vec<String>,
    /// In both, with other content.
    pub differing: Vec<String>,
}

impl IndexDifference {
    pub fn is_equal(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.differing.is_empty()
    }
}

/// Compares an index with the database by asset id and content fingerprint.
pub async fn compare_index(
    store: &Store,
    index: &SearchIndex,
    index_seq: i64,
) -> AppResult<IndexDifference> {
    let (database, database_seq) = store.asset_fingerprints().await?;
    let reader = index.clone();
    let indexed = tokio::task::spawn_blocking(move || reader.fingerprints())
        .await
        .map_err(AppError::internal)??;
    let mut difference = IndexDifference {
        database_assets: database.len(),
        index_documents: indexed.len(),
        database_seq,
        index_seq,
        ..Default::default()
    };
    let mut in_index: std::collections::HashMap<String, String> = indexed.into_iter().collect();
    for (id, hash) in database {
        match in_index.remove(&id) {
            None => difference.missing.push(id),
            Some(indexed) if indexed != hash => difference.differing.push(id),
            Some(_) => {}
        }
    }
    difference.extra = in_index.into_keys().collect();
    for list in [
        &mut difference.missing,
        &mut difference.extra,
        &mut difference.differing,
    ] {
        list.sort();
    }
    Ok(difference)
}
