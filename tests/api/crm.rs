//! CRM stages in: a stage mapping (a preset and entries of our own) turns the CRM's
//! opportunity stage names into buying stages; the account's stage comes from the CRM
//! unless reading shows it further along, `stageSource` says which, and names nothing
//! maps are listed.

use serde_json::{Value, json};

use crate::support::TestServer;

const ACCOUNT: &str =
    r#"query($id: ID!) { account(id: $id) { crmStage stage journeyStage stageSource } }"#;

async fn upsert(s: &TestServer, id: &str, crm_stage: Option<&str>, stage: Option<&str>) {
    s.gql(
        "mutation($a: AccountInput!) { upsertAccount(account: $a) { id } }",
        json!({ "a": { "id": id, "name": id, "crmStage": crm_stage, "stage": stage } }),
    )
    .await;
}

async fn account(s: &TestServer, id: &str) -> Value {
    s.gql(ACCOUNT, json!({ "id": id })).await["account"].clone()
}

/// Four completed decision-stage assets: reading that says DECISION with confidence.
async fn read_decision_content(s: &TestServer, id: &str) {
    let events: Vec<Value> = [
        "case-study-payments-psp-matching",
        "demo-live-demo",
        "pricing-sheet",
        "roi-business-case-template",
    ]
    .iter()
    .map(|a| json!({ "accountId": id, "assetId": a, "kind": "COMPLETE" }))
    .collect();
    s.gql(
        "mutation($e: [EngagementInput!]!) { recordEngagements(events: $e) { recorded } }",
        json!({ "e": events }),
    )
    .await;
}

#[tokio::test]
async fn the_crm_stage_maps_to_a_buying_stage_unless_reading_is_further_along() {
    let mut s = TestServer::demo().await;
    let mapping = s
        .gql(
            r#"mutation { setStageMapping(preset: SALESFORCE,
                   entries: [{ crmStage: "Discovery call", stage: AWARENESS },
                             { crmStage: "closed won", stage: ADVOCACY }]) {
                 entries { crmStage stage } unmapped { crmStage accounts } } }"#,
            json!({}),
        )
        .await["setStageMapping"]
        .clone();
    let entries = mapping["entries"].as_array().unwrap();
    // Ten of Salesforce's, one of ours; ours won over the preset's "Closed Won".
    assert_eq!(entries.len(), 11, "{mapping:#}");
    let won = entries
        .iter()
        .find(|e| {
            e["crmStage"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case("closed won")
        })
        .unwrap();
    assert_eq!(won["stage"], "ADVOCACY");
    let lost = entries
        .iter()
        .find(|e| e["crmStage"] == "Closed Lost")
        .unwrap();
    assert_eq!(lost["stage"], Value::Null);

    // The CRM's stage (any case and spacing) comes before the declared one.
    upsert(
        &s,
        "acme",
        Some("  proposal/price   quote"),
        Some("AWARENESS"),
    )
    .await;
    let acme = account(&s, "acme").await;
    assert_eq!(acme["journeyStage"], "DECISION", "{acme}");
    assert_eq!(acme["stageSource"], "CRM");
    assert_eq!(acme["crmStage"], "proposal/price   quote");

    // Reading further along than the CRM wins; reading behind it does not.
    upsert(&s, "early", Some("Needs Analysis"), None).await;
    assert_eq!(account(&s, "early").await["journeyStage"], "CONSIDERATION");
    read_decision_content(&s, "early").await;
    let early = account(&s, "early").await;
    assert_eq!(early["journeyStage"], "DECISION", "{early}");
    assert_eq!(early["stageSource"], "READING");
    upsert(&s, "late", Some("Closed Won"), None).await;
    read_decision_content(&s, "late").await;
    let late = account(&s, "late").await;
    assert_eq!(late["journeyStage"], "ADVOCACY", "{late}");
    assert_eq!(late["stageSource"], "CRM");

    // A lost deal says nothing: the declared stage stands.
    upsert(&s, "gone", Some("Closed Lost"), Some("CONSIDERATION")).await;
    let gone = account(&s, "gone").await;
    assert_eq!(gone["journeyStage"], "CONSIDERATION");
    assert_eq!(gone["stageSource"], "DECLARED");

    // A name nothing maps is listed with how many accounts carry it, until it is mapped:
    // then the account ranks by it at once.
    upsert(&s, "globex", Some("Legal review"), None).await;
    upsert(&s, "initech", Some("legal review"), None).await;
    assert_eq!(account(&s, "globex").await["stageSource"], Value::Null);
    let unmapped = s
        .gql(
            "{ stageMapping { unmapped { crmStage accounts } } }",
            json!({}),
        )
        .await["stageMapping"]["unmapped"]
        .clone();
    let names: Vec<&str> = unmapped
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["crmStage"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Legal review", "legal review"], "{unmapped:#}");
    let mapped = s
        .gql(
            r#"mutation { setStageMapping(preset: HUBSPOT,
                   entries: [{ crmStage: "LEGAL REVIEW", stage: DECISION }]) {
                 unmapped { crmStage } } }"#,
            json!({}),
        )
        .await["setStageMapping"]
        .clone();
    // HubSpot's names replace Salesforce's: the accounts on those are unmapped now.
    let unmapped: Vec<&str> = mapped["unmapped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["crmStage"].as_str().unwrap())
        .collect();
    assert!(
        !unmapped
            .iter()
            .any(|n| n.eq_ignore_ascii_case("legal review")),
        "{mapped:#}"
    );
    assert!(unmapped.contains(&"Needs Analysis"), "{mapped:#}");
    let globex = account(&s, "globex").await;
    assert_eq!(globex["journeyStage"], "DECISION", "{globex}");
    assert_eq!(globex["stageSource"], "CRM");
    // HubSpot's stages replaced Salesforce's: acme's name is not mapped any more.
    let acme = account(&s, "acme").await;
    assert_eq!(acme["stageSource"], "DECLARED", "{acme}");
    s.stop().await;
}

#[tokio::test]
async fn bad_crm_stages_and_mappings_are_refused_whole() {
    let mut s = TestServer::demo().await;
    let error = s
        .gql_error(
            r#"mutation { setStageMapping(entries: [{ crmStage: "Demo", stage: DECISION },
                                                    { crmStage: "  ", stage: DECISION }]) { entries { crmStage } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("entries[1].crmStage"),
        "{error}"
    );
    let many: Vec<Value> = (0..201)
        .map(|i| json!({ "crmStage": format!("stage {i}"), "stage": "DECISION" }))
        .collect();
    let error = s
        .gql_error(
            "mutation($e: [StageMappingInput!]!) { setStageMapping(entries: $e) { entries { crmStage } } }",
            json!({ "e": many }),
        )
        .await;
    assert!(
        error["message"].as_str().unwrap().contains("at most 200"),
        "{error}"
    );
    // Nothing was written by either.
    let kept = s
        .gql("{ stageMapping { entries { crmStage } } }", json!({}))
        .await;
    assert_eq!(kept["stageMapping"]["entries"], json!([]));
    let error = s
        .gql_error(
            "mutation($a: AccountInput!) { upsertAccount(account: $a) { id } }",
            json!({ "a": { "id": "acme", "name": "Acme", "crmStage": "x".repeat(101) } }),
        )
        .await;
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("crm_stage"),
        "{error}"
    );
    s.stop().await;
}
