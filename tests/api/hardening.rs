//! Requests shaped to stop or pin the server, sent to the real binary (a stack overflow
//! aborts the process it happens in, so the server runs in a process of its own): each
//! gets an error with a code, quickly, and the process answers afterwards.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stagefit::domain::Scope;

use crate::support::{ServedBinary, TestServer, serve_binary, stagefit, text};

/// Far above what any of these refusals costs, far below what the attacks cost before
/// they were refused (seconds, or the process).
const QUICK: Duration = Duration::from_secs(2);

/// A served demo library with a publishable key: the server, its base URL and the key.
pub(crate) fn demo_with_key(
    dir: &std::path::Path,
    args: &[&str],
) -> (ServedBinary, String, String) {
    let created = stagefit(
        dir,
        &["keys", "create", "--scope", "publishable", "--name", "site"],
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let key = text(&created.stdout).trim().to_owned();
    let mut all = vec!["--demo"];
    all.extend_from_slice(args);
    let served = serve_binary(dir, &all, &[]);
    let url = format!("http://{}", served.addr);
    (served, url, key)
}

/// POSTs a body as the publishable key: status, JSON body and how long the answer took.
pub(crate) async fn post_timed(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    body: &Value,
) -> (u16, Value, Duration) {
    let started = Instant::now();
    let response = client
        .post(format!("{url}/graphql"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON body");
    (status, body, started.elapsed())
}

/// The process is alive and answers.
pub(crate) async fn assert_alive(served: &mut ServedBinary, client: &reqwest::Client, url: &str) {
    assert!(
        served.child.0.try_wait().expect("status").is_none(),
        "the server process exited"
    );
    let health = client
        .get(format!("{url}/healthz"))
        .timeout(QUICK)
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(health.status(), 200);
}

fn code(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["code"].as_str()
}

#[tokio::test]
async fn hostile_request_shapes_are_refused_quickly_and_the_server_lives() {
    let _machine = crate::support::quiet().await;
    let tmp = tempfile::tempdir().unwrap();
    let (mut served, url, key) = demo_with_key(tmp.path(), &[]);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();

    // 1. A search text of a thousand nested parentheses (2 KB): the query parser recursed
    //    once per level and overflowed the stack.
    let parens = format!("{}reconciliation{}", "(".repeat(1000), ")".repeat(1000));
    let (status, body, took) = post_timed(
        &client,
        &url,
        &key,
        &json!({ "query": "query($q: String!) { search(query: $q) { totalCount } }", "variables": { "q": parens } }),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (200, Some("BAD_USER_INPUT")),
        "{body}"
    );
    assert!(took < QUICK, "{took:?}");
    assert_alive(&mut served, &client, &url).await;
    // The same text inside a recommendation, and NOTs nested as deep.
    let nots = format!("{}x", "NOT ".repeat(500));
    for text in [&parens, &nots] {
        let (status, body, _) = post_timed(
            &client,
            &url,
            &key,
            &json!({ "query": "query($q: String) { recommendations(audience: {}, query: $q) { items { score } } }", "variables": { "q": text } }),
        )
        .await;
        assert_eq!(
            (status, code(&body)),
            (200, Some("BAD_USER_INPUT")),
            "{body}"
        );
    }
    assert_alive(&mut served, &client, &url).await;

    // 2. An argument holding a list nested 2,000 deep (4 KB): the document parser recursed
    //    once per bracket. In the document, and in variables.
    let deep = format!(
        "{{ search(query: {}\"x\"{}) {{ totalCount }} }}",
        "[".repeat(2000),
        "]".repeat(2000)
    );
    for media in ["application/json", "application/graphql-response+json"] {
        let started = Instant::now();
        let response = client
            .post(format!("{url}/graphql"))
            .bearer_auth(&key)
            .header("accept", media)
            .json(&json!({ "query": deep }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        let expected = if media == "application/json" {
            200
        } else {
            400
        };
        assert_eq!(
            (status, code(&body)),
            (expected, Some("QUERY_TOO_COMPLEX")),
            "{body}"
        );
        assert!(started.elapsed() < QUICK);
    }
    let mut nested = json!("x");
    for _ in 0..100 {
        nested = json!([nested]);
    }
    let (status, body, _) = post_timed(
        &client,
        &url,
        &key,
        &json!({ "query": "query($q: String!) { search(query: $q) { totalCount } }", "variables": { "q": nested } }),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (200, Some("QUERY_TOO_COMPLEX")),
        "{body}"
    );
    // Over GET, the same text.
    let response = client
        .get(format!("{url}/graphql"))
        .bearer_auth(&key)
        .query(&[("query", deep.as_str())])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), Some("QUERY_TOO_COMPLEX"), "{body}");
    assert_alive(&mut served, &client, &url).await;

    // 3. Fragment fan-out: 24 fragments that each spread the next twice (1 KB) expand to
    //    2^24 selections; two at once used to stall /healthz for seconds.
    let mut fan = String::from("{ ...F0 }");
    for i in 0..24 {
        fan.push_str(&format!(
            " fragment F{i} on QueryRoot {{ ...F{} ...F{} }}",
            i + 1,
            i + 1
        ));
    }
    fan.push_str(" fragment F24 on QueryRoot { __typename }");
    assert!(fan.len() < 1500, "{}", fan.len());
    let body = json!({ "query": fan });
    let (a, b, health) = tokio::join!(
        post_timed(&client, &url, &key, &body),
        post_timed(&client, &url, &key, &body),
        async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let started = Instant::now();
            let response = client.get(format!("{url}/healthz")).send().await.unwrap();
            (response.status().as_u16(), started.elapsed())
        }
    );
    for (status, body, took) in [a, b] {
        assert_eq!(
            (status, code(&body)),
            (200, Some("QUERY_TOO_COMPLEX")),
            "{body}"
        );
        assert!(took < QUICK, "{took:?}");
    }
    assert_eq!(health.0, 200);
    assert!(health.1 < QUICK, "{:?}", health.1);
    // A fragment that spreads itself.
    let (status, body, _) = post_timed(
        &client,
        &url,
        &key,
        &json!({ "query": "{ ...A } fragment A on QueryRoot { ...A ...A __typename }" }),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (200, Some("BAD_USER_INPUT")),
        "{body}"
    );
    assert_alive(&mut served, &client, &url).await;

    // 4. Sixteen thousand distinct words: the term de-duplication was quadratic.
    let words: String = (0..16_000).map(|i| format!("w{i} ")).collect();
    for query in [
        "query($q: String!) { search(query: $q) { totalCount } }",
        "query($q: String) { recommendations(audience: {}, query: $q) { items { score } } }",
    ] {
        let (status, body, took) = post_timed(
            &client,
            &url,
            &key,
            &json!({ "query": query, "variables": { "q": words } }),
        )
        .await;
        assert_eq!(
            (status, code(&body)),
            (200, Some("BAD_USER_INPUT")),
            "{body}"
        );
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("characters")),
            "{body}"
        );
        assert!(took < QUICK, "{took:?}");
    }
    assert_alive(&mut served, &client, &url).await;

    // A text within the limits still searches.
    let (status, body, _) = post_timed(
        &client,
        &url,
        &key,
        &json!({ "query": "{ search(query: \"(payment AND reconciliation) OR pricing\") { totalCount } }" }),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body["data"]["search"]["totalCount"].as_u64().unwrap() > 0,
        "{body}"
    );

    // Oversized documents and operation names are refused before parsing, and a name
    // that is not a GraphQL name never reaches the log.
    let long = format!("{{ __typename {} }}", "__typename ".repeat(7_000));
    let (status, body, _) = post_timed(&client, &url, &key, &json!({ "query": long })).await;
    assert_eq!(
        (status, code(&body)),
        (200, Some("QUERY_TOO_COMPLEX")),
        "{body}"
    );
    let (status, body, _) = post_timed(
        &client,
        &url,
        &key,
        &json!({ "query": "query Q { __typename }", "operationName": "Q\n\u{1b}[31m" }),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (200, Some("BAD_USER_INPUT")),
        "{body}"
    );
    assert_alive(&mut served, &client, &url).await;
    served.kill();
}

/// POSTs as `credential`: status, headers and JSON body.
async fn call(
    s: &TestServer,
    credential: &str,
    query: &str,
    variables: Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = s
        .client()
        .post(format!("{}/graphql", s.url))
        .bearer_auth(credential)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

async fn new_key(s: &TestServer, scope: Scope) -> String {
    s.server
        .as_ref()
        .unwrap()
        .state()
        .access
        .create_key(scope.name(), scope, Default::default())
        .await
        .unwrap()
        .1
}

#[tokio::test]
async fn drafts_stay_hidden_below_editors_also_through_engagements() {
    let mut s = TestServer::demo().await;
    let server = new_key(&s, Scope::Server).await;
    let editor = new_key(&s, Scope::Editor).await;
    let (status, _, body) = call(
        &s,
        &server,
        r#"mutation {
            upsertAccount(account: { id: "acme", name: "Acme", industry: "retail" }) { id }
            recordEngagement(event: { accountId: "acme", assetId: "pricing-sheet", kind: VIEW }) { recorded }
        }"#,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The content team takes the asset back to draft.
    let mut record = crate::support::demo_records()
        .into_iter()
        .find(|r| r["id"] == "pricing-sheet")
        .unwrap();
    record["status"] = json!("draft");
    let input = json!({
        "id": record["id"], "title": record["title"], "summary": record["summary"],
        "body": record["body"], "contentType": record["content_type"], "status": "draft",
    });
    let (_, _, body) = call(
        &s,
        &editor,
        "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { updated } }",
        json!({ "a": [input] }),
    )
    .await;
    assert_eq!(body["data"]["upsertAssets"]["updated"], 1, "{body}");
    let history = r#"{ account(id: "acme") { engagements { items { assetId asset { id title status } } } } }"#;
    let (_, _, body) = call(&s, &server, history, json!({})).await;
    let item = &body["data"]["account"]["engagements"]["items"][0];
    assert_eq!(item["assetId"], "pricing-sheet", "{body}");
    assert!(item["asset"].is_null(), "a server key read a draft: {body}");
    let (_, _, body) = call(&s, &editor, history, json!({})).await;
    assert_eq!(
        body["data"]["account"]["engagements"]["items"][0]["asset"]["status"], "DRAFT",
        "{body}"
    );

    // An event naming the draft is answered as one naming no asset at all.
    let token = call(
        &s,
        &server,
        r#"mutation { createVisitorToken(accountId: "acme", ttlSeconds: 600) { token } }"#,
        json!({}),
    )
    .await
    .2["data"]["createVisitorToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let record_for = |asset: &str| {
        format!(
            r#"mutation {{ recordEngagement(event: {{ accountId: "acme", assetId: "{asset}", kind: VIEW }}) {{ recorded }} }}"#
        )
    };
    let (_, _, draft) = call(&s, &token, &record_for("pricing-sheet"), json!({})).await;
    let (_, _, unknown) = call(&s, &token, &record_for("no-such-asset"), json!({})).await;
    assert_eq!(
        draft["errors"][0]["extensions"], unknown["errors"][0]["extensions"],
        "{draft} {unknown}"
    );
    assert_eq!(
        draft["errors"][0]["message"]
            .as_str()
            .unwrap()
            .replace("pricing-sheet", "X"),
        unknown["errors"][0]["message"]
            .as_str()
            .unwrap()
            .replace("no-such-asset", "X"),
    );
    s.stop().await;
}

#[tokio::test]
async fn secrets_are_never_stored_by_caches_and_pages_cannot_be_framed() {
    let mut s = TestServer::demo().await;
    let admin = new_key(&s, Scope::Admin).await;
    let server = new_key(&s, Scope::Server).await;
    let (status, headers, body) = call(
        &s,
        &admin,
        r#"mutation { createApiKey(name: "site", scope: PUBLISHABLE) { key } }"#,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    let (_, _, body) = call(
        &s,
        &server,
        r#"mutation { upsertAccount(account: { id: "acme", name: "Acme" }) { id } }"#,
        json!({}),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    let (status, headers, body) = call(
        &s,
        &server,
        r#"mutation { createVisitorToken(accountId: "acme", ttlSeconds: 60) { token } }"#,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");

    for path in ["/", "/coverage", "/insights"] {
        let response = s.get(path).await;
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        let html = response.text().await.unwrap();
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        assert!(!policy.contains("unsafe-eval"), "{path}: {policy}");
        // Each inline script is allowed by its own hash, and nothing else inline.
        assert_eq!(
            policy.matches("'sha256-").count(),
            html.matches("<script>").count(),
            "{path}: {policy}"
        );
        assert!(
            !policy.contains("script-src 'self' 'unsafe-inline'"),
            "{path}"
        );
    }
    for path in ["/widget.js", "/graphiql/graphiql.min.js", "/healthz"] {
        assert_eq!(
            s.get(path).await.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn asset_urls_that_leave_the_site_are_refused_and_old_ones_cleared() {
    let mut s = TestServer::demo().await;
    let upsert = "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { created } }";
    for url in ["//evil.example/x", "/\\evil.example/x", "/\\/evil.example"] {
        let body = s
            .request(
                upsert,
                json!({ "a": [{ "id": "offsite", "title": "Off", "contentType": "EBOOK", "url": url }] }),
            )
            .await;
        let error = &body["errors"][0];
        assert_eq!(
            error["extensions"]["code"], "BAD_USER_INPUT",
            "{url}: {body}"
        );
        assert_eq!(error["extensions"]["problems"][0]["field"], "url", "{body}");
    }
    for url in ["/pricing", "/", "https://cdn.example.com/a.pdf"] {
        let data = s
            .gql(
                upsert,
                json!({ "a": [{ "id": "onsite", "title": "On", "contentType": "EBOOK", "url": url }] }),
            )
            .await;
        assert!(data["upsertAssets"].is_object(), "{url}");
    }

    // A url stored before the check existed: the upgrade clears it and the index follows.
    let database = s.database_url();
    s.stop().await;
    {
        use migrations::MigratorTrait;
        use sea_orm::ConnectionTrait;
        let db = sea_orm::Database::connect(database.as_str()).await.unwrap();
        // Back before migration 8 (and those that came after it).
        let after_seven = migrations::Migrator::migrations().len() as u32 - 7;
        migrations::Migrator::down(&db, Some(after_seven))
            .await
            .unwrap();
        db.execute_unprepared("UPDATE asset SET url = '//evil.example/x' WHERE id = 'onsite'")
            .await
            .unwrap();
        db.close().await.unwrap();
    }
    let dir = s.dir().to_owned();
    let mut again = TestServer::start_in(&dir, false).await;
    let data = again
        .gql(
            r#"{ asset(id: "onsite") { url } search(query: "On") { items { asset { id url } } } }"#,
            json!({}),
        )
        .await;
    assert!(data["asset"]["url"].is_null(), "{data}");
    for item in data["search"]["items"].as_array().unwrap() {
        assert_ne!(item["asset"]["url"], "//evil.example/x", "{data}");
    }
    again.stop().await;
    drop(s);
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TestServer::demo_with(|c| {
        c.header_timeout = Duration::from_secs(1);
        c.body_timeout = Duration::from_secs(1);
    })
    .await;
    let addr = s.url.trim_start_matches("http://").to_owned();
    // Reads what the server sends until it closes the connection, at most `patience`.
    async fn until_closed(
        stream: &mut tokio::net::TcpStream,
        patience: Duration,
    ) -> Option<String> {
        let mut got = Vec::new();
        let read = tokio::time::timeout(patience, stream.read_to_end(&mut got)).await;
        read.ok()
            .map(|_| String::from_utf8_lossy(&got).into_owned())
    }

    // Headers that never end.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: stagefit\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(
        until_closed(&mut slow, Duration::from_secs(5))
            .await
            .is_some(),
        "a connection with unfinished headers stayed open"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // A body that never arrives: 408 with a code.
    let mut stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: stagefit\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"query\":")
        .await
        .unwrap();
    let answer = until_closed(&mut stalled, Duration::from_secs(5))
        .await
        .expect("an answer, then the connection closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"TIMEOUT\""), "{answer}");

    // An idle keep-alive connection is closed too.
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: stagefit\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut idle, Duration::from_secs(5))
        .await
        .expect("closed after its idle time");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // A well-behaved client is unaffected.
    assert_eq!(s.get("/healthz").await.status(), 200);
    s.stop().await;
}

const RECOMMEND_HOME: &str = r#"query($a: AudienceInput!) {
  recommendations(audience: $a, first: 5, placement: "home") {
    recommendationId variant items { position asset { id } }
  }
}"#;
const IMPRESSIONS: &str = r#"mutation($id: ID!, $assets: [ID!]!, $positions: [Int!]) {
  recordImpressions(recommendationId: $id, assetIds: $assets, positions: $positions) { recorded }
}"#;

/// A list id's context, as JSON, and the id with its context replaced.
fn with_context(id: &str, change: impl FnOnce(&mut Value)) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (context, rest) = id.split_once('.').unwrap();
    let mut value: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(context).unwrap()).unwrap();
    change(&mut value);
    format!(
        "{}.{rest}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&value).unwrap())
    )
}

#[tokio::test]
async fn recommendation_ids_are_signed_and_reports_must_match_their_list() {
    let _machine = crate::support::quiet().await;
    let mut s = TestServer::demo().await;
    let site = new_key(&s, Scope::Publishable).await;
    let server = new_key(&s, Scope::Server).await;
    let editor = new_key(&s, Scope::Editor).await;
    let (_, _, body) = call(
        &s,
        &editor,
        r#"mutation {
            upsertRankingProfile(name: "treatment", weights: { freshness: 3 }, description: "t") { name }
            startExperiment(name: "ab", placement: "home", variants: [{ profile: "default", share: 0.5 }, { profile: "treatment", share: 0.5 }]) { name }
        }"#,
        json!({}),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    let (_, _, body) = call(
        &s,
        &site,
        RECOMMEND_HOME,
        json!({ "a": { "visitorId": "v-1" } }),
    )
    .await;
    let list = body["data"]["recommendations"].clone();
    let id = list["recommendationId"].as_str().unwrap().to_owned();
    let items: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["asset"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(items.len(), 5, "{body}");
    let other_variant = if list["variant"] == "default" {
        "treatment"
    } else {
        "default"
    };
    let not_shown = crate::support::demo_records()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .find(|a| !items.contains(a))
        .unwrap();

    let refused = |body: &Value| {
        body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            && body["data"]
                .as_object()
                .is_none_or(|d| d.values().all(Value::is_null))
    };
    // Forgeries: another variant, another account, the unsigned shape of before, a
    // signature cut short, and 700 KB of context.
    let forged = [
        with_context(&id, |c| {
            c["variant"] = json!(other_variant);
            c["profile"] = json!(other_variant);
        }),
        with_context(&id, |c| c["at"] = json!(4_102_444_800i64)),
        format!("{}.0123456789abcdef", id.split('.').next().unwrap()),
        id[..id.len() - 2].to_owned(),
        with_context(&id, |c| c["query"] = json!("x".repeat(700_000))),
    ];
    for bad in &forged {
        let started = Instant::now();
        let (_, _, body) = call(
            &s,
            &site,
            IMPRESSIONS,
            json!({ "id": bad, "assets": items }),
        )
        .await;
        assert!(refused(&body), "{body}");
        assert!(started.elapsed() < QUICK);
    }
    // The genuine id with assets it did not show, or at other positions.
    for (assets, positions) in [
        (vec!["no-such-asset".to_owned()], None),
        (vec![not_shown.clone()], None),
        (vec![items[0].clone()], Some(vec![2])),
        (vec![items[1].clone(), not_shown.clone()], None),
    ] {
        let (_, _, body) = call(
            &s,
            &site,
            IMPRESSIONS,
            json!({ "id": id, "assets": assets, "positions": positions }),
        )
        .await;
        assert!(refused(&body), "{body}");
    }
    // The genuine report counts, with positions given or found in the list.
    let (_, _, body) = call(
        &s,
        &site,
        IMPRESSIONS,
        json!({ "id": id, "assets": [items[2], items[0]] }),
    )
    .await;
    assert_eq!(body["data"]["recordImpressions"]["recorded"], 2, "{body}");

    // Ids signed with the deployment's own secret, dated in the future or past the
    // retention, are refused too.
    let secret: String = {
        use sea_orm::{ConnectionTrait, Statement};
        let db = sea_orm::Database::connect(s.database_url().as_str())
            .await
            .unwrap();
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT value FROM server_secret WHERE name = 'recommendation-ids'",
            ))
            .await
            .unwrap()
            .unwrap();
        let value: String = row.try_get("", "value").unwrap();
        db.close().await.unwrap();
        value
    };
    let signer = stagefit::domain::ListSigner::new(secret.as_bytes());
    let context = stagefit::domain::ListContext::from_id(&id).unwrap();
    let now = chrono::Utc::now().timestamp();
    for at in [now + 86_400 * 365 * 70, now - 86_400 * 200] {
        let dated = signer.issue(
            &stagefit::domain::ListContext {
                at,
                ..context.clone()
            },
            items.iter().map(String::as_str),
            "0123456789abcdef",
        );
        let (_, _, body) = call(
            &s,
            &site,
            IMPRESSIONS,
            json!({ "id": dated, "assets": items }),
        )
        .await;
        assert!(refused(&body), "{at}: {body}");
    }
    // ... and the same signer's id at the list's own time is taken: the checks above were
    // the dates, not the signer.
    let same = signer.issue(
        &context,
        items.iter().map(String::as_str),
        "fedcba9876543210",
    );
    let (_, _, body) = call(
        &s,
        &site,
        IMPRESSIONS,
        json!({ "id": same, "assets": [items[4]] }),
    )
    .await;
    assert_eq!(body["data"]["recordImpressions"]["recorded"], 1, "{body}");

    // Nothing the forgeries sent was written: the experiment counts 3 impressions.
    let (_, _, body) = call(
        &s,
        &editor,
        r#"{ experiment(name: "ab") { variants { profile impressions clicks } } }"#,
        json!({}),
    )
    .await;
    let total: u64 = body["data"]["experiment"]["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["impressions"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 3, "{body}");

    // A click attributed to a list must name an asset of it, at its position.
    let (_, _, body) = call(
        &s,
        &server,
        r#"mutation { upsertAccount(account: { id: "acme", name: "Acme" }) { id } }"#,
        json!({}),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    let engage = r#"mutation($e: EngagementInput!) { recordEngagement(event: $e) { recorded } }"#;
    for (asset, position, recommendation) in [
        (not_shown.as_str(), Some(1), id.clone()),
        (items[0].as_str(), Some(3), id.clone()),
        (items[0].as_str(), Some(1), forged[0].clone()),
    ] {
        let (_, _, body) = call(
            &s,
            &server,
            engage,
            json!({ "e": { "accountId": "acme", "assetId": asset, "kind": "VIEW",
                           "recommendationId": recommendation, "position": position } }),
        )
        .await;
        assert!(refused(&body), "{body}");
    }
    let (_, _, body) = call(
        &s,
        &server,
        engage,
        json!({ "e": { "accountId": "acme", "assetId": items[0], "kind": "VIEW",
                       "recommendationId": id, "position": 1 } }),
    )
    .await;
    assert_eq!(body["data"]["recordEngagement"]["recorded"], 1, "{body}");
    s.stop().await;
}

/// `stagefit_key_lookups_total` of this process.
fn key_lookups() -> f64 {
    let text = stagefit::metrics::handle().render();
    text.lines()
        .filter(|l| l.starts_with("stagefit_key_lookups_total"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_counted_not_written_one_by_one_and_failing_addresses_stop_looking_up() {
    use futures::StreamExt;
    let mut s = TestServer::demo_with(|c| c.trusted_proxies = vec!["127.0.0.1".to_owned()]).await;
    let admin = new_key(&s, Scope::Admin).await;
    let site = new_key(&s, Scope::Publishable).await;
    let attacker = "203.0.113.7";
    let made_up: Vec<String> = (0..2_000u32)
        .map(|i| {
            let mut random = [0u8; stagefit::domain::KEY_RANDOM_BYTES];
            random[..4].copy_from_slice(&i.to_be_bytes());
            random[4] = 0x5a;
            stagefit::domain::new_key(Scope::Server, random)
        })
        .collect();
    let lookups_before = key_lookups();
    let url = format!("{}/graphql", s.url);
    let statuses: Vec<u16> = futures::stream::iter(made_up.iter())
        .map(|key| {
            let request = s
                .client()
                .post(&url)
                .bearer_auth(key)
                .header("x-forwarded-for", attacker)
                .json(&json!({ "query": "{ __typename }" }))
                .send();
            async move { request.await.unwrap().status().as_u16() }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let unauthorized = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(unauthorized + limited, 2_000, "{statuses:?}");
    assert!(limited > 1_500, "{unauthorized} 401, {limited} 429");
    // Each 401 was one lookup at most; each 429 none (other tests share the counter).
    let lookups = key_lookups() - lookups_before;
    assert!(
        lookups < 500.0,
        "{lookups} key lookups for 2,000 made-up keys"
    );

    // Another address with a good key is not held back, nor is the blocked address's
    // good key once cached... but a good key the address never sent waits its turn.
    let response = s
        .client()
        .post(&url)
        .bearer_auth(&site)
        .header("x-forwarded-for", "198.51.100.1")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // A mutation refused with a name of 50,000 characters and control characters.
    let long_field = "f".repeat(50_000);
    let response = s
        .client()
        .post(&url)
        .bearer_auth(&site)
        .json(&json!({ "query": format!("mutation {{ {long_field} upsertAssets(assets: []) {{ created }} }}") }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // The trail counts them per address, outcome and minute.
    let started = Instant::now();
    let rows = loop {
        let (_, _, body) = call(
            &s,
            &admin,
            "{ auditLog(first: 500) { operation clientAddress status outcome count } }",
            json!({}),
        )
        .await;
        let rows = body["data"]["auditLog"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let counted: i64 = rows
            .iter()
            .filter(|r| r["clientAddress"] == attacker)
            .map(|r| r["count"].as_i64().unwrap())
            .sum();
        if counted == 2_000 && rows.iter().any(|r| r["status"] == 403) {
            break rows;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let attacker_rows: Vec<&Value> = rows
        .iter()
        .filter(|r| r["clientAddress"] == attacker)
        .collect();
    assert!(attacker_rows.len() <= 4, "{attacker_rows:?}");
    let forbidden = rows.iter().find(|r| r["status"] == 403).unwrap();
    let operation = forbidden["operation"].as_str().unwrap();
    assert!(
        operation.chars().count() <= stagefit::domain::MAX_AUDITED_OPERATION + 3,
        "{}",
        operation.len()
    );
    assert!(!operation.contains('\n'));
    s.stop().await;
}

/// What a second attack on this hardening found, each refused now: a cached answer's
/// aliased string renewed as an id (a panic, and a forgery), a visitor token crediting a
/// list shown to nobody, errors multiplied by operations, work the budget did not see,
/// drafts told apart through dismissals and industries, a 405 without a code.
#[tokio::test]
async fn what_the_second_attack_found_is_refused() {
    let mut s = TestServer::demo().await;
    let site = new_key(&s, Scope::Publishable).await;
    let server = new_key(&s, Scope::Server).await;
    let editor = new_key(&s, Scope::Editor).await;
    let code = |body: &Value| {
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .map(str::to_owned)
    };

    // A cached answer holding other text under the name `recommendationId`: left alone, not
    // cut (a string with a two-byte character 40 bytes from its end panicked), not signed
    // (a title shaped like an id was).
    let (_, _, list) = call(&s, &site, RECOMMEND_HOME, json!({ "a": {} })).await;
    let genuine = list["data"]["recommendations"]["recommendationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let fake = with_context(&genuine, |c| c["variant"] = json!("forged"));
    let (_, _, body) = call(
        &s,
        &editor,
        "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { created } }",
        json!({ "a": [
            { "id": "shaped-like-an-id", "title": fake, "summary": "aliasprobe one", "contentType": "EBOOK" },
            { "id": "unicode-title", "title": format!("{}é{}", "a".repeat(30), "b".repeat(39)), "summary": "aliasprobe two", "contentType": "EBOOK" },
        ] }),
    )
    .await;
    assert_eq!(body["data"]["upsertAssets"]["created"], 2, "{body}");
    let query =
        r#"{ search(query: "aliasprobe") { items { asset { id recommendationId: title } } } }"#;
    let (_, first_headers, first) = call(&s, &site, query, json!({})).await;
    let (status, headers, again) = call(&s, &site, query, json!({})).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(first_headers["x-cache"], "miss");
    assert_eq!(headers["x-cache"], "hit");
    assert_eq!(first, again, "a cached answer's aliased text changed");
    assert_eq!(
        first["data"]["search"]["items"].as_array().unwrap().len(),
        2,
        "{first}"
    );
    let (_, _, body) = call(
        &s,
        &site,
        IMPRESSIONS,
        json!({ "id": fake, "assets": ["pricing-sheet"] }),
    )
    .await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");

    // A visitor token may credit clicks to its own account's lists only.
    call(
        &s,
        &server,
        r#"mutation { upsertAccount(account: { id: "acme", name: "Acme" }) { id } }"#,
        json!({}),
    )
    .await;
    let token = call(
        &s,
        &server,
        r#"mutation { createVisitorToken(accountId: "acme", ttlSeconds: 600) { token } }"#,
        json!({}),
    )
    .await
    .2["data"]["createVisitorToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let first_item = list["data"]["recommendations"]["items"][0]["asset"]["id"].clone();
    let (status, _, body) = call(
        &s,
        &token,
        r#"mutation($e: EngagementInput!) { recordEngagement(event: $e) { recorded } }"#,
        json!({ "e": { "accountId": "acme", "assetId": first_item, "kind": "COMPLETE",
                       "recommendationId": genuine, "position": 1 } }),
    )
    .await;
    assert_eq!(
        (status, code(&body).as_deref()),
        (403, Some("FORBIDDEN")),
        "{body}"
    );

    // Errors multiplied by operations: 140 operations sharing a fragment of undefined
    // variables; and many variables.
    let vars: String = (0..60).map(|i| format!("$v{i},")).collect();
    let ops: String = (0..140)
        .map(|i| format!("query o{i} {{ ...F }} "))
        .collect();
    let document = format!("{ops} fragment F on QueryRoot {{ asset(id: [{vars}]) {{ id }} }}");
    let (_, _, body) = call(&s, &site, &document, json!({})).await;
    assert_eq!(code(&body).as_deref(), Some("QUERY_TOO_COMPLEX"), "{body}");
    let many: String = (0..300).map(|i| format!("$v{i},")).collect();
    let (_, _, body) = call(
        &s,
        &site,
        &format!("{{ asset(id: [{many}]) {{ id }} }}"),
        json!({}),
    )
    .await;
    assert_eq!(code(&body).as_deref(), Some("QUERY_TOO_COMPLEX"), "{body}");
    // Within the limits, an answer carries 100 errors and says how many more there were.
    let fields: String = (0..300).map(|i| format!("f{i} ")).collect();
    let (_, _, body) = call(&s, &site, &format!("{{ {fields} }}"), json!({})).await;
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 101, "{}", errors.len());
    assert_eq!(errors[100]["message"], "200 more errors left out");
    assert_eq!(errors[100]["extensions"]["code"], "BAD_USER_INPUT");

    // Work the budget did not see: industries, long pages, lookups by id.
    for document in [
        format!(
            "{{ {} }}",
            (0..13)
                .map(|i| format!("t{i}: taxonomy {{ industries {{ slug }} }} "))
                .collect::<String>()
        ),
        format!(
            "{{ {} }}",
            (0..3)
                .map(|i| format!(
                    "r{i}: recommendations(audience: {{}}, first: 100) {{ items {{ score }} }} "
                ))
                .collect::<String>()
        ),
        format!(
            "{{ {} }}",
            (0..130)
                .map(|i| format!("a{i}: asset(id: \"pricing-sheet\") {{ id }} "))
                .collect::<String>()
        ),
    ] {
        let (_, _, body) = call(&s, &site, &document, json!({})).await;
        assert_eq!(code(&body).as_deref(), Some("QUERY_TOO_COMPLEX"), "{body}");
    }

    // Drafts: dismissing one answers as dismissing no asset; an industry only a draft
    // names is not in the taxonomy below an editor key.
    let (_, _, body) = call(
        &s,
        &editor,
        "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { created } }",
        json!({ "a": [{ "id": "stealth-draft", "title": "Unreleased", "contentType": "EBOOK",
                        "status": "draft", "industries": ["stealth-industry"] }] }),
    )
    .await;
    assert_eq!(body["data"]["upsertAssets"]["created"], 1, "{body}");
    let dismiss =
        |asset: &str| format!(r#"mutation {{ dismissRecommendation(assetId: "{asset}") }}"#);
    let (_, _, draft) = call(&s, &token, &dismiss("stealth-draft"), json!({})).await;
    let (_, _, unknown) = call(&s, &token, &dismiss("no-such-asset"), json!({})).await;
    assert_eq!(code(&draft), code(&unknown), "{draft} {unknown}");
    assert_eq!(code(&draft).as_deref(), Some("NOT_FOUND"));
    let industries = "{ taxonomy { industries { slug } } }";
    let (_, _, public) = call(&s, &site, industries, json!({})).await;
    let (_, _, team) = call(&s, &editor, industries, json!({})).await;
    assert!(!public.to_string().contains("stealth-industry"), "{public}");
    assert!(team.to_string().contains("stealth-industry"), "{team}");

    // Other methods on /graphql: 405 with a code.
    let response = s
        .client()
        .put(format!("{}/graphql", s.url))
        .bearer_auth(&site)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, POST");
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    s.stop().await;
}
