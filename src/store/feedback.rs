//! The feedback tables: ranking profiles, experiments, shown lists and their impressions,
//! the daily rollups analytics read, and dismissals. Every statement names its tables and
//! columns through the entities of `entity/`, so a renamed column fails the build.
//!
//! - An impression is a row per (list, asset), so recording one twice counts once. Its
//!   outcome is two flags (clicked, completed) set at most once, so a retried event counts
//!   once too.
//! - Every count also goes to `feedback_daily` (day, asset, profile, experiment, variant) in
//!   the same transaction, only when a row or a flag actually changed. Analytics read the
//!   rollup: its size follows days x assets x variants, not traffic.
//! - Inserts that may collide use `ON CONFLICT DO NOTHING RETURNING`, so replicas writing
//!   the same list at once on PostgreSQL never count a row twice.

use std::collections::{BTreeMap, HashMap};

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Order, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TryInsertResult,
};

use super::entity::{
    dismissal, engagement, experiment, feedback_daily, feedback_four_weekly, feedback_total,
    feedback_weekly, impression, ranking_profile, served_list,
};
use super::spans::{Rollup, Tallies, Tally, bulk_add_per_period, levels, sums_per_asset};
use super::{Store, WriteTxn};
use crate::domain::{
    Attribution, EngagementKind, Experiment, JourneyEvent, ListContext, RankingProfile, Variant,
    list_key, weights_from_json, weights_to_json,
};
use crate::error::{AppError, AppResult};

const DAY: i64 = 86_400;

fn corrupt(what: &str, e: impl std::fmt::Display) -> AppError {
    AppError::internal(anyhow::anyhow!("stored {what} cannot be read: {e}"))
}

/// A count as the database stores it (saturating: no count reaches `i64::MAX`).
fn stored(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored sum as a count (a sum of no rows is `NULL`).
fn count(sum: Option<i64>) -> u64 {
    sum.map_or(0, |v| u64::try_from(v).unwrap_or(0))
}

/// One list's impressions, as a client reported them.
#[derive(Clone, Debug)]
pub struct ShownList {
    pub id: String,
    pub context: ListContext,
    /// Asset ids with their positions (1 for the first).
    pub assets: Vec<(String, u32)>,
}

/// Counts of one asset (or one variant) over a span of days.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeedbackCounts {
    pub impressions: u64,
    pub clicks: u64,
    pub completions: u64,
    pub dismissals: u64,
}

impl FeedbackCounts {
    fn add(&mut self, other: &FeedbackCounts) {
        self.impressions += other.impressions;
        self.clicks += other.clicks;
        self.completions += other.completions;
        self.dismissals += other.dismissals;
    }
}

impl std::ops::AddAssign for FeedbackCounts {
    fn add_assign(&mut self, other: FeedbackCounts) {
        self.add(&other);
    }
}

/// A logged list with what happened to its items, for replay.
#[derive(Clone, Debug)]
pub struct LoggedList {
    pub context: ListContext,
    /// (asset id, position, clicked, completed)
    pub items: Vec<(String, u32, bool, bool)>,
}

/// What a bulk load's lists add to the rollups, summed over the load until
/// [`Store::add_feedback_sums_bulk`] adds them (a day's count once, not once per batch).
#[derive(Debug, Default)]
pub struct FeedbackSums(HashMap<RollupKey, FeedbackCounts>);

impl FeedbackSums {
    /// (day, asset, profile, experiment, variant) keys held.
    pub fn keys_held(&self) -> usize {
        self.0.len()
    }
}

/// Where a count goes: the rollup's key (day, asset, profile, experiment, variant).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct RollupKey {
    day: i64,
    asset: String,
    profile: String,
    experiment: String,
    variant: String,
}

impl RollupKey {
    fn of(ctx: &ListContext, asset: &str) -> Self {
        RollupKey {
            day: ctx.at.div_euclid(DAY),
            asset: asset.to_owned(),
            profile: ctx.profile.clone(),
            experiment: ctx.experiment.clone().unwrap_or_default(),
            variant: ctx.variant.clone().unwrap_or_default(),
        }
    }
}

/// The rollups of feedback keyed by (period, asset), as a span reads them.
const FEEDBACK_DAILY: Rollup<feedback_daily::Entity, 4> = (
    feedback_daily::Entity,
    [feedback_daily::Column::Day, feedback_daily::Column::AssetId],
    [
        feedback_daily::Column::Impressions,
        feedback_daily::Column::Clicks,
        feedback_daily::Column::Completions,
        feedback_daily::Column::Dismissals,
    ],
);
const FEEDBACK_WEEKLY: Rollup<feedback_weekly::Entity, 4> = (
    feedback_weekly::Entity,
    [
        feedback_weekly::Column::Week,
        feedback_weekly::Column::AssetId,
    ],
    [
        feedback_weekly::Column::Impressions,
        feedback_weekly::Column::Clicks,
        feedback_weekly::Column::Completions,
        feedback_weekly::Column::Dismissals,
    ],
);
const FEEDBACK_FOUR_WEEKLY: Rollup<feedback_four_weekly::Entity, 4> = (
    feedback_four_weekly::Entity,
    [
        feedback_four_weekly::Column::Block,
        feedback_four_weekly::Column::AssetId,
    ],
    [
        feedback_four_weekly::Column::Impressions,
        feedback_four_weekly::Column::Clicks,
        feedback_four_weekly::Column::Completions,
        feedback_four_weekly::Column::Dismissals,
    ],
);

/// What rollup rows (per day, asset, profile, experiment and variant) add to the coarser
/// rollups: all time per (asset, profile, experiment, variant), per week and per block.
struct Summed<'a> {
    totals: BTreeMap<(&'a str, &'a str, &'a str, &'a str), FeedbackCounts>,
    weeks: Tally<'a, FeedbackCounts>,
    blocks: Tally<'a, FeedbackCounts>,
}

impl<'a> Summed<'a> {
    fn of(rows: &'a HashMap<RollupKey, FeedbackCounts>) -> Self {
        let mut totals: BTreeMap<_, FeedbackCounts> = BTreeMap::new();
        let mut days: Tally<FeedbackCounts> = Tally::new();
        for (k, c) in rows {
            totals
                .entry((
                    k.asset.as_str(),
                    k.profile.as_str(),
                    k.experiment.as_str(),
                    k.variant.as_str(),
                ))
                .or_default()
                .add(c);
            days.entry((k.day, k.asset.as_str())).or_default().add(c);
        }
        let Tallies { weeks, blocks, .. } = Tallies::of_days(days);
        Summed {
            totals,
            weeks,
            blocks,
        }
    }
}

/// A count's four numbers as bulk cells.
fn count_cells<'a>(c: &FeedbackCounts) -> [super::bulk::Cell<'a>; 4] {
    [c.impressions, c.clicks, c.completions, c.dismissals]
        .map(|n| super::bulk::Cell::Int(stored(n)))
}

/// Adds counts to the rollups: per day, per week and asset (what a span reads past its
/// first days, see `store::spans`), and all time (what analytics without a span read, whose
/// size is assets x variants whatever the days).
async fn bump(
    conn: &DatabaseTransaction,
    rows: &HashMap<RollupKey, FeedbackCounts>,
) -> AppResult<()> {
    let sums = Summed::of(rows);
    super::spans::add_per_period(conn, FEEDBACK_WEEKLY, &sums.weeks, |week, asset_id, c| {
        feedback_weekly::ActiveModel {
            week: Set(week),
            asset_id: Set(asset_id),
            impressions: Set(stored(c.impressions)),
            clicks: Set(stored(c.clicks)),
            completions: Set(stored(c.completions)),
            dismissals: Set(stored(c.dismissals)),
        }
    })
    .await?;
    super::spans::add_per_period(
        conn,
        FEEDBACK_FOUR_WEEKLY,
        &sums.blocks,
        |block, asset_id, c| feedback_four_weekly::ActiveModel {
            block: Set(block),
            asset_id: Set(asset_id),
            impressions: Set(stored(c.impressions)),
            clicks: Set(stored(c.clicks)),
            completions: Set(stored(c.completions)),
            dismissals: Set(stored(c.dismissals)),
        },
    )
    .await?;
    let rows: Vec<(&RollupKey, &FeedbackCounts)> = rows.iter().collect();
    for chunk in rows.chunks(super::ROWS_PER_STATEMENT / 10) {
        let mut models = Vec::with_capacity(chunk.len());
        for (k, c) in chunk {
            models.push(feedback_daily::ActiveModel {
                day: Set(super::spans::period(k.day)?),
                asset_id: Set(k.asset.clone()),
                profile: Set(k.profile.clone()),
                experiment: Set(k.experiment.clone()),
                variant: Set(k.variant.clone()),
                impressions: Set(stored(c.impressions)),
                clicks: Set(stored(c.clicks)),
                completions: Set(stored(c.completions)),
                dismissals: Set(stored(c.dismissals)),
            });
        }
        use feedback_daily::Column as D;
        feedback_daily::Entity::insert_many(models)
            .on_conflict(super::adding(
                feedback_daily::Entity,
                [D::Day, D::AssetId, D::Profile, D::Experiment, D::Variant],
                [D::Impressions, D::Clicks, D::Completions, D::Dismissals],
            ))
            .exec_without_returning(conn)
            .await?;
    }
    let totals: Vec<_> = sums.totals.iter().collect();
    for chunk in totals.chunks(super::ROWS_PER_STATEMENT / 10) {
        let models = chunk
            .iter()
            .map(
                |((asset, profile, experiment, variant), c)| feedback_total::ActiveModel {
                    asset_id: Set((*asset).to_owned()),
                    profile: Set((*profile).to_owned()),
                    experiment: Set((*experiment).to_owned()),
                    variant: Set((*variant).to_owned()),
                    impressions: Set(stored(c.impressions)),
                    clicks: Set(stored(c.clicks)),
                    completions: Set(stored(c.completions)),
                    dismissals: Set(stored(c.dismissals)),
                },
            );
        use feedback_total::Column as T;
        feedback_total::Entity::insert_many(models)
            .on_conflict(super::adding(
                feedback_total::Entity,
                [T::AssetId, T::Profile, T::Experiment, T::Variant],
                [T::Impressions, T::Clicks, T::Completions, T::Dismissals],
            ))
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// Stores lists' contexts, each once (the first impression or click of a list stores
/// it): `(list key, context)`.
async fn remember_lists(
    conn: &DatabaseTransaction,
    lists: &[(String, &ListContext)],
) -> AppResult<()> {
    for chunk in lists.chunks(super::ROWS_PER_STATEMENT / 7) {
        let mut models = Vec::with_capacity(chunk.len());
        for (key, ctx) in chunk {
            let context = serde_json::to_string(ctx)
                .map_err(|e| AppError::internal(anyhow::Error::from(e)))?;
            models.push(served_list::ActiveModel {
                id: Set(key.clone()),
                at: Set(ctx.at),
                account_id: Set(ctx.account.clone()),
                profile: Set(ctx.profile.clone()),
                experiment: Set(ctx.experiment.clone().unwrap_or_default()),
                variant: Set(ctx.variant.clone().unwrap_or_default()),
                context: Set(context),
            });
        }
        served_list::Entity::insert_many(models)
            .on_conflict_do_nothing_on([served_list::Column::Id])
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// An impression about to be stored: its outcome flags start unset.
struct NewImpression {
    list: String,
    asset: String,
    account: Option<String>,
    position: u32,
    at: i64,
}

/// Inserts impressions that are new; returns the (list key, asset) pairs inserted.
async fn insert_impressions(
    conn: &DatabaseTransaction,
    rows: &[NewImpression],
) -> AppResult<Vec<(String, String)>> {
    let mut inserted = Vec::new();
    for chunk in rows.chunks(super::ROWS_PER_STATEMENT / 8) {
        let models = chunk.iter().map(|r| impression::ActiveModel {
            list_id: Set(r.list.clone()),
            asset_id: Set(r.asset.clone()),
            account_id: Set(r.account.clone()),
            position: Set(i32::try_from(r.position).unwrap_or(i32::MAX)),
            at: Set(r.at),
            clicked: Set(false),
            completed: Set(false),
        });
        let result = impression::Entity::insert_many(models)
            .on_conflict_do_nothing_on([
                impression::Column::ListId,
                impression::Column::AssetId,
                impression::Column::At,
            ])
            .exec_with_returning_keys(conn)
            .await?;
        if let TryInsertResult::Inserted(keys) = result {
            inserted.extend(keys);
        }
    }
    Ok(inserted)
}

/// Sets an outcome flag of one impression if it is unset; true when it was.
async fn flag(
    conn: &DatabaseTransaction,
    (list, asset, at): (&str, &str, i64),
    column: impression::Column,
) -> AppResult<bool> {
    let done = impression::Entity::update_many()
        .col_expr(column, Expr::value(true))
        .filter(impression::Column::ListId.eq(list))
        .filter(impression::Column::AssetId.eq(asset))
        .filter(impression::Column::At.eq(at))
        .filter(column.eq(false))
        .exec(conn)
        .await?;
    Ok(done.rows_affected > 0)
}

/// Ties an event to its list: the item counts as shown (if its impression was not
/// recorded yet), as clicked, and as completed for `COMPLETE`, each at most once.
pub(super) async fn attribute(
    txn: &WriteTxn,
    a: &Attribution,
    asset: &str,
    kind: EngagementKind,
) -> AppResult<FeedbackCounts> {
    let conn = txn.conn();
    let key = list_key(&a.recommendation_id);
    remember_lists(conn, &[(key.clone(), &a.context)]).await?;
    let shown = insert_impressions(
        conn,
        &[NewImpression {
            list: key.clone(),
            asset: asset.to_owned(),
            account: a.context.account.clone(),
            position: a.position.unwrap_or(0),
            at: a.context.at,
        }],
    )
    .await?;
    let counts = FeedbackCounts {
        impressions: shown.len() as u64,
        clicks: u64::from(
            flag(
                conn,
                (&key, asset, a.context.at),
                impression::Column::Clicked,
            )
            .await?,
        ),
        completions: if kind == EngagementKind::Complete {
            u64::from(
                flag(
                    conn,
                    (&key, asset, a.context.at),
                    impression::Column::Completed,
                )
                .await?,
            )
        } else {
            0
        },
        dismissals: 0,
    };
    if counts != FeedbackCounts::default() {
        bump(
            conn,
            &HashMap::from([(RollupKey::of(&a.context, asset), counts.clone())]),
        )
        .await?;
    }
    Ok(counts)
}

/// What [`bump`] writes, through a bulk transaction: the same rollups, each count added
/// to the stored one.
async fn bulk_rollups(
    bulk: &mut super::bulk::Bulk,
    rows: &HashMap<RollupKey, FeedbackCounts>,
) -> AppResult<()> {
    use super::bulk::{Cell, OnKey};
    use sea_orm::{EntityName, IdenStatic};
    // In key order: a B-tree takes ordered rows several times faster.
    let mut ordered: Vec<_> = rows.iter().collect();
    ordered.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut daily = Vec::with_capacity(rows.len() * 9);
    for (k, c) in ordered {
        daily.extend([
            Cell::Int(k.day),
            Cell::Text(&k.asset),
            Cell::Text(&k.profile),
            Cell::Text(&k.experiment),
            Cell::Text(&k.variant),
        ]);
        daily.extend(count_cells(c));
    }
    let summed = Summed::of(rows);
    bulk_add_per_period(bulk, FEEDBACK_WEEKLY, &summed.weeks, count_cells).await?;
    bulk_add_per_period(bulk, FEEDBACK_FOUR_WEEKLY, &summed.blocks, count_cells).await?;
    let mut total = Vec::with_capacity(summed.totals.len() * 8);
    for ((asset, profile, experiment, variant), c) in &summed.totals {
        total.extend([asset, profile, experiment, variant].map(|v| Cell::Text(v)));
        total.extend(count_cells(c));
    }
    use feedback_daily::Column as D;
    use feedback_total::Column as T;
    // Every rollup names its four counts alike.
    let sums = FEEDBACK_DAILY.2.map(|c| c.as_str());
    let daily_keys = [D::Day, D::AssetId, D::Profile, D::Experiment, D::Variant];
    let total_keys = [T::AssetId, T::Profile, T::Experiment, T::Variant];
    for (table, keys, cells) in [
        (
            feedback_daily::Entity.table_name(),
            daily_keys.map(|c| c.as_str()).to_vec(),
            &daily,
        ),
        (
            feedback_total::Entity.table_name(),
            total_keys.map(|c| c.as_str()).to_vec(),
            &total,
        ),
    ] {
        bulk.write(
            table,
            &[&keys[..], &sums[..]].concat(),
            cells,
            OnKey::Add {
                keys: &keys,
                sums: &sums,
            },
        )
        .await?;
    }
    Ok(())
}

/// Deletes what the feedback tables hold of one account (its rollup counts stay: they
/// name no one).
pub(super) async fn erase_account(txn: &WriteTxn, account: &str) -> AppResult<()> {
    let conn = txn.conn();
    impression::Entity::delete_many()
        .filter(impression::Column::AccountId.eq(account))
        .exec(conn)
        .await?;
    served_list::Entity::delete_many()
        .filter(served_list::Column::AccountId.eq(account))
        .exec(conn)
        .await?;
    dismissal::Entity::delete_many()
        .filter(dismissal::Column::AccountId.eq(account))
        .exec(conn)
        .await?;
    Ok(())
}

impl Store {
    /// Records shown lists: each impression once, in one transaction. Returns the
    /// (list key, asset) pairs that were new.
    pub async fn record_impressions(
        &self,
        lists: &[ShownList],
    ) -> AppResult<Vec<(String, String)>> {
        if lists.is_empty() {
            return Ok(Vec::new());
        }
        let keyed: Vec<(String, &ListContext)> = lists
            .iter()
            .map(|list| (list_key(&list.id), &list.context))
            .collect();
        let mut rows = Vec::new();
        for (list, (key, _)) in lists.iter().zip(&keyed) {
            for (asset, position) in &list.assets {
                rows.push(NewImpression {
                    list: key.clone(),
                    asset: asset.clone(),
                    account: list.context.account.clone(),
                    position: *position,
                    at: list.context.at,
                });
            }
        }
        let txn = self.begin_txn().await?;
        let conn = txn.conn();
        remember_lists(conn, &keyed).await?;
        let inserted = insert_impressions(conn, &rows).await?;
        let contexts: HashMap<&str, &ListContext> =
            keyed.iter().map(|(k, c)| (k.as_str(), *c)).collect();
        let mut rollup: HashMap<RollupKey, FeedbackCounts> = HashMap::new();
        for (key, asset) in &inserted {
            if let Some(ctx) = contexts.get(key.as_str()) {
                rollup
                    .entry(RollupKey::of(ctx, asset))
                    .or_default()
                    .impressions += 1;
            }
        }
        bump(conn, &rollup).await?;
        txn.commit().await?;
        Ok(inserted)
    }

    /// Writes logged lists and their impressions with their outcomes in one transaction,
    /// through the bulk path (`store::bulk`): a bulk load (`stagefit generate-feedback`) of
    /// new lists, `(id, list)` each; a list already stored fails the load. What they add to
    /// the rollups goes into `sums`, for [`Store::add_feedback_sums_bulk`]. Returns what
    /// the lists added.
    pub async fn insert_lists_bulk(
        &self,
        lists: &[(String, LoggedList)],
        sums: &mut FeedbackSums,
    ) -> AppResult<FeedbackCounts> {
        use super::bulk::{Cell, OnKey};
        use sea_orm::{EntityName, IdenStatic};
        let mut keyed = Vec::with_capacity(lists.len());
        for (id, list) in lists {
            let context = serde_json::to_string(&list.context)
                .map_err(|e| AppError::internal(anyhow::Error::from(e)))?;
            keyed.push((list_key(id), context, list));
        }
        let mut served = Vec::with_capacity(keyed.len() * 7);
        let mut shown = Vec::new();
        let mut added = FeedbackCounts::default();
        for (key, context, list) in &keyed {
            let ctx = &list.context;
            served.extend([
                Cell::Text(key),
                Cell::Int(ctx.at),
                ctx.account.as_deref().into(),
                Cell::Text(&ctx.profile),
                Cell::Text(ctx.experiment.as_deref().unwrap_or_default()),
                Cell::Text(ctx.variant.as_deref().unwrap_or_default()),
                Cell::Text(context),
            ]);
            for (asset, position, clicked, completed) in &list.items {
                shown.extend([
                    Cell::Text(key),
                    Cell::Text(asset),
                    ctx.account.as_deref().into(),
                    Cell::Int(i64::from(*position)),
                    Cell::Int(ctx.at),
                    Cell::Bool(*clicked),
                    Cell::Bool(*completed),
                ]);
                let counts = FeedbackCounts {
                    impressions: 1,
                    clicks: u64::from(*clicked),
                    completions: u64::from(*completed),
                    dismissals: 0,
                };
                added.add(&counts);
                sums.0
                    .entry(RollupKey::of(ctx, asset))
                    .or_default()
                    .add(&counts);
            }
        }
        let mut bulk = self.bulk().await?;
        {
            use served_list::Column as S;
            let columns = [
                S::Id,
                S::At,
                S::AccountId,
                S::Profile,
                S::Experiment,
                S::Variant,
                S::Context,
            ]
            .map(|c| c.as_str());
            bulk.write(
                served_list::Entity.table_name(),
                &columns,
                &served,
                OnKey::Fail,
            )
            .await?;
            use impression::Column as I;
            let columns = [
                I::ListId,
                I::AssetId,
                I::AccountId,
                I::Position,
                I::At,
                I::Clicked,
                I::Completed,
            ]
            .map(|c| c.as_str());
            bulk.write(
                impression::Entity.table_name(),
                &columns,
                &shown,
                OnKey::Fail,
            )
            .await?;
        }
        bulk.commit().await?;
        Ok(added)
    }

    /// Adds a bulk load's summed feedback to every rollup level in one transaction through
    /// the bulk path, and empties `sums`.
    pub async fn add_feedback_sums_bulk(&self, sums: &mut FeedbackSums) -> AppResult<()> {
        let mut bulk = self.bulk().await?;
        bulk_rollups(&mut bulk, &sums.0).await?;
        bulk.commit().await?;
        sums.0.clear();
        Ok(())
    }

    /// Ties events to their lists in one transaction (what `attribute` does per event: a
    /// visitor's click on an anonymous list, bulk loads such as `stagefit
    /// generate-feedback`). Returns what the events added (a repeated one adds nothing).
    pub async fn attribute_many(
        &self,
        events: &[(Attribution, String, EngagementKind)],
    ) -> AppResult<FeedbackCounts> {
        let txn = self.begin_txn().await?;
        let mut added = FeedbackCounts::default();
        for (a, asset, kind) in events {
            added.add(&attribute(&txn, a, asset, *kind).await?);
        }
        txn.commit().await?;
        Ok(added)
    }

    /// Never recommend `asset` to `account` again. False when it already was dismissed.
    pub async fn dismiss(&self, account: &str, asset: &str, at: i64) -> AppResult<bool> {
        let txn = self.begin_txn().await?;
        let result = dismissal::Entity::insert(dismissal::ActiveModel {
            account_id: Set(account.to_owned()),
            asset_id: Set(asset.to_owned()),
            at: Set(at),
        })
        .on_conflict_do_nothing_on([dismissal::Column::AccountId, dismissal::Column::AssetId])
        .exec_without_returning(txn.conn())
        .await?;
        let new = matches!(result, TryInsertResult::Inserted(n) if n > 0);
        if new {
            let key = RollupKey {
                day: at.div_euclid(DAY),
                asset: asset.to_owned(),
                profile: String::new(),
                experiment: String::new(),
                variant: String::new(),
            };
            let counts = FeedbackCounts {
                dismissals: 1,
                ..Default::default()
            };
            bump(txn.conn(), &HashMap::from([(key, counts)])).await?;
        }
        txn.commit().await?;
        Ok(new)
    }

    /// The assets an account dismissed.
    pub async fn dismissed(&self, account: &str) -> AppResult<Vec<String>> {
        Ok(dismissal::Entity::find()
            .select_only()
            .column(dismissal::Column::AssetId)
            .filter(dismissal::Column::AccountId.eq(account))
            .order_by_asc(dismissal::Column::AssetId)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// Counts per asset from day `since_day` (Unix days) on; all time when `None`.
    pub async fn feedback_by_asset(
        &self,
        since_day: Option<i64>,
    ) -> AppResult<HashMap<String, FeedbackCounts>> {
        let rows: Vec<SummedRow> = match since_day {
            None => {
                use feedback_total::Column as T;
                summed(
                    feedback_total::Entity::find(),
                    T::AssetId,
                    [T::Impressions, T::Clicks, T::Completions, T::Dismissals],
                )
                .all(&self.db)
                .await?
            }
            Some(day) => {
                let span =
                    levels(day).span(FEEDBACK_DAILY, FEEDBACK_WEEKLY, FEEDBACK_FOUR_WEEKLY)?;
                sums_per_asset(&self.db, span)
                    .await?
                    .into_iter()
                    .map(|(asset, [i, c, co, d])| (asset, Some(i), Some(c), Some(co), Some(d)))
                    .collect()
            }
        };
        let mut out: HashMap<String, FeedbackCounts> = HashMap::new();
        for (asset, counts) in rows.into_iter().map(counts_row) {
            out.entry(asset).or_default().add(&counts);
        }
        Ok(out)
    }

    /// Counts per variant of an experiment, all time.
    pub async fn feedback_by_variant(
        &self,
        experiment: &str,
    ) -> AppResult<HashMap<String, FeedbackCounts>> {
        use feedback_total::Column as T;
        let rows = summed(
            feedback_total::Entity::find().filter(T::Experiment.eq(experiment)),
            T::Variant,
            [T::Impressions, T::Clicks, T::Completions, T::Dismissals],
        )
        .all(&self.db)
        .await?;
        Ok(rows.into_iter().map(counts_row).collect())
    }

    /// Lists shown since `since` (Unix seconds) in which something was clicked or
    /// completed, with all their recorded items, oldest first.
    pub async fn logged_lists(&self, since: i64) -> AppResult<Vec<LoggedList>> {
        use impression::Column as I;
        use served_list::Column as S;
        let (list, shown) = (served_list::Entity, impression::Entity);
        let clicked = Query::select()
            .column(I::ListId)
            .from(shown)
            .and_where(Expr::col(I::Clicked).eq(true))
            .to_owned();
        let select = Query::select()
            .column((list, S::Id))
            .column((list, S::Context))
            .column((shown, I::AssetId))
            .column((shown, I::Position))
            .column((shown, I::Clicked))
            .column((shown, I::Completed))
            .from(list)
            .inner_join(shown, Expr::col((shown, I::ListId)).equals((list, S::Id)))
            .and_where(Expr::col((list, S::At)).gte(since))
            .and_where(Expr::col((list, S::Id)).in_subquery(clicked))
            .order_by((list, S::At), Order::Asc)
            .order_by((list, S::Id), Order::Asc)
            .order_by((shown, I::Position), Order::Asc)
            .to_owned();
        let rows = self.db.query_all(&select).await?;
        let mut out: Vec<(String, LoggedList)> = Vec::new();
        for r in rows {
            let id: String = r.try_get_by_index(0)?;
            if out.last().is_none_or(|(last, _)| *last != id) {
                let raw: String = r.try_get_by_index(1)?;
                let context: ListContext =
                    serde_json::from_str(&raw).map_err(|e| corrupt("served_list.context", e))?;
                out.push((
                    id,
                    LoggedList {
                        context,
                        items: Vec::new(),
                    },
                ));
            }
            let position: i32 = r.try_get_by_index(3)?;
            if let Some((_, list)) = out.last_mut() {
                list.items.push((
                    r.try_get_by_index(2)?,
                    u32::try_from(position).unwrap_or(0),
                    r.try_get_by_index(4)?,
                    r.try_get_by_index(5)?,
                ));
            }
        }
        Ok(out.into_iter().map(|(_, l)| l).collect())
    }

    pub async fn ranking_profiles(&self) -> AppResult<Vec<RankingProfile>> {
        ranking_profile::Entity::find()
            .order_by_asc(ranking_profile::Column::Name)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|p| {
                Ok(RankingProfile {
                    weights: weights_from_json(&p.weights)
                        .map_err(|e| corrupt("ranking_profile.weights", e))?,
                    name: p.name,
                    description: p.description,
                    updated_at: p.updated_at,
                })
            })
            .collect()
    }

    pub async fn upsert_ranking_profile(&self, p: &RankingProfile) -> AppResult<()> {
        use ranking_profile::Column as P;
        let txn = self.begin_txn().await?;
        ranking_profile::Entity::insert(ranking_profile::ActiveModel {
            name: Set(p.name.clone()),
            weights: Set(weights_to_json(&p.weights)),
            description: Set(p.description.clone()),
            updated_at: Set(p.updated_at),
        })
        .on_conflict(
            OnConflict::column(P::Name)
                .update_columns([P::Weights, P::Description, P::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(txn.conn())
        .await?;
        txn.commit().await
    }

    pub async fn experiments(&self) -> AppResult<Vec<Experiment>> {
        experiment::Entity::find()
            .order_by_asc(experiment::Column::StartedAt)
            .order_by_asc(experiment::Column::Name)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|e| {
                let variants: Vec<Variant> = serde_json::from_str(&e.variants)
                    .map_err(|err| corrupt("experiment.variants", err))?;
                Ok(Experiment {
                    name: e.name,
                    placement: e.placement,
                    variants,
                    started_at: e.started_at,
                    stopped_at: e.stopped_at,
                })
            })
            .collect()
    }

    /// Stores a new experiment; false when one of that name exists (running or stopped).
    pub async fn insert_experiment(&self, e: &Experiment) -> AppResult<bool> {
        let variants = serde_json::to_string(&e.variants)
            .map_err(|e| AppError::internal(anyhow::Error::from(e)))?;
        let txn = self.begin_txn().await?;
        let result = experiment::Entity::insert(experiment::ActiveModel {
            name: Set(e.name.clone()),
            placement: Set(e.placement.clone()),
            variants: Set(variants),
            started_at: Set(e.started_at),
            stopped_at: Set(e.stopped_at),
        })
        .on_conflict_do_nothing_on([experiment::Column::Name])
        .exec_without_returning(txn.conn())
        .await?;
        txn.commit().await?;
        Ok(matches!(result, TryInsertResult::Inserted(n) if n > 0))
    }

    /// Marks a running experiment stopped at `at`; false when none of that name runs.
    pub async fn stop_experiment(&self, name: &str, at: i64) -> AppResult<bool> {
        let txn = self.begin_txn().await?;
        let done = experiment::Entity::update_many()
            .col_expr(experiment::Column::StoppedAt, Expr::value(at))
            .filter(experiment::Column::Name.eq(name))
            .filter(experiment::Column::StoppedAt.is_null())
            .exec(txn.conn())
            .await?;
        txn.commit().await?;
        Ok(done.rows_affected > 0)
    }

    /// The newest `limit` events recorded from `since` on (Unix seconds), in the order they
    /// were recorded: what "moved forward" is computed from.
    pub async fn journey_events(&self, since: i64, limit: u64) -> AppResult<Vec<JourneyEvent>> {
        use engagement::Column as E;
        let mut events: Vec<JourneyEvent> = engagement::Entity::find()
            .select_only()
            .columns([E::AccountId, E::AssetId, E::OccurredAt, E::Cohort])
            .filter(E::OccurredAt.gte(since))
            .order_by_desc(E::Id)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        events.reverse();
        Ok(events)
    }
}

type SummedRow = (String, Option<i64>, Option<i64>, Option<i64>, Option<i64>);

/// `key` and the sums of the four counts, per `key` (cast to BIGINT: PostgreSQL sums
/// BIGINTs as NUMERIC).
fn summed<E: EntityTrait>(
    select: sea_orm::Select<E>,
    key: E::Column,
    counts: [E::Column; 4],
) -> sea_orm::Selector<sea_orm::SelectGetableTuple<SummedRow>> {
    let mut select = select.select_only().column(key);
    for (i, c) in counts.into_iter().enumerate() {
        select = select.column_as(Expr::col(c).sum().cast_as("BIGINT"), format!("n{i}"));
    }
    select.group_by(key).into_tuple()
}

fn counts_row(
    (key, impressions, clicks, completions, dismissals): SummedRow,
) -> (String, FeedbackCounts) {
    (
        key,
        FeedbackCounts {
            impressions: count(impressions),
            clicks: count(clicks),
            completions: count(completions),
            dismissals: count(dismissals),
        },
    )
}
