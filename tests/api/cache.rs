//! The response cache: repeated queries are answered from it, every write the index applies
//! invalidates it, and nothing that may not be cached is.

use reqwest::Response;
use serde_json::{Value, json};

use crate::support::TestServer;

const RECOMMEND: &str = r#"query($a: AudienceInput!) { recommendations(audience: $a, first: 5) {
    items { asset { id } score } } }"#;

async fn post_raw(s: &TestServer, body: &str) -> Response {
    s.client()
        .post(format!("{}/graphql", s.url))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

/// The `x-cache` header and the JSON body of a response.
async fn outcome(response: Response) -> (Option<String>, Value) {
    assert_eq!(response.status(), 200);
    let cache = response
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_owned());
    (cache, response.json().await.unwrap())
}

fn recommend_body(audience: Value) -> String {
    json!({ "query": RECOMMEND, "variables": { "a": audience } }).to_string()
}

fn top_ids(body: &Value) -> Vec<String> {
    body["data"]["recommendations"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["asset"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn repeated_queries_are_answered_from_the_cache_until_a_write() {
    let mut s = TestServer::demo().await;
    let audience = json!({ "stage": "DECISION", "role": "FINANCE", "industry": "healthcare" });
    let body = recommend_body(audience.clone());

    let (first, computed) = outcome(post_raw(&s, &body).await).await;
    assert_eq!(first.as_deref(), Some("miss"));
    let (second, cached) = outcome(post_raw(&s, &body).await).await;
    assert_eq!(second.as_deref(), Some("hit"));
    assert_eq!(computed, cached);
    let before = top_ids(&cached);
    assert_eq!(before.len(), 5);

    // The same question over GET is its own entry, with the same answer.
    let url = format!("{}/graphql", s.url);
    let variables = json!({ "a": audience }).to_string();
    let get = || {
        s.client()
            .get(&url)
            .query(&[("query", RECOMMEND), ("variables", variables.as_str())])
            .send()
    };
    let (get_first, get_body) = outcome(get().await.unwrap()).await;
    assert_eq!(get_first.as_deref(), Some("miss"));
    // Computed again a moment later: the same list, its freshness a few nanounits older.
    assert_eq!(top_ids(&get_body), top_ids(&computed));
    let scores = |body: &Value| -> Vec<f64> {
        body["data"]["recommendations"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["score"].as_f64().unwrap())
            .collect()
    };
    for (a, b) in scores(&get_body).iter().zip(scores(&computed)) {
        assert!((a - b).abs() < 1e-6, "{a} against {b}");
    }
    assert_eq!(
        outcome(get().await.unwrap()).await.0.as_deref(),
        Some("hit")
    );

    // A write is a mutation: never cached. It adds an asset made for this audience.
    let upsert = json!({
        "query": "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { created } }",
        "variables": { "a": [{ "id": "hc-finance-business-case", "title": "The hospital CFO's business case",
            "summary": "Costs and savings of automated payments for healthcare finance teams",
            "contentType": "roi-calculator", "stages": ["decision"], "roles": ["finance"],
            "industries": ["healthcare"], "concerns": ["cost"], "evergreen": true,
            "publishedAt": "2026-11-01", "language": "en", "status": "published" }] }
    })
    .to_string();
    let (mutation, written) = outcome(post_raw(&s, &upsert).await).await;
    assert_eq!(mutation.as_deref(), Some("bypass"));
    assert_eq!(written["data"]["upsertAssets"]["created"], 1);

    // The index moved: the stored answer is not used, and the new asset is found.
    let (after_write, fresh) = outcome(post_raw(&s, &body).await).await;
    assert_eq!(after_write.as_deref(), Some("miss"));
    let after = top_ids(&fresh);
    assert_eq!(after[0], "hc-finance-business-case", "{after:?}");
    assert_ne!(after, before);

    // Retiring it is a write too.
    s.gql(
        r#"mutation { retireAsset(id: "hc-finance-business-case") { id } }"#,
        json!(null),
    )
    .await;
    let (after_retire, retired) = outcome(post_raw(&s, &body).await).await;
    assert_eq!(after_retire.as_deref(), Some("miss"));
    assert_eq!(top_ids(&retired), before);
    s.stop().await;
}

#[tokio::test]
async fn errors_database_reads_and_unmarked_fields_are_never_cached() {
    let mut s = TestServer::demo().await;
    let too_many =
        json!({ "query": "{ recommendations(audience: {}, first: 1000) { items { score } } }" })
            .to_string();
    let by_id = json!({ "query": r#"{ asset(id: "pricing-sheet") { id title } }"# }).to_string();
    let with_asset = json!({ "query": r#"{ asset(id: "pricing-sheet") { id }
        recommendations(audience: {}) { items { score } } }"# })
    .to_string();
    let typename = json!({ "query": "{ __typename }" }).to_string();
    for body in [&too_many, &by_id, &with_asset, &typename] {
        for _ in 0..2 {
            let (cache, _) = outcome(post_raw(&s, body).await).await;
            assert_eq!(cache.as_deref(), Some("bypass"), "{body}");
        }
    }
    let (_, error) = outcome(post_raw(&s, &too_many).await).await;
    assert_eq!(error["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    // A document that does not parse is answered without touching the cache.
    let broken = post_raw(&s, r#"{"query":"{ recommendations("}"#).await;
    assert!(broken.headers().get("x-cache").is_none());
    s.stop().await;
}

/// The same request twice, 1.1 s apart: the first answer's `x-cache`, and both answers.
async fn twice(s: &TestServer, body: &str) -> (Option<String>, Value, Value) {
    let (cache, first) = outcome(post_raw(s, body).await).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let (_, second) = outcome(post_raw(s, body).await).await;
    (cache, first, second)
}

#[tokio::test]
async fn a_server_without_a_cache_executes_every_request() {
    // Freshness decays with the clock, so a score computed a second later differs in its
    // last digits: two answers a second apart are the same bytes only when the second one
    // was not computed.
    let body = json!({ "query": "{ recommendations(audience: { stage: AWARENESS }, first: 20) { items { score } } }" })
        .to_string();
    let mut cached = TestServer::demo().await;
    let (_, first, second) = twice(&cached, &body).await;
    assert_eq!(first, second, "the cache answers the second time");
    cached.stop().await;

    let mut s = TestServer::demo_with(|c| c.response_cache_bytes = 0).await;
    let (cache, first, second) = twice(&s, &body).await;
    assert_eq!(cache, None, "no x-cache header without a cache");
    assert_eq!(
        first["data"]["recommendations"]["items"]
            .as_array()
            .map(Vec::len),
        Some(20)
    );
    assert_ne!(first, second, "computed again, a second later");
    s.stop().await;
}
