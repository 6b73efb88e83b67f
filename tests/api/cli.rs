//! The command line: import, export and their guarantees.

use serde_json::{Value, json};

use crate::support::{DEMO_LIBRARY, TestServer, demo_records, stagefit, text};

/// 238 assets in the interchange format: the demo library and 100 variants of it.
fn library_238() -> String {
    let mut lines: Vec<String> = DEMO_LIBRARY.lines().map(str::to_owned).collect();
    for (i, mut record) in demo_records().into_iter().take(100).enumerate() {
        record["id"] = json!(format!("variant-{i:03}"));
        record["title"] = json!(format!(
            "{} (variant {i})",
            record["title"].as_str().unwrap()
        ));
        // Some pages link to others, as written on them: the round trip keeps them.
        if i % 3 == 0 {
            record["links"] = json!([
                format!("./variant-{:03}", i + 1),
                "https://example.org/x?y=1#z"
            ]);
        }
        lines.push(record.to_string());
    }
    assert_eq!(lines.len(), 238);
    lines.join("\n") + "\n"
}

#[test]
fn jsonl_and_csv_imports_give_the_same_library_and_round_trip() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let source = a.path().join("library.jsonl");
    std::fs::write(&source, library_238()).unwrap();

    let out = stagefit(a.path(), &["import", source.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("238 rows: 238 created, 0 updated, 0 unchanged, 0 failed"),
        "{}",
        text(&out.stdout)
    );

    // JSONL -> CSV -> another database -> JSONL gives the same file.
    let csv = a.path().join("library.csv");
    let out = stagefit(a.path(), &["export", csv.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("exported 238 assets"));
    let out = stagefit(b.path(), &["import", csv.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let from_jsonl = a.path().join("a.jsonl");
    let from_csv = b.path().join("b.jsonl");
    assert!(
        stagefit(a.path(), &["export", from_jsonl.to_str().unwrap()])
            .status
            .success()
    );
    assert!(
        stagefit(b.path(), &["export", from_csv.to_str().unwrap()])
            .status
            .success()
    );
    let exported = std::fs::read_to_string(&from_jsonl).unwrap();
    assert_eq!(exported, std::fs::read_to_string(&from_csv).unwrap());
    assert_eq!(exported.lines().count(), 238);

    // Export -> import -> export is lossless, and re-importing changes nothing.
    assert!(
        stagefit(c.path(), &["import", from_jsonl.to_str().unwrap()])
            .status
            .success()
    );
    let again = c.path().join("c.jsonl");
    assert!(
        stagefit(c.path(), &["export", again.to_str().unwrap()])
            .status
            .success()
    );
    assert_eq!(std::fs::read_to_string(&again).unwrap(), exported);
    let out = stagefit(c.path(), &["import", again.to_str().unwrap()]);
    assert!(
        text(&out.stdout).starts_with("238 rows: 0 created, 0 updated, 238 unchanged"),
        "{}",
        text(&out.stdout)
    );

    // Every field of the source survives (values are canonicalised on the way in).
    let first: Value = serde_json::from_str(exported.lines().next().unwrap()).unwrap();
    let original = demo_records()
        .into_iter()
        .find(|r| r["id"] == first["id"])
        .unwrap();
    for field in [
        "title",
        "summary",
        "body",
        "url",
        "language",
        "published_at",
        "gated",
        "evergreen",
    ] {
        assert_eq!(first[field], original[field], "{field}");
    }
}

#[test]
fn a_bad_csv_row_fails_the_whole_import_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bad.csv");
    std::fs::write(
        &csv,
        "id,title,content_type,stages,roles\n\
         good-1,Good one,ebook,awareness,\n\
         bad-1,Bad one,ebook,closing,\n\
         good-2,Good two,demo,decision,finance\n",
    )
    .unwrap();
    let out = stagefit(dir.path(), &["import", csv.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.csv:3: [bad-1] stages: unknown stage \"closing\""),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    assert!(
        text(&out.stdout).contains("0 created"),
        "{}",
        text(&out.stdout)
    );

    let export = dir.path().join("after.jsonl");
    assert!(
        stagefit(dir.path(), &["export", export.to_str().unwrap()])
            .status
            .success()
    );
    assert_eq!(
        std::fs::read_to_string(&export).unwrap(),
        "",
        "the database is unchanged"
    );

    let out = stagefit(
        dir.path(),
        &["import", "--best-effort", csv.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("3 rows: 2 created, 0 updated, 0 unchanged, 1 failed"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_row_with_several_problems_is_one_failed_row() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("mixed.jsonl");
    std::fs::write(
        &jsonl,
        concat!(
            "{\"id\":\"ok\",\"title\":\"OK\",\"content_type\":\"EBOOK\"}\n",
            "{\"id\":\"one\",\"title\":\"One\",\"content_type\":\"podcast\"}\n",
            "{\"id\":\"two problems\",\"title\":\"Two\",\"content_type\":\"podcast\"}\n",
        ),
    )
    .unwrap();
    let out = stagefit(
        dir.path(),
        &["import", "--best-effort", jsonl.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("3 rows: 1 created, 0 updated, 0 unchanged, 2 failed"),
        "{}",
        text(&out.stdout)
    );
    // Each problem is still reported: three of them.
    assert_eq!(
        text(&out.stderr).matches("mixed.jsonl:").count(),
        3,
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn unreadable_inputs_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = stagefit(dir.path(), &["import", "/no/such/file.jsonl"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot open"),
        "{}",
        text(&out.stderr)
    );
    let txt = dir.path().join("library.txt");
    std::fs::write(&txt, "x").unwrap();
    let out = stagefit(dir.path(), &["import", txt.to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains("use a .jsonl or .csv file"),
        "{}",
        text(&out.stderr)
    );
    let jsonl = dir.path().join("broken.jsonl");
    std::fs::write(
        &jsonl,
        "{\"id\":\"a\",\"title\":\"A\",\"content_type\":\"EBOOK\"}\n{oops\n",
    )
    .unwrap();
    let out = stagefit(dir.path(), &["import", jsonl.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("broken.jsonl:2: not valid JSON"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn a_running_server_picks_up_a_cli_import() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_in(tmp.path(), false).await;
    let file = tmp.path().join("new.jsonl");
    std::fs::write(
        &file,
        "{\"id\":\"cli-1\",\"title\":\"Imported while serving\",\"content_type\":\"EBOOK\",\"summary\":\"treasury\"}\n",
    )
    .unwrap();
    let path = file.to_str().unwrap().to_owned();
    let dir = tmp.path().to_owned();
    let out = tokio::task::spawn_blocking(move || stagefit(&dir, &["import", &path]))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("a running server is indexing the changes"),
        "{}",
        text(&out.stdout)
    );
    let mut found = 0;
    for _ in 0..50 {
        let data = s
            .gql("{ search(query: \"treasury\") { totalCount } }", json!({}))
            .await;
        found = data["search"]["totalCount"].as_u64().unwrap();
        if found == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(found, 1, "the server follows the change log");
    s.stop().await;
}

#[tokio::test]
async fn verify_index_compares_the_index_with_the_database_beside_a_running_server() {
    use sea_orm::ConnectionTrait;
    let tmp = tempfile::tempdir().unwrap();
    let mut s = crate::support::TestServer::start_in(tmp.path(), true).await;
    let dir = tmp.path().to_owned();
    let out =
        tokio::task::spawn_blocking(move || crate::support::stagefit(&dir, &["verify-index"]))
            .await
            .unwrap();
    let stdout = crate::support::text(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        crate::support::text(&out.stderr)
    );
    assert!(stdout.contains("the index equals the database"), "{stdout}");
    s.stop().await;

    // Behind the index's back: one asset changed, one gone.
    let url = crate::support::config_in(tmp.path()).database_url;
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    for sql in [
        "UPDATE asset SET content_hash = 'tampered' WHERE id = 'pricing-sheet'",
        "DELETE FROM asset_tag WHERE asset_id = 'draft-pricing-2027'",
        "DELETE FROM asset WHERE id = 'draft-pricing-2027'",
    ] {
        db.execute_unprepared(sql).await.unwrap();
    }
    db.close().await.unwrap();
    let dir = tmp.path().to_owned();
    let out =
        tokio::task::spawn_blocking(move || crate::support::stagefit(&dir, &["verify-index"]))
            .await
            .unwrap();
    let stdout = crate::support::text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("different in the index (1): pricing-sheet"),
        "{stdout}"
    );
    assert!(
        stdout.contains("in the index only (1): draft-pricing-2027"),
        "{stdout}"
    );
    assert!(
        crate::support::text(&out.stderr).contains("the index differs from the database"),
        "{}",
        crate::support::text(&out.stderr)
    );
}

/// `copy-data`: a SQLite install moved to another database (PostgreSQL in the suite's
/// PostgreSQL run) keeps its library, accounts, events, keys and audit trail, and a server
/// on the target builds its index from them.
#[tokio::test]
async fn copy_data_moves_an_install_and_a_server_on_the_copy_answers_the_same() {
    use serde_json::{Value, json};
    let source_dir = tempfile::tempdir().unwrap();
    let target_dir = tempfile::tempdir().unwrap();
    let sqlite = stagefit::config::Config::in_dir(source_dir.path()).database_url;
    let target = crate::support::config_in(target_dir.path()).database_url;

    let source_url = sqlite.clone();
    let mut s = crate::support::TestServer::start_in_with(source_dir.path(), true, move |c| {
        c.database_url = source_url;
    })
    .await;
    let (_, admin) = s
        .server
        .as_ref()
        .unwrap()
        .state()
        .access
        .create_key("ops", stagefit::domain::Scope::Admin, Default::default())
        .await
        .unwrap();
    let call = |s: &crate::support::TestServer, query: &str| {
        let request = s
            .client()
            .post(format!("{}/graphql", s.url))
            .bearer_auth(&admin)
            .json(&json!({ "query": query }));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let setup = call(
        &s,
        r#"mutation {
            a: upsertAccount(account: { id: "acme", name: "Acme", industry: "retail" }) { id }
            c: upsertContact(contact: { id: "acme-cfo", accountId: "acme", name: "C", role: FINANCE }) { id }
            e: recordEngagements(events: [
                { accountId: "acme", contactId: "acme-cfo", assetId: "pricing-sheet", kind: VIEW },
                { accountId: "acme", assetId: "pricing-sheet", kind: DOWNLOAD }]) { recorded }
            p: refreshPopularity { events }
        }"#,
    )
    .await;
    assert!(setup.get("errors").is_none(), "{setup}");
    let probe = r#"{ search(query: "reconciliation", first: 50) { totalCount items { asset { id } } }
                     account(id: "acme") { engagementCount contacts { id } }
                     recommendations(audience: { accountId: "acme" }, first: 5, diversify: false) { items { score } } }"#;
    let before = call(&s, probe).await;
    s.stop().await;

    let copy = |replace: bool| {
        let (from, to) = (sqlite.clone(), target.clone());
        tokio::task::spawn_blocking(move || {
            let mut args = vec!["copy-data", "--from", from.as_str(), "--to", to.as_str()];
            if replace {
                args.push("--replace");
            }
            std::process::Command::new(env!("CARGO_BIN_EXE_stagefit"))
                .args(&args)
                .env_remove("STAGEFIT_LOG")
                .output()
                .unwrap()
        })
    };
    let out = copy(false).await.unwrap();
    let stdout = crate::support::text(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        crate::support::text(&out.stderr)
    );
    assert!(stdout.contains("engagement"), "{stdout}");

    let mut t = crate::support::TestServer::start_in(target_dir.path(), false).await;
    let after = call(&t, probe).await;
    // The same rows give the same answers; ties may come in another order, since a freshly
    // built index scores from other segments.
    let set = |body: &Value, path: &str| {
        let mut ids = crate::support::ids(&body["data"][path]["items"], &["asset", "id"]);
        ids.sort();
        ids
    };
    assert_eq!(
        after["data"]["account"], before["data"]["account"],
        "{after}"
    );
    assert_eq!(
        after["data"]["search"]["totalCount"],
        before["data"]["search"]["totalCount"]
    );
    assert_eq!(set(&after, "search"), set(&before, "search"));
    // Recommendations: the same scores (tied assets at the cut may trade places; freshness
    // moves with the clock in the ninth decimal).
    let scores = |body: &Value| -> Vec<i64> {
        body["data"]["recommendations"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["score"].as_f64().unwrap() * 1e4).round() as i64)
            .collect()
    };
    assert_eq!(scores(&after), scores(&before));
    assert_eq!(scores(&after).len(), 5);
    // Keys came along (the admin key works), and so did the audit trail.
    let log = call(&t, "{ auditLog(first: 5) { operation } }").await;
    assert!(
        !log["data"]["auditLog"].as_array().unwrap().is_empty(),
        "{log}"
    );
    // New rows get new numbers after the copied ones.
    let more = call(
        &t,
        r#"mutation { recordEngagement(event: { accountId: "acme", assetId: "pricing-sheet", kind: SHARE }) { recorded } }"#,
    )
    .await;
    assert_eq!(more["data"]["recordEngagement"]["recorded"], 1, "{more}");
    t.stop().await;

    // A target with data is refused unless told.
    let out = copy(false).await.unwrap();
    assert!(!out.status.success());
    assert!(
        crate::support::text(&out.stderr).contains("not empty; pass --replace"),
        "{}",
        crate::support::text(&out.stderr)
    );
    let out = copy(true).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        crate::support::text(&out.stderr)
    );
}

/// What `verify-index` says about a directory's index, and whether it succeeded.
fn verify(dir: &std::path::Path) -> (bool, String) {
    let out = stagefit(dir, &["verify-index"]);
    (out.status.success(), text(&out.stdout))
}

#[test]
fn an_import_indexes_while_it_writes_and_commits_nothing_it_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("library.jsonl");
    // 2,500 assets: three batches of the import, each staged in the index as written.
    let base = demo_records();
    let record = |i: usize, title: &str| {
        let mut r = base[i % base.len()].clone();
        r["id"] = json!(format!("bulk-{i:05}"));
        r["title"] = json!(format!("{title} {i}"));
        r["status"] = json!("published");
        r.to_string()
    };
    let lines: Vec<String> = (0..2_500).map(|i| record(i, "Bulk asset")).collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = stagefit(dir.path(), &["import", file.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("2500 created") && stdout.contains("index committed"),
        "{stdout}"
    );
    let (same, report) = verify(dir.path());
    assert!(
        same && report.contains("the index equals the database"),
        "{report}"
    );

    // A second import changes a few assets in its last batch: the index follows.
    let mut changed = lines.clone();
    for i in [3, 2_400, 2_499] {
        changed[i] = record(i, "Qwertzu");
    }
    std::fs::write(&file, changed.join("\n") + "\n").unwrap();
    let out = stagefit(dir.path(), &["import", file.to_str().unwrap()]);
    assert!(
        text(&out.stdout).contains("3 updated, 2497 unchanged"),
        "{}",
        text(&out.stdout)
    );
    let (same, report) = verify(dir.path());
    assert!(same, "{report}");

    // All or nothing: a bad row in the third batch fails the import after two batches
    // were written and staged; the database keeps nothing and neither does the index.
    let mut failing: Vec<String> = (0..2_500).map(|i| record(i, "Zyxwvut")).collect();
    failing[2_300] = r#"{"id": "broken", "title": ""}"#.to_owned();
    std::fs::write(&file, failing.join("\n") + "\n").unwrap();
    let out = stagefit(dir.path(), &["import", file.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let (same, report) = verify(dir.path());
    assert!(same, "{report}");
    let s = dir.path().to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let mut server = TestServer::start_in(&s, false).await;
        let found = server
            .gql(r#"{ search(query: "zyxwvut") { totalCount } }"#, json!({}))
            .await;
        assert_eq!(found["search"]["totalCount"], 0, "{found}");
        let renamed = server
            .gql(r#"{ search(query: "qwertzu") { totalCount } }"#, json!({}))
            .await;
        assert_eq!(renamed["search"]["totalCount"], 3, "{renamed}");
        server.stop().await;
    });
}

/// `audit`, `replay`, `export` and `verify-index` read the database and the index while a
/// server serves them, start nothing, and delete nothing (an audit event and an impression
/// older than any retention are still there after them).
#[tokio::test]
async fn report_commands_run_beside_a_running_server_and_write_nothing() {
    use sea_orm::ConnectionTrait;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    // A server that keeps everything, on the demo library, with a list shown and clicked.
    let mut s = TestServer::start_in_with(&dir, true, |c| {
        c.audit_retention_days = 0;
        c.feedback_retention_days = 0;
    })
    .await;
    s.gql(
        r#"mutation { upsertAccount(account: { id: "acme", name: "Acme" }) { id } }"#,
        json!({}),
    )
    .await;
    let list = s
        .gql(
            r#"{ recommendations(audience: { stage: DECISION }, first: 3) { recommendationId items { asset { id } } } }"#,
            json!({}),
        )
        .await;
    let id = list["recommendations"]["recommendationId"]
        .as_str()
        .unwrap();
    let first = list["recommendations"]["items"][0]["asset"]["id"]
        .as_str()
        .unwrap();
    s.gql(
        r#"mutation($e: EngagementInput!) { recordEngagement(event: $e) { recorded } }"#,
        json!({ "e": { "accountId": "acme", "assetId": first, "kind": "VIEW", "recommendationId": id, "position": 1 } }),
    )
    .await;
    // Old rows a report with retention tasks would have deleted.
    let url = crate::support::config_in(&dir).database_url;
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    db.execute_unprepared(
        "INSERT INTO audit_event (at, key_id, operation, client, status, outcome, count) \
         VALUES (1000, NULL, 'ancient', NULL, 200, 'ok', 1)",
    )
    .await
    .unwrap();
    db.execute_unprepared("UPDATE impression SET at = 1000")
        .await
        .unwrap();
    db.execute_unprepared("UPDATE served_list SET at = 1000")
        .await
        .unwrap();
    let export = dir.join("export.jsonl");
    let export_path = export.to_str().unwrap().to_owned();
    let runs: Vec<Vec<String>> = vec![
        vec!["audit".into(), "--by".into(), "stage,role".into()],
        vec!["replay".into(), "--profile".into(), "default".into()],
        vec!["export".into(), export_path],
        vec!["verify-index".into()],
    ];
    for args in runs {
        let dir = dir.clone();
        let shown = args.join(" ");
        let out = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            stagefit(&dir, &args)
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "stagefit {shown}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        // The server still serves, and still holds its index.
        let data = s
            .gql("{ search(query: \"pricing\") { totalCount } }", json!({}))
            .await;
        assert!(data["search"]["totalCount"].as_u64().unwrap() > 0);
    }
    assert_eq!(
        std::fs::read_to_string(&export).unwrap().lines().count(),
        DEMO_LIBRARY.lines().count()
    );
    let count = |sql: &'static str| {
        let db = &db;
        async move { crate::support::sql_numbers(db, sql).await[0] }
    };
    assert_eq!(
        count("SELECT COUNT(*) FROM audit_event WHERE operation = 'ancient'").await,
        1
    );
    assert!(count("SELECT COUNT(*) FROM impression WHERE at = 1000").await > 0);
    db.close().await.unwrap();
    s.stop().await;
}

/// `stagefit backup` while a server writes, then `stagefit restore` (server stopped): the
/// restored database is the library as of one commit (no batch half in it), intact, and
/// `verify-index` accepts the index the restore rebuilt. On PostgreSQL, the command points
/// to pg_dump instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_write_load_restores_to_a_consistent_library() {
    use sea_orm::ConnectionTrait;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let backup = dir.join("backup.db");
    let backup_path = backup.to_str().unwrap().to_owned();
    let mut s = TestServer::start_in(&dir, true).await;
    if std::env::var(crate::support::POSTGRES_ENV).is_ok() {
        let out = stagefit(&dir, &["backup", &backup_path]);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("pg_dump"),
            "{}",
            text(&out.stderr)
        );
        s.stop().await;
        return;
    }
    const BATCH: usize = 20;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (url, client, stop) = (s.url.clone(), s.client().clone(), stop.clone());
        tokio::spawn(async move {
            let mut batches = 0usize;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let assets: Vec<Value> = (0..BATCH)
                    .map(|i| json!({ "id": format!("bk-{batches}-{i}"), "title": format!("Backup probe {batches} {i}"), "contentType": "EBOOK" }))
                    .collect();
                let response = client
                    .post(format!("{url}/graphql"))
                    .json(&json!({
                        "query": "mutation($a: [AssetInput!]!, $id: ID!) { upsertAssets(assets: $a) { created } upsertAccount(account: { id: $id, name: $id }) { id } }",
                        "variables": { "a": assets, "id": format!("acct-{batches}") },
                    }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                batches += 1;
            }
            batches
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (out_dir, out_path) = (dir.clone(), backup_path.clone());
    let out = tokio::task::spawn_blocking(move || stagefit(&out_dir, &["backup", &out_path]))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("backed up"),
        "{}",
        text(&out.stdout)
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let batches = writer.await.unwrap();
    s.stop().await;
    // A second backup to the same file is refused rather than overwriting it.
    let again = stagefit(&dir, &["backup", &backup_path]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("exists"),
        "{}",
        text(&again.stderr)
    );

    let out = stagefit(&dir, &["restore", &backup_path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("kept as"),
        "{}",
        text(&out.stdout)
    );
    let out = stagefit(&dir, &["verify-index"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    let url = crate::support::config_in(&dir).database_url;
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    let one = |sql: &'static str| {
        let db = &db;
        async move {
            db.query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                sql,
            ))
            .await
            .unwrap()
            .unwrap()
        }
    };
    let verdict: String = one("PRAGMA integrity_check")
        .await
        .try_get_by_index(0)
        .unwrap();
    assert_eq!(verdict, "ok");
    let probes: i64 = one("SELECT COUNT(*) FROM asset WHERE id LIKE 'bk-%'")
        .await
        .try_get_by_index(0)
        .unwrap();
    let accounts: i64 = one("SELECT COUNT(*) FROM account WHERE id LIKE 'acct-%'")
        .await
        .try_get_by_index(0)
        .unwrap();
    db.close().await.unwrap();
    // Each request writes its batch in one transaction and its account in another: the
    // copy holds whole batches, and as many accounts as batches, give or take one.
    assert_eq!(probes % BATCH as i64, 0, "a half-written batch: {probes}");
    let copied = probes / BATCH as i64;
    assert!(
        copied > 0 && (copied as usize) < batches,
        "{copied} of {batches}"
    );
    assert!(
        (accounts - copied).abs() <= 1,
        "{accounts} accounts, {copied} batches"
    );

    // A server on the restored database serves it.
    let mut restored = TestServer::start_in(&dir, false).await;
    let data = restored
        .gql(r#"{ asset(id: "bk-0-0") { title } }"#, json!({}))
        .await;
    assert_eq!(data["asset"]["title"], "Backup probe 0 0");
    // Restoring under a running server is refused.
    let (out_dir, out_path) = (dir.clone(), backup_path.clone());
    let out = tokio::task::spawn_blocking(move || stagefit(&out_dir, &["restore", &out_path]))
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("stop the servers"),
        "{}",
        text(&out.stderr)
    );
    restored.stop().await;
}
