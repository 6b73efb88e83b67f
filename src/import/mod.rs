//! Reading and writing the library interchange format (DESIGN.md section 3): one asset per
//! JSON line or per CSV row. Readers stream; each row becomes an `AssetDraft` or an error
//! with its line number. Validation into domain types happens in the caller, so the same
//! rules apply to every input path.

mod csv_format;
mod jsonl;
mod records;

use std::io::{BufRead, Write};
use std::path::Path;

use crate::domain::{Asset, AssetDraft};

pub use csv_format::{CsvReader, CsvRows, CsvWriter};
pub use jsonl::{JsonObjects, JsonlReader, JsonlWriter};
pub use records::{Record, read_records};

/// A row that could not even be read as a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub field: Option<String>,
    pub message: String,
}

/// One record read from a file, with the line it started on.
pub type Row = Result<(u64, AssetDraft), RowError>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

impl Format {
    /// By extension: `.jsonl`/`.ndjson`/`.json` or `.csv`.
    pub fn from_path(path: &Path) -> Result<Self, String> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        match ext.as_str() {
            "jsonl" | "ndjson" | "json" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            _ => Err(format!(
                "{}: unknown file type; use a .jsonl or .csv file",
                path.display()
            )),
        }
    }
}

/// Streams the rows of a file of either format.
pub fn read_rows<'a, R: BufRead + 'a>(
    format: Format,
    input: R,
) -> Box<dyn Iterator<Item = Row> + 'a> {
    match format {
        Format::Jsonl => Box::new(JsonlReader::new(input)),
        Format::Csv => Box::new(CsvReader::new(input)),
    }
}

/// Writes assets in either format.
pub enum LibraryWriter<W: Write> {
    Jsonl(JsonlWriter<W>),
    Csv(Box<CsvWriter<W>>),
}

/// How an export writes CSV.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CsvStyle {
    /// Plain UTF-8 with `\n` endings, for scripts and other tools.
    #[default]
    Plain,
    /// A byte-order mark and `\r\n` endings, for Excel.
    Excel,
}

impl<W: Write> LibraryWriter<W> {
    pub fn new(format: Format, style: CsvStyle, output: W) -> std::io::Result<Self> {
        Ok(match (format, style) {
            (Format::Jsonl, _) => LibraryWriter::Jsonl(JsonlWriter::new(output)),
            (Format::Csv, CsvStyle::Plain) => LibraryWriter::Csv(Box::new(CsvWriter::new(output))),
            (Format::Csv, CsvStyle::Excel) => {
                LibraryWriter::Csv(Box::new(CsvWriter::excel(output)?))
            }
        })
    }

    pub fn write(&mut self, asset: &Asset) -> std::io::Result<()> {
        match self {
            LibraryWriter::Jsonl(w) => w.write(&exported(asset)),
            LibraryWriter::Csv(w) => w.write(&exported(asset)),
        }
    }

    pub fn finish(self) -> std::io::Result<W> {
        match self {
            LibraryWriter::Jsonl(w) => w.finish(),
            LibraryWriter::Csv(w) => w.finish(),
        }
    }
}

/// Suggests the field a misspelt name probably meant.
/// An asset's record for an export: its declared tags, and where every tag came from.
fn exported(asset: &Asset) -> AssetDraft {
    AssetDraft {
        tag_evidence: asset.evidence_lines(),
        ..asset.to_draft()
    }
}

fn unknown_field_message(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    let guess = AssetDraft::FIELDS.iter().find(|f| {
        let f = f.to_ascii_lowercase();
        f.starts_with(&lower)
            || lower.starts_with(&f)
            || f.replace('_', "") == lower.replace(['_', '-', ' '], "")
    });
    match guess {
        Some(g) => format!("unknown field {name:?}; did you mean {g:?}?"),
        None => format!(
            "unknown field {name:?}; known fields are {}",
            AssetDraft::FIELDS.join(", ")
        ),
    }
}
