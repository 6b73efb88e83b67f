//! Several `serve` replicas on one PostgreSQL database, each with its own index: a write
//! through one shows on the others within a second (they are told with LISTEN/NOTIFY; their
//! polling is set to 30 s here, so nothing else could make it), caches follow, and
//! concurrent writers through every replica leave every index equal to the database and
//! lose no account, contact or event.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{POSTGRES_ENV, TestServer, config_in, text};

async fn post(s: &TestServer, query: &str, variables: Value) -> Value {
    let response = s
        .client()
        .post(format!("{}/graphql", s.url))
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn replicas(shared: &std::path::Path, dirs: &[tempfile::TempDir]) -> Vec<TestServer> {
    let url = config_in(shared).database_url;
    let mut servers = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let url = url.clone();
        servers.push(
            TestServer::start_in_with(dir.path(), i == 0, move |c| {
                c.database_url = url;
                c.follow_interval_ms = 30_000;
            })
            .await,
        );
    }
    servers
}

/// Searches `s` for `word` until `id` is the answer; how long that took.
/// The value of `factor`'s reason for `asset` in the list a query's `field` answered, 0
/// when the asset or the reason is not there.
fn reason_value(body: &Value, field: &str, asset: &str, factor: &str) -> f64 {
    body["data"][field]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["asset"]["id"] == asset)
        .and_then(|i| {
            i["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["factor"] == factor)
                .map(|r| r["value"].as_f64().unwrap())
        })
        .unwrap_or(0.0)
}

async fn seen_after(s: &TestServer, word: &str, id: &str, since: Instant) -> Duration {
    loop {
        let body = post(
            s,
            "query($q: String!) { search(query: $q) { items { asset { id } } } }",
            json!({ "q": word }),
        )
        .await;
        if body["data"]["search"]["items"][0]["asset"]["id"] == id {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "{id} never showed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_write_through_one_replica_shows_on_the_others_within_a_second() {
    let _machine = crate::support::quiet().await;
    if std::env::var(POSTGRES_ENV).is_err() {
        eprintln!("runs with the PostgreSQL suite (scripts/test.sh)");
        return;
    }
    let shared = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut servers = replicas(shared.path(), &dirs).await;
    let mut delays = Vec::new();
    for round in 0..10 {
        let word = format!("zanzibarquux{round}");
        // Asked before the write too: a cached answer must not outlive it.
        for s in &servers[1..] {
            post(
                s,
                "query($q: String!) { search(query: $q) { totalCount } }",
                json!({ "q": word }),
            )
            .await;
        }
        let id = format!("replica-{round}");
        let writer = &servers[round % 3];
        let since = Instant::now();
        let body = post(
            writer,
            "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { created } }",
            json!({ "a": [{ "id": id, "title": format!("About {word}"), "contentType": "ebook" }] }),
        )
        .await;
        assert!(body.get("errors").is_none(), "{body}");
        for s in &servers {
            delays.push(seen_after(s, &word, &id, since).await);
        }
    }
    delays.sort();
    let worst = *delays.last().unwrap();
    eprintln!(
        "write to visible on every replica: median {:?}, worst {worst:?}",
        delays[delays.len() / 2]
    );
    assert!(worst <= Duration::from_secs(1), "{delays:?}");

    // An import by another process, too.
    std::fs::write(
        shared.path().join("one.jsonl"),
        r#"{"id":"imported-late","title":"Quokkaplume primer","content_type":"ebook"}"#,
    )
    .unwrap();
    let url = config_in(shared.path()).database_url;
    let file = shared.path().join("one.jsonl");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_stagefit"))
            .args(["import", file.to_str().unwrap()])
            .env("STAGEFIT_DATABASE_URL", url)
            .env_remove("STAGEFIT_LOG")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Timed from the CLI's exit: the import committed before it, and how long a process
    // takes to start is the machine's business, not the replicas'.
    let since = Instant::now();
    for s in &servers {
        let delay = seen_after(s, "quokkaplume", "imported-late", since).await;
        assert!(
            delay <= Duration::from_secs(1),
            "{delay:?} after the CLI exited"
        );
    }

    // An account changed through one replica: the others drop what they cached of it.
    let account = |industry: &str| {
        format!(
            r#"mutation {{ upsertAccount(account: {{ id: "acme", name: "Acme", industry: "{industry}" }}) {{ id }} }}"#
        )
    };
    post(&servers[0], &account("retail"), json!({})).await;
    let ask = r#"{ recommendations(audience: { accountId: "acme" }, first: 1) { audience { industry } } }"#;
    let industry = |body: Value| body["data"]["recommendations"]["audience"]["industry"].clone();
    assert_eq!(industry(post(&servers[1], ask, json!({})).await), "retail");
    post(&servers[0], &account("healthcare"), json!({})).await;
    let since = Instant::now();
    while industry(post(&servers[1], ask, json!({})).await) != "healthcare" {
        assert!(since.elapsed() < Duration::from_secs(1), "a stale profile");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // An event recorded through one replica moves popularity on the others within 2 s
    // (the counters move in the event's transaction; each replica reads their best lists
    // every second), and no cached answer outlives it.
    let popular = "api-docs-webhooks";
    post(
        &servers[0],
        r#"mutation {
            upsertAccount(account: { id: "reader", name: "R", industry: "retail", stage: ADOPTION }) { id }
        }"#,
        json!({}),
    )
    .await;
    let ranked = r#"{ recommendations(audience: { stage: ADOPTION, industry: "retail", role: TECHNICAL_INTEGRATOR },
                       weights: { freshness: 0 }, diversify: false, first: 30) {
                       items { asset { id } reasons { factor value } } } }"#;
    let popularity = |body: Value| reason_value(&body, "recommendations", popular, "POPULARITY");
    // Asked before the event: an answer the cache may keep.
    assert_eq!(popularity(post(&servers[2], ranked, json!({})).await), 0.0);
    let since = Instant::now();
    post(
        &servers[0],
        "mutation($e: EngagementInput!) { recordEngagement(event: $e) { recorded } }",
        json!({ "e": { "accountId": "reader", "assetId": popular, "kind": "COMPLETE" } }),
    )
    .await;
    while popularity(post(&servers[2], ranked, json!({})).await) == 0.0 {
        assert!(since.elapsed() < Duration::from_secs(2), "stale popularity");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // So do co-reads: two accounts that read the pricing sheet and then the webhooks docs
    // make the second an ALSO_READ reason after the first, on another replica.
    let next = r#"{ nextContent(afterAssetId: "pricing-sheet", first: 30) {
                      items { asset { id } reasons { factor value } } } }"#;
    let also_read = |body: Value| reason_value(&body, "nextContent", popular, "ALSO_READ");
    assert_eq!(also_read(post(&servers[2], next, json!({})).await), 0.0);
    let hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let since = Instant::now();
    for reader in ["reader-2", "reader-3"] {
        post(
            &servers[0],
            r#"mutation($id: ID!, $e: [EngagementInput!]!) {
                 upsertAccount(account: { id: $id, name: "R" }) { id }
                 recordEngagements(events: $e) { recorded } }"#,
            json!({ "id": reader, "e": [
                { "accountId": reader, "assetId": "pricing-sheet", "kind": "VIEW", "occurredAt": hour_ago },
                { "accountId": reader, "assetId": popular, "kind": "VIEW" },
            ] }),
        )
        .await;
    }
    while also_read(post(&servers[2], next, json!({})).await) == 0.0 {
        assert!(since.elapsed() < Duration::from_secs(2), "stale co-reads");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    for s in &mut servers {
        s.stop().await;
    }
}

#[tokio::test]
async fn concurrent_writers_on_every_replica_leave_every_index_equal_to_the_database() {
    if std::env::var(POSTGRES_ENV).is_err() {
        eprintln!("runs with the PostgreSQL suite (scripts/test.sh)");
        return;
    }
    const CLIENTS: usize = 4;
    const WRITES: usize = 80;
    let shared = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut servers = replicas(shared.path(), &dirs).await;
    post(
        &servers[0],
        r#"mutation { upsertAccount(account: { id: "busy", name: "Busy" }) { id } }"#,
        json!({}),
    )
    .await;
    let mut tasks = Vec::new();
    for (r, s) in servers.iter().enumerate() {
        for c in 0..CLIENTS {
            let url = s.url.clone();
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut errors = Vec::new();
                for i in 0..WRITES {
                    // Upserts over a shared set of ids (so replicas overwrite each other),
                    // retirements of them, and events.
                    let id = format!("shared-{}", (r * 7 + c * 3 + i) % 40);
                    let query = match i % 4 {
                        0 => json!({ "query": "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { created } }",
                                     "variables": { "a": [{ "id": id, "title": format!("Version {r}-{c}-{i}"), "contentType": "ebook" }] } }),
                        1 => json!({ "query": "mutation($e: EngagementInput!) { recordEngagement(event: $e) { recorded } }",
                                     "variables": { "e": { "accountId": "busy", "assetId": "pricing-sheet", "kind": "VIEW", "clientEventId": format!("{r}-{c}-{i}") } } }),
                        2 => json!({ "query": "mutation($c: ContactInput!) { upsertContact(contact: $c) { id } }",
                                     "variables": { "c": { "id": format!("busy-{r}-{c}-{i}"), "accountId": "busy", "name": "N", "role": "FINANCE" } } }),
                        _ => json!({ "query": "mutation($id: ID!) { retireAsset(id: $id) { id } }", "variables": { "id": id } }),
                    };
                    let response = http.post(format!("{url}/graphql")).json(&query).send().await.unwrap();
                    let status = response.status().as_u16();
                    let body: Value = response.json().await.unwrap();
                    let code = body["errors"][0]["extensions"]["code"].as_str().map(str::to_owned);
                    // Retiring an id nobody wrote yet is NOT_FOUND: a fine answer.
                    if status != 200 || code.as_deref().is_some_and(|c| c != "NOT_FOUND") {
                        errors.push(format!("{status} {body}"));
                    }
                }
                errors
            }));
        }
    }
    let mut errors = Vec::new();
    for task in tasks {
        errors.extend(task.await.unwrap());
    }
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    let body = post(
        &servers[1],
        r#"{ account(id: "busy") { engagementCount contacts { id } } }"#,
        json!({}),
    )
    .await;
    let per_client = WRITES / 4;
    assert_eq!(
        body["data"]["account"]["engagementCount"],
        3 * CLIENTS * per_client,
        "every acknowledged event is stored"
    );
    assert_eq!(
        body["data"]["account"]["contacts"]
            .as_array()
            .unwrap()
            .len(),
        3 * CLIENTS * per_client,
        "every acknowledged contact is stored"
    );
    let url = config_in(shared.path()).database_url;
    for dir in &dirs {
        let url = url.clone();
        let index = config_in(dir.path()).index_dir;
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_stagefit"))
                .arg("verify-index")
                .env("STAGEFIT_DATABASE_URL", url)
                .env("STAGEFIT_INDEX_DIR", index)
                .env_remove("STAGEFIT_LOG")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    for s in &mut servers {
        s.stop().await;
    }
}
