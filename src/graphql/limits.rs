//! What a GraphQL request may ask before the engine sees it. Each check is linear in the
//! request and runs before the work it guards:
//!
//! - the text's bracket nesting, before parsing: the parser recurses once per level, and a
//!   list nested two thousand deep (4 KB) overflowed a worker's stack;
//! - the selection after fragments are expanded, and fragment cycles, on the parse: the
//!   engine's own depth and cost checks expand every spread again, so 24 fragments that
//!   each spread the next twice (1 KB) cost 2^24 visits before any limit said no;
//! - the nesting of variables, and the operation name's shape.
//!
//! Each refusal names the limit it hit; the HTTP layer answers it with
//! `QUERY_TOO_COMPLEX` or `BAD_USER_INPUT` without running anything.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Field, Selection, SelectionSet};
use async_graphql_value::Value;

/// Deepest nesting of `{`, `[` and `(` in a document's text: selections go 16 deep
/// ([`super::MAX_DEPTH`]) and arguments a few levels more.
pub const MAX_NESTING: usize = 32;
/// Most selections (fields, fragment spreads and inline fragments) a request's operations
/// hold once every fragment is expanded. GraphiQL's introspection query holds 237.
pub const MAX_SELECTIONS: u64 = 2_000;
/// Most fragment definitions in one document.
pub const MAX_FRAGMENTS: usize = 100;
/// Most operations in one document (GraphiQL's examples are eight). The engine validates
/// each, and reports each undefined variable once per operation that reaches it: 140
/// operations sharing a fragment of 550 variables (4 KB) made 77,000 errors, 12.9 MB.
pub const MAX_OPERATIONS: usize = 16;
/// Most `$` variable references in one document's text.
pub const MAX_VARIABLE_REFERENCES: usize = 256;
/// Most units of work on the library the operation that runs may ask for (aliases and
/// fragments included). The cost limit multiplies by page sizes but cannot see that
/// counting a text search's matches or its facets scores every match, nor that a list's
/// diversity pass grows with the square of its length: 40 aliases of a counted search
/// (2 KB) cost 65 ms of the 100k reference library within it. Twelve units are about 50
/// ms there.
pub const MAX_WORK_UNITS: u64 = 12;

/// Whether the work budget applies: to publishable keys and visitor tokens, whose requests
/// come from anyone's browser. Server keys and above are the customer's own systems and
/// people, bounded by their rate and the cost limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkBudget {
    Bounded,
    Unbounded,
}

/// What a field asks of the library, in tenths of a unit, wherever it stands
/// (`Account.recommendations` too). Measured on the 100k reference library: a ranking or
/// search of the usual page 1 unit (0.6 to 3 ms), one more for each 25 of its `first`
/// (`recommendations(first: 100)` 20 ms), `nextContent` twice that (its text comes from
/// the asset: 24.5 ms for 100); counting matches 2 more (6 ms for two words), facets 3
/// (9.5 ms), highlights 1 (5 ms for 100 hits), the taxonomy's industries 1 (a facet count
/// and a database read, 2.8 ms), an asset by id a tenth (a database read, 0.13 ms).
fn field_work(
    field: &Field,
    variables: Option<&serde_json::Map<String, serde_json::Value>>,
) -> u64 {
    let per_page =
        |default_first: u64| 10 * (1 + first(field, variables).unwrap_or(default_first) / 25);
    match field.name.node.as_str() {
        "search" | "assets" | "recommendations" | "explainRank" | "committee" | "coverage"
        | "suggestTags" | "assetPerformance" | "cellPerformance" => per_page(20),
        "nextContent" => 2 * per_page(5),
        // A scan of the library's vectors, or of the assets a selective filter admits.
        "similarAssets" => 3 * per_page(10),
        "totalCount" => 20,
        "facets" => 30,
        "highlights" | "industries" => 10,
        // `asset(id:)`, a database read; the `asset` of a hit or a recommendation is not.
        "asset" if !field.arguments.is_empty() => 1,
        _ => 0,
    }
}

/// The page a field asks for: its `first` as written, or as its variable holds it; a
/// variable that holds no number counts as the largest page.
fn first(
    field: &Field,
    variables: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Option<u64> {
    let (_, value) = field
        .arguments
        .iter()
        .find(|(name, _)| name.node.as_str() == "first")?;
    // Past the largest page, the resolver refuses the request itself.
    let largest = 100;
    Some(match &value.node {
        Value::Number(n) => n.as_u64().unwrap_or(largest).min(largest),
        Value::Variable(name) => variables
            .and_then(|v| v.get(name.as_str()))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(largest)
            .min(largest),
        _ => largest,
    })
}
/// Longest document text for callers below the editor scope. Variables carry data; a
/// document this long is already ten times the longest one our pages send.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Deepest nesting of arrays and objects in `variables`.
pub const MAX_VARIABLE_NESTING: usize = 32;
/// Longest `operationName`.
pub const MAX_OPERATION_NAME: usize = 128;
/// Most directives on one field.
pub const MAX_DIRECTIVES: usize = 8;

/// Why a request was refused before it ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Too deep, too large or too repetitive: `QUERY_TOO_COMPLEX`.
    TooComplex(String),
    /// Not something the engine could run: `BAD_USER_INPUT`.
    Invalid(String),
}

impl Refusal {
    pub fn message(&self) -> &str {
        match self {
            Refusal::TooComplex(m) | Refusal::Invalid(m) => m,
        }
    }
}

/// The text's length and bracket nesting, outside strings and comments. `max_bytes` is
/// the caller's document limit.
pub fn check_text(text: &str, max_bytes: usize) -> Result<(), Refusal> {
    if text.len() > max_bytes {
        return Err(Refusal::TooComplex(format!(
            "the document is {} bytes, over the {max_bytes} this key may send; pass data in variables",
            text.len()
        )));
    }
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut variables = 0usize;
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'#' => {
                while at < bytes.len() && bytes[at] != b'\n' && bytes[at] != b'\r' {
                    at += 1;
                }
                continue;
            }
            b'"' if bytes[at..].starts_with(b"\"\"\"") => {
                at += 3;
                while at < bytes.len() && !bytes[at..].starts_with(b"\"\"\"") {
                    at += if bytes[at..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                at += 3;
                continue;
            }
            b'"' => {
                at += 1;
                while at < bytes.len() && bytes[at] != b'"' && bytes[at] != b'\n' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Refusal::TooComplex(format!(
                        "the document nests brackets more than {MAX_NESTING} deep"
                    )));
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            b'$' => {
                variables += 1;
                if variables > MAX_VARIABLE_REFERENCES {
                    return Err(Refusal::TooComplex(format!(
                        "the document names variables more than {MAX_VARIABLE_REFERENCES} times"
                    )));
                }
            }
            _ => {}
        }
        at += 1;
    }
    Ok(())
}

/// The parsed document: fragments, their cycles, the size of every operation's selection
/// once fragments are expanded (the engine validates them all), and the work of the
/// operation that runs (`operation_name`, or the only one). Each fragment is sized once.
pub fn check_document(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: Option<&serde_json::Map<String, serde_json::Value>>,
    work_budget: WorkBudget,
) -> Result<(), Refusal> {
    let operations = document.operations.iter().count();
    if operations > MAX_OPERATIONS {
        return Err(Refusal::TooComplex(format!(
            "the document holds {operations} operations, more than {MAX_OPERATIONS}"
        )));
    }
    if document.fragments.len() > MAX_FRAGMENTS {
        return Err(Refusal::TooComplex(format!(
            "the document defines {} fragments, more than {MAX_FRAGMENTS}",
            document.fragments.len()
        )));
    }
    let mut sizer = Sizer {
        document,
        variables,
        sizes: HashMap::new(),
    };
    let mut selections: u64 = 0;
    let mut work: u64 = 0;
    // The engine validates every operation, and runs one (or none) of them.
    let runs = super::running_operation(document, operation_name);
    for (_, operation) in document.operations.iter() {
        let size = sizer.selection_set(&operation.node.selection_set.node)?;
        selections = selections.saturating_add(size.selections);
        if selections > MAX_SELECTIONS {
            return Err(too_many_selections());
        }
        if runs.is_some_and(|r| std::ptr::eq(r, operation)) {
            work = size.work;
        }
    }
    if work_budget == WorkBudget::Bounded && work > MAX_WORK_UNITS * 10 {
        return Err(Refusal::TooComplex(format!(
            "the operation asks for {:.1} units of work on the library, more than {MAX_WORK_UNITS} (a ranking or search 1 and 1 more per 25 of its first, nextContent twice that, totalCount 2, facets 3, highlights 1); ask for less, or send several requests",
            work as f64 / 10.0
        )));
    }
    Ok(())
}

fn too_many_selections() -> Refusal {
    Refusal::TooComplex(format!(
        "the operations select more than {MAX_SELECTIONS} fields once fragments are expanded"
    ))
}

/// What a selection weighs once expanded: its selections, and their units of work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Size {
    selections: u64,
    work: u64,
}

impl Size {
    fn plus(self, other: Size) -> Size {
        Size {
            selections: self.selections.saturating_add(other.selections),
            work: self.work.saturating_add(other.work),
        }
    }

    fn check(self) -> Result<(), Refusal> {
        if self.selections > MAX_SELECTIONS {
            return Err(too_many_selections());
        }
        Ok(())
    }
}

/// A fragment's expansion, or that it is being weighed (a cycle when met again).
#[derive(Clone, Copy)]
enum Weighing {
    InProgress,
    Done(Size),
}

struct Sizer<'d> {
    document: &'d ExecutableDocument,
    variables: Option<&'d serde_json::Map<String, serde_json::Value>>,
    sizes: HashMap<&'d str, Weighing>,
}

impl<'d> Sizer<'d> {
    /// Selections nest at most [`MAX_NESTING`] deep in text that passed [`check_text`],
    /// and a fragment is entered once, so the recursion is bounded by the text.
    fn selection_set(&mut self, set: &'d SelectionSet) -> Result<Size, Refusal> {
        let mut total = Size::default();
        for item in &set.items {
            let (own, inner) = match &item.node {
                Selection::Field(field) => {
                    let work = field_work(&field.node, self.variables);
                    (
                        Size {
                            selections: 1,
                            work,
                        },
                        self.selection_set(&field.node.selection_set.node)?,
                    )
                }
                Selection::InlineFragment(inline) => (
                    Size {
                        selections: 1,
                        work: 0,
                    },
                    self.selection_set(&inline.node.selection_set.node)?,
                ),
                Selection::FragmentSpread(spread) => (
                    Size {
                        selections: 1,
                        work: 0,
                    },
                    self.fragment(spread.node.fragment_name.node.as_str())?,
                ),
            };
            total = total.plus(own).plus(inner);
            total.check()?;
        }
        Ok(total)
    }

    fn fragment(&mut self, name: &'d str) -> Result<Size, Refusal> {
        match self.sizes.get(name) {
            Some(Weighing::Done(size)) => return Ok(*size),
            Some(Weighing::InProgress) => {
                return Err(Refusal::Invalid(format!(
                    "fragment {name:?} spreads itself, through the fragments it spreads"
                )));
            }
            None => {}
        }
        // An unknown fragment is the validator's to report; it weighs nothing here.
        let Some((key, fragment)) = self.document.fragments.get_key_value(name) else {
            return Ok(Size::default());
        };
        let key = key.as_str();
        self.sizes.insert(key, Weighing::InProgress);
        let size = self.selection_set(&fragment.node.selection_set.node)?;
        self.sizes.insert(key, Weighing::Done(size));
        Ok(size)
    }
}

/// The nesting of a request's variables (already bounded by the JSON parser's own limit
/// of 128), walked without recursion.
pub fn check_variables(
    variables: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), Refusal> {
    let mut stack: Vec<(&serde_json::Value, usize)> = variables.values().map(|v| (v, 1)).collect();
    while let Some((value, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &serde_json::Value>> = match value {
            serde_json::Value::Array(items) => Box::new(items.iter()),
            serde_json::Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if depth > MAX_VARIABLE_NESTING {
            return Err(Refusal::TooComplex(format!(
                "variables nest arrays and objects more than {MAX_VARIABLE_NESTING} deep"
            )));
        }
        stack.extend(children.map(|child| (child, depth + 1)));
    }
    Ok(())
}

/// `operationName`: a GraphQL name of at most [`MAX_OPERATION_NAME`] characters (any other
/// text names no operation, and would reach logs and the audit trail verbatim).
pub fn check_operation_name(name: &str) -> Result<(), Refusal> {
    let bytes = name.as_bytes();
    let shaped = !bytes.is_empty()
        && (bytes[0].is_ascii_alphabetic() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_');
    if !shaped || bytes.len() > MAX_OPERATION_NAME {
        return Err(Refusal::Invalid(format!(
            "operationName must be a GraphQL name (letters, digits, _) of at most {MAX_OPERATION_NAME} characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(text).expect("parses")
    }

    fn check_document_of(document: &ExecutableDocument) -> Result<(), Refusal> {
        check_document(document, None, None, WorkBudget::Bounded)
    }

    #[test]
    fn nesting_is_counted_outside_strings_and_comments() {
        let deep = format!("{{ x(a: {}1{}) }}", "[".repeat(40), "]".repeat(40));
        assert!(matches!(
            check_text(&deep, MAX_DOCUMENT_BYTES),
            Err(Refusal::TooComplex(_))
        ));
        let quoted = format!(
            "{{ search(query: \"{}\") {{ totalCount }} }}",
            "(".repeat(500)
        );
        assert_eq!(check_text(&quoted, MAX_DOCUMENT_BYTES), Ok(()));
        let block = format!(
            "{{ search(query: \"\"\"{} \\\"\"\" {}\"\"\") {{ totalCount }} }}",
            "{".repeat(100),
            "[".repeat(100)
        );
        assert_eq!(check_text(&block, MAX_DOCUMENT_BYTES), Ok(()));
        let commented = format!("# {}\n{{ __typename }}", "{".repeat(100));
        assert_eq!(check_text(&commented, MAX_DOCUMENT_BYTES), Ok(()));
        // An escaped quote does not end a string.
        let escaped = format!(
            "{{ search(query: \"\\\"{}\") {{ totalCount }} }}",
            "(".repeat(100)
        );
        assert_eq!(check_text(&escaped, MAX_DOCUMENT_BYTES), Ok(()));
        let at_limit = format!("{}{}", "{a ".repeat(MAX_NESTING), "}".repeat(MAX_NESTING));
        assert_eq!(check_text(&at_limit, MAX_DOCUMENT_BYTES), Ok(()));
        assert!(check_text("{ __typename }", 5).is_err());
        let many = format!(
            "query({}) {{ __typename }}",
            (0..300)
                .map(|i| format!("$v{i}: Int"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        assert!(check_text(&many, MAX_DOCUMENT_BYTES).is_err());
        let quoted_dollars = format!(
            "{{ search(query: \"{}\") {{ totalCount }} }}",
            "$".repeat(400)
        );
        assert_eq!(check_text(&quoted_dollars, MAX_DOCUMENT_BYTES), Ok(()));
    }

    #[test]
    fn fragments_are_weighed_once_and_cycles_refused() {
        // 2^30 selections once expanded, from 30 small fragments.
        let mut text = String::from("{ ...F0 }");
        for i in 0..30 {
            text.push_str(&format!(
                " fragment F{i} on QueryRoot {{ ...F{} ...F{} }}",
                i + 1,
                i + 1
            ));
        }
        text.push_str(" fragment F30 on QueryRoot { __typename }");
        let started = std::time::Instant::now();
        assert!(matches!(
            check_document_of(&parse(&text)),
            Err(Refusal::TooComplex(_))
        ));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));

        let cycle =
            "{ ...A } fragment A on QueryRoot { ...B } fragment B on QueryRoot { ...A __typename }";
        assert!(matches!(
            check_document_of(&parse(cycle)),
            Err(Refusal::Invalid(_))
        ));
        let selfish = "{ ...A } fragment A on QueryRoot { ...A ...A }";
        assert!(matches!(
            check_document_of(&parse(selfish)),
            Err(Refusal::Invalid(_))
        ));

        // Work counts wherever it stands, through fragments too: four counted searches
        // (3 each) fit, a fifth does not; twelve plain rankings fit.
        let counted = |n: usize| {
            (0..n)
                .map(|i| format!("s{i}: search(query: \"x\") {{ totalCount }}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            check_document_of(&parse(&format!("{{ {} }}", counted(4)))),
            Ok(())
        );
        assert!(matches!(
            check_document_of(&parse(&format!("{{ {} }}", counted(5)))),
            Err(Refusal::TooComplex(_))
        ));
        let plain: String = (0..12)
            .map(|i| format!("r{i}: recommendations(audience: {{}}) {{ items {{ score }} }} "))
            .collect();
        assert_eq!(check_document_of(&parse(&format!("{{ {plain} }}"))), Ok(()));
        // Long pages weigh more, written or in a variable; a variable with no number weighs
        // the most.
        let long = |n: usize, first: &str| {
            (0..n)
                .map(|i| format!("r{i}: recommendations(audience: {{}}, first: {first}) {{ items {{ score }} }} "))
                .collect::<String>()
        };
        assert_eq!(
            check_document_of(&parse(&format!("{{ {} }}", long(2, "100")))),
            Ok(())
        );
        assert!(check_document_of(&parse(&format!("{{ {} }}", long(3, "100")))).is_err());
        let with_variable = parse(&format!("query($n: Int) {{ {} }}", long(3, "$n")));
        let mut variables = serde_json::Map::new();
        assert!(
            check_document(&with_variable, None, Some(&variables), WorkBudget::Bounded).is_err()
        );
        variables.insert("n".into(), serde_json::json!(10));
        assert_eq!(
            check_document(&with_variable, None, Some(&variables), WorkBudget::Bounded),
            Ok(())
        );
        variables.insert("n".into(), serde_json::json!(100));
        assert!(
            check_document(&with_variable, None, Some(&variables), WorkBudget::Bounded).is_err()
        );
        let by_id: String = (0..200)
            .map(|i| format!("a{i}: asset(id: \"x\") {{ id }} "))
            .collect();
        assert!(check_document_of(&parse(&format!("{{ {by_id} }}"))).is_err());
        // Not the asset of a hit, and not for the customer's own systems.
        let hits: String = (0..12)
            .map(|i| format!("s{i}: search(query: \"x\") {{ items {{ asset {{ id }} }} }} "))
            .collect();
        assert_eq!(check_document_of(&parse(&format!("{{ {hits} }}"))), Ok(()));
        let trusted = parse(&format!(
            "{{ {hits} extra: search(query: \"y\") {{ totalCount }} }}"
        ));
        assert!(check_document_of(&trusted).is_err());
        assert_eq!(
            check_document(&trusted, None, None, WorkBudget::Unbounded),
            Ok(())
        );

        // Only the operation that runs counts: GraphiQL sends every example at once.
        let two = format!("query A {{ {} }} query B {{ {} }}", counted(4), counted(4));
        let document = parse(&two);
        assert_eq!(
            check_document(&document, Some("A"), None, WorkBudget::Bounded),
            Ok(())
        );
        let heavy = format!("query A {{ {} }} query B {{ __typename }}", counted(5));
        let document = parse(&heavy);
        assert_eq!(
            check_document(&document, Some("B"), None, WorkBudget::Bounded),
            Ok(())
        );
        assert!(check_document(&document, Some("A"), None, WorkBudget::Bounded).is_err());
        // Without a name among several the engine runs none (and says a name is needed).
        assert_eq!(
            check_document(&document, None, None, WorkBudget::Bounded),
            Ok(())
        );
        let spread = "{ ...R ...R } fragment R on QueryRoot { a: search(query: \"x\") { facets { field } } b: search(query: \"y\") { totalCount } c: recommendations(audience: {}) { items { score } } }";
        assert!(matches!(
            check_document_of(&parse(spread)),
            Err(Refusal::TooComplex(_))
        ));

        let operations: String = (0..17)
            .map(|i| format!("query Q{i} {{ __typename }} "))
            .collect();
        assert!(matches!(
            check_document_of(&parse(&operations)),
            Err(Refusal::TooComplex(_))
        ));

        // Shared fragments are fine while the expansion stays small.
        let shared = "{ a: asset(id: \"x\") { ...F } b: asset(id: \"y\") { ...F } } fragment F on Asset { id title }";
        assert_eq!(check_document_of(&parse(shared)), Ok(()));
    }

    /// The introspection query the vendored GraphiQL sends, every option on: its template,
    /// read from the bundle, with each `${...}` filled in.
    fn graphiql_introspection() -> String {
        let bundle = include_str!("../../assets/graphiql/graphiql.min.js");
        let start = bundle
            .find("query IntrospectionQuery")
            .expect("the template");
        let end = start + bundle[start..].find('`').expect("its end");
        let mut text = String::new();
        let mut rest = &bundle[start..end];
        while let Some(open) = rest.find("${") {
            text.push_str(&rest[..open]);
            let close = open + rest[open..].find('}').expect("closed");
            let name = &rest[open + 2..close];
            text.push_str(match name.split_once("('") {
                Some((_, argument)) => argument.trim_end_matches("')"),
                None if name == "specifiedByUrl" => "specifiedByURL",
                None if name == "directiveIsRepeatable" => "isRepeatable",
                None if name == "oneOf" => "isOneOf",
                None => "description",
            });
            rest = &rest[close + 1..];
        }
        text.push_str(rest);
        text
    }

    #[test]
    fn graphiql_introspection_fits() {
        let introspection = graphiql_introspection();
        assert_eq!(check_text(&introspection, MAX_DOCUMENT_BYTES), Ok(()));
        let document = parse(&introspection);
        assert_eq!(
            check_document(&document, None, None, WorkBudget::Bounded),
            Ok(())
        );
        let mut sizer = Sizer {
            document: &document,
            variables: None,
            sizes: HashMap::new(),
        };
        let (_, operation) = document.operations.iter().next().expect("an operation");
        let size = sizer
            .selection_set(&operation.node.selection_set.node)
            .expect("sized");
        // 237 selections: the limit leaves it eight times the room.
        assert_eq!(size.selections, 237, "expanded size");
    }

    #[test]
    fn variables_and_names_are_bounded() {
        let mut value = serde_json::json!(1);
        for _ in 0..40 {
            value = serde_json::json!([value]);
        }
        let mut variables = serde_json::Map::new();
        variables.insert("a".into(), value);
        assert!(check_variables(&variables).is_err());
        let mut flat = serde_json::Map::new();
        flat.insert("a".into(), serde_json::json!({ "b": [1, 2, { "c": "d" }] }));
        assert_eq!(check_variables(&flat), Ok(()));

        assert_eq!(check_operation_name("Recommend_2"), Ok(()));
        for bad in ["", "2x", "a b", "a\nb", "\u{1b}[31m", &"a".repeat(129)] {
            assert!(check_operation_name(bad).is_err(), "{bad:?}");
        }
    }
}
