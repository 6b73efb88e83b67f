//! The database going away under load, on PostgreSQL: reads go on from the local index,
//! writes get 503 `UNAVAILABLE` (never a 500), and the server recovers by itself when the
//! database is back. The test runs its own throwaway cluster, since it stops it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{POSTGRES_ENV, TestServer};

/// A PostgreSQL cluster of the test's own, in a temporary directory.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop()
}

/// Runs a PostgreSQL program, as the postgres user when this is root (initdb refuses root).
fn as_postgres(bin: &Path, program: &str, args: &[&str]) -> std::process::Output {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let program = bin.join(program);
    let mut command = if root {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        std::process::Command::new(program)
    };
    command
        .args(args)
        .output()
        .expect("run a PostgreSQL program")
}

impl Cluster {
    fn start() -> Self {
        let bin = postgres_bin().expect("PostgreSQL's programs (scripts/test.sh installs them)");
        let dir = tempfile::tempdir().unwrap();
        let owner = std::process::Command::new("id")
            .args(["-u", "postgres"])
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<u32>()
                    .ok()
            });
        if let Some(uid) = owner {
            let _ = std::os::unix::fs::chown(dir.path(), Some(uid), None);
        }
        let data = dir.path().join("data");
        let out = as_postgres(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Self { bin, dir, port };
        cluster.up();
        cluster
    }

    fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("log");
        let mut all = vec!["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap()];
        all.extend_from_slice(args);
        as_postgres(&self.bin, "pg_ctl", &all)
    }

    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let out = self.pg_ctl(&["-w", "-o", &options, "start"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn down(&self) {
        let out = self.pg_ctl(&["-w", "-m", "fast", "stop"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
    }
}

async fn post(s: &TestServer, query: &str) -> (u16, Value) {
    let response = s
        .client()
        .post(format!("{}/graphql", s.url))
        .json(&json!({ "query": query }))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

const READ: &str = r#"{ search(query: "reconciliation", first: 3) { totalCount } recommendations(audience: { stage: DECISION }, first: 3) { items { score } } }"#;

fn write(i: usize) -> String {
    format!(
        r#"mutation {{ upsertAccount(account: {{ id: "outage-{i}", name: "Outage {i}" }}) {{ id }} }}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_database_down_reads_go_on_writes_get_503_and_the_server_recovers() {
    if std::env::var(POSTGRES_ENV).is_err() {
        eprintln!("runs with the PostgreSQL suite (scripts/test.sh)");
        return;
    }
    let cluster = Cluster::start();
    let url = cluster.url();
    let mut s = TestServer::demo_with(move |c| {
        c.database_url = url;
        c.response_cache_bytes = 0;
    })
    .await;
    assert_eq!(post(&s, &write(0)).await.0, 200);

    // Load throughout: reads and writes from two clients.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for client in 0..2 {
        let url = s.url.clone();
        let stop = stop.clone();
        load.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut statuses = Vec::new();
            let mut i = 1000 * (client + 1);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                i += 1;
                let query = if i % 2 == 0 {
                    READ.to_owned()
                } else {
                    write(i)
                };
                if let Ok(response) = http
                    .post(format!("{url}/graphql"))
                    .json(&json!({ "query": query }))
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await
                {
                    statuses.push(response.status().as_u16());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            statuses
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let cluster = std::sync::Arc::new(cluster);
    let stopping = cluster.clone();
    tokio::task::spawn_blocking(move || stopping.down())
        .await
        .unwrap();
    // Reads are answered from the local index.
    let (status, body) = post(&s, READ).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["search"]["totalCount"].as_u64().unwrap() > 0);
    // A write fails fast with 503 UNAVAILABLE.
    let started = Instant::now();
    let (status, body) = post(&s, &write(1)).await;
    assert_eq!(
        (status, body["errors"][0]["extensions"]["code"].as_str()),
        (503, Some("UNAVAILABLE")),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    // Long enough for every client of the load to meet the outage.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let starting = cluster.clone();
    tokio::task::spawn_blocking(move || starting.up())
        .await
        .unwrap();
    // Back without restarting stagefit: a write succeeds again and its change is indexed.
    let back = Instant::now();
    loop {
        let (status, _) = post(&s, &write(2)).await;
        if status == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "no recovery: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = post(
        &s,
        r#"mutation { upsertAssets(assets: [{ id: "after-outage", title: "Reconciliation after the outage", contentType: "ebook" }]) { created } }"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = post(
        &s,
        r#"{ search(query: "outage") { items { asset { id } } } }"#,
    )
    .await;
    assert_eq!(
        body["data"]["search"]["items"][0]["asset"]["id"], "after-outage",
        "{body}"
    );

    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut statuses = Vec::new();
    for task in load {
        statuses.extend(task.await.unwrap());
    }
    assert!(
        !statuses.contains(&500),
        "a 500 under the outage: {statuses:?}"
    );
    assert!(
        statuses.contains(&503),
        "the load saw the outage: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [200, 503].contains(s)),
        "{statuses:?}"
    );
    s.stop().await;
}
