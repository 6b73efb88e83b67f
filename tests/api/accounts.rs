//! Accounts, contacts and engagement over HTTP: audience resolution and its sources,
//! consumed assets left out, stage inference on scripted histories, popularity among
//! similar accounts, the committee view, validation, idempotency and erasure.

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::recommend::{RECOMMEND, recommend};
use crate::support::{TestServer, ids};

const UPSERT_ACCOUNT: &str = r#"
mutation($account: AccountInput!) {
  upsertAccount(account: $account) { id stage journeyStage journeyStageSource }
}"#;

const UPSERT_CONTACT: &str = r#"
mutation($contact: ContactInput!) { upsertContact(contact: $contact) { id role } }"#;

const RECORD: &str = r#"
mutation($events: [EngagementInput!]!) {
  recordEngagements(events: $events) { recorded duplicates }
}"#;

const ACCOUNT: &str = r#"
query($id: ID!) {
  account(id: $id) {
    id stage journeyStage journeyStageSource engagementCount consumedAssetIds
    contacts { id role }
    inferredStage { stage confidence latestEvidenceAt
                    evidence { assetId kind weight stages } stageWeights { stage weight } }
    recentEngagements { assetId kind contactId }
  }
}"#;

pub async fn account(s: &TestServer, id: &str, industry: Option<&str>, stage: Option<&str>) {
    s.gql(
        UPSERT_ACCOUNT,
        json!({ "account": { "id": id, "name": format!("{id} Inc."), "industry": industry,
                             "stage": stage, "tier": "enterprise" } }),
    )
    .await;
}

pub async fn contact(s: &TestServer, id: &str, account: &str, role: &str) {
    s.gql(
        UPSERT_CONTACT,
        json!({ "contact": { "id": id, "accountId": account, "name": id, "role": role } }),
    )
    .await;
}

fn days_ago(days: i64) -> String {
    (Utc::now() - Duration::days(days)).to_rfc3339()
}

/// Records `kind` on each asset by `account` (and `contact`), a day apart, newest first.
pub async fn read(
    s: &TestServer,
    account: &str,
    contact: Option<&str>,
    kind: &str,
    assets: &[&str],
) {
    let events: Vec<Value> = assets
        .iter()
        .enumerate()
        .map(|(i, a)| {
            json!({ "accountId": account, "contactId": contact, "assetId": a, "kind": kind,
                    "occurredAt": days_ago(i as i64 + 1) })
        })
        .collect();
    let receipt = s.gql(RECORD, json!({ "events": events })).await;
    assert_eq!(
        receipt["recordEngagements"],
        json!({ "recorded": assets.len(), "duplicates": 0 })
    );
}

fn item_ids(list: &Value) -> Vec<String> {
    ids(&list["items"], &["asset", "id"])
}

fn has(item: &Value, key: &str, value: &str) -> bool {
    item["asset"][key]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v == value)
}

fn serves_everyone(item: &Value) -> bool {
    item["asset"]["roles"].as_array().unwrap().is_empty()
}

const CONSIDERATION_READS: [&str; 6] = [
    "guide-buyers-guide-payments-platforms",
    "roi-calculator-payments",
    "whitepaper-fee-audit",
    "compare-build-vs-buy",
    "guide-technical-evaluation-checklist",
    "analyst-report-payments-wave",
];

#[tokio::test]
async fn an_account_never_gets_back_what_it_read_and_its_roles_get_different_lists() {
    let mut s = TestServer::demo().await;
    account(
        &s,
        "northwind",
        Some("financial-services/payments"),
        Some("CONSIDERATION"),
    )
    .await;
    contact(&s, "nw-ceo", "northwind", "DECISION_MAKER").await;
    contact(&s, "nw-dev", "northwind", "TECHNICAL_INTEGRATOR").await;
    // Read before the CRM's stage was set (just now): the CRM stays the authority.
    read(
        &s,
        "northwind",
        Some("nw-ceo"),
        "COMPLETE",
        &CONSIDERATION_READS[..3],
    )
    .await;
    read(
        &s,
        "northwind",
        Some("nw-dev"),
        "VIEW",
        &CONSIDERATION_READS[3..],
    )
    .await;

    let mut lists = Vec::new();
    for who in ["nw-ceo", "nw-dev"] {
        let r = recommend(
            &s,
            json!({ "audience": { "accountId": "northwind", "contactId": who }, "first": 20 }),
        )
        .await;
        let got = item_ids(&r);
        assert_eq!(got.len(), 20);
        for read in CONSIDERATION_READS {
            assert!(!got.iter().any(|g| g == read), "{who} got back {read}");
        }
        assert_eq!(r["audience"]["stage"], "CONSIDERATION");
        assert_eq!(r["audience"]["stageSource"], "ACCOUNT");
        assert_eq!(r["audience"]["roleSource"], "CONTACT");
        assert_eq!(r["audience"]["industry"], "financial-services/payments");
        assert_eq!(r["audience"]["industrySource"], "ACCOUNT");
        lists.push(r);
    }
    // Each role's top five serve that role (or everyone).
    for (list, role) in lists.iter().zip(["DECISION_MAKER", "TECHNICAL_INTEGRATOR"]) {
        for item in list["items"].as_array().unwrap().iter().take(5) {
            assert!(
                has(item, "roles", role) || serves_everyone(item),
                "{role} got {}",
                item["asset"]["id"]
            );
        }
    }
    let (ceo, dev) = (item_ids(&lists[0]), item_ids(&lists[1]));
    assert_ne!(ceo[..5], dev[..5]);
    assert!(
        ceo[..5].iter().filter(|id| dev[..5].contains(id)).count() <= 1,
        "{ceo:?} vs {dev:?}"
    );

    // Asked for, what was read comes back: the buyer guide fits the CEO best of all.
    let again = recommend(
        &s,
        json!({ "audience": { "contactId": "nw-ceo", "includeConsumed": true }, "first": 20 }),
    )
    .await;
    assert!(item_ids(&again).contains(&CONSIDERATION_READS[0].to_owned()));
    // The same as an argument, as on Account.recommendations; both given must agree.
    let as_argument = s
        .gql(
            r#"query($a: AudienceInput!) { recommendations(audience: $a, first: 20, includeConsumed: true) {
                 items { asset { id } } } }"#,
            json!({ "a": { "contactId": "nw-ceo" } }),
        )
        .await["recommendations"]
        .clone();
    assert_eq!(item_ids(&as_argument), item_ids(&again));
    let err = s
        .gql_error(
            r#"{ recommendations(audience: { contactId: "nw-ceo", includeConsumed: false },
                                 includeConsumed: true) { items { score } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err}");

    // Built from the account's history: never stored by the response cache.
    let response = s
        .client()
        .post(format!("{}/graphql", s.url))
        .json(&json!({ "query": RECOMMEND,
                       "variables": { "audience": { "accountId": "northwind" } } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "private, no-store");
    assert_eq!(response.headers()["x-cache"], "bypass");
    s.stop().await;
}

#[tokio::test]
async fn an_account_without_a_crm_stage_that_completed_decision_assets_is_inferred_decision() {
    let mut s = TestServer::demo().await;
    account(&s, "globex", Some("financial-services/payments"), None).await;
    contact(&s, "gx-cfo", "globex", "FINANCE").await;
    let before = s.gql(ACCOUNT, json!({ "id": "globex" })).await["account"].clone();
    assert_eq!(before["journeyStage"], Value::Null);
    assert_eq!(before["inferredStage"], Value::Null);
    let cold = recommend(&s, json!({ "audience": { "accountId": "globex" } })).await;
    assert_eq!(cold["audience"]["stageSource"], "DEFAULT");
    assert_eq!(cold["audience"]["stage"], "AWARENESS");

    let decision_reads = [
        "case-study-payments-psp-matching",
        "demo-live-demo",
        "pricing-sheet",
        "roi-business-case-template",
    ];
    read(&s, "globex", Some("gx-cfo"), "COMPLETE", &decision_reads).await;
    // An older glance at awareness content does not outweigh them.
    s.gql(
        RECORD,
        json!({ "events": [{ "accountId": "globex", "assetId": "blog-cross-border-fees",
                              "kind": "VIEW", "occurredAt": days_ago(40) }] }),
    )
    .await;

    // Reflected at once: no waiting for a refresh.
    let after = s.gql(ACCOUNT, json!({ "id": "globex" })).await["account"].clone();
    assert_eq!(after["journeyStage"], "DECISION");
    assert_eq!(after["journeyStageSource"], "INFERRED");
    assert_eq!(after["engagementCount"], 5);
    let inferred = &after["inferredStage"];
    assert_eq!(inferred["stage"], "DECISION");
    assert!(inferred["confidence"].as_f64().unwrap() > 0.7, "{inferred}");
    let evidence = ids(&inferred["evidence"], &["assetId"]);
    assert_eq!(evidence.len(), 5);
    assert!(
        decision_reads
            .iter()
            .all(|r| evidence.contains(&r.to_string()))
    );
    assert_eq!(inferred["evidence"][4]["assetId"], "blog-cross-border-fees");

    let r = recommend(
        &s,
        json!({ "audience": { "contactId": "gx-cfo" }, "first": 5 }),
    )
    .await;
    assert_eq!(r["audience"]["stage"], "DECISION");
    assert_eq!(r["audience"]["stageSource"], "INFERRED");
    assert_eq!(r["audience"]["role"], "FINANCE");
    for (rank, item) in r["items"].as_array().unwrap().iter().enumerate() {
        // The best fits are decision content; the next stage may follow.
        assert!(
            rank >= 3 || has(item, "stages", "DECISION"),
            "{}",
            item["asset"]["id"]
        );
        assert!(!decision_reads.contains(&item["asset"]["id"].as_str().unwrap()));
    }

    // The next read is left out of the very next answer.
    let top = item_ids(&r)[0].clone();
    read(&s, "globex", None, "VIEW", &[&top]).await;
    let next = recommend(
        &s,
        json!({ "audience": { "contactId": "gx-cfo" }, "first": 5 }),
    )
    .await;
    assert!(!item_ids(&next).contains(&top));

    // A CRM stage set after the reading wins again.
    s.gql(
        UPSERT_ACCOUNT,
        json!({ "account": { "id": "globex", "name": "Globex",
                             "industry": "financial-services/payments", "stage": "AWARENESS" } }),
    )
    .await;
    let crm = recommend(&s, json!({ "audience": { "accountId": "globex" } })).await;
    assert_eq!(crm["audience"]["stage"], "AWARENESS");
    assert_eq!(crm["audience"]["stageSource"], "ACCOUNT");
    s.stop().await;
}

#[tokio::test]
async fn explicit_fields_override_the_account_and_mismatches_are_refused() {
    let mut s = TestServer::demo().await;
    account(&s, "initech", Some("saas"), Some("DECISION")).await;
    s.gql(
        UPSERT_ACCOUNT,
        json!({ "account": { "id": "umbrella", "name": "Umbrella", "language": "zh-CN" } }),
    )
    .await;
    contact(&s, "it-dev", "initech", "TECHNICAL_INTEGRATOR").await;
    let r = recommend(
        &s,
        json!({ "audience": { "accountId": "initech", "contactId": "it-dev",
                              "stage": "ADOPTION", "language": "zh" } }),
    )
    .await;
    assert_eq!(
        r["audience"],
        json!({ "stage": "ADOPTION", "stageSource": "REQUEST", "role": "TECHNICAL_INTEGRATOR",
                "roleSource": "CONTACT", "industry": "saas", "industrySource": "ACCOUNT",
                "language": "zh", "languageSource": "REQUEST", "concerns": [] })
    );
    let zh = recommend(&s, json!({ "audience": { "accountId": "umbrella" } })).await;
    assert_eq!(zh["audience"]["language"], "zh-CN");
    assert_eq!(zh["audience"]["languageSource"], "ACCOUNT");
    assert_eq!(zh["audience"]["industrySource"], "DEFAULT");
    assert!(
        zh["items"][0]["asset"]["language"]
            .as_str()
            .unwrap()
            .starts_with("zh")
    );

    let mismatch = s
        .gql_error(
            RECOMMEND,
            json!({ "audience": { "accountId": "umbrella", "contactId": "it-dev" } }),
        )
        .await;
    assert_eq!(mismatch["extensions"]["code"], "BAD_USER_INPUT");
    assert!(mismatch["message"].as_str().unwrap().contains("initech"));
    for audience in [
        json!({ "accountId": "nobody" }),
        json!({ "contactId": "nobody" }),
    ] {
        let e = s
            .gql_error(RECOMMEND, json!({ "audience": audience }))
            .await;
        assert_eq!(e["extensions"]["code"], "NOT_FOUND", "{e}");
    }
    let unknown_account = s
        .gql_error(
            UPSERT_CONTACT,
            json!({ "contact": { "id": "x", "accountId": "nobody", "name": "X" } }),
        )
        .await;
    assert_eq!(unknown_account["extensions"]["code"], "NOT_FOUND");
    let bad = s
        .gql_error(
            UPSERT_ACCOUNT,
            json!({ "account": { "id": "bad id", "name": "", "industry": "Not//Valid" } }),
        )
        .await;
    assert_eq!(bad["extensions"]["code"], "BAD_USER_INPUT");
    let fields: Vec<String> = ids(&bad["extensions"]["problems"], &["field"]);
    assert_eq!(fields, ["id", "name", "industry"]);
    s.stop().await;
}

#[tokio::test]
async fn events_are_validated_all_or_nothing_and_retries_are_recorded_once() {
    let mut s = TestServer::demo().await;
    account(&s, "acme", Some("retail"), None).await;
    contact(&s, "acme-buyer", "acme", "PROCUREMENT").await;
    account(&s, "other", None, None).await;
    contact(&s, "other-person", "other", "FINANCE").await;
    let event = |asset: &str| json!({ "accountId": "acme", "assetId": asset, "kind": "VIEW" });
    let cases = [
        (event("no-such-asset"), "NOT_FOUND"),
        (
            json!({ "accountId": "nobody", "assetId": "pricing-sheet", "kind": "VIEW" }),
            "NOT_FOUND",
        ),
        (
            json!({ "accountId": "acme", "contactId": "other-person",
                    "assetId": "pricing-sheet", "kind": "VIEW" }),
            "NOT_FOUND",
        ),
        (
            json!({ "accountId": "acme", "assetId": "pricing-sheet", "kind": "VIEW",
                    "occurredAt": (Utc::now() + Duration::hours(2)).to_rfc3339() }),
            "BAD_USER_INPUT",
        ),
    ];
    for (bad, code) in cases {
        // Next to a good event: neither is written.
        let e = s
            .gql_error(RECORD, json!({ "events": [event("pricing-sheet"), bad] }))
            .await;
        assert_eq!(e["extensions"]["code"], code, "{e}");
    }
    let e = s
        .gql_error(
            RECORD,
            json!({ "events": [{ "accountId": "acme", "assetId": "pricing-sheet", "kind": "GLANCE" }] }),
        )
        .await;
    assert_eq!(e["extensions"]["code"], "BAD_USER_INPUT");
    let acme = s.gql(ACCOUNT, json!({ "id": "acme" })).await;
    assert_eq!(acme["account"]["engagementCount"], 0);

    let single = r#"mutation($event: EngagementInput!) {
      recordEngagement(event: $event) { recorded duplicates } }"#;
    let retried = json!({ "event": { "accountId": "acme", "contactId": "acme-buyer",
                                     "assetId": "pricing-sheet", "kind": "DOWNLOAD",
                                     "clientEventId": "pv-1" } });
    let first = s.gql(single, retried.clone()).await;
    assert_eq!(
        first["recordEngagement"],
        json!({ "recorded": 1, "duplicates": 0 })
    );
    let again = s.gql(single, retried).await;
    assert_eq!(
        again["recordEngagement"],
        json!({ "recorded": 0, "duplicates": 1 })
    );
    // The same client id at another account is another event.
    let elsewhere = s
        .gql(
            single,
            json!({ "event": { "accountId": "other", "assetId": "pricing-sheet",
                               "kind": "VIEW", "clientEventId": "pv-1" } }),
        )
        .await;
    assert_eq!(elsewhere["recordEngagement"]["recorded"], 1);
    // Sent twice in one batch (a client retrying into the same flush): recorded once.
    let twice = json!({ "accountId": "acme", "assetId": "roi-calculator-payments", "kind": "VIEW",
                        "clientEventId": "pv-2" });
    let batch = s
        .gql(RECORD, json!({ "events": [twice.clone(), twice] }))
        .await;
    assert_eq!(
        batch["recordEngagements"],
        json!({ "recorded": 1, "duplicates": 1 })
    );
    let acme = s.gql(ACCOUNT, json!({ "id": "acme" })).await["account"].clone();
    assert_eq!(acme["engagementCount"], 2);
    assert_eq!(
        acme["recentEngagements"][1],
        json!({ "assetId": "pricing-sheet", "kind": "DOWNLOAD", "contactId": "acme-buyer" })
    );
    s.stop().await;
}

const TIED: [&str; 3] = [
    "api-docs-reference",
    "api-docs-webhooks",
    "api-docs-sdk-quickstart",
];

async fn adoption_list(s: &TestServer, account: &str, popularity: f64) -> Value {
    recommend(
        s,
        json!({ "audience": { "accountId": account, "role": "TECHNICAL_INTEGRATOR" },
                "weights": { "freshness": 0, "popularity": popularity },
                "diversify": false, "first": 20 }),
    )
    .await
}

fn popularity_of(list: &Value, id: &str) -> f64 {
    let item = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["asset"]["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {list}"));
    item["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["factor"] == "POPULARITY")
        .map_or(0.0, |r| r["value"].as_f64().unwrap())
}

#[tokio::test]
async fn popularity_among_similar_accounts_breaks_a_tie() {
    let mut s = TestServer::demo().await;
    // Without freshness the three API docs tie for a technical integrator in adoption.
    account(&s, "newco", Some("retail/ecommerce"), Some("ADOPTION")).await;
    let before = adoption_list(&s, "newco", 0.5).await;
    let scores: Vec<f64> = before["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| TIED.contains(&i["asset"]["id"].as_str().unwrap()))
        .map(|i| i["score"].as_f64().unwrap())
        .collect();
    assert_eq!(scores.len(), 3, "{before}");
    assert!(
        scores.iter().all(|x| (x - scores[0]).abs() < 1e-9),
        "{scores:?}"
    );
    let last_of_tie = TIED
        .iter()
        .max_by_key(|id| item_ids(&before).iter().position(|g| g == *id))
        .unwrap()
        .to_string();

    // Two retail accounts in adoption read the one that came last.
    for peer in ["shopco", "martco"] {
        account(&s, peer, Some("retail"), Some("ADOPTION")).await;
        read(&s, peer, None, "COMPLETE", &[&last_of_tie]).await;
    }
    // An account in another industry reads another one.
    account(&s, "clinic", Some("healthcare"), Some("ADOPTION")).await;
    let other = TIED.iter().find(|t| **t != last_of_tie).unwrap();
    read(&s, "clinic", None, "COMPLETE", &[other]).await;

    // Kept out of the index, counted as the events arrive: the list changes within 2 s
    // (a read of the counters every second), with no refresh asked for.
    let since = std::time::Instant::now();
    while item_ids(&adoption_list(&s, "newco", 0.5).await) == item_ids(&before) {
        assert!(
            since.elapsed() < std::time::Duration::from_secs(2),
            "popularity did not move"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // A rebuild from the stored events (the repair) reads all three and gives the same.
    let rebuilt = s
        .gql(
            "mutation { refreshPopularity { events cohorts assets } }",
            json!({}),
        )
        .await;
    assert_eq!(rebuilt["refreshPopularity"]["events"], 3);

    let after = adoption_list(&s, "newco", 0.5).await;
    let first_of_tie = |list: &Value| {
        item_ids(list)
            .into_iter()
            .find(|id| TIED.contains(&id.as_str()))
            .unwrap()
    };
    assert_eq!(first_of_tie(&after), last_of_tie, "{after}");
    assert_eq!(popularity_of(&after, &last_of_tie), 1.0);
    // The healthcare reader is not a similar account for a retailer.
    assert_eq!(popularity_of(&after, other), 0.0);
    // Weighted zero, popularity changes nothing.
    assert_eq!(
        item_ids(&adoption_list(&s, "newco", 0.0).await),
        item_ids(&before)
    );
    // An audience without an industry counts every industry at its stage.
    let anonymous = recommend(
        &s,
        json!({ "audience": { "stage": "ADOPTION", "role": "TECHNICAL_INTEGRATOR" },
                "weights": { "freshness": 0 }, "diversify": false, "first": 20 }),
    )
    .await;
    assert_eq!(first_of_tie(&anonymous), last_of_tie);
    assert!(popularity_of(&anonymous, other) > 0.0);

    // Cold start: a new asset for the same readers, read by nobody yet, is not buried:
    // popularity lifts the popular one by at most its weight, and the new one stays near
    // the top (behind the evergreen assets of the same fit).
    s.gql(
        "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { created } }",
        json!({ "a": [{ "id": "api-docs-graphql", "title": "GraphQL API reference",
                        "contentType": "API_DOCS", "stages": ["ADOPTION"],
                        "roles": ["TECHNICAL_INTEGRATOR"],
                        "publishedAt": Utc::now().format("%Y-%m-%d").to_string() }] }),
    )
    .await;
    let fresh = recommend(
        &s,
        json!({ "audience": { "accountId": "newco", "role": "TECHNICAL_INTEGRATOR" },
                "diversify": false, "first": 20 }),
    )
    .await;
    let order = item_ids(&fresh);
    let new_at = order
        .iter()
        .position(|id| id == "api-docs-graphql")
        .unwrap();
    assert!(new_at < 8, "{order:?}");
    let score = |id: &str| {
        fresh["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["asset"]["id"] == id)
            .unwrap()["score"]
            .as_f64()
            .unwrap()
    };
    assert!(
        // The popularity weight, plus the hours of freshness the new one has lost.
        score(&last_of_tie) - score("api-docs-graphql") <= 0.5 + 0.01,
        "{order:?}"
    );
    s.stop().await;
}

const COMMITTEE: &str = r#"
query($id: ID!) {
  account(id: $id) {
    committee(first: 3) {
      roles { role engaged assetsEngaged contacts { id } }
      missingRoles
      members { contact { id role } assetsEngaged deferredAssetId
                recommendations { score asset { id roles } } }
    }
  }
}"#;

#[tokio::test]
async fn the_committee_shows_who_engaged_and_gives_each_contact_a_fitting_first_pick() {
    let mut s = TestServer::demo().await;
    account(
        &s,
        "hooli",
        Some("financial-services/payments"),
        Some("DECISION"),
    )
    .await;
    contact(&s, "h-ceo", "hooli", "DECISION_MAKER").await;
    contact(&s, "h-coo", "hooli", "DECISION_MAKER").await;
    contact(&s, "h-dev", "hooli", "TECHNICAL_INTEGRATOR").await;
    read(
        &s,
        "hooli",
        Some("h-dev"),
        "VIEW",
        &["demo-technical-deep-dive"],
    )
    .await;

    let c = s.gql(COMMITTEE, json!({ "id": "hooli" })).await["account"]["committee"].clone();
    let roles = c["roles"].as_array().unwrap();
    assert_eq!(roles.len(), 5);
    assert_eq!(roles[0]["role"], "DECISION_MAKER");
    assert_eq!(ids(&roles[0]["contacts"], &["id"]), ["h-ceo", "h-coo"]);
    assert_eq!(roles[0]["engaged"], false);
    assert_eq!(roles[1]["role"], "TECHNICAL_INTEGRATOR");
    assert_eq!(
        (
            roles[1]["engaged"].clone(),
            roles[1]["assetsEngaged"].clone()
        ),
        (json!(true), json!(1))
    );
    assert_eq!(
        c["missingRoles"],
        json!(["BUSINESS_USER", "PROCUREMENT", "FINANCE"])
    );
    let members = c["members"].as_array().unwrap();
    assert_eq!(
        ids(&c["members"], &["contact", "id"]),
        ["h-ceo", "h-coo", "h-dev"]
    );
    for m in members {
        let role = m["contact"]["role"].as_str().unwrap();
        let recs = m["recommendations"].as_array().unwrap();
        assert_eq!(recs.len(), 3);
        assert!(has(&recs[0], "roles", role) || serves_everyone(&recs[0]));
        assert!(
            !ids(&m["recommendations"], &["asset", "id"])
                .contains(&"demo-technical-deep-dive".to_owned())
        );
    }
    // Two decision makers: the second does not get the first's pick unless it is clearly
    // best for them, and the view says which pick it moved down.
    let top = |m: &Value| {
        m["recommendations"][0]["asset"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_ne!(top(&members[0]), top(&members[1]));
    assert_eq!(members[1]["deferredAssetId"], top(&members[0]));
    assert_eq!(members[0]["deferredAssetId"], Value::Null);
    s.stop().await;
}

#[tokio::test]
async fn an_erased_account_leaves_no_trace_in_the_database_or_popularity() {
    let mut s = TestServer::demo().await;
    account(
        &s,
        "wayne",
        Some("financial-services/banking"),
        Some("DECISION"),
    )
    .await;
    contact(&s, "w-cfo", "wayne", "FINANCE").await;
    read(
        &s,
        "wayne",
        Some("w-cfo"),
        "COMPLETE",
        &["case-study-bank-treasury", "pricing-sheet"],
    )
    .await;
    read(&s, "wayne", None, "VIEW", &["video-customer-story-bank"]).await;
    account(
        &s,
        "stark",
        Some("financial-services/banking"),
        Some("DECISION"),
    )
    .await;
    let peer_list = || {
        recommend(
            &s,
            json!({ "audience": { "accountId": "stark" }, "first": 30, "diversify": false }),
        )
    };
    let since = std::time::Instant::now();
    while popularity_of(&peer_list().await, "case-study-bank-treasury") == 0.0 {
        assert!(
            since.elapsed() < std::time::Duration::from_secs(2),
            "popularity did not move"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let export = s
        .gql(
            r#"query($id: ID!) { accountExport(id: $id) {
                 account { id name contacts { id name role } }
                 engagements { id assetId kind occurredAt contactId } } }"#,
            json!({ "id": "wayne" }),
        )
        .await["accountExport"]
        .clone();
    assert_eq!(export["account"]["contacts"][0]["id"], "w-cfo");
    assert_eq!(export["engagements"].as_array().unwrap().len(), 3);

    let erased = s
        .gql(
            "mutation($id: ID!) { eraseAccount(id: $id) { accountId engagementsErased } }",
            json!({ "id": "wayne" }),
        )
        .await;
    assert_eq!(erased["eraseAccount"]["engagementsErased"], 3);
    assert_eq!(
        s.gql(ACCOUNT, json!({ "id": "wayne" })).await["account"],
        Value::Null
    );
    let gone = s
        .gql_error(
            "query($id: ID!) { accountExport(id: $id) { account { id } } }",
            json!({ "id": "wayne" }),
        )
        .await;
    assert_eq!(gone["extensions"]["code"], "NOT_FOUND");
    let again = s
        .gql_error(
            "mutation($id: ID!) { eraseAccount(id: $id) { accountId } }",
            json!({ "id": "wayne" }),
        )
        .await;
    assert_eq!(again["extensions"]["code"], "NOT_FOUND");
    let peer = recommend(
        &s,
        json!({ "audience": { "accountId": "stark" }, "first": 30, "diversify": false }),
    )
    .await;
    assert_eq!(popularity_of(&peer, "case-study-bank-treasury"), 0.0);

    // In the database: no row names the account or its contact, and popularity holds
    // nothing (the erased account was the only reader).
    let db = sea_orm::Database::connect(s.database_url()).await.unwrap();
    let count = |sql: &'static str| {
        let db = db.clone();
        async move { crate::support::sql_numbers(&db, sql).await[0] }
    };
    assert_eq!(
        count("SELECT COUNT(*) FROM account WHERE id = 'wayne'").await,
        0
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM contact WHERE account_id = 'wayne' OR id = 'w-cfo'").await,
        0
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM engagement WHERE account_id = 'wayne' OR contact_id = 'w-cfo'")
            .await,
        0
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM change_log WHERE entity_id IN ('wayne', 'w-cfo')").await,
        0
    );
    // Its share of every counter went with it: it was the only reader.
    assert_eq!(count("SELECT COUNT(*) FROM popularity_share").await, 0);
    assert_eq!(count("SELECT COUNT(*) FROM popularity_count").await, 0);
    assert_eq!(count("SELECT COUNT(*) FROM co_read").await, 0);
    // The index never held it.
    let search = s
        .gql(r#"{ search(query: "wayne") { totalCount } }"#, json!({}))
        .await;
    assert_eq!(search["search"]["totalCount"], 0);
    db.close().await.unwrap();
    s.stop().await;
}

#[tokio::test]
async fn accounts_contacts_and_events_import_from_files_all_or_nothing() {
    use crate::support::{stagefit, text};
    let dir = crate::support::imported_demo();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();

    std::fs::write(
        path("accounts.csv"),
        "id,name,industry,stage,tier,language\n\
         acme,Acme,retail/ecommerce,consideration,enterprise,en\n\
         bolt,Bolt,,,smb,\n",
    )
    .unwrap();
    std::fs::write(
        path("contacts.jsonl"),
        "{\"id\": \"acme-cto\", \"account_id\": \"acme\", \"name\": \"Ada\", \"role\": \"TECHNICAL_INTEGRATOR\"}\n\
         {\"id\": \"ghost\", \"account_id\": \"nobody\", \"name\": \"G\"}\n",
    )
    .unwrap();
    let run = |kind: &str, file: &str, extra: &[&str]| {
        let mut args = vec!["import", "--kind", kind, file];
        args.extend_from_slice(extra);
        stagefit(dir.path(), &args)
    };
    let out = run("accounts", &path("accounts.csv"), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("2 rows: 2 written, 0 failed"),
        "{}",
        text(&out.stdout)
    );

    // A contact of an unknown account fails the file, naming its line.
    let out = run("contacts", &path("contacts.jsonl"), &[]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("contacts.jsonl:2: [ghost] account_id: no account"),
        "{stderr}"
    );
    let out = run("contacts", &path("contacts.jsonl"), &["--best-effort"]);
    assert!(
        text(&out.stdout).starts_with("2 rows: 1 written, 1 failed"),
        "{}",
        text(&out.stdout)
    );

    std::fs::write(
        path("events.jsonl"),
        "{\"account_id\": \"acme\", \"contact_id\": \"acme-cto\", \"asset_id\": \"api-docs-reference\", \"kind\": \"COMPLETE\", \"occurred_at\": \"2026-01-05\", \"client_event_id\": \"e1\"}\n\
         {\"account_id\": \"acme\", \"asset_id\": \"pricing-sheet\", \"kind\": \"glance\"}\n\
         {\"account_id\": \"bolt\", \"asset_id\": \"no-such-asset\", \"kind\": \"VIEW\"}\n",
    )
    .unwrap();
    let out = run("engagements", &path("events.jsonl"), &[]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("events.jsonl:2: kind: unknown engagement kind"),
        "{stderr}"
    );
    assert!(
        stderr.contains("events.jsonl:3: asset_id: no asset with id \"no-such-asset\""),
        "{stderr}"
    );

    let mut s = TestServer::start_in(dir.path(), false).await;
    let acme = s.gql(ACCOUNT, json!({ "id": "acme" })).await["account"].clone();
    assert_eq!(acme["stage"], "CONSIDERATION");
    assert_eq!(acme["engagementCount"], 0, "the failed file wrote nothing");
    assert_eq!(ids(&acme["contacts"], &["id"]), ["acme-cto"]);
    s.stop().await;

    let out = run("engagements", &path("events.jsonl"), &["--best-effort"]);
    assert!(
        text(&out.stdout).starts_with("3 rows: 1 written, 2 failed"),
        "{}",
        text(&out.stdout)
    );
    // Importing the same client event again records nothing new.
    let out = run("engagements", &path("events.jsonl"), &["--best-effort"]);
    assert!(
        text(&out.stdout).starts_with("3 rows: 0 written, 2 failed"),
        "{}",
        text(&out.stdout)
    );
    let mut s = TestServer::start_in(dir.path(), false).await;
    let acme = s.gql(ACCOUNT, json!({ "id": "acme" })).await["account"].clone();
    assert_eq!(acme["consumedAssetIds"], json!(["api-docs-reference"]));
    s.stop().await;
}

#[tokio::test]
async fn an_answered_event_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let served = crate::support::serve_binary(dir.path(), &["--demo"], &[("STAGEFIT_LOG", "info")]);
    let addr = served.addr.clone();
    let client = reqwest::Client::new();
    let post = |query: &'static str, variables: Value| {
        client
            .post(format!("http://{addr}/graphql"))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
    };
    let answer: Value = post(
        UPSERT_ACCOUNT,
        json!({ "account": { "id": "kill", "name": "Kill Inc." } }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(answer.get("errors").is_none(), "{answer}");
    let answer: Value = post(
        RECORD,
        json!({ "events": [{ "accountId": "kill", "assetId": "pricing-sheet", "kind": "VIEW" }] }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        answer["data"]["recordEngagements"]["recorded"], 1,
        "{answer}"
    );
    // Killed the moment it answered: no shutdown, no flush.
    served.kill();

    let mut s = TestServer::start_in(dir.path(), false).await;
    let account = s.gql(ACCOUNT, json!({ "id": "kill" })).await["account"].clone();
    assert_eq!(account["engagementCount"], 1);
    assert_eq!(account["consumedAssetIds"], json!(["pricing-sheet"]));
    s.stop().await;
}
