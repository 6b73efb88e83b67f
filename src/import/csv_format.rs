//! CSV with a header row; list cells hold values separated by `|`.

use std::io::{BufRead, Write};

use super::{Row, RowError, unknown_field_message};
use crate::domain::{AssetDraft, parse_bool};

pub struct CsvReader<R: BufRead> {
    records: csv::StringRecordsIntoIter<R>,
    columns: Result<Vec<Column>, RowError>,
    done: bool,
}

#[derive(Clone, Copy)]
enum Column {
    Field(&'static str),
}

impl<R: BufRead> CsvReader<R> {
    pub fn new(input: R) -> Self {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(input);
        let columns = match reader.headers() {
            Ok(headers) => parse_header(headers),
            Err(err) => Err(RowError {
                line: 1,
                field: None,
                message: format!("cannot read the header row: {err}"),
            }),
        };
        Self {
            records: reader.into_records(),
            columns,
            done: false,
        }
    }
}

fn parse_header(headers: &csv::StringRecord) -> Result<Vec<Column>, RowError> {
    let mut columns = Vec::new();
    for name in headers {
        let key = name
            .trim()
            .trim_start_matches('\u{feff}')
            .to_ascii_lowercase();
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
        let record = match self.records.next()? {
            Ok(record) => record,
            Err(err) => {
                let line = err.position().map(|p| p.line()).unwrap_or(0);
                // A malformed CSV stream cannot be resynchronised reliably: stop here.
                if !matches!(err.kind(), csv::ErrorKind::UnequalLengths { .. }) {
                    self.done = true;
                }
                return Some(Err(RowError {
                    line,
                    field: None,
                    message: csv_error_message(&err),
                }));
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
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
