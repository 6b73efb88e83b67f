//! Counts over a span of days from a daily and a weekly rollup (migration 19): the days
//! before the span's first whole week come from the daily rows, the weeks from the weekly
//! ones, so a span of 90 days reads at most 6 days and 13 weeks per asset. Days are Unix
//! days; week `w` holds days `7w` to `7w + 6`.
//!
//! Engagement events are counted per asset here as they are written (and taken back when
//! an account is erased); they stay when the events expire.

use std::collections::{BTreeMap, HashMap};

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
};

use super::Store;
use super::entity::{engagement_daily, engagement_weekly};
use crate::error::{AppError, AppResult};

pub(super) const DAY: i64 = 86_400;
const WEEK_DAYS: i64 = 7;

/// The first week a span starting on `since_day` covers whole.
pub(super) fn first_whole_week(since_day: i64) -> i64 {
    since_day.div_euclid(WEEK_DAYS) + i64::from(since_day.rem_euclid(WEEK_DAYS) != 0)
}

pub(super) fn week_of(day: i64) -> i64 {
    day.div_euclid(WEEK_DAYS)
}

/// A day or week as stored (an `integer` column).
pub(super) fn period(n: i64) -> AppResult<i32> {
    i32::try_from(n).map_err(|_| AppError::internal(anyhow::anyhow!("day {n} out of range")))
}

/// Events per (day, asset) and per (week, asset), `sign` (1 or -1) each, from (asset, Unix
/// time) pairs, in key order.
pub(super) type Tally<'a> = Vec<((i64, &'a str), i64)>;

pub(super) fn tally<'a>(
    events: impl IntoIterator<Item = (&'a str, i64)>,
    sign: i64,
) -> (Tally<'a>, Tally<'a>) {
    let mut days: BTreeMap<(i64, &str), i64> = BTreeMap::new();
    for (asset, at) in events {
        *days.entry((at.div_euclid(DAY), asset)).or_default() += sign;
    }
    let mut weeks: BTreeMap<(i64, &str), i64> = BTreeMap::new();
    for ((day, asset), n) in &days {
        *weeks.entry((week_of(*day), asset)).or_default() += n;
    }
    (days.into_iter().collect(), weeks.into_iter().collect())
}

/// The sum of a day's or week's counts over a span: each row is summed as an `INTEGER`
/// (one asset's count in a day or week fits in 32 bits), because PostgreSQL sums `BIGINT`s
/// as `NUMERIC`, which took a 90-day span of 100k assets from 0.65 s to 1.09 s.
pub(super) fn span_sum(
    column: impl sea_orm::sea_query::IntoColumnRef,
) -> sea_orm::sea_query::SimpleExpr {
    Expr::col(column).cast_as("INTEGER").sum().cast_as("BIGINT")
}

/// Adds `sign` (1 or -1) per event to the engagement rollups, by (asset, Unix time).
pub(super) async fn count_events<'a, C: ConnectionTrait>(
    conn: &C,
    events: impl IntoIterator<Item = (&'a str, i64)>,
    sign: i64,
) -> AppResult<()> {
    let (days, weeks) = tally(events, sign);
    for chunk in days.chunks(super::ROWS_PER_STATEMENT) {
        let mut rows = Vec::with_capacity(chunk.len());
        for ((day, asset), n) in chunk {
            rows.push(engagement_daily::ActiveModel {
                day: Set(period(*day)?),
                asset_id: Set((*asset).to_owned()),
                events: Set(*n),
            });
        }
        use engagement_daily::Column as D;
        engagement_daily::Entity::insert_many(rows)
            .on_conflict(super::adding(
                engagement_daily::Entity,
                [D::Day, D::AssetId],
                [D::Events],
            ))
            .exec_without_returning(conn)
            .await?;
    }
    for chunk in weeks.chunks(super::ROWS_PER_STATEMENT) {
        let mut rows = Vec::with_capacity(chunk.len());
        for ((week, asset), n) in chunk {
            rows.push(engagement_weekly::ActiveModel {
                week: Set(period(*week)?),
                asset_id: Set((*asset).to_owned()),
                events: Set(*n),
            });
        }
        use engagement_weekly::Column as W;
        engagement_weekly::Entity::insert_many(rows)
            .on_conflict(super::adding(
                engagement_weekly::Entity,
                [W::Week, W::AssetId],
                [W::Events],
            ))
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

impl Store {
    /// Engagement events per asset on the days from `since_day` (a Unix day) on.
    pub async fn engagement_by_asset(&self, since_day: i64) -> AppResult<HashMap<String, u64>> {
        let week = first_whole_week(since_day);
        let (from, to) = (period(Ord::max(since_day, 0))?, period(week * WEEK_DAYS)?);
        use engagement_daily::Column as D;
        use engagement_weekly::Column as W;
        let days: Vec<(String, i64)> = engagement_daily::Entity::find()
            .select_only()
            .column(D::AssetId)
            .column_as(span_sum(D::Events), "events")
            .filter(D::Day.gte(from))
            .filter(D::Day.lt(to))
            .group_by(D::AssetId)
            .into_tuple()
            .all(&self.db)
            .await?;
        let weeks: Vec<(String, i64)> = engagement_weekly::Entity::find()
            .select_only()
            .column(W::AssetId)
            .column_as(span_sum(W::Events), "events")
            .filter(W::Week.gte(period(week)?))
            .group_by(W::AssetId)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut out: HashMap<String, u64> = HashMap::new();
        for (asset, n) in days.into_iter().chain(weeks) {
            *out.entry(asset).or_default() += Ord::max(n, 0) as u64;
        }
        out.retain(|_, n| *n > 0);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_reads_its_first_days_then_whole_weeks() {
        // Day 14 starts week 2: no day is read from the daily rows.
        assert_eq!(first_whole_week(14), 2);
        // Day 15: days 15 to 20 come from the daily rows, week 3 on from the weekly ones.
        assert_eq!(first_whole_week(15), 3);
        assert_eq!(first_whole_week(20), 3);
        assert_eq!(week_of(20), 2);
        assert_eq!(week_of(21), 3);
        assert_eq!(first_whole_week(0), 0);
        assert_eq!(first_whole_week(-1), 0);
    }
}
