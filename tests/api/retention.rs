//! Raw events past their retention: a server removes them at start (then hourly) while
//! what they built stays (what an account read, its place in popularity), and on
//! PostgreSQL whole months go at once.

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
const RECENT: &str = "roi-calculator-payments";

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
    let (old_at, recent_at) = (days_ago(500), days_ago(10));
    let event = |asset: &str, at: chrono::DateTime<Utc>, client: &str| {
        json!({ "accountId": "acme", "assetId": asset, "kind": "COMPLETE",
                "occurredAt": at.to_rfc3339(), "clientEventId": client })
    };
    let recorded = s
        .gql(
            RECORD,
            json!({ "events": [event(OLD, old_at, "old"), event(RECENT, recent_at, "recent")] }),
        )
        .await;
    assert_eq!(recorded["recordEngagements"]["recorded"], 2);
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
    assert_eq!(both["engagementCount"], 2, "{both}");
    s.stop().await;

    // With 30 days of retention the old event goes (its whole month on PostgreSQL).
    let mut s = TestServer::start_in_with(&dir, false, |c| c.engagement_retention_days = 30).await;
    let acme = account_when(&s, |a| a["engagementCount"] == 1).await;
    assert_eq!(acme["recentEngagements"], json!([{ "assetId": RECENT }]));
    // What it read is still known, so recommendations still leave it out.
    assert_eq!(acme["consumedAssetIds"], json!([OLD, RECENT]), "{acme}");
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
        .gql(RECORD, json!({ "events": [event(RECENT, recent_at, "recent")] }))
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
