//! Raw events past their retention: engagement events (with their client ids) and
//! impressions (with their lists). What was built from them stays: the popularity shares,
//! counts and co-reads, and the feedback and engagement rollups.
//!
//! On PostgreSQL `engagement` and `impression` are partitioned by month (migration 18):
//! rows land in the partition of their month, created ahead (`add_partitions`), or in the
//! table's default partition when none is there yet (an upgrade, an event from long ago);
//! rows of the default partition move into their month when it is created. Expiry drops the
//! months that ended before the cut, in one statement each, whatever their size. The rest
//! (the month the cut falls in, the default partition, SQLite, the tables not partitioned)
//! is deleted in batches, each its own short transaction holding the writer lock: a batch
//! is sized from the last one's time to take about [`BATCH_TARGET`], whatever the table or
//! the machine, so a writer mostly waits a few milliseconds (BENCHMARKS.md has the
//! distribution). Hourly, a pass deletes about an hour of rows.

use chrono::{Datelike, NaiveDate};
use sea_orm::{ConnectionTrait, DbBackend, EntityName, IdenStatic, Statement, Value};

use super::Store;
use super::bulk::quoted;
use super::entity::{engagement, engagement_key, impression, served_list};
use crate::error::AppResult;

/// Months created beyond the current one, so inserts never wait for a new month.
const MONTHS_AHEAD: i32 = 2;
/// How long one batch of deletions should hold the writer lock.
const BATCH_TARGET: std::time::Duration = std::time::Duration::from_millis(4);
/// Rows in the first batch, and the bounds of the later ones.
const FIRST_BATCH: u64 = 100;
const BATCH_ROWS: std::ops::RangeInclusive<u64> = 10..=10_000;
/// Serialises partition changes across replicas (`pg_advisory_xact_lock`).
const PARTITION_LOCK: i64 = 0x5354_4147_4546_4954;
/// How long a partition change waits for a table lock before it gives up until next time
/// (a long read holds one; the writers queued behind the change would wait as long).
const LOCK_TIMEOUT: &str = "2s";

/// A calendar month in UTC, counted from year 0 (`year * 12 + month - 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Month(i32);

impl Month {
    /// The month of a Unix time.
    fn of(t: i64) -> Month {
        let day = chrono::DateTime::from_timestamp(t, 0).unwrap_or_default();
        Month(day.year() * 12 + day.month0() as i32)
    }

    fn next(self) -> Month {
        Month(self.0 + 1)
    }

    /// Its first second (Unix time).
    fn start(self) -> i64 {
        NaiveDate::from_ymd_opt(self.0.div_euclid(12), self.0.rem_euclid(12) as u32 + 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map_or(i64::MIN, |t| t.and_utc().timestamp())
    }

    /// Its partition of `table`: `engagement_p202612`.
    fn partition(self, table: &str) -> String {
        format!(
            "{table}_p{:04}{:02}",
            self.0.div_euclid(12),
            self.0.rem_euclid(12) + 1
        )
    }

    /// The month a partition of `table` holds, from its name.
    fn of_partition(table: &str, name: &str) -> Option<Month> {
        let digits = name.strip_prefix(table)?.strip_prefix("_p")?;
        if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let year: i32 = digits[..4].parse().ok()?;
        let month: i32 = digits[4..].parse().ok()?;
        (1..=12)
            .contains(&month)
            .then_some(Month(year * 12 + month - 1))
    }
}

/// A table whose rows expire, by its time column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiring {
    /// Engagement events, by when they happened; partitioned on PostgreSQL.
    Events,
    /// The client ids of events, by when their event happened.
    EventKeys,
    /// Impressions, by their list's time; partitioned on PostgreSQL.
    Impressions,
    /// Shown lists, by their time.
    Lists,
}

impl Expiring {
    fn table(self) -> &'static str {
        match self {
            Expiring::Events => engagement::Entity.table_name(),
            Expiring::EventKeys => engagement_key::Entity.table_name(),
            Expiring::Impressions => impression::Entity.table_name(),
            Expiring::Lists => served_list::Entity.table_name(),
        }
    }

    fn column(self) -> &'static str {
        match self {
            Expiring::Events => engagement::Column::OccurredAt.as_str(),
            Expiring::EventKeys => engagement_key::Column::OccurredAt.as_str(),
            Expiring::Impressions => impression::Column::At.as_str(),
            Expiring::Lists => served_list::Column::At.as_str(),
        }
    }

    /// Its default partition (PostgreSQL).
    fn default_partition(self) -> String {
        format!("{}_default", self.table())
    }

    fn partitioned(self, backend: DbBackend) -> bool {
        backend == DbBackend::Postgres && matches!(self, Expiring::Events | Expiring::Impressions)
    }
}

/// What an expiry removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expired {
    /// Rows deleted one batch at a time.
    pub rows: u64,
    /// Whole months dropped (PostgreSQL).
    pub months: Vec<String>,
    /// The longest a batch or a drop held the writer lock.
    pub longest_hold: std::time::Duration,
}

impl Store {
    fn statement(&self, sql: String, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(self.db.get_database_backend(), sql, values)
    }

    /// A transaction for a partition change (PostgreSQL): one replica at a time, and one
    /// that gives up after [`LOCK_TIMEOUT`] rather than queue the writers behind a long read.
    async fn partition_change(&self) -> AppResult<super::WriteTxn> {
        let txn = self.begin_txn().await?;
        let conn = txn.conn();
        conn.execute_unprepared(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
            .await?;
        conn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({PARTITION_LOCK})"))
            .await?;
        Ok(txn)
    }

    /// The monthly partitions of `table` (PostgreSQL), with their months.
    async fn partitions(&self, table: Expiring) -> AppResult<Vec<(Month, String)>> {
        let rows = self
            .db
            .query_all_raw(self.statement(
                "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                 WHERE i.inhparent = to_regclass($1)"
                    .to_owned(),
                vec![table.table().into()],
            ))
            .await?;
        let mut out = Vec::new();
        for row in rows {
            let name: String = row.try_get_by_index(0)?;
            if let Some(month) = Month::of_partition(table.table(), &name) {
                out.push((month, name));
            }
        }
        out.sort();
        Ok(out)
    }

    /// On PostgreSQL, creates `table`'s partitions for the month of `now` and the next two,
    /// and for each month from `keep_from` on that still has rows in the default partition
    /// (they move in). Nothing on SQLite or for a table that is not partitioned. Returns the
    /// partitions created.
    pub async fn add_partitions(
        &self,
        table: Expiring,
        now: i64,
        keep_from: i64,
    ) -> AppResult<Vec<String>> {
        if !table.partitioned(self.db.get_database_backend()) {
            return Ok(Vec::new());
        }
        let (name, column) = (table.table(), table.column());
        let have: Vec<Month> = self
            .partitions(table)
            .await?
            .into_iter()
            .map(|(m, _)| m)
            .collect();
        let mut wanted: Vec<Month> = (0..=MONTHS_AHEAD)
            .map(|k| Month(Month::of(now).0 + k))
            .collect();
        let waiting = self
            .db
            .query_all_raw(self.statement(
                format!(
                    "SELECT DISTINCT (EXTRACT(YEAR FROM to_timestamp(c) AT TIME ZONE 'UTC') * 12 \
                     + EXTRACT(MONTH FROM to_timestamp(c) AT TIME ZONE 'UTC') - 1)::int \
                     FROM (SELECT {} AS c FROM {} WHERE {} >= $1) t",
                    quoted(column),
                    quoted(&table.default_partition()),
                    quoted(column)
                ),
                vec![keep_from.into()],
            ))
            .await?;
        for row in waiting {
            wanted.push(Month(row.try_get_by_index::<i32>(0)?));
        }
        wanted.sort();
        wanted.dedup();
        let mut made = Vec::new();
        for month in wanted.into_iter().filter(|m| !have.contains(m)) {
            if self.add_month(table, month).await? {
                made.push(month.partition(name));
            }
        }
        Ok(made)
    }

    /// Creates one month's partition, moving its rows out of the default partition, in one
    /// transaction. False when another replica made it first.
    async fn add_month(&self, table: Expiring, month: Month) -> AppResult<bool> {
        let (name, column) = (table.table(), table.column());
        let partition = month.partition(name);
        let txn = self.partition_change().await?;
        let conn = txn.conn();
        let exists = conn
            .query_one_raw(self.statement(
                "SELECT to_regclass($1) IS NOT NULL".to_owned(),
                vec![partition.clone().into()],
            ))
            .await?
            .map(|r| r.try_get_by_index::<bool>(0))
            .transpose()?
            .unwrap_or(false);
        if exists {
            return Ok(false);
        }
        let (from, to) = (month.start(), month.next().start());
        let (quoted_table, quoted_partition) = (quoted(name), quoted(&partition));
        let default = quoted(&table.default_partition());
        let moving = conn
            .query_one_raw(self.statement(
                format!(
                    "SELECT EXISTS (SELECT 1 FROM {default} WHERE {c} >= $1 AND {c} < $2)",
                    c = quoted(column)
                ),
                vec![from.into(), to.into()],
            ))
            .await?
            .map(|r| r.try_get_by_index::<bool>(0))
            .transpose()?
            .unwrap_or(false);
        if moving {
            // A query planned while the ATTACH below is uncommitted knows only the default
            // partition; it waits for the ATTACH's lock on it and then, with a snapshot
            // taken after the commit, finds the moved rows in neither place. Holding the
            // whole table makes readers wait for the move and plan after it.
            conn.execute_unprepared(&format!(
                "LOCK TABLE {quoted_table} IN ACCESS EXCLUSIVE MODE"
            ))
            .await?;
        }
        conn.execute_unprepared(&format!(
            "CREATE TABLE {quoted_partition} (LIKE {quoted_table} INCLUDING DEFAULTS)"
        ))
        .await?;
        conn.execute_unprepared(&format!(
            "WITH moved AS (DELETE FROM {default} WHERE {c} >= {from} AND {c} < {to} RETURNING *) \
             INSERT INTO {quoted_partition} SELECT * FROM moved",
            c = quoted(column),
        ))
        .await?;
        conn.execute_unprepared(&format!(
            "ALTER TABLE {quoted_table} ATTACH PARTITION {quoted_partition} \
             FOR VALUES FROM ({from}) TO ({to})"
        ))
        .await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Deletes `table`'s rows older than `before` (Unix seconds): on PostgreSQL the
    /// partitions of months that ended by then are dropped whole; other rows (the month
    /// `before` falls in, the default partition, tables not partitioned) go in batches.
    pub async fn expire(&self, table: Expiring, before: i64) -> AppResult<Expired> {
        let backend = self.db.get_database_backend();
        let mut expired = Expired::default();
        let mut targets = Vec::new();
        if table.partitioned(backend) {
            targets.push(table.default_partition());
            for (month, partition) in self.partitions(table).await? {
                if month.next().start() > before {
                    if month.start() < before {
                        targets.push(partition);
                    }
                    continue;
                }
                let txn = self.partition_change().await?;
                let held = std::time::Instant::now();
                txn.conn()
                    .execute_unprepared(&format!("DROP TABLE IF EXISTS {}", quoted(&partition)))
                    .await?;
                txn.commit().await?;
                expired.longest_hold = expired.longest_hold.max(held.elapsed());
                expired.months.push(partition);
            }
        } else {
            targets.push(table.table().to_owned());
        }
        for target in targets {
            self.delete_before(&target, table.column(), before, &mut expired)
                .await?;
        }
        Ok(expired)
    }

    /// Deletes the rows of `table` whose `column` is below `before`, a batch a transaction
    /// (sized to take about [`BATCH_TARGET`]), and says so in `expired`.
    async fn delete_before(
        &self,
        table: &str,
        column: &str,
        before: i64,
        expired: &mut Expired,
    ) -> AppResult<()> {
        // Oldest first, each batch starting where the last one ended: the rows before it
        // are gone, and on PostgreSQL their index entries (dead until a vacuum) are not
        // walked again by every batch.
        let (t, c) = (quoted(table), quoted(column));
        let sql = match self.db.get_database_backend() {
            DbBackend::Postgres => format!(
                "DELETE FROM {t} WHERE ctid = ANY(ARRAY(\
                 SELECT ctid FROM {t} WHERE {c} >= $1 AND {c} < $2 ORDER BY {c} LIMIT $3)) \
                 RETURNING {c}"
            ),
            _ => format!(
                "DELETE FROM {t} WHERE rowid IN (\
                 SELECT rowid FROM {t} WHERE {c} >= ? AND {c} < ? ORDER BY {c} LIMIT ?) \
                 RETURNING {c}"
            ),
        };
        let (mut batch, mut from) = (FIRST_BATCH, i64::MIN);
        loop {
            let txn = self.begin_txn().await?;
            let held = std::time::Instant::now();
            let deleted = txn
                .conn()
                .query_all_raw(
                    self.statement(sql.clone(), vec![from.into(), before.into(), batch.into()]),
                )
                .await?;
            txn.commit().await?;
            let took = held.elapsed();
            let n = deleted.len() as u64;
            tracing::debug!(
                table,
                rows = n,
                took_us = took.as_micros() as u64,
                "expired a batch"
            );
            expired.longest_hold = expired.longest_hold.max(took);
            expired.rows += n;
            if n < batch {
                return Ok(());
            }
            for row in &deleted {
                from = from.max(row.try_get_by_index::<i64>(0)?);
            }
            batch = next_batch(batch, took);
            // The writers queued meanwhile go first.
            tokio::task::yield_now().await;
        }
    }
}

/// The next batch's rows after one of `rows` took `took`: toward [`BATCH_TARGET`], at most
/// doubling at a time.
fn next_batch(rows: u64, took: std::time::Duration) -> u64 {
    let scaled = rows as f64 * BATCH_TARGET.as_secs_f64() / took.as_secs_f64().max(1e-6);
    (scaled.min(rows as f64 * 2.0) as u64).clamp(*BATCH_ROWS.start(), *BATCH_ROWS.end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::EntityTrait;

    #[test]
    fn months_start_at_their_first_second_in_utc() {
        // 2026-12-07T20:00:00Z
        let t = 1_796_673_600;
        let december = Month::of(t);
        assert_eq!(december.partition("engagement"), "engagement_p202612");
        assert_eq!(december.start(), 1_796_083_200); // 2026-12-01T00:00:00Z
        assert_eq!(december.next().partition("x"), "x_p202701");
        assert_eq!(december.next().start(), 1_798_761_600); // 2027-01-01T00:00:00Z
        assert_eq!(Month::of(december.start()), december);
        assert_eq!(Month::of(december.start() - 1).partition("x"), "x_p202611");
    }

    #[test]
    fn partition_names_read_back_and_others_are_ignored() {
        let m = Month::of(1_796_673_600);
        assert_eq!(
            Month::of_partition("engagement", &m.partition("engagement")),
            Some(m)
        );
        for other in [
            "engagement_default",
            "engagement_p2026",
            "engagement_p202613",
            "impression_p202612",
            "engagement_p20261a",
        ] {
            assert_eq!(Month::of_partition("engagement", other), None, "{other}");
        }
    }

    #[test]
    fn batches_grow_toward_the_target_time_and_shrink_past_it() {
        use std::time::Duration;
        // Twice as fast as wanted: twice the rows, but no more than double at a time.
        assert_eq!(next_batch(100, BATCH_TARGET / 2), 200);
        assert_eq!(next_batch(100, Duration::from_micros(1)), 200);
        // Ten times too slow: a tenth.
        assert_eq!(next_batch(1_000, BATCH_TARGET * 10), 100);
        // Within bounds either way.
        assert_eq!(next_batch(10_000, Duration::from_micros(1)), 10_000);
        assert_eq!(next_batch(10, Duration::from_secs(5)), 10);
    }

    #[tokio::test]
    async fn expiry_deletes_batch_after_batch_and_keeps_what_is_newer() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.unwrap();
        // 2,500 keys at times 0..2500: several batches below 2,000 (the first takes 100).
        store
            .db
            .execute_unprepared(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 2499) \
                 INSERT INTO engagement_key (account_id, client_event_id, occurred_at) \
                 SELECT 'a', 'c' || i, i FROM n",
            )
            .await
            .unwrap();
        let expired = store.expire(Expiring::EventKeys, 2_000).await.unwrap();
        assert_eq!((expired.rows, expired.months), (2_000, Vec::new()));
        let left = engagement_key::Entity::find().all(&store.db).await.unwrap();
        assert_eq!(left.len(), 500);
        assert!(left.iter().all(|k| k.occurred_at >= 2_000));
        assert_eq!(
            store.expire(Expiring::EventKeys, 2_000).await.unwrap().rows,
            0
        );
        store.close().await;
    }
}
