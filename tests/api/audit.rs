//! The content team's audit over HTTP: the coverage matrix on a hand-made library against
//! a hand count, gaps, stale counts and the stale list.

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::support::{TestServer, ids};

fn date(days_ago: i64) -> String {
    (Utc::now() - Duration::days(days_ago))
        .format("%Y-%m-%d")
        .to_string()
}

/// Six published assets, one draft, one retired.
fn library() -> Value {
    json!([
        { "id": "a-ebook", "title": "A", "contentType": "EBOOK", "stages": ["AWARENESS"],
          "roles": [], "industries": [], "publishedAt": date(30) },
        { "id": "b-guide", "title": "B", "contentType": "BUYER_GUIDE", "stages": ["CONSIDERATION"],
          "roles": ["DECISION_MAKER", "FINANCE"], "industries": ["retail"],
          "publishedAt": date(800), "reviewedAt": date(400) },
        { "id": "c-case", "title": "C", "contentType": "CASE_STUDY", "stages": ["DECISION"],
          "roles": ["DECISION_MAKER"], "industries": ["retail/ecommerce"], "publishedAt": date(500) },
        { "id": "d-api", "title": "D", "contentType": "API_DOCS", "stages": ["ADOPTION"],
          "roles": ["TECHNICAL_INTEGRATOR"], "industries": [], "publishedAt": date(900),
          "evergreen": true },
        { "id": "e-demo", "title": "E", "contentType": "DEMO", "stages": ["DECISION", "CONSIDERATION"],
          "roles": ["TECHNICAL_INTEGRATOR"], "industries": ["saas"], "language": "zh-CN",
          "publishedAt": date(10) },
        { "id": "f-undated", "title": "F", "contentType": "BLOG_POST", "stages": ["AWARENESS"],
          "roles": ["FINANCE"], "industries": ["saas"] },
        { "id": "g-draft", "title": "G", "contentType": "PRICING_SHEET", "stages": ["DECISION"],
          "roles": ["PROCUREMENT"], "status": "draft" },
        { "id": "h-retired", "title": "H", "contentType": "PRICING_SHEET", "stages": ["ADVOCACY"],
          "roles": ["PROCUREMENT"], "status": "retired" },
    ])
}

const COVERAGE: &str = r#"
query($by: [CoverageDimension!]!, $filter: AssetFilter, $stale: Int) {
  coverage(by: $by, filter: $filter, staleAfterDays: $stale) {
    assetCount staleAfterDays
    cells { stage role industry crossIndustry contentType language count staleCount undatedCount
            declaredCount inferredCount defaultCount assetIds }
    gaps { stage role industry crossIndustry }
  }
}"#;

async fn server() -> TestServer {
    let s = TestServer::empty().await;
    s.gql(
        "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { created } }",
        json!({ "a": library() }),
    )
    .await;
    s
}

#[tokio::test]
async fn stage_by_role_coverage_matches_a_hand_count_and_lists_exactly_the_gaps() {
    let mut s = server().await;
    let r = s.gql(COVERAGE, json!({ "by": ["STAGE", "ROLE"] })).await["coverage"].clone();
    assert_eq!(r["assetCount"], 6, "drafts and retired assets never count");
    assert_eq!(r["staleAfterDays"], 365);
    // Hand count. a-ebook has no roles: every role at AWARENESS. e-demo has two stages.
    let expected: &[(&str, &str, &[&str])] = &[
        ("AWARENESS", "DECISION_MAKER", &["a-ebook"]),
        ("AWARENESS", "TECHNICAL_INTEGRATOR", &["a-ebook"]),
        ("AWARENESS", "BUSINESS_USER", &["a-ebook"]),
        ("AWARENESS", "PROCUREMENT", &["a-ebook"]),
        ("AWARENESS", "FINANCE", &["a-ebook", "f-undated"]),
        ("CONSIDERATION", "DECISION_MAKER", &["b-guide"]),
        ("CONSIDERATION", "TECHNICAL_INTEGRATOR", &["e-demo"]),
        ("CONSIDERATION", "FINANCE", &["b-guide"]),
        ("DECISION", "DECISION_MAKER", &["c-case"]),
        ("DECISION", "TECHNICAL_INTEGRATOR", &["e-demo"]),
        ("ADOPTION", "TECHNICAL_INTEGRATOR", &["d-api"]),
    ];
    let cells = r["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 25);
    for c in cells {
        let want: Vec<String> = expected
            .iter()
            .find(|(stage, role, _)| c["stage"] == *stage && c["role"] == *role)
            .map(|(_, _, ids)| ids.iter().map(|i| (*i).to_owned()).collect())
            .unwrap_or_default();
        assert_eq!(ids(&c["assetIds"], &[]), want, "{c}");
        assert_eq!(c["count"], want.len(), "{c}");
        assert_eq!(c["industry"], Value::Null);
        assert_eq!(c["crossIndustry"], false);
    }
    // Gaps: exactly the 14 empty cells.
    let gaps = r["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 25 - expected.len());
    for g in gaps {
        assert!(
            !expected
                .iter()
                .any(|(stage, role, _)| g["stage"] == *stage && g["role"] == *role)
        );
    }
    // Stale at 365 days: b-guide (reviewed 400 days ago), c-case (published 500 days
    // ago, never reviewed). f-undated is undated, not stale; d-api is evergreen.
    let cell = |stage: &str, role: &str, what: &str| {
        cells
            .iter()
            .find(|c| c["stage"] == stage && c["role"] == role)
            .unwrap()[what]
            .clone()
    };
    let stale = |stage: &str, role: &str| cell(stage, role, "staleCount");
    assert_eq!(stale("AWARENESS", "FINANCE"), 0);
    assert_eq!(cell("AWARENESS", "FINANCE", "undatedCount"), 1);
    // Every asset here declares its tags (a-ebook, for every role, and f-undated).
    assert_eq!(cell("AWARENESS", "FINANCE", "declaredCount"), 2);
    assert_eq!(cell("AWARENESS", "FINANCE", "inferredCount"), 0);
    assert_eq!(stale("CONSIDERATION", "FINANCE"), 1);
    assert_eq!(stale("DECISION", "DECISION_MAKER"), 1);
    assert_eq!(stale("ADOPTION", "TECHNICAL_INTEGRATOR"), 0);
    // A longer threshold: nothing is stale (the undated one never is).
    let lenient = s
        .gql(COVERAGE, json!({ "by": ["STAGE", "ROLE"], "stale": 3650 }))
        .await["coverage"]["cells"]
        .clone();
    let total: u64 = lenient
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["staleCount"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 0, "f-undated is undated, not stale");

    // Engagement of the last 90 days, per cell.
    s.gql(
        r#"mutation($e: [EngagementInput!]!) {
             upsertAccount(account: { id: "acme", name: "Acme" }) { id }
             recordEngagements(events: $e) { recorded } }"#,
        json!({ "e": [
            { "accountId": "acme", "assetId": "b-guide", "kind": "VIEW", "occurredAt": (Utc::now() - Duration::days(3)).to_rfc3339() },
            { "accountId": "acme", "assetId": "b-guide", "kind": "COMPLETE", "occurredAt": (Utc::now() - Duration::days(2)).to_rfc3339() },
            { "accountId": "acme", "assetId": "c-case", "kind": "VIEW", "occurredAt": (Utc::now() - Duration::days(120)).to_rfc3339() },
        ] }),
    )
    .await;
    let engaged = s
        .gql(
            r#"{ coverage(by: [STAGE, ROLE]) { cells { stage role recentEngagements } } }"#,
            json!({}),
        )
        .await["coverage"]["cells"]
        .clone();
    let busy: Vec<(Value, Value, Value)> = engaged
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["recentEngagements"] != 0)
        .map(|c| {
            (
                c["stage"].clone(),
                c["role"].clone(),
                c["recentEngagements"].clone(),
            )
        })
        .collect();
    assert_eq!(
        busy,
        [
            (json!("CONSIDERATION"), json!("DECISION_MAKER"), json!(2)),
            (json!("CONSIDERATION"), json!("FINANCE"), json!(2)),
        ]
    );
    s.stop().await;
}

#[tokio::test]
async fn industry_coverage_counts_cross_industry_assets_everywhere_and_filters_apply() {
    let mut s = server().await;
    let r = s.gql(COVERAGE, json!({ "by": ["INDUSTRY"] })).await["coverage"].clone();
    let rows: Vec<(Value, Value, Vec<String>)> = r["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["industry"].clone(),
                c["crossIndustry"].clone(),
                ids(&c["assetIds"], &[]),
            )
        })
        .collect();
    // The taxonomy holds every industry used and its ancestors.
    assert_eq!(
        rows,
        [
            (
                json!("retail"),
                json!(false),
                vec![
                    "a-ebook".to_owned(),
                    "b-guide".to_owned(),
                    "d-api".to_owned()
                ]
            ),
            (
                json!("retail/ecommerce"),
                json!(false),
                vec![
                    "a-ebook".to_owned(),
                    "c-case".to_owned(),
                    "d-api".to_owned()
                ]
            ),
            (
                json!("saas"),
                json!(false),
                vec![
                    "a-ebook".to_owned(),
                    "d-api".to_owned(),
                    "e-demo".to_owned(),
                    "f-undated".to_owned()
                ]
            ),
            (
                Value::Null,
                json!(true),
                vec!["a-ebook".to_owned(), "d-api".to_owned()]
            ),
        ]
    );
    assert_eq!(r["gaps"], json!([]));

    let by_language = s
        .gql(
            COVERAGE,
            json!({ "by": ["LANGUAGE", "STAGE"], "filter": { "contentTypes": ["DEMO", "EBOOK"] } }),
        )
        .await["coverage"]
        .clone();
    assert_eq!(by_language["assetCount"], 2);
    let filled: Vec<(Value, Value)> = by_language["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["count"] != 0)
        .map(|c| (c["language"].clone(), c["stage"].clone()))
        .collect();
    assert_eq!(
        filled,
        [
            (json!("en"), json!("AWARENESS")),
            (json!("zh-CN"), json!("CONSIDERATION")),
            (json!("zh-CN"), json!("DECISION")),
        ]
    );
    assert_eq!(by_language["cells"].as_array().unwrap().len(), 10);

    let bad = s
        .gql_error(COVERAGE, json!({ "by": [], "filter": null }))
        .await;
    assert_eq!(bad["extensions"]["code"], "BAD_USER_INPUT");
    let drafts = s
        .gql_error(
            COVERAGE,
            json!({ "by": ["STAGE"], "filter": { "statuses": ["DRAFT"] } }),
        )
        .await;
    assert_eq!(drafts["extensions"]["code"], "BAD_USER_INPUT");
    s.stop().await;
}

#[tokio::test]
async fn stale_assets_are_listed_oldest_first_with_evergreen_only_on_request() {
    let mut s = server().await;
    let q = r#"query($days: Int, $evergreen: Boolean) {
      staleAssets(olderThanDays: $days, includeEvergreen: $evergreen) {
        asset { id } lastDatedAt ageDays } }"#;
    let list = |v: &Value| ids(&v["staleAssets"], &["asset", "id"]);
    let default = s.gql(q, json!({})).await;
    // Undated assets are not stale: nothing says how old they are.
    assert_eq!(list(&default), ["c-case", "b-guide"]);
    assert_eq!(default["staleAssets"][0]["ageDays"], 500);
    let strict = s.gql(q, json!({ "days": 20 })).await;
    assert_eq!(list(&strict), ["c-case", "b-guide", "a-ebook"]);
    let with_evergreen = s.gql(q, json!({ "days": 20, "evergreen": true })).await;
    assert_eq!(
        list(&with_evergreen),
        ["d-api", "c-case", "b-guide", "a-ebook"]
    );
    let bad = s.gql_error(q, json!({ "days": -1 })).await;
    assert_eq!(bad["extensions"]["code"], "BAD_USER_INPUT");
    s.stop().await;
}

#[tokio::test]
async fn tag_suggestions_find_the_stage_of_held_back_assets() {
    let _machine = crate::support::busy().await;
    use crate::support::demo_records;
    let mut s = TestServer::demo().await;
    // Four-fold: each published asset is held back once, with a quarter of the library,
    // which is left out of every count and neighbourhood. Its own stages are what is
    // predicted; its text, format, concerns and topics are the evidence.
    let published: Vec<Value> = demo_records()
        .into_iter()
        .filter(|r| r["status"] == "published")
        .collect();
    let q = r#"query($id: ID!, $ignore: [ID!]) {
      suggestTags(assetId: $id, ignoreAssetIds: $ignore) {
        stages { stage confidence } roles { role confidence } contentTypes { contentType }
        neighbours { asset { id } similarity } } }"#;
    let mut stage_hits = 0;
    let mut role_hits = 0;
    let mut with_roles = 0;
    let mut folds = Vec::new();
    for fold in 0..4 {
        let held: Vec<&Value> = published.iter().skip(fold).step_by(4).collect();
        let held_ids: Vec<&str> = held.iter().map(|r| r["id"].as_str().unwrap()).collect();
        let mut fold_hits = 0;
        for record in &held {
            let r = s
                .gql(q, json!({ "id": record["id"], "ignore": held_ids }))
                .await["suggestTags"]
                .clone();
            let neighbours = ids(&r["neighbours"], &["asset", "id"]);
            assert!(!neighbours.is_empty(), "{}", record["id"]);
            assert!(neighbours.iter().all(|n| !held_ids.contains(&n.as_str())));
            let stages: Vec<String> = ids(&record["stages"], &[]);
            if stages.contains(&r["stages"][0]["stage"].as_str().unwrap().to_owned()) {
                fold_hits += 1;
            }
            let roles: Vec<String> = ids(&record["roles"], &[]);
            if !roles.is_empty() {
                with_roles += 1;
                if r["roles"][0]["role"]
                    .as_str()
                    .is_some_and(|top| roles.iter().any(|x| x == top))
                {
                    role_hits += 1;
                }
            }
            let confidences: Vec<f64> = r["stages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["confidence"].as_f64().unwrap())
                .collect();
            assert!(confidences.windows(2).all(|w| w[0] >= w[1]));
            assert!(confidences.iter().sum::<f64>() <= 1.0 + 1e-9);
        }
        stage_hits += fold_hits;
        folds.push(format!("{fold_hits}/{}", held.len()));
    }
    let stage_accuracy = stage_hits as f64 / published.len() as f64;
    let role_accuracy = role_hits as f64 / with_roles as f64;
    println!(
        "tag suggestions, 4-fold over {} published demo assets: stage top-1 {stage_accuracy:.3} (folds {}), role top-1 {role_accuracy:.3} (of {with_roles} with roles)",
        published.len(),
        folds.join(", ")
    );
    assert!(
        stage_accuracy >= 0.8,
        "stage top-1 accuracy {stage_accuracy:.3}"
    );

    // A new text, no format known.
    let text = s
        .gql(
            r#"{ suggestTags(text: "Customer story: how a payments company cut reconciliation time with a live demo and a pricing review", language: "en") {
                 stages { stage confidence } contentTypes { contentType confidence } } }"#,
            json!({}),
        )
        .await["suggestTags"]
        .clone();
    assert!(!text["stages"].as_array().unwrap().is_empty());
    let both = s
        .gql_error(
            r#"{ suggestTags(assetId: "pricing-sheet", text: "x") { stages { stage } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(both["extensions"]["code"], "BAD_USER_INPUT");
    let missing = s
        .gql_error(
            r#"{ suggestTags(assetId: "nope") { stages { stage } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(missing["extensions"]["code"], "NOT_FOUND");
    s.stop().await;
}

#[test]
fn audit_and_dry_run_import_report_in_the_terminal_without_writing() {
    use crate::support::{DEMO_LIBRARY, stagefit, text};
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo.jsonl");
    std::fs::write(&demo, DEMO_LIBRARY).unwrap();
    assert!(
        stagefit(dir.path(), &["import", demo.to_str().unwrap()])
            .status
            .success()
    );

    let out = stagefit(dir.path(), &["audit"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(
            "tags: 0 of 133 published assets declare none (their tags are read from the text or defaulted)\ncoverage by stage x role: 133 published assets, stale after 365 days"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("\ngaps: "), "{stdout}");
    assert!(stdout.contains("\nstale assets: "), "{stdout}");
    assert!(
        stdout.contains("\nwithout concerns or topics: "),
        "{stdout}"
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("  ") && l.ends_with(" undated"))
            .count(),
        25
    );

    let out = stagefit(
        dir.path(),
        &["audit", "--by", "stage,content-type", "--fail-on-gaps"],
    );
    assert!(!out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("  ADVOCACY x API_DOCS\n"), "{stdout}");
    assert!(
        text(&out.stderr).contains("gap(s) in the coverage by stage x content-type"),
        "{}",
        text(&out.stderr)
    );

    // A file that fills one gap, updates one asset, and has a bad row.
    let incoming = dir.path().join("incoming.jsonl");
    let mut updated = crate::support::demo_records()[0].clone();
    updated["title"] = json!("A new title");
    std::fs::write(
        &incoming,
        format!(
            "{}\n{}\n{}\n",
            json!({ "id": "advocacy-api-showcase", "title": "Customer API showcase",
                    "content_type": "API_DOCS", "stages": ["ADVOCACY"] }),
            updated,
            json!({ "id": "broken", "title": "x", "content_type": "BROCHURE" }),
        ),
    )
    .unwrap();
    let out = stagefit(
        dir.path(),
        &["import", "--dry-run", incoming.to_str().unwrap()],
    );
    assert!(!out.status.success(), "a failed row fails the dry run");
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("dry run, nothing written: 3 rows would give 1 created, 1 updated, 0 unchanged; 1 failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "stage x content-type: closes 1 gap(s), opens 0\n  closes ADVOCACY x API_DOCS"
        ),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("incoming.jsonl:3"),
        "{}",
        text(&out.stderr)
    );
    // Nothing was written.
    let out = stagefit(dir.path(), &["audit"]);
    assert!(
        text(&out.stdout).contains("\ncoverage by stage x role: 133 published assets"),
        "{}",
        text(&out.stdout)
    );
}

const SPECIFIC: &str = r#"
query($by: [CoverageDimension!]!) {
  coverage(by: $by) {
    cells { stage role industry crossIndustry count specificCount assetIds specificAssetIds }
    gaps { stage role industry crossIndustry }
    specificGaps { stage role industry crossIndustry count specificCount }
  }
}"#;

#[tokio::test]
async fn cells_tell_what_was_written_for_them_from_what_serves_everyone() {
    let mut s = server().await;
    let r = s.gql(SPECIFIC, json!({ "by": ["INDUSTRY"] })).await["coverage"].clone();
    let rows: Vec<(Value, Vec<String>, Vec<String>)> = r["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["specificCount"], ids(&c["specificAssetIds"], &[]).len());
            (
                c["industry"].clone(),
                ids(&c["assetIds"], &[]),
                ids(&c["specificAssetIds"], &[]),
            )
        })
        .collect();
    let v = |ids: &[&str]| ids.iter().map(|i| (*i).to_owned()).collect::<Vec<_>>();
    // Hand count: a-ebook and d-api are cross-industry, written for no named industry;
    // c-case (retail/ecommerce) is written for retail too.
    assert_eq!(
        rows,
        [
            (
                json!("retail"),
                v(&["a-ebook", "b-guide", "d-api"]),
                v(&["b-guide", "c-case"])
            ),
            (
                json!("retail/ecommerce"),
                v(&["a-ebook", "c-case", "d-api"]),
                v(&["c-case"])
            ),
            (
                json!("saas"),
                v(&["a-ebook", "d-api", "e-demo", "f-undated"]),
                v(&["e-demo", "f-undated"])
            ),
            (
                Value::Null,
                v(&["a-ebook", "d-api"]),
                v(&["a-ebook", "d-api"])
            ),
        ]
    );
    assert_eq!(r["gaps"], json!([]));
    assert_eq!(r["specificGaps"], json!([]));

    // By stage and role: a-ebook (for every role) serves all of AWARENESS but is written
    // for none of it.
    let r = s.gql(SPECIFIC, json!({ "by": ["STAGE", "ROLE"] })).await["coverage"].clone();
    let cell = |stage: &str, role: &str| {
        r["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["stage"] == stage && c["role"] == role)
            .map(|c| (c["count"].clone(), ids(&c["specificAssetIds"], &[])))
            .unwrap()
    };
    assert_eq!(cell("AWARENESS", "FINANCE"), (json!(2), v(&["f-undated"])));
    assert_eq!(cell("AWARENESS", "PROCUREMENT"), (json!(1), v(&[])));
    let specific_gaps = r["specificGaps"].as_array().unwrap();
    // The 14 gaps, plus the four AWARENESS cells only a-ebook serves.
    assert_eq!(specific_gaps.len(), 14 + 4);
    assert!(
        specific_gaps
            .iter()
            .any(|g| g["stage"] == "AWARENESS" && g["role"] == "PROCUREMENT" && g["count"] == 1)
    );
    s.stop().await;
}

#[tokio::test]
async fn the_demo_library_shows_its_healthcare_decision_gap() {
    let mut s = TestServer::demo().await;
    let r = s
        .gql(SPECIFIC, json!({ "by": ["STAGE", "INDUSTRY"] }))
        .await["coverage"]
        .clone();
    let healthcare = |list: &str| {
        r[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["stage"] == "DECISION" && c["industry"] == "healthcare")
            .cloned()
    };
    let cell = healthcare("cells").unwrap();
    assert!(
        cell["count"].as_u64().unwrap() > 0,
        "served by cross-industry assets"
    );
    assert_eq!(cell["specificCount"], 0);
    assert!(healthcare("gaps").is_none());
    assert!(healthcare("specificGaps").is_some());
    s.stop().await;

    let dir = crate::support::imported_demo();
    let out = crate::support::stagefit(
        dir.path(),
        &["audit", "--by", "stage,industry", "--fail-on-specific-gaps"],
    );
    assert!(!out.status.success());
    let stdout = crate::support::text(&out.stdout);
    let written = stdout
        .split("gaps in content written for the industry: ")
        .nth(1)
        .expect(&stdout);
    assert!(written.contains("\n  DECISION x healthcare\n"), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("DECISION x healthcare "))
        .unwrap();
    assert!(line.contains(" default)      0 written "), "{line}");
    let stderr = crate::support::text(&out.stderr);
    assert!(
        stderr.contains("have nothing written for their industry"),
        "{stderr}"
    );
    // Without the flag, general gaps alone decide: there are none by stage and industry.
    let out = crate::support::stagefit(dir.path(), &["audit", "--by", "stage,industry"]);
    assert!(out.status.success());
}
