//! A name for each executed operation, for the request log: its `operationName` when the
//! client gave one, else its type and root fields (`query search,taxonomy`, `mutation
//! upsertAssets`).
//!
//! The root fields are read by a scan of the document's text, not a parse: an
//! async-graphql extension could read them from the parsed document, but registering any
//! extension sends every field of every response through the extension chain, which cost
//! 12-15% of a recommendation's throughput. The scan is linear and allocation-light, and
//! gives up (an empty label) on anything it does not follow; the log line is all it feeds.

/// `query search,taxonomy` for `{ search(...) { ... } taxonomy { ... } }`; `""` when the
/// text is not a document the scan follows.
pub fn operation_label(document: &str) -> String {
    let mut scan = Scan {
        bytes: document.as_bytes(),
        at: 0,
    };
    let kind = match scan.word() {
        Some(word @ ("query" | "mutation" | "subscription")) => {
            // An optional name, then optional variable definitions, then the selection.
            scan.skip_ignored();
            if scan.peek().is_some_and(is_name_start) {
                scan.word();
            }
            scan.skip_ignored();
            if scan.peek() == Some(b'(') && !scan.skip_group(b'(', b')') {
                return String::new();
            }
            word
        }
        Some(_) => return String::new(),
        None => "query",
    };
    scan.skip_directives();
    scan.skip_ignored();
    if scan.peek() != Some(b'{') {
        return String::new();
    }
    scan.at += 1;
    let mut fields: Vec<&str> = Vec::new();
    loop {
        scan.skip_ignored();
        match scan.peek() {
            Some(b'}') => break,
            Some(b'.') => {
                // A fragment spread or inline fragment at the root.
                fields.push("...");
                while scan.peek() == Some(b'.') {
                    scan.at += 1;
                }
                scan.skip_ignored();
                if scan.peek().is_some_and(is_name_start) {
                    scan.word();
                }
            }
            Some(b) if is_name_start(b) => {
                let Some(mut name) = scan.word() else {
                    return String::new();
                };
                scan.skip_ignored();
                if scan.peek() == Some(b':') {
                    // `alias: field`: the field is what ran.
                    scan.at += 1;
                    scan.skip_ignored();
                    match scan.word() {
                        Some(field) => name = field,
                        None => return String::new(),
                    }
                }
                if !fields.contains(&name) {
                    if fields.len() == MAX_LABEL_FIELDS {
                        fields.push("...");
                        break;
                    }
                    fields.push(name);
                }
            }
            _ => return String::new(),
        }
        scan.skip_ignored();
        if scan.peek() == Some(b'(') && !scan.skip_group(b'(', b')') {
            return String::new();
        }
        scan.skip_directives();
        scan.skip_ignored();
        if scan.peek() == Some(b'{') && !scan.skip_group(b'{', b'}') {
            return String::new();
        }
    }
    format!("{kind} {}", fields.join(","))
}

/// Root fields named in a label at most; a document naming more ends its label with `...`.
const MAX_LABEL_FIELDS: usize = 8;

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Whitespace, commas, byte-order marks and `#` comments: what GraphQL ignores.
    fn skip_ignored(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | b',' => self.at += 1,
                0xEF if self.bytes[self.at..].starts_with(b"\xEF\xBB\xBF") => self.at += 3,
                b'#' => {
                    while self.peek().is_some_and(|b| b != b'\n') {
                        self.at += 1;
                    }
                }
                _ => break,
            }
        }
    }

    /// The name at the cursor, after ignored characters.
    fn word(&mut self) -> Option<&'a str> {
        self.skip_ignored();
        let start = self.at;
        if !self.peek().is_some_and(is_name_start) {
            return None;
        }
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.at += 1;
        }
        std::str::from_utf8(&self.bytes[start..self.at]).ok()
    }

    /// `@name(...)` directives.
    fn skip_directives(&mut self) {
        loop {
            self.skip_ignored();
            if self.peek() != Some(b'@') {
                return;
            }
            self.at += 1;
            self.word();
            self.skip_ignored();
            if self.peek() == Some(b'(') && !self.skip_group(b'(', b')') {
                return;
            }
        }
    }

    /// Past a balanced group opening at the cursor, strings and comments included;
    /// `false` when it never closes.
    fn skip_group(&mut self, open: u8, close: u8) -> bool {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            if b == b'"' {
                if !self.skip_string() {
                    return false;
                }
                continue;
            }
            if b == b'#' {
                self.skip_ignored();
                continue;
            }
            self.at += 1;
            if b == open {
                depth += 1;
            } else if b == close {
                depth -= 1;
                if depth == 0 {
                    return true;
                }
            }
        }
        false
    }

    /// Past a `"..."` or `"""..."""` string at the cursor.
    fn skip_string(&mut self) -> bool {
        if self.bytes[self.at..].starts_with(b"\"\"\"") {
            self.at += 3;
            while self.at < self.bytes.len() {
                if self.bytes[self.at..].starts_with(b"\\\"\"\"") {
                    self.at += 4;
                } else if self.bytes[self.at..].starts_with(b"\"\"\"") {
                    self.at += 3;
                    return true;
                } else {
                    self.at += 1;
                }
            }
            return false;
        }
        self.at += 1;
        while let Some(b) = self.peek() {
            self.at += 1;
            match b {
                b'\\' => self.at += 1,
                b'"' => return true,
                _ => {}
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_root_fields_an_operation_runs() {
        let cases = [
            (
                "{ search(query: \"x\") { totalCount } taxonomy { stages { name } } }",
                "query search,taxonomy",
            ),
            (
                "query Q($a: AudienceInput!) { recommendations(audience: $a) { items { score } } }",
                "query recommendations",
            ),
            (
                "mutation { upsertAssets(assets: []) { created } r: retireAsset(id: \"a\") { id } }",
                "mutation upsertAssets,retireAsset",
            ),
            (
                "{ a: search(query: \"}{)(\") { totalCount } b: search(query: \"\\\"\") { totalCount } }",
                "query search",
            ),
            (
                "# a comment { not: this }\n{ __typename }",
                "query __typename",
            ),
            (
                "query @cached { ...F } fragment F on QueryRoot { taxonomy { stages { name } } }",
                "query ...",
            ),
            (
                r#"{ asset(id: """block \""" string""") @include(if: true) { id } }"#,
                "query asset",
            ),
        ];
        for (document, label) in cases {
            assert_eq!(operation_label(document), label, "{document}");
        }
        let many: String = (0..5_000).map(|i| format!("f{i} ")).collect();
        assert_eq!(
            operation_label(&format!("{{ {many} }}")),
            "query f0,f1,f2,f3,f4,f5,f6,f7,..."
        );
        for broken in [
            "",
            "{",
            "{ search(query: \"x\"",
            "fragment F on Q { a }",
            "{ 5 }",
            "query Q( { a }",
        ] {
            assert_eq!(operation_label(broken), "", "{broken}");
        }
    }
}
