//! The server killed with SIGKILL at random moments, again and again: during a stream of
//! mutations and events, and during a 20,000-asset import by another process. After each
//! restart the index equals the database (readiness with no lag allowed, then
//! `verify-index`), and every write the server acknowledged is stored. How long a restart
//! takes to catch up is printed; BENCHMARKS.md records it for a release build (the 5 s
//! bar), since a test's timing on a debug build says little.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{KillOnDrop, config_in, text};

/// A `stagefit serve` process on `dir`'s storage (loading the demo library the first time),
/// and its address.
fn serve(dir: &Path) -> (KillOnDrop, String) {
    let first = !config_in(dir).index_dir.exists();
    let mut args = vec!["--ready-max-lag", "0"];
    if first {
        args.push("--demo");
    }
    let served = crate::support::serve_binary(dir, &args, &[("STAGEFIT_RATE_PER_KEY", "1000000")]);
    // Its log is drained by the helper's reader; the receiver may go.
    (served.child, served.addr)
}

/// Starts the server on `dir` and waits until its index has everything the database
/// committed: the child, its address and how long that took from the start of the process
/// (it indexes what it missed before it listens).
async fn restart(http: &reqwest::Client, dir: &Path) -> (KillOnDrop, String, Duration) {
    let since = Instant::now();
    let (child, addr) = tokio::task::spawn_blocking({
        let dir = dir.to_owned();
        move || serve(&dir)
    })
    .await
    .unwrap();
    let took = caught_up(http, &addr, since).await;
    (child, addr, took)
}

/// Waits until the restarted server's index has everything the database committed; how
/// long that took.
async fn caught_up(http: &reqwest::Client, addr: &str, since: Instant) -> Duration {
    loop {
        if let Ok(response) = http.get(format!("http://{addr}/readyz")).send().await
            && response.status() == 200
        {
            return since.elapsed();
        }
        assert!(since.elapsed() < Duration::from_secs(60), "never caught up");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn verify_index(dir: &Path) {
    let out = crate::support::stagefit(dir, &["verify-index"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

async fn post(http: &reqwest::Client, addr: &str, body: Value) -> Option<Value> {
    let response = http
        .post(format!("http://{addr}/graphql"))
        .json(&body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    if response.status() != 200 {
        return None;
    }
    let body: Value = response.json().await.ok()?;
    body.get("errors").is_none().then_some(body)
}

/// A pseudo-random number in `0..n` from a counter (no dependency needed).
fn spread(i: u64, n: u64) -> u64 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 33) % n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_twenty_times_the_server_loses_nothing_it_acknowledged() {
    let _machine = crate::support::busy().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let http = reqwest::Client::new();
    let mut acknowledged_assets = BTreeSet::new();
    let mut acknowledged_events = BTreeSet::new();
    let mut slowest = Duration::ZERO;

    // Ten kills during a stream of mutations and events.
    for round in 0..10u64 {
        let (mut child, addr, took) = restart(&http, &dir).await;
        eprintln!("stream round {round}: ready after {took:?}");
        if round > 0 {
            // The first start loads the demo library into an empty database: no restart.
            slowest = slowest.max(took);
        }
        tokio::task::spawn_blocking({
            let dir = dir.clone();
            move || verify_index(&dir)
        })
        .await
        .unwrap();
        if round == 0 {
            post(&http, &addr, json!({ "query": r#"mutation { upsertAccount(account: { id: "crash", name: "Crash" }) { id } }"# }))
                .await
                .expect("the account");
        }
        // The stream runs beside the clock, so the kill lands whenever it lands: often with
        // a request half-way through. It waits for a few answers each round too, so a slow
        // machine still kills mid-stream and not before the stream began.
        let (answered, mut acknowledged) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let stream = tokio::spawn({
            let (http, addr) = (http.clone(), addr.clone());
            async move {
                for n in round * 1_000_000.. {
                    let id = format!("crash-{n}");
                    let body = if n.is_multiple_of(2) {
                        json!({ "query": "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { created } }",
                                "variables": { "a": [{ "id": id, "title": format!("Crash {n}"), "contentType": "ebook" }] } })
                    } else {
                        json!({ "query": "mutation($e: EngagementInput!) { recordEngagement(event: $e) { recorded } }",
                                "variables": { "e": { "accountId": "crash", "assetId": "pricing-sheet", "kind": "VIEW", "clientEventId": id } } })
                    };
                    if post(&http, &addr, body).await.is_some() && answered.send(n).is_err() {
                        return;
                    }
                }
            }
        });
        let mut note = |n: u64| {
            let id = format!("crash-{n}");
            if n.is_multiple_of(2) {
                acknowledged_assets.insert(id);
            } else {
                acknowledged_events.insert(id);
            }
        };
        let kill_after = Duration::from_millis(150 + spread(round, 600));
        let started = Instant::now();
        let mut this_round = 0;
        while started.elapsed() < kill_after || this_round < 6 {
            match tokio::time::timeout(Duration::from_millis(5), acknowledged.recv()).await {
                Ok(Some(n)) => {
                    note(n);
                    this_round += 1;
                }
                Ok(None) => panic!("the stream ended"),
                Err(_) => {}
            }
        }
        // SIGKILL, mid-stream. Only what was answered counts as acknowledged.
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        stream.abort();
        let _ = stream.await;
        while let Ok(n) = acknowledged.try_recv() {
            note(n);
        }
    }

    // Ten kills while another process imports 20,000 assets (one transaction), and after.
    let library = dir.join("big.jsonl");
    let out = crate::support::stagefit(
        &dir,
        &[
            "generate",
            "--assets",
            "20000",
            "--seed",
            "3",
            "--output",
            library.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = config_in(&dir);
    let mut import: Option<KillOnDrop> = None;
    for round in 0..10u64 {
        // Readiness waits for the index to reach the database's position, which moves
        // when the import commits; then the index must equal the database.
        let (mut child, _, took) = restart(&http, &dir).await;
        let running = match &mut import {
            None => true,
            Some(import) => import.0.try_wait().unwrap().is_none(),
        };
        eprintln!("import round {round}: ready after {took:?} (import running: {running})");
        slowest = slowest.max(took);
        if !running {
            tokio::task::spawn_blocking({
                let dir = dir.clone();
                move || verify_index(&dir)
            })
            .await
            .unwrap();
        }
        if import.is_none() {
            import = Some(KillOnDrop(
                std::process::Command::new(env!("CARGO_BIN_EXE_stagefit"))
                    .args(["import", library.to_str().unwrap()])
                    .env("STAGEFIT_DATABASE_URL", &config.database_url)
                    .env("STAGEFIT_INDEX_DIR", &config.index_dir)
                    .env_remove("STAGEFIT_LOG")
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50 + spread(round + 100, 400))).await;
        child.0.kill().unwrap();
        child.0.wait().unwrap();
    }
    let mut import = import.unwrap();
    let imported = tokio::task::spawn_blocking(move || import.0.wait().unwrap())
        .await
        .unwrap();
    assert!(imported.success(), "the import itself never was killed");

    // A last start: everything is there.
    let (mut child, addr, last) = restart(&http, &dir).await;
    eprintln!(
        "{} assets and {} events acknowledged; slowest catch-up {slowest:?}, after the import {last:?}",
        acknowledged_assets.len(),
        acknowledged_events.len()
    );
    assert!(acknowledged_assets.len() > 20 && acknowledged_events.len() > 20);
    let export = post(
        &http,
        &addr,
        json!({ "query": r#"{ accountExport(id: "crash") { engagements { clientEventId } } }"# }),
    )
    .await
    .expect("the export");
    let stored: BTreeSet<String> = export["data"]["accountExport"]["engagements"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["clientEventId"].as_str().map(str::to_owned))
        .collect();
    let lost: Vec<_> = acknowledged_events.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged events lost: {lost:?}");
    for id in &acknowledged_assets {
        let body = post(
            &http,
            &addr,
            json!({ "query": "query($id: ID!) { asset(id: $id) { id } }", "variables": { "id": id } }),
        )
        .await
        .unwrap();
        assert_eq!(
            body["data"]["asset"]["id"],
            id.as_str(),
            "acknowledged asset lost"
        );
    }
    let count = post(&http, &addr, json!({ "query": "{ assets(first: 1, filter: { statuses: [PUBLISHED, DRAFT, RETIRED] }) { totalCount } }" }))
        .await
        .unwrap();
    assert!(count["data"]["assets"]["totalCount"].as_u64().unwrap() >= 20_000);
    tokio::task::spawn_blocking(move || verify_index(&dir))
        .await
        .unwrap();
    child.0.kill().unwrap();
    child.0.wait().unwrap();
}
