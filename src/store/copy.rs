//! Copying a whole database to another (`stagefit copy-data`): SQLite to PostgreSQL when an
//! install outgrows one machine, or any other pair. Every table, in an order that keeps
//! foreign keys satisfied, in one transaction on the target; the index is not copied
//! (servers on the target rebuild theirs).

use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DbBackend, EntityTrait, IntoActiveModel, Iterable,
    PaginatorTrait, PrimaryKeyToColumn, QueryOrder, Statement,
};

use super::Store;
use super::entity::{
    account, api_key, asset, asset_embedding, asset_tag, audit_event, change_log, co_read, contact,
    dismissal, engagement, engagement_daily, engagement_four_weekly, engagement_key,
    engagement_weekly, experiment, feedback_daily, feedback_four_weekly, feedback_total,
    feedback_weekly, impression, industry, popularity_cohort, popularity_count, popularity_share,
    ranking_profile, safelisted_operation, served_list, server_secret, share_link, stage_change,
    stage_mapping, synonym_group, webhook, webhook_attempt, webhook_delivery,
};
use crate::error::{AppError, AppResult};

/// Rows read from the source at a time.
const PAGE: u64 = 5_000;
/// Bind parameters one statement may carry on both backends (SQLite allows 32,766).
const PARAMETERS: usize = 30_000;

/// Rows copied, per table, in copy order.
pub type CopyCounts = Vec<(&'static str, u64)>;

async fn copy_table<E>(
    from: &Store,
    to: &impl ConnectionTrait,
    name: &'static str,
    counts: &mut CopyCounts,
) -> AppResult<()>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let columns = E::Column::iter().count().max(1);
    let per_statement = (PARAMETERS / columns).max(1);
    let mut query = E::find();
    for key in E::PrimaryKey::iter() {
        query = query.order_by_asc(key.into_column());
    }
    let mut pages = query.paginate(&from.db, PAGE);
    let mut copied = 0u64;
    while let Some(rows) = pages.fetch_and_next().await? {
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<E::ActiveModel> = rows
                .by_ref()
                .take(per_statement)
                .map(IntoActiveModel::into_active_model)
                .collect();
            copied += chunk.len() as u64;
            E::insert_many(chunk).exec_without_returning(to).await?;
        }
    }
    counts.push((name, copied));
    Ok(())
}

/// Tables in copy order (parents first); deleted in the reverse order.
const TABLES: &[&str] = &[
    "industry",
    "asset",
    "asset_tag",
    "change_log",
    "account",
    "contact",
    "engagement",
    "engagement_key",
    "engagement_daily",
    "engagement_weekly",
    "engagement_four_weekly",
    "popularity_share",
    "popularity_count",
    "popularity_cohort",
    "co_read",
    "api_key",
    "audit_event",
    "safelisted_operation",
    "ranking_profile",
    "experiment",
    "served_list",
    "impression",
    "feedback_daily",
    "feedback_total",
    "feedback_weekly",
    "feedback_four_weekly",
    "dismissal",
    "server_secret",
    "synonym_group",
    "asset_embedding",
    "share_link",
    "stage_change",
    "stage_mapping",
    "webhook",
    "webhook_delivery",
    "webhook_attempt",
];

/// Tables whose integer key the database numbers; PostgreSQL's sequences must be moved past
/// the copied rows.
const NUMBERED: &[(&str, &str)] = &[
    ("change_log", "seq"),
    ("engagement", "id"),
    ("audit_event", "id"),
    ("stage_change", "id"),
    ("webhook_delivery", "id"),
    ("webhook_attempt", "id"),
];

impl Store {
    /// Whether the database holds anything worth keeping: assets, accounts, events or keys.
    pub async fn holds_data(&self) -> AppResult<bool> {
        Ok(asset::Entity::find().count(&self.db).await? > 0
            || account::Entity::find().count(&self.db).await? > 0
            || engagement::Entity::find().count(&self.db).await? > 0
            || api_key::Entity::find().count(&self.db).await? > 0)
    }

    /// Copies every row of `from` into this database, in one transaction: all or nothing.
    /// With `replace`, what this database held is deleted first (in the same transaction);
    /// without it, a database that holds data is refused.
    pub async fn copy_from(&self, from: &Store, replace: bool) -> AppResult<CopyCounts> {
        if !replace && self.holds_data().await? {
            return Err(AppError::bad_input(
                "the target database is not empty; pass --replace to overwrite it",
            ));
        }
        let txn = self.begin_txn().await?;
        let conn = txn.conn();
        let backend = conn.get_database_backend();
        for table in TABLES.iter().rev() {
            conn.execute_raw(Statement::from_string(
                backend,
                format!("DELETE FROM {table}"),
            ))
            .await?;
        }
        let mut counts = CopyCounts::new();
        copy_table::<industry::Entity>(from, conn, "industry", &mut counts).await?;
        copy_table::<asset::Entity>(from, conn, "asset", &mut counts).await?;
        copy_table::<asset_tag::Entity>(from, conn, "asset_tag", &mut counts).await?;
        copy_table::<change_log::Entity>(from, conn, "change_log", &mut counts).await?;
        copy_table::<account::Entity>(from, conn, "account", &mut counts).await?;
        copy_table::<contact::Entity>(from, conn, "contact", &mut counts).await?;
        copy_table::<engagement::Entity>(from, conn, "engagement", &mut counts).await?;
        copy_table::<engagement_key::Entity>(from, conn, "engagement_key", &mut counts).await?;
        copy_table::<engagement_daily::Entity>(from, conn, "engagement_daily", &mut counts).await?;
        copy_table::<engagement_weekly::Entity>(from, conn, "engagement_weekly", &mut counts)
            .await?;
        copy_table::<engagement_four_weekly::Entity>(
            from,
            conn,
            "engagement_four_weekly",
            &mut counts,
        )
        .await?;
        // The counters move as they are: no rebuild from events (which retention may have
        // thinned) after a move.
        copy_table::<popularity_share::Entity>(from, conn, "popularity_share", &mut counts).await?;
        copy_table::<popularity_count::Entity>(from, conn, "popularity_count", &mut counts).await?;
        copy_table::<popularity_cohort::Entity>(from, conn, "popularity_cohort", &mut counts)
            .await?;
        copy_table::<co_read::Entity>(from, conn, "co_read", &mut counts).await?;
        copy_table::<api_key::Entity>(from, conn, "api_key", &mut counts).await?;
        copy_table::<audit_event::Entity>(from, conn, "audit_event", &mut counts).await?;
        copy_table::<safelisted_operation::Entity>(from, conn, "safelisted_operation", &mut counts)
            .await?;
        copy_table::<ranking_profile::Entity>(from, conn, "ranking_profile", &mut counts).await?;
        copy_table::<experiment::Entity>(from, conn, "experiment", &mut counts).await?;
        copy_table::<served_list::Entity>(from, conn, "served_list", &mut counts).await?;
        copy_table::<impression::Entity>(from, conn, "impression", &mut counts).await?;
        copy_table::<feedback_daily::Entity>(from, conn, "feedback_daily", &mut counts).await?;
        copy_table::<feedback_total::Entity>(from, conn, "feedback_total", &mut counts).await?;
        copy_table::<feedback_weekly::Entity>(from, conn, "feedback_weekly", &mut counts).await?;
        copy_table::<feedback_four_weekly::Entity>(from, conn, "feedback_four_weekly", &mut counts)
            .await?;
        copy_table::<dismissal::Entity>(from, conn, "dismissal", &mut counts).await?;
        // Recommendation ids given out before the move still open after it.
        copy_table::<server_secret::Entity>(from, conn, "server_secret", &mut counts).await?;
        copy_table::<synonym_group::Entity>(from, conn, "synonym_group", &mut counts).await?;
        // Vectors move with the library: the model need not run again.
        copy_table::<asset_embedding::Entity>(from, conn, "asset_embedding", &mut counts).await?;
        // Links sent before the move still open after it.
        copy_table::<share_link::Entity>(from, conn, "share_link", &mut counts).await?;
        copy_table::<stage_change::Entity>(from, conn, "stage_change", &mut counts).await?;
        copy_table::<stage_mapping::Entity>(from, conn, "stage_mapping", &mut counts).await?;
        // Webhooks with what they still owe: deliveries pending at the move go out after it.
        copy_table::<webhook::Entity>(from, conn, "webhook", &mut counts).await?;
        copy_table::<webhook_delivery::Entity>(from, conn, "webhook_delivery", &mut counts).await?;
        copy_table::<webhook_attempt::Entity>(from, conn, "webhook_attempt", &mut counts).await?;
        if backend == DbBackend::Postgres {
            for (table, column) in NUMBERED {
                conn.execute_raw(Statement::from_string(
                    backend,
                    format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), \
                         COALESCE((SELECT MAX({column}) FROM {table}), 1), \
                         (SELECT MAX({column}) FROM {table}) IS NOT NULL)"
                    ),
                ))
                .await?;
            }
        }
        txn.commit().await?;
        Ok(counts)
    }
}
