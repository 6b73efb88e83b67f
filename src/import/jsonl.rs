//! JSON Lines: one object per line; blank lines are skipped.

use std::io::{BufRead, Write};

use serde_json::{Map, Value};

use super::{Row, RowError, unknown_field_message};
use crate::domain::AssetDraft;

/// The objects of a JSON Lines stream with the line each is on. Blank lines are skipped,
/// a UTF-8 byte-order mark before the first line is ignored, and a line that is not a
/// JSON object is an error naming the line (and, for bad JSON, the column).
pub struct JsonObjects<R> {
    input: R,
    line: u64,
    buffer: String,
    failed: bool,
}

impl<R: BufRead> JsonObjects<R> {
    pub fn new(input: R) -> Self {
        Self {
            input,
            line: 0,
            buffer: String::new(),
            failed: false,
        }
    }
}

impl<R: BufRead> Iterator for JsonObjects<R> {
    type Item = Result<(u64, Map<String, Value>), RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            self.buffer.clear();
            self.line += 1;
            match self.input.read_line(&mut self.buffer) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(err) => {
                    // An unreadable file (or invalid UTF-8) ends the stream at this line.
                    self.failed = true;
                    return Some(Err(RowError {
                        line: self.line,
                        field: None,
                        message: format!("cannot read the line: {err}"),
                    }));
                }
            }
            let mut text = self.buffer.as_str();
            if self.line == 1 {
                text = text.trim_start_matches('\u{feff}');
            }
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let line = self.line;
            return Some(
                parse_object(text)
                    .map(|o| (line, o))
                    .map_err(|message| RowError {
                        line,
                        field: None,
                        message,
                    }),
            );
        }
    }
}

/// One line as a JSON object. A syntax error names its column only: the line is the
/// file's, which the caller reports (serde_json would say "line 1" of the one line).
fn parse_object(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str(text) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err("expected a JSON object".to_owned()),
        Err(err) => {
            let full = err.to_string();
            let position = format!(" at line {} column {}", err.line(), err.column());
            let reason = full.strip_suffix(&position).unwrap_or(&full);
            Err(format!(
                "not valid JSON at column {}: {reason}",
                err.column()
            ))
        }
    }
}

/// The assets of a JSON Lines file.
pub struct JsonlReader<R> {
    objects: JsonObjects<R>,
}

impl<R: BufRead> JsonlReader<R> {
    pub fn new(input: R) -> Self {
        Self {
            objects: JsonObjects::new(input),
        }
    }
}

impl<R: BufRead> Iterator for JsonlReader<R> {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        let (line, object) = match self.objects.next()? {
            Ok(found) => found,
            Err(err) => return Some(Err(err)),
        };
        Some(
            draft_from_object(object)
                .map(|d| (line, d))
                .map_err(|(field, message)| RowError {
                    line,
                    field,
                    message,
                }),
        )
    }
}

fn draft_from_object(object: Map<String, Value>) -> Result<AssetDraft, (Option<String>, String)> {
    let mut d = AssetDraft::default();
    for (key, value) in object {
        let err = |message: &str| (Some(key.clone()), message.to_owned());
        match key.as_str() {
            "id" => d.id = scalar(&value).map_err(|m| err(&m))?,
            "title" => d.title = string(&value).map_err(|m| err(&m))?,
            "summary" => d.summary = string(&value).map_err(|m| err(&m))?,
            "body" => d.body = string(&value).map_err(|m| err(&m))?,
            "url" => d.url = string(&value).map_err(|m| err(&m))?,
            "links" => d.links = list(&value).map_err(|m| err(&m))?,
            "image_url" => d.image_url = string(&value).map_err(|m| err(&m))?,
            "content_type" => d.content_type = string(&value).map_err(|m| err(&m))?,
            "language" => d.language = string(&value).map_err(|m| err(&m))?,
            "published_at" => d.published_at = string(&value).map_err(|m| err(&m))?,
            "reviewed_at" => d.reviewed_at = string(&value).map_err(|m| err(&m))?,
            "status" => d.status = string(&value).map_err(|m| err(&m))?,
            "stages" => d.stages = list(&value).map_err(|m| err(&m))?,
            "roles" => d.roles = list(&value).map_err(|m| err(&m))?,
            "industries" => d.industries = list(&value).map_err(|m| err(&m))?,
            "concerns" => d.concerns = list(&value).map_err(|m| err(&m))?,
            "topics" => d.topics = list(&value).map_err(|m| err(&m))?,
            "evergreen" => d.evergreen = boolean(&value).map_err(|m| err(&m))?,
            "gated" => d.gated = boolean(&value).map_err(|m| err(&m))?,
            // Written by exports; what is not declared is read again from the text.
            "tag_evidence" => {}
            other => return Err((Some(other.to_owned()), unknown_field_message(other))),
        }
    }
    Ok(d)
}

fn string(value: &Value) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err("expected a string".to_owned()),
    }
}

/// Ids may be written as numbers by spreadsheet exports.
fn scalar(value: &Value) -> Result<Option<String>, String> {
    match value {
        Value::Number(n) => Ok(Some(n.to_string())),
        other => string(other),
    }
}

/// A list of strings, or one string with `|` between values, as in CSV.
fn list(value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(s.split('|').map(str::to_owned).collect()),
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err("expected a list of strings".to_owned()),
            })
            .collect(),
        _ => Err("expected a list of strings".to_owned()),
    }
}

fn boolean(value: &Value) -> Result<Option<bool>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::String(s) => crate::domain::parse_bool(s),
        _ => Err("expected true or false".to_owned()),
    }
}

pub struct JsonlWriter<W> {
    output: W,
}

impl<W: Write> JsonlWriter<W> {
    pub fn new(output: W) -> Self {
        Self { output }
    }

    pub fn write(&mut self, draft: &AssetDraft) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.output, draft)?;
        self.output.write_all(b"\n")
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        self.output.flush()?;
        Ok(self.output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<Row> {
        JsonlReader::new(text.as_bytes()).collect()
    }

    #[test]
    fn reads_records_with_their_line_numbers() {
        let rows = rows(
            "{\"id\":\"a\",\"title\":\"A\",\"content_type\":\"EBOOK\",\"stages\":[\"awareness\"]}\n\n\
             {\"id\":7,\"title\":\"B\",\"content_type\":\"demo\",\"roles\":\"finance|procurement\",\"gated\":\"yes\"}\n",
        );
        let (line, a) = rows[0].clone().unwrap();
        assert_eq!((line, a.id.as_deref()), (1, Some("a")));
        assert_eq!(a.stages, vec!["awareness"]);
        let (line, b) = rows[1].clone().unwrap();
        assert_eq!((line, b.id.as_deref()), (3, Some("7")));
        assert_eq!(b.roles, vec!["finance", "procurement"]);
        assert_eq!(b.gated, Some(true));
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        let rows = rows(
            "\u{feff}{\"id\":\"a\",\"title\":\"A\",\"content_type\":\"ebook\"}\r\n{\"id\":\"b\"}\r\n",
        );
        let (line, a) = rows[0].clone().unwrap();
        assert_eq!((line, a.id.as_deref()), (1, Some("a")));
        assert_eq!(rows[1].clone().unwrap().0, 2);
    }

    #[test]
    fn bad_lines_name_their_line_and_field() {
        let rows = rows(
            "{\"id\":\"a\"}\n{not json\n{\"id\":\"b\",\"stages\":5}\n{\"id\":\"c\",\"stage\":\"x\"}\n[1]\n",
        );
        assert!(rows[0].is_ok());
        let e = rows[1].clone().unwrap_err();
        assert_eq!((e.line, e.field), (2, None));
        assert!(
            e.message.starts_with("not valid JSON at column 2: "),
            "{}",
            e.message
        );
        assert!(!e.message.contains("line"), "{}", e.message);
        let e = rows[2].clone().unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (3, Some("stages")));
        let e = rows[3].clone().unwrap_err();
        assert_eq!(e.line, 4);
        assert!(
            e.message.contains("did you mean \"stages\""),
            "{}",
            e.message
        );
        assert_eq!(
            rows[4].clone().unwrap_err().message,
            "expected a JSON object"
        );
    }
}
