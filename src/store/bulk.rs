//! Bulk writes (`stagefit generate-engagement`, `generate-feedback`): many rows through
//! statements that bind values directly (SQLite, a few thousand values a statement, its
//! prepared form reused) or through `COPY` (PostgreSQL), in one transaction that holds the
//! process's writer lock. Tables and columns are named through their entities; values are
//! always bound or escaped, never spliced into the SQL.

use std::fmt::Write as _;

use sea_orm::sqlx::{self, AssertSqlSafe, Connection, Postgres, SqliteConnection};
use sea_orm::{DbBackend, DbErr, RuntimeErr};
use tokio::sync::OwnedMutexGuard;

use super::Store;
use crate::error::{AppError, AppResult};

/// One value of a row.
#[derive(Clone, Copy, Debug)]
pub(super) enum Cell<'a> {
    Text(&'a str),
    Int(i64),
    Bool(bool),
    Real(f64),
    Null,
}

impl<'a> From<Option<&'a str>> for Cell<'a> {
    fn from(v: Option<&'a str>) -> Self {
        v.map_or(Cell::Null, Cell::Text)
    }
}

/// What a row whose key is already stored does.
#[derive(Clone, Copy, Debug)]
pub(super) enum OnKey<'a> {
    /// Nothing is expected there: the statement fails (the transaction with it).
    Fail,
    /// The stored row keeps its values.
    Keep { keys: &'a [&'a str] },
    /// The new row's `sums` are added to the stored ones.
    Add {
        keys: &'a [&'a str],
        sums: &'a [&'a str],
    },
}

/// At most this many values a statement on SQLite (its limit is 32,766).
const SQLITE_VALUES: usize = 16_000;
/// SQLite's page cache for a bulk transaction, in KiB (its default is 2 MiB): rows land
/// all over the indexes of a large database, and every page the cache lost is read again
/// from the file.
const SQLITE_BULK_CACHE_KIB: i64 = 256 * 1024;
/// `COPY` data sent in pieces of about this many bytes.
const COPY_PIECE: usize = 1 << 20;

enum Txn {
    /// A connection taken out of the pool for this transaction alone: the large page
    /// cache leaves with it, and closed without `COMMIT` (an error, a panic) it rolls back.
    Sqlite(SqliteConnection),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// An open bulk transaction (see the module).
pub(super) struct Bulk {
    txn: Txn,
    _guard: OwnedMutexGuard<()>,
}

fn failed(err: sqlx::Error) -> AppError {
    AppError::from(DbErr::Exec(RuntimeErr::SqlxError(std::sync::Arc::new(err))))
}

impl Store {
    /// Begins a bulk transaction (SQLite: `BEGIN IMMEDIATE`, the writer from the start).
    pub(super) async fn bulk(&self) -> AppResult<Bulk> {
        let guard = self.write_lock.clone().lock_owned().await;
        let txn = match self.db.get_database_backend() {
            DbBackend::Sqlite => {
                let mut conn = self
                    .db
                    .get_sqlite_connection_pool()
                    .acquire()
                    .await
                    .map_err(failed)?
                    .detach();
                // A pragma takes no bound value; the size is ours.
                let cache = format!("PRAGMA cache_size = -{SQLITE_BULK_CACHE_KIB}");
                for statement in [cache.as_str(), "BEGIN IMMEDIATE"] {
                    sqlx::query(AssertSqlSafe(statement))
                        .execute(&mut conn)
                        .await
                        .map_err(failed)?;
                }
                Txn::Sqlite(conn)
            }
            _ => Txn::Postgres(
                self.db
                    .get_postgres_connection_pool()
                    .begin()
                    .await
                    .map_err(failed)?,
            ),
        };
        Ok(Bulk { txn, _guard: guard })
    }
}

/// A name as an SQL identifier, in double quotes.
pub(super) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"a", "b"`.
fn quoted_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| quoted(n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ON CONFLICT ...` for `table`, or nothing.
fn conflict_clause(table: &str, on_key: OnKey<'_>) -> String {
    match on_key {
        OnKey::Fail => String::new(),
        OnKey::Keep { keys } => format!(" ON CONFLICT ({}) DO NOTHING", quoted_list(keys)),
        OnKey::Add { keys, sums } => {
            let set = sums
                .iter()
                .map(|c| {
                    let c = quoted(c);
                    format!("{c} = {}.{c} + excluded.{c}", quoted(table))
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!(" ON CONFLICT ({}) DO UPDATE SET {set}", quoted_list(keys))
        }
    }
}

/// One value in `COPY`'s text format.
fn copy_cell(out: &mut String, cell: Cell<'_>) {
    match cell {
        Cell::Null => out.push_str("\\N"),
        Cell::Int(v) => {
            let _ = write!(out, "{v}");
        }
        Cell::Bool(v) => out.push(if v { 't' } else { 'f' }),
        Cell::Real(v) => {
            let _ = write!(out, "{v:?}");
        }
        Cell::Text(s) => {
            for ch in s.chars() {
                match ch {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
        }
    }
}

impl Bulk {
    /// Writes rows of `columns` into `table`: `cells` holds them one after another.
    pub(super) async fn write(
        &mut self,
        table: &str,
        columns: &[&str],
        cells: &[Cell<'_>],
        on_key: OnKey<'_>,
    ) -> AppResult<()> {
        if columns.is_empty() || cells.is_empty() {
            return Ok(());
        }
        debug_assert_eq!(cells.len() % columns.len(), 0);
        match &mut self.txn {
            Txn::Sqlite(conn) => insert_sqlite(conn, table, columns, cells, on_key).await,
            Txn::Postgres(txn) => copy_postgres(txn, table, columns, cells, on_key).await,
        }
        .map_err(failed)
    }

    pub(super) async fn commit(self) -> AppResult<()> {
        match self.txn {
            Txn::Sqlite(mut conn) => {
                sqlx::query("COMMIT")
                    .execute(&mut conn)
                    .await
                    .map_err(failed)?;
                conn.close().await.map_err(failed)
            }
            Txn::Postgres(txn) => txn.commit().await.map_err(failed),
        }
    }
}

/// Multi-row `INSERT`s of at most [`SQLITE_VALUES`] bound values.
async fn insert_sqlite(
    conn: &mut SqliteConnection,
    table: &str,
    columns: &[&str],
    cells: &[Cell<'_>],
    on_key: OnKey<'_>,
) -> Result<(), sqlx::Error> {
    let head = format!("INSERT INTO {} ({})", quoted(table), quoted_list(columns));
    let conflict = conflict_clause(table, on_key);
    let row = format!("({})", vec!["?"; columns.len()].join(", "));
    let per = (SQLITE_VALUES / columns.len()).max(1) * columns.len();
    for chunk in cells.chunks(per) {
        let rows = vec![row.as_str(); chunk.len() / columns.len()].join(", ");
        let mut query = sqlx::query(AssertSqlSafe(format!("{head} VALUES {rows}{conflict}")));
        for cell in chunk {
            query = match *cell {
                Cell::Text(s) => query.bind(s),
                Cell::Int(v) => query.bind(v),
                Cell::Bool(v) => query.bind(v),
                Cell::Real(v) => query.bind(v),
                Cell::Null => query.bind(None::<i64>),
            };
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// `COPY` into `table`, or, when a row's key may be stored, into a temporary table merged
/// with one `INSERT ... SELECT ... ON CONFLICT`.
async fn copy_postgres(
    txn: &mut sqlx::Transaction<'static, Postgres>,
    table: &str,
    columns: &[&str],
    cells: &[Cell<'_>],
    on_key: OnKey<'_>,
) -> Result<(), sqlx::Error> {
    let names = quoted_list(columns);
    let target = match on_key {
        OnKey::Fail => quoted(table),
        _ => {
            let scratch = quoted(&format!("bulk_{table}"));
            let create = format!(
                "CREATE TEMPORARY TABLE IF NOT EXISTS {scratch} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP",
                quoted(table)
            );
            sqlx::query(AssertSqlSafe(create))
                .execute(&mut **txn)
                .await?;
            scratch
        }
    };
    let mut copy = txn
        .copy_in_raw(&format!("COPY {target} ({names}) FROM STDIN"))
        .await?;
    let mut data = String::with_capacity(COPY_PIECE + 4096);
    for row in cells.chunks(columns.len()) {
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                data.push('\t');
            }
            copy_cell(&mut data, *cell);
        }
        data.push('\n');
        if data.len() >= COPY_PIECE {
            copy.send(data.as_bytes()).await?;
            data.clear();
        }
    }
    if !data.is_empty() {
        copy.send(data.as_bytes()).await?;
    }
    copy.finish().await?;
    if matches!(on_key, OnKey::Fail) {
        return Ok(());
    }
    let merge = format!(
        "INSERT INTO {} ({names}) SELECT {names} FROM {target}{}",
        quoted(table),
        conflict_clause(table, on_key)
    );
    sqlx::query(AssertSqlSafe(merge))
        .execute(&mut **txn)
        .await?;
    sqlx::query(AssertSqlSafe(format!("TRUNCATE {target}")))
        .execute(&mut **txn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_bulk_write_leaves_nothing_and_the_store_writes_on() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.unwrap();
        let share = crate::domain::Share {
            account: "acme".into(),
            asset: "a".into(),
            cohort: "*|AWARENESS".into(),
            weight: 1.0,
            first_at: 0,
        };
        // More rows than one statement takes, the last a key already written: the second
        // statement fails after the first one's rows went in.
        let mut shares: Vec<_> = (0..SQLITE_VALUES / 5 + 10)
            .map(|i| crate::domain::Share {
                asset: format!("a{i:05}"),
                ..share.clone()
            })
            .collect();
        shares.push(shares[SQLITE_VALUES / 5 + 5].clone());
        assert!(store.insert_events_bulk(&[], &shares).await.is_err());
        assert!(store.counters_empty().await.unwrap(), "a half-written load");
        // The writer lock and the database are free for the next write.
        store.insert_events_bulk(&[], &[share]).await.unwrap();
        assert!(!store.counters_empty().await.unwrap());
        store.close().await;
    }

    #[test]
    fn copy_text_escapes_what_would_end_a_value() {
        let mut out = String::new();
        for cell in [
            Cell::Text("a\tb\\c\nd\re"),
            Cell::Null,
            Cell::Int(-3),
            Cell::Real(0.1),
        ] {
            copy_cell(&mut out, cell);
            out.push('|');
        }
        assert_eq!(out, "a\\tb\\\\c\\nd\\re|\\N|-3|0.1|");
    }

    #[test]
    fn adding_on_conflict_names_the_table_and_its_columns() {
        let clause = conflict_clause(
            "co_read",
            OnKey::Add {
                keys: &["asset_id", "next_id"],
                sums: &["weight"],
            },
        );
        assert_eq!(
            clause,
            " ON CONFLICT (\"asset_id\", \"next_id\") DO UPDATE SET \"weight\" = \"co_read\".\"weight\" + excluded.\"weight\""
        );
    }
}
