//! Work on the index outside a server: an import that indexes as it writes, rebuilding it,
//! checking it against the database. The command line calls these; they are the only
//! code besides the server's follower that opens an index directory for writing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::follower::lock;
use super::import::{ImportMode, ImportReport, ImportSource, import_sources, import_sources_with};
use super::{FollowerHandle, IndexDifference, Library, catch_up, compare_index, rebuild};
use crate::config::Config;
use crate::domain::Asset;
use crate::error::AppError;
use crate::search::{self, IndexLock, IndexOp, IndexWriterHandle};
use crate::store::Store;

async fn finish_writer(writer: Arc<Mutex<IndexWriterHandle>>) -> anyhow::Result<()> {
    let writer = Arc::try_unwrap(writer)
        .map_err(|_| anyhow::anyhow!("index writer still shared"))?
        .into_inner()
        .map_err(|_| anyhow::anyhow!("index writer poisoned"))?;
    tokio::task::spawn_blocking(move || writer.finish()).await??;
    Ok(())
}

/// Imports assets and brings the index along in the same pass: each batch the import writes
/// is staged in the index while the database transaction goes on, and the index commits
/// right after the database, at the import's last change-log position, so the database
/// work and the indexing overlap instead of following each other. When the index was not
/// exactly where the import started, or the import wrote nothing, the staged documents are
/// dropped and the index catches up from the change log as after any other command.
/// Returns the report and how long the index took after the database (`None` when a server
/// owns the index and follows the change log itself).
pub async fn import_indexed(
    config: &Config,
    store: &Store,
    sources: Vec<ImportSource>,
    mode: ImportMode,
    progress: impl Fn(u64),
) -> anyhow::Result<(ImportReport, Option<Duration>)> {
    let held = match IndexLock::acquire(&config.index_dir) {
        Ok(held) if !mode.dry_run => held,
        _ => {
            let report = import_sources(store, sources, mode, progress)
                .await
                .map_err(AppError::unmasked)?;
            return Ok((report, None));
        }
    };
    let (_index, writer) = search::open(&held, config.index_writer_memory)?;
    let writer = Arc::new(Mutex::new(writer));
    catch_up(store, &writer, config.index_batch_size).await?;
    let (batches, received) = std::sync::mpsc::sync_channel::<Vec<Asset>>(4);
    let stager = {
        let writer = writer.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            for batch in received {
                let ops = batch
                    .into_iter()
                    .map(|a| IndexOp::Upsert(Box::new(a)))
                    .collect();
                lock(&writer)?.stage(ops)?;
            }
            Ok(())
        })
    };
    let multi_thread = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::MultiThread;
    let imported = import_sources_with(store, sources, mode, progress, |assets| {
        // Waiting for the indexer is the backpressure that bounds what is in flight.
        let send = || batches.send(assets.to_vec());
        let _ = if multi_thread {
            tokio::task::block_in_place(send)
        } else {
            send()
        };
    })
    .await;
    drop(batches);
    let staged = stager.await?;
    if let Err(err) = &staged {
        tracing::warn!(error = %format!("{err:#}"), "staging the import in the index failed; catching up from the change log instead");
    }
    let report = match imported {
        Ok(report) => report,
        Err(err) => {
            lock(&writer)?.discard()?;
            return Err(AppError::unmasked(err));
        }
    };
    let started = Instant::now();
    let writes = report.counts.created + report.counts.updated;
    let in_step = {
        let mut w = lock(&writer)?;
        let in_step =
            staged.is_ok() && report.committed && writes > 0 && w.applied_seq() == report.first_seq;
        if in_step {
            w.commit(report.last_seq)?;
        } else {
            w.discard()?;
        }
        in_step
    };
    if !in_step && report.committed && writes > 0 {
        catch_up(store, &writer, config.index_batch_size).await?;
    }
    finish_writer(writer).await?;
    Ok((report, (writes > 0).then(|| started.elapsed())))
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
    reindex_locked(&lock, config, store).await
}

async fn reindex_locked(
    lock: &IndexLock,
    config: &Config,
    store: &Store,
) -> anyhow::Result<Rebuilt> {
    let (index, writer, generation) = search::start_rebuild(lock, config.index_writer_memory)?;
    let writer = Arc::new(Mutex::new(writer));
    rebuild(store, &writer).await?;
    let seq = catch_up(store, &writer, config.index_batch_size).await?;
    finish_writer(writer).await?;
    let documents = index.num_docs();
    search::finish_rebuild(lock, &generation)?;
    Ok(Rebuilt { documents, seq })
}

/// What `stagefit backup` wrote.
pub struct Backup {
    pub bytes: u64,
}

/// Writes a consistent copy of the SQLite database to `to` while servers go on writing to
/// it (read-only: it takes no lock and starts nothing).
pub async fn backup(config: &Config, to: &std::path::Path) -> anyhow::Result<Backup> {
    let store = Store::open_read_only(&config.database_url)
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!("no stagefit database at {}", config.redacted_database_url())
        })?;
    let written = store.backup_to(to).await;
    store.close().await;
    Ok(Backup { bytes: written? })
}

/// What `stagefit restore` did.
pub struct Restored {
    /// Where the database it replaced was kept, if there was one.
    pub kept: Option<std::path::PathBuf>,
    pub rebuilt: Rebuilt,
}

/// Puts a backup in place of the SQLite database (no server may run on it: the index
/// directory's lock says so), brings its schema up to this version, and rebuilds the
/// index from it.
pub async fn restore(config: &Config, from: &std::path::Path) -> anyhow::Result<Restored> {
    let lock = IndexLock::acquire(&config.index_dir)
        .context("stop the servers on this database before restoring")?;
    crate::store::check_backup(from).await?;
    let kept = crate::store::replace_sqlite(&config.database_url, from)?;
    let store = Store::connect_durable(&config.database_url, config.durability)
        .await
        .context("the restored database")?;
    let rebuilt = reindex_locked(&lock, config, &store).await;
    store.close().await;
    Ok(Restored {
        kept,
        rebuilt: rebuilt?,
    })
}

/// A library to report from, beside a server or without one: the database opened
/// read-only (a SQLite file in read-only mode, PostgreSQL sessions whose transactions are
/// read-only) and the index's live generation read without its lock; popularity and
/// ranking profiles read once. It starts no background task and can write nothing.
pub async fn open_read_only(config: &Config) -> anyhow::Result<(Library, Store)> {
    let store = Store::open_read_only(&config.database_url)
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no stagefit database at {}; import a library first",
                config.redacted_database_url()
            )
        })?;
    let (index, seq) = search::open_read_only(&config.index_dir)?;
    let library = Library::new(
        store.clone(),
        index,
        FollowerHandle::fixed(seq),
        config,
        crate::meaning::Meaning::none(),
    );
    library
        .load_for_reports()
        .await
        .map_err(AppError::unmasked)?;
    Ok((library, store))
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
