//! The map of the house, held by a test: which room of `src/` may use what, as
//! ARCHITECTURE.md says. It parses every source as Rust (syn), resolves every path it names
//! (`use` trees with their groups and renames, `super::`, `self::`, paths inside macros) to
//! where it leads, and fails on a crossing the map forbids, on a room without a row, and on
//! rooms that import each other in a circle.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

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
    "crate::state",
    "crate::cli",
];

/// Room (a folder or file under `src/`), and what its code must not name. Every room has a
/// row (tested), even when it is empty.
const RULES: &[(&str, &[&[&str]])] = &[
    // Pure: no I/O, no framework, no other room.
    ("domain", &[IO, OUTER, &["crate::ranking"]]),
    // Pure scoring over domain types only.
    ("ranking", &[IO, OUTER]),
    // Reading and writing the interchange formats: domain types from bytes, no I/O beyond
    // the reader and writer it is given.
    ("import", &[IO, OUTER, &["crate::ranking"]]),
    // Synthetic libraries and feedback for benchmarks: files and domain types.
    (
        "generate.rs",
        &[
            OUTER,
            &[
                "sea_orm",
                "tantivy",
                "tokio",
                "axum",
                "reqwest",
                "async_graphql",
                "std::net",
                "std::env",
                "crate::ranking",
            ],
        ],
    ),
    // The error type: converts the store's and the index's errors, knows no room.
    (
        "error.rs",
        &[
            OUTER,
            &[
                "tokio",
                "axum",
                "reqwest",
                "async_graphql",
                "std::fs",
                "std::net",
                "std::env",
            ],
        ],
    ),
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
            "crate::http",
            "crate::state",
            "crate::cli",
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
            "crate::state",
            "crate::cli",
            "std::env",
        ]],
    ),
    (
        "store",
        &[&[
            "tantivy",
            "crate::search",
            "crate::meaning",
            "crate::services",
            "crate::graphql",
            "crate::http",
            "crate::state",
            "crate::cli",
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
            "crate::state",
            "crate::cli",
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
            "crate::state",
            "crate::cli",
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
            "crate::state",
            "crate::cli",
            "crate::generate",
            "std::env",
        ]],
    ),
    // Settings: the only room that reads the environment; knows no room with I/O.
    (
        "config.rs",
        &[&[
            "sea_orm",
            "tantivy",
            "axum",
            "reqwest",
            "async_graphql",
            "crate::store",
            "crate::search",
            "crate::meaning",
            "crate::services",
            "crate::graphql",
            "crate::http",
            "crate::state",
            "crate::cli",
        ]],
    ),
    (
        "metrics.rs",
        &[&["std::env", "crate::store", "crate::search"]],
    ),
    // The composition root: wires the store, the index and the server once at start.
    ("state.rs", &[&["std::env", "crate::cli"]]),
    // The commands: parse arguments, then call services (or start a server).
    (
        "cli.rs",
        &[&[
            "std::env",
            "tantivy",
            "sea_orm",
            "crate::search",
            "crate::meaning",
            "crate::http",
        ]],
    ),
    ("main.rs", &[&["std::env"]]),
    // Declares the rooms, nothing else.
    ("lib.rs", &[IO]),
];

/// Rooms whose modules import one another in no circle either (`domain`'s asset and
/// evidence modules still do: an asset's tags and the evidence read from its text).
const ROOMS_WITHOUT_MODULE_CIRCLES: &[&str] = &[
    "services", "graphql", "http", "store", "search", "ranking", "meaning", "import",
];

/// Rooms besides `services` that may use both the store and the index: the composition
/// root, which wires them together once at start.
const WIRING: &[&str] = &["state.rs", "services"];

/// What the commands may do with a store handle themselves: everything else goes through
/// services.
const CLI_STORE_CALLS: &[&str] = &["close", "clone", "as_ref", "is_none", "is_some"];

/// A reading of the environment besides `config.rs`'s: these functions of `std::env`, or
/// a clap `env = "..."` attribute.
const ENV_READS: &[&str] = &["var", "var_os", "vars", "vars_os"];

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

/// The module path of a file relative to `src/`: `services/feedback/mod.rs` is
/// `crate::services::feedback`, `lib.rs` and `main.rs` are `crate`.
fn module_of(relative: &str) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    std::iter::once("crate".to_owned()).chain(parts).collect()
}

/// What a file names: every path, resolved to where it leads.
#[derive(Default)]
struct Named {
    paths: BTreeSet<String>,
    /// Methods called on a variable named `store`.
    store_calls: BTreeSet<String>,
    /// A clap `env = "..."` attribute.
    env_attribute: bool,
}

struct Reader {
    /// The module the code being read is in (inline `mod x { }` blocks push onto it).
    module: Vec<String>,
    /// What `use` brought into scope: name -> full path.
    aliases: HashMap<String, Vec<String>>,
    named: Named,
}

impl Reader {
    /// `segments` as an absolute path: `crate`, `super` and `self` resolved against the
    /// module, a first segment a `use` brought in replaced by what it names.
    fn resolve(&self, segments: &[String]) -> Vec<String> {
        let Some(first) = segments.first() else {
            return Vec::new();
        };
        let mut base: Vec<String> = match first.as_str() {
            "crate" => vec!["crate".to_owned()],
            "self" => self.module.clone(),
            "super" => {
                let mut m = self.module.clone();
                let mut rest = segments;
                while rest.first().is_some_and(|s| s == "super") {
                    m.pop();
                    rest = &rest[1..];
                }
                return m.into_iter().chain(rest.iter().cloned()).collect();
            }
            _ => match self.aliases.get(first) {
                Some(full) => full.clone(),
                None => vec![first.clone()],
            },
        };
        base.extend(segments[1..].iter().cloned());
        base
    }

    fn record(&mut self, segments: &[String]) {
        let full = self.resolve(segments);
        if !full.is_empty() {
            self.named.paths.insert(full.join("::"));
        }
    }

    /// Every path a `use` tree names, with the name it brings into scope.
    fn use_tree(&mut self, prefix: &[String], tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                let mut next = prefix.to_vec();
                next.push(p.ident.to_string());
                self.use_tree(&next, &p.tree);
            }
            syn::UseTree::Name(n) => {
                let name = n.ident.to_string();
                let mut full = prefix.to_vec();
                if name != "self" {
                    full.push(name.clone());
                }
                let resolved = self.resolve(&full);
                let alias = if name == "self" {
                    prefix.last().cloned().unwrap_or_default()
                } else {
                    name
                };
                self.named.paths.insert(resolved.join("::"));
                self.aliases.insert(alias, resolved);
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.to_vec();
                if r.ident != "self" {
                    full.push(r.ident.to_string());
                }
                let resolved = self.resolve(&full);
                self.named.paths.insert(resolved.join("::"));
                self.aliases.insert(r.rename.to_string(), resolved);
            }
            syn::UseTree::Glob(_) => self.record(prefix),
            syn::UseTree::Group(g) => {
                for item in &g.items {
                    self.use_tree(prefix, item);
                }
            }
        }
    }

    /// Paths written inside a macro's tokens (`format!("{}", crate::x::y())`,
    /// `tokio::select! { .. }`): runs of `ident :: ident`, read as paths.
    fn tokens(&mut self, tokens: TokenStream) {
        let mut run: Vec<String> = Vec::new();
        let mut colons = 0;
        let flush = |reader: &mut Reader, run: &mut Vec<String>| {
            if run.len() > 1 {
                reader.record(run);
            }
            run.clear();
        };
        for tree in tokens {
            match tree {
                TokenTree::Ident(ident) => {
                    if colons != 2 {
                        flush(self, &mut run);
                    }
                    run.push(ident.to_string());
                    colons = 0;
                }
                TokenTree::Punct(p) if p.as_char() == ':' => colons += 1,
                TokenTree::Group(g) => {
                    flush(self, &mut run);
                    colons = 0;
                    self.tokens(g.stream());
                }
                _ => {
                    flush(self, &mut run);
                    colons = 0;
                }
            }
        }
        flush(self, &mut run);
    }

    /// Whether attribute tokens hold `env = ...` (clap reading a variable).
    fn env_attribute(tokens: TokenStream) -> bool {
        let mut last_env = false;
        for tree in tokens {
            match tree {
                TokenTree::Ident(i) => last_env = i == "env",
                TokenTree::Punct(p) if p.as_char() == '=' && last_env => return true,
                TokenTree::Group(g) => {
                    if Self::env_attribute(g.stream()) {
                        return true;
                    }
                    last_env = false;
                }
                _ => last_env = false,
            }
        }
        false
    }
}

impl<'ast> Visit<'ast> for Reader {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&[], &u.tree);
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        // An inline module (`mod tests { use super::*; }`) is a module of its own.
        let outer = std::mem::take(&mut self.aliases);
        self.module.push(m.ident.to_string());
        syn::visit::visit_item_mod(self, m);
        self.module.pop();
        self.aliases = outer;
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        self.record(&segments);
        syn::visit::visit_path(self, p);
    }

    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        if let syn::Expr::Path(p) = &*call.receiver
            && p.path.is_ident("store")
        {
            self.named.store_calls.insert(call.method.to_string());
        }
        syn::visit::visit_expr_method_call(self, call);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.tokens(m.tokens.clone());
        syn::visit::visit_macro(self, m);
    }

    fn visit_attribute(&mut self, a: &'ast syn::Attribute) {
        if let syn::Meta::List(list) = &a.meta
            && Self::env_attribute(list.tokens.clone())
        {
            self.named.env_attribute = true;
        }
        syn::visit::visit_attribute(self, a);
    }
}

/// Everything a source file at `relative` (to `src/`) names. `use` items anywhere in the
/// file are read before the paths they bring into scope.
fn read(relative: &str, text: &str) -> Named {
    let file = syn::parse_file(text).unwrap_or_else(|e| panic!("src/{relative}: {e}"));
    let mut reader = Reader {
        module: module_of(relative),
        aliases: HashMap::new(),
        named: Named::default(),
    };
    // Top-level `use` items first, so a path above its `use` still resolves.
    for item in &file.items {
        if let syn::Item::Use(u) = item {
            reader.visit_item_use(u);
        }
    }
    reader.visit_file(&file);
    reader.named
}

/// Whether `path` is `what` or inside it.
fn leads_into(path: &str, what: &str) -> bool {
    path == what || path.strip_prefix(what).is_some_and(|r| r.starts_with("::"))
}

/// The room of a file relative to `src/`: its folder, or the file itself.
fn room_of(relative: &str) -> &str {
    match relative.split_once('/') {
        Some((dir, _)) => dir,
        None => relative,
    }
}

/// The room a path into the crate leads to (`crate::store::X` -> `store`, or `state.rs`).
fn room_named(path: &str, rooms: &BTreeSet<String>) -> Option<String> {
    let name = path.strip_prefix("crate::")?.split("::").next()?;
    if rooms.contains(name) {
        Some(name.to_owned())
    } else {
        let file = format!("{name}.rs");
        rooms.contains(&file).then_some(file)
    }
}

/// What a source file at `relative` (to `src/`) names that the map forbids.
fn crossings(relative: &str, text: &str) -> Vec<String> {
    let room = room_of(relative);
    let named = read(relative, text);
    let mut found = Vec::new();
    for (rule_room, forbidden) in RULES {
        if *rule_room != room {
            continue;
        }
        for what in forbidden.iter().flat_map(|list| list.iter()) {
            if let Some(path) = named.paths.iter().find(|p| leads_into(p, what)) {
                found.push(format!("src/{relative} uses {what} ({path})"));
            }
        }
    }
    // Only config.rs reads the environment, through clap attributes or std::env.
    let reads_env = named.env_attribute
        || named.paths.iter().any(|p| {
            ENV_READS
                .iter()
                .any(|f| leads_into(p, &format!("std::env::{f}")))
        });
    if relative != "config.rs" && reads_env {
        found.push(format!("src/{relative} reads the environment"));
    }
    // The commands hold a store only to hand it to services (and close it at the end).
    if relative == "cli.rs" {
        for method in &named.store_calls {
            if !CLI_STORE_CALLS.contains(&method.as_str()) {
                found.push(format!(
                    "src/cli.rs calls the store itself (store.{method})"
                ));
            }
        }
    }
    let uses = |what: &str| named.paths.iter().any(|p| leads_into(p, what));
    if !WIRING.contains(&room) && uses("crate::store") && uses("crate::search") {
        found.push(format!("src/{relative} uses both the store and the index"));
    }
    found
}

/// The first circle in a graph of rooms, if any (`a -> b -> a`).
fn circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn walk(
        at: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|r| r == at) {
            let mut found = stack[i..].to_vec();
            found.push(at.to_owned());
            return Some(found);
        }
        if done.contains(at) {
            return None;
        }
        stack.push(at.to_owned());
        for next in edges.get(at).into_iter().flatten() {
            if let Some(found) = walk(next, edges, stack, done) {
                return Some(found);
            }
        }
        stack.pop();
        done.insert(at.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|room| walk(room, edges, &mut Vec::new(), &mut done))
}

/// Every source under `src/`, by its path relative to `src/`.
fn all_sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files
        .iter()
        .map(|file| {
            let relative = file
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (relative, std::fs::read_to_string(file).unwrap())
        })
        .collect()
}

/// Who imports whom: each file's node (`node` of its path; `None` leaves it out) gains an
/// edge to the node of every path it names (`target`; `None` for paths to no node).
fn import_graph(
    files: &[(String, BTreeSet<String>)],
    node: impl Fn(&str) -> Option<String>,
    target: impl Fn(&str) -> Option<String>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (relative, paths) in files {
        let Some(from) = node(relative) else {
            continue;
        };
        for to in paths.iter().filter_map(|p| target(p)) {
            if to != from {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    edges
}

/// Which room imports which (`lib.rs` and `main.rs`, which only declare and start, left
/// out).
fn room_graph(files: &[(String, BTreeSet<String>)]) -> BTreeMap<String, BTreeSet<String>> {
    let rooms: BTreeSet<String> = files.iter().map(|(r, _)| room_of(r).to_owned()).collect();
    import_graph(
        files,
        |relative| {
            let room = room_of(relative);
            (!matches!(room, "lib.rs" | "main.rs")).then(|| room.to_owned())
        },
        |path| room_named(path, &rooms),
    )
}

/// Which module of `room` imports which of its sibling modules (the room's own root, which
/// declares them, left out).
fn module_graph(
    files: &[(String, BTreeSet<String>)],
    room: &str,
) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|(r, _)| r.strip_prefix(&format!("{room}/")))
        .map(|inner| {
            inner
                .split('/')
                .next()
                .unwrap_or_default()
                .trim_end_matches(".rs")
                .to_owned()
        })
        .filter(|m| m != "mod")
        .collect();
    let prefix = format!("crate::{room}::");
    import_graph(
        files,
        |relative| {
            let inner = relative.strip_prefix(&format!("{room}/"))?;
            let module = inner.split('/').next()?.trim_end_matches(".rs");
            (module != "mod").then(|| module.to_owned())
        },
        |path| {
            let to = path.strip_prefix(&prefix)?.split("::").next()?;
            modules.contains(to).then(|| to.to_owned())
        },
    )
}

#[test]
fn every_room_uses_only_what_the_map_allows() {
    let files = all_sources();
    assert!(files.len() > 40, "{} sources", files.len());
    let found: Vec<String> = files
        .iter()
        .flat_map(|(relative, text)| crossings(relative, text))
        .collect();
    assert!(
        found.is_empty(),
        "crossings ARCHITECTURE.md does not allow:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_room_has_a_row_and_rooms_import_each_other_in_no_circle() {
    let files = all_sources();
    let rooms: BTreeSet<&str> = files.iter().map(|(r, _)| room_of(r)).collect();
    let rows: BTreeSet<&str> = RULES.iter().map(|(room, _)| *room).collect();
    let missing: Vec<&&str> = rooms.difference(&rows).collect();
    assert!(missing.is_empty(), "rooms without a rule row: {missing:?}");
    let gone: Vec<&&str> = rows.difference(&rooms).collect();
    assert!(gone.is_empty(), "rule rows for no room: {gone:?}");
    // Each file read once for every graph below.
    let named: Vec<(String, BTreeSet<String>)> = files
        .iter()
        .map(|(relative, text)| (relative.clone(), read(relative, text).paths))
        .collect();
    let graph = room_graph(&named);
    assert!(
        graph
            .get("graphql")
            .is_some_and(|to| to.contains("services")),
        "the graph reads no imports: {graph:?}"
    );
    if let Some(found) = circle(&graph) {
        panic!(
            "rooms import each other in a circle: {}",
            found.join(" -> ")
        );
    }
    for room in ROOMS_WITHOUT_MODULE_CIRCLES {
        if let Some(found) = circle(&module_graph(&named, room)) {
            panic!(
                "modules of {room} import each other in a circle: {}",
                found.join(" -> ")
            );
        }
    }
}

#[test]
fn the_feedback_room_stays_split_by_job() {
    // Each job of the feedback loop in a file a reader takes in at once.
    for (relative, text) in all_sources() {
        if relative.starts_with("services/feedback/") {
            let lines = text.lines().count();
            assert!(lines < 400, "src/{relative} has {lines} lines");
        }
    }
}

#[test]
fn each_kind_of_crossing_is_caught() {
    // One crossing per rule row, and per rule besides the rows.
    let cases = [
        ("domain/asset.rs", "use tokio::fs;", "tokio"),
        (
            "domain/asset.rs",
            "fn f() { crate::ranking::diversify(); }",
            "crate::ranking",
        ),
        ("ranking/factors.rs", "use tantivy::Term;", "tantivy"),
        (
            "import/jsonl.rs",
            "use crate::store::Store;",
            "crate::store",
        ),
        ("generate.rs", "fn f() { tokio::spawn(async {}); }", "tokio"),
        (
            "error.rs",
            "use crate::services::Library;",
            "crate::services",
        ),
        (
            "graphql/recommend.rs",
            "use crate::ranking::Factor;",
            "crate::ranking",
        ),
        (
            "graphql/library.rs",
            "use crate::{domain::Stage, search::SearchRequest};",
            "crate::search",
        ),
        (
            "http/mod.rs",
            "fn f() { let q = sea_orm::Statement::default(); }",
            "sea_orm",
        ),
        (
            "http/graphql.rs",
            "use crate::state::AppState;",
            "crate::state",
        ),
        (
            "store/mod.rs",
            "use crate::search as index; fn f() { index::open(); }",
            "crate::search",
        ),
        ("search/query.rs", "use sea_orm::Database;", "sea_orm"),
        (
            "meaning/mod.rs",
            "fn f() { tokio::task::spawn_blocking(|| ()); }",
            "tokio",
        ),
        (
            "services/feedback/lists.rs",
            "use super::super::super::http::AppState;",
            "crate::http",
        ),
        (
            "services/mod.rs",
            "use crate::generate::feedback_lists;",
            "crate::generate",
        ),
        ("config.rs", "use crate::store::Store;", "crate::store"),
        (
            "metrics.rs",
            "fn f() { let _ = format!(\"{}\", crate::store::ROWS); }",
            "crate::store",
        ),
        ("state.rs", "use crate::cli::run;", "crate::cli"),
        ("cli.rs", "use crate::search::SearchIndex;", "crate::search"),
        (
            "cli.rs",
            "async fn f(store: Store) { store.assets_after(None, 9).await; }",
            "calls the store itself",
        ),
        (
            "main.rs",
            "fn f() { let v = std::env::var(\"X\"); }",
            "the environment",
        ),
        ("lib.rs", "use std::fs::File;", "std::fs"),
        // The environment, however it is reached.
        (
            "services/tags.rs",
            "use std::env; fn f() { env::var_os(\"X\"); }",
            "the environment",
        ),
        (
            "graphql/mod.rs",
            "use std::env::vars as all; fn f() { all(); }",
            "the environment",
        ),
        (
            "http/serve.rs",
            "#[derive(Parser)] struct A { #[arg(long, env = \"X\")] x: u8 }",
            "the environment",
        ),
        // Both the store and the index outside the wiring.
        (
            "graphql/mod.rs",
            "use crate::store::Store; use crate::search::SearchIndex;",
            "both",
        ),
        // Inside an inline module and a function body too.
        (
            "domain/mod.rs",
            "mod tests { fn f() { use sea_orm::Value; } }",
            "sea_orm",
        ),
    ];
    for (file, text, what) in cases {
        let found = crossings(file, text);
        assert!(
            found.iter().any(|f| f.contains(what)),
            "{file}: {text} gave {found:?}"
        );
    }
    // What the map allows stays allowed.
    for (file, text) in [
        (
            "services/mod.rs",
            "use crate::store::Store; use crate::search::SearchIndex;",
        ),
        ("graphql/recommend.rs", "use crate::domain::Factor;"),
        (
            "config.rs",
            "#[derive(Parser)] struct A { #[arg(long, env = \"X\")] x: u8 }",
        ),
        (
            "graphql/limits.rs",
            "fn f() { let v = env!(\"CARGO_PKG_VERSION\"); }",
        ),
        ("services/feedback/lists.rs", "use super::super::Library;"),
    ] {
        assert_eq!(
            crossings(file, text),
            Vec::<String>::new(),
            "{file}: {text}"
        );
    }
    // A circle of rooms is found, and its absence too.
    let graph = |pairs: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in pairs {
            g.entry((*a).into()).or_default().insert((*b).into());
        }
        g
    };
    let found = circle(&graph(&[
        ("http", "services"),
        ("state.rs", "http"),
        ("http", "state.rs"),
    ]));
    assert_eq!(
        found,
        Some(vec!["http".into(), "state.rs".into(), "http".into()])
    );
    assert_eq!(
        circle(&graph(&[("http", "services"), ("state.rs", "http")])),
        None
    );
}

#[test]
fn the_reader_sees_code_not_comments_or_strings() {
    let read = |text: &str| read("graphql/x.rs", text).paths;
    let paths = read(
        "// crate::store in a comment\nfn f() { let s = \"tantivy=warn\"; let r = r#\"sea_orm\"#; \
         let q = '\"'; crate::search::X::new(); }\n/* crate::http */",
    );
    assert!(paths.contains("crate::search::X::new"), "{paths:?}");
    for hidden in ["crate::store", "tantivy", "sea_orm", "crate::http"] {
        assert!(
            !paths.iter().any(|p| leads_into(p, hidden)),
            "{hidden}: {paths:?}"
        );
    }
    // Groups, renames, `self` and relative paths resolve to where they lead.
    let paths = read("use crate::{store::{self as db}, domain::*}; fn f() { db::Store::open(); }");
    assert!(paths.contains("crate::store::Store::open"), "{paths:?}");
    assert!(paths.contains("crate::domain"), "{paths:?}");
    let paths = super_paths("services/feedback/lists.rs", "use super::super::Library;");
    assert!(paths.contains("crate::services::Library"), "{paths:?}");
    assert!(!leads_into("crate::searcher", "crate::search"));
}

fn super_paths(relative: &str, text: &str) -> BTreeSet<String> {
    read(relative, text).paths
}
