//! Bulk import and export of the library through the interchange format.
//!
//! An import is one transaction across all its files: rows are read and validated on a
//! blocking thread while the previous batch is written, and the transaction commits only if
//! no row failed (or the caller asked for best effort, where bad rows are skipped).

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::domain::Asset;
use crate::error::{AppError, AppResult};
use crate::import::{Format, LibraryWriter, read_rows};
use crate::store::{Store, WriteCounts};

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
    pub last_seq: i64,
    pub seconds: f64,
}

struct Batch {
    assets: Vec<Asset>,
    problems: Vec<ImportProblem>,
    rows: u64,
}

/// Imports every source as one transaction. `progress` is called with the number of rows
/// read so far, about once per batch.
pub async fn import_sources(
    store: &Store,
    sources: Vec<ImportSource>,
    best_effort: bool,
    progress: impl Fn(u64),
) -> AppResult<ImportReport> {
    let started = Instant::now();
    let (sender, mut batches) = mpsc::channel::<Batch>(4);
    let reader = tokio::task::spawn_blocking(move || read_batches(sources, &sender));

    let mut report = ImportReport::default();
    let mut write = store.begin_write().await?;
    while let Some(batch) = batches.recv().await {
        report.rows += batch.rows;
        report.failed += batch.problems.len() as u64;
        let room = MAX_REPORTED_PROBLEMS.saturating_sub(report.problems.len());
        report
            .problems
            .extend(batch.problems.into_iter().take(room));
        // Once a row failed in an all-or-nothing import, only validation goes on.
        if best_effort || report.failed == 0 {
            report.counts += write.upsert_assets(&batch.assets).await?;
        }
        progress(report.rows);
    }
    reader.await.map_err(AppError::internal)?;
    if report.failed > 0 && !best_effort {
        drop(write);
        report.counts = WriteCounts::default();
    } else {
        report.last_seq = write.commit().await?;
        report.committed = true;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn read_batches(sources: Vec<ImportSource>, sender: &mpsc::Sender<Batch>) {
    let mut batch = Batch {
        assets: Vec::with_capacity(BATCH),
        problems: Vec::new(),
        rows: 0,
    };
    for source in sources {
        for row in read_rows(source.format, source.reader) {
            batch.rows += 1;
            match row {
                Ok((line, draft)) => match draft.validate() {
                    Ok(asset) => batch.assets.push(asset),
                    Err(errors) => {
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
                Err(e) => batch.problems.push(ImportProblem {
                    file: source.name.clone(),
                    line: e.line,
                    id: None,
                    field: e.field,
                    message: e.message,
                }),
            }
            if batch.assets.len() >= BATCH {
                let full = std::mem::replace(
                    &mut batch,
                    Batch {
                        assets: Vec::with_capacity(BATCH),
                        problems: Vec::new(),
                        rows: 0,
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
pub async fn export_library(store: &Store, path: &Path) -> AppResult<u64> {
    let format = Format::from_path(path).map_err(AppError::bad_input)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".stagefit-export-{}-{}.tmp",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
    ));
    let written = write_export(store, &tmp, format).await;
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

async fn write_export(store: &Store, tmp: &Path, format: Format) -> AppResult<u64> {
    let io_error =
        |e: std::io::Error| AppError::internal(anyhow::Error::new(e).context("writing the export"));
    let file = std::fs::File::create(tmp)
        .map_err(|e| AppError::bad_input(format!("{}: cannot create: {e}", tmp.display())))?;
    let mut writer = LibraryWriter::new(format, std::io::BufWriter::new(file));
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
