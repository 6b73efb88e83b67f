//! HTTP load on a running stagefit server: throughput and latency percentiles of the
//! recommendation and search queries, next to `{ __typename }` (the server's floor), in
//! one run.
//!
//!     cargo bench --bench load -- --url http://127.0.0.1:8080/graphql --connections 16 --seconds 10
//!
//! Each connection is one keep-alive HTTP/1.1 connection with TCP_NODELAY sending
//! requests back to back. Requests are counted only between the warm-up and the end; a
//! response that is not 200 or carries GraphQL errors counts as an error. Under
//! `cargo test` this target does nothing.

use std::time::{Duration, Instant};

const CASES: [(&str, &str); 5] = [
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

async fn run(args: &Args, body: &'static str) -> (Vec<u32>, u64) {
    let start = Instant::now() + Duration::from_secs(args.warmup);
    let end = start + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let url = args.url.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .tcp_nodelay(true)
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            let mut latencies: Vec<u32> = Vec::new();
            let mut errors = 0u64;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let ok = match client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(res) => {
                        let status = res.status();
                        let text = res.text().await.unwrap_or_default();
                        status == 200 && !text.contains("\"errors\"")
                    }
                    Err(_) => false,
                };
                let done = Instant::now();
                if sent >= start {
                    if ok {
                        latencies.push(
                            done.duration_since(sent)
                                .as_micros()
                                .min(u128::from(u32::MAX)) as u32,
                        );
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("task");
        all.extend(l);
        errors += e;
    }
    all.sort_unstable();
    (all, errors)
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
        "{:<22} {:>9} {:>10} {:>8} {:>8} {:>9} {:>7}",
        "case", "requests", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors"
    );
    for (name, body) in CASES {
        if args.only.as_deref().is_some_and(|o| !name.contains(o)) && name != "typename" {
            continue;
        }
        let (latencies, errors) = runtime.block_on(run(&args, body));
        println!(
            "{:<22} {:>9} {:>10.0} {:>8.2} {:>8.2} {:>9.2} {:>7}",
            name,
            latencies.len(),
            latencies.len() as f64 / args.seconds as f64,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            percentile(&latencies, 0.999),
            errors
        );
    }
}
