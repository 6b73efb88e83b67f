//! A library nobody tagged: tags read from the text and where each came from, lists that
//! differ by role, suggestions a person accepts, the review file.

use serde_json::{Value, json};

use crate::support::{TestServer, stagefit, text};

/// A small vendor site as it comes: no stage, role, industry or concern anywhere, and for
/// some pages no content type either (the URL's folder says it).
fn library() -> Vec<Value> {
    let page = |id: &str, title: &str, url: &str, body: &str| json!({ "id": id, "title": title, "url": url, "body": body });
    let mut assets = vec![
        page(
            "docs-install",
            "Install the SDK",
            "/docs/install",
            "Install the SDK with the CLI, configure the API key and call the first endpoint.",
        ),
        page(
            "docs-api-reference",
            "API reference",
            "/docs/api",
            "Every endpoint, its parameters and JSON responses; authentication with OAuth.",
        ),
        page(
            "docs-webhooks",
            "Webhooks",
            "/docs/webhooks",
            "Configure webhook endpoints, verify signatures, retry deliveries from the server.",
        ),
        page(
            "docs-kubernetes",
            "Deploy on Kubernetes",
            "/docs/deploy/kubernetes",
            "Deploy the server with Docker images on Kubernetes; database and latency tuning.",
        ),
        page(
            "pricing",
            "Pricing and plans",
            "/pricing",
            "Plans, price per seat, budget and cost; annual billing and invoices.",
        ),
        page(
            "customers-st-mary",
            "How St Mary's hospital cut patient wait times",
            "/customers/st-marys-hospital",
            "The hospital's patients waited less; the clinical team saw results in weeks.",
        ),
        page(
            "customers-northbank",
            "Northbank: a bank's growth strategy",
            "/customers/northbank",
            "The bank's executive team built a business case, ROI and revenue growth.",
        ),
        page(
            "vs-globex",
            "Acme vs Globex: an honest comparison",
            "/vs/globex",
            "Compare features and alternatives; evaluate which fits your requirements.",
        ),
        page(
            "changelog-4-2",
            "Release notes 4.2",
            "/changelog/4-2",
            "This release adds a new API endpoint and upgrades the SDK version.",
        ),
        page(
            "blog-trends",
            "Why revenue teams struggle: trends for leaders",
            "/blog/trends",
            "The challenge executives face; strategy, growth and the state of the market.",
        ),
        page(
            "blog-dashboards",
            "Ten dashboard tips for marketing teams",
            "/blog/dashboard-tips",
            "Tips for campaign reports, templates and team workflows.",
        ),
        page(
            "security",
            "Security and compliance",
            "/security",
            "SOC 2, GDPR, encryption and audit; the contract terms procurement asks for.",
        ),
    ];
    assets.extend([
        page(
            "blog-hospital-records",
            "Patient records for hospital networks",
            "/blog/hospital-records",
            "How hospital IT teams move patient records; clinical workflows and compliance.",
        ),
        page(
            "guide-part-1",
            "Retention playbook, part 1: measure it",
            "/guides/retention-playbook-part-1",
            "Measure customer retention and churn cohorts before changing anything.",
        ),
        page(
            "guide-part-2",
            "Retention playbook, part 2: act on it",
            "/guides/retention-playbook-part-2",
            "Turn the cohorts into onboarding changes that keep customers.",
        ),
    ]);
    // Twelve more pages that say nothing telling: the ties a list must not break by
    // index order.
    for i in 0..12 {
        assets.push(page(
            &format!("note-{i:02}"),
            &format!("Note {i}"),
            &format!("/blog/note-{i}"),
            "Lorem ipsum dolor sit amet.",
        ));
    }
    assets
}

async fn untagged_server() -> TestServer {
    let s = TestServer::empty().await;
    let dir = s.dir().to_owned();
    let path = dir.join("site.jsonl");
    let lines: String = library()
        .iter()
        .map(|a| format!("{a}\n"))
        .collect::<String>();
    std::fs::write(&path, lines).unwrap();
    let path = path.to_str().unwrap().to_owned();
    let out = tokio::task::spawn_blocking(move || stagefit(&dir, &["import", &path]))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The server follows the import through the change log.
    for _ in 0..200 {
        let data = s
            .gql(r#"{ assets(first: 1) { totalCount } }"#, json!({}))
            .await;
        if data["assets"]["totalCount"] == 27 {
            return s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the server never showed the import");
}

const EVIDENCE: &str = r#"query($id: ID!) { asset(id: $id) { contentType stages roles industries
    tagEvidence { field value source confidence } } }"#;

fn evidence<'a>(asset: &'a Value, field: &str) -> Vec<&'a Value> {
    asset["tagEvidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["field"] == field)
        .collect()
}

#[tokio::test]
async fn an_untagged_library_says_where_each_tag_comes_from() {
    let mut s = untagged_server().await;
    let asset = |id: &'static str| {
        let s = &s;
        async move { s.gql(EVIDENCE, json!({ "id": id })).await["asset"].clone() }
    };
    // The folder named the type; the text named the stage and the readers.
    let docs = asset("docs-install").await;
    assert_eq!(docs["contentType"], "DOCUMENTATION", "{docs}");
    assert_eq!(docs["stages"], json!(["ADOPTION"]), "{docs}");
    assert_eq!(docs["roles"], json!(["TECHNICAL_INTEGRATOR"]), "{docs}");
    let role = evidence(&docs, "ROLE")[0];
    assert_eq!(role["source"], "INFERRED", "{docs}");
    assert!(role["confidence"].as_f64().unwrap() >= 0.45, "{docs}");
    let pricing = asset("pricing").await;
    assert_eq!(pricing["contentType"], "PRICING_SHEET");
    assert_eq!(pricing["stages"][0], "DECISION", "{pricing}");
    let hospital = asset("customers-st-mary").await;
    assert_eq!(hospital["contentType"], "CASE_STUDY");
    assert_eq!(hospital["industries"], json!(["healthcare"]), "{hospital}");
    assert_eq!(evidence(&hospital, "INDUSTRY")[0]["source"], "INFERRED");
    let notes = asset("changelog-4-2").await;
    assert_eq!(notes["contentType"], "RELEASE_NOTES", "{notes}");
    assert_eq!(notes["stages"], json!(["ADOPTION"]), "{notes}");
    // A page that says nothing: the type's default stage, and no role known.
    let blank = asset("note-03").await;
    assert_eq!(evidence(&blank, "STAGE")[0]["source"], "DEFAULT", "{blank}");
    let role = evidence(&blank, "ROLE")[0];
    assert_eq!(role["source"], "DEFAULT", "{blank}");
    assert!(role["value"].is_null(), "{blank}");

    // The reasons say it too.
    let list = s
        .gql(
            r#"{ recommendations(audience: { stage: ADOPTION, role: TECHNICAL_INTEGRATOR }, first: 10) {
                items { asset { id } reasons { factor detail } } } }"#,
            json!({}),
        )
        .await;
    let details: Vec<String> = list["recommendations"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["reasons"].as_array().unwrap().clone())
        .map(|r| r["detail"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.starts_with("adoption stage, the buyer's own, inferred from the text (0.")),
        "{details:#?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.starts_with("written for technical integrators, inferred from the text")),
        "{details:#?}"
    );
    s.stop().await;
}

const LIST: &str = r#"query($stage: Stage!, $role: Role!) { recommendations(audience: { stage: $stage, role: $role }, first: 5) {
    items { score asset { id } } } }"#;

fn ids(list: &Value) -> Vec<String> {
    list["recommendations"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["asset"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn without_a_query_each_role_gets_its_own_list() {
    let mut s = untagged_server().await;
    let list = |stage: &'static str, role: &'static str| {
        let s = &s;
        async move { ids(&s.gql(LIST, json!({ "stage": stage, "role": role })).await) }
    };
    // The same stage, three seats: three lists.
    let technical = list("CONSIDERATION", "TECHNICAL_INTEGRATOR").await;
    let executive = list("CONSIDERATION", "DECISION_MAKER").await;
    let finance = list("CONSIDERATION", "FINANCE").await;
    assert_ne!(technical, executive);
    assert_ne!(executive, finance);
    assert_ne!(technical, finance);
    // Each seat finds what the text says is written for it.
    let technical = list("ADOPTION", "TECHNICAL_INTEGRATOR").await;
    assert!(
        technical
            .iter()
            .take(3)
            .filter(|id| id.starts_with("docs-"))
            .count()
            >= 2,
        "{technical:?}"
    );
    let finance = list("DECISION", "FINANCE").await;
    assert!(
        finance.iter().take(2).any(|id| id == "pricing"),
        "{finance:?}"
    );
    let executive = list("DECISION", "DECISION_MAKER").await;
    assert!(
        executive
            .iter()
            .take(3)
            .any(|id| id.starts_with("customers-")),
        "{executive:?}"
    );
    // Pages that say nothing never come first by their place in the index.
    for list in [&technical, &executive, &finance] {
        assert!(!list[0].starts_with("note-"), "{list:?}");
    }
    s.stop().await;
}

#[tokio::test]
async fn accepted_suggestions_become_declared_and_bad_ones_write_nothing() {
    let mut s = untagged_server().await;
    let accept = r#"mutation($accept: [TagAcceptInput!]!) { acceptTagSuggestions(accept: $accept) {
        updated assets { id roles tagEvidence { field value source } } } }"#;
    // A bad row among good ones: nothing is written, each problem is named.
    let error = s
        .gql_error(
            accept,
            json!({ "accept": [
                { "assetId": "pricing", "field": "ROLE", "value": "FINANCE" },
                { "assetId": "pricing", "field": "STAGE", "value": "closing" },
                { "assetId": "nope", "field": "ROLE", "value": "FINANCE" },
            ] }),
        )
        .await;
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("accept[1]"), "{message}");
    assert!(message.contains("accept[2]: no asset"), "{message}");
    let pricing = s.gql(EVIDENCE, json!({ "id": "pricing" })).await;
    assert_ne!(evidence(&pricing["asset"], "ROLE")[0]["source"], "DECLARED");

    let data = s
        .gql(
            accept,
            json!({ "accept": [{ "assetId": "pricing", "field": "ROLE", "value": "finance" }] }),
        )
        .await;
    let asset = &data["acceptTagSuggestions"]["assets"][0];
    assert_eq!(asset["roles"], json!(["FINANCE"]), "{data}");
    let role = evidence(asset, "ROLE")[0];
    assert_eq!(role["source"], "DECLARED", "{data}");
    // Declared now: an export carries it as the content team's own.
    s.stop().await;
}

#[tokio::test]
async fn a_review_file_round_trips_through_the_command_line() {
    let mut s = untagged_server().await;
    let dir = s.dir().to_owned();
    let review = dir.join("review.csv");
    let review_path = review.to_str().unwrap().to_owned();
    let out = {
        let (dir, path) = (dir.clone(), review_path.clone());
        tokio::task::spawn_blocking(move || {
            stagefit(
                &dir,
                &[
                    "tags",
                    "suggest",
                    "--min-confidence",
                    "0.5",
                    "--output",
                    &path,
                ],
            )
        })
        .await
        .unwrap()
    };
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = std::fs::read_to_string(&review).unwrap();
    assert!(
        file.starts_with("asset_id,title,field,value,confidence,evidence,accept\n"),
        "{file}"
    );
    let line = file
        .lines()
        .find(|l| l.starts_with("docs-webhooks,") && l.contains(",role,TECHNICAL_INTEGRATOR,"))
        .unwrap_or_else(|| panic!("no role suggestion for the webhooks page: {file}"))
        .to_owned();
    // A typo in the accept column: named by its line, nothing declared.
    let bad = file.replacen(&line, &format!("{line}perhaps"), 1);
    std::fs::write(&review, &bad).unwrap();
    let out = {
        let (dir, path) = (dir.clone(), review_path.clone());
        tokio::task::spawn_blocking(move || stagefit(&dir, &["tags", "apply", &path]))
            .await
            .unwrap()
    };
    assert!(!out.status.success());
    let line_number = bad.lines().position(|l| l.ends_with("perhaps")).unwrap() + 1;
    assert!(
        text(&out.stderr).contains(&format!("line {line_number}: accept")),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(&review, file.replacen(&line, &format!("{line}yes"), 1)).unwrap();
    let out = {
        let (dir, path) = (dir.clone(), review_path.clone());
        tokio::task::spawn_blocking(move || stagefit(&dir, &["tags", "apply", &path]))
            .await
            .unwrap()
    };
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("declared 1 accepted tags on 1 assets"));
    for _ in 0..200 {
        let data = s.gql(EVIDENCE, json!({ "id": "docs-webhooks" })).await;
        if evidence(&data["asset"], "ROLE")[0]["source"] == "DECLARED" {
            // The export says which tags are declared and where the rest came from.
            let export = dir.join("export.jsonl");
            let export_path = export.to_str().unwrap().to_owned();
            let out =
                tokio::task::spawn_blocking(move || stagefit(&dir, &["export", &export_path]))
                    .await
                    .unwrap();
            assert!(out.status.success(), "{}", text(&out.stderr));
            let exported = std::fs::read_to_string(&export).unwrap();
            let webhooks: Value = exported
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .find(|a| a["id"] == "docs-webhooks")
                .unwrap();
            assert_eq!(webhooks["roles"], json!(["TECHNICAL_INTEGRATOR"]));
            assert!(
                webhooks["stages"].as_array().unwrap().is_empty(),
                "{webhooks}"
            );
            let lines: Vec<&str> = webhooks["tag_evidence"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap())
                .collect();
            assert!(
                lines.contains(&"role TECHNICAL_INTEGRATOR declared"),
                "{lines:?}"
            );
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with("stage ADOPTION inferred 0.")),
                "{lines:?}"
            );
            s.stop().await;
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the server never showed the declared role");
}

#[tokio::test]
async fn next_content_follows_the_seeds_subject_industry_and_sequel() {
    let mut s = untagged_server().await;
    let q = r#"query($id: ID!, $first: Int) { nextContent(afterAssetId: $id, first: $first) {
        audience { industry industrySource }
        items { asset { id } reasons { factor value detail } } } }"#;
    let next = |id: &'static str, first: i64| {
        let s = &s;
        async move { s.gql(q, json!({ "id": id, "first": first })).await["nextContent"].clone() }
    };
    // After a hospital's story: the healthcare page first, and the industry was read
    // from the seed's text.
    let hospital = next("customers-st-mary", 5).await;
    assert_eq!(hospital["audience"]["industry"], "healthcare", "{hospital}");
    assert_eq!(
        hospital["items"][0]["asset"]["id"], "blog-hospital-records",
        "{hospital:#}"
    );
    // After part 1 of a playbook, part 2, and the reason says so.
    let playbook = next("guide-part-1", 5).await;
    let first = &playbook["items"][0];
    assert_eq!(first["asset"]["id"], "guide-part-2", "{playbook:#}");
    assert!(
        first["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["factor"] == "SEQUEL" && r["value"] == 1.0),
        "{first:#}"
    );
    // The top five do not change with how many are asked for.
    for seed in [
        "customers-st-mary",
        "docs-install",
        "blog-trends",
        "note-04",
    ] {
        let five = ids_of(&next(seed, 5).await);
        let twenty = ids_of(&next(seed, 20).await);
        assert_eq!(five[..], twenty[..five.len()], "{seed}");
    }
    s.stop().await;
}

fn ids_of(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["asset"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn searches_find_synonyms_and_say_when_nothing_matches_well() {
    let mut s = untagged_server().await;
    let q = r#"query($q: String!) { search(query: $q, first: 5) { noGoodMatch items { asset { id } } } }"#;
    // "churn" is in the starting groups with "retention".
    let churn = s.gql(q, json!({ "q": "reduce attrition" })).await["search"].clone();
    let found: Vec<&str> = churn["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["asset"]["id"].as_str().unwrap())
        .collect();
    assert!(found.contains(&"guide-part-1"), "{churn}");
    assert_eq!(churn["noGoodMatch"], false);
    // Function words say nothing: a title made of them does not outrank the page on what
    // the question asks.
    s.gql(
        "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { created } }",
        json!({ "a": [{ "id": "musings", "title": "How it does what it does", "url": "/blog/musings",
            "body": "It is what it is, and that is how it does it.", "contentType": "BLOG_POST" }] }),
    )
    .await;
    let deploy = s.gql(q, json!({ "q": "how does it deploy" })).await["search"].clone();
    assert_eq!(
        deploy["items"][0]["asset"]["id"], "docs-kubernetes",
        "{deploy}"
    );
    assert!(!deploy.to_string().contains("musings"), "{deploy}");
    // Editors replace the groups; a bad group is refused with every problem named.
    let bad = s
        .gql_error(
            "mutation($g: [[String!]!]!) { setSynonyms(groups: $g) }",
            json!({ "g": [["only one"], ["a|b", "c"]] }),
        )
        .await;
    assert_eq!(bad["extensions"]["code"], "BAD_USER_INPUT", "{bad}");
    let message = bad["message"].as_str().unwrap();
    assert!(
        message.contains("group 0") && message.contains("group 1"),
        "{message}"
    );
    let set = s
        .gql(
            "mutation($g: [[String!]!]!) { setSynonyms(groups: $g) }",
            json!({ "g": [["Kubernetes", "k8s"]] }),
        )
        .await;
    assert_eq!(set["setSynonyms"], json!([["kubernetes", "k8s"]]));
    let k8s = s.gql(q, json!({ "q": "k8s" })).await["search"].clone();
    assert_eq!(k8s["items"][0]["asset"]["id"], "docs-kubernetes", "{k8s}");
    // Churn is no longer a group: "attrition" alone finds nothing.
    let gone = s.gql(q, json!({ "q": "attrition" })).await["search"].clone();
    assert!(gone["items"].as_array().unwrap().is_empty(), "{gone}");
    // Only a passing mention of one word of four: no good match, and no list of
    // passing mentions.
    let passing = s.gql(q, json!({ "q": "hamster gerbil hutch audit" })).await["search"].clone();
    assert_eq!(passing["noGoodMatch"], true, "{passing}");
    assert!(passing["items"].as_array().unwrap().is_empty(), "{passing}");
    // Most of the query in one page is a good match.
    let good = s
        .gql(q, json!({ "q": "hamster SOC 2 GDPR encryption audit" }))
        .await["search"]
        .clone();
    assert_eq!(good["noGoodMatch"], false, "{good}");
    assert_eq!(good["items"][0]["asset"]["id"], "security", "{good}");
    s.stop().await;
}

#[tokio::test]
async fn synonyms_of_several_words_and_hyphenated_words_are_searched_as_phrases() {
    let mut s = untagged_server().await;
    let upsert = "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { created } }";
    let page = |id: &str, title: &str, body: &str| json!({ "id": id, "title": title, "body": body, "url": format!("/docs/{id}"), "contentType": "DOCUMENTATION" });
    s.gql(
        upsert,
        json!({ "a": [
            page("sql-case", "CASE expressions", "A case returns a value; study each case and study the examples of a case."),
            page("stories", "Stories", "Every case study of our customers in one place."),
            page("late-rows", "Out-of-order rows", "Rows that arrive out-of-order are sorted before the commit."),
            page("sort-order", "ORDER BY", "Order rows; data in order; order of data, out of the box, in order."),
        ] }),
    )
    .await;
    let q = r#"query($q: String!) { search(query: $q, first: 5) { items { asset { id } } } }"#;
    // "success stories" gains "case study" from the starting groups (word stems compared,
    // so the plural counts): the page that says "case study" comes first, and the SQL page
    // with "case" and "study" apart is not found through the synonym.
    let stories = ids_of(&s.gql(q, json!({ "q": "success stories" })).await["search"]);
    assert_eq!(
        stories.first().map(String::as_str),
        Some("stories"),
        "{stories:?}"
    );
    assert!(!stories.contains(&"sql-case".to_owned()), "{stories:?}");
    // A hyphen inside a word is prose: its words count, and again together, so the page
    // that has them together comes before the one with "order" and "data" apart.
    let late = ids_of(&s.gql(q, json!({ "q": "out-of-order data" })).await["search"]);
    assert_eq!(
        late.first().map(String::as_str),
        Some("late-rows"),
        "{late:?}"
    );
    // A leading hyphen still excludes.
    let not = ids_of(&s.gql(q, json!({ "q": "rows -commit" })).await["search"]);
    assert!(!not.contains(&"late-rows".to_owned()), "{not:?}");
    s.stop().await;
}

#[tokio::test]
async fn a_page_is_found_by_the_words_of_its_address() {
    let mut s = untagged_server().await;
    let upsert = "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { created } }";
    s.gql(
        upsert,
        json!({ "a": [
            // A metaphor for a title; the address says what the page is about.
            { "id": "paint", "title": "Waiting for code to build is like watching paint dry",
              "url": "https://example.com/blog/prebuilds/", "body": "Every minute spent waiting is lost.",
              "contentType": "BLOG_POST" },
            // A title that says what its address says gains nothing from it.
            { "id": "sync", "title": "Sync your settings", "url": "/blog/sync-your-settings-prebuilds",
              "body": "Settings follow you.", "contentType": "BLOG_POST" },
        ] }),
    )
    .await;
    let q = r#"query($q: String!) { search(query: $q, first: 5) { items { asset { id } } } }"#;
    let found = ids_of(&s.gql(q, json!({ "q": "prebuilds" })).await["search"]);
    assert_eq!(found, ["paint"], "{found:?}");
    // After the page, the pages on its subject: its address words join the subject.
    s.gql(
        upsert,
        json!({ "a": [{ "id": "docs-prebuilds", "title": "Prebuilds", "url": "/docs/prebuilds",
            "body": "Prebuilds get a workspace ready ahead of time on every push.",
            "contentType": "DOCUMENTATION" }] }),
    )
    .await;
    let next = s
        .gql(
            r#"{ nextContent(afterAssetId: "paint", first: 3) { items { asset { id } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        next["nextContent"]["items"][0]["asset"]["id"], "docs-prebuilds",
        "{next}"
    );
    s.stop().await;
}

#[tokio::test]
async fn oversized_synonym_lists_and_acceptances_are_refused_whole() {
    let mut s = untagged_server().await;
    let groups: Vec<Vec<String>> = (0..1_001)
        .map(|i| vec![format!("w{i}a"), format!("w{i}b")])
        .collect();
    let started = std::time::Instant::now();
    let error = s
        .gql_error(
            "mutation($g: [[String!]!]!) { setSynonyms(groups: $g) }",
            json!({ "g": groups }),
        )
        .await;
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("at most 1000 groups")
    );
    let accept: Vec<Value> = (0..10_001)
        .map(|_| json!({ "assetId": "pricing", "field": "ROLE", "value": "FINANCE" }))
        .collect();
    let error = s
        .gql_error(
            r#"mutation($a: [TagAcceptInput!]!) { acceptTagSuggestions(accept: $a) { updated } }"#,
            json!({ "a": accept }),
        )
        .await;
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Nothing was written: the starting groups stand, the role is still read.
    let data = s.gql("{ synonyms }", json!({})).await;
    assert!(data["synonyms"].as_array().unwrap().len() > 5, "{data}");
    let pricing = s.gql(EVIDENCE, json!({ "id": "pricing" })).await;
    assert_ne!(evidence(&pricing["asset"], "ROLE")[0]["source"], "DECLARED");
    s.stop().await;
}

/// An install guide as it comes, with the links on the page: the pages it sends its
/// reader to count as its continuations and say why; links taken off the page (here
/// through `upsertAssets`) take that back.
#[tokio::test]
async fn next_content_follows_the_links_on_the_seed() {
    let page = |id: &str, title: &str, url: &str, body: &str| json!({ "id": id, "title": title, "url": url, "body": body, "content_type": "implementation-guide" });
    let seed = page(
        "install-kubernetes",
        "Install on Kubernetes",
        "/docs/install/kubernetes",
        "Install the server on any Kubernetes cluster with Helm. Then set up its database, \
         its storage and its ingress.",
    );
    let mut linked_seed = seed.clone();
    linked_seed["links"] = json!([
        "./database",
        "../guides/ingress.md#tls",
        "/docs/install/storage/",
        "https://helm.sh/docs",
        "mailto:ops@example.com",
        "//cdn.example.com/x",
        "./kubernetes"
    ]);
    let mut library = vec![
        linked_seed,
        page(
            "database",
            "Database",
            "/docs/install/database",
            "Point the server at a PostgreSQL database before you install it on Kubernetes.",
        ),
        page(
            "storage",
            "Storage",
            "/docs/install/storage",
            "Keep the files of the server in an object store bucket when you install it on Kubernetes.",
        ),
        page(
            "ingress",
            "Ingress",
            "/docs/guides/ingress",
            "Serve the domain of the server over HTTPS on Kubernetes with a certificate.",
        ),
    ];
    // Pages that share the guide's words but that it does not link to.
    for (id, title) in [
        ("install-gke", "Install on Google Kubernetes Engine"),
        ("install-eks", "Install on Amazon Kubernetes (EKS)"),
        ("install-aks", "Install on Azure Kubernetes Service"),
    ] {
        library.push(page(
            id,
            title,
            &format!("/docs/install/{id}"),
            "Install the server on a Kubernetes cluster with Helm charts.",
        ));
    }
    let mut s = TestServer::empty().await;
    let dir = s.dir().to_owned();
    let file = dir.join("site.jsonl");
    std::fs::write(
        &file,
        library.iter().map(|a| format!("{a}\n")).collect::<String>(),
    )
    .unwrap();
    let path = file.to_str().unwrap().to_owned();
    let out = tokio::task::spawn_blocking(move || stagefit(&dir, &["import", &path]))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let q = r#"{ asset(id: "install-kubernetes") { links }
        nextContent(afterAssetId: "install-kubernetes", first: 6) {
            items { asset { id } reasons { factor value detail } } } }"#;
    // Every other page with its score and SEQUEL reason, once `done` holds.
    let list = |done: fn(&Value) -> bool| {
        let s = &s;
        async move {
            for _ in 0..200 {
                let data = s.gql(q, json!({})).await;
                if done(&data) {
                    let items = data["nextContent"]["items"].as_array().unwrap().clone();
                    return (data, items);
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!(
                "the server never showed the change: {:#}",
                s.gql(q, json!({})).await
            );
        }
    };
    let sequel = |item: &Value| -> Option<(f64, String)> {
        item["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["factor"] == "SEQUEL")
            .map(|r| {
                (
                    r["value"].as_f64().unwrap(),
                    r["detail"].as_str().unwrap().to_owned(),
                )
            })
    };
    // The server follows the import through the change log, maybe in more than one step:
    // ask once the index holds all seven.
    for _ in 0..200 {
        let data = s
            .gql("{ assets(first: 1) { totalCount } }", json!({}))
            .await;
        if data["assets"]["totalCount"] == 7 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (data, with_links) =
        list(|d| d["nextContent"]["items"].as_array().map_or(0, Vec::len) == 6).await;
    // Linked and on the subject: first.
    assert_eq!(with_links[0]["asset"]["id"], "database", "{data:#}");
    // The links are kept as written.
    assert_eq!(
        data["asset"]["links"][1], "../guides/ingress.md#tls",
        "{data:#}"
    );
    for item in &with_links {
        let id = item["asset"]["id"].as_str().unwrap();
        let linked = ["database", "ingress", "storage"].contains(&id);
        let expected = if linked {
            (1.0, "\"Install on Kubernetes\" links to it".to_owned())
        } else {
            (0.0, "not a continuation".to_owned())
        };
        assert_eq!(sequel(item), Some(expected), "{item:#}");
    }

    // The same page without its links: nothing continues it any more.
    let mut unlinked = seed.clone();
    unlinked["contentType"] = unlinked["content_type"].take();
    unlinked.as_object_mut().unwrap().remove("content_type");
    let saved = s
        .gql(
            "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { updated } }",
            json!({ "a": [unlinked] }),
        )
        .await;
    assert_eq!(saved["upsertAssets"]["updated"], 1, "{saved}");
    let (data, without) = list(|d| {
        d["asset"]["links"].as_array().is_some_and(Vec::is_empty)
            && d["nextContent"]["items"].as_array().map_or(0, Vec::len) == 6
    })
    .await;
    for item in &without {
        assert_eq!(
            sequel(item),
            None,
            "no SEQUEL reason without links: {data:#}"
        );
    }
    // Links say nothing of the text: each page is as near the guide's subject as before,
    // although the index still holds the guide's old copy (deleted, not yet merged away).
    let text = |items: &[Value], id: &str| -> (f64, String) {
        let item = items.iter().find(|i| i["asset"]["id"] == id).unwrap();
        let reason = item["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["factor"] == "TEXT");
        let reason = reason.unwrap();
        (
            reason["value"].as_f64().unwrap(),
            reason["detail"].as_str().unwrap().to_owned(),
        )
    };
    for item in &with_links {
        let id = item["asset"]["id"].as_str().unwrap();
        let (before, said_before) = text(&with_links, id);
        let (after, said_after) = text(&without, id);
        assert_eq!(said_before, said_after, "{id}: {data:#}");
        assert!((before - after).abs() < 0.05, "{id}: {before} -> {after}");
    }
    s.stop().await;
}

/// A link that cannot be one is refused with its line, and nothing is imported.
#[test]
fn bad_links_are_named_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("links.jsonl");
    let many: Vec<String> = (0..101).map(|i| format!("/p/{i}")).collect();
    let rows = [
        json!({ "id": "ok", "title": "Fine", "content_type": "ebook", "links": ["/a", "b.html"] }),
        json!({ "id": "spaced", "title": "Spaced", "content_type": "ebook", "links": ["/a page"] }),
        json!({ "id": "many", "title": "Many", "content_type": "ebook", "links": many }),
        json!({ "id": "number", "title": "Number", "content_type": "ebook", "links": [7] }),
        json!({ "id": "script", "title": "Script", "content_type": "ebook", "links": ["javascript:alert(1)"] }),
    ];
    std::fs::write(
        &file,
        rows.iter().map(|r| format!("{r}\n")).collect::<String>(),
    )
    .unwrap();
    let out = stagefit(dir.path(), &["import", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("links.jsonl:2: [spaced] links: link \"/a page\" contains a space"),
        "{stderr}"
    );
    assert!(
        stderr.contains("links.jsonl:3: [many] links: has more than 100 values"),
        "{stderr}"
    );
    assert!(
        stderr.contains("links.jsonl:4: links: expected a list of strings"),
        "{stderr}"
    );
    assert!(
        stderr.contains("links.jsonl:5: [script] links: link \"javascript:alert(1)\" is a script"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");
}
