//! Work on the index outside a server: catching up after a command's write, rebuilding it,
//! checking it against the database. The command line calls these; they are the only
//! code besides the server's follower that opens an index directory for writing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{IndexDifference, catch_up, compare_index, rebuild};
use crate::config::Config;
use crate::error::AppError;
use crate::search::{self, IndexLock, IndexWriterHandle};
use crate::store::Store;

async fn finish_writer(writer: Arc<Mutex<IndexWriterHandle>>) -> anyhow::Result<()> {
    let writer = Arc::try_unwrap(writer)
        .map_err(|_| anyhow::anyhow!("index writer still shared"))?
        .into_inner()
        .map_err(|_| anyhow::anyhow!("index writer poisoned"))?;
    tokio::task::spawn_blocking(move || writer.finish()).await??;
    Ok(())
}

/// Brings the index up to date after a write by this process: how long that took, or
/// `None` when a running server owns the index (it follows the change log itself).
pub async fn update_index(config: &Config, store: &Store) -> anyhow::Result<Option<Duration>> {
    let Ok(lock) = IndexLock::acquire(&config.index_dir) else {
        return Ok(None);
    };
    let started = Instant::now();
    let (_index, writer) = search::open(&lock, config.index_writer_memory)?;
    let writer = Arc::new(Mutex::new(writer));
    catch_up(store, &writer, config.index_batch_size).await?;
    finish_writer(writer).await?;
    Ok(Some(started.elapsed()))
}

/// What `reindex` built.
pub struct Rebuilt {
    pub documents: u64,
    pub seq: i64,
}

/// Rebuilds the index from the database in a new generation and makes it live; refused
/// while a server owns the index directory.
pub async fn reindex(config: &Config, store: &Store) -> anyhow::Result<Rebuilt> {
    let lock = IndexLock::acquire(&config.index_dir).context("cannot reindex")?;
    let (index, writer, generation) = search::start_rebuild(&lock, config.index_writer_memory)?;
    let writer = Arc::new(Mutex::new(writer));
    rebuild(store, &writer).await?;
    let seq = catch_up(store, &writer, config.index_batch_size).await?;
    finish_writer(writer).await?;
    let documents = index.num_docs();
    search::finish_rebuild(&lock, &generation)?;
    Ok(Rebuilt { documents, seq })
}

/// Compares the live index with the database, reopening it while it is behind (a running
/// server commits meanwhile) for at most `patience`.
pub async fn verify_index(
    config: &Config,
    store: &Store,
    patience: Duration,
) -> anyhow::Result<IndexDifference> {
    let started = Instant::now();
    loop {
        let (index, index_seq) = search::open_read_only(&config.index_dir)?;
        let difference = compare_index(store, &index, index_seq)
            .await
            .map_err(AppError::unmasked)?;
        let behind = difference.index_seq < difference.database_seq;
        if difference.is_equal() || !behind || started.elapsed() > patience {
            return Ok(difference);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
