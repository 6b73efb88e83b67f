//! Backups of a SQLite database taken while servers write to it (`stagefit backup`), and
//! putting one back (`stagefit restore`). PostgreSQL has its own tools for both (`pg_dump`,
//! `pg_restore`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use super::{Store, sqlite_file};

impl Store {
    /// Writes a consistent copy of the whole database to `to`, a file that must not exist
    /// yet. SQLite's `VACUUM INTO` reads in one transaction, so writers go on meanwhile and
    /// the copy is the database as of one commit; it is written beside `to` and renamed
    /// into place only once complete.
    pub async fn backup_to(&self, to: &Path) -> anyhow::Result<u64> {
        if self.db.get_database_backend() != DbBackend::Sqlite {
            bail!(
                "stagefit backs up SQLite databases; for PostgreSQL use pg_dump (see the README)"
            );
        }
        if to.exists() {
            bail!("{} exists; give a new file name", to.display());
        }
        let partial = partial_path(to);
        let _ = std::fs::remove_file(&partial);
        let target = partial
            .to_str()
            .with_context(|| format!("{} is not a UTF-8 path", partial.display()))?;
        let written = self
            .db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "VACUUM INTO ?",
                [target.into()],
            ))
            .await;
        if let Err(err) = written {
            let _ = std::fs::remove_file(&partial);
            return Err(anyhow::Error::new(err).context("cannot write the backup"));
        }
        std::fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("cannot sync {}", partial.display()))?;
        std::fs::rename(&partial, to)
            .with_context(|| format!("cannot move the backup to {}", to.display()))?;
        Ok(std::fs::metadata(to).map(|m| m.len()).unwrap_or(0))
    }
}

/// `FILE.partial`, where a file is written before it is renamed into place.
fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Checks that `backup` is a SQLite database that stagefit wrote (it has the migrations
/// table and the library, and SQLite finds it intact).
pub async fn check_backup(backup: &Path) -> anyhow::Result<()> {
    if !backup.is_file() {
        bail!("{} is not a file", backup.display());
    }
    let mut options =
        sea_orm::ConnectOptions::new(format!("sqlite://{}?mode=ro", backup.display()));
    // The integrity check reads the whole file: slow by design, not worth sqlx's warning.
    options.sqlx_logging(false);
    let db = sea_orm::Database::connect(options)
        .await
        .with_context(|| format!("{} cannot be opened as a SQLite database", backup.display()))?;
    let checked = async {
        for table in ["seaql_migrations", "asset", "change_log"] {
            db.query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                format!("SELECT COUNT(*) FROM {table}"),
            ))
            .await
            .with_context(|| format!("{} is not a stagefit database", backup.display()))?;
        }
        let row = db
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA integrity_check",
            ))
            .await?
            .context("no answer to the integrity check")?;
        let verdict: String = row.try_get_by_index(0)?;
        if verdict != "ok" {
            bail!("{} is damaged: {verdict}", backup.display());
        }
        anyhow::Ok(())
    }
    .await;
    let _ = db.close().await;
    checked
}

/// Puts the backup `from` in place of the SQLite database of `url`: copied beside it,
/// synced, then renamed over it, so the database is the old one or the backup, never a
/// mix. The database it replaces is kept as `FILE.before-restore-TIME`, whose path is
/// returned (`None` when there was none). No process may have the database open.
pub fn replace_sqlite(url: &str, from: &Path) -> anyhow::Result<Option<PathBuf>> {
    let Some(path) = sqlite_file(url)? else {
        bail!("stagefit restores SQLite databases; for PostgreSQL use pg_restore (see the README)");
    };
    let incoming = partial_path(&path);
    std::fs::copy(from, &incoming)
        .with_context(|| format!("cannot copy {} to {}", from.display(), incoming.display()))?;
    std::fs::File::open(&incoming)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", incoming.display()))?;
    let with_suffix = |base: &Path, suffix: &str| {
        let mut name = base.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let kept = if path.exists() {
        let kept = with_suffix(
            &path,
            &format!(
                ".before-restore-{}",
                chrono::Utc::now().format("%Y%m%dT%H%M%S")
            ),
        );
        std::fs::rename(&path, &kept)
            .with_context(|| format!("cannot move {} aside", path.display()))?;
        // Its write-ahead log may hold its last commits: it goes with it.
        let wal = with_suffix(&path, "-wal");
        if wal.exists() {
            std::fs::rename(&wal, with_suffix(&kept, "-wal"))
                .with_context(|| format!("cannot move {} aside", wal.display()))?;
        }
        Some(kept)
    } else {
        None
    };
    let _ = std::fs::remove_file(with_suffix(&path, "-shm"));
    std::fs::rename(&incoming, &path)
        .with_context(|| format!("cannot move the backup to {}", path.display()))?;
    Ok(kept)
}
