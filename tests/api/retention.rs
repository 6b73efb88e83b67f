//! Raw events past their retention: a server removes them at start (then hourly) while
//! what they built stays (what an account read, the counts per day and week), and on
//! PostgreSQL whole months go at once. Spans of days read those counts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::support::{TestServer, config_in};

const RECORD: &str = r#"mutation($events: [EngagementInput!]!) {
  recordEngagements(events: $events) { recorded duplicates } }"#;
const ACCOUNT: &str = r#"query($id: ID!) { account(id: $id) {
  engagementCount consumedAssetIds recentEngagements { assetId } } }"#;
const OLD: &str = "pricing-sheet";
const MIDDLE: &str = "demo-live-demo";
const RECENT: &str = "roi-calculator-payments";
/// Every asset has one content type, so it counts in one cell.
const READ_IN_90_DAYS: &str = "{ coverage(by: [CONTENT_TYPE]) { cells { recentEngagements } } }";

/// Events in the last 90 days per content type, as `coverage` says.
async fn read_in_90_days(s: &TestServer) -> Vec<i64> {
    let report = s.gql(READ_IN_90_DAYS, json!({})).await;
    report["coverage"]["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|cell| cell["recentEngagements"].as_i64().unwrap())
        .collect()
}

fn days_ago(days: i64) -> chrono::DateTime<Utc> {
    Utc::now() - chrono::Duration::days(days)
}

/// The monthly partitions of `table` on PostgreSQL (none on SQLite).
async fn partitions(url: &str, table: &str) -> Vec<String> {
    if !url.starts_with("postgres") {
        return Vec::new();
    }
    let db = sea_orm::Database::connect(url).await.unwrap();
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                 WHERE i.inhparent = '{table}'::regclass ORDER BY 1"
            ),
        ))
        .await
        .unwrap();
    db.close().await.unwrap();
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .filter(|name| !name.ends_with("_default"))
        .collect()
}

fn month_partition(table: &str, at: chrono::DateTime<Utc>) -> String {
    format!("{table}_p{}", at.format("%Y%m"))
}

/// Polls `account` until `ready` holds (at most 10 s: a server's first upkeep pass).
async fn account_when(s: &TestServer, ready: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let account = s.gql(ACCOUNT, json!({ "id": "acme" })).await["account"].clone();
        if ready(&account) {
            return account;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the upkeep did not run: {account}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn events_past_the_retention_go_and_what_they_built_stays() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let url = config_in(&dir).database_url;
    let keep_all = |c: &mut stagefit::config::Config| c.engagement_retention_days = 0;
    let mut s = TestServer::start_in_with(&dir, true, keep_all).await;
    s.gql(
        r#"mutation { upsertAccount(account: { id: "acme", name: "Acme" }) { id } }"#,
        json!({}),
    )
    .await;
    let (old_at, middle_at, recent_at) = (days_ago(500), days_ago(60), days_ago(10));
    let event = |asset: &str, at: chrono::DateTime<Utc>, client: &str| {
        json!({ "accountId": "acme", "assetId": asset, "kind": "COMPLETE",
                "occurredAt": at.to_rfc3339(), "clientEventId": client })
    };
    let recorded = s
        .gql(
            RECORD,
            json!({ "events": [event(OLD, old_at, "old"), event(MIDDLE, middle_at, "middle"),
                               event(RECENT, recent_at, "recent")] }),
        )
        .await;
    assert_eq!(recorded["recordEngagements"]["recorded"], 3);
    let read = read_in_90_days(&s).await;
    s.stop().await;

    // Kept forever, the old event moves into its month at the next start.
    let mut s = TestServer::start_in_with(&dir, false, keep_all).await;
    let old_month = month_partition("engagement", old_at);
    if url.starts_with("postgres") {
        let started = Instant::now();
        while !partitions(&url, "engagement").await.contains(&old_month) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no partition {old_month}: {:?}",
                partitions(&url, "engagement").await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let both = s.gql(ACCOUNT, json!({ "id": "acme" })).await["account"].clone();
    assert_eq!(both["engagementCount"], 3, "{both}");
    s.stop().await;

    // With 30 days of retention two events go (the old one with its whole month on
    // PostgreSQL).
    let mut s = TestServer::start_in_with(&dir, false, |c| c.engagement_retention_days = 30).await;
    // (Both: a profile read while the pass ran may hold some of what went.)
    let acme = account_when(&s, |a| {
        a["engagementCount"] == 1 && a["recentEngagements"].as_array().unwrap().len() == 1
    })
    .await;
    assert_eq!(acme["recentEngagements"], json!([{ "assetId": RECENT }]));
    // What it read is still known, so recommendations still leave it out.
    assert_eq!(
        acme["consumedAssetIds"],
        json!([MIDDLE, OLD, RECENT]),
        "{acme}"
    );
    // The read counts of the last 90 days keep the event of 60 days ago.
    assert_eq!(read.iter().sum::<i64>(), 2, "{read:?}");
    assert_eq!(read_in_90_days(&s).await, read);
    let list = s
        .gql(
            r#"{ recommendations(audience: { accountId: "acme" }, first: 50) { items { asset { id } } } }"#,
            json!({}),
        )
        .await;
    let shown: Vec<&str> = list["recommendations"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["asset"]["id"].as_str().unwrap())
        .collect();
    assert!(!shown.is_empty() && !shown.contains(&OLD), "{shown:?}");
    // The kept event's client id is kept with it: a retry is still a duplicate.
    let retried = s
        .gql(
            RECORD,
            json!({ "events": [event(RECENT, recent_at, "recent")] }),
        )
        .await;
    assert_eq!(
        retried["recordEngagements"],
        json!({ "recorded": 0, "duplicates": 1 })
    );
    if url.starts_with("postgres") {
        let months = partitions(&url, "engagement").await;
        assert!(!months.contains(&old_month), "{months:?}");
        // This month and the next two are made ahead.
        for ahead in 0..=2 {
            let at = Utc::now()
                .checked_add_months(chrono::Months::new(ahead))
                .unwrap();
            let month = month_partition("engagement", at);
            assert!(months.contains(&month), "{month} missing: {months:?}");
        }
        assert!(
            partitions(&url, "impression")
                .await
                .contains(&month_partition("impression", Utc::now()))
        );
    }
    s.stop().await;
}

/// Rows of a grouped query: (asset, numbers).
async fn grouped(db: &sea_orm::DatabaseConnection, sql: &str) -> BTreeMap<String, Vec<i64>> {
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let asset: String = r.try_get_by_index(0).unwrap();
            let numbers = (1..r.column_names().len())
                .map(|i| r.try_get_by_index::<i64>(i).unwrap())
                .collect();
            (asset, numbers)
        })
        .collect()
}

/// A span of days reads its first days from the daily rollups, then weeks, then blocks of
/// four weeks: over generated feedback (60 days of lists) and events (180 days), what the
/// API says for spans that start on every day of the week, and on either side of a block,
/// is what the stored days (and events) hold.
#[tokio::test]
async fn spans_of_days_count_what_their_days_hold() {
    use crate::support::{stagefit, text};
    let dir = crate::support::imported_demo();
    for args in [
        &["generate-feedback", "--lists", "1500", "--days", "60"][..],
        &[
            "generate-engagement",
            "--accounts",
            "60",
            "--events",
            "3000",
        ][..],
    ] {
        let out = stagefit(dir.path(), args);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let url = config_in(dir.path()).database_url;
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    // The load's events per day, week and block each add up to its events.
    let events = crate::support::sql_numbers(&db, "SELECT COUNT(*) FROM engagement").await;
    assert!(events[0] > 1000, "{events:?}");
    for table in [
        "engagement_daily",
        "engagement_weekly",
        "engagement_four_weekly",
    ] {
        let sum = crate::support::sql_numbers(
            &db,
            &format!("SELECT CAST(SUM(events) AS BIGINT) FROM {table}"),
        )
        .await;
        assert_eq!(sum, events, "{table}");
    }
    let mut s = TestServer::start_in(dir.path(), false).await;
    let now = Utc::now().timestamp();
    for days in [1, 5, 6, 7, 8, 9, 10, 13, 27, 28, 29, 30, 45, 57, 90] {
        let since_day = (now - days * 86_400).div_euclid(86_400);
        let expected = grouped(
            &db,
            &format!(
                "SELECT asset_id, CAST(SUM(impressions) AS BIGINT), CAST(SUM(clicks) AS BIGINT) \
                 FROM feedback_daily WHERE day >= {since_day} GROUP BY asset_id"
            ),
        )
        .await;
        let page = s
            .gql(
                r#"query($d: Int) { assetPerformance(sinceDays: $d, first: 100) {
                     totalCount items { asset { id } impressions clicks } } }"#,
                json!({ "d": days }),
            )
            .await;
        let said: BTreeMap<String, Vec<i64>> = page["assetPerformance"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["asset"]["id"].as_str().unwrap().to_owned(),
                    vec![
                        i["impressions"].as_i64().unwrap(),
                        i["clicks"].as_i64().unwrap(),
                    ],
                )
            })
            .collect();
        // A page of at most 100: each says what its days hold, and the total is theirs.
        assert!(said.len() > 10, "{days} days: {page}");
        assert_eq!(
            page["assetPerformance"]["totalCount"].as_u64().unwrap() as usize,
            expected.len(),
            "{days} days"
        );
        for (asset, counts) in &said {
            assert_eq!(Some(counts), expected.get(asset), "{days} days: {asset}");
        }
    }

    // Coverage's reads of the last 90 days, today included, against the stored events.
    let since = (now.div_euclid(86_400) - 89) * 86_400;
    let events = grouped(
        &db,
        &format!(
            "SELECT asset_id, COUNT(*) FROM engagement WHERE occurred_at >= {since} \
             GROUP BY asset_id"
        ),
    )
    .await;
    let report = s
        .gql(
            "{ coverage(by: [CONTENT_TYPE]) { cells { recentEngagements assetIds } } }",
            json!({}),
        )
        .await;
    let mut total = 0;
    for cell in report["coverage"]["cells"].as_array().unwrap() {
        let expected: i64 = cell["assetIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| events.get(id.as_str().unwrap()).map_or(0, |n| n[0]))
            .sum();
        assert_eq!(
            cell["recentEngagements"].as_i64().unwrap(),
            expected,
            "{cell}"
        );
        total += expected;
    }
    assert!(total > 1000, "{total}");
    s.stop().await;
    db.close().await.unwrap();
}

/// PostgreSQL: while a replica moves a month of events out of the default partition into
/// its new partition, reads through another replica count all of them (a read planned
/// during the move used to find the moved rows in neither place and count none).
#[tokio::test]
async fn reads_during_a_partition_move_count_every_event() {
    use sea_orm::TransactionTrait;
    let (shared, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = config_in(shared.path()).database_url;
    if !url.starts_with("postgres") {
        return;
    }
    let replica = |url: String| {
        move |c: &mut stagefit::config::Config| {
            c.engagement_retention_days = 0;
            c.database_url = url;
            // Every read goes to the database.
            c.response_cache_bytes = 0;
            c.account_cache_secs = 0;
        }
    };
    let mut s = TestServer::start_in_with(shared.path(), true, replica(url.clone())).await;
    s.gql(
        r#"mutation { upsertAccount(account: { id: "acme", name: "Acme" }) { id } }"#,
        json!({}),
    )
    .await;
    let recorded = s
        .gql(
            RECORD,
            json!({ "events": [{ "accountId": "acme", "assetId": OLD, "kind": "VIEW" }] }),
        )
        .await;
    assert_eq!(recorded["recordEngagements"]["recorded"], 1, "{recorded}");
    s.stop().await;
    // The server that will read has run no query of an account yet; its upkeep at start
    // finds nothing to move, and runs again in an hour.
    let mut s = TestServer::start_in_with(shared.path(), false, replica(url.clone())).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Copies of that event two months ago: no partition takes them (months are made from
    // the current one on), so they wait in the default one.
    const COPIES: i64 = 5_000;
    let db = sea_orm::Database::connect(&url).await.unwrap();
    let number = |sql: String| {
        let db = db.clone();
        async move { crate::support::sql_numbers(&db, &sql).await[0] }
    };
    db.execute_unprepared(&format!(
        "INSERT INTO engagement (account_id, contact_id, asset_id, kind, occurred_at, cohort, \
         recorded_at) SELECT account_id, contact_id, asset_id, kind, \
         occurred_at - 60 * 86400 - g % 20 * 3600, cohort, recorded_at \
         FROM engagement, generate_series(1, {COPIES}) g"
    ))
    .await
    .unwrap();
    assert_eq!(
        number("SELECT count(*) FROM engagement_default".into()).await,
        COPIES
    );

    // The move's ATTACH waits while this transaction reads the default partition; a second
    // replica's upkeep at start makes the move.
    let held = db.begin().await.unwrap();
    let kept =
        crate::support::sql_numbers(&held, "SELECT count(*) FROM engagement_default").await[0];
    assert_eq!(
        kept, COPIES,
        "the first server's upkeep ran late and moved them"
    );
    let mut other = TestServer::start_in_with(second.path(), false, replica(url.clone())).await;
    let started = Instant::now();
    // Until a statement matching `pattern` waits for a lock.
    let waiting = |pattern: &'static str| async move {
        let sql = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
             AND query ~ '{pattern}'"
        );
        loop {
            if number(sql.clone()).await > 0 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nothing like {pattern} waits"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    // The move waits; then reads come through the first server (their first, so
    // PostgreSQL plans them now) and meet the move half done.
    waiting("^(LOCK|ALTER) TABLE").await;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (client, url, done) = (
                s.client().clone(),
                format!("{}/graphql", s.url),
                done.clone(),
            );
            tokio::spawn(async move {
                let mut reads = Vec::new();
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let body: Value = client
                        .post(&url)
                        .json(&json!({ "query": ACCOUNT, "variables": { "id": "acme" } }))
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    reads.push(body["data"]["account"].clone());
                }
                reads
            })
        })
        .collect();
    waiting("^SELECT \"engagement\".\"id\", ").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    held.commit().await.unwrap();
    while number("SELECT count(*) FROM engagement_default".into()).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the move did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let settled = s.gql(ACCOUNT, json!({ "id": "acme" })).await["account"].clone();
    assert_eq!(settled["engagementCount"], COPIES + 1, "{settled}");
    for reader in readers {
        let reads = reader.await.unwrap();
        let wrong: Vec<_> = reads.iter().filter(|a| **a != settled).collect();
        assert!(
            wrong.is_empty(),
            "{} of {} reads differ from {settled}: {wrong:?}",
            wrong.len(),
            reads.len()
        );
    }
    assert!(partitions(&url, "engagement").await.len() > 3);
    db.close().await.unwrap();
    other.stop().await;
    s.stop().await;
}
