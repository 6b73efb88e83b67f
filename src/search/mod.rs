//! The search index, derived from the database and safe to delete.
//!
//! Layout of the index directory:
//!
//! ```text
//! index/
//!   LOCK          held (flock) by the one process that owns the writer
//!   CURRENT       name of the live generation, replaced atomically by `reindex`
//!   gen-<millis>/ a tantivy index; its commit payload records the last applied
//!                 change-log position and the schema version
//! ```
//!
//! Exactly one [`IndexWriterHandle`] exists per index directory; readers ([`SearchIndex`])
//! are cheap clones sharing one `IndexReader`, and take a fresh searcher per request.

mod audit;
mod facets;
mod filter;
mod query;
mod recommend;
mod schema;
mod similar;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tantivy::directory::MmapDirectory;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Term};

use crate::domain::Asset;
pub use audit::AuditRow;
pub use query::{HYBRID_WINDOW, Hybrid};
pub use recommend::{Candidate, Candidates, DEFAULT_SLICE_TIERS_ABOVE, RecommendRequest};
pub use schema::ANY;
use schema::{Fields, SCHEMA_VERSION, build_document, build_schema, register_analyzers};
pub use similar::{LINKED_PER_KEY, SimilarTo, StageWordCounts, TELLING_WORDS};

const LOCK_FILE: &str = "LOCK";
const CURRENT_FILE: &str = "CURRENT";

/// What the index records in each commit.
#[derive(Debug, Serialize, Deserialize)]
struct CommitPayload {
    seq: i64,
    schema: u32,
}

/// One change to apply to the index.
#[derive(Debug)]
pub enum IndexOp {
    Upsert(Box<Asset>),
    Delete(String),
}

/// Keeps the `limit` best items of a heap whose greatest item is its worst: adds `item` if
/// there is room or it beats the worst.
fn push_bounded<T: Ord>(top: &mut std::collections::BinaryHeap<T>, item: T, limit: usize) {
    if top.len() < limit {
        top.push(item);
    } else if let Some(worst) = top.peek()
        && item < *worst
    {
        top.pop();
        top.push(item);
    }
}

/// The read side: cheap to clone, one per request handler.
#[derive(Clone)]
pub struct SearchIndex {
    inner: Arc<ReadSide>,
}

struct ReadSide {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// The query parser's analyzers for ASCII text (`schema::ascii_query_tokenizers`).
    ascii_tokenizers: tantivy::tokenizer::TokenizerManager,
    assets: query::AssetCache,
    bits: filter::BitsCache,
}

/// What the parsed assets of recent hits may hold, in bytes of text (some 16k assets).
const ASSET_CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// What the bits of filter terms may hold: a term's bits take an eighth of a byte per
/// document, so some 270 terms at 1M assets.
const BITS_CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// The exclusive owner of an index directory. Dropping it releases the directory.
pub struct IndexLock {
    _file: File,
    dir: PathBuf,
}

impl IndexLock {
    /// Takes the directory, or says clearly who has it.
    pub fn acquire(dir: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the index directory {}", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Self {
                _file: file,
                dir: dir.to_owned(),
            }),
            Err(fs::TryLockError::WouldBlock) => bail!(
                "the index directory {} is in use by another stagefit process (a running server?); stop it first",
                dir.display()
            ),
            Err(fs::TryLockError::Error(err)) => {
                Err(err).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Opens the live generation of a locked index directory, creating it (empty) when there is
/// none or when it was built by another schema version. An empty or new index reports
/// position 0, and its follower rebuilds it from the database.
pub fn open(
    lock: &IndexLock,
    writer_memory: usize,
) -> anyhow::Result<(SearchIndex, IndexWriterHandle)> {
    let current = fs::read_to_string(lock.dir.join(CURRENT_FILE)).ok();
    if let Some(name) = current.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        let path = lock.dir.join(name);
        match open_generation(&path, writer_memory) {
            Ok(opened) if opened.1.applied_seq >= 0 => return Ok(opened),
            Ok(_) => tracing::warn!(
                generation = name,
                "index was built by another version of stagefit; rebuilding from the database"
            ),
            Err(err) => tracing::warn!(
                generation = name,
                error = %format!("{err:#}"),
                "index cannot be opened; rebuilding from the database"
            ),
        }
    }
    let (path, name) = new_generation_dir(lock)?;
    let opened = open_generation(&path, writer_memory)?;
    // The abandoned generation is of no use any more: the new one is rebuilt in full.
    finish_rebuild(lock, &name)?;
    Ok(opened)
}

/// Opens the live generation of an index directory to read it only, without taking its
/// lock: beside a running server (whose writer keeps going), for `verify-index`. The
/// position it has applied, too.
pub fn open_read_only(dir: &Path) -> anyhow::Result<(SearchIndex, i64)> {
    let name = fs::read_to_string(dir.join(CURRENT_FILE))
        .with_context(|| format!("no index in {}", dir.display()))?;
    let path = dir.join(name.trim());
    let directory = MmapDirectory::open(&path)
        .with_context(|| format!("cannot open the index at {}", path.display()))?;
    let index = Index::open(directory)
        .with_context(|| format!("cannot open the index at {}", path.display()))?;
    register_analyzers(&index);
    let applied_seq = match index
        .load_metas()?
        .payload
        .as_deref()
        .map(serde_json::from_str::<CommitPayload>)
    {
        None => 0,
        Some(Ok(p)) if p.schema == SCHEMA_VERSION => p.seq,
        Some(_) => bail!(
            "the index at {} was built by another version",
            path.display()
        ),
    };
    let (_, fields) = build_schema();
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .context("cannot open the index reader")?;
    Ok((
        SearchIndex {
            inner: Arc::new(ReadSide {
                index,
                reader,
                fields,
                ascii_tokenizers: schema::ascii_query_tokenizers(),
                assets: query::AssetCache::new(ASSET_CACHE_BYTES),
                bits: filter::BitsCache::new(BITS_CACHE_BYTES),
            }),
        },
        applied_seq,
    ))
}

/// Builds a brand-new generation beside the live one; `finish_rebuild` makes it live.
pub fn start_rebuild(
    lock: &IndexLock,
    writer_memory: usize,
) -> anyhow::Result<(SearchIndex, IndexWriterHandle, String)> {
    let (path, name) = new_generation_dir(lock)?;
    let (index, writer) = open_generation(&path, writer_memory)?;
    Ok((index, writer, name))
}

/// Atomically makes `name` the live generation and deletes the others.
pub fn finish_rebuild(lock: &IndexLock, name: &str) -> anyhow::Result<()> {
    swap_current(lock, name)?;
    for entry in fs::read_dir(&lock.dir)?.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        if file_name.starts_with("gen-")
            && file_name != name
            && let Err(err) = fs::remove_dir_all(entry.path())
        {
            tracing::warn!(generation = %file_name, error = %err, "cannot delete an old index generation");
        }
    }
    Ok(())
}

fn new_generation_dir(lock: &IndexLock) -> anyhow::Result<(PathBuf, String)> {
    let millis = chrono::Utc::now().timestamp_millis();
    let mut n = 0;
    loop {
        let name = format!("gen-{millis}-{n}");
        let path = lock.dir.join(&name);
        if !path.exists() {
            fs::create_dir_all(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            return Ok((path, name));
        }
        n += 1;
    }
}

fn swap_current(lock: &IndexLock, name: &str) -> anyhow::Result<()> {
    let tmp = lock.dir.join(format!("{CURRENT_FILE}.tmp"));
    let mut file = File::create(&tmp)?;
    file.write_all(name.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, lock.dir.join(CURRENT_FILE))
        .context("cannot switch the live index generation")?;
    if let Ok(dir) = File::open(&lock.dir) {
        // Persist the rename itself; not every platform can sync a directory.
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Opens or creates one generation. `applied_seq` is -1 when the index was built by another
/// schema version.
fn open_generation(
    path: &Path,
    writer_memory: usize,
) -> anyhow::Result<(SearchIndex, IndexWriterHandle)> {
    let (schema, fields) = build_schema();
    let directory = MmapDirectory::open(path)
        .with_context(|| format!("cannot open the index at {}", path.display()))?;
    let index = Index::open_or_create(directory, schema)
        .with_context(|| format!("cannot open the index at {}", path.display()))?;
    register_analyzers(&index);
    let payload = index.load_metas()?.payload;
    let applied_seq = match payload
        .as_deref()
        .map(serde_json::from_str::<CommitPayload>)
    {
        None => 0,
        Some(Ok(p)) if p.schema == SCHEMA_VERSION => p.seq,
        Some(_) => -1,
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get().min(2))
        .unwrap_or(1);
    let writer = index
        .writer_with_num_threads(threads, writer_memory.max(threads * 16 * 1024 * 1024))
        .context("cannot open the index writer")?;
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .context("cannot open the index reader")?;
    let read = SearchIndex {
        inner: Arc::new(ReadSide {
            index,
            reader: reader.clone(),
            fields: fields.clone(),
            ascii_tokenizers: schema::ascii_query_tokenizers(),
            assets: query::AssetCache::new(ASSET_CACHE_BYTES),
            bits: filter::BitsCache::new(BITS_CACHE_BYTES),
        }),
    };
    let write = IndexWriterHandle {
        writer,
        reader,
        fields,
        applied_seq,
    };
    Ok((read, write))
}

/// The single writer of an index generation.
pub struct IndexWriterHandle {
    writer: IndexWriter,
    reader: IndexReader,
    fields: Fields,
    applied_seq: i64,
}

impl IndexWriterHandle {
    /// The change-log position the committed index reflects (0: empty or being rebuilt,
    /// negative: built by another schema version).
    pub fn applied_seq(&self) -> i64 {
        self.applied_seq
    }

    /// Stages changes; nothing is visible or durable until `commit`.
    pub fn stage(&mut self, ops: Vec<IndexOp>) -> tantivy::Result<()> {
        for op in ops {
            match op {
                IndexOp::Upsert(asset) => {
                    self.writer
                        .delete_term(Term::from_field_text(self.fields.id, asset.id.as_str()));
                    self.writer
                        .add_document(build_document(&self.fields, &asset))?;
                }
                IndexOp::Delete(id) => {
                    self.writer
                        .delete_term(Term::from_field_text(self.fields.id, &id));
                }
            }
        }
        Ok(())
    }

    /// Commits what was staged as reflecting change-log position `seq`, then reloads the
    /// reader so the next search sees it.
    pub fn commit(&mut self, seq: i64) -> tantivy::Result<()> {
        let payload = serde_json::to_string(&CommitPayload {
            seq,
            schema: SCHEMA_VERSION,
        })
        .unwrap_or_default();
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        self.reader.reload()?;
        self.applied_seq = seq;
        Ok(())
    }

    /// Drops everything staged since the last commit.
    pub fn discard(&mut self) -> tantivy::Result<()> {
        self.writer.rollback()?;
        Ok(())
    }

    /// Waits for background merges, so the files on disk are final.
    pub fn finish(self) -> tantivy::Result<()> {
        self.writer.wait_merging_threads()
    }
}
