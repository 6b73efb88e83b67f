//! An account's activity over real HTTP: the committee's reading, the share links opened,
//! the stage's moves with their cause (the CRM, then reading), and per contact the next
//! send, which skips what was read or already shared.

use serde_json::{Value, json};

use crate::support::TestServer;

const ACTIVITY: &str = r#"query($id: ID!, $since: DateTime) {
  accountActivity(accountId: $id, since: $since) {
    account { id journeyStage stageSource }
    reads { contactId assetId assetTitle kind occurredAt }
    linksOpened { assetId contactId opens }
    stageChanges { from to source causeAssetId at }
    contacts { contact { id role } reads lastReadAt recommendationId
               nextSend { position asset { id } } }
  } }"#;

const DECISION_READS: [&str; 4] = [
    "case-study-payments-psp-matching",
    "demo-live-demo",
    "pricing-sheet",
    "roi-business-case-template",
];

async fn activity(s: &TestServer) -> Value {
    s.gql(ACTIVITY, json!({ "id": "acme" })).await["accountActivity"].clone()
}

fn next_send(activity: &Value, contact: &str) -> (String, Value) {
    let c = activity["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["contact"]["id"] == contact)
        .unwrap();
    (
        c["nextSend"]["asset"]["id"].as_str().unwrap().to_owned(),
        c["recommendationId"].clone(),
    )
}

#[tokio::test]
async fn an_accounts_activity_shows_reading_links_stage_moves_and_what_to_send_next() {
    let _machine = crate::support::busy().await;
    let mut s = TestServer::demo().await;
    s.gql(
        r#"mutation {
            m: setStageMapping(preset: SALESFORCE) { entries { crmStage } }
            a: upsertAccount(account: { id: "acme", name: "Acme", crmStage: "Needs Analysis" }) { id }
            cfo: upsertContact(contact: { id: "acme-cfo", accountId: "acme", name: "C", role: FINANCE }) { id }
            cto: upsertContact(contact: { id: "acme-cto", accountId: "acme", name: "T", role: TECHNICAL_INTEGRATOR }) { id }
        }"#,
        json!({}),
    )
    .await;
    // The CFO opens a link a seller sent; the CTO reads decision content.
    let link = s
        .gql(
            r#"mutation { createShareLink(assetId: "pricing-sheet", contactId: "acme-cfo") { url } }"#,
            json!({}),
        )
        .await["createShareLink"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = &link[link.find("/l/").unwrap()..];
    let opened = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
        )
        .build()
        .unwrap()
        .get(format!("{}{path}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 303);
    let events: Vec<Value> = DECISION_READS
        .iter()
        .map(|a| json!({ "accountId": "acme", "contactId": "acme-cto", "assetId": a, "kind": "COMPLETE" }))
        .collect();
    s.gql(
        "mutation($e: [EngagementInput!]!) { recordEngagements(events: $e) { recorded } }",
        json!({ "e": events }),
    )
    .await;

    let response = s
        .client()
        .post(format!("{}/graphql", s.url))
        .json(&json!({ "query": ACTIVITY, "variables": { "id": "acme" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "private, no-store");
    let a = response.json::<Value>().await.unwrap()["data"]["accountActivity"].clone();
    assert_eq!(a["account"]["journeyStage"], "DECISION", "{a:#}");
    assert_eq!(a["account"]["stageSource"], "READING");
    // Five events: the CFO's view through the link and the CTO's four.
    let reads = a["reads"].as_array().unwrap();
    assert_eq!(reads.len(), 5, "{a:#}");
    let cfo_read = reads.iter().find(|r| r["contactId"] == "acme-cfo").unwrap();
    assert_eq!(cfo_read["assetId"], "pricing-sheet");
    assert_eq!(cfo_read["kind"], "VIEW");
    assert_eq!(cfo_read["assetTitle"], "Tallyline pricing and packaging");
    assert_eq!(
        a["linksOpened"],
        json!([{ "assetId": "pricing-sheet", "contactId": "acme-cfo", "opens": 1 }])
    );
    // The CRM's stage first, then reading moved it on, naming what moved it.
    let moves = a["stageChanges"].as_array().unwrap();
    assert_eq!(moves.len(), 2, "{a:#}");
    assert_eq!(moves[0]["from"], "CONSIDERATION");
    assert_eq!(moves[0]["to"], "DECISION");
    assert_eq!(moves[0]["source"], "READING");
    let cause = moves[0]["causeAssetId"].as_str().unwrap();
    assert!(DECISION_READS.contains(&cause), "{cause}");
    assert_eq!(moves[1]["from"], Value::Null);
    assert_eq!(moves[1]["to"], "CONSIDERATION");
    assert_eq!(moves[1]["source"], "CRM");
    // Per contact, in committee order: their reads and something neither read nor sent.
    let contacts = a["contacts"].as_array().unwrap();
    let roles: Vec<&str> = contacts
        .iter()
        .map(|c| c["contact"]["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["TECHNICAL_INTEGRATOR", "FINANCE"],
        "the taxonomy's role order"
    );
    assert_eq!(contacts[0]["reads"], 4);
    assert_eq!(contacts[1]["reads"], 1);
    let (cto_next, list) = next_send(&a, "acme-cto");
    assert!(!DECISION_READS.contains(&cto_next.as_str()), "{cto_next}");
    let (cfo_next, _) = next_send(&a, "acme-cfo");
    assert_ne!(cfo_next, "pricing-sheet");

    // Sent to the CTO from that list: their next send moves on to something else.
    s.gql(
        "mutation($a: ID!, $r: ID) { createShareLink(assetId: $a, contactId: \"acme-cto\", recommendationId: $r) { id } }",
        json!({ "a": cto_next, "r": list }),
    )
    .await;
    let (after, _) = next_send(&activity(&s).await, "acme-cto");
    assert_ne!(after, cto_next);

    // Nothing since a later time; an unknown account is NOT_FOUND.
    let later = s
        .gql(
            ACTIVITY,
            json!({ "id": "acme", "since": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339() }),
        )
        .await["accountActivity"]
        .clone();
    assert_eq!(later["reads"], json!([]));
    assert_eq!(later["linksOpened"], json!([]));
    assert_eq!(later["stageChanges"], json!([]));
    let missing = s.gql_error(ACTIVITY, json!({ "id": "nobody" })).await;
    assert_eq!(missing["extensions"]["code"], "NOT_FOUND", "{missing}");
    s.stop().await;
}
