//! CSV with a header row; list cells hold values separated by `|`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{BufRead, Read, Write};
use std::rc::Rc;

use super::{Row, RowError, unknown_field_message};
use crate::domain::{AssetDraft, parse_bool};

/// The records of a CSV stream (header row first), each with the line it starts on as an
/// editor shows it, for `\n` and `\r\n` endings, quoted cells spanning lines and a UTF-8
/// byte-order mark alike. Shared by assets and the account, contact and event records.
pub struct CsvRows<R: BufRead> {
    records: csv::StringRecordsIntoIter<LineTracking<R>>,
    lines: Rc<RefCell<LineBreaks>>,
    /// The header row, or why it cannot be read (line 1).
    pub header: Result<csv::StringRecord, RowError>,
    done: bool,
}

impl<R: BufRead> CsvRows<R> {
    pub fn new(input: R) -> Self {
        let lines = Rc::new(RefCell::new(LineBreaks::default()));
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(LineTracking {
                input,
                lines: lines.clone(),
                at_start: true,
            });
        let header = reader.headers().cloned().map_err(|err| RowError {
            line: 1,
            field: None,
            message: format!("cannot read the header row: {err}"),
        });
        Self {
            records: reader.into_records(),
            lines,
            header,
            done: false,
        }
    }

    fn line_at(&self, byte: u64) -> u64 {
        self.lines.borrow_mut().line_at(byte)
    }
}

impl<R: BufRead> Iterator for CsvRows<R> {
    type Item = Result<(u64, csv::StringRecord), RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.header.is_err() {
            return None;
        }
        match self.records.next()? {
            Ok(record) => {
                let line = record.position().map_or(0, |p| self.line_at(p.byte()));
                Some(Ok((line, record)))
            }
            Err(err) => {
                let line = err.position().map_or(0, |p| self.line_at(p.byte()));
                // A malformed CSV stream cannot be resynchronised reliably: stop here.
                if !matches!(err.kind(), csv::ErrorKind::UnequalLengths { .. }) {
                    self.done = true;
                }
                Some(Err(RowError {
                    line,
                    field: None,
                    message: csv_error_message(&err),
                }))
            }
        }
    }
}

/// The assets of a CSV file.
pub struct CsvReader<R: BufRead> {
    rows: CsvRows<R>,
    columns: Result<Vec<Column>, RowError>,
    done: bool,
}

/// Where the line breaks of the stream are, so a record's byte offset becomes the line an
/// editor shows. The csv crate's own line count runs one behind after `\r\n` endings (it
/// counts the `\n` only once the next record has begun), so it is not used.
#[derive(Default)]
struct LineBreaks {
    /// Offsets of the `\r` and `\n` bytes read but not yet passed by a record start.
    pending: VecDeque<(u64, u8)>,
    /// `\n` bytes before the first pending one.
    newlines_before: u64,
    /// Bytes handed to the CSV parser so far.
    offset: u64,
}

impl LineBreaks {
    /// The 1-based line of the first byte of a record that the parser says starts at
    /// `byte`. The parser may place the start on the line break that precedes the record,
    /// so line breaks right at `byte` are stepped over. Offsets only grow.
    fn line_at(&mut self, byte: u64) -> u64 {
        while let Some(&(at, b)) = self.pending.front() {
            if at >= byte {
                break;
            }
            self.newlines_before += u64::from(b == b'\n');
            self.pending.pop_front();
        }
        let mut next = byte;
        while let Some(&(at, b)) = self.pending.front() {
            if at != next {
                break;
            }
            self.newlines_before += u64::from(b == b'\n');
            self.pending.pop_front();
            next += 1;
        }
        self.newlines_before + 1
    }
}

/// The input as the CSV parser reads it: without a UTF-8 byte-order mark, with every
/// line break noted in [`LineBreaks`].
struct LineTracking<R> {
    input: R,
    lines: Rc<RefCell<LineBreaks>>,
    at_start: bool,
}

impl<R: BufRead> Read for LineTracking<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at_start {
            self.at_start = false;
            let head = self.input.fill_buf()?;
            if head.starts_with(b"\xEF\xBB\xBF") {
                self.input.consume(3);
            }
        }
        let n = self.input.read(buf)?;
        let mut lines = self.lines.borrow_mut();
        let start = lines.offset;
        for (i, b) in buf[..n].iter().enumerate() {
            if *b == b'\n' || *b == b'\r' {
                lines.pending.push_back((start + i as u64, *b));
            }
        }
        lines.offset += n as u64;
        Ok(n)
    }
}

#[derive(Clone, Copy)]
enum Column {
    Field(&'static str),
}

impl<R: BufRead> CsvReader<R> {
    pub fn new(input: R) -> Self {
        let rows = CsvRows::new(input);
        let columns = rows.header.clone().and_then(|h| parse_header(&h));
        Self {
            rows,
            columns,
            done: false,
        }
    }
}

fn parse_header(headers: &csv::StringRecord) -> Result<Vec<Column>, RowError> {
    let mut columns = Vec::new();
    for name in headers {
        let key = name.trim().to_ascii_lowercase();
        match AssetDraft::FIELDS.iter().find(|f| **f == key) {
            Some(field) => {
                if columns.iter().any(|Column::Field(f)| f == field) {
                    return Err(RowError {
                        line: 1,
                        field: Some(key),
                        message: "column appears twice".to_owned(),
                    });
                }
                columns.push(Column::Field(field))
            }
            None => {
                return Err(RowError {
                    line: 1,
                    field: Some(name.to_owned()),
                    message: unknown_field_message(name),
                });
            }
        }
    }
    for required in ["id", "title", "content_type"] {
        if !columns.iter().any(|Column::Field(f)| *f == required) {
            return Err(RowError {
                line: 1,
                field: Some(required.to_owned()),
                message: format!("the header row has no {required:?} column"),
            });
        }
    }
    Ok(columns)
}

impl<R: BufRead> Iterator for CsvReader<R> {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        if self.done {
            return None;
        }
        let columns = match &self.columns {
            Ok(columns) => columns,
            Err(err) => {
                self.done = true;
                return Some(Err(err.clone()));
            }
        };
        let (line, record) = match self.rows.next()? {
            Ok(found) => found,
            Err(err) => return Some(Err(err)),
        };
        let mut draft = AssetDraft::default();
        for (Column::Field(field), cell) in columns.iter().zip(record.iter()) {
            if let Err(message) = set_cell(&mut draft, field, cell) {
                return Some(Err(RowError {
                    line,
                    field: Some((*field).to_owned()),
                    message,
                }));
            }
        }
        Some(Ok((line, draft)))
    }
}

fn csv_error_message(err: &csv::Error) -> String {
    match err.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("has {len} cells but the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_owned(),
        _ => format!("cannot be read as CSV: {err}"),
    }
}

fn set_cell(d: &mut AssetDraft, field: &str, cell: &str) -> Result<(), String> {
    let text = || (!cell.trim().is_empty()).then(|| cell.to_owned());
    let list = || {
        cell.split('|')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    match field {
        "id" => d.id = text(),
        "title" => d.title = text(),
        "summary" => d.summary = text(),
        "body" => d.body = text(),
        "url" => d.url = text(),
        "links" => d.links = list(),
        "image_url" => d.image_url = text(),
        "content_type" => d.content_type = text(),
        "language" => d.language = text(),
        "published_at" => d.published_at = text(),
        "reviewed_at" => d.reviewed_at = text(),
        "status" => d.status = text(),
        "stages" => d.stages = list(),
        "roles" => d.roles = list(),
        "industries" => d.industries = list(),
        "concerns" => d.concerns = list(),
        "topics" => d.topics = list(),
        "evergreen" => d.evergreen = parse_bool(cell)?,
        "gated" => d.gated = parse_bool(cell)?,
        _ => {}
    }
    Ok(())
}

pub struct CsvWriter<W: Write> {
    writer: csv::Writer<W>,
    wrote_header: bool,
}

impl<W: Write> CsvWriter<W> {
    pub fn new(output: W) -> Self {
        Self {
            writer: csv::Writer::from_writer(output),
            wrote_header: false,
        }
    }

    /// CSV as Excel opens it correctly: a UTF-8 byte-order mark first (without it, Excel
    /// reads the file in the system's code page and garbles Chinese titles) and `\r\n`
    /// line endings.
    pub fn excel(mut output: W) -> std::io::Result<Self> {
        output.write_all("\u{feff}".as_bytes())?;
        Ok(Self {
            writer: csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(output),
            wrote_header: false,
        })
    }

    pub fn write(&mut self, d: &AssetDraft) -> std::io::Result<()> {
        if !self.wrote_header {
            self.writer.write_record(AssetDraft::FIELDS)?;
            self.wrote_header = true;
        }
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let bool_cell = |v: Option<bool>| v.map(|b| b.to_string()).unwrap_or_default();
        self.writer.write_record([
            opt(&d.id),
            opt(&d.title),
            opt(&d.summary),
            opt(&d.body),
            opt(&d.url),
            d.links.join("|"),
            opt(&d.image_url),
            opt(&d.content_type),
            d.stages.join("|"),
            d.roles.join("|"),
            d.industries.join("|"),
            d.concerns.join("|"),
            d.topics.join("|"),
            opt(&d.language),
            opt(&d.published_at),
            opt(&d.reviewed_at),
            bool_cell(d.evergreen),
            bool_cell(d.gated),
            opt(&d.status),
            d.tag_evidence.join("|"),
        ])?;
        Ok(())
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        if !self.wrote_header {
            self.writer.write_record(AssetDraft::FIELDS)?;
        }
        self.writer.flush()?;
        self.writer
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rows_with_file_line_numbers() {
        let text = "id,title,content_type,stages,roles,gated\n\
                    a,\"A, with comma\",ebook,awareness|interest,,yes\n\
                    b,\"B\nspans two lines\",demo,,finance,\n\
                    c,C,demo,,,\n";
        let rows: Vec<Row> = CsvReader::new(text.as_bytes()).collect();
        let (line, a) = rows[0].clone().unwrap();
        assert_eq!(line, 2);
        assert_eq!(a.title.as_deref(), Some("A, with comma"));
        assert_eq!(a.stages, vec!["awareness", "interest"]);
        assert_eq!(a.gated, Some(true));
        assert_eq!(rows[1].clone().unwrap().0, 3);
        assert_eq!(rows[2].clone().unwrap().0, 5);
    }

    /// The line of each row's error as an editor shows it: `bad` marks the bad rows.
    fn bad_lines(text: &str) -> Vec<u64> {
        CsvReader::new(text.as_bytes())
            .filter_map(|row| row.err())
            .map(|e| e.line)
            .collect()
    }

    #[test]
    fn bad_rows_are_reported_at_the_line_an_editor_shows() {
        let lf =
            "id,title,content_type,gated\na,A,ebook,\nb,B,demo,maybe\nc,C,demo,\nd,D,demo,often\n";
        assert_eq!(bad_lines(lf), [3, 5]);
        let crlf = lf.replace('\n', "\r\n");
        assert_eq!(bad_lines(&crlf), [3, 5], "CRLF");
        let bom = format!("\u{feff}{crlf}");
        assert_eq!(bad_lines(&bom), [3, 5], "BOM and CRLF");
        let bom_lf = format!("\u{feff}{lf}");
        assert_eq!(bad_lines(&bom_lf), [3, 5], "BOM and LF");
        // Quoted cells spanning lines push the next rows down, in both endings.
        let multi = "id,title,content_type,gated\na,\"A\nspans\nthree\",ebook,\nb,B,demo,maybe\n\
                     c,\"C\nspans two\",demo,\nd,D,demo,often\n";
        assert_eq!(bad_lines(multi), [5, 8]);
        assert_eq!(
            bad_lines(&multi.replace('\n', "\r\n")),
            [5, 8],
            "CRLF multi-line"
        );
        // Blank lines between rows count too; a row of the wrong width is named as well.
        let blanks = "id,title,content_type,gated\r\n\r\na,A,ebook,\r\n\r\n\r\nb,B\r\nc,C,demo,no\r\nd,D,demo,x";
        assert_eq!(bad_lines(blanks), [6, 8]);
        let rows: Vec<Row> = CsvReader::new(bom.as_bytes()).collect();
        let (line, first) = rows[0].clone().unwrap();
        assert_eq!((line, first.id.as_deref()), (2, Some("a")));
    }

    #[test]
    fn bad_cells_and_headers_are_reported() {
        let text = "id,title,content_type,gated\na,A,ebook,maybe\nb,B\n";
        let rows: Vec<Row> = CsvReader::new(text.as_bytes()).collect();
        let e = rows[0].clone().unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (2, Some("gated")));
        let e = rows[1].clone().unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.message.contains("2 cells but the header has 4"),
            "{}",
            e.message
        );

        let rows: Vec<Row> = CsvReader::new("id,title,type\n".as_bytes()).collect();
        let e = rows[0].clone().unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (1, Some("type")));
        let rows: Vec<Row> = CsvReader::new("id,title\n".as_bytes()).collect();
        assert!(
            rows[0]
                .clone()
                .unwrap_err()
                .message
                .contains("no \"content_type\" column")
        );
    }

    #[test]
    fn writes_what_it_reads() {
        let d = AssetDraft {
            id: Some("a".into()),
            title: Some("Quoted \"title\", with comma".into()),
            content_type: Some("EBOOK".into()),
            stages: vec!["AWARENESS".into(), "DECISION".into()],
            evergreen: Some(true),
            ..AssetDraft::default()
        };
        let mut w = CsvWriter::new(Vec::new());
        w.write(&d).unwrap();
        let bytes = w.finish().unwrap();
        let rows: Vec<Row> = CsvReader::new(bytes.as_slice()).collect();
        let (_, back) = rows[0].clone().unwrap();
        assert_eq!(back.title, d.title);
        assert_eq!(back.stages, d.stages);
        assert_eq!(back.evergreen, Some(true));
    }
}
