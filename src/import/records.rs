//! Accounts, contacts and engagement events in the same two formats as assets: one JSON
//! object per line, or CSV with a header row. Every field is a string (JSON numbers are
//! taken as their text, so spreadsheet ids survive); unknown fields are refused with the
//! line they are on.

use std::io::BufRead;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{CsvRows, Format, JsonObjects, RowError};

/// One record read from a file, with the line it started on.
pub type Record<T> = Result<(u64, T), RowError>;

/// Streams the records of a file of either format into `T`, a draft whose fields are
/// all optional strings named `fields`.
pub fn read_records<'a, T: DeserializeOwned + 'a, R: BufRead + 'a>(
    format: Format,
    input: R,
    fields: &'static [&'static str],
) -> Box<dyn Iterator<Item = Record<T>> + 'a> {
    match format {
        Format::Jsonl => Box::new(JsonObjects::new(input).map(move |object| {
            let (line, object) = object?;
            clean_object(object, fields)
                .and_then(|clean| {
                    serde_json::from_value(Value::Object(clean)).map_err(|e| (None, e.to_string()))
                })
                .map(|d| (line, d))
                .map_err(|(field, message)| row_error(line, field, message))
        })),
        Format::Csv => {
            let mut rows = CsvRows::new(input);
            let header = rows.header.clone().and_then(|h| {
                let names: Vec<String> = h.iter().map(|n| n.trim().to_ascii_lowercase()).collect();
                match names.iter().find(|n| !fields.contains(&n.as_str())) {
                    Some(unknown) => Err(row_error(
                        1,
                        Some(unknown.clone()),
                        format!("unknown column; known columns are {}", fields.join(", ")),
                    )),
                    None => Ok(names),
                }
            });
            match header {
                Err(e) => Box::new(std::iter::once(Err(e))),
                Ok(names) => Box::new(std::iter::from_fn(move || {
                    let (line, record) = match rows.next()? {
                        Ok(found) => found,
                        Err(err) => return Some(Err(err)),
                    };
                    let object: Map<String, Value> = names
                        .iter()
                        .zip(record.iter())
                        .filter(|(_, v)| !v.trim().is_empty())
                        .map(|(k, v)| (k.clone(), Value::String(v.to_owned())))
                        .collect();
                    Some(
                        serde_json::from_value(Value::Object(object))
                            .map(|d| (line, d))
                            .map_err(|e| row_error(line, None, e.to_string())),
                    )
                })),
            }
        }
    }
}

fn row_error(line: u64, field: Option<String>, message: String) -> RowError {
    RowError {
        line,
        field,
        message,
    }
}

/// The record's fields as strings (JSON numbers and booleans as their text; nulls left
/// out), refusing fields the record does not have.
fn clean_object(
    object: Map<String, Value>,
    fields: &[&str],
) -> Result<Map<String, Value>, (Option<String>, String)> {
    let mut clean = Map::new();
    for (key, value) in object {
        if !fields.contains(&key.as_str()) {
            return Err((
                Some(key),
                format!("unknown field; known fields are {}", fields.join(", ")),
            ));
        }
        let value = match value {
            Value::Null => continue,
            Value::Number(n) => Value::String(n.to_string()),
            Value::Bool(b) => Value::String(b.to_string()),
            Value::String(s) => Value::String(s),
            _ => return Err((Some(key), "expected a string".to_owned())),
        };
        clean.insert(key, value);
    }
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountDraft, EngagementDraft};

    #[test]
    fn both_formats_give_drafts_with_their_lines_and_refuse_unknown_fields() {
        let jsonl = "{\"id\": 42, \"name\": \"Acme\", \"stage\": \"DECISION\"}\n\n{\"id\": \"b\", \"colour\": \"red\"}\n";
        let rows: Vec<Record<AccountDraft>> =
            read_records(Format::Jsonl, jsonl.as_bytes(), AccountDraft::FIELDS).collect();
        let (line, first) = rows[0].as_ref().unwrap();
        assert_eq!((*line, first.id.as_deref()), (1, Some("42")));
        let err = rows[1].as_ref().unwrap_err();
        assert_eq!((err.line, err.field.as_deref()), (3, Some("colour")));

        let csv = "account_id,asset_id,kind,occurred_at\nacme,pricing-sheet,VIEW,\nacme,demo,COMPLETE,2026-01-02\n";
        let rows: Vec<Record<EngagementDraft>> =
            read_records(Format::Csv, csv.as_bytes(), EngagementDraft::FIELDS).collect();
        let (line, second) = rows[1].as_ref().unwrap();
        assert_eq!(*line, 3);
        assert_eq!(second.occurred_at, Some("2026-01-02".into()));
        assert_eq!(rows[0].as_ref().unwrap().1.occurred_at, None);
        // Lines as an editor shows them, for CRLF files with a byte-order mark too.
        let crlf = format!("\u{feff}{}", csv.replace('\n', "\r\n"));
        let rows: Vec<Record<EngagementDraft>> =
            read_records(Format::Csv, crlf.as_bytes(), EngagementDraft::FIELDS).collect();
        let lines: Vec<u64> = rows.iter().map(|r| r.as_ref().unwrap().0).collect();
        assert_eq!(lines, [2, 3]);
        let jsonl = "\u{feff}{\"id\": \"a\"}\r\n{\"id\": \"b\",}\r\n";
        let rows: Vec<Record<AccountDraft>> =
            read_records(Format::Jsonl, jsonl.as_bytes(), AccountDraft::FIELDS).collect();
        assert_eq!(rows[0].as_ref().unwrap().1.id.as_deref(), Some("a"));
        let err = rows[1].as_ref().unwrap_err();
        assert_eq!(err.line, 2);
        assert!(
            err.message.starts_with("not valid JSON at column 12"),
            "{}",
            err.message
        );
        let bad = "account_id,mood\nx,y\n";
        let rows: Vec<Record<EngagementDraft>> =
            read_records(Format::Csv, bad.as_bytes(), EngagementDraft::FIELDS).collect();
        assert_eq!(rows[0].as_ref().unwrap_err().field.as_deref(), Some("mood"));
    }
}
