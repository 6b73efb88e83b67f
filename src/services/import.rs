//! Bulk import and export of the library through the interchange format.
//!
//! An import is one transaction across all its files: rows are read and validated on a
//! blocking thread while the previous batch is written, and the transaction commits only if
//! no row failed (or the caller asked for best effort, where bad rows are skipped).

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Instant;

use tokio::sync::mpsc;

use super::references::EventReferences;
use crate::domain::Asset;
use crate::error::{AppError, AppResult};
use crate::import::{CsvStyle, Format, LibraryWriter, read_rows};
use crate::store::{Store, WriteCounts, preview_upserts};

const BATCH: usize = 1_000;
/// Problems kept for the report; the rest are only counted.
const MAX_REPORTED_PROBLEMS: usize = 100;

/// One input of an import: a name for messages, its format and its bytes.
pub struct ImportSource {
    pub name: String,
    pub format: Format,
    pub reader: Box<dyn BufRead + Send>,
}

impl ImportSource {
    pub fn open(path: &Path) -> AppResult<Self> {
        let format = Format::from_path(path).map_err(AppError::bad_input)?;
        let file = std::fs::File::open(path)
            .map_err(|e| AppError::bad_input(format!("{}: cannot open: {e}", path.display())))?;
        Ok(Self {
            name: path.display().to_string(),
            format,
            reader: Box::new(std::io::BufReader::with_capacity(1 << 20, file)),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportProblem {
    pub file: String,
    pub line: u64,
    pub id: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for ImportProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if let Some(id) = &self.id {
            write!(f, "[{id}] ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

#[derive(Clone, Debug, Default)]
pub struct ImportReport {
    pub rows: u64,
    pub counts: WriteCounts,
    pub failed: u64,
    /// The first problems found, in file order.
    pub problems: Vec<ImportProblem>,
    /// Whether anything was written.
    pub committed: bool,
    /// The change-log position before the import's first write and after its last: the
    /// import's writes are exactly the positions in between (the write lock is held
    /// from one to the other).
    pub first_seq: i64,
    pub last_seq: i64,
    pub seconds: f64,
    /// In a dry run, the valid assets read (nothing is written).
    pub dry_run_assets: Vec<Asset>,
}

/// How an import goes.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImportMode {
    /// Import the valid rows and report the rest, instead of importing nothing.
    pub best_effort: bool,
    /// Validate and count what would change, without writing (see [`preview_import`]).
    pub dry_run: bool,
}

struct Batch {
    assets: Vec<Asset>,
    problems: Vec<ImportProblem>,
    rows: u64,
    /// Rows that failed (a row can have several problems).
    failed: u64,
}

/// Imports every source as one transaction. `progress` is called with the number of rows
/// read so far, about once per batch. A dry run is [`preview_import`] on this store.
pub async fn import_sources(
    store: &Store,
    sources: Vec<ImportSource>,
    mode: ImportMode,
    progress: impl Fn(u64),
) -> AppResult<ImportReport> {
    import_sources_with(store, sources, mode, progress, |_| {}).await
}

/// [`import_sources`], handing every batch of assets it wrote to `written` (in the order
/// written, before the transaction commits).
pub async fn import_sources_with(
    store: &Store,
    sources: Vec<ImportSource>,
    mode: ImportMode,
    progress: impl Fn(u64),
    mut written: impl FnMut(&[Asset]),
) -> AppResult<ImportReport> {
    if mode.dry_run {
        return preview_import(Some(store), sources, progress).await;
    }
    let best_effort = mode.best_effort;
    let started = Instant::now();
    let mut write = store.begin_write().await?;
    let first_seq = write.position().await?;
    let mut report = read_in_batches(sources, progress, async |assets, report| {
        // Once a row failed in an all-or-nothing import, only validation goes on.
        if best_effort || report.failed == 0 {
            let counts = write.upsert_assets(assets).await?;
            written(assets);
            Ok(counts)
        } else {
            Ok(WriteCounts::default())
        }
    })
    .await?;
    report.first_seq = first_seq;
    if report.failed > 0 && !best_effort {
        drop(write);
        report.counts = WriteCounts::default();
    } else {
        report.last_seq = write.commit().await?;
        report.committed = true;
        store.announce(crate::store::ReplicaChange::Library).await;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// A dry run: reads and validates every source and counts what the import would create,
/// update or leave unchanged against the stored library (by content hash), or against
/// none when there is no database yet. Writes nothing, and never opens a transaction.
/// The valid assets are kept in `dry_run_assets` for [`super::gap_changes`].
pub async fn preview_import(
    store: Option<&Store>,
    sources: Vec<ImportSource>,
    progress: impl Fn(u64),
) -> AppResult<ImportReport> {
    let started = Instant::now();
    let mut earlier = std::collections::HashMap::new();
    let mut valid = Vec::new();
    let mut report = read_in_batches(sources, progress, async |assets, _| {
        valid.extend_from_slice(assets);
        preview_upserts(store, assets, &mut earlier).await
    })
    .await?;
    report.dry_run_assets = valid;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Reads the sources on a blocking thread in batches and hands each batch's valid assets
/// to `apply` (with the report so far, this batch's problems counted), adding up rows,
/// problems and what `apply` counted.
async fn read_in_batches(
    sources: Vec<ImportSource>,
    progress: impl Fn(u64),
    mut apply: impl AsyncFnMut(&[Asset], &ImportReport) -> AppResult<WriteCounts>,
) -> AppResult<ImportReport> {
    let (sender, mut batches) = mpsc::channel::<Batch>(4);
    let reader = tokio::task::spawn_blocking(move || read_batches(sources, &sender));
    let mut report = ImportReport::default();
    while let Some(batch) = batches.recv().await {
        report.rows += batch.rows;
        report.failed += batch.failed;
        let room = MAX_REPORTED_PROBLEMS.saturating_sub(report.problems.len());
        report
            .problems
            .extend(batch.problems.into_iter().take(room));
        let counts = apply(&batch.assets, &report).await?;
        report.counts += counts;
        progress(report.rows);
    }
    reader.await.map_err(AppError::internal)?;
    Ok(report)
}

fn read_batches(sources: Vec<ImportSource>, sender: &mpsc::Sender<Batch>) {
    let mut batch = Batch {
        assets: Vec::with_capacity(BATCH),
        problems: Vec::new(),
        rows: 0,
        failed: 0,
    };
    for source in sources {
        for row in read_rows(source.format, source.reader) {
            batch.rows += 1;
            match row {
                Ok((line, draft)) => match draft.validate() {
                    Ok(asset) => batch.assets.push(asset),
                    Err(errors) => {
                        batch.failed += 1;
                        batch
                            .problems
                            .extend(errors.into_iter().map(|e| ImportProblem {
                                file: source.name.clone(),
                                line,
                                id: draft.id.clone(),
                                field: Some(e.field.to_owned()),
                                message: e.message,
                            }))
                    }
                },
                Err(e) => {
                    batch.failed += 1;
                    batch.problems.push(ImportProblem {
                        file: source.name.clone(),
                        line: e.line,
                        id: None,
                        field: e.field,
                        message: e.message,
                    })
                }
            }
            if batch.assets.len() >= BATCH {
                let full = std::mem::replace(
                    &mut batch,
                    Batch {
                        assets: Vec::with_capacity(BATCH),
                        problems: Vec::new(),
                        rows: 0,
                        failed: 0,
                    },
                );
                if sender.blocking_send(full).is_err() {
                    return;
                }
            }
        }
    }
    let _ = sender.blocking_send(batch);
}

/// Writes the whole library to `path` (format by extension) through a temporary file, so
/// a failed export never leaves a half-written file behind. Returns the number of assets.
pub async fn export_library(store: &Store, path: &Path, style: CsvStyle) -> AppResult<u64> {
    let format = Format::from_path(path).map_err(AppError::bad_input)?;
    if style == CsvStyle::Excel && format != Format::Csv {
        return Err(AppError::bad_input(format!(
            "{}: --excel applies to .csv exports",
            path.display()
        )));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".stagefit-export-{}-{}.tmp",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
    ));
    let written = write_export(store, &tmp, format, style).await;
    let result = written.and_then(|count| {
        std::fs::rename(&tmp, path)
            .map(|()| count)
            .map_err(|e| AppError::bad_input(format!("{}: cannot write: {e}", path.display())))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

async fn write_export(
    store: &Store,
    tmp: &Path,
    format: Format,
    style: CsvStyle,
) -> AppResult<u64> {
    let io_error =
        |e: std::io::Error| AppError::internal(anyhow::Error::new(e).context("writing the export"));
    let file = std::fs::File::create(tmp)
        .map_err(|e| AppError::bad_input(format!("{}: cannot create: {e}", tmp.display())))?;
    let mut writer =
        LibraryWriter::new(format, style, std::io::BufWriter::new(file)).map_err(io_error)?;
    let mut after: Option<String> = None;
    let mut count = 0u64;
    loop {
        let page = store.assets_after(after.as_deref(), 1_000).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.to_string());
        count += page.len() as u64;
        writer = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            for asset in &page {
                writer.write(asset)?;
            }
            Ok(writer)
        })
        .await
        .map_err(AppError::internal)?
        .map_err(io_error)?;
    }
    let mut out = writer.finish().map_err(io_error)?;
    out.flush().map_err(io_error)?;
    let file = out
        .into_inner()
        .map_err(|e| AppError::internal(anyhow::anyhow!("writing the export: {e}")))?;
    file.sync_all().map_err(io_error)?;
    Ok(count)
}

/// What a file of records other than assets holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    Accounts,
    Contacts,
    Engagements,
}

struct Located<T> {
    file: String,
    line: u64,
    id: Option<String>,
    value: T,
}

/// Reads and validates every record of the sources on the blocking pool: the valid ones
/// with their lines, and a report counting rows and problems.
async fn read_all<D, T>(
    sources: Vec<ImportSource>,
    fields: &'static [&'static str],
    id_of: fn(&D) -> Option<String>,
    validate: impl Fn(&D) -> Result<T, Vec<crate::domain::FieldError>> + Send + 'static,
) -> AppResult<(Vec<Located<T>>, ImportReport)>
where
    D: serde::de::DeserializeOwned + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let mut report = ImportReport::default();
        let records = read_all_blocking(sources, fields, id_of, validate, &mut report);
        (records, report)
    })
    .await
    .map_err(AppError::internal)
}

fn read_all_blocking<D: serde::de::DeserializeOwned, T>(
    sources: Vec<ImportSource>,
    fields: &'static [&'static str],
    id_of: fn(&D) -> Option<String>,
    validate: impl Fn(&D) -> Result<T, Vec<crate::domain::FieldError>>,
    report: &mut ImportReport,
) -> Vec<Located<T>> {
    let mut out = Vec::new();
    for source in sources {
        for record in crate::import::read_records::<D, _>(source.format, source.reader, fields) {
            report.rows += 1;
            match record {
                Ok((line, draft)) => match validate(&draft) {
                    Ok(value) => out.push(Located {
                        file: source.name.clone(),
                        line,
                        id: id_of(&draft),
                        value,
                    }),
                    Err(errors) => {
                        for e in errors {
                            push_problem(
                                report,
                                ImportProblem {
                                    file: source.name.clone(),
                                    line,
                                    id: id_of(&draft),
                                    field: Some(e.field.to_owned()),
                                    message: e.message,
                                },
                            );
                        }
                    }
                },
                Err(e) => push_problem(
                    report,
                    ImportProblem {
                        file: source.name.clone(),
                        line: e.line,
                        id: None,
                        field: e.field,
                        message: e.message,
                    },
                ),
            }
        }
    }
    out
}

fn push_problem(report: &mut ImportReport, problem: ImportProblem) {
    report.failed += 1;
    if report.problems.len() < MAX_REPORTED_PROBLEMS {
        report.problems.push(problem);
    }
}

/// Refuses the records whose reference `missing` says is absent; keeps the rest.
fn check_references<T>(
    report: &mut ImportReport,
    records: Vec<Located<T>>,
    missing: impl Fn(&T) -> Option<(&'static str, String)>,
) -> Vec<Located<T>> {
    let mut kept = Vec::with_capacity(records.len());
    for r in records {
        match missing(&r.value) {
            Some((field, message)) => push_problem(
                report,
                ImportProblem {
                    file: r.file,
                    line: r.line,
                    id: r.id,
                    field: Some(field.to_owned()),
                    message,
                },
            ),
            None => kept.push(r),
        }
    }
    kept
}

/// Imports accounts, contacts or engagement events. Every record is read and checked
/// (fields, and that the accounts, contacts and assets they name exist) before anything is
/// written; then all are written in one transaction, or nothing when a record failed and
/// `best_effort` is off. Events are filed under their account's cohort as the CRM describes
/// it (industry, and the CRM stage or else `default_stage`): an import does not replay
/// stage inference.
pub async fn import_records(
    store: &Store,
    kind: RecordKind,
    sources: Vec<ImportSource>,
    best_effort: bool,
    default_stage: crate::domain::Stage,
) -> AppResult<ImportReport> {
    use crate::domain::{AccountDraft, ContactDraft, EngagementDraft};
    use std::collections::HashSet;

    let started = Instant::now();
    let now = chrono::Utc::now();
    let (mut report, written) = match kind {
        RecordKind::Accounts => {
            let (records, report) = read_all(
                sources,
                AccountDraft::FIELDS,
                |d: &AccountDraft| d.id.clone(),
                move |d| d.validate(now),
            )
            .await?;
            let written = if report.failed > 0 && !best_effort {
                0
            } else {
                let accounts: Vec<_> = records.into_iter().map(|r| r.value).collect();
                store.upsert_accounts(&accounts).await?.len()
            };
            (report, written)
        }
        RecordKind::Contacts => {
            let (records, mut report) = read_all(
                sources,
                ContactDraft::FIELDS,
                |d: &ContactDraft| d.id.clone(),
                ContactDraft::validate,
            )
            .await?;
            let wanted = super::distinct(records.iter().map(|r| r.value.account_id.to_string()));
            let found: HashSet<String> = store
                .existing_accounts(&wanted)
                .await?
                .into_iter()
                .collect();
            let records = check_references(&mut report, records, |c| {
                (!found.contains(c.account_id.as_str())).then(|| {
                    (
                        "account_id",
                        format!("no account with id {:?}", c.account_id.as_str()),
                    )
                })
            });
            let written = if report.failed > 0 && !best_effort {
                0
            } else {
                let contacts: Vec<_> = records.into_iter().map(|r| r.value).collect();
                store.upsert_contacts(&contacts).await?;
                contacts.len()
            };
            (report, written)
        }
        RecordKind::Engagements => {
            let (records, mut report) = read_all(
                sources,
                EngagementDraft::FIELDS,
                |d: &EngagementDraft| d.client_event_id.clone(),
                move |d| d.validate(now),
            )
            .await?;
            let events: Vec<&crate::domain::Engagement> =
                records.iter().map(|r| &r.value).collect();
            let refs = EventReferences::load(store, &events).await?;
            let records = check_references(&mut report, records, |e| refs.missing(e));
            let written = if report.failed > 0 && !best_effort {
                0
            } else {
                let rows: Vec<_> = records
                    .into_iter()
                    .map(|r| {
                        let a = refs.account(r.value.account_id.as_str());
                        let cohort = crate::domain::cohort_key(
                            a.and_then(|a| a.industry.as_ref()),
                            a.and_then(|a| a.stage).unwrap_or(default_stage),
                        );
                        (r.value, cohort)
                    })
                    .collect();
                store.insert_engagements(&rows).await? as usize
            };
            (report, written)
        }
    };
    report.committed = report.failed == 0 || best_effort;
    report.counts.created = written as u64;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
