//! What the command line says when something goes wrong, and the files real teams write:
//! every failure names its cause; bad rows are named at the line an editor shows.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use sea_orm::ConnectionTrait;

use crate::support::{stagefit, text};

/// Runs the real binary on an explicit database URL.
fn stagefit_on(url: &str, index: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_stagefit"))
        .args(args)
        .env("STAGEFIT_DATABASE_URL", url)
        .env("STAGEFIT_INDEX_DIR", index)
        .env_remove("STAGEFIT_LOG")
        .output()
        .expect("run stagefit")
}

const ONE_ASSET: &str = "{\"id\":\"a\",\"title\":\"A\",\"content_type\":\"EBOOK\"}\n";

#[test]
fn a_database_in_a_missing_folder_is_named_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.jsonl");
    std::fs::write(&file, ONE_ASSET).unwrap();
    let missing = dir.path().join("no-such-folder");
    let url = format!("sqlite://{}/lib.db?mode=rwc", missing.display());
    let out = stagefit_on(
        &url,
        &dir.path().join("index"),
        &["import", file.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("the folder {} ", missing.display())),
        "{stderr}"
    );
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_sqlite_url_without_a_mode_creates_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.jsonl");
    std::fs::write(&file, ONE_ASSET).unwrap();
    let db = dir.path().join("plain.db");
    let url = format!("sqlite://{}", db.display());
    let out = stagefit_on(
        &url,
        &dir.path().join("index"),
        &["import", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(db.exists());
}

#[test]
fn a_postgres_server_that_is_not_running_is_reported_at_once() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("postgres://stagefit:secret@127.0.0.1:{port}/stagefit");
    let started = Instant::now();
    let out = stagefit_on(&url, &dir.path().join("index"), &["migrate"]);
    assert!(!out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot connect to PostgreSQL at 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.to_lowercase().contains("refused"), "{stderr}");
    assert!(!stderr.contains("secret"), "{stderr}");
}

#[tokio::test]
async fn an_internal_failure_prints_its_chain_of_causes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.jsonl");
    std::fs::write(&file, ONE_ASSET).unwrap();
    let d = dir.path().to_owned();
    let f = file.clone();
    let out = tokio::task::spawn_blocking(move || stagefit(&d, &["import", f.to_str().unwrap()]))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A hand-edited database: the stored status no longer parses.
    let url = crate::support::config_in(dir.path()).database_url;
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    db.execute_unprepared("UPDATE asset SET status = 'bogus' WHERE id = 'a'")
        .await
        .unwrap();
    db.close().await.unwrap();
    let d = dir.path().to_owned();
    let export = dir.path().join("out.jsonl");
    let out =
        tokio::task::spawn_blocking(move || stagefit(&d, &["export", export.to_str().unwrap()]))
            .await
            .unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("stored asset.status is invalid"),
        "{stderr}"
    );
    assert!(stderr.contains("bogus"), "{stderr}");
    assert!(!stderr.contains("internal error"), "{stderr}");
}

/// A bad row on file line 5 (after a quoted cell spanning lines) and one on line 7.
const SPREADSHEET: &str = "id,title,content_type,stages\n\
    ok-1,\"A title\nover two lines\",ebook,awareness\n\
    ok-2,Two,demo,decision\n\
    bad-1,Bad,ebook,closing\n\
    ok-3,Three,demo,\n\
    bad-2,Worse,radio,\n";

#[test]
fn csv_rows_are_named_at_the_line_an_editor_shows_in_every_ending() {
    let dir = tempfile::tempdir().unwrap();
    let variants = [
        ("lf.csv", SPREADSHEET.to_owned()),
        ("crlf.csv", SPREADSHEET.replace('\n', "\r\n")),
        (
            "bom.csv",
            format!("\u{feff}{}", SPREADSHEET.replace('\n', "\r\n")),
        ),
    ];
    for (name, content) in variants {
        let file = dir.path().join(name);
        std::fs::write(&file, content).unwrap();
        let out = stagefit(dir.path(), &["import", file.to_str().unwrap()]);
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "{name}:5: [bad-1] stages: unknown stage \"closing\""
            )),
            "{name}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("{name}:7: [bad-2] content_type")),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn jsonl_with_a_byte_order_mark_imports_and_bad_json_names_its_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bom.jsonl");
    std::fs::write(&file, format!("\u{feff}{ONE_ASSET}")).unwrap();
    let out = stagefit(dir.path(), &["import", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("1 rows: 1 created"),
        "{}",
        text(&out.stdout)
    );

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        format!("{ONE_ASSET}{{\"id\":\"b\",\"title\":\"B\" \"content_type\":\"EBOOK\"}}\n"),
    )
    .unwrap();
    let out = stagefit(dir.path(), &["import", bad.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.jsonl:2: not valid JSON at column 23: "),
        "{stderr}"
    );
    assert!(!stderr.contains("line 1"), "{stderr}");
}

#[test]
fn a_dry_run_creates_no_database_and_no_index() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("new.jsonl");
    std::fs::write(&file, format!("{ONE_ASSET}{ONE_ASSET}")).unwrap();
    // The default settings: ./stagefit.db and ./index in the current directory.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stagefit"))
        .args(["import", "--dry-run", "new.jsonl"])
        .current_dir(dir.path())
        .env_remove("STAGEFIT_DATABASE_URL")
        .env_remove("STAGEFIT_INDEX_DIR")
        .env_remove("STAGEFIT_LOG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("no database yet"), "{stdout}");
    assert!(
        stdout.contains("2 rows would give 1 created, 0 updated, 0 unchanged; 0 failed"),
        "{stdout}"
    );
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["new.jsonl"]);
}

#[test]
fn an_excel_export_has_a_byte_order_mark_and_crlf_and_reimports_unchanged() {
    let dir = crate::support::imported_demo();

    let csv = dir.path().join("for-excel.csv");
    let out = stagefit(dir.path(), &["export", "--excel", csv.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bytes = std::fs::read(&csv).unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBFid,title,"));
    let content = String::from_utf8(bytes).unwrap();
    assert!(content.ends_with("\r\n"));
    let records = content.matches("\r\n").count();
    assert!(records > 138, "{records}");
    assert!(
        content.contains("结算"),
        "Chinese titles are written as UTF-8"
    );

    let plain = dir.path().join("plain.csv");
    assert!(
        stagefit(dir.path(), &["export", plain.to_str().unwrap()])
            .status
            .success()
    );
    let plain = std::fs::read(&plain).unwrap();
    assert!(
        plain.starts_with(b"id,title,"),
        "plain CSV has no byte-order mark"
    );

    let out = stagefit(dir.path(), &["import", csv.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("138 rows: 0 created, 0 updated, 138 unchanged"),
        "{}",
        text(&out.stdout)
    );

    let out = stagefit(dir.path(), &["export", "--excel", "x.jsonl"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--excel applies to .csv exports"));
}

/// At its default level the server logs one line per request: the operation (its name, or
/// its type and root fields), the status and the time it took.
#[tokio::test]
async fn the_server_logs_one_line_per_request_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let served = crate::support::serve_binary(dir.path(), &["--demo"], &[]);
    let addr = served.addr.clone();
    let next_line = || served.next_line();
    let client = reqwest::Client::new();
    for body in [
        serde_json::json!({ "query": "{ taxonomy { stages { name } } search(query: \"x\") { totalCount } }" }),
        serde_json::json!({ "query": "query Stages { taxonomy { stages { name } } }", "operationName": "Stages" }),
        serde_json::json!({ "query": "{ asset(id: 5 }" }),
    ] {
        client
            .post(format!("http://{addr}/graphql"))
            .header("accept", "application/graphql-response+json")
            .json(&body)
            .send()
            .await
            .unwrap();
    }
    client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    let mut logged = Vec::new();
    while logged.len() < 4 {
        let Some(line) = next_line() else { break };
        if line.contains(" request ") {
            logged.push(line);
        }
    }
    served.kill();
    assert_eq!(logged.len(), 4, "one line per request: {logged:#?}");
    assert!(logged[0].contains("INFO"), "{}", logged[0]);
    assert!(
        logged[0].contains("path=\"/graphql\" status=200")
            && logged[0].contains("operation=\"query taxonomy,search\""),
        "{}",
        logged[0]
    );
    assert!(logged[0].contains(" ms="), "{}", logged[0]);
    assert!(logged[0].contains(" request_id="), "{}", logged[0]);
    assert!(logged[1].contains("operation=\"Stages\""), "{}", logged[1]);
    assert!(logged[2].contains("status=400"), "{}", logged[2]);
    assert!(
        logged[3].contains("path=\"/healthz\" status=200"),
        "{}",
        logged[3]
    );
}
