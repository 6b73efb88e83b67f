//! A fuzz run over HTTP with a publishable key: ten thousand generated requests, most of
//! them documents built from the schema itself (random fields, aliases, fragments,
//! arguments and variables of the right and the wrong types, huge and negative numbers, odd
//! unicode) and some not even JSON. No answer may be a 5xx or lack an error code, no
//! handler may panic, and not one account row may come back or be written.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
use futures::StreamExt;
use serde_json::{Value, json};
use stagefit::domain::Scope;

use crate::support::TestServer;

const REQUESTS: usize = 10_000;
/// Root fields a publishable key may run (for some arguments), from the server's rule table.
fn publishable_roots() -> Vec<&'static str> {
    stagefit::graphql::RULES
        .iter()
        .filter(|(_, rule)| rule.admits_some(stagefit::domain::Scope::Publishable))
        .filter_map(|(field, _)| field.split_once('.').map(|(_, name)| name))
        .filter(|name| !name.starts_with("__"))
        .collect()
}
const SEED: u64 = 0x5EED_F00D;

/// Fields only an account carries: none may appear in an answer to a publishable key.
const ACCOUNT_FIELDS: &[&str] = &[
    "engagementCount",
    "consumedAssetIds",
    "engagements",
    "contacts",
    "committee",
    "journeyStage",
    "stageInference",
];
/// Names stored with the test's account and contact, never sent by the fuzzer.
const SECRETS: &[&str] = &["Quietly Secret Holdings", "Ursula Undisclosed"];

/// A status and body, or why there was none.
type Answer = Result<(u16, Vec<u8>), String>;

static FUZZING: AtomicBool = AtomicBool::new(false);
static PANICS: AtomicUsize = AtomicUsize::new(0);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

struct Field {
    name: String,
    args: Vec<(String, Type)>,
    ty: Type,
}

enum Kind {
    Object(Vec<Field>),
    Input(Vec<(String, Type)>),
    Enum(Vec<String>),
    Scalar,
}

struct Schema {
    types: HashMap<String, Kind>,
}

fn named(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(n) => n.as_str(),
        BaseType::List(inner) => named(inner),
    }
}

impl Schema {
    fn load() -> Self {
        let document = async_graphql::parser::parse_schema(stagefit::graphql::sdl()).unwrap();
        let mut types = HashMap::new();
        for definition in document.definitions {
            let TypeSystemDefinition::Type(t) = definition else {
                continue;
            };
            let name = t.node.name.node.to_string();
            let kind = match t.node.kind {
                TypeKind::Object(o) => Kind::Object(
                    o.fields
                        .into_iter()
                        .map(|f| Field {
                            name: f.node.name.node.to_string(),
                            args: f
                                .node
                                .arguments
                                .into_iter()
                                .map(|a| (a.node.name.node.to_string(), a.node.ty.node))
                                .collect(),
                            ty: f.node.ty.node,
                        })
                        .collect(),
                ),
                TypeKind::InputObject(i) => Kind::Input(
                    i.fields
                        .into_iter()
                        .map(|a| (a.node.name.node.to_string(), a.node.ty.node))
                        .collect(),
                ),
                TypeKind::Enum(e) => Kind::Enum(
                    e.values
                        .into_iter()
                        .map(|v| v.node.value.node.to_string())
                        .collect(),
                ),
                _ => Kind::Scalar,
            };
            types.insert(name, kind);
        }
        Self { types }
    }
}

const ODD_STRINGS: &[&str] = &[
    "",
    "acme",
    "pricing-sheet",
    "reconciliation",
    "DECISION",
    "financial-services/payments",
    "\u{202e}gnirts desrever",
    "emoji 😀🏳️‍🌈",
    "nul\u{0}byte",
    "日本語のテキスト",
    "'; DROP TABLE asset; --",
    "../../../etc/passwd",
    "%s%n%x",
    "\\\"quoted\\\"",
    "zh-Hans-CN",
    "*",
    "a:b OR c",
];

const ODD_NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "100",
    "101",
    "5000",
    "2147483647",
    "-2147483648",
    "2147483648",
    "99999999999999999999999",
    "-99999999999999999999999",
    "1e308",
    "-0.0",
    "3.5",
];

struct Gen<'a> {
    rng: Rng,
    schema: &'a Schema,
    /// Variables declared by the document being built: `$name: Type` and their values.
    variables: Vec<(String, String, Value)>,
}

impl Gen<'_> {
    fn string(&mut self) -> String {
        if self.rng.chance(3) {
            return "x".repeat(self.rng.below(20_000));
        }
        self.rng.pick(ODD_STRINGS).to_string()
    }

    /// A GraphQL literal for `ty`, now and then of the wrong type.
    fn literal(&mut self, ty: &Type, depth: usize) -> String {
        if self.rng.chance(3) {
            return match self.rng.below(5) {
                0 => "null".to_owned(),
                1 => self.rng.pick(ODD_NUMBERS).to_string(),
                2 => format!("{:?}", self.string()),
                3 => "[]".to_owned(),
                _ => "{ bogus: 1 }".to_owned(),
            };
        }
        if let BaseType::List(inner) = &ty.base {
            let n = self.rng.below(4);
            let items: Vec<String> = (0..n).map(|_| self.literal(inner, depth + 1)).collect();
            return format!("[{}]", items.join(", "));
        }
        let name = named(ty);
        match name {
            "Int" | "Float" => self.rng.pick(ODD_NUMBERS).to_string(),
            "Boolean" => self.rng.pick(&["true", "false"]).to_string(),
            "String" | "ID" | "DateTime" => {
                // An id that exists half the time, so requests that need one get past
                // "not found" into the work.
                if name == "ID" && self.rng.chance(50) {
                    self.rng
                        .pick(&["\"pricing-sheet\"", "\"acme\""])
                        .to_string()
                } else if name == "DateTime" && self.rng.chance(50) {
                    "\"2026-11-30T10:00:00Z\"".to_owned()
                } else {
                    format!("{:?}", self.string())
                }
            }
            _ => match self.schema.types.get(name) {
                Some(Kind::Enum(values)) => {
                    if self.rng.chance(90) {
                        self.rng.pick(values).clone()
                    } else {
                        "NOT_A_VALUE".to_owned()
                    }
                }
                Some(Kind::Input(fields)) if depth < 4 => {
                    let mut parts = Vec::new();
                    for (field, fty) in fields {
                        if self.rng.chance(40) || !fty.nullable && self.rng.chance(90) {
                            let value = self.literal(fty, depth + 1);
                            parts.push(format!("{field}: {value}"));
                        }
                    }
                    format!("{{ {} }}", parts.join(", "))
                }
                _ => {
                    // Scalars such as StageName take strings or enum-like names.
                    if self.rng.chance(50) {
                        self.rng
                            .pick(&["DECISION", "AWARENESS", "FINANCE", "COST"])
                            .to_string()
                    } else {
                        format!("{:?}", self.string())
                    }
                }
            },
        }
    }

    /// A JSON value for a variable of `ty`, now and then of the wrong type.
    fn json(&mut self, ty: &Type, depth: usize) -> Value {
        if self.rng.chance(4) {
            return match self.rng.below(5) {
                0 => Value::Null,
                1 => json!(1e300),
                2 => json!(-9_007_199_254_740_993i64),
                3 => json!([[[]]]),
                _ => json!({ "surprise": "ü" }),
            };
        }
        if let BaseType::List(inner) = &ty.base {
            let n = self.rng.below(4);
            return Value::Array((0..n).map(|_| self.json(inner, depth + 1)).collect());
        }
        match named(ty) {
            "Int" => json!(
                self.rng
                    .pick(&[0i64, 1, -1, 100, 101, 2_147_483_647, 4_294_967_296])
            ),
            "Float" => json!(self.rng.pick(&[0.0, -1.5, 1e308, 3.25])),
            "Boolean" => json!(self.rng.chance(50)),
            name => match self.schema.types.get(name) {
                Some(Kind::Enum(values)) => json!(self.rng.pick(values)),
                Some(Kind::Input(fields)) if depth < 4 => {
                    let mut object = serde_json::Map::new();
                    for (field, fty) in fields {
                        if self.rng.chance(40) || !fty.nullable {
                            let value = self.json(fty, depth + 1);
                            object.insert(field.clone(), value);
                        }
                    }
                    Value::Object(object)
                }
                _ => json!(self.string()),
            },
        }
    }

    fn argument(&mut self, ty: &Type) -> String {
        if self.rng.chance(20) {
            let name = format!("v{}", self.variables.len());
            let value = self.json(ty, 0);
            let declared = if self.rng.chance(90) {
                ty.to_string()
            } else {
                "String".to_owned()
            };
            self.variables.push((name.clone(), declared, value));
            format!("${name}")
        } else {
            self.literal(ty, 0)
        }
    }

    fn selection(&mut self, type_name: &str, depth: usize, fragments: &[String]) -> String {
        let Some(Kind::Object(fields)) = self.schema.types.get(type_name) else {
            return String::new();
        };
        // At the root, mostly what a publishable key may run, so that much of the run gets
        // past the rule table to execution.
        let publishable: Vec<&Field> = fields
            .iter()
            .filter(|f| publishable_roots().contains(&f.name.as_str()))
            .collect();
        let mut parts = Vec::new();
        for _ in 0..1 + self.rng.below(if depth == 0 { 2 } else { 4 }) {
            if self.rng.chance(1) {
                parts.push("notAField".to_owned());
                continue;
            }
            if !fragments.is_empty() && depth == 0 && self.rng.chance(10) {
                parts.push(format!("...{}", self.rng.pick(fragments)));
                continue;
            }
            let field = if depth == 0 && !publishable.is_empty() && self.rng.chance(95) {
                *self.rng.pick(&publishable)
            } else {
                self.rng.pick(fields)
            };
            let mut text = String::new();
            if self.rng.chance(25) {
                text.push_str(&format!("a{}: ", self.rng.below(400)));
            }
            text.push_str(&field.name);
            let mut args = Vec::new();
            for (arg, ty) in &field.args {
                if (!ty.nullable && self.rng.chance(95)) || self.rng.chance(50) {
                    let value = self.argument(ty);
                    args.push(format!("{arg}: {value}"));
                }
            }
            if !args.is_empty() {
                text.push_str(&format!("({})", args.join(", ")));
            }
            if self.rng.chance(5) {
                text.push_str(" @skip(if: false)");
            }
            let inner = named(&field.ty).to_owned();
            if matches!(self.schema.types.get(&inner), Some(Kind::Object(_))) {
                if depth < 6 {
                    let nested = self.selection(&inner, depth + 1, &[]);
                    text.push_str(&format!(" {{ {nested} }}"));
                } else {
                    text.push_str(" { __typename }");
                }
            }
            if self.rng.chance(5) {
                text = format!("... on {type_name} {{ {text} }}");
            }
            parts.push(text);
        }
        parts.join(" ")
    }

    /// One request body.
    fn body(&mut self) -> Vec<u8> {
        if self.rng.chance(4) {
            return match self.rng.below(6) {
                0 => b"{\"query\": \"{ __typename".to_vec(),
                1 => b"[{\"query\": \"{ __typename }\"}]".to_vec(),
                2 => b"{\"query\": 42}".to_vec(),
                3 => (0..self.rng.below(200))
                    .map(|_| self.rng.next() as u8)
                    .collect(),
                4 => {
                    format!("{{\"query\": \"{}\"}}", "{".repeat(self.rng.below(5_000))).into_bytes()
                }
                _ => b"{\"query\": \"{ __typename }\", \"variables\": [1]}".to_vec(),
            };
        }
        self.variables.clear();
        let root = if self.rng.chance(25) {
            "MutationRoot"
        } else {
            "QueryRoot"
        };
        let fragments: Vec<String> = if self.rng.chance(15) {
            vec!["F".to_owned()]
        } else {
            Vec::new()
        };
        let fragment_text = if fragments.is_empty() {
            String::new()
        } else {
            let inner = self.selection(root, 1, &[]);
            format!(" fragment F on {root} {{ {inner} }}")
        };
        let selection = self.selection(root, 0, &fragments);
        let keyword = if root == "MutationRoot" {
            "mutation"
        } else {
            "query"
        };
        let declared: Vec<String> = self
            .variables
            .iter()
            .map(|(name, ty, _)| format!("${name}: {ty}"))
            .collect();
        let header = if declared.is_empty() {
            format!("{keyword} Q")
        } else {
            format!("{keyword} Q({})", declared.join(", "))
        };
        let query = format!("{header} {{ {selection} }}{fragment_text}");
        let variables: serde_json::Map<String, Value> = self
            .variables
            .iter()
            .map(|(name, _, value)| (name.clone(), value.clone()))
            .collect();
        let mut body = json!({ "query": query, "variables": variables });
        if self.rng.chance(5) {
            body["operationName"] = json!(self.rng.pick(&["Q", "Other", ""]));
        }
        body.to_string().into_bytes()
    }
}

/// Object keys anywhere in `value`.
fn keys<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k);
                keys(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_generated_requests_with_a_publishable_key() {
    let _machine = crate::support::busy().await;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // Another test's failed assertion (in tests/) is not a handler's panic.
        let in_tests = info
            .location()
            .is_some_and(|l| l.file().starts_with("tests/"));
        if FUZZING.load(Ordering::SeqCst) && !in_tests {
            PANICS.fetch_add(1, Ordering::SeqCst);
        }
        previous(info);
    }));
    let mut s = TestServer::demo_with(|c| {
        c.rate_limits.per_client_per_second = 1_000_000;
        c.rate_limits.per_client_burst = 1_000_000;
        c.rate_limits.per_key_per_second = 1_000_000;
    })
    .await;
    let access = &s.server.as_ref().unwrap().state().access;
    let server = access
        .create_key("crm", Scope::Server, Default::default())
        .await
        .unwrap()
        .1;
    let site = access
        .create_key("site", Scope::Publishable, Default::default())
        .await
        .unwrap()
        .1;
    let seed_rows = s
        .client()
        .post(format!("{}/graphql", s.url))
        .bearer_auth(&server)
        .json(&json!({ "query": format!(r#"mutation {{
            a: upsertAccount(account: {{ id: "acme", name: "{}", industry: "retail" }}) {{ id }}
            c: upsertContact(contact: {{ id: "acme-cfo", accountId: "acme", name: "{}", role: FINANCE }}) {{ id }}
            e: recordEngagement(event: {{ accountId: "acme", contactId: "acme-cfo", assetId: "pricing-sheet", kind: VIEW }}) {{ recorded }}
        }}"#, SECRETS[0], SECRETS[1]) }))
        .send()
        .await
        .unwrap();
    assert_eq!(seed_rows.status(), 200);

    let schema = Schema::load();
    let mut generator = Gen {
        rng: Rng(SEED),
        schema: &schema,
        variables: Vec::new(),
    };
    let bodies: Vec<Vec<u8>> = (0..REQUESTS).map(|_| generator.body()).collect();
    let client = s.client().clone();
    let url = format!("{}/graphql", s.url);
    FUZZING.store(true, Ordering::SeqCst);
    let answers: Vec<(usize, Answer)> = futures::stream::iter(bodies.iter().enumerate())
        .map(|(i, body)| {
            let request = client
                .post(&url)
                .bearer_auth(&site)
                .header("content-type", "application/json")
                .body(body.clone())
                .send();
            async move {
                let answer = match request.await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        match response.bytes().await {
                            Ok(bytes) => Ok((status, bytes.to_vec())),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                (i, answer)
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    FUZZING.store(false, Ordering::SeqCst);

    let mut statuses: HashMap<u16, usize> = HashMap::new();
    let mut executed = 0;
    for (i, answer) in &answers {
        let request = String::from_utf8_lossy(&bodies[*i]);
        let (status, bytes) = answer
            .as_ref()
            .unwrap_or_else(|e| panic!("request {i} got no answer ({e}): {request}"));
        *statuses.entry(*status).or_default() += 1;
        assert!(*status < 500, "request {i}: {status}: {request}");
        let body: Value = serde_json::from_slice(bytes).unwrap_or_else(|_| {
            panic!(
                "request {i}: not JSON: {}: {request}",
                String::from_utf8_lossy(bytes)
            )
        });
        for error in body["errors"].as_array().into_iter().flatten() {
            assert!(
                error["extensions"]["code"].is_string(),
                "request {i}: an error without a code: {error}: {request}"
            );
        }
        if body.get("data").is_some_and(|d| !d.is_null()) {
            executed += 1;
        }
        let mut found = Vec::new();
        keys(&body["data"], &mut found);
        for field in ACCOUNT_FIELDS {
            assert!(
                !found.contains(field),
                "request {i}: account field {field} answered: {request}"
            );
        }
        let text = String::from_utf8_lossy(bytes);
        for secret in SECRETS {
            assert!(
                !text.contains(secret),
                "request {i} read {secret}: {request}"
            );
        }
    }
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "handlers panicked");
    // The run reached execution often enough to mean something.
    assert!(
        executed > REQUESTS / 10,
        "{executed} executed; {statuses:?}"
    );
    eprintln!("fuzz: {executed} executed; statuses {statuses:?}");

    // Nothing was written to the account.
    let response = s
        .client()
        .post(format!("{}/graphql", s.url))
        .bearer_auth(&server)
        .json(&json!({ "query": "{ account(id: \"acme\") { name engagementCount contacts { id } } }" }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["data"]["account"],
        json!({ "name": SECRETS[0], "engagementCount": 1, "contacts": [{ "id": "acme-cfo" }] }),
        "{body}"
    );
    s.stop().await;
}

/// One hostile request of a class the attack found, or close to one.
struct Hostile {
    class: &'static str,
    body: Vec<u8>,
}

/// Requests of every shape that once stopped or pinned the server: deep nesting of every
/// bracket kind in documents and in variables, fragment graphs (fan-out, cycles), long and
/// many-word texts, odd query syntax, oversized names. Sizes run past the limits.
fn hostile_requests(rng: &mut Rng, n: usize) -> Vec<Hostile> {
    let text_fields = [
        "query($q: String!) { search(query: $q) { totalCount items { score } } }",
        "query($q: String) { recommendations(audience: {}, query: $q) { items { score } } }",
        "query($q: String!) { search(query: $q, first: 5) { items { highlights { html } } } }",
    ];
    let odd_syntax = [
        "a AND (b OR",
        "\"unterminated phrase",
        "title:pricing body:\"net 30\"",
        "+-+-+-x",
        "*",
        "pricing~2",
        "security^3.5 compliance^0",
        "[a TO z]",
        "{a TO z}",
        "NOT NOT NOT x",
        "IN [pricing security]",
        "/regex.*/",
        "\\\\\\(\\)",
        "(((a))) AND (((b)))",
        "a:b:c:d",
        "结算 AND 对账",
        "\u{0}\u{1}\u{7f}",
        "'; DROP TABLE asset; --",
    ];
    let brackets: [(&str, &str, &str); 5] = [
        // selection sets, list values, object values, argument parentheses, mixed
        ("{ a ", "}", "selections"),
        ("[", "]", "lists"),
        ("{ a: ", "}", "objects"),
        ("(", ")", "parentheses"),
        ("[{ a: ", "}]", "mixed"),
    ];
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let depth = [10, 33, 100, 700, 1_000, 2_000, 5_000][rng.below(7)];
        let request = match i % 6 {
            0 => {
                let (open, close, what) = brackets[rng.below(brackets.len())];
                let query = match what {
                    "selections" => format!(
                        "{{ {}__typename{} }}",
                        open.repeat(depth),
                        close.repeat(depth)
                    ),
                    "parentheses" => format!(
                        "{{ search(query: {}\"x\"{}) {{ totalCount }} }}",
                        open.repeat(depth),
                        close.repeat(depth)
                    ),
                    _ => format!(
                        "{{ recommendations(audience: {{ excludeAssetIds: {}1{} }}) {{ items {{ score }} }} }}",
                        open.repeat(depth),
                        close.repeat(depth)
                    ),
                };
                Hostile {
                    class: "document nesting",
                    body: json!({ "query": query }).to_string().into_bytes(),
                }
            }
            1 => {
                // Written as text: a serde_json value this deep would overflow this test's
                // own stack, and the server's JSON parser refuses past 128 levels anyway.
                let levels = depth.min(3_000);
                let mut text = String::new();
                for level in 0..levels {
                    text.push_str(if level % 2 == 0 { "[" } else { "{\"a\":" });
                }
                text.push_str("\"x\"");
                for level in (0..levels).rev() {
                    text.push(if level % 2 == 0 { ']' } else { '}' });
                }
                let body = format!(
                    "{{\"query\":\"query($q: String!) {{ search(query: $q) {{ totalCount }} }}\",\"variables\":{{\"q\":{text}}}}}"
                );
                Hostile {
                    class: "variable nesting",
                    body: body.into_bytes(),
                }
            }
            2 => {
                // A fragment graph: each fragment spreads some later ones; now and then one
                // spreads an earlier one (a cycle).
                let count = 2 + rng.below(60);
                let mut text = String::from("{ ...F0 }");
                for f in 0..count {
                    let mut spreads = Vec::new();
                    for _ in 0..1 + rng.below(4) {
                        let target = if rng.chance(5) {
                            rng.below(f + 1)
                        } else {
                            f + 1 + rng.below(count - f)
                        };
                        spreads.push(format!("...F{target}"));
                    }
                    text.push_str(&format!(
                        " fragment F{f} on QueryRoot {{ {} }}",
                        spreads.join(" ")
                    ));
                }
                text.push_str(&format!(" fragment F{count} on QueryRoot {{ __typename taxonomy {{ stages {{ name }} }} }}"));
                Hostile {
                    class: "fragment graph",
                    body: json!({ "query": text }).to_string().into_bytes(),
                }
            }
            3 => {
                let words = [1, 31, 33, 500, 16_000][rng.below(5)];
                let text: String = match rng.below(4) {
                    0 => (0..words).map(|w| format!("w{w} ")).collect(),
                    1 => "结算对账".repeat(words.min(4_000)),
                    2 => "x".repeat(words * 10),
                    _ => (0..words).map(|_| "pricing ").collect(),
                };
                let query = *rng.pick(&text_fields);
                Hostile {
                    class: "long text",
                    body: json!({ "query": query, "variables": { "q": text } })
                        .to_string()
                        .into_bytes(),
                }
            }
            4 => {
                let mut text = rng.pick(&odd_syntax).to_string();
                if rng.chance(30) {
                    let deep = rng.below(12);
                    text = format!("{}{text}{}", "(".repeat(deep), ")".repeat(deep));
                }
                let query = *rng.pick(&text_fields);
                Hostile {
                    class: "query syntax",
                    body: json!({ "query": query, "variables": { "q": text } })
                        .to_string()
                        .into_bytes(),
                }
            }
            _ => {
                let long = "n".repeat([100, 129, 5_000, 60_000, 70_000][rng.below(5)]);
                let body = match rng.below(6) {
                    0 => json!({ "query": "query Q { __typename }", "operationName": long }),
                    1 => {
                        json!({ "query": "query Q { __typename }", "operationName": "Q\r\n\u{1b}[2J" })
                    }
                    2 => json!({ "query": format!("{{ {long} }}") }),
                    3 => json!({ "query": format!("{{ {long}: __typename }}") }),
                    4 => json!({ "query": format!("query(${long}: Int) {{ __typename }}") }),
                    _ => {
                        json!({ "query": format!("{{ ...{long} }} fragment {long} on QueryRoot {{ __typename }}") })
                    }
                };
                Hostile {
                    class: "oversized name",
                    body: body.to_string().into_bytes(),
                }
            }
        };
        out.push(request);
    }
    out
}

/// The classes of `hostile_requests` against the real binary in a process of its own (a
/// stack overflow aborts the process it happens in): every answer has a code, none is a
/// 5xx, the server takes a bounded time for each, and it is alive at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_shapes_of_every_kind_are_answered_with_a_code_in_bounded_time() {
    let _machine = crate::support::quiet().await;
    let tmp = tempfile::tempdir().unwrap();
    let (mut served, url, key) = crate::hardening::demo_with_key(
        tmp.path(),
        &[
            "--rate-per-client",
            "1000000",
            "--burst-per-client",
            "1000000",
        ],
    );
    let mut rng = Rng(SEED ^ 0xBAD);
    let requests = hostile_requests(&mut rng, 1_200);
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    let mut slowest: HashMap<&str, std::time::Duration> = HashMap::new();
    for (i, request) in requests.iter().enumerate() {
        let started = std::time::Instant::now();
        let response = client
            .post(format!("{url}/graphql"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(request.body.clone())
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "request {i} ({}) got no answer: {e}: {}",
                    request.class,
                    String::from_utf8_lossy(&request.body[..request.body.len().min(300)])
                )
            });
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        let took = started.elapsed();
        let shown =
            || String::from_utf8_lossy(&request.body[..request.body.len().min(300)]).into_owned();
        assert!(
            status < 500,
            "request {i} ({}): {status}: {}",
            request.class,
            shown()
        );
        let body: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("request {i} ({}): not JSON: {}", request.class, shown()));
        for error in body["errors"].as_array().into_iter().flatten() {
            assert!(
                error["extensions"]["code"].is_string(),
                "request {i} ({}): an error without a code: {error}",
                request.class
            );
        }
        let slowest_of_class = slowest.entry(request.class).or_default();
        *slowest_of_class = (*slowest_of_class).max(took);
    }
    eprintln!("hostile fuzz: slowest answer per class {slowest:?}");
    // A debug build on a shared CI core: far above a refusal's milliseconds, far below the
    // seconds (or the crash) these shapes cost before they were bounded.
    for (class, took) in &slowest {
        assert!(
            *took < std::time::Duration::from_secs(2),
            "{class}: an answer took {took:?}"
        );
    }
    crate::hardening::assert_alive(&mut served, &client, &url).await;
    served.kill();
}
