//! HTTP load on a running stagefit server: throughput and latency percentiles of the
//! recommendation and search queries, next to `{ __typename }` (the server's floor), in
//! one run.
//!
//!     cargo bench --bench load -- --url http://127.0.0.1:8080/graphql --connections 16 --seconds 10
//!
//! Each connection is one keep-alive HTTP/1.1 connection with TCP_NODELAY sending
//! requests back to back. Requests are counted only between the warm-up and the end; a
//! response that is not 200 or carries GraphQL errors counts as an error. The `cached`
//! column is the share of responses the server answered from its response cache
//! (`x-cache: hit`). Under `cargo test` this target does nothing.
//!
//! Most cases repeat one request. `recommend-mixed` rotates through 630 explicit audiences
//! (every stage, every role or none, each of the reference library's 20 industries or
//! none), the spread of questions a site's visitors ask. `recommend-text-mix` rotates
//! through 64 searches of one to three words drawn like the library's text.
//! `recommend-accounts` rotates through 1,000 accounts of `stagefit generate-engagement`
//! (import them first, see BENCHMARKS.md); without them it reports errors.
//! `record-engagement` records one event per request (a view, a download or a completion)
//! for one of those 10,000 accounts and one of the first 10,000 assets of the reference
//! library, 20,000 distinct in rotation: the write path with its counters.
//! `next-content-mix` asks what to read after each of the first 1,000 assets (the
//! ALSO_READ factor reads each seed's co-reads).
//! `search-text-mix` rotates through 64 searches of one to three words, `search-distinct`
//! through 20,000 (with an embedding model, every one a model run).

use std::time::{Duration, Instant};

use stagefit::generate::{Generator, INDUSTRIES};

const STAGES: [&str; 5] = [
    "AWARENESS",
    "INTEREST",
    "CONSIDERATION",
    "DECISION",
    "PURCHASE",
];
const ROLES: [&str; 6] = [
    "",
    "DECISION_MAKER",
    "TECHNICAL_INTEGRATOR",
    "PROCUREMENT",
    "FINANCE",
    "BUSINESS_USER",
];

/// One request per audience of the reference library's vocabulary.
fn mixed_audiences() -> Vec<String> {
    let mut out = Vec::new();
    for stage in STAGES {
        for role in ROLES {
            for industry in std::iter::once("").chain(INDUSTRIES) {
                let mut audience = format!("stage: {stage}, language: \\\"en\\\"");
                if !role.is_empty() {
                    audience.push_str(&format!(", role: {role}"));
                }
                if !industry.is_empty() {
                    audience.push_str(&format!(", industry: \\\"{industry}\\\""));
                }
                out.push(format!(
                    r#"{{"query":"{{ recommendations(audience: {{ {audience} }}, first: 10) {{ items {{ score asset {{ id title }} reasons {{ factor contribution }} }} }} }}"}}"#
                ));
            }
        }
    }
    out
}

/// 1,000 accounts of `stagefit generate-engagement` (every tenth, so heavy and light
/// readers alike), each asked about through one of its contacts: stage from the CRM or the
/// account's reading, role from the contact, industry and language from the account, and
/// what the account read left out.
fn account_audiences() -> Vec<String> {
    (0..1_000)
        .map(|i| {
            let account = format!("acct-{:05}", i * 10);
            format!(
                r#"{{"query":"{{ recommendations(audience: {{ accountId: \"{account}\", contactId: \"{account}-c{}\" }}, first: 10) {{ items {{ score asset {{ id title }} reasons {{ factor contribution }} }} }} }}"}}"#,
                i % 3
            )
        })
        .collect()
}

/// The 64 searches of the in-process `text-mix` case (`Generator::query`, seed 8), asked by
/// the audience of `recommend-text`.
fn text_mix() -> Vec<String> {
    let mut generator = Generator::new(8);
    (0..64)
        .map(|_| {
            format!(
                r#"{{"query":"{{ recommendations(audience: {{ stage: CONSIDERATION, role: DECISION_MAKER }}, query: \"{}\", first: 10) {{ items {{ score asset {{ id title }} }} }} }}"}}"#,
                generator.query()
            )
        })
        .collect()
}

/// Searches of one to three words drawn like the library's text (`Generator::query`, seed
/// 9): with an embedding model they are hybrid. `distinct` of them, each asked once per
/// rotation: 64 are all in the query-vector cache after the warm-up; 20,000 are not.
fn search_mix(distinct: usize) -> Vec<String> {
    let mut generator = Generator::new(9);
    let mut seen = std::collections::HashSet::new();
    let mut bodies = Vec::with_capacity(distinct);
    while bodies.len() < distinct {
        let mut query = generator.query();
        // The vocabulary has fewer combinations than asked for: a number makes it new.
        if !seen.insert(query.clone()) {
            query = format!("{query} {}", bodies.len());
            seen.insert(query.clone());
        }
        bodies.push(format!(
            r#"{{"query":"{{ search(query: \"{query}\", first: 10) {{ items {{ score asset {{ id title }} }} }} }}"}}"#
        ));
    }
    bodies
}

/// One event per request, for 10,000 accounts of `stagefit generate-engagement` and the
/// first 10,000 assets of the reference library.
fn engagement_writes() -> Vec<String> {
    let kinds = ["VIEW", "VIEW", "DOWNLOAD", "COMPLETE"];
    (0..20_000u64)
        .map(|i| {
            let account = format!("acct-{:05}", (i * 7_919) % 10_000);
            let asset = format!("s-{:07}", (i * 104_729) % 10_000);
            format!(
                r#"{{"query":"mutation {{ recordEngagement(event: {{ accountId: \"{account}\", assetId: \"{asset}\", kind: {} }}) {{ recorded }} }}"}}"#,
                kinds[(i % 4) as usize]
            )
        })
        .collect()
}

/// What to read after each of the first 1,000 assets of the reference library.
fn next_content() -> Vec<String> {
    (0..1_000u64)
        .map(|i| {
            format!(
                r#"{{"query":"{{ nextContent(afterAssetId: \"s-{i:07}\", first: 10) {{ items {{ score asset {{ id title }} }} }} }}"}}"#
            )
        })
        .collect()
}

fn cases() -> Vec<(&'static str, Vec<String>)> {
    let mut cases: Vec<(&str, Vec<String>)> = SINGLE_REQUEST_CASES
        .iter()
        .map(|(name, body)| (*name, vec![(*body).to_owned()]))
        .collect();
    cases.insert(2, ("recommend-mixed", mixed_audiences()));
    cases.insert(3, ("recommend-accounts", account_audiences()));
    cases.insert(6, ("recommend-text-mix", text_mix()));
    cases.push(("record-engagement", engagement_writes()));
    cases.push(("next-content-mix", next_content()));
    cases.push(("search-text-mix", search_mix(64)));
    cases.push(("search-distinct", search_mix(20_000)));
    cases
}

const SINGLE_REQUEST_CASES: [(&str, &str); 5] = [
    ("typename", r#"{"query":"{ __typename }"}"#),
    (
        "recommend-explicit",
        r#"{"query":"{ recommendations(audience: { stage: DECISION, role: TECHNICAL_INTEGRATOR, industry: \"financial-services/payments\", language: \"en\" }, first: 10) { items { score asset { id title } reasons { factor contribution } } } }"}"#,
    ),
    (
        "recommend-anonymous",
        r#"{"query":"{ recommendations(audience: {}, first: 10) { items { score asset { id title } } } }"}"#,
    ),
    (
        "recommend-text",
        r#"{"query":"{ recommendations(audience: { stage: CONSIDERATION, role: DECISION_MAKER }, query: \"reconciliation api\", first: 10) { items { score asset { id title } } } }"}"#,
    ),
    (
        "search-peer-filter",
        r#"{"query":"{ search(query: \"\", first: 10, filter: { stages: [DECISION], roles: [TECHNICAL_INTEGRATOR], industries: [\"financial-services/payments\"], languages: [\"en\"] }) { items { asset { id title } } } }"}"#,
    ),
];

struct Args {
    url: String,
    connections: usize,
    seconds: u64,
    warmup: u64,
    only: Option<String>,
}

fn parse_args() -> Option<Args> {
    let mut args = Args {
        url: "http://127.0.0.1:8080/graphql".to_owned(),
        connections: 16,
        seconds: 10,
        warmup: 2,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    let mut bench = false;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bench" => bench = true,
            "--url" => args.url = it.next()?,
            "--connections" => args.connections = it.next()?.parse().ok()?,
            "--seconds" => args.seconds = it.next()?.parse().ok()?,
            "--warmup" => args.warmup = it.next()?.parse().ok()?,
            "--only" => args.only = it.next(),
            _ => {}
        }
    }
    bench.then_some(args)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

struct Measured {
    latencies: Vec<u32>,
    errors: u64,
    cached: u64,
}

async fn run(args: &Args, bodies: Vec<String>) -> Measured {
    let bodies = std::sync::Arc::new(bodies);
    let start = Instant::now() + Duration::from_secs(args.warmup);
    let end = start + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for connection in 0..args.connections {
        let url = args.url.clone();
        let bodies = bodies.clone();
        // Each connection starts at its own place in the rotation.
        let mut next = connection * bodies.len() / args.connections;
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .tcp_nodelay(true)
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            let mut measured = Measured {
                latencies: Vec::new(),
                errors: 0,
                cached: 0,
            };
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let body = bodies[next % bodies.len()].clone();
                next += 1;
                let (ok, hit) = match client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(res) => {
                        let status = res.status();
                        let hit = res
                            .headers()
                            .get("x-cache")
                            .is_some_and(|v| v.as_bytes() == b"hit");
                        let text = res.text().await.unwrap_or_default();
                        (status == 200 && !text.contains("\"errors\""), hit)
                    }
                    Err(_) => (false, false),
                };
                let done = Instant::now();
                if sent >= start {
                    if ok {
                        measured.latencies.push(
                            done.duration_since(sent)
                                .as_micros()
                                .min(u128::from(u32::MAX)) as u32,
                        );
                        measured.cached += u64::from(hit);
                    } else {
                        measured.errors += 1;
                    }
                }
            }
            measured
        }));
    }
    let mut all = Measured {
        latencies: Vec::new(),
        errors: 0,
        cached: 0,
    };
    for t in tasks {
        let m = t.await.expect("task");
        all.latencies.extend(m.latencies);
        all.errors += m.errors;
        all.cached += m.cached;
    }
    all.latencies.sort_unstable();
    all
}

fn main() {
    let Some(args) = parse_args() else {
        eprintln!(
            "load: run with `cargo bench --bench load -- --url URL` against a running server"
        );
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    println!(
        "{} connections, {}s per case after {}s warm-up, against {}",
        args.connections, args.seconds, args.warmup, args.url
    );
    println!(
        "{:<22} {:>9} {:>10} {:>8} {:>8} {:>9} {:>7} {:>7}",
        "case", "requests", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "cached", "errors"
    );
    for (name, bodies) in cases() {
        if args.only.as_deref().is_some_and(|o| !name.contains(o)) && name != "typename" {
            continue;
        }
        let m = runtime.block_on(run(&args, bodies));
        let n = m.latencies.len();
        println!(
            "{:<22} {:>9} {:>10.0} {:>8.2} {:>8.2} {:>9.2} {:>6.0}% {:>7}",
            name,
            n,
            n as f64 / args.seconds as f64,
            percentile(&m.latencies, 0.5),
            percentile(&m.latencies, 0.99),
            percentile(&m.latencies, 0.999),
            100.0 * m.cached as f64 / (n.max(1) as f64),
            m.errors
        );
    }
}
