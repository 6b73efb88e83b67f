//! Tracked share links over real HTTP: made for a contact from a recommendation list,
//! opened by a person (a view of the contact, a click on the list, a 303 to the asset) and
//! by mail scanners and unfurlers (counted apart, never views), tampered, revoked.

use serde_json::{Value, json};

use crate::support::TestServer;

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// Opens `path` as a browser would, without following the redirect: status, location, body.
async fn open(
    s: &TestServer,
    method: reqwest::Method,
    path: &str,
    agent: Option<&str>,
) -> (u16, Option<String>, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut request = client.request(method, format!("{}{path}", s.url));
    if let Some(agent) = agent {
        request = request.header("user-agent", agent);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (status, location, response.text().await.unwrap())
}

async fn links(s: &TestServer, contact: &str) -> Value {
    s.gql(
        r#"query($c: ID!) { shareLinks(contactId: $c) { id assetId opens scans firstOpenedAt lastOpenedAt revokedAt url } }"#,
        json!({ "c": contact }),
    )
    .await["shareLinks"]
        .clone()
}

#[tokio::test]
async fn a_share_link_counts_a_persons_open_as_a_view_and_a_scanners_as_a_scan() {
    let mut s =
        TestServer::demo_with(|c| c.public_url = Some("https://content.example.com/".into())).await;
    s.gql(
        r#"mutation {
            a: upsertAccount(account: { id: "acme", name: "Acme", industry: "retail" }) { id }
            c: upsertContact(contact: { id: "acme-cfo", accountId: "acme", name: "C", role: FINANCE }) { id }
        }"#,
        json!({}),
    )
    .await;
    let list = s
        .gql(
            r#"{ recommendations(audience: { accountId: "acme", contactId: "acme-cfo" }, first: 3) {
                   recommendationId items { asset { id url } } } }"#,
            json!({}),
        )
        .await["recommendations"]
        .clone();
    let asset = list["items"][1]["asset"]["id"].as_str().unwrap().to_owned();
    let url = list["items"][1]["asset"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let create = r#"mutation($a: ID!, $c: ID!, $r: ID, $d: Int) {
        createShareLink(assetId: $a, contactId: $c, recommendationId: $r, expiresInDays: $d) {
          id url token accountId opens scans expiresAt } }"#;
    let made = s
        .gql(
            create,
            json!({ "a": asset, "c": "acme-cfo", "r": list["recommendationId"] }),
        )
        .await["createShareLink"]
        .clone();
    let token = made["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 22, "{made}");
    assert_eq!(
        made["url"],
        format!("https://content.example.com/l/{token}"),
        "{made}"
    );
    assert_eq!(made["accountId"], "acme");
    let path = format!("/l/{token}");

    // Scanners first, as mail arrives: a HEAD, an unfurler, a security gateway, no agent.
    for (method, agent) in [
        (reqwest::Method::HEAD, Some(CHROME)),
        (
            reqwest::Method::GET,
            Some("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"),
        ),
        (
            reqwest::Method::GET,
            Some("Mozilla/5.0 (compatible; Proofpoint URL Defense)"),
        ),
        (reqwest::Method::GET, None),
    ] {
        let (status, location, _) = open(&s, method, &path, agent).await;
        assert_eq!(
            (status, location.as_deref()),
            (303, Some(url.as_str())),
            "{agent:?}"
        );
    }
    let seen = &links(&s, "acme-cfo").await[0];
    assert_eq!(
        (&seen["opens"], &seen["scans"]),
        (&json!(0), &json!(4)),
        "{seen}"
    );
    assert!(
        seen["firstOpenedAt"].is_null() && seen["url"].is_null(),
        "{seen}"
    );

    // The person: one view of the contact, one click on the list, sent on to the asset.
    let (status, location, _) = open(&s, reqwest::Method::GET, &path, Some(CHROME)).await;
    assert_eq!((status, location.as_deref()), (303, Some(url.as_str())));
    let seen = &links(&s, "acme-cfo").await[0];
    assert_eq!(
        (&seen["opens"], &seen["scans"]),
        (&json!(1), &json!(4)),
        "{seen}"
    );
    assert!(seen["firstOpenedAt"].is_string(), "{seen}");
    let account = s
        .gql(
            r#"{ account(id: "acme") { engagements { items { assetId contactId kind } } } }"#,
            json!({}),
        )
        .await["account"]["engagements"]["items"]
        .clone();
    assert_eq!(
        account,
        json!([{ "assetId": asset, "contactId": "acme-cfo", "kind": "VIEW" }])
    );
    let perf = s
        .gql(
            "{ assetPerformance(orderBy: CLICKS, first: 1) { items { asset { id } clicks } } }",
            json!({}),
        )
        .await["assetPerformance"]["items"][0]
        .clone();
    assert_eq!(perf, json!({ "asset": { "id": asset }, "clicks": 1 }));

    // A tampered token and a revoked link get a plain page, no trace.
    let mut tampered = token.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = format!("/l/{}", String::from_utf8(tampered).unwrap());
    for bad in [
        tampered.as_str(),
        "/l/x",
        &format!("/l/{}", "y".repeat(5_000)),
    ] {
        let (status, location, body) = open(&s, reqwest::Method::GET, bad, Some(CHROME)).await;
        assert_eq!((status, location), (404, None), "{bad}");
        assert!(body.contains("expired or is no longer valid"), "{body}");
    }
    let revoked = s
        .gql(
            "mutation($id: ID!) { revokeShareLink(id: $id) { revokedAt opens } }",
            json!({ "id": made["id"] }),
        )
        .await["revokeShareLink"]
        .clone();
    assert!(revoked["revokedAt"].is_string(), "{revoked}");
    let (status, _, body) = open(&s, reqwest::Method::GET, &path, Some(CHROME)).await;
    assert_eq!(status, 404);
    assert!(body.contains("Ask the sender for a new one"), "{body}");

    // Refused: no such contact, a life out of bounds, a list shown to another account.
    for (vars, code) in [
        (json!({ "a": asset, "c": "nobody" }), "NOT_FOUND"),
        (
            json!({ "a": asset, "c": "acme-cfo", "d": 0 }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "a": asset, "c": "acme-cfo", "d": 366 }),
            "BAD_USER_INPUT",
        ),
        (json!({ "a": "not-an-asset", "c": "acme-cfo" }), "NOT_FOUND"),
    ] {
        let err = s.gql_error(create, vars.clone()).await;
        assert_eq!(err["extensions"]["code"], code, "{vars}: {err}");
    }
    s.gql(
        r#"mutation {
            a: upsertAccount(account: { id: "globex", name: "Globex", industry: "retail" }) { id }
            c: upsertContact(contact: { id: "globex-cto", accountId: "globex", name: "T" }) { id }
        }"#,
        json!({}),
    )
    .await;
    let err = s
        .gql_error(
            create,
            json!({ "a": asset, "c": "globex-cto", "r": list["recommendationId"] }),
        )
        .await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err}");
    // Erasing the account erases its links.
    s.gql(
        r#"mutation { eraseAccount(id: "acme") { accountId } }"#,
        json!({}),
    )
    .await;
    assert_eq!(links(&s, "acme-cfo").await, json!([]));
    s.stop().await;
}
