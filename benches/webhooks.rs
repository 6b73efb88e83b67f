//! What webhooks cost and how fast they go out, over real HTTP against a server in this
//! process (the demo library, its own temporary database) and a receiver on 127.0.0.1
//! that answers 200 at once:
//!
//! 1. single `recordEngagement` calls, one after another, with no webhook and with one
//!    listening for `ENGAGEMENT_RECORDED` (each write then adds an outbox row): p50, p99
//!    and writes per second;
//! 2. a backlog of 5,000 events over 500 accounts written in batches of 100 while the
//!    webhook listens: how long until the receiver has every one, and deliveries per
//!    second.
//!
//! Run with:
//!
//! ```text
//! cargo bench --bench webhooks
//! STAGEFIT_BENCH_DATABASE_URL=postgres://... cargo bench --bench webhooks
//! ```
//!
//! `STAGEFIT_BENCH_NO_WEBHOOKS=1` stops after the writes without a webhook (what a build
//! from before webhooks can run, for a before/after of the write path).
//!
//! Under `cargo test` this target does nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stagefit::config::Config;
use stagefit::state::Server;

const SINGLE_WRITES: usize = 2_000;
const BACKLOG: usize = 5_000;
const ACCOUNTS: usize = 500;

async fn post(client: &reqwest::Client, url: &str, query: &str, variables: Value) -> Value {
    let body: Value = client
        .post(url)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn single_writes(client: &reqwest::Client, url: &str, tag: &str) -> (f64, f64, f64) {
    let query = "mutation($e: EngagementInput!) { recordEngagement(event: $e) { recorded } }";
    let mut times = Vec::with_capacity(SINGLE_WRITES);
    let started = Instant::now();
    for i in 0..SINGLE_WRITES {
        let event = json!({ "accountId": format!("acct-{}", i % ACCOUNTS), "assetId": "pricing-sheet",
                            "kind": "VIEW", "clientEventId": format!("{tag}-{i}") });
        let t = Instant::now();
        post(client, url, query, json!({ "e": event })).await;
        times.push(t.elapsed());
    }
    let rate = SINGLE_WRITES as f64 / started.elapsed().as_secs_f64();
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99), rate)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let delivered = Arc::new(AtomicU64::new(0));
        let counter = delivered.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |_body: String| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::Relaxed);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the receiver");
        let receiver = format!("http://{}/hook", listener.local_addr().expect("its address"));
        tokio::spawn(async move { axum::serve(listener, app).await });

        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = Config::in_dir(dir.path());
        if let Ok(url) = std::env::var("STAGEFIT_BENCH_DATABASE_URL") {
            config.database_url = url;
        }
        config.addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        config.webhooks.allow_private = true;
        let server = Server::start(&config, true).await.expect("server");
        let url = format!("http://{}/graphql", server.addr);
        let client = reqwest::Client::new();
        for i in 0..ACCOUNTS {
            post(
                &client,
                &url,
                "mutation($id: ID!) { upsertAccount(account: { id: $id, name: \"N\" }) { id } }",
                json!({ "id": format!("acct-{i}") }),
            )
            .await;
        }
        let backlog = |tag: &'static str| {
            let client = client.clone();
            let url = url.clone();
            async move {
                let query =
                    "mutation($e: [EngagementInput!]!) { recordEngagements(events: $e) { recorded } }";
                for batch in 0..BACKLOG / 100 {
                    let events: Vec<Value> = (0..100)
                        .map(|j| {
                            let i = batch * 100 + j;
                            json!({ "accountId": format!("acct-{}", i % ACCOUNTS), "assetId": "pricing-sheet",
                                    "kind": "VIEW", "clientEventId": format!("{tag}-{i}") })
                        })
                        .collect();
                    post(&client, &url, query, json!({ "e": events })).await;
                }
            }
        };
        let started = Instant::now();
        backlog("unhooked").await;
        println!(
            "{BACKLOG} events over {ACCOUNTS} accounts in batches of 100, no webhook: written in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        println!("{SINGLE_WRITES} single recordEngagement calls, one at a time, over {ACCOUNTS} accounts");
        println!("{:<34} {:>8} {:>8} {:>9}", "case", "p50 ms", "p99 ms", "writes/s");
        let (p50, p99, rate) = single_writes(&client, &url, "plain").await;
        println!("{:<34} {p50:>8.2} {p99:>8.2} {rate:>9.0}", "no webhook");
        if std::env::var_os("STAGEFIT_BENCH_NO_WEBHOOKS").is_some() {
            // A build without webhooks: the write path alone, for a before/after.
            server.stop().await.expect("stop");
            return;
        }
        post(
            &client,
            &url,
            "mutation($u: String!) { createWebhook(url: $u, events: [ENGAGEMENT_RECORDED],
                 secret: \"bench-secret-0123456789\") { id } }",
            json!({ "u": receiver }),
        )
        .await;
        let (p50, p99, rate) = single_writes(&client, &url, "hooked").await;
        println!("{:<34} {p50:>8.2} {p99:>8.2} {rate:>9.0}", "a webhook listening (outbox row)");
        // Let the deliveries of the single writes finish before the backlog.
        while delivered.load(Ordering::Relaxed) < SINGLE_WRITES as u64 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let before = delivered.load(Ordering::Relaxed);
        let started = Instant::now();
        backlog("backlog").await;
        let written = started.elapsed();
        while delivered.load(Ordering::Relaxed) < before + BACKLOG as u64 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let all = started.elapsed();
        println!(
            "the same with a webhook: written in {:.2} s, all delivered after {:.2} s: {:.0} deliveries/s",
            written.as_secs_f64(),
            all.as_secs_f64(),
            BACKLOG as f64 / all.as_secs_f64()
        );
        server.stop().await.expect("stop");
    });
}
