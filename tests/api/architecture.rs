//! The map of the house, held by a test: which room of `src/` may use what, as
//! ARCHITECTURE.md says. It reads the sources (comments and string literals left out) and
//! fails on a crossing the map forbids. There are none today: the list of known crossings
//! that issue 14 started with is empty and gone.

use std::path::{Path, PathBuf};

/// I/O and frameworks: what pure rooms must not name.
const IO: &[&str] = &[
    "sea_orm",
    "tantivy",
    "tokio",
    "axum",
    "reqwest",
    "async_graphql",
    "std::fs",
    "std::net",
    "std::env",
];

/// The rooms with I/O, which pure rooms must not call either.
const OUTER: &[&str] = &[
    "crate::store",
    "crate::search",
    "crate::meaning",
    "crate::services",
    "crate::graphql",
    "crate::http",
    "crate::config",
];

/// Room (a folder or file under `src/`), and what its code must not name.
const RULES: &[(&str, &[&[&str]])] = &[
    // Pure: no I/O, no framework, no other room.
    ("domain", &[IO, OUTER, &["crate::ranking"]]),
    // Pure scoring over domain types only.
    ("ranking", &[IO, OUTER]),
    // The API calls services; it never reaches the database or the index.
    (
        "graphql",
        &[&[
            "sea_orm",
            "tantivy",
            "crate::store",
            "crate::search",
            "crate::meaning",
            "crate::ranking",
            "std::env",
        ]],
    ),
    (
        "http",
        &[&[
            "sea_orm",
            "tantivy",
            "crate::store",
            "crate::search",
            "crate::meaning",
            "std::env",
        ]],
    ),
    (
        "store",
        &[&[
            "tantivy",
            "crate::search",
            "crate::services",
            "crate::graphql",
            "crate::http",
            "std::env",
        ]],
    ),
    (
        "search",
        &[&[
            "sea_orm",
            "crate::store",
            "crate::services",
            "crate::graphql",
            "crate::http",
            "std::env",
        ]],
    ),
    // The model and the vectors: reads model files, knows no database, index or runtime.
    (
        "meaning",
        &[&[
            "sea_orm",
            "tantivy",
            "tokio",
            "axum",
            "async_graphql",
            "crate::store",
            "crate::search",
            "crate::services",
            "crate::graphql",
            "crate::http",
            "crate::ranking",
            "std::env",
        ]],
    ),
    (
        "services",
        &[&[
            "axum",
            "async_graphql",
            "crate::graphql",
            "crate::http",
            "std::env",
        ]],
    ),
    ("main.rs", &[&["std::env"]]),
    ("cli.rs", &[&["std::env"]]),
    ("state.rs", &[&["std::env"]]),
    (
        "metrics.rs",
        &[&["std::env", "crate::store", "crate::search"]],
    ),
];

/// Rooms besides `services` that may use both the store and the index: the composition
/// root, which wires them together once at start.
const WIRING: &[&str] = &["state.rs", "services"];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a Rust file without comments and string literals (raw ones included), so a
/// word in a doc comment or a log filter is not an import.
fn code(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |e| e + 2);
        } else if rest.starts_with("r#\"") || rest.starts_with("r##\"") {
            let hashes = rest[1..].chars().take_while(|c| *c == '#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 2 + hashes;
            i += body
                + rest[body..]
                    .find(&close)
                    .map_or(rest.len() - body, |e| e + close.len());
            out.push_str("\"\"");
        } else if let Some(len) = char_literal(rest) {
            // '"' or b'"' would otherwise open a string that swallows the code after it.
            i += len;
            out.push_str("' '");
        } else if bytes[i] == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            i = j + 1;
            out.push_str("\"\"");
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The length of the character literal `rest` starts with (`'x'`, `'"'`, `'\''`,
/// `'\u{2014}'`), or `None` (a lifetime such as `'a` or `'static`, or no quote).
fn char_literal(rest: &str) -> Option<usize> {
    let body = rest.strip_prefix('\'')?;
    if let Some(escaped) = body.strip_prefix('\\') {
        // The escaped character, then up to the closing quote ('\u{...}' runs longer).
        let first = escaped.chars().next()?;
        let close = escaped[first.len_utf8()..].find('\'')?;
        return Some(2 + first.len_utf8() + close + 1);
    }
    let c = body.chars().next()?;
    body[c.len_utf8()..]
        .starts_with('\'')
        .then_some(1 + c.len_utf8() + 1)
}

/// Whether `code` names `what` as a path (not as part of a longer name).
fn names(code: &str, what: &str) -> bool {
    code.match_indices(what).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + what.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// What a source file at `relative` (to `src/`) names that the map forbids.
fn crossings(relative: &str, text: &str) -> Vec<String> {
    let room = relative.split('/').next().unwrap_or_default();
    let code = code(text);
    let mut found = Vec::new();
    for (rule_room, forbidden) in RULES {
        if *rule_room != room {
            continue;
        }
        for what in forbidden.iter().flat_map(|list| list.iter()) {
            if names(&code, what) {
                found.push(format!("src/{relative} uses {what}"));
            }
        }
    }
    // Only config.rs reads the environment, through clap attributes or std::env.
    if relative != "config.rs" && (names(&code, "env::var") || code.contains("env = \"\"")) {
        found.push(format!("src/{relative} reads the environment"));
    }
    if !WIRING.contains(&room) && names(&code, "crate::store") && names(&code, "crate::search") {
        found.push(format!("src/{relative} uses both the store and the index"));
    }
    found
}

#[test]
fn every_room_uses_only_what_the_map_allows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    assert!(files.len() > 40, "{} sources", files.len());
    let found: Vec<String> = files
        .iter()
        .flat_map(|file| {
            let relative = file
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            crossings(&relative, &std::fs::read_to_string(file).unwrap())
        })
        .collect();
    assert!(
        found.is_empty(),
        "crossings ARCHITECTURE.md does not allow:\n{}",
        found.join("\n")
    );
}

#[test]
fn each_kind_of_crossing_is_caught() {
    let cases = [
        (
            "graphql/recommend.rs",
            "use crate::ranking::Factor;",
            "crate::ranking",
        ),
        (
            "graphql/library.rs",
            "use crate::search::SearchRequest;",
            "crate::search",
        ),
        (
            "http/mod.rs",
            "let q = sea_orm::Statement::default();",
            "sea_orm",
        ),
        ("domain/asset.rs", "use tokio::fs;", "tokio"),
        ("ranking/factors.rs", "use tantivy::Term;", "tantivy"),
        (
            "store/mod.rs",
            "use crate::search::SearchIndex;",
            "crate::search",
        ),
        ("search/query.rs", "use sea_orm::Database;", "sea_orm"),
        (
            "main.rs",
            "let v = std::env::var(\"X\");",
            "the environment",
        ),
        (
            "cli.rs",
            "use crate::store::Store; use crate::search::SearchIndex;",
            "both",
        ),
    ];
    for (file, text, what) in cases {
        let found = crossings(file, text);
        assert!(
            found.iter().any(|f| f.contains(what)),
            "{file}: {text} gave {found:?}"
        );
    }
    assert!(
        crossings(
            "services/mod.rs",
            "use crate::store::Store; use crate::search::SearchIndex;"
        )
        .is_empty()
    );
    assert!(crossings("graphql/recommend.rs", "use crate::domain::Factor;").is_empty());
}

#[test]
fn the_reader_sees_code_not_comments_or_strings() {
    let text = "// crate::store in a comment\nlet s = \"tantivy=warn\"; let r = r#\"sea_orm\"#;\nuse crate::search::X; /* crate::http */";
    let read = code(text);
    assert!(!names(&read, "crate::store") && !names(&read, "tantivy") && !names(&read, "sea_orm"));
    assert!(names(&read, "crate::search") && !names(&read, "crate::http"));
    assert!(!names("crate::searcher", "crate::search"));
    // A quote in a character literal opens no string: the code after it is read.
    for text in [
        "let q = '\"'; use tantivy::Term;",
        "if b == b'\"' { use tantivy::Term; }",
        "let q = '\\''; let s = \"x\"; use tantivy::Term;",
        "let q = '\\\\'; use tantivy::Term;",
        "let d = '\\u{2014}'; use tantivy::Term;",
        "fn f<'a>(x: &'a str) -> &'static str { use tantivy::Term; x }",
    ] {
        assert!(names(&code(text), "tantivy"), "{text}: {}", code(text));
    }
    assert!(!names(
        &code("let q = '\"'; let s = \"tantivy\";"),
        "tantivy"
    ));
}
