//! Meaning: a server with the sentence-embedding model finds pages that say the same in
//! other words, in search and in what to read next, and says so; without the model, or
//! with `semanticRatio: 0`, words alone decide as before.

use serde_json::{Value, json};

use crate::support::{TestServer, ids};

/// The model `scripts/fetch-model.sh` unpacks (`scripts/test.sh` runs it first), or the
/// folder `STAGEFIT_TEST_EMBEDDING_MODEL` names.
fn model_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("STAGEFIT_TEST_EMBEDDING_MODEL")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/all-minilm-l6-v2")
        });
    assert!(
        dir.join("model.safetensors").is_file(),
        "no embedding model in {}: run scripts/fetch-model.sh (scripts/test.sh does)",
        dir.display()
    );
    dir
}

/// Pages whose subjects share meaning but few words.
fn library() -> Value {
    let page = |id: &str, title: &str, body: &str| {
        json!({ "id": id, "title": title, "body": body, "contentType": "BLOG_POST",
                "url": format!("/blog/{id}") })
    };
    json!([
        page(
            "retention-report",
            "Retention report: see which customers come back",
            "Cohorts of customers by signup week, and who keeps paying month after month.",
        ),
        page(
            "okta-sso",
            "Setting up single sign-on with Okta",
            "Connect Okta as the identity provider with SAML; map groups to workspaces.",
        ),
        page(
            "azure-ad",
            "Log in through Microsoft Entra ID",
            "Your company directory signs people in: a SAML application and group claims.",
        ),
        page(
            "kubernetes",
            "Deploy on Kubernetes",
            "Helm chart, ingress and persistent volumes for the server.",
        ),
        page(
            "pricing",
            "Plans and prices",
            "Per seat, billed yearly; volume discounts from fifty seats.",
        ),
        page(
            "roadmap",
            "What we build next",
            "A look at the features planned for the coming quarters.",
        ),
    ])
}

async fn server(model: bool) -> TestServer {
    let s = TestServer::empty_with(|config| {
        if model {
            config.embedding_model = Some(model_dir());
        }
    })
    .await;
    let upserted = s
        .gql(
            r#"mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { created } }"#,
            json!({ "a": library() }),
        )
        .await;
    assert_eq!(upserted["upsertAssets"]["created"], 6, "{upserted}");
    if model {
        embedded(&s, 6).await;
    }
    s
}

/// Waits until `n` assets have their vectors: embedding follows a write in the
/// background, and /readyz tells when it is done.
async fn embedded(s: &TestServer, n: u64) {
    for _ in 0..600 {
        let ready: Value = s.get("/readyz").await.json().await.unwrap();
        if ready["embeddings"]["complete"] == true && ready["embeddings"]["embedded"] == n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the library was never embedded");
}

const SEARCH: &str = r#"query($q: String!, $r: Float) {
    search(query: $q, first: 3, semanticRatio: $r) { noGoodMatch items { asset { id } score } } }"#;

fn hit_ids(data: &Value) -> Vec<String> {
    ids(&data["search"]["items"], &["asset", "id"])
}

#[tokio::test]
async fn search_finds_a_page_that_says_the_query_in_other_words() {
    let _machine = crate::support::busy().await;
    let mut s = server(true).await;
    let ready: Value = s.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["embeddings"]["model"], "all-minilm-l6-v2", "{ready}");
    assert_eq!(ready["embeddings"]["pending"], 0, "{ready}");

    // No page says "corporate" or "login": words alone find nothing.
    let query = "corporate login";
    let words = s.gql(SEARCH, json!({ "q": query, "r": 0.0 })).await;
    assert!(hit_ids(&words).is_empty(), "{words}");
    let meant = s.gql(SEARCH, json!({ "q": query })).await;
    assert_eq!(meant["search"]["noGoodMatch"], false, "{meant}");
    assert_eq!(hit_ids(&meant)[0], "azure-ad", "{meant}");
    let only_meaning = s.gql(SEARCH, json!({ "q": query, "r": 1.0 })).await;
    assert_eq!(
        hit_ids(&only_meaning)[..2],
        ["azure-ad", "okta-sso"],
        "{only_meaning}"
    );

    // Page by page, the order by meaning holds: no asset twice, none skipped.
    const PAGE: &str = r#"query($q: String!, $after: String) {
        search(query: $q, first: 1, after: $after) {
            items { asset { id } } pageInfo { endCursor hasNextPage } } }"#;
    let mut paged = Vec::new();
    let mut after = Value::Null;
    for _ in 0..6 {
        let page = s.gql(PAGE, json!({ "q": query, "after": after })).await;
        paged.extend(hit_ids(&page));
        if page["search"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["search"]["pageInfo"]["endCursor"].clone();
    }
    let whole = s
        .gql(
            r#"query($q: String!) { search(query: $q, first: 10) { items { asset { id } } } }"#,
            json!({ "q": query }),
        )
        .await;
    assert_eq!(paged, hit_ids(&whole), "{whole}");

    // An operator is the searcher's rule: meaning does not bring back what it excludes,
    // nor anything the words do not find.
    let ruled = s.gql(SEARCH, json!({ "q": "corporate login -okta" })).await;
    assert!(hit_ids(&ruled).is_empty(), "{ruled}");

    // A query whose words match keeps its page first.
    let exact = s.gql(SEARCH, json!({ "q": "Kubernetes" })).await;
    assert_eq!(hit_ids(&exact)[0], "kubernetes", "{exact}");

    // Near the longest query the API takes (32 words, 479 characters), of words the model
    // splits into many pieces: one model run over its first 128 tokens, answered like any
    // other, and the server goes on.
    let long: String = (0..32)
        .map(|i| format!("zq{i:03}xwvutsrq"))
        .collect::<Vec<_>>()
        .join(" ");
    let answer = s.gql(SEARCH, json!({ "q": long })).await;
    assert!(answer["search"]["items"].is_array(), "{answer}");
    let exact = s.gql(SEARCH, json!({ "q": "Kubernetes" })).await;
    assert_eq!(hit_ids(&exact)[0], "kubernetes", "{exact}");

    // Out of range: a clear error, nothing run.
    let bad = s.gql_error(SEARCH, json!({ "q": query, "r": 1.5 })).await;
    assert_eq!(bad["extensions"]["code"], "BAD_USER_INPUT", "{bad}");
    s.stop().await;
}

/// Queries that arrive together share one run of the model, and each is ranked as it is
/// when asked alone.
#[tokio::test]
async fn queries_asked_together_share_a_model_run_and_rank_as_alone() {
    let _machine = crate::support::busy().await;
    const QUERIES: [&str; 12] = [
        "corporate login",
        "who keeps paying",
        "helm install",
        "cost per seat",
        "identity provider groups",
        "upcoming features",
        "customers that come back",
        "cluster ingress",
        "volume discount",
        "sign in with the company directory",
        "quarterly plans",
        "persistent storage for the server",
    ];
    let mut together = server(true).await;
    let answers = futures::future::join_all(
        QUERIES
            .iter()
            .map(|q| together.gql(SEARCH, json!({ "q": q }))),
    )
    .await;
    let ready: Value = together.get("/readyz").await.json().await.unwrap();
    let embeddings = &ready["embeddings"];
    assert_eq!(embeddings["queriesEmbedded"], QUERIES.len(), "{ready}");
    let runs = embeddings["queryRuns"].as_u64().unwrap();
    assert!(runs >= 1 && runs < QUERIES.len() as u64, "{ready}");

    let mut alone = server(true).await;
    for (query, together_answer) in QUERIES.iter().zip(&answers) {
        let answer = alone.gql(SEARCH, json!({ "q": query })).await;
        assert!(!hit_ids(&answer).is_empty(), "{query}: {answer}");
        assert_eq!(hit_ids(&answer), hit_ids(together_answer), "{query}");
    }
    let ready: Value = alone.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["embeddings"]["queryRuns"], QUERIES.len(), "{ready}");
    together.stop().await;
    alone.stop().await;
}

#[tokio::test]
async fn read_next_follows_meaning_and_says_so() {
    let _machine = crate::support::busy().await;
    let mut s = server(true).await;
    let next = s
        .gql(
            r#"{ nextContent(afterAssetId: "okta-sso", first: 3) {
                items { asset { id } reasons { factor detail } } } }"#,
            json!({}),
        )
        .await;
    let items = next["nextContent"]["items"].as_array().unwrap();
    // The other single sign-on page shares the subject, not the title's words.
    assert_eq!(items[0]["asset"]["id"], "azure-ad", "{next}");
    let text = items[0]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["factor"] == "TEXT")
        .unwrap();
    let detail = text["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("similar in meaning to \"Setting up single sign-on with Okta\" (0."),
        "{detail}"
    );
    s.stop().await;
}

#[tokio::test]
async fn vectors_are_stored_and_a_restart_loads_them_instead_of_running_the_model() {
    let _machine = crate::support::busy().await;
    let mut s = server(true).await;
    let ready: Value = s.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["embeddings"]["computed"], 6, "{ready}");
    let dir = s.dir().to_owned();
    let before = s.gql(SEARCH, json!({ "q": "corporate login" })).await;
    s.stop().await;

    let mut again = TestServer::start_in_with(&dir, false, |config| {
        config.embedding_model = Some(model_dir());
    })
    .await;
    let mut ready = Value::Null;
    for _ in 0..600 {
        ready = again.get("/readyz").await.json().await.unwrap();
        if ready["embeddings"]["complete"] == true {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(ready["embeddings"]["embedded"], 6, "{ready}");
    assert_eq!(ready["embeddings"]["computed"], 0, "{ready}");
    let after = again.gql(SEARCH, json!({ "q": "corporate login" })).await;
    assert_eq!(before, after);

    // A changed text is embedded again, and only it.
    again
        .gql(
            r#"mutation { upsertAssets(assets: [{ id: "pricing", title: "Company sign-in options",
                body: "Sign in with your corporate identity provider.", contentType: "BLOG_POST",
                url: "/blog/pricing" }]) { updated } }"#,
            json!({}),
        )
        .await;
    for _ in 0..600 {
        ready = again.get("/readyz").await.json().await.unwrap();
        if ready["embeddings"]["computed"] == 1 && ready["embeddings"]["complete"] == true {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(ready["embeddings"]["computed"], 1, "{ready}");
    again.stop().await;
}

#[tokio::test]
async fn without_a_model_words_alone_answer_and_readiness_says_no_embeddings() {
    let mut s = server(false).await;
    let ready: Value = s.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert!(ready["embeddings"].is_null(), "{ready}");
    let meant = s.gql(SEARCH, json!({ "q": "corporate login" })).await;
    assert!(hit_ids(&meant).is_empty(), "{meant}");
    let exact = s.gql(SEARCH, json!({ "q": "Kubernetes" })).await;
    assert_eq!(hit_ids(&exact), ["kubernetes"], "{exact}");
    s.stop().await;
}

const SIMILAR: &str = r#"query($id: ID!, $f: AssetFilter) {
    similarAssets(assetId: $id, first: 3, filter: $f) { by items { asset { id } similarity } } }"#;

fn similar_ids(data: &Value) -> Vec<String> {
    ids(&data["similarAssets"]["items"], &["asset", "id"])
}

#[tokio::test]
async fn similar_assets_are_found_by_meaning_through_the_filter_and_by_words_without_a_model() {
    let _machine = crate::support::busy().await;
    let mut s = server(true).await;
    let near = s.gql(SIMILAR, json!({ "id": "okta-sso" })).await;
    assert_eq!(near["similarAssets"]["by"], "MEANING", "{near}");
    let found = similar_ids(&near);
    // The other single sign-on page first; never the asset itself.
    assert_eq!(found[0], "azure-ad", "{near}");
    assert!(!found.contains(&"okta-sso".to_owned()), "{near}");
    let sims: Vec<f64> = near["similarAssets"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["similarity"].as_f64().unwrap())
        .collect();
    assert!(sims.windows(2).all(|w| w[0] >= w[1]), "{near}");
    assert!(sims[0] > 0.3 && sims[0] <= 1.0, "{near}");

    // The filter decides before the cut: a case study on the subject, far down the
    // published list, is the whole list of case studies.
    s.gql(
        r#"mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { created } }"#,
        json!({ "a": [{ "id": "acme-story", "contentType": "CASE_STUDY", "url": "/customers/acme",
            "title": "Acme's staff now sign in once",
            "body": "One identity provider for every tool the company uses." }] }),
    )
    .await;
    embedded(&s, 7).await;
    let stories = s
        .gql(
            SIMILAR,
            json!({ "id": "okta-sso", "f": { "contentTypes": ["CASE_STUDY"] } }),
        )
        .await;
    assert_eq!(stories["similarAssets"]["by"], "MEANING", "{stories}");
    assert_eq!(similar_ids(&stories), ["acme-story"], "{stories}");

    // Retired assets are not embedded: among them, the words compare.
    s.gql(
        r#"mutation { retireAsset(id: "azure-ad") { id } }"#,
        json!({}),
    )
    .await;
    let published = s.gql(SIMILAR, json!({ "id": "okta-sso" })).await;
    assert_eq!(published["similarAssets"]["by"], "MEANING", "{published}");
    assert!(
        !similar_ids(&published).contains(&"azure-ad".to_owned()),
        "{published}"
    );
    let retired = s
        .gql(
            SIMILAR,
            json!({ "id": "okta-sso", "f": { "statuses": ["RETIRED"] } }),
        )
        .await;
    assert_eq!(retired["similarAssets"]["by"], "WORDS", "{retired}");
    assert_eq!(similar_ids(&retired), ["azure-ad"], "{retired}");

    let missing = s.gql_error(SIMILAR, json!({ "id": "nowhere" })).await;
    assert_eq!(missing["extensions"]["code"], "NOT_FOUND", "{missing}");
    s.stop().await;

    // Without a model the words answer, and say so.
    let mut s = server(false).await;
    let words = s.gql(SIMILAR, json!({ "id": "okta-sso" })).await;
    assert_eq!(words["similarAssets"]["by"], "WORDS", "{words}");
    let found = similar_ids(&words);
    assert_eq!(found[0], "azure-ad", "{words}");
    assert!(!found.contains(&"okta-sso".to_owned()), "{words}");
    assert_eq!(
        words["similarAssets"]["items"][0]["similarity"], 1.0,
        "{words}"
    );
    s.stop().await;
}
