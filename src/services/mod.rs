//! Use cases: the only room that calls both the store and the search index, and the owner of
//! transactions. GraphQL, HTTP and the CLI call these functions and nothing below them.

mod access;
mod accounts;
mod activity;
mod also_read;
mod audit;
mod bulk_engagement;
mod crm;
mod feedback;
mod follower;
mod import;
mod maintenance;
mod meaning;
mod operations;
mod popularity;
mod recommend;
mod references;
mod retention;
mod share_links;
mod similar;
mod synonyms;
mod tags;
mod ttl;
mod webhooks;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use tokio::task;

use crate::config::{Config, RankingConfig};

use crate::domain::{Asset, AssetDraft, AssetId, AssetStatus, FieldError, IndustrySlug};
use crate::domain::{AssetFilter, FacetField, SearchPage, SearchRequest};
use crate::error::{AppError, AppResult, InputProblem};
use crate::search::SearchIndex;
use crate::store::{ReplicaChange, Store, WriteCounts};

/// What ranking hands the API through the services: explanations and stage inference.
pub use crate::ranking::{Evidence, Reading, ScoreReason, StageInference};
pub use crate::store::{
    StageMove, StoredAttempt, StoredDelivery, StoredEngagement, StoredShareLink, StoredWebhook,
};
pub use access::{Access, AuditTrail, Credential, KEY_CACHE, KeyLimits, Visitor, VisitorToken};
pub use accounts::{
    AccountExport, AccountProfile, CLEARLY_BEST_MARGIN, Committee, CommitteeMember, CommitteeRole,
    EngagementReceipt, MAX_ENGAGEMENT_BATCH,
};
pub use activity::{
    AccountActivity, ActivityRead, ContactActivity, DEFAULT_ACTIVITY_DAYS, MAX_ACTIVITY_CONTACTS,
};
pub use audit::{
    CoverageExtras, CoverageReport, CoverageReportCell, ENGAGEMENT_WINDOW_DAYS, GAP_VIEWS,
    GapChange, StaleAsset, TAG_NEIGHBOURS, TagReport, TagSubject, gap_changes,
};
pub use bulk_engagement::{BulkEngagement, write_engagement_bulk};
pub use crm::StageMappingReport;
pub use feedback::{
    AssetPerformance, CellPerformance, ExperimentReport, ExplainQuery, PerformanceKey,
    PerformanceQuery, published_asset_ids, rate, store_experiment, store_profile,
    write_logged_lists,
};
pub use follower::{
    FollowerHandle, IndexDifference, IndexFollower, catch_up, compare_index, rebuild,
};
pub use import::{
    ImportMode, ImportProblem, ImportReport, ImportSource, RecordKind, export_library,
    import_records, import_sources, preview_import,
};
pub use maintenance::{
    Backup, Rebuilt, Restored, backup, import_indexed, open_read_only, reindex, restore,
    verify_index,
};
pub use meaning::{EmbedPass, drop_model_vectors, embed_imported, stored_models};
pub use operations::{Safelist, document_hash};
pub use popularity::{POPULAR_PER_COHORT, PopularityStats};
pub use recommend::{
    AudienceRequest, AudienceSource, Recommendation, RecommendationList, RecommendationQuery,
    ResolvedAudience,
};
pub use retention::{Retention, RetentionPass};
pub use share_links::{DEFAULT_SHARE_DAYS, ShareLink, ShareOpen, is_scanner};
pub use synonyms::{read_synonym_file, replace_synonym_groups};
pub use tags::{
    Acceptance, MAX_ACCEPTED, REVIEW_COLUMNS, ReviewRow, ReviewWriter, assets_by_id, declare,
    newly_tagged, read_review, review_rows, write_review,
};
pub use webhooks::{
    DeliveryReport, MAX_DELIVERIES, MAX_WEBHOOKS, WebhookDraft, check_receiver, is_public_address,
};
pub use writer::WriterHandle;

/// Most assets one `upsertAssets` call may carry; larger batches belong in `stagefit import`.
pub const MAX_UPSERT_BATCH: usize = 1_000;

#[derive(Clone)]
pub struct Library {
    store: Store,
    index: SearchIndex,
    follower: FollowerHandle,
    max_page_size: usize,
    ranking: RankingConfig,
    profiles: Arc<accounts::ProfileCache>,
    popularity: Arc<popularity::PopularityBoard>,
    /// Neighbour lists of the ALSO_READ factor, each read again after a second.
    read_next: Arc<also_read::ReadNextCache>,
    feedback: Arc<feedback::FeedbackBoard>,
    stale_after_days: u32,
    /// Index reads running at once (see [`Library::read_index`]).
    index_readers: Arc<tokio::sync::Semaphore>,
    /// Calls to an embeddings service made for requests at once (see `run_model`).
    remote_calls: Arc<tokio::sync::Semaphore>,
    synonyms: Arc<synonyms::SynonymBoard>,
    /// The embedding model and the library's vectors (empty without a model).
    meaning: Arc<crate::meaning::Meaning>,
    /// What share links start with (`https://content.example.com`), no trailing slash.
    public_url: Arc<str>,
    webhook_config: crate::config::WebhookConfig,
    /// Woken when a write of this process may have put something in the outbox.
    deliverer: Arc<webhooks::Deliverer>,
}

/// A cosine with the query from which a search hit is a good match by meaning alone
/// (all-MiniLM-L6-v2: a page on the query's subject in other words scores 0.5 to 0.7).
const GOOD_MEANING: f32 = 0.4;

/// Calls to an embeddings service that requests wait on at once: each may take up to
/// `meaning::remote::QUERY_TIMEOUT` of a blocking thread.
const REMOTE_CALLS: usize = 4;

/// How often a replica drops co-read pairs beyond each asset's heaviest.
const PRUNE_CO_READS_EVERY: Duration = Duration::from_secs(600);

/// Index reads allowed at once: two per core.
fn index_readers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2)
}

/// What a response computed now depends on besides its request: the index's change-log
/// position, the popularity values, and the ranking profiles and experiments. A cached
/// response is good while all three stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataVersion {
    pub index_seq: i64,
    pub popularity: u64,
    /// Ranking profiles and experiments.
    pub ranking: u64,
    /// The synonym groups.
    pub synonyms: u64,
    /// The library's vectors (each publication of newly embedded assets).
    pub meaning: u64,
}

/// Validates every draft of a GraphQL batch (at most `max`), reporting every problem at
/// once with its position; `what` names the list in messages (`assets[3].stages`).
fn validate_batch<D, T>(
    what: &str,
    max: usize,
    drafts: &[D],
    id_of: impl Fn(&D) -> Option<String>,
    validate: impl Fn(&D) -> Result<T, Vec<FieldError>>,
) -> AppResult<Vec<T>> {
    if drafts.len() > max {
        return Err(AppError::bad_input(format!(
            "at most {max} {what} per call, got {}; use `stagefit import` for larger batches",
            drafts.len()
        )));
    }
    let mut valid = Vec::with_capacity(drafts.len());
    let mut problems = Vec::new();
    for (position, draft) in drafts.iter().enumerate() {
        match validate(draft) {
            Ok(value) => valid.push(value),
            Err(errors) => problems.extend(errors.into_iter().map(|e| InputProblem {
                position: position as u64,
                id: id_of(draft),
                field: Some(e.field.to_owned()),
                message: e.message,
            })),
        }
    }
    if let Some(first) = problems.first() {
        return Err(AppError::BadUserInput {
            message: format!(
                "{} invalid field(s); nothing was written; first: {what}[{}].{}",
                problems.len(),
                first.position,
                first
            ),
            problems,
        });
    }
    Ok(valid)
}

/// Each id once, in no particular order.
fn distinct(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    let set: std::collections::HashSet<String> = ids.into_iter().collect();
    set.into_iter().collect()
}

/// What an upsert did, with the assets as stored.
pub struct UpsertOutcome {
    pub counts: WriteCounts,
    pub assets: Vec<Asset>,
}

/// An industry of the taxonomy with how many published assets serve it (its subtree).
pub struct IndustryCount {
    pub slug: IndustrySlug,
    pub label: String,
    pub parent: Option<IndustrySlug>,
    pub asset_count: u64,
}

/// How far the index is behind the database.
pub struct Health {
    pub database_seq: i64,
    pub index_seq: i64,
    pub indexed_docs: u64,
}

impl Library {
    pub fn new(
        store: Store,
        index: SearchIndex,
        follower: FollowerHandle,
        config: &Config,
        meaning: crate::meaning::Meaning,
    ) -> Self {
        Self {
            store,
            index,
            follower,
            max_page_size: config.max_page_size,
            ranking: config.ranking.clone(),
            profiles: Arc::new(accounts::ProfileCache::new(Duration::from_secs(
                config.account_cache_secs,
            ))),
            popularity: Arc::new(popularity::PopularityBoard::default()),
            read_next: Arc::new(also_read::ReadNextCache::default()),
            feedback: Arc::new(feedback::FeedbackBoard::default()),
            stale_after_days: config.stale_after_days,
            index_readers: Arc::new(tokio::sync::Semaphore::new(index_readers())),
            remote_calls: Arc::new(tokio::sync::Semaphore::new(REMOTE_CALLS)),
            synonyms: Arc::new(synonyms::SynonymBoard::default()),
            meaning: Arc::new(meaning),
            public_url: config
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", config.addr))
                .trim_end_matches('/')
                .into(),
            webhook_config: config.webhooks.clone(),
            deliverer: Arc::new(webhooks::Deliverer::new()),
        }
    }

    /// Runs a read of the index on the blocking pool, at most two per core at once; the
    /// rest wait their turn without a thread. Reads are CPU work: more at once only adds
    /// threads, and each thread keeps its own allocator arena (unbounded, 16 connections of
    /// text searches grew the pool by 37 threads and the server by 34 MB).
    pub(crate) async fn read_index<T: Send + 'static>(
        &self,
        read: impl FnOnce(&SearchIndex) -> AppResult<T> + Send + 'static,
    ) -> AppResult<T> {
        let index = self.index.clone();
        self.cpu_turn(move || read(&index)).await?
    }

    /// Runs CPU work (an index read, a model run) on the blocking pool once it has a turn
    /// among the `index_readers` permits.
    pub(crate) async fn cpu_turn<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> AppResult<T> {
        let _permit = self
            .index_readers
            .acquire()
            .await
            .map_err(AppError::internal)?;
        task::spawn_blocking(work).await.map_err(AppError::internal)
    }

    /// Reads what ranking needs besides the index (popularity, profiles and experiments)
    /// once, for a report that runs no background task.
    pub(crate) async fn load_for_reports(&self) -> AppResult<()> {
        self.popularity.load(&self.store).await?;
        self.refresh_feedback_rules().await
    }

    /// Loads popularity, then reads it again every `every` (0: only when told) until the
    /// returned task is aborted; a read that fails is logged and tried at the next tick.
    /// Counters left empty by an upgrade from a version that recomputed popularity are
    /// built from the stored events first.
    pub async fn start_popularity(
        &self,
        every: Duration,
    ) -> AppResult<tokio::task::JoinHandle<()>> {
        if self.store.counters_empty().await? && self.store.has_engagement().await? {
            let stats = self.popularity.rebuild(&self.store).await?;
            tracing::info!(
                events = stats.events,
                "popularity counters built from the events"
            );
        }
        self.popularity.load(&self.store).await?;
        let library = self.clone();
        Ok(tokio::spawn(async move {
            if every.is_zero() {
                return;
            }
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut pruned = tokio::time::Instant::now();
            loop {
                ticks.tick().await;
                if let Err(err) = library.popularity.load(&library.store).await {
                    tracing::warn!(error = ?err, "cannot read popularity");
                }
                // Co-read pairs past each asset's heaviest are dropped now and then.
                if pruned.elapsed() >= PRUNE_CO_READS_EVERY {
                    pruned = tokio::time::Instant::now();
                    match library.store.prune_co_reads().await {
                        Ok(n) if n > 0 => tracing::info!(pairs = n, "co-read pairs pruned"),
                        Ok(_) => {}
                        Err(err) => tracing::warn!(error = ?err, "cannot prune co-read pairs"),
                    }
                }
            }
        }))
    }

    /// Refuses page sizes outside 0..=max.
    pub fn page_size(&self, first: i32) -> AppResult<usize> {
        usize::try_from(first)
            .ok()
            .filter(|n| *n <= self.max_page_size)
            .ok_or_else(|| {
                AppError::bad_input(format!(
                    "first must be between 0 and {}, got {first}",
                    self.max_page_size
                ))
            })
    }

    /// Any asset by id, whatever its status.
    pub async fn asset(&self, id: &str) -> AppResult<Option<Asset>> {
        match AssetId::parse(id) {
            Ok(id) => self.store.get_asset(id.as_str()).await,
            Err(_) => Ok(None),
        }
    }

    /// Validates every draft first; writes all or nothing; returns once the index shows
    /// the change.
    pub async fn upsert_assets(&self, drafts: Vec<AssetDraft>) -> AppResult<UpsertOutcome> {
        let assets = validate_batch(
            "assets",
            MAX_UPSERT_BATCH,
            &drafts,
            |d| d.id.clone(),
            AssetDraft::validate,
        )?;
        let mut write = self.store.begin_write().await?;
        let counts = write.upsert_assets(&assets).await?;
        let seq = write.commit().await?;
        self.store.announce(ReplicaChange::Library).await;
        self.follower.wait_for(seq).await;
        Ok(UpsertOutcome { counts, assets })
    }

    pub async fn retire_asset(&self, id: &str) -> AppResult<Asset> {
        let not_found = || AppError::NotFound(format!("no asset with id {id:?}"));
        let id = AssetId::parse(id).map_err(|_| not_found())?;
        let mut write = self.store.begin_write().await?;
        let asset = write
            .set_status(&id, AssetStatus::Retired)
            .await?
            .ok_or_else(not_found)?;
        let seq = write.commit().await?;
        self.store.announce(ReplicaChange::Library).await;
        self.follower.wait_for(seq).await;
        Ok(asset)
    }

    pub async fn search(&self, request: SearchRequest) -> AppResult<SearchPage> {
        if let Some(text) = &request.text {
            crate::domain::check_query_text("query", text).map_err(AppError::bad_input)?;
        }
        let mut request = request;
        // An identifier is looked up exactly, by its words alone and without synonyms (see
        // `is_identifier`); found nowhere, its parts are searched as words, with meaning.
        if let Some(text) = request.text.clone()
            && crate::domain::is_identifier(&text)
        {
            let exact = request.clone();
            let page = self.read_index(move |index| index.search(&exact)).await?;
            if !page.hits.is_empty() || request.offset > 0 {
                return Ok(page);
            }
            request.text = Some(crate::domain::identifier_words(&text));
        }
        request.synonyms = self.expansions(request.text.as_deref()).await?;
        let ratio = request
            .semantic_ratio
            .unwrap_or(self.ranking.semantic_ratio);
        let target = match (&request.text, request.sort) {
            (Some(text), crate::domain::SortOrder::Relevance) if ratio > 0.0 => {
                self.query_vector(text).await?
            }
            _ => None,
        };
        let Some(target) = target else {
            return self.read_index(move |index| index.search(&request)).await;
        };
        let vectors = self.meaning.vectors();
        self.read_index(move |index| {
            let near = vectors.nearest(&target, crate::search::HYBRID_WINDOW, |_| true);
            let cosine = |id: &str| vectors.cosine(id, &target);
            index.search_with(
                &request,
                Some(&crate::search::Hybrid {
                    near,
                    cosine: &cosine,
                    ratio,
                    good_from: GOOD_MEANING,
                }),
            )
        })
        .await
    }

    /// Industries of the taxonomy with published-asset counts over their subtrees.
    pub async fn industries(&self) -> AppResult<Vec<IndustryCount>> {
        let records = self.store.industries().await?;
        let counts = self
            .read_index(|index| {
                index.facet_counts(&AssetFilter::default(), vec![FacetField::IndustryTree])
            })
            .await?;
        let counts: std::collections::HashMap<String, u64> =
            counts.into_iter().flat_map(|f| f.values).collect();
        Ok(records
            .into_iter()
            .map(|r| IndustryCount {
                asset_count: counts.get(r.slug.as_str()).copied().unwrap_or(0),
                slug: r.slug,
                label: r.label,
                parent: r.parent,
            })
            .collect())
    }

    /// The change-log position the index shows: every write the index applies moves it.
    pub fn index_seq(&self) -> i64 {
        self.follower.applied_seq()
    }

    pub fn data_version(&self) -> DataVersion {
        DataVersion {
            index_seq: self.follower.applied_seq(),
            popularity: self.popularity.version(),
            ranking: self.feedback.version(),
            synonyms: self.synonyms.version(),
            meaning: self.meaning.version(),
        }
    }

    /// On PostgreSQL, acts on the changes other replicas announce (a library write wakes
    /// the follower, an account's change drops its cached profile, new popularity is
    /// loaded), so they show here within moments instead of at the next poll. `None` on
    /// SQLite, where one server owns the database.
    pub async fn listen_to_replicas(&self) -> AppResult<Option<tokio::task::JoinHandle<()>>> {
        let Some(mut listener) = self.store.listen().await? else {
            return Ok(None);
        };
        let library = self.clone();
        Ok(Some(tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => {
                        if let Some(change) = ReplicaChange::parse(notification.payload()) {
                            library.replica_changed(change).await;
                        }
                    }
                    // The connection broke; the next call reconnects. What was announced
                    // meanwhile is lost, so act as if everything changed.
                    Ok(None) => {
                        tracing::warn!("lost the replicas' announcements; reconnecting");
                        library.replicas_unheard().await;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot hear other replicas; retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        })))
    }

    /// Database pool connections: (in use, open).
    pub fn pool_connections(&self) -> (u64, u64) {
        self.store.pool_connections()
    }

    pub async fn health(&self) -> AppResult<Health> {
        Ok(Health {
            database_seq: self.store.last_seq().await?,
            index_seq: self.follower.applied_seq(),
            indexed_docs: self.index.num_docs(),
        })
    }
}
