//! SIGTERM under write load: the server stops accepting, finishes what is in flight,
//! writes its queues (audit trail, impressions) and exits; after a restart every write
//! that was acknowledged is there.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::support::{serve_binary, stagefit, text};

fn create_key(dir: &std::path::Path, scope: &str) -> String {
    let out = stagefit(dir, &["keys", "create", "--scope", scope, "--name", scope]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_owned()
}

/// Status and body of a POST, or `None` when no answer came (the connection closed).
async fn post(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    body: &Value,
) -> Option<(u16, Value)> {
    let response = client
        .post(format!("{url}/graphql"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.ok()?))
}

/// One write of the load.
enum Job {
    /// `upsertAccount`, named, with a server key: audited with outcome `ok`.
    Mutation(String),
    /// A mutation a publishable key may not call, named: audited with `FORBIDDEN`. It
    /// writes nothing else, so nothing else waits for the database.
    Refused(String),
    /// One impression of a list.
    Impression {
        list: String,
        asset: String,
        position: usize,
    },
}

/// What the server answered and what must therefore be stored.
enum Acknowledged {
    Audited(String),
    Impressions(u64),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_write_load_loses_no_acknowledged_write() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let admin = create_key(dir, "admin");
    let server = create_key(dir, "server");
    let site = create_key(dir, "publishable");
    let served = serve_binary(
        dir,
        &[
            "--demo",
            "--rate-per-client",
            "100000",
            "--burst-per-client",
            "100000",
        ],
        &[],
    );
    let url = format!("http://{}", served.addr);
    let client = reqwest::Client::new();

    // Lists to report impressions against.
    let mut lists: Vec<(String, Vec<String>)> = Vec::new();
    for stage in [
        "AWARENESS",
        "CONSIDERATION",
        "DECISION",
        "ADOPTION",
        "ADVOCACY",
    ] {
        for role in [
            "DECISION_MAKER",
            "TECHNICAL_INTEGRATOR",
            "FINANCE",
            "PROCUREMENT",
        ] {
            let (_, body) = post(
                &client,
                &url,
                &server,
                &json!({ "query": "query($a: AudienceInput!) { recommendations(audience: $a, first: 10) { recommendationId items { asset { id } } } }",
                         "variables": { "a": { "stage": stage, "role": role } } }),
            )
            .await
            .expect("a list");
            let list = &body["data"]["recommendations"];
            lists.push((
                list["recommendationId"].as_str().unwrap().to_owned(),
                list["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["asset"]["id"].as_str().unwrap().to_owned())
                    .collect(),
            ));
        }
    }
    // 400 writes and impressions; refusals, without end, until the server is gone (however
    // long the writes take on a busy machine, the refusals go on past them).
    let writes: Vec<Job> = (0..800usize)
        .filter(|n| n % 2 == 0)
        .map(|n| match n % 4 {
            0 => Job::Mutation(format!("Write{n}")),
            _ => {
                let (list, items) = &lists[n % lists.len()];
                let position = (n / lists.len()) % items.len();
                Job::Impression {
                    list: list.clone(),
                    asset: items[position].clone(),
                    position: position + 1,
                }
            }
        })
        .collect();

    // Load from 4 clients that write and 4 that are refused (and so wait for no database
    // write). Once the writes are answered, the audit trail's table is locked (as a busy
    // database would hold it) until after the server stopped; under the refusals that go
    // on, SIGTERM.
    let refused = std::sync::atomic::AtomicUsize::new(0);
    let pid = served.child.0.id();
    let refusals = (0usize..).map(|n| Job::Refused(format!("Refused{n}")));
    let keys = (server.as_str(), site.as_str());
    let database = crate::support::config_in(dir).database_url;
    let writes_done = tokio::sync::Notify::new();
    let terminate = async {
        let refused = &refused;
        let until = |n: usize| async move {
            while refused.load(std::sync::atomic::Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
        until(150).await;
        writes_done.notified().await;
        let (locked, lock_held) = tokio::sync::oneshot::channel();
        tokio::spawn(hold_audit_writes(
            database.clone(),
            Duration::from_secs(3),
            locked,
        ));
        lock_held.await.unwrap();
        until(refused.load(std::sync::atomic::Ordering::SeqCst) + 100).await;
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
    };
    let (written, refused_ones, ()) = tokio::join!(
        async {
            let written = run_load(&client, &url, keys, &refused, writes.into_iter()).await;
            writes_done.notify_one();
            written
        },
        run_load(&client, &url, keys, &refused, refusals),
        terminate
    );
    let acknowledged: Vec<Acknowledged> =
        written.into_iter().chain(refused_ones).flatten().collect();
    let mut served = served;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = served.child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit {status:?}");
    let writes: HashSet<String> = acknowledged
        .iter()
        .filter_map(|a| match a {
            Acknowledged::Audited(name) => Some(name.clone()),
            Acknowledged::Impressions(_) => None,
        })
        .collect();
    let impressions: u64 = acknowledged
        .iter()
        .map(|a| match a {
            Acknowledged::Impressions(n) => *n,
            Acknowledged::Audited(_) => 0,
        })
        .sum();
    assert!(
        writes.len() >= 400,
        "the load did not reach the shutdown: {} audited writes acknowledged",
        writes.len()
    );

    // After a restart, every acknowledged mutation (done or refused) is in the audit
    // trail, and every acknowledged impression is counted.
    let again = serve_binary(dir, &[], &[]);
    let url = format!("http://{}", again.addr);
    let mut audited: HashSet<String> = HashSet::new();
    let mut after: Option<String> = None;
    loop {
        let (_, body) = post(
            &client,
            &url,
            &admin,
            &json!({ "query": "query($after: String) { auditLog(first: 500, after: $after) { cursor operation } }",
                     "variables": { "after": after } }),
        )
        .await
        .expect("the audit log");
        let page = body["data"]["auditLog"].as_array().unwrap().clone();
        let Some(last) = page.last() else { break };
        after = last["cursor"].as_str().map(str::to_owned);
        audited.extend(
            page.iter()
                .filter_map(|e| e["operation"].as_str().map(str::to_owned)),
        );
    }
    let mut missing: Vec<&String> = writes.difference(&audited).collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes not audited: {missing:?}",
        missing.len(),
        writes.len()
    );
    let (_, body) = post(
        &client,
        &url,
        &admin,
        &json!({ "query": "{ assetPerformance(first: 100, minImpressions: 1) { items { impressions } } }" }),
    )
    .await
    .expect("analytics");
    let stored: u64 = body["data"]["assetPerformance"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["impressions"].as_u64().unwrap())
        .sum();
    assert!(
        stored >= impressions,
        "{impressions} impressions acknowledged, {stored} stored"
    );
    again.kill();
}

/// Sends `jobs` from 4 clients at once, counting the refused ones in `refused` as they
/// are answered.
/// Sends `jobs` four at a time until they end or the server stops answering.
async fn run_load(
    client: &reqwest::Client,
    url: &str,
    keys: (&str, &str),
    refused: &std::sync::atomic::AtomicUsize,
    jobs: impl Iterator<Item = Job>,
) -> Vec<Option<Acknowledged>> {
    let gone = std::sync::atomic::AtomicBool::new(false);
    let gone = &gone;
    futures::stream::iter(jobs)
        .take_while(|_| futures::future::ready(!gone.load(std::sync::atomic::Ordering::SeqCst)))
        .map(|job| async move {
            let answer = send(client, url, keys, &job).await;
            if matches!(job, Job::Refused(_)) {
                refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            // No answer at all: the server has stopped listening.
            if answer.is_none() {
                gone.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            answer.flatten()
        })
        .buffer_unordered(4)
        .collect()
        .await
}

/// Sends one job of the load (`keys`: a server key and a publishable one): `None` when no
/// answer came, else what the server acknowledged, if anything.
async fn send(
    client: &reqwest::Client,
    url: &str,
    (server, site): (&str, &str),
    job: &Job,
) -> Option<Option<Acknowledged>> {
    Some(match job {
        Job::Mutation(name) => {
            let body = json!({
                "query": format!("mutation {name} {{ upsertAccount(account: {{ id: \"{name}\", name: \"{name}\" }}) {{ id }} }}"),
                "operationName": name,
            });
            let (status, body) = post(client, url, server, &body).await?;
            (status == 200 && body.get("errors").is_none())
                .then(|| Acknowledged::Audited(name.clone()))
        }
        Job::Refused(name) => {
            let body = json!({
                "query": format!("mutation {name} {{ retireAsset(id: \"pricing-sheet\") {{ id }} }}"),
                "operationName": name,
            });
            let (status, _) = post(client, url, site, &body).await?;
            (status == 403).then(|| Acknowledged::Audited(name.clone()))
        }
        Job::Impression {
            list,
            asset,
            position,
        } => {
            let body = json!({
                "query": "mutation($id: ID!, $a: [ID!]!, $p: [Int!]) { recordImpressions(recommendationId: $id, assetIds: $a, positions: $p) { recorded } }",
                "variables": { "id": list, "a": [asset], "p": [position] },
            });
            let (status, body) = post(client, url, server, &body).await?;
            let recorded = body["data"]["recordImpressions"]["recorded"].as_u64();
            recorded
                .filter(|_| status == 200)
                .map(Acknowledged::Impressions)
        }
    })
}

/// Holds the audit trail's table (on SQLite, the whole database) for `how_long` in a
/// transaction of its own; says so on `locked` once the lock is held.
async fn hold_audit_writes(
    database: String,
    how_long: Duration,
    locked: tokio::sync::oneshot::Sender<()>,
) {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let db = sea_orm::Database::connect(database.as_str()).await.unwrap();
    let txn = db.begin().await.unwrap();
    let statement = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => "LOCK TABLE audit_event IN EXCLUSIVE MODE",
        _ => "UPDATE asset SET title = title WHERE id = (SELECT MIN(id) FROM asset)",
    };
    txn.execute_unprepared(statement).await.unwrap();
    let _ = locked.send(());
    tokio::time::sleep(how_long).await;
    txn.rollback().await.unwrap();
    db.close().await.unwrap();
}
