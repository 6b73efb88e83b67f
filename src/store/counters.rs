//! Engagement counters (popularity and co-reads, see `domain::counters`) kept in the
//! transaction that records the events, and what readers ask of them.

use std::collections::{BTreeSet, HashMap};

use sea_orm::sea_query::{ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::entity::{co_read, engagement, popularity_cohort, popularity_count, popularity_share};
use super::{ROWS_PER_STATEMENT, Store, WriteTxn};
use crate::domain::{
    CO_READ_KEPT, CO_READ_RECENT, CO_READ_WINDOW_DAYS, COUNTER_HALF_LIFE_DAYS, CountedRead,
    CounterPlan, Delta, Share, TaxonomyValue, account_contribution, plan,
};
use crate::error::AppResult;

/// Up to this many accounts in a batch, each account's recent reads are read on their own
/// (bounded by the co-read rule); more are read together.
const FEW_ACCOUNTS: usize = 8;
/// Rows per statement of the counters' writes (5 columns at most: well under SQLite's and
/// PostgreSQL's limits on bound values).
const COUNTER_ROWS: usize = 2_000;
/// Below this, a counter is taken for zero (what is left of subtracting what was added).
const EPSILON: f64 = 1e-9;

/// One asset of a cohort's best, or one neighbour of an asset: its sum in growing units
/// and how many accounts made it.
#[derive(Clone, Debug, PartialEq)]
pub struct Counted {
    pub asset_id: String,
    pub weight: f64,
    pub accounts: i64,
}

/// Rows to add to the counters, by borrowed names (a bulk load's sums).
#[derive(Debug, Default)]
pub struct CounterRows<'a> {
    /// (cohort, asset, addition).
    pub counts: Vec<(&'a str, &'a str, Delta)>,
    /// (asset, cohort, next asset, addition).
    pub co_reads: Vec<(&'a str, &'a str, &'a str, Delta)>,
}

impl<'a> From<&'a CounterPlan> for CounterRows<'a> {
    fn from(plan: &'a CounterPlan) -> Self {
        CounterRows {
            counts: plan
                .counts
                .iter()
                .map(|((c, a), d)| (c.as_str(), a.as_str(), *d))
                .collect(),
            co_reads: plan
                .co_reads
                .iter()
                .map(|((a, c, n), d)| (a.as_str(), c.as_str(), n.as_str(), *d))
                .collect(),
        }
    }
}

/// Adds `reads` to the counters inside `txn` (the events' own transaction). Events already
/// counted change nothing: a share only grows, and a pair is made by a first read only.
pub(super) async fn count_reads(txn: &WriteTxn, reads: &[CountedRead]) -> AppResult<()> {
    if reads.is_empty() {
        return Ok(());
    }
    let stored = stored_shares(txn.conn(), reads).await?;
    let plan = plan(reads, &stored, COUNTER_HALF_LIFE_DAYS);
    apply(txn.conn(), &plan).await
}

/// The shares a plan for `reads` needs: those of the (account, asset) pairs it names, and
/// each account's latest reads before its events within the co-read window (at most
/// what the rule can pair with).
async fn stored_shares<C: ConnectionTrait>(
    conn: &C,
    reads: &[CountedRead],
) -> AppResult<Vec<Share>> {
    use popularity_share::Column as S;
    let mut per_account: HashMap<&str, (i64, i64, usize)> = HashMap::new();
    for r in reads {
        let e = per_account.entry(&r.account).or_insert((r.at, r.at, 0));
        e.0 = Ord::min(e.0, r.at);
        e.1 = Ord::max(e.1, r.at);
        e.2 += 1;
    }
    let accounts: BTreeSet<&str> = per_account.keys().copied().collect();
    let assets: BTreeSet<&str> = reads.iter().map(|r| r.asset.as_str()).collect();
    let mut rows: HashMap<(String, String, String), popularity_share::Model> = HashMap::new();
    for chunk in accounts
        .iter()
        .collect::<Vec<_>>()
        .chunks(ROWS_PER_STATEMENT)
    {
        let found = popularity_share::Entity::find()
            .filter(S::AccountId.is_in(chunk.iter().map(|a| a.to_string())))
            .filter(S::AssetId.is_in(assets.iter().map(|a| a.to_string())))
            .all(conn)
            .await?;
        for m in found {
            rows.insert(
                (m.account_id.clone(), m.asset_id.clone(), m.cohort.clone()),
                m,
            );
        }
    }
    if per_account.len() > FEW_ACCOUNTS {
        // Many accounts (an import's chunk): their reads of the window in a few queries,
        // not one query each.
        let from = per_account.values().map(|v| v.0).min().unwrap_or(0);
        let to = per_account.values().map(|v| v.1).max().unwrap_or(0);
        for chunk in accounts
            .iter()
            .collect::<Vec<_>>()
            .chunks(ROWS_PER_STATEMENT)
        {
            let found = popularity_share::Entity::find()
                .filter(S::AccountId.is_in(chunk.iter().map(|a| a.to_string())))
                .filter(S::FirstAt.gte(from - CO_READ_WINDOW_DAYS * 86_400))
                .filter(S::FirstAt.lte(to))
                .all(conn)
                .await?;
            for m in found {
                rows.insert(
                    (m.account_id.clone(), m.asset_id.clone(), m.cohort.clone()),
                    m,
                );
            }
        }
        return Ok(rows.into_values().map(share_from_row).collect());
    }
    for (account, (from, to, n)) in per_account {
        // A read has at most a few cohorts (its own and every industry's, and more when
        // the account moved): room for the recent reads and the batch's own.
        let found = popularity_share::Entity::find()
            .filter(S::AccountId.eq(account))
            .filter(S::FirstAt.gte(from - CO_READ_WINDOW_DAYS * 86_400))
            .filter(S::FirstAt.lte(to))
            .order_by_desc(S::FirstAt)
            .limit(4 * (CO_READ_RECENT + n) as u64)
            .all(conn)
            .await?;
        for m in found {
            rows.insert(
                (m.account_id.clone(), m.asset_id.clone(), m.cohort.clone()),
                m,
            );
        }
    }
    Ok(rows.into_values().map(share_from_row).collect())
}

fn share_from_row(m: popularity_share::Model) -> Share {
    Share {
        account: m.account_id,
        asset: m.asset_id,
        cohort: m.cohort,
        weight: m.weight,
        first_at: m.first_at,
    }
}

/// Writes a plan: shares set, counts and co-reads added, each table's rows in key order
/// (so concurrent writers lock them in the same order), new cohorts noted.
async fn apply<C: ConnectionTrait>(conn: &C, plan: &CounterPlan) -> AppResult<()> {
    write_shares(conn, &plan.shares).await?;
    add_counts(conn, &plan.counts).await?;
    add_co_reads(conn, &plan.co_reads).await?;
    note_cohorts(conn, &plan.counts).await
}

async fn write_shares<C: ConnectionTrait>(conn: &C, shares: &[Share]) -> AppResult<()> {
    use popularity_share::Column as S;
    for chunk in shares.chunks(COUNTER_ROWS) {
        let models = chunk.iter().map(|s| popularity_share::ActiveModel {
            account_id: Set(s.account.clone()),
            asset_id: Set(s.asset.clone()),
            cohort: Set(s.cohort.clone()),
            weight: Set(s.weight),
            first_at: Set(s.first_at),
        });
        popularity_share::Entity::insert_many(models)
            .on_conflict(
                OnConflict::columns([S::AccountId, S::AssetId, S::Cohort])
                    .update_columns([S::Weight, S::FirstAt])
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// Writes the shares of new accounts through the bulk path (a key already stored fails).
pub(super) async fn write_shares_bulk(
    bulk: &mut super::bulk::Bulk,
    shares: &[Share],
) -> AppResult<()> {
    use super::bulk::{Cell, OnKey};
    use popularity_share::Column as S;
    use sea_orm::{EntityName, IdenStatic};
    let cells: Vec<Cell> = shares
        .iter()
        .flat_map(|s| {
            [
                Cell::Text(&s.account),
                Cell::Text(&s.asset),
                Cell::Text(&s.cohort),
                Cell::Real(s.weight),
                Cell::Int(s.first_at),
            ]
        })
        .collect();
    bulk.write(
        popularity_share::Entity.table_name(),
        &[S::AccountId, S::AssetId, S::Cohort, S::Weight, S::FirstAt].map(|c| c.as_str()),
        &cells,
        OnKey::Fail,
    )
    .await
}

/// Notes the cohorts of `counts` (every replica reads the best of each).
async fn note_cohorts<C: ConnectionTrait>(
    conn: &C,
    counts: &std::collections::BTreeMap<(String, String), Delta>,
) -> AppResult<()> {
    let cohorts: BTreeSet<&String> = counts.keys().map(|(c, _)| c).collect();
    if cohorts.is_empty() {
        return Ok(());
    }
    let models = cohorts.into_iter().map(|c| popularity_cohort::ActiveModel {
        cohort: Set(c.clone()),
    });
    popularity_cohort::Entity::insert_many(models)
        .on_conflict_do_nothing_on([popularity_cohort::Column::Cohort])
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

async fn add_counts<C: ConnectionTrait>(
    conn: &C,
    counts: &std::collections::BTreeMap<(String, String), Delta>,
) -> AppResult<()> {
    use popularity_count::Column as P;
    let rows: Vec<_> = counts.iter().collect();
    for chunk in rows.chunks(COUNTER_ROWS) {
        let models = chunk
            .iter()
            .map(|((cohort, asset), d)| popularity_count::ActiveModel {
                cohort: Set(cohort.clone()),
                asset_id: Set(asset.clone()),
                score: Set(d.weight),
                accounts: Set(d.accounts),
            });
        popularity_count::Entity::insert_many(models)
            .on_conflict(super::adding(
                popularity_count::Entity,
                [P::Cohort, P::AssetId],
                [P::Score, P::Accounts],
            ))
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

async fn add_co_reads<C: ConnectionTrait>(
    conn: &C,
    co_reads: &std::collections::BTreeMap<(String, String, String), Delta>,
) -> AppResult<()> {
    use co_read::Column as R;
    let rows: Vec<_> = co_reads.iter().collect();
    for chunk in rows.chunks(COUNTER_ROWS) {
        let models = chunk
            .iter()
            .map(|((asset, cohort, next), d)| co_read::ActiveModel {
                asset_id: Set(asset.clone()),
                cohort: Set(cohort.clone()),
                next_id: Set(next.clone()),
                weight: Set(d.weight),
                accounts: Set(d.accounts),
            });
        co_read::Entity::insert_many(models)
            .on_conflict(super::adding(
                co_read::Entity,
                [R::AssetId, R::Cohort, R::NextId],
                [R::Weight, R::Accounts],
            ))
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// Subtracts what an account added to the counters and forgets its shares, inside the
/// erasure's transaction. Counters left with no account (or nothing) are deleted.
pub(super) async fn erase_account(txn: &WriteTxn, account_id: &str) -> AppResult<()> {
    use popularity_share::Column as S;
    let conn = txn.conn();
    let shares: Vec<Share> = popularity_share::Entity::find()
        .filter(S::AccountId.eq(account_id))
        .all(conn)
        .await?
        .into_iter()
        .map(share_from_row)
        .collect();
    if shares.is_empty() {
        return Ok(());
    }
    let mut gone = account_contribution(&shares, COUNTER_HALF_LIFE_DAYS);
    for d in gone.counts.values_mut() {
        *d = Delta {
            weight: -d.weight,
            accounts: -d.accounts,
        };
    }
    for d in gone.co_reads.values_mut() {
        *d = Delta {
            weight: -d.weight,
            accounts: -d.accounts,
        };
    }
    add_counts(conn, &gone.counts).await?;
    add_co_reads(conn, &gone.co_reads).await?;
    popularity_share::Entity::delete_many()
        .filter(S::AccountId.eq(account_id))
        .exec(conn)
        .await?;
    // What the erasure emptied (or, for pairs recorded out of order, took below zero).
    let assets: BTreeSet<String> = shares.iter().map(|s| s.asset.clone()).collect();
    let assets: Vec<String> = assets.into_iter().collect();
    for chunk in assets.chunks(ROWS_PER_STATEMENT) {
        popularity_count::Entity::delete_many()
            .filter(popularity_count::Column::AssetId.is_in(chunk.iter().cloned()))
            .filter(
                popularity_count::Column::Accounts
                    .lte(0)
                    .or(popularity_count::Column::Score.lte(EPSILON)),
            )
            .exec(conn)
            .await?;
        for column in [co_read::Column::AssetId, co_read::Column::NextId] {
            co_read::Entity::delete_many()
                .filter(column.is_in(chunk.iter().cloned()))
                .filter(
                    co_read::Column::Accounts
                        .lte(0)
                        .or(co_read::Column::Weight.lte(EPSILON)),
                )
                .exec(conn)
                .await?;
        }
    }
    Ok(())
}

impl Store {
    /// Whether any co-read pair is stored.
    pub async fn has_co_reads(&self) -> AppResult<bool> {
        Ok(co_read::Entity::find().one(&self.db).await?.is_some())
    }

    /// Adds counts and co-reads (a bulk load's, summed), in one transaction through the
    /// bulk path (`store::bulk`). With `new_pairs` the co-reads' pairs are known not to be
    /// stored (a load into an empty table, in pieces of distinct pairs): they are written
    /// straight in, without looking for a stored row to add to (about half the time on
    /// PostgreSQL), and a pair that is stored after all fails the write.
    pub async fn add_counters(&self, rows: &CounterRows<'_>, new_pairs: bool) -> AppResult<()> {
        use super::bulk::{Cell, OnKey};
        use sea_orm::{EntityName, IdenStatic};
        let mut bulk = self.bulk().await?;
        {
            use popularity_count::Column as P;
            let cells: Vec<Cell> = rows
                .counts
                .iter()
                .flat_map(|(cohort, asset, d)| {
                    [
                        Cell::Text(cohort),
                        Cell::Text(asset),
                        Cell::Real(d.weight),
                        Cell::Int(d.accounts),
                    ]
                })
                .collect();
            bulk.write(
                popularity_count::Entity.table_name(),
                &[P::Cohort, P::AssetId, P::Score, P::Accounts].map(|c| c.as_str()),
                &cells,
                OnKey::Add {
                    keys: &[P::Cohort, P::AssetId].map(|c| c.as_str()),
                    sums: &[P::Score, P::Accounts].map(|c| c.as_str()),
                },
            )
            .await?;
        }
        {
            use co_read::Column as R;
            let cells: Vec<Cell> = rows
                .co_reads
                .iter()
                .flat_map(|(asset, cohort, next, d)| {
                    [
                        Cell::Text(asset),
                        Cell::Text(cohort),
                        Cell::Text(next),
                        Cell::Real(d.weight),
                        Cell::Int(d.accounts),
                    ]
                })
                .collect();
            let keys = [R::AssetId, R::Cohort, R::NextId].map(|c| c.as_str());
            let sums = [R::Weight, R::Accounts].map(|c| c.as_str());
            bulk.write(
                co_read::Entity.table_name(),
                &[R::AssetId, R::Cohort, R::NextId, R::Weight, R::Accounts].map(|c| c.as_str()),
                &cells,
                if new_pairs {
                    OnKey::Fail
                } else {
                    OnKey::Add {
                        keys: &keys,
                        sums: &sums,
                    }
                },
            )
            .await?;
        }
        let cohorts: BTreeSet<&str> = rows.counts.iter().map(|(c, _, _)| *c).collect();
        let cells: Vec<Cell> = cohorts.into_iter().map(Cell::Text).collect();
        let cohort = popularity_cohort::Column::Cohort.as_str();
        bulk.write(
            popularity_cohort::Entity.table_name(),
            &[cohort],
            &cells,
            OnKey::Keep { keys: &[cohort] },
        )
        .await?;
        bulk.commit().await
    }

    /// The cohorts that have popularity counts.
    pub async fn popularity_cohorts(&self) -> AppResult<Vec<String>> {
        Ok(popularity_cohort::Entity::find()
            .order_by_asc(popularity_cohort::Column::Cohort)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| m.cohort)
            .collect())
    }

    /// A cohort's `n` most popular assets, best first (ties by id).
    pub async fn cohort_best(&self, cohort: &str, n: u64) -> AppResult<Vec<Counted>> {
        use popularity_count::Column as P;
        Ok(popularity_count::Entity::find()
            .filter(P::Cohort.eq(cohort))
            .filter(P::Accounts.gt(0))
            .order_by_desc(P::Score)
            .order_by_asc(P::AssetId)
            .limit(n)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| Counted {
                asset_id: m.asset_id,
                weight: m.score,
                accounts: m.accounts,
            })
            .collect())
    }

    /// What accounts of `cohort` (an industry, or `*`) read after `asset_id`: the `n`
    /// heaviest pairs made by at least `min_accounts` accounts.
    pub async fn read_next(
        &self,
        asset_id: &str,
        cohort: &str,
        n: u64,
        min_accounts: i64,
    ) -> AppResult<Vec<Counted>> {
        use co_read::Column as R;
        Ok(co_read::Entity::find()
            .filter(R::AssetId.eq(asset_id))
            .filter(R::Cohort.eq(cohort))
            .filter(R::Accounts.gte(min_accounts))
            .order_by_desc(R::Weight)
            .order_by_asc(R::NextId)
            .limit(n)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| Counted {
                asset_id: m.next_id,
                weight: m.weight,
                accounts: m.accounts,
            })
            .collect())
    }

    /// Deletes co-read pairs beyond the [`CO_READ_KEPT`] heaviest of each asset and cohort,
    /// each group in its own short transaction; returns the pairs deleted. What it costs
    /// grows with the assets and the pairs recorded since the last pass, not with events.
    pub async fn prune_co_reads(&self) -> AppResult<u64> {
        use co_read::Column as R;
        let crowded: Vec<(String, String)> = co_read::Entity::find()
            .select_only()
            .column(R::AssetId)
            .column(R::Cohort)
            .group_by(R::AssetId)
            .group_by(R::Cohort)
            .having(R::NextId.count().gt(CO_READ_KEPT as i64))
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut deleted = 0;
        for (asset, cohort) in crowded {
            let txn = self.begin_txn().await?;
            let last_kept: Option<(f64, String)> = co_read::Entity::find()
                .select_only()
                .column(R::Weight)
                .column(R::NextId)
                .filter(R::AssetId.eq(&asset))
                .filter(R::Cohort.eq(&cohort))
                .order_by_desc(R::Weight)
                .order_by_asc(R::NextId)
                .offset(CO_READ_KEPT as u64 - 1)
                .limit(1)
                .into_tuple()
                .one(txn.conn())
                .await?;
            if let Some((weight, next)) = last_kept {
                deleted += co_read::Entity::delete_many()
                    .filter(R::AssetId.eq(&asset))
                    .filter(R::Cohort.eq(&cohort))
                    .filter(
                        R::Weight
                            .lt(weight)
                            .or(R::Weight.eq(weight).and(R::NextId.gt(next))),
                    )
                    .exec(txn.conn())
                    .await?
                    .rows_affected;
            }
            txn.commit().await?;
        }
        Ok(deleted)
    }

    /// Whether the counters hold anything.
    pub async fn counters_empty(&self) -> AppResult<bool> {
        Ok(popularity_share::Entity::find()
            .limit(1)
            .all(&self.db)
            .await?
            .is_empty())
    }

    /// Rebuilds every counter from the stored events, in the order they were recorded (a
    /// repair: the counters are kept as events arrive). Events removed by retention no
    /// longer count. Each chunk is its own transaction; returns the events read.
    pub async fn rebuild_counters(&self, chunk: u64) -> AppResult<u64> {
        {
            let txn = self.begin_txn().await?;
            popularity_share::Entity::delete_many()
                .exec(txn.conn())
                .await?;
            popularity_count::Entity::delete_many()
                .exec(txn.conn())
                .await?;
            popularity_cohort::Entity::delete_many()
                .exec(txn.conn())
                .await?;
            co_read::Entity::delete_many().exec(txn.conn()).await?;
            txn.commit().await?;
        }
        let mut after = 0;
        let mut read = 0;
        loop {
            let rows: Vec<(i64, String, String, String, i64, String)> = engagement::Entity::find()
                .select_only()
                .column(engagement::Column::Id)
                .column(engagement::Column::AccountId)
                .column(engagement::Column::AssetId)
                .column(engagement::Column::Kind)
                .column(engagement::Column::OccurredAt)
                .column(engagement::Column::Cohort)
                .filter(engagement::Column::Id.gt(after))
                .order_by_asc(engagement::Column::Id)
                .limit(chunk)
                .into_tuple()
                .all(&self.db)
                .await?;
            let Some(last) = rows.last() else {
                break;
            };
            after = last.0;
            read += rows.len() as u64;
            let reads: Vec<CountedRead> = rows
                .into_iter()
                .map(|(_, account, asset, kind, at, cohort)| CountedRead {
                    account,
                    asset,
                    cohort,
                    depth: crate::domain::EngagementKind::parse(&kind).map_or(1.0, |k| k.depth()),
                    at,
                })
                .collect();
            let txn = self.begin_txn().await?;
            count_reads(&txn, &reads).await?;
            txn.commit().await?;
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CO_READ_KEPT;

    #[tokio::test]
    async fn pruning_keeps_the_heaviest_neighbours_of_each_asset() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.unwrap();
        let mut plan = CounterPlan::default();
        let pair = |a: &str, n: usize| (a.to_owned(), "*".to_owned(), format!("n{n:03}"));
        for n in 0..CO_READ_KEPT + 7 {
            plan.co_reads.insert(
                pair("a", n),
                Delta {
                    weight: n as f64,
                    accounts: 2,
                },
            );
        }
        plan.co_reads.insert(
            pair("b", 0),
            Delta {
                weight: 1.0,
                accounts: 2,
            },
        );
        store.add_counters(&(&plan).into(), false).await.unwrap();
        assert_eq!(store.prune_co_reads().await.unwrap(), 7);
        let kept = store.read_next("a", "*", 100, 1).await.unwrap();
        assert_eq!(kept.len(), CO_READ_KEPT);
        assert_eq!(kept[0].asset_id, format!("n{:03}", CO_READ_KEPT + 6));
        assert!(kept.iter().all(|c| c.weight >= 7.0));
        assert_eq!(store.read_next("b", "*", 100, 1).await.unwrap().len(), 1);
        // Nothing more to drop.
        assert_eq!(store.prune_co_reads().await.unwrap(), 0);
        store.close().await;
    }

    #[tokio::test]
    async fn new_pairs_go_straight_in_and_a_stored_one_fails_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.unwrap();
        let mut plan = CounterPlan::default();
        let delta = Delta {
            weight: 2.0,
            accounts: 1,
        };
        plan.co_reads
            .insert(("a".into(), "*".into(), "b".into()), delta);
        assert!(!store.has_co_reads().await.unwrap());
        store.add_counters(&(&plan).into(), true).await.unwrap();
        assert!(store.has_co_reads().await.unwrap());
        // Stored already: refused as new (nothing of the write stays), added otherwise.
        plan.co_reads
            .insert(("a".into(), "*".into(), "c".into()), delta);
        assert!(store.add_counters(&(&plan).into(), true).await.is_err());
        assert_eq!(store.read_next("a", "*", 10, 1).await.unwrap().len(), 1);
        store.add_counters(&(&plan).into(), false).await.unwrap();
        let next = store.read_next("a", "*", 10, 1).await.unwrap();
        let weights: Vec<(&str, f64)> = next
            .iter()
            .map(|c| (c.asset_id.as_str(), c.weight))
            .collect();
        assert_eq!(weights, [("b", 4.0), ("c", 2.0)]);
        store.close().await;
    }
}
