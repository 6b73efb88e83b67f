//! Reading and editing the library over GraphQL.

use serde_json::{Value, json};

use crate::support::{TestServer, demo_records, ids};

const SEARCH: &str = r#"
query($q: String!, $filter: AssetFilter, $first: Int, $after: String) {
  search(query: $q, filter: $filter, first: $first, after: $after) {
    totalCount
    items { score asset { id title summary body language stages roles industries status contentType }
            highlights { field fragment html } }
    facets { field values { value count } }
    pageInfo { endCursor hasNextPage }
  }
}"#;

async fn search(s: &TestServer, q: &str, filter: Value, first: i64) -> Value {
    s.gql(SEARCH, json!({ "q": q, "filter": filter, "first": first }))
        .await["search"]
        .clone()
}

fn published_demo_count() -> usize {
    demo_records()
        .iter()
        .filter(|r| r["status"] == "published")
        .count()
}

#[tokio::test]
async fn the_demo_library_is_searchable_and_drafts_never_show() {
    let mut s = TestServer::demo().await;
    let all = search(&s, "", json!(null), 100).await;
    assert_eq!(all["totalCount"], published_demo_count());
    assert!(published_demo_count() >= 120);
    for item in all["items"].as_array().unwrap() {
        assert_eq!(item["asset"]["status"], "PUBLISHED");
    }
    let drafts = search(&s, "", json!({ "statuses": ["DRAFT"] }), 100).await;
    let draft_ids = ids(&drafts["items"], &["asset", "id"]);
    assert_eq!(draft_ids.len(), 3, "{draft_ids:?}");
    assert!(draft_ids.iter().all(|id| id.contains("draft")));
    s.stop().await;
}

#[tokio::test]
async fn chinese_search_finds_the_assets_that_contain_the_word() {
    let mut s = TestServer::demo().await;
    // A draft that mentions the word must stay hidden.
    s.gql(
        "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { created } }",
        json!({ "a": [{ "id": "zh-draft-jiesuan", "title": "结算草稿", "summary": "未发布的结算说明",
                        "contentType": "BLOG_POST", "language": "zh", "status": "draft" }] }),
    )
    .await;
    let expected: Vec<String> = demo_records()
        .iter()
        .filter(|r| r["status"] == "published")
        .filter(|r| {
            ["title", "summary", "body"]
                .iter()
                .any(|f| r[*f].as_str().unwrap_or_default().contains("结算"))
        })
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        expected.len() >= 8,
        "the demo library should mention 结算 often"
    );

    let result = search(&s, "结算", json!(null), 100).await;
    let mut found = ids(&result["items"], &["asset", "id"]);
    let mut want = expected.clone();
    found.sort();
    want.sort();
    assert_eq!(found, want);
    assert_eq!(result["totalCount"], expected.len());
    let first = &result["items"][0];
    assert!(
        first["highlights"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["html"].as_str().unwrap().contains("<b>结算</b>")),
        "{first:#}"
    );

    let with_drafts = search(&s, "结算", json!({ "statuses": ["DRAFT"] }), 10).await;
    assert_eq!(
        ids(&with_drafts["items"], &["asset", "id"]),
        vec!["zh-draft-jiesuan"]
    );
    s.stop().await;
}

#[tokio::test]
async fn english_search_is_stemmed_and_ranked_by_relevance() {
    let mut s = TestServer::demo().await;
    let result = search(&s, "payouts", json!(null), 20).await;
    let items = result["items"].as_array().unwrap();
    assert!(!items.is_empty());
    for item in items {
        let a = &item["asset"];
        let text = format!("{} {} {}", a["title"], a["summary"], a["body"]).to_lowercase();
        assert!(text.contains("payout"), "{a:#}");
    }
    let scores: Vec<f64> = items.iter().map(|i| i["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(scores[0] > 0.0);
    // A title match outranks a body-only match.
    let top = &items[0]["asset"];
    assert!(
        top["title"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("payout"),
        "{top:#}"
    );
    s.stop().await;
}

#[tokio::test]
async fn filters_and_facets_agree() {
    let mut s = TestServer::demo().await;
    let filter = json!({ "stages": ["DECISION"], "industries": ["financial-services/payments"],
                         "roles": ["TECHNICAL_INTEGRATOR"] });
    let result = search(&s, "", filter, 100).await;
    let total = result["totalCount"].as_u64().unwrap();
    assert!(total >= 3, "{result:#}");
    for item in result["items"].as_array().unwrap() {
        let a = &item["asset"];
        assert!(a["stages"].as_array().unwrap().contains(&json!("DECISION")));
        let roles = a["roles"].as_array().unwrap();
        assert!(
            roles.is_empty() || roles.contains(&json!("TECHNICAL_INTEGRATOR")),
            "{a:#}"
        );
        let industries = a["industries"].as_array().unwrap();
        assert!(
            industries.is_empty()
                || industries.iter().any(|i| i
                    .as_str()
                    .unwrap()
                    .starts_with("financial-services/payments")),
            "{a:#}"
        );
    }
    let facet = |name: &str| -> Value {
        result["facets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field"] == name)
            .cloned()
            .expect(name)
    };
    let stage_decision = facet("STAGE")["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["value"] == "DECISION")
        .unwrap()["count"]
        .as_u64()
        .unwrap();
    assert_eq!(stage_decision, total);
    let languages: u64 = facet("LANGUAGE")["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["count"].as_u64().unwrap())
        .sum();
    assert_eq!(languages, total);

    // Hand count from the demo file for a simple filter.
    let expected = demo_records()
        .iter()
        .filter(|r| r["status"] == "published" && r["content_type"] == "CASE_STUDY")
        .count();
    let case_studies = search(&s, "", json!({ "contentTypes": ["CASE_STUDY"] }), 0).await;
    assert_eq!(case_studies["totalCount"], expected);
    let zh = search(&s, "", json!({ "languages": ["zh"] }), 0).await;
    let expected_zh = demo_records()
        .iter()
        .filter(|r| r["status"] == "published" && r["language"] == "zh-CN")
        .count();
    assert_eq!(zh["totalCount"], expected_zh);
    s.stop().await;
}

#[tokio::test]
async fn pagination_walks_every_result_once() {
    let mut s = TestServer::demo().await;
    let query = r#"query($after: String) { assets(first: 40, after: $after) {
        totalCount items { id } pageInfo { endCursor hasNextPage } } }"#;
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = s.gql(query, json!({ "after": after })).await["assets"].clone();
        seen.extend(ids(&page["items"], &["id"]));
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "assets come in id order");
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len());
    assert_eq!(seen.len(), published_demo_count());

    let err = s
        .gql_error(
            "{ search(query: \"x\", first: 101) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err:#}");
    let err = s
        .gql_error(
            "{ assets(after: \"not-a-cursor\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err:#}");
    s.stop().await;
}

const UPSERT: &str = r#"mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) {
    created updated unchanged assets { id stages roles industries contentType status publishedAt } } }"#;

#[tokio::test]
async fn upserts_are_validated_atomic_and_immediately_searchable() {
    let mut s = TestServer::empty().await;
    let asset = json!({ "id": "roi-payments", "title": "Payments ROI worksheet",
        "summary": "Estimate settlement savings", "contentType": "roi-calculator",
        "stages": ["cost-awareness", "interest"], "roles": ["finance"],
        "industries": ["Financial Services/Payments"], "publishedAt": "2025-03-01" });
    let out = s.gql(UPSERT, json!({ "a": [asset] })).await["upsertAssets"].clone();
    assert_eq!(
        (out["created"].as_u64(), out["updated"].as_u64()),
        (Some(1), Some(0))
    );
    let stored = &out["assets"][0];
    assert_eq!(stored["stages"], json!(["CONSIDERATION", "DECISION"]));
    assert_eq!(stored["roles"], json!(["FINANCE"]));
    assert_eq!(stored["industries"], json!(["financial-services/payments"]));
    assert_eq!(stored["contentType"], "ROI_CALCULATOR");
    assert_eq!(stored["publishedAt"], "2025-03-01T00:00:00+00:00");

    // Read-your-writes: the very next search sees it.
    let found = search(&s, "settlement", json!(null), 5).await;
    assert_eq!(ids(&found["items"], &["asset", "id"]), vec!["roi-payments"]);

    let again = s.gql(UPSERT, json!({ "a": [asset] })).await["upsertAssets"].clone();
    assert_eq!(again["unchanged"], 1);
    let mut changed = asset.clone();
    changed["title"] = json!("Payments ROI worksheet v2");
    let updated = s.gql(UPSERT, json!({ "a": [changed] })).await["upsertAssets"].clone();
    assert_eq!(updated["updated"], 1);

    // One bad asset in a batch: nothing of the batch is written.
    let good = json!({ "id": "good-one", "title": "Fine", "contentType": "EBOOK" });
    let bad =
        json!({ "id": "bad one", "title": "", "contentType": "podcast", "stages": ["closing"] });
    let err = s.gql_error(UPSERT, json!({ "a": [good, bad] })).await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT");
    let problems = err["extensions"]["problems"].as_array().unwrap();
    let fields: Vec<&str> = problems
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["id", "title", "content_type", "stages"]);
    assert!(problems.iter().all(|p| p["index"] == 1));
    let asset = s.gql("{ asset(id: \"good-one\") { id } }", json!({})).await;
    assert_eq!(asset["asset"], Value::Null);
    s.stop().await;
}

#[tokio::test]
async fn retired_assets_leave_search_but_stay_readable() {
    let mut s = TestServer::demo().await;
    let before = search(&s, "SAP integration guide", json!(null), 3).await;
    assert_eq!(before["items"][0]["asset"]["id"], "impl-guide-erp-sap");
    let retired = s
        .gql(
            "mutation { retireAsset(id: \"impl-guide-erp-sap\") { id status } }",
            json!({}),
        )
        .await;
    assert_eq!(retired["retireAsset"]["status"], "RETIRED");
    let after = search(&s, "SAP integration guide", json!(null), 100).await;
    assert!(!ids(&after["items"], &["asset", "id"]).contains(&"impl-guide-erp-sap".to_owned()));
    let direct = s
        .gql(
            "{ asset(id: \"impl-guide-erp-sap\") { status } }",
            json!({}),
        )
        .await;
    assert_eq!(direct["asset"]["status"], "RETIRED");

    let err = s
        .gql_error(
            "mutation { retireAsset(id: \"no-such-asset\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(err["extensions"]["code"], "NOT_FOUND");
    assert_eq!(err["path"], json!(["retireAsset"]));
    let missing = s.gql("{ asset(id: \"nope\") { id } }", json!({})).await;
    assert_eq!(missing["asset"], Value::Null);
    s.stop().await;
}

#[tokio::test]
async fn taxonomy_lists_vocabularies_and_industry_counts() {
    let mut s = TestServer::demo().await;
    let t = s
        .gql(
            "{ taxonomy { stages { name description aliases } roles { name description }
               contentTypes { name defaultStages } industries { slug label parent assetCount } } }",
            json!({}),
        )
        .await["taxonomy"]
        .clone();
    let stages = t["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 5);
    let decision = stages.iter().find(|s| s["name"] == "DECISION").unwrap();
    assert!(
        decision["aliases"]
            .as_array()
            .unwrap()
            .contains(&json!("cost-awareness"))
    );
    assert_eq!(t["roles"].as_array().unwrap().len(), 5);
    assert_eq!(t["contentTypes"].as_array().unwrap().len(), 22);
    let api_docs = t["contentTypes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "API_DOCS")
        .unwrap();
    assert_eq!(api_docs["defaultStages"], json!(["ADOPTION"]));

    let industries = t["industries"].as_array().unwrap();
    let count = |slug: &str| {
        industries
            .iter()
            .find(|i| i["slug"] == slug)
            .unwrap_or_else(|| panic!("{slug}"))["assetCount"]
            .as_u64()
            .unwrap()
    };
    let records = demo_records();
    let hand = |pred: &dyn Fn(&str) -> bool| {
        records
            .iter()
            .filter(|r| r["status"] == "published")
            .filter(|r| {
                r["industries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|i| pred(i.as_str().unwrap()))
            })
            .count() as u64
    };
    assert_eq!(
        count("financial-services/payments"),
        hand(&|i| i == "financial-services/payments")
    );
    assert_eq!(
        count("financial-services"),
        hand(&|i| i.starts_with("financial-services"))
    );
    let payments = industries
        .iter()
        .find(|i| i["slug"] == "financial-services/payments")
        .unwrap();
    assert_eq!(payments["parent"], "financial-services");
    assert_eq!(payments["label"], "Payments");
    s.stop().await;
}

/// Every page of a text search, walked by cursor, with or without `totalCount`.
async fn walk_text_search(
    s: &TestServer,
    q: &str,
    filter: &Value,
    counted: bool,
) -> Vec<(String, f64)> {
    let query = format!(
        r#"query($q: String!, $filter: AssetFilter, $after: String) {{
            search(query: $q, filter: $filter, first: 3, after: $after) {{
              {} items {{ score asset {{ id }} }} pageInfo {{ endCursor hasNextPage }} }} }}"#,
        if counted { "totalCount" } else { "" }
    );
    let mut out = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = s
            .gql(&query, json!({ "q": q, "filter": filter, "after": after }))
            .await["search"]
            .clone();
        for item in page["items"].as_array().expect("items") {
            out.push((
                item["asset"]["id"].as_str().expect("id").to_owned(),
                item["score"].as_f64().expect("score"),
            ));
        }
        if counted {
            let total = page["totalCount"].as_u64().expect("count") as usize;
            assert_eq!(
                page["pageInfo"]["hasNextPage"],
                out.len() < total,
                "{q}: {page:#}"
            );
        }
        if page["pageInfo"]["hasNextPage"] == false {
            return out;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

#[tokio::test]
async fn text_search_skips_nothing_when_it_prunes() {
    // Without `totalCount` a text search scores only what can still reach the page; with
    // it, every match. Both must walk the same ranking, page by page.
    let s = TestServer::demo().await;
    let filtered = json!({ "stages": ["DECISION", "CONSIDERATION"] });
    for (q, filter) in [
        ("payment", json!(null)),
        ("payment integration security guide", json!(null)),
        ("payment integration security guide", filtered.clone()),
        ("api reconciliation", filtered),
        ("结算", json!(null)),
    ] {
        let counted = walk_text_search(&s, q, &filter, true).await;
        let pruned = walk_text_search(&s, q, &filter, false).await;
        assert!(
            counted.len() >= 3,
            "{q}: too few matches to tell anything: {counted:?}"
        );
        assert_eq!(
            pruned.iter().map(|p| &p.0).collect::<Vec<_>>(),
            counted.iter().map(|p| &p.0).collect::<Vec<_>>(),
            "{q} {filter}"
        );
        for ((_, a), (_, b)) in pruned.iter().zip(&counted) {
            assert!((a - b).abs() < 1e-4, "{q}: scores {a} and {b}");
        }
        assert!(
            counted.windows(2).all(|w| w[0].1 >= w[1].1),
            "{q}: best first: {counted:?}"
        );
    }
}

#[tokio::test]
async fn an_asset_carries_its_card_image_and_a_script_address_is_refused() {
    let mut s = TestServer::demo().await;
    let upsert = "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { created updated } }";
    s.gql(
        upsert,
        json!({ "a": [{ "id": "with-image", "title": "Pictured", "contentType": "EBOOK",
                        "url": "/ebooks/pictured", "imageUrl": "https://cdn.example.com/p.png" }] }),
    )
    .await;
    let read = r#"{ asset(id: "with-image") { imageUrl } other: asset(id: "pricing-sheet") { imageUrl } }"#;
    let got = s.gql(read, json!({})).await;
    assert_eq!(
        got,
        json!({ "asset": { "imageUrl": "https://cdn.example.com/p.png" }, "other": { "imageUrl": null } })
    );
    // The same asset again, unchanged, is not rewritten; a new picture is an update.
    let same = s
        .gql(
            upsert,
            json!({ "a": [{ "id": "with-image", "title": "Pictured", "contentType": "EBOOK",
                            "url": "/ebooks/pictured", "imageUrl": "https://cdn.example.com/p.png" }] }),
        )
        .await;
    assert_eq!(same["upsertAssets"]["updated"], 0, "{same}");
    for bad in [
        "javascript:alert(1)",
        "//evil.example/p.png",
        "data:image/png;base64,AAAA",
    ] {
        let err = s
            .gql_error(
                upsert,
                json!({ "a": [{ "id": "with-image", "title": "Pictured", "contentType": "EBOOK",
                                "imageUrl": bad }] }),
            )
            .await;
        assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{bad}: {err}");
        assert!(err.to_string().contains("image_url"), "{bad}: {err}");
    }
    assert_eq!(s.gql(read, json!({})).await, got);
    s.stop().await;
}
