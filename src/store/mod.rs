//! The database, source of truth of the library. Repository functions take and return
//! domain types; SQL stays in this room and nothing here knows about the search index.
//!
//! Every write goes through a [`LibraryWrite`] transaction, which appends to the change log
//! in the same transaction, so the index can never miss a committed write.

mod accounts;
mod backup;
mod bulk;
mod copy;
mod counters;
mod crm;
mod entity;
mod events;
mod feedback;
mod gaps;
mod keys;
mod retention;
mod share_links;
mod spans;
mod webhooks;

pub use backup::{check_backup, replace_sqlite};
pub use copy::CopyCounts;
pub use feedback::{FeedbackCounts, FeedbackSums, LoggedList, ShownList};
pub use retention::{Expired, Expiring};
pub use share_links::StoredShareLink;
pub use webhooks::{
    ClaimedDelivery, DeliveryOutcome, StageMove, StoredAttempt, StoredDelivery, StoredWebhook,
    WebhookChange,
};

pub use accounts::StoredEngagement;
pub use counters::{Counted, CounterRows};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, bail};
use chrono::Utc;
use migrations::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DatabaseTransaction, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::domain::{
    Asset, AssetId, AssetStatus, Concern, ContentType, IndustrySlug, InferredTags, Language, Role,
    Stage, TagEvidence, TaxonomyValue,
};
use crate::error::{AppError, AppResult};
use entity::{asset, asset_embedding, asset_tag, change_log, industry, synonym_group};

/// Rows per multi-row INSERT: keeps every statement under SQLite's and PostgreSQL's
/// bound-parameter limits.
const ROWS_PER_STATEMENT: usize = 400;

/// The row an `INSERT ... ON CONFLICT DO UPDATE` would have written, as its `SET` clause
/// names it (`excluded.count`).
#[derive(sea_orm::DeriveIden, Clone, Copy)]
struct Excluded;

/// `ON CONFLICT (keys) DO UPDATE` adding the new row's `sums` to the stored ones.
fn adding<E: EntityTrait, const N: usize>(
    table: E,
    keys: impl IntoIterator<Item = E::Column>,
    sums: [E::Column; N],
) -> OnConflict {
    use sea_orm::sea_query::ExprTrait;
    OnConflict::columns(keys)
        .values(sums.map(|c| (c, Expr::col((table, c)).add(Expr::col((Excluded, c))))))
        .to_owned()
}

/// How often a server checkpoints SQLite's write-ahead log (see `Store::start_checkpoints`).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Key of the PostgreSQL advisory lock that orders writers ("stagefit" in ASCII).
const CHANGE_LOG_LOCK_KEY: i64 = 0x7374_6167_6566_6974;

/// The vectors stored under one model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredModel {
    pub model: String,
    /// Assets with vectors under it.
    pub assets: u64,
    /// Of those, the ones published now.
    pub published: u64,
}

/// A write recorded in the change log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub seq: i64,
    pub entity: String,
    pub entity_id: String,
}

/// An industry of the taxonomy table.
#[derive(Clone, Debug)]
pub struct IndustryRecord {
    pub slug: IndustrySlug,
    pub label: String,
    pub parent: Option<IndustrySlug>,
}

/// What a batch of upserts did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl std::ops::AddAssign for WriteCounts {
    fn add_assign(&mut self, other: Self) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// Serialises writers of this process. SQLite allows one writer at a time; writers of
    /// one process queue here instead of contending for the file lock.
    write_lock: Arc<Mutex<()>>,
    /// A PostgreSQL URL, for listening to other replicas' changes; `None` on SQLite.
    postgres_url: Option<Arc<str>>,
    /// Until when (Unix milliseconds) writes fail at once: the database was just found
    /// unreachable.
    unreachable_until: Arc<std::sync::atomic::AtomicU64>,
}

/// How long writes fail at once after one found the database unreachable.
const UNREACHABLE_FOR: Duration = Duration::from_secs(1);

fn now_millis() -> u64 {
    u64::try_from(Utc::now().timestamp_millis()).unwrap_or_default()
}

/// The channel replicas announce their writes on (PostgreSQL `NOTIFY`).
pub const CHANGES_CHANNEL: &str = "stagefit_changes";

/// A write another replica should know of at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicaChange {
    /// The library changed: followers should read the change log now.
    Library,
    /// An account's record, contacts or events changed: drop its cached profile.
    Account(String),
    /// Popularity was recomputed: load it.
    Popularity,
    /// Something every account's profile depends on changed (the CRM stage mapping):
    /// drop them all.
    AllAccounts,
}

impl ReplicaChange {
    fn payload(&self) -> String {
        match self {
            ReplicaChange::Library => "library".to_owned(),
            ReplicaChange::Account(id) => format!("account:{id}"),
            ReplicaChange::Popularity => "popularity".to_owned(),
            ReplicaChange::AllAccounts => "accounts".to_owned(),
        }
    }

    /// The change a notification's payload announces.
    pub fn parse(payload: &str) -> Option<Self> {
        match payload {
            "library" => Some(ReplicaChange::Library),
            "popularity" => Some(ReplicaChange::Popularity),
            "accounts" => Some(ReplicaChange::AllAccounts),
            other => other
                .strip_prefix("account:")
                .map(|id| ReplicaChange::Account(id.to_owned())),
        }
    }
}

/// A write transaction under the one writer discipline every write of the database takes
/// (library, accounts, contacts, events, popularity): the process writer lock, then on
/// SQLite `BEGIN IMMEDIATE`. A deferred SQLite transaction that reads and then writes
/// fails with "database is locked" when another writer got in between, without waiting;
/// an immediate one takes the write lock up front and waits (busy timeout) for writers of
/// other processes, such as an import. Dropping it without `commit` rolls back.
pub(crate) struct WriteTxn {
    txn: DatabaseTransaction,
    _guard: OwnedMutexGuard<()>,
}

impl WriteTxn {
    pub(crate) fn conn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    pub(crate) async fn commit(self) -> AppResult<()> {
        self.txn.commit().await?;
        Ok(())
    }
}

impl Store {
    /// Connects and brings the schema up to date. A SQLite file is created when missing
    /// (unless the URL sets its own `mode`); a folder that does not exist, or a PostgreSQL
    /// server that refuses, is said at once.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::connect_durable(url, crate::config::Durability::Normal).await
    }

    /// [`Store::connect`] with SQLite's durability chosen.
    pub async fn connect_durable(
        url: &str,
        durability: crate::config::Durability,
    ) -> anyhow::Result<Self> {
        Self::connect_with(url, durability, false).await
    }

    /// [`Store::connect_durable`] for a server: on SQLite no commit checkpoints the
    /// write-ahead log (the commit crossing 1,000 pages would, holding the writer lock
    /// 20-30 ms); the server calls [`Store::start_checkpoints`] instead.
    pub async fn connect_serving(
        url: &str,
        durability: crate::config::Durability,
    ) -> anyhow::Result<Self> {
        Self::connect_with(url, durability, true).await
    }

    async fn connect_with(
        url: &str,
        durability: crate::config::Durability,
        own_checkpoints: bool,
    ) -> anyhow::Result<Self> {
        let db = open(url, false, durability, own_checkpoints).await?;
        Migrator::up(&db, None)
            .await
            .context("cannot bring the database schema up to date")?;
        let mut store = Self::over(db);
        if store.db.get_database_backend() == DbBackend::Postgres {
            store.postgres_url = Some(Arc::from(url));
        }
        Ok(store)
    }

    /// Opens an existing database for reading only, without creating or migrating
    /// anything: what a dry run needs. `None` when there is no database yet (a SQLite file
    /// that does not exist, or a database without stagefit's tables); an error when its
    /// schema is older than this build's.
    pub async fn open_read_only(url: &str) -> anyhow::Result<Option<Self>> {
        if let Some(path) = sqlite_file(url)?
            && !path.exists()
        {
            return Ok(None);
        }
        let db = open(url, true, crate::config::Durability::Normal, false).await?;
        let applied: Vec<String> = match db
            .query_all_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT version FROM seaql_migrations",
            ))
            .await
        {
            Ok(rows) => rows
                .iter()
                .filter_map(|r| r.try_get::<String>("", "version").ok())
                .collect(),
            Err(err) => {
                let _ = db.close().await;
                // SQLite: "no such table"; PostgreSQL: "relation ... does not exist".
                let text = err.to_string();
                if text.contains("no such table") || text.contains("does not exist") {
                    return Ok(None);
                }
                return Err(anyhow::Error::new(err).context("cannot read the database"));
            }
        };
        let missing: Vec<String> = Migrator::migrations()
            .iter()
            .map(|m| m.name().to_owned())
            .filter(|name| !applied.contains(name))
            .collect();
        if !missing.is_empty() {
            let _ = db.close().await;
            bail!(
                "the database schema is older than this stagefit (missing {}); run `stagefit migrate` first",
                missing.join(", ")
            );
        }
        Ok(Some(Self::over(db)))
    }

    fn over(db: DatabaseConnection) -> Self {
        Self {
            db,
            write_lock: Arc::new(Mutex::new(())),
            postgres_url: None,
            unreachable_until: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    /// Tells the other replicas on this PostgreSQL database of a committed write, so that
    /// they act on it at once instead of at their next poll. Nothing on SQLite. A failure
    /// only delays them until that poll, so it is logged, not returned.
    pub async fn announce(&self, change: ReplicaChange) {
        if self.postgres_url.is_none() {
            return;
        }
        let statement = sea_orm::Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANGES_CHANNEL.into(), change.payload().into()],
        );
        if let Err(err) = self.db.execute_raw(statement).await {
            tracing::warn!(error = %err, ?change, "cannot announce a change to other replicas");
        }
    }

    /// A listener on [`CHANGES_CHANNEL`], on PostgreSQL.
    pub async fn listen(&self) -> AppResult<Option<sea_orm::sqlx::postgres::PgListener>> {
        let Some(url) = &self.postgres_url else {
            return Ok(None);
        };
        let mut listener = sea_orm::sqlx::postgres::PgListener::connect(url)
            .await
            .map_err(|e| {
                AppError::Unavailable(anyhow::Error::new(e).context("listening for changes"))
            })?;
        listener.listen(CHANGES_CHANNEL).await.map_err(|e| {
            AppError::Unavailable(anyhow::Error::new(e).context("listening for changes"))
        })?;
        Ok(Some(listener))
    }

    /// Every asset as (id, content hash), and the change-log position read in the same
    /// transaction: what `verify-index` compares an index with.
    pub async fn asset_fingerprints(&self) -> AppResult<(Vec<(String, String)>, i64)> {
        let txn = self.db.begin().await?;
        let rows = fingerprints()
            .into_tuple::<(String, String)>()
            .all(&txn)
            .await?;
        let seq = last_seq(&txn).await?;
        txn.commit().await?;
        Ok((rows, seq))
    }

    /// Every published asset as (id, content hash): what the vectors follow.
    pub async fn published_fingerprints(&self) -> AppResult<Vec<(String, String)>> {
        Ok(fingerprints()
            .filter(asset::Column::Status.eq(stored_status(AssetStatus::Published)))
            .into_tuple::<(String, String)>()
            .all(&self.db)
            .await?)
    }

    /// Connections of the pool: (in use, open).
    pub fn pool_connections(&self) -> (u64, u64) {
        let (size, idle) = match self.db.get_database_backend() {
            DbBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            DbBackend::Sqlite => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => (0, 0),
        };
        let size = u64::from(size);
        (size.saturating_sub(idle as u64), size)
    }

    pub async fn close(self) {
        if let Err(err) = self.db.close().await {
            tracing::warn!(error = %err, "closing the database");
        }
    }

    /// Starts a write transaction under the writer discipline (see [`WriteTxn`]).
    ///
    /// While the database is unreachable, writers queued behind the writer lock would each
    /// wait out the pool's timeout in turn; after one finds it unreachable, the others
    /// (for [`UNREACHABLE_FOR`]) fail at once with `UNAVAILABLE` instead.
    pub(crate) async fn begin_txn(&self) -> AppResult<WriteTxn> {
        self.reachable()?;
        let guard = self.write_lock.clone().lock_owned().await;
        self.reachable()?;
        let begun = self
            .db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await;
        match begun {
            Ok(txn) => Ok(WriteTxn { txn, _guard: guard }),
            Err(err) => {
                let err = AppError::from(err);
                if matches!(err, AppError::Unavailable(_)) {
                    let until = now_millis() + UNREACHABLE_FOR.as_millis() as u64;
                    self.unreachable_until
                        .store(until, std::sync::atomic::Ordering::Relaxed);
                }
                Err(err)
            }
        }
    }

    /// On SQLite opened with [`Store::connect_serving`]: checkpoints the write-ahead log
    /// every [`CHECKPOINT_EVERY`] outside the writer lock (`PASSIVE`: it copies what no
    /// reader still needs and never waits for writers or readers), until the task is
    /// aborted. `None` on PostgreSQL.
    pub fn start_checkpoints(&self) -> Option<tokio::task::JoinHandle<()>> {
        if self.db.get_database_backend() != DbBackend::Sqlite {
            return None;
        }
        let db = self.db.clone();
        Some(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(CHECKPOINT_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(err) = db
                    .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
                    .await
                {
                    tracing::warn!(error = %err, "cannot checkpoint the write-ahead log");
                }
            }
        }))
    }

    fn reachable(&self) -> AppResult<()> {
        if now_millis()
            < self
                .unreachable_until
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(AppError::Unavailable(anyhow::anyhow!(
                "the database was unreachable moments ago"
            )));
        }
        Ok(())
    }

    /// Starts a write transaction over the library; dropping it without `commit` rolls
    /// everything back.
    pub async fn begin_write(&self) -> AppResult<LibraryWrite> {
        let txn = self.begin_txn().await?;
        if txn.conn().get_database_backend() == DbBackend::Postgres {
            // Writers of every replica take turns, so change-log positions commit in order
            // and a follower reading "after N" can never pass over a slower transaction's
            // smaller N. The lock ends with the transaction.
            txn.conn()
                .execute_unprepared(&format!(
                    "SELECT pg_advisory_xact_lock({CHANGE_LOG_LOCK_KEY})"
                ))
                .await?;
        }
        let gaps = gaps::watch(txn.conn()).await?;
        Ok(LibraryWrite {
            txn,
            known_industries: HashSet::new(),
            gaps,
        })
    }

    pub async fn get_asset(&self, id: &str) -> AppResult<Option<Asset>> {
        Ok(load_assets(&self.db, &[id.to_owned()]).await?.pop())
    }

    /// The assets with these ids that exist, in id order.
    pub async fn load_assets(&self, ids: &[String]) -> AppResult<Vec<Asset>> {
        load_assets(&self.db, ids).await
    }

    /// A page of the whole library in id order, starting after `after`.
    pub async fn assets_after(&self, after: Option<&str>, limit: u64) -> AppResult<Vec<Asset>> {
        let mut query = asset::Entity::find()
            .select_only()
            .column(asset::Column::Id)
            .order_by_asc(asset::Column::Id)
            .limit(limit);
        if let Some(after) = after {
            query = query.filter(asset::Column::Id.gt(after));
        }
        let ids: Vec<String> = query.into_tuple().all(&self.db).await?;
        load_assets(&self.db, &ids).await
    }

    pub async fn count_assets(&self) -> AppResult<u64> {
        Ok(asset::Entity::find().count(&self.db).await?)
    }

    /// Changes after `seq`, oldest first.
    pub async fn changes_since(&self, seq: i64, limit: u64) -> AppResult<Vec<Change>> {
        let rows = change_log::Entity::find()
            .filter(change_log::Column::Seq.gt(seq))
            .order_by_asc(change_log::Column::Seq)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| Change {
                seq: r.seq,
                entity: r.entity,
                entity_id: r.entity_id,
            })
            .collect())
    }

    /// The newest committed change-log position (0 when empty).
    pub async fn last_seq(&self) -> AppResult<i64> {
        last_seq(&self.db).await
    }

    /// The library's synonym groups, in their order, each as its terms.
    pub async fn synonym_groups(&self) -> AppResult<Vec<Vec<String>>> {
        let rows = synonym_group::Entity::find()
            .order_by_asc(synonym_group::Column::Position)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| r.terms.split('|').map(str::to_owned).collect())
            .collect())
    }

    /// Replaces the synonym groups as a whole, in one transaction.
    pub async fn replace_synonym_groups(&self, groups: &[Vec<String>]) -> AppResult<()> {
        let txn = self.begin_txn().await?;
        synonym_group::Entity::delete_many()
            .exec(txn.conn())
            .await?;
        let rows: Vec<synonym_group::ActiveModel> = groups
            .iter()
            .enumerate()
            .map(|(i, terms)| synonym_group::ActiveModel {
                position: Set(i32::try_from(i).unwrap_or(i32::MAX)),
                terms: Set(terms.join("|")),
            })
            .collect();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            synonym_group::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(txn.conn())
                .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// The stored vectors of these assets under `model`: (asset id, text hash, vectors).
    pub async fn embeddings(
        &self,
        model: &str,
        ids: &[String],
    ) -> AppResult<Vec<(String, u64, Vec<u8>)>> {
        let mut found = Vec::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let rows = asset_embedding::Entity::find()
                .filter(asset_embedding::Column::Model.eq(model))
                .filter(asset_embedding::Column::AssetId.is_in(chunk.iter().cloned()))
                .all(&self.db)
                .await?;
            found.extend(
                rows.into_iter()
                    .map(|r| (r.asset_id, r.text_hash as u64, r.vectors)),
            );
        }
        Ok(found)
    }

    /// Each model with stored vectors, by name.
    pub async fn embedding_models(&self) -> AppResult<Vec<StoredModel>> {
        let count = |published: bool| {
            let mut rows = asset_embedding::Entity::find()
                .select_only()
                .column(asset_embedding::Column::Model)
                .column_as(asset_embedding::Column::AssetId.count(), "assets")
                .group_by(asset_embedding::Column::Model);
            if published {
                rows = rows.filter(
                    asset_embedding::Column::AssetId.in_subquery(
                        sea_orm::sea_query::Query::select()
                            .column(asset::Column::Id)
                            .from(asset::Entity)
                            .and_where(
                                asset::Column::Status.eq(stored_status(AssetStatus::Published)),
                            )
                            .to_owned(),
                    ),
                );
            }
            rows.into_tuple::<(String, i64)>().all(&self.db)
        };
        let published: HashMap<String, i64> = count(true).await?.into_iter().collect();
        let mut models: Vec<StoredModel> = count(false)
            .await?
            .into_iter()
            .map(|(model, assets)| StoredModel {
                published: published.get(&model).copied().unwrap_or(0).max(0) as u64,
                assets: assets.max(0) as u64,
                model,
            })
            .collect();
        models.sort_by(|a, b| a.model.cmp(&b.model));
        Ok(models)
    }

    /// Deletes every vector stored under `model`; how many.
    pub async fn drop_embeddings(&self, model: &str) -> AppResult<u64> {
        let deleted = asset_embedding::Entity::delete_many()
            .filter(asset_embedding::Column::Model.eq(model))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected)
    }

    /// Stores vectors computed under `model` (asset id, text hash, vectors), replacing
    /// what an asset had under it. Replicas may store the same asset at once: the last
    /// write stands, and both computed the same vectors from the same text.
    pub async fn save_embeddings(
        &self,
        model: &str,
        rows: &[(String, u64, Vec<u8>)],
    ) -> AppResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let txn = self.begin_txn().await?;
        // Each row holds about 800 bytes: a few hundred per statement.
        for chunk in rows.chunks(ROWS_PER_STATEMENT / 2) {
            let models = chunk
                .iter()
                .map(|(id, hash, vectors)| asset_embedding::ActiveModel {
                    asset_id: Set(id.clone()),
                    model: Set(model.to_owned()),
                    text_hash: Set(*hash as i64),
                    vectors: Set(vectors.clone()),
                });
            asset_embedding::Entity::insert_many(models)
                .on_conflict(
                    OnConflict::columns([
                        asset_embedding::Column::AssetId,
                        asset_embedding::Column::Model,
                    ])
                    .update_columns([
                        asset_embedding::Column::TextHash,
                        asset_embedding::Column::Vectors,
                    ])
                    .to_owned(),
                )
                .exec_without_returning(txn.conn())
                .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    pub async fn industries(&self) -> AppResult<Vec<IndustryRecord>> {
        let rows = industry::Entity::find()
            .order_by_asc(industry::Column::Slug)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(IndustryRecord {
                    slug: corrupt(IndustrySlug::parse(&r.slug), "industry.slug")?,
                    label: r.label,
                    parent: r
                        .parent
                        .map(|p| corrupt(IndustrySlug::parse(&p), "industry.parent"))
                        .transpose()?,
                })
            })
            .collect()
    }
}

/// The database file of a SQLite URL (`None` for other databases and in-memory ones).
/// Refuses a file in a folder that does not exist, naming the folder: SQLite itself only
/// says "unable to open database file".
fn sqlite_file(url: &str) -> anyhow::Result<Option<PathBuf>> {
    use sea_orm::sqlx::sqlite::SqliteConnectOptions;
    if !url.starts_with("sqlite:") {
        return Ok(None);
    }
    let options = SqliteConnectOptions::from_str(url)
        .with_context(|| "not a valid SQLite URL (sqlite://PATH)".to_owned())?;
    let path = options.get_filename().to_owned();
    if url.contains("mode=memory") || path.as_os_str().is_empty() || path == Path::new(":memory:") {
        return Ok(None);
    }
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !folder.is_dir() {
        bail!(
            "the folder {} for the database file {} does not exist; create it or choose another path",
            folder.display(),
            path.display()
        );
    }
    Ok(Some(path))
}

/// Connects without migrating. SQLite: WAL, the file created when missing unless the URL
/// names a `mode`, read-only when asked. PostgreSQL: one connection is tried first, so a
/// server that is down or refuses is reported at once with its address and cause instead
/// of after the pool's wait.
async fn open(
    url: &str,
    read_only: bool,
    durability: crate::config::Durability,
    own_checkpoints: bool,
) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30));
    if !url.starts_with("sqlite:") {
        // A server that is down should fail a request fast (503 UNAVAILABLE), well within
        // the request timeout, rather than hold it for the pool's default 30 s.
        options
            .connect_timeout(Duration::from_secs(3))
            .acquire_timeout(Duration::from_secs(3));
    }
    if url.starts_with("sqlite:") {
        sqlite_file(url)?;
        use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
        let explicit_mode = url.contains("mode=");
        options.max_connections(8).map_sqlx_sqlite_opts(move |o| {
            let o = o
                .journal_mode(SqliteJournalMode::Wal)
                // NORMAL in WAL mode: a commit survives a crash of the process, and may be
                // lost with the last few on power loss; FULL syncs every commit.
                .synchronous(match durability {
                    crate::config::Durability::Normal => SqliteSynchronous::Normal,
                    crate::config::Durability::Full => SqliteSynchronous::Full,
                })
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let o = if own_checkpoints {
                o.pragma("wal_autocheckpoint", "0")
            } else {
                o
            };
            if read_only {
                o.read_only(true).create_if_missing(false)
            } else if explicit_mode {
                o
            } else {
                o.create_if_missing(true)
            }
        });
    } else {
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            probe_postgres(url).await?;
        }
        options.max_connections(16);
        if read_only {
            // Every transaction of these connections is read-only: a report cannot write.
            options
                .map_sqlx_postgres_opts(|o| o.options([("default_transaction_read_only", "on")]));
        }
    }
    Database::connect(options)
        .await
        .context("cannot open the database")
}

async fn probe_postgres(url: &str) -> anyhow::Result<()> {
    use sea_orm::sqlx::postgres::PgConnectOptions;
    use sea_orm::sqlx::{ConnectOptions as _, Connection as _};
    let options =
        PgConnectOptions::from_str(url).context("not a valid PostgreSQL URL (postgres://...)")?;
    let place = match options.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    };
    let attempt = tokio::time::timeout(Duration::from_secs(10), options.connect()).await;
    match attempt {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            Ok(())
        }
        Ok(Err(err)) => {
            // An I/O failure (refused, unreachable) reads best on its own; sqlx repeats it.
            let cause = match err {
                sea_orm::sqlx::Error::Io(io) => anyhow::Error::new(io),
                other => anyhow::Error::new(other),
            };
            Err(cause.context(format!("cannot connect to PostgreSQL at {place}")))
        }
        Err(_) => bail!("cannot connect to PostgreSQL at {place}: no answer within 10 s"),
    }
}

/// What [`LibraryWrite::upsert_assets`] would count for `assets`, without writing, against
/// the stored library or none at all (a dry run before the database exists). `earlier`
/// holds the ids and hashes that earlier batches of the same import would have written,
/// and gains this batch's.
pub async fn preview_upserts(
    store: Option<&Store>,
    assets: &[Asset],
    earlier: &mut HashMap<String, String>,
) -> AppResult<WriteCounts> {
    let mut counts = WriteCounts::default();
    for chunk in assets.chunks(ROWS_PER_STATEMENT) {
        let unseen: Vec<String> = chunk
            .iter()
            .map(|a| a.id.to_string())
            .filter(|id| !earlier.contains_key(id))
            .collect();
        let mut stored = match store {
            Some(store) => content_hashes(&store.db, unseen).await?,
            None => HashMap::new(),
        };
        for asset in chunk {
            if let Some(hash) = earlier.get(asset.id.as_str()) {
                stored.insert(asset.id.to_string(), hash.clone());
            }
        }
        let (chunk_counts, changed) = plan_upserts(chunk, &stored);
        counts += chunk_counts;
        for (asset, hash) in changed {
            earlier.insert(asset.id.to_string(), hash);
        }
    }
    Ok(counts)
}

/// One write transaction over the library.
pub struct LibraryWrite {
    txn: WriteTxn,
    known_industries: HashSet<String>,
    /// While a webhook listens for coverage gaps: what the touched assets served before.
    gaps: Option<gaps::GapWatch>,
}

impl LibraryWrite {
    /// Inserts or updates assets (with their tags and industries) and logs each change.
    /// Assets whose content is identical to what is stored are left alone and not logged.
    pub async fn upsert_assets(&mut self, assets: &[Asset]) -> AppResult<WriteCounts> {
        let mut counts = WriteCounts::default();
        for chunk in assets.chunks(ROWS_PER_STATEMENT) {
            counts += self.upsert_chunk(chunk).await?;
        }
        Ok(counts)
    }

    async fn upsert_chunk(&mut self, assets: &[Asset]) -> AppResult<WriteCounts> {
        let ids: Vec<String> = assets.iter().map(|a| a.id.to_string()).collect();
        let stored = content_hashes(self.txn.conn(), ids).await?;
        let (counts, changed) = plan_upserts(assets, &stored);
        let now = Utc::now();
        let mut rows = Vec::new();
        let mut tags = Vec::new();
        let mut changed_ids = Vec::new();
        let mut industries = Vec::new();
        for (asset, hash) in changed {
            rows.push(asset_row(asset, hash, now));
            tags.extend(tag_rows(asset));
            changed_ids.push(asset.id.to_string());
            for slug in asset
                .industries
                .iter()
                .flat_map(IndustrySlug::self_and_ancestors)
            {
                if self.known_industries.insert(slug.to_string()) {
                    industries.push(slug);
                }
            }
        }
        if rows.is_empty() {
            return Ok(counts);
        }
        if let Some(gaps) = &mut self.gaps {
            let replaced: Vec<String> = changed_ids
                .iter()
                .filter(|id| stored.contains_key(id.as_str()))
                .cloned()
                .collect();
            gaps.remember(self.txn.conn(), &replaced).await?;
        }

        asset::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(asset::Column::Id)
                    .update_columns([
                        asset::Column::Title,
                        asset::Column::Summary,
                        asset::Column::Body,
                        asset::Column::Url,
                        asset::Column::Links,
                        asset::Column::ContentType,
                        asset::Column::Language,
                        asset::Column::PublishedAt,
                        asset::Column::ReviewedAt,
                        asset::Column::Evergreen,
                        asset::Column::Gated,
                        asset::Column::Status,
                        asset::Column::ContentHash,
                        asset::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(self.txn.conn())
            .await?;
        // New assets have no tags to replace.
        let replaced: Vec<&String> = changed_ids
            .iter()
            .filter(|id| stored.contains_key(id.as_str()))
            .collect();
        if !replaced.is_empty() {
            asset_tag::Entity::delete_many()
                .filter(asset_tag::Column::AssetId.is_in(replaced))
                .exec(self.txn.conn())
                .await?;
        }
        for chunk in tags.chunks(ROWS_PER_STATEMENT * 4) {
            asset_tag::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(self.txn.conn())
                .await?;
        }
        if !industries.is_empty() {
            let rows = industries.iter().map(|slug| industry::ActiveModel {
                slug: Set(slug.to_string()),
                label: Set(slug.default_label()),
                parent: Set(slug.parent().map(|p| p.to_string())),
            });
            industry::Entity::insert_many(rows)
                .on_conflict_do_nothing_on([industry::Column::Slug])
                .exec_without_returning(self.txn.conn())
                .await?;
        }
        self.log_changes("asset", &changed_ids).await?;
        Ok(counts)
    }

    /// Sets an asset's status; `None` when there is no such asset.
    pub async fn set_status(
        &mut self,
        id: &AssetId,
        status: AssetStatus,
    ) -> AppResult<Option<Asset>> {
        let Some(mut current) = load_assets(self.txn.conn(), &[id.to_string()]).await?.pop() else {
            return Ok(None);
        };
        if current.status == status {
            return Ok(Some(current));
        }
        if let Some(gaps) = &mut self.gaps {
            gaps.remember(self.txn.conn(), &[id.to_string()]).await?;
        }
        current.status = status;
        asset::Entity::update_many()
            .col_expr(asset::Column::Status, Expr::value(stored_status(status)))
            .col_expr(
                asset::Column::ContentHash,
                Expr::value(current.fingerprint()),
            )
            .col_expr(asset::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(asset::Column::Id.eq(id.as_str()))
            .exec(self.txn.conn())
            .await?;
        self.log_changes("asset", &[id.to_string()]).await?;
        Ok(Some(current))
    }

    async fn log_changes(&self, entity: &str, ids: &[String]) -> AppResult<()> {
        let now = Utc::now();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let rows = chunk.iter().map(|id| change_log::ActiveModel {
                entity: Set(entity.to_owned()),
                entity_id: Set(id.clone()),
                op: Set("upsert".to_owned()),
                recorded_at: Set(now),
                ..Default::default()
            });
            change_log::Entity::insert_many(rows)
                .exec_without_returning(self.txn.conn())
                .await?;
        }
        Ok(())
    }

    /// Commits and returns the newest change-log position, for read-your-writes.
    /// The change-log position as this transaction sees it.
    pub async fn position(&self) -> AppResult<i64> {
        last_seq(self.txn.conn()).await
    }

    pub async fn commit(self) -> AppResult<i64> {
        if let Some(gaps) = self.gaps {
            gaps.announce(self.txn.conn()).await?;
        }
        let seq = last_seq(self.txn.conn()).await?;
        self.txn.commit().await?;
        Ok(seq)
    }
}

/// What upserting one chunk does, given the stored content hashes of its ids: the counts,
/// and the assets to write with their new hashes. A later row for the same id within the
/// chunk wins, as a re-import would; an asset identical to what is stored is left alone.
pub fn plan_upserts<'a>(
    assets: &'a [Asset],
    stored: &HashMap<String, String>,
) -> (WriteCounts, Vec<(&'a Asset, String)>) {
    let mut latest: HashMap<&str, &Asset> = HashMap::new();
    for asset in assets {
        latest.insert(asset.id.as_str(), asset);
    }
    let mut counts = WriteCounts::default();
    let mut changed = Vec::new();
    for asset in assets {
        if !std::ptr::eq(latest[asset.id.as_str()], asset) {
            continue;
        }
        let hash = asset.fingerprint();
        match stored.get(asset.id.as_str()) {
            Some(old) if *old == hash => {
                counts.unchanged += 1;
                continue;
            }
            Some(_) => counts.updated += 1,
            None => counts.created += 1,
        }
        changed.push((asset, hash));
    }
    (counts, changed)
}

async fn content_hashes(
    db: &impl ConnectionTrait,
    ids: Vec<String>,
) -> AppResult<HashMap<String, String>> {
    Ok(asset::Entity::find()
        .select_only()
        .column(asset::Column::Id)
        .column(asset::Column::ContentHash)
        .filter(asset::Column::Id.is_in(ids))
        .into_tuple::<(String, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

async fn last_seq(db: &impl ConnectionTrait) -> AppResult<i64> {
    let max: Option<Option<i64>> = change_log::Entity::find()
        .select_only()
        .column_as(change_log::Column::Seq.max(), "max_seq")
        .into_tuple()
        .one(db)
        .await?;
    Ok(max.flatten().unwrap_or(0))
}

async fn load_assets(db: &impl ConnectionTrait, ids: &[String]) -> AppResult<Vec<Asset>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_STATEMENT * 2) {
        let rows = asset::Entity::find()
            .filter(asset::Column::Id.is_in(chunk.to_vec()))
            .order_by_asc(asset::Column::Id)
            .all(db)
            .await?;
        let tags = asset_tag::Entity::find()
            .filter(asset_tag::Column::AssetId.is_in(chunk.to_vec()))
            .order_by_asc(asset_tag::Column::AssetId)
            .order_by_asc(asset_tag::Column::Kind)
            .order_by_asc(asset_tag::Column::Position)
            .all(db)
            .await?;
        let mut by_asset: HashMap<String, Vec<asset_tag::Model>> = HashMap::new();
        for tag in tags {
            by_asset.entry(tag.asset_id.clone()).or_default().push(tag);
        }
        for row in rows {
            let tags = by_asset.remove(&row.id).unwrap_or_default();
            out.push(asset_from_row(row, tags)?);
        }
    }
    Ok(out)
}

fn asset_row(asset: &Asset, hash: String, now: chrono::DateTime<Utc>) -> asset::ActiveModel {
    asset::ActiveModel {
        id: Set(asset.id.to_string()),
        title: Set(asset.title.clone()),
        summary: Set(asset.summary.clone()),
        body: Set(asset.body.clone()),
        url: Set(asset.url.clone()),
        links: Set(asset.links.join("\n")),
        image_url: Set(asset.image_url.clone()),
        content_type: Set(asset.content_type.name().to_owned()),
        language: Set(asset.language.to_string()),
        published_at: Set(asset.published_at),
        reviewed_at: Set(asset.reviewed_at),
        evergreen: Set(asset.evergreen),
        gated: Set(asset.gated),
        status: Set(stored_status(asset.status)),
        content_hash: Set(hash),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

fn tag_rows(asset: &Asset) -> Vec<asset_tag::ActiveModel> {
    fn names<T: TaxonomyValue>(values: &[T]) -> Vec<String> {
        values.iter().map(|v| v.name().to_owned()).collect()
    }
    // Declared tags only: what is read from the text is read again on load.
    let e = asset.evidence;
    let lists: [(&str, Vec<String>); 5] = [
        ("stage", names(asset.declared(&asset.stages, e.stages))),
        ("role", names(asset.declared(&asset.roles, e.roles))),
        (
            "industry",
            asset
                .declared(&asset.industries, e.industries)
                .iter()
                .map(ToString::to_string)
                .collect(),
        ),
        (
            "concern",
            names(asset.declared(&asset.concerns, e.concerns)),
        ),
        ("topic", asset.topics.clone()),
    ];
    let mut rows = Vec::new();
    for (kind, values) in lists {
        for (position, value) in values.into_iter().enumerate() {
            rows.push(asset_tag::ActiveModel {
                asset_id: Set(asset.id.to_string()),
                kind: Set(kind.to_owned()),
                value: Set(value),
                position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
            });
        }
    }
    rows
}

fn asset_from_row(row: asset::Model, tags: Vec<asset_tag::Model>) -> AppResult<Asset> {
    let mut lists: HashMap<String, Vec<String>> = HashMap::new();
    for tag in tags {
        lists.entry(tag.kind).or_default().push(tag.value);
    }
    let mut list = |kind: &str| lists.remove(kind).unwrap_or_default();
    fn parse_all<T: TaxonomyValue>(values: Vec<String>, what: &str) -> AppResult<Vec<T>> {
        values.iter().map(|v| corrupt(T::parse(v), what)).collect()
    }
    let mut asset = Asset {
        id: corrupt(AssetId::parse(&row.id), "asset.id")?,
        title: row.title,
        summary: row.summary,
        body: row.body,
        url: row.url,
        // One a line: a link holds no whitespace (`AssetDraft::validate`).
        links: row.links.lines().map(str::to_owned).collect(),
        image_url: row.image_url,
        content_type: corrupt(ContentType::parse(&row.content_type), "asset.content_type")?,
        stages: parse_all::<Stage>(list("stage"), "asset_tag stage")?,
        roles: parse_all::<Role>(list("role"), "asset_tag role")?,
        industries: list("industry")
            .iter()
            .map(|v| corrupt(IndustrySlug::parse(v), "asset_tag industry"))
            .collect::<AppResult<_>>()?,
        concerns: parse_all::<Concern>(list("concern"), "asset_tag concern")?,
        topics: list("topic"),
        language: corrupt(Language::parse(&row.language), "asset.language")?,
        published_at: row.published_at,
        reviewed_at: row.reviewed_at,
        evergreen: row.evergreen,
        gated: row.gated,
        status: corrupt(AssetStatus::parse(&row.status), "asset.status")?,
        evidence: TagEvidence::DECLARED,
        inferred: InferredTags::default(),
    };
    asset.settle_tags();
    Ok(asset)
}

/// A stored value that no longer parses is a bug or a hand-edited database, not user input.
fn corrupt<T>(result: Result<T, String>, what: &str) -> AppResult<T> {
    result.map_err(|err| AppError::internal(anyhow::anyhow!("stored {what} is invalid: {err}")))
}

/// Every asset's (id, content hash): filter it, then read it with `into_tuple`.
fn fingerprints() -> sea_orm::Select<asset::Entity> {
    asset::Entity::find()
        .select_only()
        .column(asset::Column::Id)
        .column(asset::Column::ContentHash)
}

/// How the `asset.status` column spells a status.
fn stored_status(status: AssetStatus) -> String {
    status.name().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pragma(store: &Store, name: &str) -> i64 {
        store
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                DbBackend::Sqlite,
                format!("PRAGMA {name}"),
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i64>(0)
            .unwrap()
    }

    async fn synchronous(store: &Store) -> i64 {
        pragma(store, "synchronous").await
    }

    #[tokio::test]
    async fn a_server_checkpoints_the_log_itself_and_commands_leave_it_to_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
        let normal = crate::config::Durability::Normal;
        let command = Store::connect_durable(&url, normal).await.unwrap();
        assert_eq!(pragma(&command, "wal_autocheckpoint").await, 1000);
        // On SQLite a task checkpoints (stopped here before closing).
        command.start_checkpoints().unwrap().abort();
        command.close().await;
        let server = Store::connect_serving(&url, normal).await.unwrap();
        assert_eq!(pragma(&server, "wal_autocheckpoint").await, 0);
        server.close().await;
    }

    #[tokio::test]
    async fn durability_chooses_sqlites_synchronous_setting() {
        let dir = tempfile::tempdir().unwrap();
        for (durability, expected) in [
            (crate::config::Durability::Normal, 1),
            (crate::config::Durability::Full, 2),
        ] {
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("d.db").display());
            let store = Store::connect_durable(&url, durability).await.unwrap();
            assert_eq!(synchronous(&store).await, expected, "{durability:?}");
            store.close().await;
        }
    }
}
