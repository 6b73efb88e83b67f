//! An embeddings service instead of a model folder (`--embedder-url`): a fake
//! OpenAI-compatible service in the test process, "multilingual" by a small dictionary,
//! so that an English page and its Chinese translation relate; the key goes with every
//! request; a service that is not there stops the server at start with its reason.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use stagefit::config::RemoteEmbedderConfig;

use crate::support::{TestServer, binary, config_in, ids, text};

const DIMS: usize = 64;
const KEY: &str = "test-embedder-key";

/// Chinese words the fake reads as the English concepts they mean.
const DICTIONARY: &[(&str, &[&str])] = &[
    ("单点登录", &["single", "sign", "identity"]),
    ("身份提供商", &["identity", "provider"]),
    ("配置", &["setting", "connect"]),
    ("价格", &["prices", "plans"]),
];

/// A deterministic vector: each concept (an English word, or a Chinese word through the
/// dictionary) adds 1 to a dimension chosen by its hash.
fn fake_vector(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; DIMS];
    let mut add = |word: &str| {
        let h = word.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        v[(h % DIMS as u64) as usize] += 1.0;
    };
    let lower = text.to_lowercase();
    for word in lower.split(|c: char| !c.is_ascii_alphanumeric()) {
        if word.len() > 2 {
            add(word);
        }
    }
    for (zh, concepts) in DICTIONARY {
        for _ in 0..lower.matches(zh).count() {
            concepts.iter().for_each(|c| add(c));
        }
    }
    if v.iter().all(|x| *x == 0.0) {
        v[0] = 1.0;
    }
    v
}

#[derive(Default)]
struct Fake {
    requests: AtomicUsize,
    texts: AtomicUsize,
    /// Requests "picky" refused.
    refusals: AtomicUsize,
}

async fn embeddings(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    fake.requests.fetch_add(1, Ordering::SeqCst);
    let authorized = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h == format!("Bearer {KEY}"));
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": { "message": "Incorrect API key provided" } })),
        );
    }
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    if !["fake-multilingual", "picky", "forgetful"].contains(&model.as_str()) {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": { "message": "model not found" } })),
        );
    }
    let texts: Vec<String> = body["input"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    // "picky" refuses any request holding a text it will not take, as a service refuses
    // a text past its model's limit.
    if model == "picky" && texts.iter().any(|t| t.contains("Unembeddable")) {
        fake.refusals.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": { "message": "input is too long" } })),
        );
    }
    // "forgetful" answers one vector fewer than it was asked for.
    let texts = if model == "forgetful" {
        texts[1..].to_vec()
    } else {
        texts
    };
    fake.texts.fetch_add(texts.len(), Ordering::SeqCst);
    // Answered out of order, as the API allows: `index` says which text each is.
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .rev()
        .map(|(i, t)| json!({ "object": "embedding", "index": i, "embedding": fake_vector(t) }))
        .collect();
    (
        StatusCode::OK,
        Json(json!({ "object": "list", "data": data, "model": "fake-multilingual" })),
    )
}

/// The fake service on a port of its own: its base URL and its counters.
async fn fake_service() -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let app = axum::Router::new()
        .route("/v1/embeddings", post(embeddings))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), fake)
}

/// A server whose vectors come from the fake service, and the service's counters.
async fn served() -> (TestServer, Arc<Fake>) {
    let (url, fake) = fake_service().await;
    let s = TestServer::empty_with(|config| config.embedder = Some(remote(&url, Some(KEY)))).await;
    (s, fake)
}

/// Upserts `library` (a JSON list of assets), all of them new.
async fn create(s: &TestServer, library: &Value, n: u64) {
    let upserted = s
        .gql(
            r#"mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { created } }"#,
            json!({ "a": library }),
        )
        .await;
    assert_eq!(upserted["upsertAssets"]["created"], n, "{upserted}");
}

/// /readyz once a pass has ended with `n` assets embedded (at most 30 s): right after a
/// write, the pass before it may still say complete.
async fn embedded(s: &TestServer, n: u64) -> Value {
    let mut ready = Value::Null;
    for _ in 0..600 {
        ready = s.get("/readyz").await.json().await.unwrap();
        if ready["embeddings"]["complete"] == true && ready["embeddings"]["embedded"] == n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    ready
}

fn remote(url: &str, key: Option<&str>) -> RemoteEmbedderConfig {
    model_at(url, key, "fake-multilingual")
}

fn model_at(url: &str, key: Option<&str>, model: &str) -> RemoteEmbedderConfig {
    RemoteEmbedderConfig {
        url: url.to_owned(),
        model: model.to_owned(),
        api_key: key.map(str::to_owned),
    }
}

#[tokio::test]
async fn an_embeddings_service_relates_pages_across_languages() {
    let (mut s, fake) = served().await;
    let page = |id: &str, title: &str, body: &str, lang: &str| {
        json!({ "id": id, "title": title, "body": body, "contentType": "DOCUMENTATION",
                "language": lang, "url": format!("/docs/{id}") })
    };
    let library = json!([
        page(
            "sso",
            "Single sign-on with your identity provider",
            "Connect the identity provider your company uses; people sign in once.",
            "en"
        ),
        page(
            "sso-zh",
            "配置单点登录",
            "连接您公司使用的身份提供商。",
            "zh"
        ),
        page(
            "pricing",
            "Plans and prices",
            "Per seat, billed yearly.",
            "en"
        ),
        page(
            "kubernetes",
            "Deploy on Kubernetes",
            "Helm chart and ingress.",
            "en"
        ),
    ]);
    create(&s, &library, 4).await;
    let ready = embedded(&s, 4).await;
    assert_eq!(ready["embeddings"]["model"], "fake-multilingual", "{ready}");
    assert_eq!(ready["embeddings"]["embedded"], 4, "{ready}");
    // The probe at start, then whole texts and titles in batches: a request each, not one
    // a text.
    let requests = fake.requests.load(Ordering::SeqCst);
    assert!(requests <= 5, "{requests} requests for 4 assets");
    assert_eq!(fake.texts.load(Ordering::SeqCst), 1 + 8);

    // The Chinese page and the English one share no word; the service's vectors relate
    // them.
    const SIMILAR: &str = r#"query($id: ID!) {
        similarAssets(assetId: $id, first: 2) { by items { asset { id } similarity } } }"#;
    let near = s.gql(SIMILAR, json!({ "id": "sso-zh" })).await;
    assert_eq!(near["similarAssets"]["by"], "MEANING", "{near}");
    assert_eq!(
        ids(&near["similarAssets"]["items"], &["asset", "id"])[0],
        "sso",
        "{near}"
    );
    // A search in English finds the Chinese page by meaning, after the page its words find.
    let found = s
        .gql(
            r#"{ search(query: "single sign-on identity provider", first: 3) { items { asset { id } } } }"#,
            json!({}),
        )
        .await;
    let hits = ids(&found["search"]["items"], &["asset", "id"]);
    assert_eq!(hits[..2], ["sso", "sso-zh"], "{found}");
    s.stop().await;
}

#[tokio::test]
async fn tag_suggestions_learn_from_the_declared_assets_nearest_in_meaning() {
    let (mut s, _fake) = served().await;
    let page = |id: &str, title: &str, body: &str, lang: &str, roles: &[&str]| {
        json!({ "id": id, "title": title, "body": body, "contentType": "DOCUMENTATION",
                "language": lang, "url": format!("/docs/{id}"), "roles": roles })
    };
    let library = json!([
        page(
            "sso",
            "Single sign-on with your identity provider",
            "Connect the identity provider your company uses; people sign in once.",
            "en",
            &["TECHNICAL_INTEGRATOR"]
        ),
        page(
            "pricing",
            "Plans and prices",
            "Per seat, billed yearly.",
            "en",
            &["FINANCE"]
        ),
        // Untagged, and sharing no word with either.
        page(
            "sso-zh",
            "配置单点登录",
            "连接您公司使用的身份提供商。",
            "zh",
            &[]
        ),
    ]);
    create(&s, &library, 3).await;
    embedded(&s, 3).await;
    const SUGGEST: &str = r#"query($id: ID!, $ignore: [ID!]) {
        suggestTags(assetId: $id, ignoreAssetIds: $ignore) {
            roles { role confidence } neighbours { asset { id } similarity } } }"#;
    let suggested = s.gql(SUGGEST, json!({ "id": "sso-zh" })).await;
    let report = &suggested["suggestTags"];
    assert_eq!(
        ids(&report["neighbours"], &["asset", "id"])[0],
        "sso",
        "{suggested}"
    );
    assert_eq!(
        report["roles"][0]["role"], "TECHNICAL_INTEGRATOR",
        "{suggested}"
    );
    // Left out, the English page teaches nothing; only the pricing page is declared.
    let without = s
        .gql(SUGGEST, json!({ "id": "sso-zh", "ignore": ["sso"] }))
        .await;
    let neighbours = ids(&without["suggestTags"]["neighbours"], &["asset", "id"]);
    assert!(!neighbours.contains(&"sso".to_owned()), "{without}");
    s.stop().await;
}

#[tokio::test]
async fn an_identifier_is_looked_up_exactly_by_its_words_without_asking_for_meaning() {
    let (mut s, fake) = served().await;
    let page = |id: &str, title: &str, body: &str| {
        json!({ "id": id, "title": title, "body": body, "contentType": "DOCUMENTATION",
                "language": "en", "url": format!("/docs/{id}") })
    };
    let library = json!([
        page(
            "saml-errors",
            "SAML error codes",
            "SAML_ASSERTION_EXPIRED: the identity provider's assertion arrived after it expired."
        ),
        page(
            "saml-setup",
            "Set up SAML single sign-on",
            "Connect your SAML identity provider. An assertion that has expired is refused."
        ),
        page(
            "release-241",
            "Release notes v2.4.1",
            "Fixes in v2.4.1: faster imports."
        ),
        page(
            "release-250",
            "Release notes v2.5.0",
            "Version 2.5.0 adds 4 webhooks and 1 regression test."
        ),
    ]);
    create(&s, &library, 4).await;
    embedded(&s, 4).await;
    const SEARCH: &str =
        r#"query($q: String!) { search(query: $q, first: 5) { items { asset { id } } } }"#;
    let asked = fake.requests.load(Ordering::SeqCst);
    // The identifier's parts together, nothing near it in meaning, and no call to the
    // service: the page that names it, alone.
    for (query, expected) in [
        ("SAML_ASSERTION_EXPIRED", "saml-errors"),
        ("v2.4.1", "release-241"),
    ] {
        let found = s.gql(SEARCH, json!({ "q": query })).await;
        assert_eq!(
            ids(&found["search"]["items"], &["asset", "id"]),
            [expected],
            "{query}: {found}"
        );
    }
    let recommended = s
        .gql(
            r#"{ recommendations(audience: {}, query: "v2.4.1", first: 3) { items { asset { id } } } }"#,
            json!({}),
        )
        .await;
    assert!(
        recommended["recommendations"]["items"].is_array(),
        "{recommended}"
    );
    assert_eq!(
        fake.requests.load(Ordering::SeqCst),
        asked,
        "meaning was asked"
    );
    // An identifier found nowhere is searched as its parts, words and meaning.
    let found = s.gql(SEARCH, json!({ "q": "SAML_RESPONSE_INVALID" })).await;
    let hits = ids(&found["search"]["items"], &["asset", "id"]);
    assert!(hits.contains(&"saml-setup".to_owned()), "{found}");
    assert_eq!(fake.requests.load(Ordering::SeqCst), asked + 1);
    s.stop().await;
}

#[tokio::test]
async fn a_service_that_refuses_or_is_not_there_stops_the_server_at_start_with_its_reason() {
    let (url, _fake) = fake_service().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    config.addr = "127.0.0.1:0".parse().unwrap();

    config.embedder = Some(remote(&url, Some("a wrong key")));
    let refused = stagefit::state::Server::start(&config, false)
        .await
        .err()
        .unwrap();
    let chain = format!("{refused:#}");
    assert!(chain.contains("--embedder-url"), "{chain}");
    assert!(chain.contains("401"), "{chain}");
    assert!(chain.contains("Incorrect API key"), "{chain}");

    // A model the service does not have.
    config.embedder = Some(model_at(&url, Some(KEY), "no-such-model"));
    let unknown = stagefit::state::Server::start(&config, false)
        .await
        .err()
        .unwrap();
    assert!(
        format!("{unknown:#}").contains("model not found"),
        "{unknown:#}"
    );

    // An answer without the vector asked for.
    config.embedder = Some(model_at(&url, Some(KEY), "forgetful"));
    let short = stagefit::state::Server::start(&config, false)
        .await
        .err()
        .unwrap();
    let chain = format!("{short:#}");
    assert!(
        chain.contains("asked for 1 vectors, the answer holds 0"),
        "{chain}"
    );

    // A service that is not there: the port of a listener just closed.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let url = format!("http://{closed}/v1");
    config.embedder = Some(remote(&url, Some(KEY)));
    let absent = stagefit::state::Server::start(&config, false)
        .await
        .err()
        .unwrap();
    let chain = format!("{absent:#}");
    assert!(chain.contains(&format!("{url}/embeddings")), "{chain}");
    // The key is in no message, nor in the configuration as printed.
    assert!(!chain.contains(KEY), "{chain}");
    assert!(!format!("{:?}", config.embedder).contains(KEY));
}

#[tokio::test]
async fn a_text_the_service_refuses_leaves_that_asset_without_a_vector_and_the_rest_embedded() {
    let (url, fake) = fake_service().await;
    let mut s =
        TestServer::empty_with(|config| config.embedder = Some(model_at(&url, Some(KEY), "picky")))
            .await;
    let page = |id: &str, title: &str| json!({ "id": id, "title": title, "contentType": "DOCUMENTATION", "url": format!("/docs/{id}") });
    let upsert = |pages: Value| {
        s.gql(
            r#"mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { created } }"#,
            json!({ "a": pages }),
        )
    };
    upsert(json!([
        page("sso", "Single sign-on with your identity provider"),
        page("odd", "Unembeddable page"),
        page("saml", "SAML sign-on for your identity provider"),
    ]))
    .await;
    // Readiness says the library is not whole, and why.
    let ready = readiness_when(&s, |e| e["embedded"] == 2 && e["refused"] == 1).await;
    assert_eq!(ready["embeddings"]["pending"], 0, "{ready}");
    assert_eq!(ready["embeddings"]["complete"], false, "{ready}");
    let near = s
        .gql(
            r#"{ similarAssets(assetId: "sso") { by items { asset { id } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(near["similarAssets"]["by"], "MEANING", "{near}");
    assert_eq!(
        ids(&near["similarAssets"]["items"], &["asset", "id"])[0],
        "saml",
        "{near}"
    );

    // The next pass (another page written) does not ask for the refused text again.
    let refusals = fake.refusals.load(Ordering::SeqCst);
    assert!(refusals > 0);
    upsert(json!([page("scim", "SCIM provisioning of users")])).await;
    readiness_when(&s, |e| e["embedded"] == 3 && e["refused"] == 1).await;
    assert_eq!(fake.refusals.load(Ordering::SeqCst), refusals);

    // Its text changed, it is asked for and embedded: the library is whole.
    upsert(json!([page("odd", "Single-page setup")])).await;
    let ready = readiness_when(&s, |e| e["embedded"] == 4).await;
    assert_eq!(ready["embeddings"]["refused"], 0, "{ready}");
    assert_eq!(ready["embeddings"]["complete"], true, "{ready}");
    s.stop().await;
}

/// `/readyz` once its embeddings satisfy `done` (or after 30 s, for the caller to fail on).
async fn readiness_when(s: &TestServer, done: impl Fn(&Value) -> bool) -> Value {
    let mut ready = Value::Null;
    for _ in 0..600 {
        ready = s.get("/readyz").await.json().await.unwrap();
        if done(&ready["embeddings"]) {
            return ready;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("readiness never came: {ready}");
}

#[tokio::test]
async fn import_embeds_the_library_so_a_server_starts_with_its_vectors() {
    let (url, fake) = fake_service().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let file = dir.join("library.jsonl");
    let lines: Vec<String> = [
        ("sso", "Single sign-on with your identity provider"),
        ("saml", "SAML sign-on for your identity provider"),
        ("pricing", "Plans and prices"),
    ]
    .iter()
    .map(|(id, title)| {
        json!({ "id": id, "title": title, "content_type": "DOCUMENTATION" }).to_string()
    })
    .collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let import = |model: &'static str| {
        let (dir, file, url) = (dir.clone(), file.clone(), url.clone());
        tokio::task::spawn_blocking(move || {
            let config = config_in(&dir);
            std::process::Command::new(binary())
                .args(["import", file.to_str().unwrap(), "--embedder-url", &url])
                .args(["--embedder-model", model])
                .env("STAGEFIT_DATABASE_URL", &config.database_url)
                .env("STAGEFIT_INDEX_DIR", &config.index_dir)
                .env("STAGEFIT_EMBEDDER_KEY", KEY)
                .env_remove("STAGEFIT_LOG")
                .output()
                .unwrap()
        })
    };

    // A model the service does not have stops the import before it writes.
    let refused = import("no-such-model").await.unwrap();
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("model not found"),
        "{}",
        text(&refused.stderr)
    );

    let out = import("fake-multilingual").await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("3 rows: 3 created"), "{said}");
    assert!(
        said.contains("3 published assets have vectors: 3 embedded, 0 already stored"),
        "{said}"
    );
    // The probe, then three whole texts and three titles.
    assert_eq!(fake.texts.load(Ordering::SeqCst), 1 + 6);

    // Importing the same file again embeds nothing.
    let again = import("fake-multilingual").await.unwrap();
    let said = text(&again.stdout);
    assert!(
        said.contains("3 published assets have vectors: 0 embedded, 3 already stored"),
        "{said}"
    );
    assert_eq!(fake.texts.load(Ordering::SeqCst), 2 + 6);

    // A server on the same storage loads the stored vectors: nothing computed.
    let mut s = TestServer::start_in_with(&dir, false, |config| {
        config.embedder = Some(remote(&url, Some(KEY)));
    })
    .await;
    let ready = embedded(&s, 3).await;
    assert_eq!(ready["embeddings"]["embedded"], 3, "{ready}");
    assert_eq!(ready["embeddings"]["computed"], 0, "{ready}");
    assert_eq!(fake.texts.load(Ordering::SeqCst), 3 + 6);
    s.stop().await;

    // A text the service refuses is named in the import's summary.
    let odd = json!({ "id": "odd", "title": "Unembeddable page", "content_type": "DOCUMENTATION" });
    std::fs::write(&file, lines.join("\n") + "\n" + &odd.to_string() + "\n").unwrap();
    let out = import("picky").await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("3 published assets have vectors: 3 embedded, 0 already stored"),
        "{said}"
    );
    assert!(
        said.contains(
            "published assets without vectors: 1 (the embeddings service refused their text"
        ),
        "{said}"
    );

    // Both models' vectors are stored; the old one's can be dropped, and only it.
    let list = || {
        let out = crate::support::stagefit(&dir, &["embeddings", "list"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let listed = list();
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(
        lines[0].starts_with("remote:fake-multilingual:"),
        "{listed}"
    );
    assert!(
        lines[0].ends_with("\t3 assets, 3 published now"),
        "{listed}"
    );
    assert!(lines[1].starts_with("remote:picky:"), "{listed}");
    assert!(
        lines[1].ends_with("\t3 assets, 3 published now"),
        "{listed}"
    );
    let old = lines[0].split('\t').next().unwrap().to_owned();
    let new = lines[1].split('\t').next().unwrap().to_owned();
    let unknown = crate::support::stagefit(&dir, &["embeddings", "drop", "no-such-model"]);
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr).contains(&format!(
            "no vectors stored under \"no-such-model\"; stored: {old}, {new}"
        )),
        "{}",
        text(&unknown.stderr)
    );
    let dropped = crate::support::stagefit(&dir, &["embeddings", "drop", &old]);
    assert!(dropped.status.success(), "{}", text(&dropped.stderr));
    assert_eq!(
        text(&dropped.stdout).trim(),
        format!("3 vectors of {old} deleted")
    );
    assert_eq!(list().trim(), lines[1]);
}
