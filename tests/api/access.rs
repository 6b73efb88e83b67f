//! Access control over HTTP: every root field against every kind of credential, nothing
//! run or written when a field is refused, revocation, the open mode's start-up rule,
//! CORS and the body limit.

use serde_json::{Value, json};
use stagefit::domain::Scope;

use crate::support::{TestServer, stagefit, text};

/// One document per root field (and per argument shape that changes the rule), with the
/// least scope that may run it and whether a visitor token for account `acme` (no contact)
/// may. The table is written out here, apart from the server's own rule table, so a change
/// to either shows.
/// The key cache's age for tests that wait for it to pass (the servers' is 4 s).
const KEY_CACHE: std::time::Duration = std::time::Duration::from_millis(400);

const FIELDS: &[(&str, &str, Option<Scope>, bool)] = &[
    (
        "asset",
        r#"{ asset(id: "pricing-sheet") { id } }"#,
        Some(Scope::Publishable),
        true,
    ),
    (
        "assets",
        "{ assets(first: 1) { totalCount } }",
        Some(Scope::Publishable),
        true,
    ),
    (
        "search",
        r#"{ search(query: "reconciliation", first: 1) { totalCount } }"#,
        Some(Scope::Publishable),
        true,
    ),
    (
        "similarAssets",
        r#"{ similarAssets(assetId: "pricing-sheet", first: 1) { by } }"#,
        Some(Scope::Publishable),
        true,
    ),
    (
        "similarAssets among drafts",
        r#"{ similarAssets(assetId: "pricing-sheet", filter: { statuses: [DRAFT] }) { by } }"#,
        Some(Scope::Editor),
        false,
    ),
    (
        "taxonomy",
        "{ taxonomy { stages { name } } }",
        Some(Scope::Publishable),
        true,
    ),
    (
        "__typename",
        "{ __typename }",
        Some(Scope::Publishable),
        true,
    ),
    (
        "__type",
        r#"{ __type(name: "Asset") { name } }"#,
        Some(Scope::Editor),
        false,
    ),
    (
        "recommendations",
        "{ recommendations(audience: { stage: DECISION }, first: 1) { items { score } } }",
        Some(Scope::Publishable),
        true,
    ),
    (
        "recommendations for an account",
        r#"{ recommendations(audience: { accountId: "acme" }, first: 1) { items { score } } }"#,
        Some(Scope::Server),
        true,
    ),
    (
        "nextContent",
        r#"{ nextContent(afterAssetId: "pricing-sheet", first: 1) { items { score } } }"#,
        Some(Scope::Publishable),
        true,
    ),
    (
        "nextContent for a contact",
        r#"{ nextContent(afterAssetId: "pricing-sheet", audience: { contactId: "acme-cfo" }, first: 1) { items { score } } }"#,
        Some(Scope::Server),
        false,
    ),
    (
        "account",
        r#"{ account(id: "acme") { id engagements(first: 5) { items { assetId } } } }"#,
        Some(Scope::Server),
        false,
    ),
    (
        "coverage",
        "{ coverage(by: [STAGE]) { assetCount } }",
        Some(Scope::Editor),
        false,
    ),
    (
        "staleAssets",
        "{ staleAssets(first: 1) { ageDays } }",
        Some(Scope::Editor),
        false,
    ),
    (
        "suggestTags",
        r#"{ suggestTags(text: "reconciliation") { stages { stage } } }"#,
        Some(Scope::Editor),
        false,
    ),
    (
        "__schema",
        "{ __schema { queryType { name } } }",
        Some(Scope::Editor),
        false,
    ),
    (
        "accountExport",
        r#"{ accountExport(id: "acme") { engagements { assetId } } }"#,
        Some(Scope::Admin),
        false,
    ),
    ("apiKeys", "{ apiKeys { id } }", Some(Scope::Admin), false),
    (
        "auditLog",
        "{ auditLog(first: 1) { outcome } }",
        Some(Scope::Admin),
        false,
    ),
    (
        "upsertAccount",
        r#"mutation { upsertAccount(account: { id: "acme", name: "Acme" }) { id } }"#,
        Some(Scope::Server),
        false,
    ),
    (
        "upsertContact",
        r#"mutation { upsertContact(contact: { id: "acme-cfo", accountId: "acme", name: "C", role: FINANCE }) { id } }"#,
        Some(Scope::Server),
        false,
    ),
    (
        "recordEngagement",
        r#"mutation { recordEngagement(event: { accountId: "acme", assetId: "pricing-sheet", kind: VIEW }) { recorded } }"#,
        Some(Scope::Server),
        true,
    ),
    (
        "recordEngagements",
        r#"mutation { recordEngagements(events: [{ accountId: "acme", assetId: "pricing-sheet", kind: VIEW }]) { recorded } }"#,
        Some(Scope::Server),
        true,
    ),
    (
        "upsertAssets",
        r#"mutation { upsertAssets(assets: [{ id: "access-test", title: "T", contentType: "ebook" }]) { created } }"#,
        Some(Scope::Editor),
        false,
    ),
    (
        "retireAsset",
        r#"mutation { retireAsset(id: "access-test") { id } }"#,
        Some(Scope::Editor),
        false,
    ),
    (
        "refreshPopularity",
        "mutation { refreshPopularity { events } }",
        Some(Scope::Admin),
        false,
    ),
    (
        "eraseAccount",
        r#"mutation { eraseAccount(id: "nobody") { accountId } }"#,
        Some(Scope::Admin),
        false,
    ),
    (
        "createApiKey",
        r#"mutation { createApiKey(name: "made in a test", scope: PUBLISHABLE) { key } }"#,
        Some(Scope::Admin),
        false,
    ),
    (
        "revokeApiKey",
        r#"mutation { revokeApiKey(id: "k_000000000000") { id } }"#,
        Some(Scope::Admin),
        false,
    ),
    (
        "search for drafts",
        r#"{ search(query: "", filter: { statuses: [DRAFT] }) { totalCount } }"#,
        Some(Scope::Editor),
        false,
    ),
    (
        "recommendations for another account",
        r#"{ recommendations(audience: { accountId: "globex" }, first: 1) { items { score } } }"#,
        Some(Scope::Server),
        false,
    ),
    (
        "recordEngagement for another account",
        r#"mutation { recordEngagement(event: { accountId: "globex", assetId: "pricing-sheet", kind: VIEW }) { recorded } }"#,
        Some(Scope::Server),
        false,
    ),
    (
        "createVisitorToken",
        r#"mutation { createVisitorToken(accountId: "acme", ttlSeconds: 60) { token } }"#,
        Some(Scope::Server),
        false,
    ),
    (
        "rankingProfiles",
        "{ rankingProfiles { name } }",
        Some(Scope::Editor),
        false,
    ),
    (
        "experiments",
        "{ experiments { name } }",
        Some(Scope::Editor),
        false,
    ),
    (
        "experiment",
        r#"{ experiment(name: "nope") { name } }"#,
        Some(Scope::Editor),
        false,
    ),
    (
        "assetPerformance",
        "{ assetPerformance(first: 1) { totalCount } }",
        Some(Scope::Editor),
        false,
    ),
    (
        "cellPerformance",
        "{ cellPerformance { stage } }",
        Some(Scope::Editor),
        false,
    ),
    (
        "explainRank",
        r#"{ explainRank(assetId: "pricing-sheet", audience: { stage: DECISION }) { rank } }"#,
        Some(Scope::Editor),
        false,
    ),
    (
        "recordImpressions of a list shown to no account",
        r#"mutation { recordImpressions(recommendationId: "eyJhdCI6MCwicHJvZmlsZSI6ImRlZmF1bHQiLCJzdGFnZSI6IkRFQ0lTSU9OIiwibGFuZ3VhZ2UiOiJlbiJ9.0123456789abcdef", assetIds: ["pricing-sheet"]) { recorded } }"#,
        Some(Scope::Publishable),
        true,
    ),
    (
        "recordImpressions of a list shown to the token's account",
        r#"mutation { recordImpressions(recommendationId: "eyJhdCI6MCwiYWNjb3VudCI6ImFjbWUiLCJwcm9maWxlIjoiZGVmYXVsdCIsInN0YWdlIjoiREVDSVNJT04iLCJsYW5ndWFnZSI6ImVuIn0.0123456789abcdef", assetIds: ["pricing-sheet"]) { recorded } }"#,
        Some(Scope::Server),
        true,
    ),
    (
        "recordImpressions of a list shown to another account",
        r#"mutation { recordImpressions(recommendationId: "eyJhdCI6MCwiYWNjb3VudCI6Imdsb2JleCIsInByb2ZpbGUiOiJkZWZhdWx0Iiwic3RhZ2UiOiJERUNJU0lPTiIsImxhbmd1YWdlIjoiZW4ifQ.0123456789abcdef", assetIds: ["pricing-sheet"]) { recorded } }"#,
        Some(Scope::Server),
        false,
    ),
    (
        "recordClick on a list shown to no account",
        r#"mutation { recordClick(recommendationId: "eyJhdCI6MCwicHJvZmlsZSI6ImRlZmF1bHQiLCJzdGFnZSI6IkRFQ0lTSU9OIiwibGFuZ3VhZ2UiOiJlbiJ9.0123456789abcdef", assetId: "pricing-sheet") }"#,
        Some(Scope::Publishable),
        true,
    ),
    (
        "recordClick on a list shown to another account",
        r#"mutation { recordClick(recommendationId: "eyJhdCI6MCwiYWNjb3VudCI6Imdsb2JleCIsInByb2ZpbGUiOiJkZWZhdWx0Iiwic3RhZ2UiOiJERUNJU0lPTiIsImxhbmd1YWdlIjoiZW4ifQ.0123456789abcdef", assetId: "pricing-sheet") }"#,
        Some(Scope::Server),
        false,
    ),
    (
        "dismissRecommendation for the token's account",
        r#"mutation { dismissRecommendation(assetId: "pricing-sheet") }"#,
        Some(Scope::Server),
        true,
    ),
    (
        "dismissRecommendation for another account",
        r#"mutation { dismissRecommendation(assetId: "pricing-sheet", accountId: "globex") }"#,
        Some(Scope::Server),
        false,
    ),
    (
        "shareLinks",
        r#"{ shareLinks(contactId: "acme-cfo") { id } }"#,
        Some(Scope::Server),
        false,
    ),
    (
        "createShareLink",
        r#"mutation { createShareLink(assetId: "pricing-sheet", contactId: "nobody") { id } }"#,
        Some(Scope::Server),
        false,
    ),
    (
        "revokeShareLink",
        r#"mutation { revokeShareLink(id: "nothing") { id } }"#,
        Some(Scope::Server),
        false,
    ),
    (
        "accountActivity",
        r#"{ accountActivity(accountId: "acme") { since } }"#,
        Some(Scope::Server),
        false,
    ),
    ("webhooks", "{ webhooks { id } }", Some(Scope::Admin), false),
    (
        "webhookDeliveries",
        r#"{ webhookDeliveries(webhookId: "wh_none") { id } }"#,
        Some(Scope::Admin),
        false,
    ),
    (
        "createWebhook",
        r#"mutation { createWebhook(url: "https://hooks.example.com/x", events: [STAGE_CHANGED], secret: "0123456789abcdef") { id } }"#,
        Some(Scope::Admin),
        false,
    ),
    (
        "updateWebhook",
        r#"mutation { updateWebhook(id: "wh_none", change: { enabled: true }) { id } }"#,
        Some(Scope::Admin),
        false,
    ),
    (
        "stageMapping",
        "{ stageMapping { entries { crmStage stage } } }",
        Some(Scope::Editor),
        false,
    ),
    (
        "setStageMapping",
        r#"mutation { setStageMapping(entries: [{ crmStage: "Demo", stage: DECISION }]) { entries { crmStage } } }"#,
        Some(Scope::Editor),
        false,
    ),
    (
        "deleteWebhook",
        r#"mutation { deleteWebhook(id: "wh_none") }"#,
        Some(Scope::Admin),
        false,
    ),
    (
        "upsertRankingProfile",
        r#"mutation { upsertRankingProfile(name: "access-test", weights: { stage: 1 }) { name } }"#,
        Some(Scope::Editor),
        false,
    ),
    (
        "startExperiment",
        r#"mutation { startExperiment(name: "x", placement: "home", variants: []) { name } }"#,
        Some(Scope::Editor),
        false,
    ),
    (
        "stopExperiment",
        r#"mutation { stopExperiment(name: "nope") { name } }"#,
        Some(Scope::Editor),
        false,
    ),
    (
        "setApiKeyLimits",
        r#"mutation { setApiKeyLimits(id: "k_000000000000", ratePerSecond: 5) { id } }"#,
        Some(Scope::Admin),
        false,
    ),
    ("synonyms", "{ synonyms }", Some(Scope::Editor), false),
    (
        "setSynonyms",
        r#"mutation { setSynonyms(groups: [["churn", "retention"]]) }"#,
        Some(Scope::Editor),
        false,
    ),
    (
        "acceptTagSuggestions",
        r#"mutation { acceptTagSuggestions(accept: [{ assetId: "pricing-sheet", field: ROLE, value: "FINANCE" }]) { updated } }"#,
        Some(Scope::Editor),
        false,
    ),
];

#[test]
fn the_table_above_names_every_root_field_of_the_rules() {
    let missing: Vec<&str> = stagefit::graphql::RULES
        .iter()
        .map(|(field, _)| *field)
        .filter(|field| {
            let name = field.split('.').nth(1).unwrap();
            // A row is named by its field, then what its arguments make of it.
            !FIELDS
                .iter()
                .any(|(f, ..)| f.split_whitespace().next() == Some(name))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "rules without a row in FIELDS: {missing:?}"
    );
}

/// Posts `query` with `key` as its bearer credential: the status and the body.
async fn call(s: &TestServer, key: Option<&str>, query: &str) -> (u16, Value) {
    let mut request = s
        .client()
        .post(format!("{}/graphql", s.url))
        .json(&json!({ "query": query }));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn code(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["code"].as_str()
}

async fn key(s: &TestServer, scope: Scope, name: &str) -> String {
    let access = &s.server.as_ref().unwrap().state().access;
    access
        .create_key(name, scope, Default::default())
        .await
        .unwrap()
        .1
}

/// A visitor token as any JWT library signs one: HS256 with `secret`, `kid` in the header.
fn sign(secret: &[u8], kid: &str, claims: Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The public id of a key string.
fn id_of(key: &str) -> String {
    stagefit::domain::parse_key(key).unwrap().id
}

#[tokio::test]
async fn every_root_field_answers_each_credential_by_its_scope() {
    // Every bad credential below comes from this one address: far more than the budget of
    // failed credentials an address has (hardening.rs holds that budget).
    let mut s = TestServer::demo_with(|c| c.rate_limits.auth_failure_burst = 1_000_000).await;
    let mut keys = Vec::new();
    for scope in Scope::ALL {
        keys.push((scope, key(&s, scope, scope.name()).await));
    }
    let revoked = key(&s, Scope::Admin, "revoked").await;
    let access = &s.server.as_ref().unwrap().state().access;
    access.revoke(&revoked).await.unwrap();
    let forged = keys[3].1.replace("sf_adm_", "sf_pub_");
    let server = &keys[1].1;
    let publishable = &keys[0].1;
    // Signed by the customer's backend with the whole server key string.
    let visitor = sign(
        server.as_bytes(),
        &id_of(server),
        json!({ "sub": "acme", "exp": now() + 600 }),
    );
    let expired = sign(
        server.as_bytes(),
        &id_of(server),
        json!({ "sub": "acme", "exp": now() - 120 }),
    );
    let too_long = sign(
        server.as_bytes(),
        &id_of(server),
        json!({ "sub": "acme", "exp": now() + 25 * 3600 }),
    );
    // Not valid before an hour from now (beyond the 30 s of clock skew allowed).
    let not_yet = sign(
        server.as_bytes(),
        &id_of(server),
        json!({ "sub": "acme", "exp": now() + 7200, "nbf": now() + 3600 }),
    );
    let forged_signature = sign(
        b"not the key",
        &id_of(server),
        json!({ "sub": "acme", "exp": now() + 600 }),
    );
    let publishable_kid = sign(
        publishable.as_bytes(),
        &id_of(publishable),
        json!({ "sub": "acme", "exp": now() + 600 }),
    );
    let unknown_kid = sign(
        server.as_bytes(),
        "k_000000000000",
        json!({ "sub": "acme", "exp": now() + 600 }),
    );
    let revoked_kid = sign(
        revoked.as_bytes(),
        &id_of(&revoked),
        json!({ "sub": "acme", "exp": now() + 600 }),
    );

    for (name, query, least, visitor_may) in FIELDS {
        let least = least.expect("every field has a least scope");
        let credentials = keys
            .iter()
            .map(|(scope, key)| (scope.name().to_owned(), key.as_str(), *scope >= least))
            .chain([("visitor token".to_owned(), visitor.as_str(), *visitor_may)]);
        for (who, credential, may) in credentials {
            let (status, body) = call(&s, Some(credential), query).await;
            if may {
                assert!(
                    !matches!(code(&body), Some("FORBIDDEN" | "UNAUTHENTICATED")) && status != 403,
                    "{name} with a {who} credential: {status} {body}"
                );
            } else {
                assert_eq!(
                    (status, code(&body)),
                    (403, Some("FORBIDDEN")),
                    "{name} with a {who} credential: {body}"
                );
                assert!(
                    body.get("data").is_none_or(Value::is_null),
                    "{name}: {body}"
                );
            }
        }
        for (what, credential) in [
            ("no", None),
            ("a revoked", Some(revoked.as_str())),
            ("a forged", Some(forged.as_str())),
            ("a malformed", Some("sf_adm_nope")),
            ("an expired token", Some(expired.as_str())),
            ("a 25-hour token", Some(too_long.as_str())),
            ("a token not valid yet", Some(not_yet.as_str())),
            (
                "a token with a forged signature",
                Some(forged_signature.as_str()),
            ),
            (
                "a token of a publishable key",
                Some(publishable_kid.as_str()),
            ),
            ("a token of an unknown kid", Some(unknown_kid.as_str())),
            ("a token of a revoked key", Some(revoked_kid.as_str())),
            ("a token cut short", Some(&visitor[..visitor.len() - 3])),
        ] {
            let (status, body) = call(&s, credential, query).await;
            assert_eq!(
                (status, code(&body)),
                (401, Some("UNAUTHENTICATED")),
                "{name} with {what} credential: {body}"
            );
        }
    }
    // The health check stays open for load balancers.
    assert_eq!(s.get("/healthz").await.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn a_refused_field_runs_nothing_of_its_document() {
    let mut s = TestServer::demo().await;
    let server = key(&s, Scope::Server, "crm").await;
    let admin = key(&s, Scope::Admin, "ops").await;
    // The account upsert is allowed, the asset upsert is not: neither happens.
    let (status, body) = call(
        &s,
        Some(&server),
        r#"mutation { upsertAccount(account: { id: "sneaky", name: "S" }) { id }
                      upsertAssets(assets: [{ id: "sneaky-asset", title: "S", contentType: "ebook" }]) { created } }"#,
    )
    .await;
    assert_eq!((status, code(&body)), (403, Some("FORBIDDEN")), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("upsertAssets"),
        "{body}"
    );
    let (_, body) = call(
        &s,
        Some(&admin),
        r#"{ account(id: "sneaky") { id } asset(id: "sneaky-asset") { id } }"#,
    )
    .await;
    assert_eq!(
        body["data"]["asset"],
        Value::Null,
        "no asset was written: {body}"
    );
    assert_eq!(
        body["data"]["account"],
        Value::Null,
        "no account was written: {body}"
    );
    // A publishable key never reads an account through variables either.
    let publishable = key(&s, Scope::Publishable, "site").await;
    let response = s
        .client()
        .post(format!("{}/graphql", s.url))
        .bearer_auth(&publishable)
        .json(&json!({ "query": "query($a: AudienceInput!) { recommendations(audience: $a) { items { score } } }",
                       "variables": { "a": { "accountId": "acme" } } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    s.stop().await;
}

#[tokio::test]
async fn a_key_revoked_from_the_command_line_stops_working_within_the_key_cache() {
    let tmp = tempfile::tempdir().unwrap();
    // The cache's age shortened from 4 s: the test waits on it twice.
    let mut s = TestServer::start_in_with(tmp.path(), true, |c| c.key_cache = KEY_CACHE).await;
    let dir = tmp.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        stagefit(
            &dir,
            &["keys", "create", "--scope", "server", "--name", "crm"],
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout.lines().count(),
        1,
        "the key alone on stdout: {stdout}"
    );
    let server_key = stdout.trim().to_owned();
    assert!(server_key.starts_with("sf_srv_"));
    let query = r#"{ account(id: "nobody") { id } }"#;
    // Keys exist now (seen within the cache's age): no credential is refused.
    let mut refused = false;
    for _ in 0..60 {
        if call(&s, None, query).await.0 == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        refused,
        "requests without a key are refused once a key exists"
    );
    let (status, body) = call(&s, Some(&server_key), query).await;
    assert_eq!(
        (status, &body["data"]["account"]),
        (200, &Value::Null),
        "{body}"
    );

    let dir = tmp.path().to_owned();
    let key_string = server_key.clone();
    let out = tokio::task::spawn_blocking(move || stagefit(&dir, &["keys", "revoke", &key_string]))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let revoked_at = std::time::Instant::now();
    loop {
        let (status, _) = call(&s, Some(&server_key), query).await;
        if status == 401 {
            break;
        }
        assert!(
            revoked_at.elapsed() < KEY_CACHE + std::time::Duration::from_secs(1),
            "still accepted past the key cache's age"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let dir = tmp.path().to_owned();
    let out = tokio::task::spawn_blocking(move || stagefit(&dir, &["keys", "list"]))
        .await
        .unwrap();
    let list = text(&out.stdout);
    assert!(list.contains("server") && list.contains("crm"), "{list}");
    assert!(
        !list.contains(&server_key),
        "the list never shows a key's string"
    );
    s.stop().await;
}

#[tokio::test]
async fn with_no_key_the_server_serves_only_on_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = crate::support::config_in(tmp.path());
    config.addr = "0.0.0.0:0".parse().unwrap();
    let refused = stagefit::state::Server::start(&config, false).await;
    let message = format!("{:#}", refused.err().expect("refused"));
    assert!(
        message.contains("refusing to serve") && message.contains("--insecure-open"),
        "{message}"
    );
    config.insecure_open = true;
    let open = stagefit::state::Server::start(&config, false)
        .await
        .unwrap();
    open.stop().await.unwrap();
    // Once a key exists, any address will do.
    config.insecure_open = false;
    let store = stagefit::store::Store::connect(&config.database_url)
        .await
        .unwrap();
    stagefit::services::Access::new(store.clone(), stagefit::services::KEY_CACHE)
        .create_key("ops", Scope::Admin, Default::default())
        .await
        .unwrap();
    store.close().await;
    let guarded = stagefit::state::Server::start(&config, false)
        .await
        .unwrap();
    guarded.stop().await.unwrap();
}

#[tokio::test]
async fn browsers_on_listed_origins_may_call_and_others_may_not() {
    let mut s =
        TestServer::demo_with(|c| c.cors_origins = vec!["http://shop.example:3000".to_owned()])
            .await;
    let preflight = |origin: &'static str| {
        s.client()
            .request(reqwest::Method::OPTIONS, format!("{}/graphql", s.url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let allowed = preflight("http://shop.example:3000").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let headers = allowed.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "http://shop.example:3000"
    );
    let allowed_headers = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed_headers.contains("authorization") && allowed_headers.contains("content-type"));
    assert!(
        headers.get_all("vary").iter().any(|v| v
            .to_str()
            .unwrap()
            .to_lowercase()
            .contains("origin"))
    );
    let other = preflight("http://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let get = s
        .client()
        .post(format!("{}/graphql", s.url))
        .header("origin", "http://shop.example:3000")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        get.headers()["access-control-allow-origin"],
        "http://shop.example:3000"
    );
    s.stop().await;
}

#[tokio::test]
async fn large_bodies_are_refused_below_editor() {
    let mut s = TestServer::demo().await;
    let publishable = key(&s, Scope::Publishable, "site").await;
    let editor = key(&s, Scope::Editor, "content").await;
    let padding = "x".repeat(2 * 1024 * 1024);
    let body = json!({ "query": format!("{{ search(query: \"{padding}\", first: 1) {{ totalCount }} }}") });
    for (key, expected) in [(&publishable, Some(413)), (&editor, None)] {
        let response = s
            .client()
            .post(format!("{}/graphql", s.url))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match expected {
            Some(status_wanted) => {
                assert_eq!(status, status_wanted, "{body}");
                assert_eq!(code(&body), Some("PAYLOAD_TOO_LARGE"), "{body}");
            }
            None => assert_ne!(status, 413, "an editor may send large bodies: {body}"),
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn responses_with_account_data_are_private() {
    let mut s = TestServer::demo().await;
    s.gql(
        r#"mutation { upsertAccount(account: { id: "acme", name: "Acme" }) { id } }"#,
        json!({}),
    )
    .await;
    for query in [
        r#"{ account(id: "acme") { id engagements(first: 1) { items { assetId } } } }"#,
        r#"{ account(id: "acme") { recommendations(first: 1) { items { score } } } }"#,
        r#"{ accountExport(id: "acme") { engagements { assetId } } }"#,
        r#"{ recommendations(audience: { accountId: "acme" }, first: 1) { items { score } } }"#,
    ] {
        let response = s
            .client()
            .post(format!("{}/graphql", s.url))
            .json(&json!({ "query": query }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()["cache-control"],
            "private, no-store",
            "{query}"
        );
        assert_ne!(
            response.headers()["x-cache"],
            "miss",
            "{query}: never stored"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn a_burst_on_one_publishable_key_is_limited_and_another_key_is_not() {
    let mut s = TestServer::demo_with(|c| {
        c.rate_limits = stagefit::config::RateLimitConfig {
            per_key_per_second: 1_000,
            per_client_per_second: 2,
            per_client_burst: 5,
            ..Default::default()
        }
    })
    .await;
    let busy = key(&s, Scope::Publishable, "busy site").await;
    let other = key(&s, Scope::Publishable, "other site").await;
    let mut limited = None;
    for _ in 0..20 {
        let response = s
            .client()
            .post(format!("{}/graphql", s.url))
            .bearer_auth(&busy)
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
    }
    let response = limited.expect("a burst past 5 is refused");
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), Some("RATE_LIMITED"), "{body}");
    // Another key, from the same address, is unaffected.
    let (status, body) = call(&s, Some(&other), "{ __typename }").await;
    assert_eq!(status, 200, "{body}");
    // The audit trail names the limited key.
    let admin = key(&s, Scope::Admin, "ops").await;
    let busy_id = stagefit::domain::parse_key(&busy).unwrap().id;
    let mut limited_entry = None;
    for _ in 0..40 {
        let (_, body) = call(
            &s,
            Some(&admin),
            "{ auditLog(first: 5) { keyId outcome status } }",
        )
        .await;
        limited_entry = body["data"]["auditLog"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["outcome"] == "RATE_LIMITED").cloned());
        if limited_entry.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let entry = limited_entry.expect("the 429 is in the audit trail");
    assert_eq!(
        (entry["keyId"].as_str(), entry["status"].as_u64()),
        (Some(busy_id.as_str()), Some(429))
    );
    s.stop().await;
}

#[tokio::test]
async fn a_request_that_would_cost_too_much_is_refused_before_it_runs() {
    let _machine = crate::support::quiet().await;
    let mut s = TestServer::demo().await;
    let one = r#"recommendations(audience: { stage: DECISION }, query: "reconciliation", first: 100) {
                   items { score asset { id title summary url contentType } reasons { factor contribution } } }"#;
    // One such list is fine.
    let (status, body) = call(&s, None, &format!("{{ {one} }}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    // Three hundred aliases of it are refused, before any of them runs.
    let aliased: String = (0..300).map(|i| format!("r{i}: {one}\n")).collect();
    let started = std::time::Instant::now();
    let (_, body) = call(&s, None, &format!("{{ {aliased} }}")).await;
    let took = started.elapsed();
    assert_eq!(code(&body), Some("QUERY_TOO_COMPLEX"), "{body}");
    assert!(
        body.get("data").is_none_or(Value::is_null),
        "nothing ran: {body}"
    );
    assert!(took < std::time::Duration::from_secs(1), "{took:?}");
    s.stop().await;
}

#[tokio::test]
async fn a_request_that_runs_too_long_gets_a_timeout() {
    let mut s = TestServer::demo_with(|c| c.request_timeout = std::time::Duration::ZERO).await;
    // Eight counted searches on the blocking pool: no run finishes them all within the
    // first poll of the execution and the timer's first tick (a millisecond), which is as
    // long as a zero timeout waits. (Four sometimes did, on an idle machine.)
    let searches: String = (0..8)
        .map(|i| {
            format!("s{i}: search(query: \"reconciliation {i}\", first: 10) {{ totalCount }}\n")
        })
        .collect();
    let response = s
        .client()
        .post(format!("{}/graphql", s.url))
        .json(&json!({ "query": format!("{{ {searches} }}") }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), Some("TIMEOUT"), "{body}");
    s.stop().await;
}

#[tokio::test]
async fn an_internal_error_carries_its_request_id_and_nothing_of_its_cause() {
    use sea_orm::ConnectionTrait;
    let mut s = TestServer::demo().await;
    // A hand-edited database: the stored status no longer parses.
    let db = sea_orm::Database::connect(s.database_url().as_str())
        .await
        .unwrap();
    db.execute_unprepared("UPDATE asset SET status = 'bogus' WHERE id = 'pricing-sheet'")
        .await
        .unwrap();
    db.close().await.unwrap();
    let response = s
        .client()
        .post(format!("{}/graphql", s.url))
        .json(&json!({ "query": r#"{ asset(id: "pricing-sheet") { id } }"# }))
        .send()
        .await
        .unwrap();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(request_id.len() >= 32, "{request_id}");
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "INTERNAL", "{body}");
    assert_eq!(
        error["extensions"]["requestId"],
        request_id.as_str(),
        "{body}"
    );
    assert_eq!(error["message"], "internal error");
    for leak in ["bogus", "stored", "sqlite", "SELECT", "/tmp", "panicked"] {
        assert!(!text.contains(leak), "{leak}: {text}");
    }
    // A request that sends its own id keeps it.
    let response = s
        .client()
        .post(format!("{}/graphql", s.url))
        .header("x-request-id", "from-the-client-1")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "from-the-client-1");
    s.stop().await;
}

#[tokio::test]
async fn mutations_and_refusals_are_in_the_audit_trail_and_reads_are_not() {
    let mut s = TestServer::demo().await;
    let access = &s.server.as_ref().unwrap().state().access;
    let (server_key, server) = access
        .create_key("crm", Scope::Server, Default::default())
        .await
        .unwrap();
    let (site_key, site) = access
        .create_key("site", Scope::Publishable, Default::default())
        .await
        .unwrap();
    let (_, admin) = access
        .create_key("ops", Scope::Admin, Default::default())
        .await
        .unwrap();

    let (status, _) = call(
        &s,
        Some(&server),
        r#"mutation Sync { upsertAccount(account: { id: "acme", name: "Acme" }) { id } }"#,
    )
    .await;
    assert_eq!(status, 200);
    call(
        &s,
        Some(&server),
        r#"{ search(query: "reconciliation") { totalCount } }"#,
    )
    .await;
    assert_eq!(
        call(&s, Some(&site), r#"{ account(id: "acme") { id } }"#)
            .await
            .0,
        403
    );
    assert_eq!(call(&s, None, "{ __typename }").await.0, 401);

    let mut entries = Vec::new();
    for _ in 0..40 {
        let (_, body) = call(
            &s,
            Some(&admin),
            "{ auditLog(first: 10) { cursor keyId operation clientAddress status outcome } }",
        )
        .await;
        entries = body["data"]["auditLog"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if entries.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The mutation, the forbidden read and the unauthenticated call (refusals are counted
    // per bucket and written within a second, so their rows come after the mutation's).
    // The search and the auditLog reads themselves are not recorded.
    assert_eq!(entries.len(), 3, "{entries:#?}");
    let by_status = |status: u64| {
        entries
            .iter()
            .find(|e| e["status"].as_u64() == Some(status))
            .unwrap_or_else(|| panic!("no {status} in {entries:#?}"))
    };
    let unauthenticated = by_status(401);
    assert_eq!(unauthenticated["keyId"], Value::Null);
    assert_eq!(unauthenticated["outcome"], "UNAUTHENTICATED");
    let forbidden = by_status(403);
    assert_eq!(forbidden["keyId"], site_key.id.as_str());
    assert_eq!(forbidden["outcome"], "FORBIDDEN");
    assert_eq!(forbidden["operation"], "query account");
    let mutation = by_status(200);
    assert_eq!(mutation["keyId"], server_key.id.as_str());
    assert_eq!(
        (mutation["operation"].as_str(), mutation["outcome"].as_str()),
        (Some("mutation upsertAccount"), Some("ok"))
    );
    assert_eq!(mutation["clientAddress"], "127.0.0.1");
    let text = serde_json::to_string(&entries).unwrap();
    for secret in [&server, &site, &admin] {
        assert!(
            !text.contains(secret.as_str()),
            "a key's secret is never recorded"
        );
    }
    // Pages go back in time.
    let cursor = entries[0]["cursor"].as_str().unwrap();
    let ids: Vec<i64> = entries
        .iter()
        .map(|e| e["cursor"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let (_, body) = call(
        &s,
        Some(&admin),
        &format!(r#"{{ auditLog(first: 5, after: "{cursor}") {{ outcome }} }}"#),
    )
    .await;
    assert_eq!(
        body["data"]["auditLog"].as_array().unwrap().len(),
        2,
        "{body}"
    );
    s.stop().await;
}

/// Posts `query` with `variables`: the status, the body and the Cache-Control header.
async fn call_with(
    s: &TestServer,
    credential: &str,
    query: &str,
    variables: Value,
) -> (u16, Value, String) {
    let response = s
        .client()
        .post(format!("{}/graphql", s.url))
        .bearer_auth(credential)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let control = response
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, response.json().await.unwrap(), control)
}

/// Two accounts with a contact each, and one event of acme's: what cross-account probes
/// would reach.
async fn two_accounts(s: &TestServer, server: &str) {
    let (status, body, _) = call_with(
        s,
        server,
        r#"mutation {
            a: upsertAccount(account: { id: "acme", name: "Acme", industry: "retail" }) { id }
            g: upsertAccount(account: { id: "globex", name: "Globex", industry: "healthcare" }) { id }
            c: upsertContact(contact: { id: "acme-cto", accountId: "acme", name: "A", role: TECHNICAL_INTEGRATOR }) { id }
            d: upsertContact(contact: { id: "globex-cfo", accountId: "globex", name: "G", role: FINANCE }) { id }
            e: recordEngagement(event: { accountId: "acme", contactId: "acme-cto", assetId: "pricing-sheet", kind: VIEW }) { recorded }
        }"#,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
}

async fn engagement_count(s: &TestServer, server: &str, account: &str) -> i64 {
    let (_, body, _) = call_with(
        s,
        server,
        "query($id: ID!) { account(id: $id) { engagementCount } }",
        json!({ "id": account }),
    )
    .await;
    body["data"]["account"]["engagementCount"]
        .as_i64()
        .unwrap_or_else(|| panic!("{body}"))
}

const RECOMMEND: &str = "query($a: AudienceInput!) { recommendations(audience: $a, first: 5) {
    items { asset { id } reasons { factor detail } }
    audience { role roleSource industry industrySource } } }";

#[tokio::test]
async fn a_visitor_token_gets_its_own_accounts_recommendations_and_nothing_else() {
    let mut s = TestServer::demo().await;
    let server = key(&s, Scope::Server, "site backend").await;
    two_accounts(&s, &server).await;

    let (status, body, _) = call_with(
        &s,
        &server,
        "mutation { createVisitorToken(accountId: \"acme\", contactId: \"acme-cto\", ttlSeconds: 600) { token expiresAt } }",
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["data"]["createVisitorToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let expires: chrono::DateTime<chrono::Utc> = body["data"]["createVisitorToken"]["expiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let ahead = expires - chrono::Utc::now();
    assert!(
        ahead > chrono::Duration::seconds(590) && ahead <= chrono::Duration::seconds(600),
        "{ahead}"
    );
    // The server's signature is the one any JWT library makes with the key string.
    let checked = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_secret(server.as_bytes()),
        &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256),
    )
    .unwrap();
    assert_eq!(checked.header.kid, Some(id_of(&server)));
    assert_eq!(checked.claims["sub"], "acme");
    assert_eq!(checked.claims["contact"], "acme-cto");

    // `audience: {}` is the token's account and contact.
    let (status, mine, control) = call_with(&s, &token, RECOMMEND, json!({ "a": {} })).await;
    assert_eq!(status, 200, "{mine}");
    let list = &mine["data"]["recommendations"];
    assert_eq!(list["audience"]["role"], "TECHNICAL_INTEGRATOR", "{mine}");
    assert_eq!(list["audience"]["roleSource"], "CONTACT");
    assert_eq!(list["audience"]["industry"], "retail");
    assert_eq!(control, "private, no-store");
    let ids: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["asset"]["id"])
        .collect();
    assert!(
        !ids.contains(&&json!("pricing-sheet")),
        "read already: {ids:?}"
    );
    // The same list a server key gets for that account and contact.
    let (_, theirs, _) = call_with(
        &s,
        &server,
        RECOMMEND,
        json!({ "a": { "accountId": "acme", "contactId": "acme-cto" } }),
    )
    .await;
    assert_eq!(mine["data"], theirs["data"]);
    // Naming its own account is fine too.
    let (status, _, _) = call_with(
        &s,
        &token,
        RECOMMEND,
        json!({ "a": { "accountId": "acme" } }),
    )
    .await;
    assert_eq!(status, 200);

    // Cross-account probes: refused, nothing read, nothing written.
    let before = engagement_count(&s, &server, "globex").await;
    let acme_before = engagement_count(&s, &server, "acme").await;
    for (what, query, variables) in [
        (
            "another account",
            RECOMMEND,
            json!({ "a": { "accountId": "globex" } }),
        ),
        (
            "another contact",
            RECOMMEND,
            json!({ "a": { "contactId": "globex-cfo" } }),
        ),
        (
            "its account with another contact",
            RECOMMEND,
            json!({ "a": { "accountId": "acme", "contactId": "globex-cfo" } }),
        ),
        (
            "nextContent for another account",
            "query($a: AudienceInput) { nextContent(afterAssetId: \"pricing-sheet\", audience: $a) { items { score } } }",
            json!({ "a": { "accountId": "globex" } }),
        ),
        (
            "an event for another account",
            "mutation($e: EngagementInput!) { recordEngagement(event: $e) { recorded } }",
            json!({ "e": { "accountId": "globex", "assetId": "pricing-sheet", "kind": "VIEW" } }),
        ),
        (
            "an event for another contact",
            "mutation($e: EngagementInput!) { recordEngagement(event: $e) { recorded } }",
            json!({ "e": { "accountId": "acme", "contactId": "globex-cfo", "assetId": "pricing-sheet", "kind": "VIEW" } }),
        ),
        (
            "a batch with one event of another account",
            "mutation($e: [EngagementInput!]!) { recordEngagements(events: $e) { recorded } }",
            json!({ "e": [
                { "accountId": "acme", "contactId": "acme-cto", "assetId": "pricing-sheet", "kind": "VIEW" },
                { "accountId": "globex", "assetId": "pricing-sheet", "kind": "VIEW" }
            ] }),
        ),
        (
            "its account's history",
            "{ account(id: \"acme\") { engagements { items { assetId } } } }",
            json!({}),
        ),
        (
            "a defaulted variable naming another account",
            "query($a: AudienceInput! = { accountId: \"globex\" }) { recommendations(audience: $a) { items { score } } }",
            json!({}),
        ),
        (
            "a token of its own",
            "mutation { createVisitorToken(accountId: \"globex\") { token } }",
            json!({}),
        ),
    ] {
        let (status, body, _) = call_with(&s, &token, query, variables).await;
        assert_eq!(
            (status, code(&body)),
            (403, Some("FORBIDDEN")),
            "{what}: {body}"
        );
        assert!(
            body.get("data").is_none_or(Value::is_null),
            "{what}: {body}"
        );
    }
    assert_eq!(engagement_count(&s, &server, "globex").await, before);
    assert_eq!(engagement_count(&s, &server, "acme").await, acme_before);

    // Its own account's events are written.
    let (status, body, _) = call_with(
        &s,
        &token,
        "mutation($e: EngagementInput!) { recordEngagement(event: $e) { recorded } }",
        json!({ "e": { "accountId": "acme", "contactId": "acme-cto", "assetId": "pricing-sheet", "kind": "DOWNLOAD" } }),
    )
    .await;
    assert_eq!(
        (status, &body["data"]["recordEngagement"]["recorded"]),
        (200, &json!(1)),
        "{body}"
    );
    assert_eq!(engagement_count(&s, &server, "acme").await, acme_before + 1);

    // A token for another account answers for that account, never from the first's cache.
    let other = sign(
        server.as_bytes(),
        &id_of(&server),
        json!({ "sub": "globex", "exp": now() + 600 }),
    );
    let (_, theirs, _) = call_with(&s, &other, RECOMMEND, json!({ "a": {} })).await;
    assert_eq!(
        theirs["data"]["recommendations"]["audience"]["industry"], "healthcare",
        "{theirs}"
    );

    // Creating tokens: checked.
    for (what, query, expected) in [
        (
            "an unknown account",
            "mutation { createVisitorToken(accountId: \"nobody\") { token } }",
            "NOT_FOUND",
        ),
        (
            "another account's contact",
            "mutation { createVisitorToken(accountId: \"acme\", contactId: \"globex-cfo\") { token } }",
            "NOT_FOUND",
        ),
        (
            "a token living longer than a day",
            "mutation { createVisitorToken(accountId: \"acme\", ttlSeconds: 86401) { token } }",
            "BAD_USER_INPUT",
        ),
        (
            "no life at all",
            "mutation { createVisitorToken(accountId: \"acme\", ttlSeconds: 0) { token } }",
            "BAD_USER_INPUT",
        ),
    ] {
        let (_, body, _) = call_with(&s, &server, query, json!({})).await;
        assert_eq!(code(&body), Some(expected), "{what}: {body}");
    }

    // Revoking the signing key ends its tokens within 5 s.
    let access = &s.server.as_ref().unwrap().state().access;
    access.revoke(&id_of(&server)).await.unwrap();
    let (status, body, _) = call_with(&s, &token, RECOMMEND, json!({ "a": {} })).await;
    assert_eq!(
        (status, code(&body)),
        (401, Some("UNAUTHENTICATED")),
        "{body}"
    );
    s.stop().await;
}

/// Posts a raw JSON body with `credential`: the status and the body.
async fn post_json(s: &TestServer, credential: &str, body: Value) -> (u16, Value) {
    let response = s
        .client()
        .post(format!("{}/graphql", s.url))
        .bearer_auth(credential)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn with_a_safelist_web_pages_run_registered_operations_only() {
    use sha2::Digest;
    let tmp = tempfile::tempdir().unwrap();
    let document = "query Picks($stage: StageName!) {\n  recommendations(audience: { stage: $stage }, first: 3) { items { asset { id } } }\n}\n";
    std::fs::write(tmp.path().join("picks.graphql"), document).unwrap();
    std::fs::write(tmp.path().join("broken.graphql"), "query {").unwrap();
    let hash: String = sha2::Sha256::digest(document.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = tmp.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        let picks = dir.join("picks.graphql");
        let broken = dir.join("broken.graphql");
        let refused = stagefit(
            &dir,
            &[
                "operations",
                "add",
                picks.to_str().unwrap(),
                broken.to_str().unwrap(),
            ],
        );
        (
            refused,
            stagefit(&dir, &["operations", "add", picks.to_str().unwrap()]),
        )
    })
    .await
    .unwrap();
    let (refused, added) = out;
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("broken.graphql: not a GraphQL document"),
        "{}",
        text(&refused.stderr)
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    assert_eq!(text(&added.stdout).trim(), format!("{hash} picks.graphql"));

    let mut s = TestServer::start_in_with(tmp.path(), true, |c| {
        c.publishable_safelist = true;
        c.key_cache = KEY_CACHE;
    })
    .await;
    let site = key(&s, Scope::Publishable, "site").await;
    let server = key(&s, Scope::Server, "crm").await;
    let variables = json!({ "stage": "DECISION" });
    // The registered text, or its hash alone.
    let (status, by_text) = post_json(
        &s,
        &site,
        json!({ "query": document, "variables": variables }),
    )
    .await;
    assert_eq!(status, 200, "{by_text}");
    assert_eq!(
        by_text["data"]["recommendations"]["items"]
            .as_array()
            .map(Vec::len),
        Some(3),
        "{by_text}"
    );
    let persisted = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let (status, by_hash) = post_json(
        &s,
        &site,
        json!({ "extensions": persisted, "variables": variables }),
    )
    .await;
    assert_eq!((status, &by_hash["data"]), (200, &by_text["data"]));
    // Over GET too.
    let response = s
        .client()
        .get(format!("{}/graphql", s.url))
        .bearer_auth(&site)
        .query(&[
            ("extensions", persisted.to_string()),
            ("variables", variables.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let by_get: Value = response.json().await.unwrap();
    assert_eq!(by_get["data"], by_text["data"]);

    // Anything else is refused for a publishable key and a visitor token, not for a server
    // key.
    let token = sign(
        server.as_bytes(),
        &id_of(&server),
        json!({ "sub": "acme", "exp": now() + 600 }),
    );
    let other = "{ search(query: \"reconciliation\") { totalCount } }";
    for credential in [&site, &token] {
        for query in [other, &document.replace("first: 3", "first:  3")] {
            let (status, body) = post_json(&s, credential, json!({ "query": query })).await;
            assert_eq!((status, code(&body)), (403, Some("FORBIDDEN")), "{body}");
        }
    }
    let (status, _) = post_json(&s, &server, json!({ "query": other })).await;
    assert_eq!(status, 200);
    // An unregistered text with its own hash is still unregistered, as a query or a mutation.
    for query in [
        other,
        r#"mutation { recordEngagement(event: { accountId: "acme", assetId: "pricing-sheet", kind: VIEW }) { recorded } }"#,
    ] {
        let own = json!({ "persistedQuery": { "version": 1, "sha256Hash": stagefit::services::document_hash(query) } });
        for credential in [&site, &token] {
            let (status, body) =
                post_json(&s, credential, json!({ "query": query, "extensions": own })).await;
            assert_eq!((status, code(&body)), (403, Some("FORBIDDEN")), "{body}");
        }
    }
    // A hash nobody registered, and a hash that is not the text's.
    let (status, body) = post_json(
        &s,
        &site,
        json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": "00".repeat(32) } } }),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (400, Some("BAD_USER_INPUT")),
        "{body}"
    );
    let (status, body) = post_json(
        &s,
        &site,
        json!({ "query": other, "extensions": persisted }),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (400, Some("BAD_USER_INPUT")),
        "{body}"
    );

    // Listed, then removed: gone once the cache's age has passed.
    let dir = tmp.path().to_owned();
    let removed_hash = hash.clone();
    let (list, remove) = tokio::task::spawn_blocking(move || {
        (
            stagefit(&dir, &["operations", "list"]),
            stagefit(&dir, &["operations", "remove", &removed_hash]),
        )
    })
    .await
    .unwrap();
    assert!(text(&list.stdout).contains(&hash), "{}", text(&list.stdout));
    assert!(remove.status.success(), "{}", text(&remove.stderr));
    let removed = std::time::Instant::now();
    loop {
        let (status, _) = post_json(&s, &site, json!({ "extensions": persisted })).await;
        if status == 400 {
            break;
        }
        assert!(removed.elapsed() < KEY_CACHE + std::time::Duration::from_secs(1));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    s.stop().await;
}

#[tokio::test]
async fn a_key_may_have_rates_of_its_own() {
    let mut s = TestServer::demo_with(|c| {
        c.rate_limits = stagefit::config::RateLimitConfig {
            per_key_per_second: 1_000,
            per_client_per_second: 1,
            per_client_burst: 3,
            ..Default::default()
        }
    })
    .await;
    let admin = key(&s, Scope::Admin, "ops").await;
    let (_, body) = call(
        &s,
        Some(&admin),
        r#"mutation { createApiKey(name: "busy site", scope: PUBLISHABLE, clientRatePerSecond: 50) { key apiKey { clientRatePerSecond ratePerSecond } } }"#,
    )
    .await;
    assert_eq!(
        body["data"]["createApiKey"]["apiKey"],
        json!({ "clientRatePerSecond": 50, "ratePerSecond": null }),
        "{body}"
    );
    let generous = body["data"]["createApiKey"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let plain = key(&s, Scope::Publishable, "plain site").await;
    let server = key(&s, Scope::Server, "crm").await;
    let statuses = |credential: String, n: usize| {
        let s = &s;
        async move {
            let mut out = Vec::new();
            for _ in 0..n {
                out.push(call(s, Some(&credential), "{ __typename }").await.0);
            }
            out
        }
    };
    // The default: a burst of 3 per client address.
    assert!(statuses(plain.clone(), 8).await.contains(&429));
    // Its own rate: a burst of twice 50.
    assert!(
        statuses(generous.clone(), 30)
            .await
            .iter()
            .all(|s| *s == 200)
    );
    // Visitor tokens spend from their server key's per-client bucket.
    let token = sign(
        server.as_bytes(),
        &id_of(&server),
        json!({ "sub": "acme", "exp": now() + 600 }),
    );
    assert!(statuses(token, 8).await.contains(&429));
    // A per-key rate, set afterwards by id, applies to all its callers.
    let (_, body) = call(
        &s,
        Some(&admin),
        &format!(
            r#"mutation {{ setApiKeyLimits(id: "{}", ratePerSecond: 1) {{ ratePerSecond }} }}"#,
            id_of(&server)
        ),
    )
    .await;
    assert_eq!(
        body["data"]["setApiKeyLimits"]["ratePerSecond"], 1,
        "{body}"
    );
    assert!(statuses(server.clone(), 4).await.contains(&429));
    // Bad rates are refused with a code.
    let (_, body) = call(
        &s,
        Some(&admin),
        r#"mutation { setApiKeyLimits(id: "k_000000000000", ratePerSecond: -1) { id } }"#,
    )
    .await;
    assert_eq!(code(&body), Some("BAD_USER_INPUT"), "{body}");
    s.stop().await;
}

/// Posts `{ __typename }` with `key`, as forwarded by a proxy for `forwarded_for`.
async fn forwarded(s: &TestServer, key: &str, forwarded_for: &str) -> u16 {
    s.client()
        .post(format!("{}/graphql", s.url))
        .bearer_auth(key)
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_visitor_has_a_bucket_of_their_own() {
    let limits = stagefit::config::RateLimitConfig {
        per_key_per_second: 1_000,
        per_client_per_second: 1,
        per_client_burst: 3,
        ..Default::default()
    };
    let proxied = limits.clone();
    let mut s = TestServer::demo_with(move |c| {
        c.rate_limits = proxied;
        c.trusted_proxies = vec!["127.0.0.0/8".to_owned()];
    })
    .await;
    let site = key(&s, Scope::Publishable, "site").await;
    let admin = key(&s, Scope::Admin, "ops").await;
    let mut first = Vec::new();
    for _ in 0..6 {
        // A client may send its own X-Forwarded-For; the proxy appends the real address.
        first.push(forwarded(&s, &site, "198.51.100.9, 203.0.113.5").await);
    }
    assert!(first.contains(&429), "{first:?}");
    assert_eq!(forwarded(&s, &site, "198.51.100.9, 203.0.113.6").await, 200);
    let mut entry = None;
    for _ in 0..40 {
        let (_, body) = call(
            &s,
            Some(&admin),
            "{ auditLog(first: 5) { clientAddress outcome } }",
        )
        .await;
        entry = body["data"]["auditLog"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["outcome"] == "RATE_LIMITED").cloned());
        if entry.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(entry.unwrap()["clientAddress"], "203.0.113.5");
    s.stop().await;

    // Without a trusted proxy the header is the client's say-so, and ignored.
    let mut s = TestServer::demo_with(move |c| c.rate_limits = limits).await;
    let site = key(&s, Scope::Publishable, "site").await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        statuses.push(forwarded(&s, &site, &format!("203.0.113.{i}")).await);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    s.stop().await;
}

async fn audit_count(s: &TestServer, admin: &str) -> usize {
    let (_, body) = call(s, Some(admin), "{ auditLog(first: 50) { outcome } }").await;
    body["data"]["auditLog"].as_array().unwrap().len()
}

#[tokio::test]
async fn the_audit_trail_forgets_events_past_its_retention() {
    use sea_orm::ConnectionTrait;
    let tmp = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_in(tmp.path(), true).await;
    let admin = key(&s, Scope::Admin, "ops").await;
    // Three mutations: a row each (refusals would count in one).
    for n in 0..3 {
        let (status, _) = call(
            &s,
            Some(&admin),
            &format!(
                "mutation {{ upsertAccount(account: {{ id: \"a{n}\", name: \"A\" }}) {{ id }} }}"
            ),
        )
        .await;
        assert_eq!(status, 200);
    }
    for _ in 0..40 {
        if audit_count(&s, &admin).await >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(audit_count(&s, &admin).await, 3);
    let url = crate::support::config_in(tmp.path()).database_url;
    s.stop().await;
    // Two of them 100 days old.
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    db.execute_unprepared(
        "UPDATE audit_event SET at = at - 100 * 86400 WHERE id IN (SELECT id FROM audit_event ORDER BY id LIMIT 2)",
    )
    .await
    .unwrap();
    db.close().await.unwrap();

    let mut s = TestServer::start_in_with(tmp.path(), false, |c| c.audit_retention_days = 90).await;
    let mut left = 0;
    for _ in 0..40 {
        left = audit_count(&s, &admin).await;
        if left == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(left, 1, "the two old events are gone, the recent one kept");
    s.stop().await;
}

#[tokio::test]
async fn drafts_are_shown_to_the_content_team_only() {
    let mut s = TestServer::demo().await;
    let site = key(&s, Scope::Publishable, "site").await;
    let server = key(&s, Scope::Server, "crm").await;
    let editor = key(&s, Scope::Editor, "content").await;
    let query = r#"{ draft: asset(id: "draft-pricing-2027") { id status } published: asset(id: "pricing-sheet") { id } }"#;
    for credential in [&site, &server] {
        let (status, body) = call(&s, Some(credential), query).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["draft"], Value::Null, "{body}");
        assert_eq!(body["data"]["published"]["id"], "pricing-sheet");
    }
    let (_, body) = call(&s, Some(&editor), query).await;
    assert_eq!(body["data"]["draft"]["status"], "DRAFT", "{body}");
    // Nor is there a draft to read after: the same answer as for no asset at all.
    let after =
        |id: &str| format!(r#"{{ nextContent(afterAssetId: "{id}") {{ items {{ score }} }} }}"#);
    let (_, none) = call(&s, Some(&site), &after("no-such-asset")).await;
    let (_, draft) = call(&s, Some(&site), &after("draft-pricing-2027")).await;
    assert_eq!(code(&draft), Some("NOT_FOUND"), "{draft}");
    assert_eq!(
        draft["errors"][0]["message"]
            .as_str()
            .map(|m| m.replace("draft-pricing-2027", "X")),
        none["errors"][0]["message"]
            .as_str()
            .map(|m| m.replace("no-such-asset", "X"))
    );
    let (_, body) = call(&s, Some(&editor), &after("draft-pricing-2027")).await;
    assert!(body.get("errors").is_none(), "{body}");
    // Nor to compare with.
    let like = |id: &str| format!(r#"{{ similarAssets(assetId: "{id}") {{ by }} }}"#);
    let (_, draft) = call(&s, Some(&site), &like("draft-pricing-2027")).await;
    assert_eq!(code(&draft), Some("NOT_FOUND"), "{draft}");
    let (_, body) = call(&s, Some(&editor), &like("draft-pricing-2027")).await;
    assert!(body.get("errors").is_none(), "{body}");
    s.stop().await;
}

#[tokio::test]
async fn keys_get_rates_of_their_own_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let (created, listed, limited, relisted, refused) = tokio::task::spawn_blocking(move || {
        let created = stagefit(
            &dir,
            &[
                "keys",
                "create",
                "--scope",
                "publishable",
                "--name",
                "website",
                "--client-rate-per-second",
                "7",
            ],
        );
        let key = text(&created.stdout).trim().to_owned();
        let listed = stagefit(&dir, &["keys", "list"]);
        let limited = stagefit(&dir, &["keys", "limit", &key, "--rate-per-second", "9"]);
        let relisted = stagefit(&dir, &["keys", "list"]);
        let refused = stagefit(&dir, &["keys", "limit", &key, "--rate-per-second", "0"]);
        (created, listed, limited, relisted, refused)
    })
    .await
    .unwrap();
    assert!(created.status.success(), "{}", text(&created.stderr));
    let row = |out: &std::process::Output| {
        text(&out.stdout)
            .lines()
            .find(|l| l.ends_with("website"))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(row(&listed).contains(" -/7 "), "{}", text(&listed.stdout));
    assert!(limited.status.success(), "{}", text(&limited.stderr));
    // A rate left out returns to the default.
    assert!(
        row(&relisted).contains(" 9/- "),
        "{}",
        text(&relisted.stdout)
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("ratePerSecond: a rate is 1 to 1000000"),
        "{}",
        text(&refused.stderr)
    );
}
