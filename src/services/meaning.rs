//! Keeps the library's vectors in step with the database: at start, then whenever the
//! index moves, the assets whose content changed are embedded again (in batches, on the
//! blocking pool) and deleted or retired ones dropped. Until every published asset has a
//! vector, ranking runs on words alone for the ones without.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{self, JoinHandle};

use super::Library;
use crate::domain::AssetStatus;
use crate::error::{AppError, AppResult};
use crate::meaning::{Embedder, Meaning, asset_text, text_hash, title_text};
use crate::store::Store;

/// Assets read from the database at a time.
const LOAD_PAGE: usize = 256;
/// Texts one model run takes: larger batches pad more, smaller ones pay per-run costs.
const EMBED_BATCH: usize = 32;
/// Model runs between two publications of the vectors at least (so progress shows while a
/// large library is embedded, without copying the vectors after every batch).
const PUBLISH_EVERY: usize = 16;
/// A publication copies every vector and builds the sketch again, so its cost grows with
/// the library: the pass waits this many times its last publication's cost before the
/// next (a fast service at 1M spent most of its time copying otherwise: BENCHMARKS.md).
const PUBLISH_COST_SHARE: u32 = 10;

impl Library {
    pub fn meaning(&self) -> &Arc<Meaning> {
        &self.meaning
    }

    /// Embeds what is missing, then again whenever the index's change-log position moves
    /// (checked every `every`), until the task is aborted. `None` without a model.
    pub fn start_meaning(&self, every: Duration) -> Option<JoinHandle<()>> {
        let model = self.meaning.model()?.clone();
        tracing::info!(
            model = model.name(),
            dims = model.dims(),
            "embedding model loaded"
        );
        let library = self.clone();
        Some(tokio::spawn(async move {
            let mut seen = None;
            loop {
                let seq = library.index_seq();
                if seen != Some(seq) {
                    match library.sync_meaning().await {
                        Ok(()) => seen = Some(seq),
                        Err(e) => tracing::warn!(error = %e, "embedding the library failed"),
                    }
                }
                tokio::time::sleep(every).await;
            }
        }))
    }

    /// One pass: embeds the published assets whose vectors are missing or stale.
    pub async fn sync_meaning(&self) -> AppResult<()> {
        embed_library(&self.store, &self.meaning, &|_, _| {})
            .await
            .map(|_| ())
    }
}

/// A pass of [`embed_library`] with `embedder` over a library no server holds in memory:
/// what `stagefit import` runs once its rows are committed.
pub async fn embed_imported(
    store: &Store,
    embedder: Embedder,
    progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> AppResult<EmbedPass> {
    embed_library(store, &Meaning::with_model(Some(embedder)), progress).await
}

/// What a pass of [`embed_library`] did.
#[derive(Clone, Copy, Debug, Default)]
pub struct EmbedPass {
    /// Assets run through the model (or the service).
    pub embedded: usize,
    /// Assets whose stored vectors were taken as they are.
    pub loaded: usize,
    /// Assets with vectors after the pass.
    pub total: usize,
    /// Published assets whose text the embeddings service refused: no vectors.
    pub refused: usize,
}

/// One pass over the library: the published assets whose vectors are missing or stale get
/// them (stored ones are taken when their text is the same, the others are computed and
/// stored), and `meaning` holds the result. `progress(done, stale)` follows each batch.
/// The server runs it in the background; `stagefit import` runs it once the import
/// commits. Without a model, nothing.
pub async fn embed_library(
    store: &Store,
    meaning: &Meaning,
    progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> AppResult<EmbedPass> {
    let Some(model) = meaning.model().cloned() else {
        return Ok(EmbedPass::default());
    };
    // Published assets only: drafts and retired ones never have vectors, and would
    // otherwise look stale at every pass.
    let fingerprints = store.published_fingerprints().await?;
    let current = meaning.vectors();
    let hashes: HashMap<String, String> = fingerprints.into_iter().collect();
    let mut stale: Vec<String> = hashes
        .iter()
        .filter(|(id, hash)| !current.is_current(id, hash))
        .map(|(id, _)| id.clone())
        .collect();
    let gone = current.len() + stale.len() > hashes.len();
    if stale.is_empty() && !gone {
        // Every published asset has its vectors: nothing stays refused.
        meaning.keep_refused(|_| false);
        meaning.pass_ended();
        return Ok(EmbedPass {
            total: current.len(),
            ..EmbedPass::default()
        });
    }
    stale.sort();
    // Copies of the vectors (77 MB at 100k) are made on the blocking pool, never on the
    // runtime's workers.
    let alive: std::collections::HashSet<String> = hashes.keys().cloned().collect();
    let mut next = task::spawn_blocking(move || {
        let mut next = (*current).clone();
        next.retain(|id| alive.contains(id));
        next
    })
    .await
    .map_err(AppError::internal)?;
    let started = std::time::Instant::now();
    let mut embedded = 0usize;
    let mut runs = 0usize;
    let mut loaded = 0usize;
    let mut published = std::time::Instant::now();
    let mut publish_cost = Duration::ZERO;
    for (page_at, page) in stale.chunks(LOAD_PAGE).enumerate() {
        meaning.set_pending(stale.len() - page_at * LOAD_PAGE);
        let assets = store.load_assets(page).await?;
        // What this or another replica stored before: used when the text is the same.
        let stored: HashMap<String, (u64, Vec<u8>)> = store
            .embeddings(model.key(), page)
            .await?
            .into_iter()
            .map(|(id, th, bytes)| (id, (th, bytes)))
            .collect();
        // (id, content hash, text hash, whole text, title)
        let mut todo: Vec<(String, String, u64, String, String)> = Vec::new();
        let mut retired: std::collections::HashSet<String> = std::collections::HashSet::new();
        for asset in assets {
            let id = asset.id.to_string();
            let Some(hash) = hashes.get(&id) else {
                continue;
            };
            if asset.status != AssetStatus::Published {
                retired.insert(id);
                continue;
            }
            let (text, title) = (asset_text(&asset), title_text(&asset));
            let th = text_hash(model.key(), &format!("{title}\n{text}"));
            if next.keep_if_same_text(&id, hash, th) {
                continue;
            }
            // Refused before, same text: the service would refuse it again.
            if meaning.was_refused(&id, th) {
                continue;
            }
            if let Some((stored_th, bytes)) = stored.get(&id)
                && *stored_th == th
                && next.insert_encoded(&id, hash, th, bytes)
            {
                loaded += 1;
                continue;
            }
            todo.push((id, hash.clone(), th, text, title));
        }
        if !retired.is_empty() {
            next.retain(|id| !retired.contains(id));
        }
        progress(embedded + loaded, stale.len());
        for batch in todo.chunks(EMBED_BATCH) {
            // Whole texts and titles in one run each (titles pad less among titles).
            let texts: Vec<String> = batch.iter().map(|t| t.3.clone()).collect();
            let titles: Vec<String> = batch.iter().map(|t| t.4.clone()).collect();
            let m = model.clone();
            // An asset has vectors when the service took both its texts.
            let vectors = task::spawn_blocking(move || {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                let title_refs: Vec<&str> = titles.iter().map(String::as_str).collect();
                let (wholes, titles) = (m.embed_each(&refs)?, m.embed_each(&title_refs)?);
                Ok::<_, anyhow::Error>(
                    wholes
                        .into_iter()
                        .zip(titles)
                        .map(|(w, t)| w.zip(t))
                        .collect::<Vec<_>>(),
                )
            })
            .await
            .map_err(AppError::internal)?
            .map_err(AppError::internal)?;
            let mut rows = Vec::with_capacity(batch.len());
            for ((id, hash, th, _, _), pair) in batch.iter().zip(&vectors) {
                let Some((whole, title)) = pair else {
                    tracing::warn!(asset = %id, "the embeddings service refused the asset's text: it has no vector until the text changes");
                    meaning.refused(id, *th);
                    continue;
                };
                next.insert(id, hash, *th, whole, title);
                if let Some(bytes) = next.encoded(id) {
                    rows.push((id.clone(), *th, bytes));
                }
            }
            store.save_embeddings(model.key(), &rows).await?;
            embedded += rows.len();
            meaning.add_computed(rows.len());
            progress(embedded + loaded, stale.len());
            runs += 1;
            if runs.is_multiple_of(PUBLISH_EVERY)
                && published.elapsed() >= publish_cost * PUBLISH_COST_SHARE
            {
                let copying = std::time::Instant::now();
                let (kept, copy) = task::spawn_blocking(move || {
                    let copy = next.clone();
                    copy.prepare();
                    (next, copy)
                })
                .await
                .map_err(AppError::internal)?;
                next = kept;
                meaning.replace_vectors(copy);
                publish_cost = copying.elapsed();
                published = std::time::Instant::now();
            }
        }
    }
    let total = next.len();
    // A refusal holds while its asset is published and still without vectors.
    let refused = meaning.keep_refused(|id| hashes.contains_key(id) && !next.contains(id));
    // The sketch a large library's scans read is built here, not by the first query.
    let next = task::spawn_blocking(move || {
        next.prepare();
        next
    })
    .await
    .map_err(AppError::internal)?;
    meaning.replace_vectors(next);
    meaning.pass_ended();
    metrics::gauge!(crate::metrics::EMBEDDED_ASSETS).set(total as f64);
    tracing::info!(
        embedded,
        loaded,
        total,
        refused,
        ms = started.elapsed().as_millis() as u64,
        "library embedded"
    );
    Ok(EmbedPass {
        embedded,
        loaded,
        total,
        refused,
    })
}

/// The vectors stored under each model (`stagefit embeddings list`).
pub async fn stored_models(
    store: &crate::store::Store,
) -> crate::error::AppResult<Vec<crate::store::StoredModel>> {
    store.embedding_models().await
}

/// Deletes the vectors of a model no server uses any more (`stagefit embeddings drop`);
/// how many were deleted.
pub async fn drop_model_vectors(
    store: &crate::store::Store,
    model: &str,
) -> crate::error::AppResult<u64> {
    store.drop_embeddings(model).await
}
