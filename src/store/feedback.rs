//! The feedback tables: ranking profiles, experiments, shown lists and their impressions,
//! the daily rollups analytics read, and dismissals.
//!
//! - An impression is a row per (list, asset), so recording one twice counts once. Its
//!   outcome is two flags (clicked, completed) set at most once, so a retried event counts
//!   once too.
//! - Every count also goes to `feedback_daily` (day, asset, profile, experiment, variant) in
//!   the same transaction, only when a row or a flag actually changed. Analytics read the
//!   rollup: its size follows days x assets x variants, not traffic.
//! - Inserts that may collide use `ON CONFLICT DO NOTHING RETURNING`, so replicas writing
//!   the same list at once on PostgreSQL never count a row twice.

use std::collections::HashMap;

use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction};

use super::{Store, WriteTxn};
use crate::domain::{
    Attribution, EngagementKind, Experiment, ListContext, RankingProfile, Variant, list_key,
    weights_from_json, weights_to_json,
};
use crate::error::{AppError, AppResult};

const DAY: i64 = 86_400;

fn t(name: &str) -> Alias {
    Alias::new(name)
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> AppError {
    AppError::internal(anyhow::anyhow!("stored {what} cannot be read: {e}"))
}

/// One list's impressions, as a client reported them.
#[derive(Clone, Debug)]
pub struct ShownList {
    pub id: String,
    pub context: ListContext,
    /// Asset ids with their positions (1 for the first).
    pub assets: Vec<(String, u32)>,
    pub at: i64,
}

/// Counts of one asset (or one variant) over a span of days.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeedbackCounts {
    pub impressions: u64,
    pub clicks: u64,
    pub completions: u64,
    pub dismissals: u64,
}

/// A logged list with what happened to its items, for replay.
#[derive(Clone, Debug)]
pub struct LoggedList {
    pub context: ListContext,
    /// (asset id, position, clicked, completed)
    pub items: Vec<(String, u32, bool, bool)>,
}

/// The rollup key of a list's counts.
fn rollup_key(ctx: &ListContext, asset: &str) -> (i64, String, String, String, String) {
    (
        ctx.at.div_euclid(DAY),
        asset.to_owned(),
        ctx.profile.clone(),
        ctx.experiment.clone().unwrap_or_default(),
        ctx.variant.clone().unwrap_or_default(),
    )
}

type RollupKey = (i64, String, String, String, String);

/// Adds counts to the rollups: per day, and all time (what analytics without a span read,
/// whose size is assets x variants whatever the days).
async fn bump(
    conn: &DatabaseTransaction,
    rows: &HashMap<RollupKey, FeedbackCounts>,
) -> AppResult<()> {
    let mut totals: HashMap<(&str, &str, &str, &str), FeedbackCounts> = HashMap::new();
    for ((_, asset, profile, experiment, variant), c) in rows {
        let t = totals
            .entry((
                asset.as_str(),
                profile.as_str(),
                experiment.as_str(),
                variant.as_str(),
            ))
            .or_default();
        t.impressions += c.impressions;
        t.clicks += c.clicks;
        t.completions += c.completions;
        t.dismissals += c.dismissals;
    }
    let daily: Vec<(Vec<sea_orm::Value>, &FeedbackCounts)> = rows
        .iter()
        .map(|((day, asset, profile, experiment, variant), c)| {
            (
                vec![
                    (*day).into(),
                    asset.clone().into(),
                    profile.clone().into(),
                    experiment.clone().into(),
                    variant.clone().into(),
                ],
                c,
            )
        })
        .collect();
    add_counts(
        conn,
        "feedback_daily",
        &["day", "asset_id", "profile", "experiment", "variant"],
        &daily,
    )
    .await?;
    let total: Vec<(Vec<sea_orm::Value>, &FeedbackCounts)> = totals
        .iter()
        .map(|((asset, profile, experiment, variant), c)| {
            (
                vec![
                    (*asset).into(),
                    (*profile).into(),
                    (*experiment).into(),
                    (*variant).into(),
                ],
                c,
            )
        })
        .collect();
    add_counts(
        conn,
        "feedback_total",
        &["asset_id", "profile", "experiment", "variant"],
        &total,
    )
    .await
}

async fn add_counts(
    conn: &DatabaseTransaction,
    table: &str,
    keys: &[&str],
    rows: &[(Vec<sea_orm::Value>, &FeedbackCounts)],
) -> AppResult<()> {
    const COUNTS: [&str; 4] = ["impressions", "clicks", "completions", "dismissals"];
    for chunk in rows.chunks(super::ROWS_PER_STATEMENT / 10) {
        let mut insert = Query::insert();
        insert
            .into_table(t(table))
            .columns(keys.iter().chain(COUNTS.iter()).map(|c| t(c)))
            .on_conflict(
                OnConflict::columns(keys.iter().map(|c| t(c)))
                    .values(
                        COUNTS
                            .iter()
                            .map(|c| (t(c), Expr::cust(format!("{table}.{c} + excluded.{c}")))),
                    )
                    .to_owned(),
            );
        for (key, c) in chunk {
            let mut values: Vec<sea_orm::sea_query::SimpleExpr> =
                key.iter().cloned().map(Into::into).collect();
            for n in [c.impressions, c.clicks, c.completions, c.dismissals] {
                values.push((n as i64).into());
            }
            insert.values_panic(values);
        }
        conn.execute(&insert).await?;
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
        let mut insert = Query::insert();
        insert
            .into_table(t("served_list"))
            .columns(
                [
                    "id",
                    "at",
                    "account_id",
                    "profile",
                    "experiment",
                    "variant",
                    "context",
                ]
                .map(t),
            )
            .on_conflict(OnConflict::column(t("id")).do_nothing().to_owned());
        for (key, ctx) in chunk {
            let context = serde_json::to_string(ctx)
                .map_err(|e| AppError::internal(anyhow::Error::from(e)))?;
            insert.values_panic([
                key.clone().into(),
                ctx.at.into(),
                ctx.account.clone().into(),
                ctx.profile.clone().into(),
                ctx.experiment.clone().unwrap_or_default().into(),
                ctx.variant.clone().unwrap_or_default().into(),
                context.into(),
            ]);
        }
        conn.execute(&insert).await?;
    }
    Ok(())
}

/// An impression row: list key, asset, account, position, time. Its outcome flags start
/// unset.
type ImpressionRow = (String, String, Option<String>, u32, i64);

/// Inserts impressions that are new; returns the (list key, asset) pairs inserted.
async fn insert_impressions(
    conn: &DatabaseTransaction,
    rows: &[ImpressionRow],
) -> AppResult<Vec<(String, String)>> {
    let mut inserted = Vec::new();
    for chunk in rows.chunks(super::ROWS_PER_STATEMENT / 8) {
        let mut insert = Query::insert();
        insert
            .into_table(t("impression"))
            .columns(
                [
                    "list_id",
                    "asset_id",
                    "account_id",
                    "position",
                    "at",
                    "clicked",
                    "completed",
                ]
                .map(t),
            )
            .on_conflict(
                OnConflict::columns([t("list_id"), t("asset_id")])
                    .do_nothing()
                    .to_owned(),
            )
            .returning(Query::returning().columns([t("list_id"), t("asset_id")]));
        for (list, asset, account, position, at) in chunk {
            insert.values_panic([
                list.clone().into(),
                asset.clone().into(),
                account.clone().into(),
                i64::from(*position).into(),
                (*at).into(),
                false.into(),
                false.into(),
            ]);
        }
        for row in conn.query_all(&insert).await? {
            inserted.push((
                row.try_get_by_index::<String>(0)?,
                row.try_get_by_index::<String>(1)?,
            ));
        }
    }
    Ok(inserted)
}

/// Ties an event to its list: the item counts as shown (if its impression was not
/// recorded yet), as clicked, and as completed for `COMPLETE`, each at most once.
pub(super) async fn attribute(
    txn: &WriteTxn,
    a: &Attribution,
    asset: &str,
    kind: EngagementKind,
    at: i64,
) -> AppResult<()> {
    let conn = txn.conn();
    let key = list_key(&a.recommendation_id);
    remember_lists(conn, &[(key.clone(), &a.context)]).await?;
    let mut counts = FeedbackCounts::default();
    let shown = insert_impressions(
        conn,
        &[(
            key.clone(),
            asset.to_owned(),
            a.context.account.clone(),
            a.position.unwrap_or(0),
            at,
        )],
    )
    .await?;
    counts.impressions = shown.len() as u64;
    let flag = |column: &'static str| {
        let mut update = Query::update();
        update
            .table(t("impression"))
            .value(t(column), true)
            .and_where(Expr::col(t("list_id")).eq(key.clone()))
            .and_where(Expr::col(t("asset_id")).eq(asset))
            .and_where(Expr::col(t(column)).eq(false));
        update
    };
    counts.clicks = conn.execute(&flag("clicked")).await?.rows_affected();
    if kind == EngagementKind::Complete {
        counts.completions = conn.execute(&flag("completed")).await?.rows_affected();
    }
    if counts != FeedbackCounts::default() {
        bump(
            conn,
            &HashMap::from([(rollup_key(&a.context, asset), counts)]),
        )
        .await?;
    }
    Ok(())
}

/// Deletes what the feedback tables hold of one account (its rollup counts stay: they
/// name no one).
pub(super) async fn erase_account(txn: &WriteTxn, account: &str) -> AppResult<()> {
    for table in ["impression", "served_list", "dismissal"] {
        let mut delete = Query::delete();
        delete
            .from_table(t(table))
            .and_where(Expr::col(t("account_id")).eq(account));
        txn.conn().execute(&delete).await?;
    }
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
                rows.push((
                    key.clone(),
                    asset.clone(),
                    list.context.account.clone(),
                    *position,
                    list.at,
                ));
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
                    .entry(rollup_key(ctx, asset))
                    .or_default()
                    .impressions += 1;
            }
        }
        bump(conn, &rollup).await?;
        txn.commit().await?;
        Ok(inserted)
    }

    /// Ties events to their lists in one transaction (what `attribute` does per event, for
    /// bulk loads such as `stagefit generate-feedback`).
    pub async fn attribute_many(
        &self,
        events: &[(Attribution, String, EngagementKind, i64)],
    ) -> AppResult<()> {
        let txn = self.begin_txn().await?;
        for (a, asset, kind, at) in events {
            attribute(&txn, a, asset, *kind, *at).await?;
        }
        txn.commit().await
    }

    /// Never recommend `asset` to `account` again. False when it already was dismissed.
    pub async fn dismiss(&self, account: &str, asset: &str, at: i64) -> AppResult<bool> {
        let txn = self.begin_txn().await?;
        let mut insert = Query::insert();
        insert
            .into_table(t("dismissal"))
            .columns(["account_id", "asset_id", "at"].map(t))
            .values_panic([account.into(), asset.into(), at.into()])
            .on_conflict(
                OnConflict::columns([t("account_id"), t("asset_id")])
                    .do_nothing()
                    .to_owned(),
            )
            .returning(Query::returning().column(t("asset_id")));
        let new = !txn.conn().query_all(&insert).await?.is_empty();
        if new {
            bump(
                txn.conn(),
                &HashMap::from([(
                    (
                        at.div_euclid(DAY),
                        asset.to_owned(),
                        String::new(),
                        String::new(),
                        String::new(),
                    ),
                    FeedbackCounts {
                        dismissals: 1,
                        ..Default::default()
                    },
                )]),
            )
            .await?;
        }
        txn.commit().await?;
        Ok(new)
    }

    /// The assets an account dismissed.
    pub async fn dismissed(&self, account: &str) -> AppResult<Vec<String>> {
        let mut select = Query::select();
        select
            .column(t("asset_id"))
            .from(t("dismissal"))
            .and_where(Expr::col(t("account_id")).eq(account))
            .order_by(t("asset_id"), sea_orm::sea_query::Order::Asc);
        self.db
            .query_all(&select)
            .await?
            .into_iter()
            .map(|r| Ok(r.try_get_by_index::<String>(0)?))
            .collect()
    }

    /// Counts per asset from day `since_day` (Unix days) on.
    pub async fn feedback_by_asset(
        &self,
        since_day: i64,
    ) -> AppResult<HashMap<String, FeedbackCounts>> {
        let rows = self
            .rollup_sums("asset_id", since_day, None)
            .await?
            .into_iter()
            .collect();
        Ok(rows)
    }

    /// Counts per variant of an experiment.
    pub async fn feedback_by_variant(
        &self,
        experiment: &str,
    ) -> AppResult<HashMap<String, FeedbackCounts>> {
        Ok(self
            .rollup_sums("variant", i64::MIN, Some(experiment))
            .await?
            .into_iter()
            .collect())
    }

    async fn rollup_sums(
        &self,
        by: &str,
        since_day: i64,
        experiment: Option<&str>,
    ) -> AppResult<Vec<(String, FeedbackCounts)>> {
        let all_time = since_day == i64::MIN;
        let mut select = Query::select();
        select
            .column(t(by))
            .expr(Expr::cust("CAST(SUM(impressions) AS BIGINT)"))
            .expr(Expr::cust("CAST(SUM(clicks) AS BIGINT)"))
            .expr(Expr::cust("CAST(SUM(completions) AS BIGINT)"))
            .expr(Expr::cust("CAST(SUM(dismissals) AS BIGINT)"))
            .from(t(if all_time {
                "feedback_total"
            } else {
                "feedback_daily"
            }))
            .group_by_col(t(by));
        if !all_time {
            select.and_where(Expr::col(t("day")).gte(since_day));
        }
        if let Some(e) = experiment {
            select.and_where(Expr::col(t("experiment")).eq(e));
        }
        let n = |r: &sea_orm::QueryResult, i: usize| -> AppResult<u64> {
            Ok(r.try_get_by_index::<Option<i64>>(i)?
                .map_or(0, |v| u64::try_from(v).unwrap_or(0)))
        };
        self.db
            .query_all(&select)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get_by_index::<String>(0)?,
                    FeedbackCounts {
                        impressions: n(r, 1)?,
                        clicks: n(r, 2)?,
                        completions: n(r, 3)?,
                        dismissals: n(r, 4)?,
                    },
                ))
            })
            .collect()
    }

    /// Lists shown since `since` (Unix seconds) in which something was clicked or
    /// completed, with all their recorded items, oldest first.
    pub async fn logged_lists(&self, since: i64) -> AppResult<Vec<LoggedList>> {
        let sql = "SELECT s.id, s.context, i.asset_id, i.position, i.clicked, i.completed \
                   FROM served_list s JOIN impression i ON i.list_id = s.id \
                   WHERE s.at >= $1 AND s.id IN (SELECT list_id FROM impression WHERE clicked) \
                   ORDER BY s.at, s.id, i.position";
        let sql = match self.db.get_database_backend() {
            sea_orm::DbBackend::Postgres => sql.to_owned(),
            _ => sql.replace("$1", "?"),
        };
        let rows = self
            .db
            .query_all_raw(sea_orm::Statement::from_sql_and_values(
                self.db.get_database_backend(),
                sql,
                [since.into()],
            ))
            .await?;
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

    /// Deletes impressions and shown lists older than `before` (Unix seconds); the rollups
    /// stay. Returns the impressions deleted.
    pub async fn prune_feedback(&self, before: i64) -> AppResult<u64> {
        let txn = self.begin_txn().await?;
        let mut deleted = 0;
        for table in ["impression", "served_list"] {
            let mut delete = Query::delete();
            delete
                .from_table(t(table))
                .and_where(Expr::col(t("at")).lt(before));
            let n = txn.conn().execute(&delete).await?.rows_affected();
            if table == "impression" {
                deleted = n;
            }
        }
        txn.commit().await?;
        Ok(deleted)
    }

    pub async fn ranking_profiles(&self) -> AppResult<Vec<RankingProfile>> {
        let mut select = Query::select();
        select
            .columns(["name", "weights", "description", "updated_at"].map(t))
            .from(t("ranking_profile"))
            .order_by(t("name"), sea_orm::sea_query::Order::Asc);
        self.db
            .query_all(&select)
            .await?
            .into_iter()
            .map(|r| {
                let raw: String = r.try_get_by_index(1)?;
                Ok(RankingProfile {
                    name: r.try_get_by_index(0)?,
                    weights: weights_from_json(&raw)
                        .map_err(|e| corrupt("ranking_profile.weights", e))?,
                    description: r.try_get_by_index(2)?,
                    updated_at: r.try_get_by_index(3)?,
                })
            })
            .collect()
    }

    pub async fn upsert_ranking_profile(&self, p: &RankingProfile) -> AppResult<()> {
        let txn = self.begin_txn().await?;
        let mut insert = Query::insert();
        insert
            .into_table(t("ranking_profile"))
            .columns(["name", "weights", "description", "updated_at"].map(t))
            .values_panic([
                p.name.clone().into(),
                weights_to_json(&p.weights).into(),
                p.description.clone().into(),
                p.updated_at.into(),
            ])
            .on_conflict(
                OnConflict::column(t("name"))
                    .update_columns(["weights", "description", "updated_at"].map(t))
                    .to_owned(),
            );
        txn.conn().execute(&insert).await?;
        txn.commit().await
    }

    pub async fn experiments(&self) -> AppResult<Vec<Experiment>> {
        let mut select = Query::select();
        select
            .columns(["name", "placement", "variants", "started_at", "stopped_at"].map(t))
            .from(t("experiment"))
            .order_by(t("started_at"), sea_orm::sea_query::Order::Asc)
            .order_by(t("name"), sea_orm::sea_query::Order::Asc);
        self.db
            .query_all(&select)
            .await?
            .into_iter()
            .map(|r| {
                let raw: String = r.try_get_by_index(2)?;
                let variants: Vec<Variant> =
                    serde_json::from_str(&raw).map_err(|e| corrupt("experiment.variants", e))?;
                Ok(Experiment {
                    name: r.try_get_by_index(0)?,
                    placement: r.try_get_by_index(1)?,
                    variants,
                    started_at: r.try_get_by_index(3)?,
                    stopped_at: r.try_get_by_index(4)?,
                })
            })
            .collect()
    }

    /// Stores a new experiment; false when one of that name exists (running or stopped).
    pub async fn insert_experiment(&self, e: &Experiment) -> AppResult<bool> {
        let txn = self.begin_txn().await?;
        let variants = serde_json::to_string(&e.variants)
            .map_err(|e| AppError::internal(anyhow::Error::from(e)))?;
        let mut insert = Query::insert();
        insert
            .into_table(t("experiment"))
            .columns(["name", "placement", "variants", "started_at", "stopped_at"].map(t))
            .values_panic([
                e.name.clone().into(),
                e.placement.clone().into(),
                variants.into(),
                e.started_at.into(),
                e.stopped_at.into(),
            ])
            .on_conflict(OnConflict::column(t("name")).do_nothing().to_owned())
            .returning(Query::returning().column(t("name")));
        let new = !txn.conn().query_all(&insert).await?.is_empty();
        txn.commit().await?;
        Ok(new)
    }

    /// Marks a running experiment stopped at `at`; false when none of that name runs.
    pub async fn stop_experiment(&self, name: &str, at: i64) -> AppResult<bool> {
        let txn = self.begin_txn().await?;
        let mut update = Query::update();
        update
            .table(t("experiment"))
            .value(t("stopped_at"), at)
            .and_where(Expr::col(t("name")).eq(name))
            .and_where(Expr::col(t("stopped_at")).is_null());
        let n = txn.conn().execute(&update).await?.rows_affected();
        txn.commit().await?;
        Ok(n > 0)
    }

    /// Every event as (account, asset, Unix seconds, cohort) from `since` on, by account
    /// then time: what "moved forward" is computed from.
    pub async fn journey_events(
        &self,
        since: i64,
    ) -> AppResult<Vec<(String, String, i64, String)>> {
        let mut select = Query::select();
        select
            .columns(["account_id", "asset_id", "occurred_at", "cohort"].map(t))
            .from(t("engagement"))
            .and_where(Expr::col(t("occurred_at")).gte(since))
            .order_by(t("account_id"), sea_orm::sea_query::Order::Asc)
            .order_by(t("occurred_at"), sea_orm::sea_query::Order::Asc);
        self.db
            .query_all(&select)
            .await?
            .into_iter()
            .map(|r| {
                Ok((
                    r.try_get_by_index(0)?,
                    r.try_get_by_index(1)?,
                    r.try_get_by_index(2)?,
                    r.try_get_by_index(3)?,
                ))
            })
            .collect()
    }
}
