//! The feedback loop over HTTP: recommendation ids and positions, impressions and clicks
//! tied to their lists, ranking profiles, experiments and their statistics, dismissals,
//! `explainRank` against `recommendations`, content analytics, and `stagefit replay`.

use serde_json::{Value, json};

use crate::support::{TestServer, stagefit, text};

const RECOMMEND: &str = r#"
query($audience: AudienceInput!, $first: Int, $profile: String, $placement: String,
      $diversify: Boolean, $weights: RankingWeightsInput) {
  recommendations(audience: $audience, first: $first, profile: $profile,
                  placement: $placement, diversify: $diversify, weights: $weights) {
    recommendationId profile experiment variant placement
    items { position score asset { id } }
  }
}"#;

const IMPRESSIONS: &str = r#"
mutation($id: ID!, $assets: [ID!]!, $positions: [Int!]) {
  recordImpressions(recommendationId: $id, assetIds: $assets, positions: $positions) {
    recorded duplicates
  }
}"#;

const ENGAGE: &str = r#"
mutation($event: EngagementInput!) { recordEngagement(event: $event) { recorded } }"#;

const EXPERIMENT: &str = r#"
query($name: String!) {
  experiment(name: $name) {
    name placement running
    variants { profile share impressions clicks completions clickThroughRate ctrLow ctrHigh
               difference pValue significant }
  }
}"#;

async fn recommend(s: &TestServer, vars: Value) -> Value {
    s.gql(RECOMMEND, vars).await["recommendations"].clone()
}

fn item_ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["asset"]["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn account(s: &TestServer, id: &str) {
    s.gql(
        r#"mutation($id: ID!) { upsertAccount(account: { id: $id, name: $id, industry: "retail" }) { id } }"#,
        json!({ "id": id }),
    )
    .await;
}

async fn profile(s: &TestServer, name: &str, weights: Value) {
    s.gql(
        r#"mutation($name: String!, $w: RankingWeightsInput!) {
             upsertRankingProfile(name: $name, weights: $w, description: "test") { name } }"#,
        json!({ "name": name, "w": weights }),
    )
    .await;
}

async fn start_experiment(s: &TestServer, name: &str, variants: Value) {
    s.gql(
        r#"mutation($name: String!, $v: [VariantInput!]!) {
             startExperiment(name: $name, placement: "home", variants: $v) { name running } }"#,
        json!({ "name": name, "v": variants }),
    )
    .await;
}

/// An experiment at placement `home` as the server stores it, to ask the domain which
/// variant a subject gets.
fn home_experiment(name: &str, variants: &[(&str, f64)]) -> stagefit::domain::Experiment {
    stagefit::domain::Experiment {
        name: name.into(),
        placement: "home".into(),
        variants: variants
            .iter()
            .map(|(profile, share)| stagefit::domain::Variant {
                profile: (*profile).into(),
                share: *share,
            })
            .collect(),
        started_at: 0,
        stopped_at: None,
    }
}

fn close(a: &Value, b: f64) -> bool {
    (a.as_f64().unwrap_or(f64::NAN) - b).abs() < 1e-4
}

#[tokio::test]
async fn a_click_with_a_recommendation_id_counts_for_its_list_and_variant() {
    let mut s = TestServer::demo().await;
    account(&s, "acme").await;
    account(&s, "globex").await;
    profile(&s, "stage-heavy", json!({ "stage": 10 })).await;
    start_experiment(
        &s,
        "home-1",
        json!([{ "profile": "default", "share": 0.5 }, { "profile": "stage-heavy", "share": 0.5 }]),
    )
    .await;
    let vars = json!({ "audience": { "accountId": "acme" }, "first": 5, "placement": "home" });
    let list = recommend(&s, vars.clone()).await;
    let variant = list["variant"].as_str().unwrap().to_owned();
    assert_eq!(list["experiment"], "home-1");
    assert_eq!(list["profile"], variant);
    // The same account always sees the same variant, and the one the hash names.
    for _ in 0..3 {
        let again = recommend(&s, vars.clone()).await;
        assert_eq!(again["variant"], variant.as_str());
        assert_ne!(again["recommendationId"], list["recommendationId"]);
    }
    let expected = home_experiment("home-1", &[("default", 0.5), ("stage-heavy", 0.5)]);
    assert_eq!(expected.assign("acme").profile, variant);
    let positions: Vec<i64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, vec![1, 2, 3, 4, 5]);

    let id = list["recommendationId"].as_str().unwrap().to_owned();
    let ids = item_ids(&list);
    let r = s
        .gql(IMPRESSIONS, json!({ "id": id, "assets": ids[..3] }))
        .await;
    assert_eq!(
        r["recordImpressions"],
        json!({ "recorded": 3, "duplicates": 0 })
    );
    let r = s
        .gql(IMPRESSIONS, json!({ "id": id, "assets": ids[..3] }))
        .await;
    assert_eq!(
        r["recordImpressions"],
        json!({ "recorded": 0, "duplicates": 3 })
    );

    // A view, then a completion, of the second item: one click, one completion.
    for kind in ["VIEW", "COMPLETE", "VIEW"] {
        s.gql(
            ENGAGE,
            json!({ "event": { "accountId": "acme", "assetId": ids[1], "kind": kind,
                                "recommendationId": id, "position": 2 } }),
        )
        .await;
    }
    let e = s.gql(EXPERIMENT, json!({ "name": "home-1" })).await["experiment"].clone();
    let shown = e["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["profile"] == variant.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (
            &shown["impressions"],
            &shown["clicks"],
            &shown["completions"]
        ),
        (&json!(3), &json!(1), &json!(1)),
        "{e:#}"
    );
    assert!(close(&shown["clickThroughRate"], 1.0 / 3.0));
    // Wilson 95% for 1 of 3, by hand: (0.06149, 0.79234).
    assert!(close(&shown["ctrLow"], 0.06149), "{shown}");
    assert!(close(&shown["ctrHigh"], 0.79234), "{shown}");

    let perf = s
        .gql(
            r#"{ assetPerformance(orderBy: CLICKS, first: 1) {
                   totalCount items { asset { id } impressions clicks completions clickThroughRate } } }"#,
            json!({}),
        )
        .await["assetPerformance"]
        .clone();
    assert_eq!(perf["totalCount"], 3);
    assert_eq!(
        perf["items"][0],
        json!({ "asset": { "id": ids[1] }, "impressions": 1, "clicks": 1, "completions": 1,
                "clickThroughRate": 1.0 })
    );

    // A list shown to acme cannot be claimed for globex.
    let err = s
        .gql_error(
            ENGAGE,
            json!({ "event": { "accountId": "globex", "assetId": ids[1], "kind": "VIEW",
                                "recommendationId": id, "position": 2 } }),
        )
        .await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err}");
    for bad in ["not-an-id", "eyJ9.0123456789abcdef"] {
        let err = s
            .gql_error(
                IMPRESSIONS,
                json!({ "id": bad, "assets": ["pricing-sheet"] }),
            )
            .await;
        assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err}");
    }
    let err = s
        .gql_error(
            IMPRESSIONS,
            json!({ "id": id, "assets": ids[..2], "positions": [1] }),
        )
        .await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err}");

    // Impressions come at the rate of page views: the audit trail records the changes.
    // (The trail is written in batches off the request path.)
    let mut log = String::new();
    for _ in 0..50 {
        log = s
            .gql("{ auditLog(first: 100) { operation } }", json!({}))
            .await["auditLog"]
            .to_string();
        if log.contains("recordEngagement") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        log.contains("upsertRankingProfile") && log.contains("recordEngagement"),
        "{log}"
    );
    assert!(!log.contains("recordImpressions"), "{log}");

    // Stopped, the placement ranks with the default profile again.
    s.gql(
        r#"mutation { stopExperiment(name: "home-1") { running } }"#,
        json!({}),
    )
    .await;
    let after = recommend(&s, vars).await;
    assert_eq!(
        (after["profile"].as_str(), after["variant"].as_str()),
        (Some("default"), None)
    );
    s.stop().await;
}

#[tokio::test]
async fn a_cached_list_gets_a_new_recommendation_id_each_time() {
    let mut s = TestServer::demo().await;
    let body = json!({ "query": RECOMMEND,
                       "variables": { "audience": { "stage": "DECISION" }, "first": 3 } });
    let mut seen = Vec::new();
    for expected in ["miss", "hit", "hit"] {
        let response = s
            .client()
            .post(format!("{}/graphql", s.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["x-cache"], expected);
        let v: Value = response.json().await.unwrap();
        let list = &v["data"]["recommendations"];
        let id = list["recommendationId"].as_str().unwrap().to_owned();
        let context = stagefit::domain::ListContext::from_id(&id).unwrap();
        assert_eq!(
            (context.stage.as_str(), context.profile.as_str()),
            ("DECISION", "default")
        );
        assert!(!seen.contains(&id), "{id} answered twice");
        seen.push(id);
    }
    // A profile change is a new ranking: the cached answer is not reused.
    profile(&s, "another", json!({ "role": 5 })).await;
    let response = s
        .client()
        .post(format!("{}/graphql", s.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-cache"], "miss");
    s.stop().await;
}

#[tokio::test]
async fn profiles_rank_by_name_and_bad_ones_are_refused() {
    let mut s = TestServer::demo().await;
    profile(&s, "no-stage", json!({ "stage": 0, "text": 7.5 })).await;
    let profiles = s
        .gql(
            "{ rankingProfiles { name description weights { factor weight overridden } } }",
            json!({}),
        )
        .await["rankingProfiles"]
        .clone();
    assert_eq!(profiles[0]["name"], "default");
    let stored = &profiles[1];
    assert_eq!(stored["name"], "no-stage");
    let weight = |f: &str| {
        stored["weights"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["factor"] == f)
            .unwrap()
            .clone()
    };
    assert_eq!(
        weight("STAGE"),
        json!({ "factor": "STAGE", "weight": 0.0, "overridden": true })
    );
    assert_eq!(
        weight("TEXT"),
        json!({ "factor": "TEXT", "weight": 7.5, "overridden": true })
    );
    assert_eq!(weight("ROLE")["overridden"], false);

    let audience = json!({ "stage": "DECISION", "role": "FINANCE" });
    let by_profile = recommend(
        &s,
        json!({ "audience": audience, "first": 10, "profile": "no-stage", "diversify": false }),
    )
    .await;
    let by_weights = recommend(
        &s,
        json!({ "audience": audience, "first": 10, "diversify": false,
                "weights": { "stage": 0, "text": 7.5 } }),
    )
    .await;
    assert_eq!(by_profile["profile"], "no-stage");
    assert_eq!(item_ids(&by_profile), item_ids(&by_weights));
    let plain = recommend(
        &s,
        json!({ "audience": audience, "first": 10, "diversify": false }),
    )
    .await;
    assert_ne!(item_ids(&plain), item_ids(&by_profile));

    for (query, vars) in [
        (RECOMMEND, json!({ "audience": {}, "profile": "missing" })),
        (RECOMMEND, json!({ "audience": {}, "profile": "Bad Name" })),
        (
            r#"mutation { upsertRankingProfile(name: "default", weights: { stage: 1 }) { name } }"#,
            json!({}),
        ),
        (
            r#"mutation { upsertRankingProfile(name: "x", weights: { stage: 101 }) { name } }"#,
            json!({}),
        ),
        (
            r#"mutation { startExperiment(name: "e", placement: "home", variants: [{ profile: "default", share: 0.5 }, { profile: "no-stage", share: 0.4 }]) { name } }"#,
            json!({}),
        ),
        (
            r#"mutation { startExperiment(name: "e", placement: "home", variants: [{ profile: "default", share: 0.5 }, { profile: "nope", share: 0.5 }]) { name } }"#,
            json!({}),
        ),
    ] {
        let err = s.gql_error(query, vars.clone()).await;
        assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{vars} {err}");
    }
    // One running experiment per placement; names are not reused.
    start_experiment(
        &s,
        "e1",
        json!([{ "profile": "default", "share": 0.5 }, { "profile": "no-stage", "share": 0.5 }]),
    )
    .await;
    let err = s
        .gql_error(
            r#"mutation { startExperiment(name: "e2", placement: "home", variants: [{ profile: "default", share: 0.5 }, { profile: "no-stage", share: 0.5 }]) { name } }"#,
            json!({}),
        )
        .await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err}");
    let err = s
        .gql_error(r#"{ experiment(name: "nope") { name } }"#, json!({}))
        .await;
    assert_eq!(err["extensions"]["code"], "NOT_FOUND", "{err}");
    s.stop().await;
}

#[tokio::test]
async fn experiment_statistics_match_hand_computed_values() {
    let mut s = TestServer::demo().await;
    profile(&s, "treatment", json!({ "freshness": 3 })).await;
    start_experiment(
        &s,
        "ab",
        json!([{ "profile": "default", "share": 0.5 }, { "profile": "treatment", "share": 0.5 }]),
    )
    .await;
    // Ten accounts per variant; each sees one list of ten.
    let mut lists: Vec<(String, String, Vec<String>, String)> = Vec::new();
    let (mut control, mut treatment) = (0, 0);
    let mut n = 0;
    while control < 10 || treatment < 10 {
        let id = format!("acct-{n}");
        n += 1;
        account(&s, &id).await;
        let list = recommend(
            &s,
            json!({ "audience": { "accountId": id }, "first": 10, "placement": "home" }),
        )
        .await;
        let variant = list["variant"].as_str().unwrap().to_owned();
        let count = if variant == "default" {
            &mut control
        } else {
            &mut treatment
        };
        if *count == 10 {
            continue;
        }
        *count += 1;
        lists.push((
            id,
            list["recommendationId"].as_str().unwrap().to_owned(),
            item_ids(&list),
            variant,
        ));
    }
    // Control: 10 of 100 clicked; treatment: 20 of 100, two completed.
    let (mut control_clicks, mut treatment_clicks, mut completions) = (0, 0, 0);
    for (account, id, items, variant) in &lists {
        assert_eq!(items.len(), 10);
        let r = s
            .gql(IMPRESSIONS, json!({ "id": id, "assets": items }))
            .await;
        assert_eq!(r["recordImpressions"]["recorded"], 10);
        let clicks = if variant == "default" {
            &mut control_clicks
        } else {
            &mut treatment_clicks
        };
        let per_list = if variant == "default" { 1 } else { 2 };
        for (p, asset) in items.iter().take(per_list).enumerate() {
            *clicks += 1;
            let kind = if variant != "default" && completions < 2 {
                completions += 1;
                "COMPLETE"
            } else {
                "DOWNLOAD"
            };
            s.gql(
                ENGAGE,
                json!({ "event": { "accountId": account, "assetId": asset, "kind": kind,
                                    "recommendationId": id, "position": p + 1 } }),
            )
            .await;
        }
    }
    assert_eq!((control_clicks, treatment_clicks), (10, 20));
    let e = s.gql(EXPERIMENT, json!({ "name": "ab" })).await["experiment"].clone();
    let (c, t) = (&e["variants"][0], &e["variants"][1]);
    assert_eq!(
        (&c["profile"], &t["profile"]),
        (&json!("default"), &json!("treatment"))
    );
    assert_eq!(
        (
            &c["impressions"],
            &c["clicks"],
            &t["impressions"],
            &t["clicks"],
            &t["completions"]
        ),
        (&json!(100), &json!(10), &json!(100), &json!(20), &json!(2)),
        "{e:#}"
    );
    // By hand: Wilson 10/100 = (0.05523, 0.17437), 20/100 = (0.13337, 0.28883); pooled
    // p = 0.15, se = sqrt(0.15 * 0.85 * 2 / 100) = 0.050498, z = 1.98030, p = 0.04767.
    assert!(
        close(&c["ctrLow"], 0.05523) && close(&c["ctrHigh"], 0.17437),
        "{c}"
    );
    assert!(
        close(&t["ctrLow"], 0.13337) && close(&t["ctrHigh"], 0.28883),
        "{t}"
    );
    assert_eq!(c["difference"], Value::Null);
    assert!(close(&t["difference"], 0.1), "{t}");
    assert!(close(&t["pValue"], 0.04767), "{t}");
    assert_eq!(t["significant"], true);

    // A filter keeps exactly the assets it admits, as the unfiltered list shows them.
    let all = s
        .gql(
            "{ assetPerformance(first: 100) { totalCount items { asset { id stages } impressions } } }",
            json!({}),
        )
        .await["assetPerformance"]
        .clone();
    let decision: Vec<&Value> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| {
            i["asset"]["stages"]
                .as_array()
                .unwrap()
                .contains(&json!("DECISION"))
        })
        .collect();
    let filtered = s
        .gql(
            "{ assetPerformance(first: 100, filter: { stages: [DECISION] }) { totalCount items { asset { id stages } impressions } } }",
            json!({}),
        )
        .await["assetPerformance"]
        .clone();
    assert_eq!(
        all["totalCount"],
        all["items"].as_array().unwrap().len(),
        "one page holds all"
    );
    assert!(!decision.is_empty() && decision.len() < all["items"].as_array().unwrap().len());
    assert_eq!(filtered["totalCount"], decision.len());
    let mut expected: Vec<&Value> = decision.clone();
    let mut got: Vec<&Value> = filtered["items"].as_array().unwrap().iter().collect();
    let by_id = |a: &&Value, b: &&Value| a["asset"]["id"].as_str().cmp(&b["asset"]["id"].as_str());
    expected.sort_by(by_id);
    got.sort_by(by_id);
    assert_eq!(expected, got);
    s.stop().await;
}

const EXPLAIN: &str = r#"
query($asset: ID!, $audience: AudienceInput, $first: Int, $diversify: Boolean) {
  explainRank(assetId: $asset, audience: $audience, first: $first, diversify: $diversify) {
    eligible ineligibleReasons rank shown first score cutoffScore holdingBack profile
    reasons { factor contribution }
  }
}"#;

#[tokio::test]
async fn explain_rank_agrees_with_recommendations_and_says_what_holds_an_asset_back() {
    let mut s = TestServer::demo().await;
    let audience = json!({ "stage": "DECISION", "role": "FINANCE", "industry": "retail" });
    let shown = recommend(&s, json!({ "audience": audience, "first": 10 })).await;
    for (i, id) in item_ids(&shown).iter().enumerate() {
        let e = s
            .gql(EXPLAIN, json!({ "asset": id, "audience": audience }))
            .await["explainRank"]
            .clone();
        assert_eq!(e["rank"], i + 1, "{id}: {e}");
        assert_eq!(e["shown"], true);
        assert!(close(
            &e["score"],
            shown["items"][i]["score"].as_f64().unwrap()
        ));
    }
    // Past the list, by score alone.
    let long = recommend(
        &s,
        json!({ "audience": audience, "first": 40, "diversify": false }),
    )
    .await;
    let ids = item_ids(&long);
    for at in [14usize, 25, 39] {
        let e = s
            .gql(
                EXPLAIN,
                json!({ "asset": ids[at], "audience": audience, "diversify": false }),
            )
            .await["explainRank"]
            .clone();
        assert_eq!(e["rank"], at + 1, "{e:#}");
        assert_eq!(e["shown"], false);
        assert!(close(
            &e["cutoffScore"],
            long["items"][9]["score"].as_f64().unwrap()
        ));
        let held = e["holdingBack"].as_array().unwrap();
        assert!(!held.is_empty(), "{e:#}");
        assert!(
            held[0].as_str().unwrap().contains("(the item at 10 gets"),
            "{e:#}"
        );
    }
    // The stage factor in an editor's words, for an asset of another stage.
    let e = s
        .gql(
            EXPLAIN,
            json!({ "asset": ids[39], "audience": audience, "diversify": false }),
        )
        .await["explainRank"]
        .clone();
    assert!(
        e["holdingBack"].as_array().unwrap().iter().any(|h| h
            .as_str()
            .unwrap()
            .starts_with("stage ")
            && h.as_str().unwrap().contains(", audience DECISION: ")),
        "{e:#}"
    );

    // Not eligible at all: retired, filtered, dismissed.
    s.gql(
        r#"mutation { retireAsset(id: "pricing-sheet") { id } }"#,
        json!({}),
    )
    .await;
    let e = s
        .gql(
            EXPLAIN,
            json!({ "asset": "pricing-sheet", "audience": audience }),
        )
        .await["explainRank"]
        .clone();
    assert_eq!((&e["eligible"], &e["rank"]), (&json!(false), &Value::Null));
    assert!(
        e["ineligibleReasons"][0]
            .as_str()
            .unwrap()
            .starts_with("retired"),
        "{e}"
    );
    let err = s
        .gql_error(
            EXPLAIN,
            json!({ "asset": "no-such-asset", "audience": audience }),
        )
        .await;
    assert_eq!(err["extensions"]["code"], "NOT_FOUND");
    s.stop().await;
}

#[tokio::test]
async fn a_dismissed_asset_is_never_shown_to_the_account_again() {
    let mut s = TestServer::demo().await;
    account(&s, "acme").await;
    let vars = json!({ "audience": { "accountId": "acme" }, "first": 5 });
    let before = item_ids(&recommend(&s, vars.clone()).await);
    let top = before[0].clone();
    let dismiss = r#"mutation($a: ID!) { dismissRecommendation(assetId: $a, accountId: "acme") }"#;
    assert_eq!(
        s.gql(dismiss, json!({ "a": top })).await["dismissRecommendation"],
        true
    );
    assert_eq!(
        s.gql(dismiss, json!({ "a": top })).await["dismissRecommendation"],
        false
    );
    let after = item_ids(&recommend(&s, vars.clone()).await);
    assert!(!after.contains(&top), "{after:?}");
    // Even with what the account read brought back.
    let all = item_ids(
        &s.gql(
            r#"{ recommendations(audience: { accountId: "acme" }, first: 50, includeConsumed: true) { recommendationId profile experiment variant placement items { position score asset { id } } } }"#,
            json!({}),
        )
        .await["recommendations"],
    );
    assert!(!all.contains(&top));
    let e = s
        .gql(
            EXPLAIN,
            json!({ "asset": top, "audience": { "accountId": "acme" } }),
        )
        .await["explainRank"]
        .clone();
    assert_eq!(e["eligible"], false);
    assert!(
        e["ineligibleReasons"][0]
            .as_str()
            .unwrap()
            .contains("dismissed"),
        "{e}"
    );
    let perf = s
        .gql(
            "{ assetPerformance(orderBy: DISMISSALS) { items { asset { id } dismissals } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        perf["assetPerformance"]["items"][0],
        json!({ "asset": { "id": top }, "dismissals": 1 })
    );
    let err = s.gql_error(dismiss, json!({ "a": "no-such-asset" })).await;
    assert_eq!(err["extensions"]["code"], "NOT_FOUND");
    s.stop().await;
}

#[tokio::test]
async fn replay_ranks_a_profile_that_favours_the_clicked_assets_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_in(dir.path(), true).await;
    account(&s, "acme").await;
    // A profile that ranks by freshness alone, and a click log that follows it: in each
    // logged list (ranked by the default), the reader clicked what freshness puts first.
    let fresh = json!({ "stage": 0, "role": 0, "industry": 0, "text": 0, "concern": 0,
                        "popularity": 0, "language": 0, "freshness": 100 });
    profile(&s, "fresh", fresh.clone()).await;
    let mut logged = 0;
    for (stage, role) in [
        ("AWARENESS", "FINANCE"),
        ("CONSIDERATION", "TECHNICAL_INTEGRATOR"),
        ("DECISION", "DECISION_MAKER"),
        ("ADOPTION", "BUSINESS_USER"),
    ] {
        let audience = json!({ "stage": stage, "role": role });
        let shown = recommend(&s, json!({ "audience": audience, "first": 100 })).await;
        let favoured = item_ids(
            &recommend(
                &s,
                json!({ "audience": audience, "first": 10, "profile": "fresh" }),
            )
            .await,
        );
        let ids = item_ids(&shown);
        let Some(pos) = ids.iter().position(|id| *id == favoured[0]) else {
            continue;
        };
        let id = shown["recommendationId"].as_str().unwrap();
        s.gql(IMPRESSIONS, json!({ "id": id, "assets": ids })).await;
        s.gql(
            ENGAGE,
            json!({ "event": { "accountId": "acme", "assetId": favoured[0], "kind": "COMPLETE",
                                "recommendationId": id, "position": pos + 1 } }),
        )
        .await;
        logged += 1;
    }
    assert!(logged >= 3, "{logged} lists logged");
    s.stop().await;

    let run = |profile: &str| {
        let out = stagefit(dir.path(), &["replay", "--profile", profile]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let measures = |report: &str, name: &str| -> Vec<f64> {
        let line = report
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {report}"));
        line.split_whitespace()
            .skip(1)
            .take(3)
            .map(|x| x.parse().unwrap())
            .collect()
    };
    let report = run("fresh");
    assert!(
        report.contains(&format!("replayed {logged} lists")),
        "{report}"
    );
    let candidate = measures(&report, "fresh");
    let logged_profile = measures(&report, "default");
    assert_eq!(candidate[0], 1.0, "every clicked asset first: {report}");
    assert!(
        candidate.iter().zip(&logged_profile).all(|(c, l)| c >= l)
            && candidate[0] > logged_profile[0],
        "{report}"
    );
    assert!(
        report.contains("fresh beats the logged profiles"),
        "{report}"
    );
    // The default against itself changes nothing.
    let same = run("default");
    let lines: Vec<Vec<f64>> = same
        .lines()
        .filter(|l| l.trim_start().starts_with("default "))
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|x| x.parse::<f64>().is_ok())
        })
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(3)
                .map(|x| x.parse().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(lines.len(), 2, "{same}");
    assert_eq!(lines[0], lines[1], "{same}");
    let out = stagefit(dir.path(), &["replay", "--profile", "missing"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no ranking profile named"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn impressions_past_the_retention_are_deleted_and_their_counts_stay() {
    use sea_orm::ConnectionTrait;
    let dir = tempfile::tempdir().unwrap();
    let mut s =
        TestServer::start_in_with(dir.path(), true, |c| c.feedback_retention_days = 1).await;
    account(&s, "acme").await;
    let list = recommend(
        &s,
        json!({ "audience": { "accountId": "acme" }, "first": 2 }),
    )
    .await;
    let id = list["recommendationId"].as_str().unwrap().to_owned();
    let asset = item_ids(&list)[0].clone();
    s.gql(
        ENGAGE,
        json!({ "event": { "accountId": "acme", "assetId": asset, "kind": "VIEW",
                           "recommendationId": id, "position": 1 } }),
    )
    .await;
    let again = s
        .gql(IMPRESSIONS, json!({ "id": id, "assets": [asset] }))
        .await;
    assert_eq!(
        again["recordImpressions"]["duplicates"], 1,
        "the click's impression is there"
    );
    s.stop().await;
    // The list as if shown three days ago (a server ranks only now): its rows carry its time.
    let url = crate::support::config_in(dir.path()).database_url;
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    let three_days_ago = (chrono::Utc::now() - chrono::Duration::days(3)).timestamp();
    for table in ["impression", "served_list"] {
        db.execute_unprepared(&format!("UPDATE {table} SET at = {three_days_ago}"))
            .await
            .unwrap();
    }
    let count = async |table: &str| -> i64 {
        db.query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index(0)
        .unwrap()
    };
    assert_eq!(
        (count("impression").await, count("served_list").await),
        (1, 1)
    );

    // The next start deletes what is past the retention; the counts stay.
    let mut s =
        TestServer::start_in_with(dir.path(), false, |c| c.feedback_retention_days = 1).await;
    let started = std::time::Instant::now();
    while (count("impression").await, count("served_list").await) != (0, 0) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the old impression was not deleted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let perf = s
        .gql(
            "{ assetPerformance { items { asset { id } impressions clicks } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        perf["assetPerformance"]["items"][0],
        json!({ "asset": { "id": asset }, "impressions": 1, "clicks": 1 })
    );
    s.stop().await;
    db.close().await.unwrap();
}

#[tokio::test]
async fn next_content_lists_are_attributed_too() {
    let mut s = TestServer::demo().await;
    let next = s
        .gql(
            r#"{ nextContent(afterAssetId: "pricing-sheet", first: 3) { recommendationId profile items { position asset { id } } } }"#,
            json!({}),
        )
        .await["nextContent"]
        .clone();
    assert_eq!(next["profile"], "default");
    assert_eq!(next["items"][2]["position"], 3);
    let context =
        stagefit::domain::ListContext::from_id(next["recommendationId"].as_str().unwrap()).unwrap();
    assert_eq!(context.after.as_deref(), Some("pricing-sheet"));
    let r = s
        .gql(
            IMPRESSIONS,
            json!({ "id": next["recommendationId"], "assets": item_ids(&next), "positions": [1, 2, 3] }),
        )
        .await;
    assert_eq!(r["recordImpressions"]["recorded"], 3);
    s.stop().await;
}

#[tokio::test]
async fn erasing_an_account_erases_its_impressions_and_dismissals() {
    let mut s = TestServer::demo().await;
    account(&s, "acme").await;
    let vars = json!({ "audience": { "accountId": "acme" }, "first": 3 });
    let list = recommend(&s, vars.clone()).await;
    let id = list["recommendationId"].as_str().unwrap().to_owned();
    let ids = item_ids(&list);
    s.gql(IMPRESSIONS, json!({ "id": id, "assets": ids })).await;
    s.gql(
        r#"mutation($a: ID!) { dismissRecommendation(assetId: $a, accountId: "acme") }"#,
        json!({ "a": ids[0] }),
    )
    .await;
    s.gql(
        r#"mutation { eraseAccount(id: "acme") { accountId } }"#,
        json!({}),
    )
    .await;
    // Its impressions are gone: the same ones are new again.
    let again = s.gql(IMPRESSIONS, json!({ "id": id, "assets": ids })).await;
    assert_eq!(
        again["recordImpressions"],
        json!({ "recorded": 3, "duplicates": 0 })
    );
    // And so is its dismissal: an account of that id starts afresh.
    account(&s, "acme").await;
    let fresh = item_ids(&recommend(&s, vars).await);
    assert!(fresh.contains(&ids[0]), "{fresh:?}");
    s.stop().await;
}

#[tokio::test]
async fn anonymous_visitors_are_assigned_by_their_own_id_and_shares_hold() {
    let mut s = TestServer::demo().await;
    profile(&s, "treatment", json!({ "freshness": 3 })).await;
    start_experiment(
        &s,
        "anon",
        json!([{ "profile": "default", "share": 0.3 }, { "profile": "treatment", "share": 0.7 }]),
    )
    .await;
    let experiment = home_experiment("anon", &[("default", 0.3), ("treatment", 0.7)]);
    let mut treated = 0;
    for n in 0..200 {
        let visitor = format!("cookie-{n}");
        let list = recommend(
            &s,
            json!({ "audience": { "visitorId": visitor }, "first": 2, "placement": "home" }),
        )
        .await;
        let variant = list["variant"].as_str().unwrap().to_owned();
        assert_eq!(variant, experiment.assign(&visitor).profile, "{visitor}");
        if variant == "treatment" {
            treated += 1;
        }
        if n < 3 {
            let again = recommend(
                &s,
                json!({ "audience": { "visitorId": visitor }, "first": 2, "placement": "home" }),
            )
            .await;
            assert_eq!(again["variant"], variant.as_str());
        }
    }
    // 70% of 200, within what chance allows (three standard deviations, 19 visitors).
    assert!((121..=159).contains(&treated), "{treated} of 200 treated");
    // Without any id there is no one to assign: the default.
    let nobody = recommend(
        &s,
        json!({ "audience": {}, "first": 2, "placement": "home" }),
    )
    .await;
    assert_eq!(
        (nobody["profile"].as_str(), nobody["variant"].as_str()),
        (Some("default"), None)
    );
    let err = s
        .gql_error(
            RECOMMEND,
            json!({ "audience": { "visitorId": "  " }, "placement": "home" }),
        )
        .await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT");
    s.stop().await;
}

#[tokio::test]
async fn an_asset_read_before_an_account_moved_forward_counts_it_once() {
    let mut s = TestServer::demo().await;
    let upsert = r#"mutation($id: ID!, $stage: Stage!) {
        upsertAccount(account: { id: $id, name: $id, industry: "retail", stage: $stage }) { id } }"#;
    s.gql(upsert, json!({ "id": "acme", "stage": "AWARENESS" }))
        .await;
    let list = recommend(
        &s,
        json!({ "audience": { "accountId": "acme" }, "first": 3 }),
    )
    .await;
    let id = list["recommendationId"].as_str().unwrap().to_owned();
    let ids = item_ids(&list);
    s.gql(IMPRESSIONS, json!({ "id": id, "assets": ids })).await;
    let view = |asset: &str| {
        json!({ "event": { "accountId": "acme", "assetId": asset, "kind": "VIEW",
                           "recommendationId": id, "position": 1 + ids.iter().position(|i| i == asset).unwrap() } })
    };
    // Read twice at awareness, then the account reaches decision and reads another.
    s.gql(ENGAGE, view(&ids[0])).await;
    s.gql(ENGAGE, view(&ids[0])).await;
    s.gql(upsert, json!({ "id": "acme", "stage": "DECISION" }))
        .await;
    s.gql(ENGAGE, view(&ids[1])).await;
    let perf = s
        .gql(
            r#"{ assetPerformance(orderBy: MOVED_FORWARD) {
                   totalCount items { asset { id } movedForward clicks } } }"#,
            json!({}),
        )
        .await["assetPerformance"]
        .clone();
    assert_eq!(perf["totalCount"], 3, "{perf}");
    assert_eq!(
        perf["items"][0],
        json!({ "asset": { "id": ids[0] }, "movedForward": 1, "clicks": 1 }),
        "{perf}"
    );
    assert_eq!(perf["items"][1]["movedForward"], 0, "{perf}");
    // Cells add their assets' counts; without `movedForward` asked, the same rows answer.
    let cells = s
        .gql("{ cellPerformance { movedForward clicks } }", json!({}))
        .await["cellPerformance"]
        .clone();
    let moved: u64 = cells
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["movedForward"].as_u64().unwrap())
        .sum();
    assert!(moved >= 1, "{cells}");
    let plain = s
        .gql("{ assetPerformance { totalCount } }", json!({}))
        .await["assetPerformance"]
        .clone();
    assert_eq!(plain["totalCount"], 3, "{plain}");
    s.stop().await;
}

#[tokio::test]
async fn a_click_on_an_anonymous_list_counts_once_and_account_lists_are_refused() {
    let mut s = TestServer::demo().await;
    let list = recommend(
        &s,
        json!({ "audience": { "stage": "DECISION", "visitorId": "v-123" }, "first": 3 }),
    )
    .await;
    let id = list["recommendationId"].as_str().unwrap().to_owned();
    let ids = item_ids(&list);
    s.gql(IMPRESSIONS, json!({ "id": id, "assets": ids })).await;
    let click = r#"mutation($id: ID!, $asset: ID!, $position: Int, $kind: EngagementKind) {
        recordClick(recommendationId: $id, assetId: $asset, position: $position, kind: $kind) }"#;
    let first = s
        .gql(click, json!({ "id": id, "asset": ids[1], "position": 2 }))
        .await;
    assert_eq!(first["recordClick"], true);
    // Reported again (a retry, a second tab), it counts nothing more.
    let again = s.gql(click, json!({ "id": id, "asset": ids[1] })).await;
    assert_eq!(again["recordClick"], false);
    let done = s
        .gql(
            click,
            json!({ "id": id, "asset": ids[1], "kind": "COMPLETE" }),
        )
        .await;
    assert_eq!(done["recordClick"], true);
    let perf = s
        .gql(
            r#"{ assetPerformance(orderBy: CLICKS, first: 1) {
                   items { asset { id } impressions clicks completions } } }"#,
            json!({}),
        )
        .await["assetPerformance"]["items"][0]
        .clone();
    assert_eq!(
        perf,
        json!({ "asset": { "id": ids[1] }, "impressions": 1, "clicks": 1, "completions": 1 })
    );
    // Not in the list, or not at that position: refused, nothing counted.
    for (asset, position) in [
        ("pricing-sheet-that-is-not-there", None),
        (ids[1].as_str(), Some(3)),
    ] {
        let err = s
            .gql_error(
                click,
                json!({ "id": id, "asset": asset, "position": position }),
            )
            .await;
        assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err}");
    }
    // A list shown to an account records its clicks with recordEngagement.
    account(&s, "acme").await;
    let owned = recommend(
        &s,
        json!({ "audience": { "accountId": "acme" }, "first": 2 }),
    )
    .await;
    let err = s
        .gql_error(
            click,
            json!({ "id": owned["recommendationId"], "asset": item_ids(&owned)[0] }),
        )
        .await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("recordEngagement"),
        "{err}"
    );
    s.stop().await;
}

#[tokio::test]
async fn generated_feedback_is_signed_counted_and_tied_to_its_experiment() {
    let dir = crate::support::imported_demo();
    let out = stagefit(
        dir.path(),
        &[
            "generate-feedback",
            "--lists",
            "200",
            "--days",
            "10",
            "--click-rate",
            "0.2",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.starts_with("200 lists: 2000 impressions"), "{said}");
    let mut s = TestServer::start_in(dir.path(), false).await;
    let e = s.gql(EXPERIMENT, json!({ "name": "bench" })).await["experiment"].clone();
    let shown: u64 = e["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["impressions"].as_u64().unwrap())
        .sum();
    let clicks: u64 = e["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["clicks"].as_u64().unwrap())
        .sum();
    // Half the lists are in the experiment, split between its two variants.
    assert_eq!(shown, 1000, "{e}");
    assert!(clicks > 100, "{e}");
    // All of them count in analytics, as the command said.
    let mut items = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = s
            .gql(
                "query($after: String) { assetPerformance(first: 100, after: $after) {
                   items { impressions clicks } pageInfo { endCursor hasNextPage } } }",
                json!({ "after": after }),
            )
            .await["assetPerformance"]
            .clone();
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    let sum = |field: &str| -> u64 { items.iter().map(|i| i[field].as_u64().unwrap()).sum() };
    assert_eq!(sum("impressions"), 2000);
    assert!(
        said.contains(&format!("2000 impressions, {} clicks", sum("clicks"))),
        "{said}"
    );
    s.stop().await;

    // The bulk path wrote every rollup level as the impressions' flags say.
    let url = crate::support::config_in(dir.path()).database_url;
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    let numbers = |sql: &'static str| crate::support::sql_numbers(&db, sql);
    let shown = numbers(
        "SELECT COUNT(*), CAST(SUM(CASE WHEN clicked THEN 1 ELSE 0 END) AS BIGINT), \
         CAST(SUM(CASE WHEN completed THEN 1 ELSE 0 END) AS BIGINT) FROM impression",
    )
    .await;
    assert_eq!(shown[0], 2000);
    assert_eq!(shown[1] as u64, sum("clicks"));
    assert!(shown[2] > 0 && shown[2] < shown[1], "{shown:?}");
    for sql in [
        "SELECT CAST(SUM(impressions) AS BIGINT), CAST(SUM(clicks) AS BIGINT), \
         CAST(SUM(completions) AS BIGINT) FROM feedback_daily",
        "SELECT CAST(SUM(impressions) AS BIGINT), CAST(SUM(clicks) AS BIGINT), \
         CAST(SUM(completions) AS BIGINT) FROM feedback_weekly",
        "SELECT CAST(SUM(impressions) AS BIGINT), CAST(SUM(clicks) AS BIGINT), \
         CAST(SUM(completions) AS BIGINT) FROM feedback_four_weekly",
        "SELECT CAST(SUM(impressions) AS BIGINT), CAST(SUM(clicks) AS BIGINT), \
         CAST(SUM(completions) AS BIGINT) FROM feedback_total",
    ] {
        assert_eq!(numbers(sql).await, shown, "{sql}");
    }
    let lists =
        numbers("SELECT COUNT(*), COUNT(DISTINCT context), COUNT(DISTINCT at) FROM served_list")
            .await;
    assert_eq!(lists[0], 200);
    assert_eq!(lists[1], 200);
    db.close().await.unwrap();
}
