//! The coverage page in a real browser: Debian's headless Chromium driven by
//! `tests/browser/coverage.mjs` (playwright-core, installed by scripts/test.sh). What the
//! page shows is checked against the API's own `coverage` answer.

use serde_json::{Value, json};

use crate::support::{TestServer, ids};

/// Runs a script of `tests/browser` with node and returns the JSON it prints: what the
/// pages showed.
async fn browse(script: &str, args: &[&str]) -> Value {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");
    assert!(
        std::path::Path::new(dir)
            .join("node_modules/playwright-core")
            .exists(),
        "the browser test needs playwright-core: run scripts/test.sh (or npm ci in tests/browser)"
    );
    let out = tokio::process::Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .output()
        .await
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json from the pages")
}

#[tokio::test]
async fn the_coverage_page_renders_the_heatmap_and_lists_a_cells_assets() {
    let mut s = TestServer::demo().await;
    let shots = tempfile::tempdir().unwrap();
    let screenshot = std::env::var("STAGEFIT_COVERAGE_SCREENSHOT")
        .unwrap_or_else(|_| shots.path().join("coverage.png").display().to_string());
    let seen = browse("coverage.mjs", &[&s.url, &screenshot]).await;
    assert_eq!(
        seen["external"],
        json!([]),
        "the page reached outside the server"
    );
    assert_eq!(seen["errors"], json!([]), "script errors on the page");

    // Every cell the browser shows is the API's count for that stage and role.
    let api = s
        .gql(
            r#"{ coverage(by: [STAGE, ROLE]) { assetCount gaps { stage }
                 cells { stage role count assetIds } } }"#,
            json!({}),
        )
        .await["coverage"]
        .clone();
    let shown = seen["roleCells"].as_array().unwrap();
    assert_eq!(shown.len(), 25);
    for cell in api["cells"].as_array().unwrap() {
        let td = shown
            .iter()
            .find(|c| c["stage"] == cell["stage"] && c["column"] == cell["role"])
            .unwrap_or_else(|| panic!("no cell for {cell}"));
        assert_eq!(td["count"], cell["count"], "{cell}");
        assert_eq!(td["gap"], cell["count"] == 0, "{cell}");
    }
    let legend = seen["legend"].as_str().unwrap();
    assert!(
        legend.starts_with(&format!("{} published assets", api["assetCount"])),
        "{legend}"
    );

    // The clicked cell lists its assets.
    let clicked = &seen["clicked"];
    let cell = api["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["stage"] == clicked["stage"] && c["role"] == clicked["column"])
        .unwrap();
    let items: Vec<String> = ids(&clicked["items"], &[]);
    assert_eq!(items.len(), cell["count"].as_u64().unwrap() as usize);
    for id in ids(&cell["assetIds"], &[]) {
        assert!(
            items.iter().any(|i| i.contains(&format!("{id})"))),
            "{id} not listed: {items:?}"
        );
    }

    // By content type the demo library has gaps (no API docs for advocacy), and a
    // clicked gap says so.
    let type_gaps = seen["typeCells"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["gap"] == true)
        .count();
    let api_gaps = s
        .gql(
            r#"{ coverage(by: [STAGE, CONTENT_TYPE]) { gaps { stage } } }"#,
            json!({}),
        )
        .await["coverage"]["gaps"]
        .as_array()
        .unwrap()
        .len();
    assert!(type_gaps > 0);
    assert_eq!(type_gaps, api_gaps);
    assert!(
        seen["gapText"].as_str().unwrap().contains("A gap"),
        "{}",
        seen["gapText"]
    );

    // By industry, every cell tells what was written for it; DECISION x healthcare is
    // served only by cross-industry assets, so it is framed, and a gap when counting only
    // assets written for it.
    let api = s
        .gql(
            r#"{ coverage(by: [STAGE, INDUSTRY]) { specificGaps { stage }
                 cells { stage industry crossIndustry count specificCount } } }"#,
            json!({}),
        )
        .await["coverage"]
        .clone();
    let column = |c: &Value| {
        if c["crossIndustry"] == true {
            json!("(cross-industry)")
        } else {
            c["industry"].clone()
        }
    };
    let by_industry = seen["industryCells"].as_array().unwrap();
    let written = seen["writtenCells"].as_array().unwrap();
    let api_cells = api["cells"].as_array().unwrap();
    assert_eq!(by_industry.len(), api_cells.len());
    for cell in api_cells {
        let find = |cells: &[Value]| {
            cells
                .iter()
                .find(|c| c["stage"] == cell["stage"] && c["column"] == column(cell))
                .cloned()
                .unwrap_or_else(|| panic!("no cell for {cell}"))
        };
        let all = find(by_industry);
        assert_eq!(all["count"], cell["count"], "{cell}");
        assert_eq!(all["specific"], cell["specificCount"], "{cell}");
        let unwritten = cell["specificCount"] == 0 && cell["count"] != 0;
        assert_eq!(all["unwritten"], unwritten, "{cell}");
        let only_written = find(written);
        assert_eq!(only_written["shown"], cell["specificCount"], "{cell}");
        assert_eq!(only_written["gap"], cell["specificCount"] == 0, "{cell}");
    }
    let healthcare = by_industry
        .iter()
        .find(|c| c["stage"] == "DECISION" && c["column"] == "healthcare")
        .unwrap();
    assert_eq!(healthcare["unwritten"], true, "{healthcare}");
    let legend = seen["industryLegend"].as_str().unwrap();
    let unwritten_count = api["specificGaps"].as_array().unwrap().len();
    assert!(
        legend.contains(&format!(
            "{unwritten_count} with nothing written for their industry"
        )),
        "{legend}"
    );
    let text = seen["healthcareText"].as_str().unwrap();
    assert!(
        text.contains("Nothing is written for this industry") && text.contains("general"),
        "{text}"
    );

    let png = std::fs::read(&screenshot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    s.stop().await;
}

#[tokio::test]
async fn with_keys_the_pages_ask_for_one_and_then_work() {
    let mut s = TestServer::demo().await;
    let editor = key_of(&s, stagefit::domain::Scope::Editor, "content team").await;
    let seen = browse("keyed.mjs", &[&s.url, &editor]).await;
    assert_eq!(seen["errors"], json!([]), "script errors on the pages");
    assert_eq!(
        seen["cells"], 25,
        "the heatmap rendered with the key: {seen}"
    );
    assert_eq!(seen["stored"], true);
    assert_eq!(seen["graphiqlRan"], true);
    // One prompt per page, none after the key was given.
    assert_eq!(seen["prompts"].as_array().unwrap().len(), 2, "{seen}");
    s.stop().await;
}

/// A customer's page: asks `api` for its visitor's recommendations with the visitor token in
/// its address, and lists them (or says it could not).
const CUSTOMER_PAGE: &str = r##"<!doctype html>
<html><head><meta charset="utf-8"><title>Customer site</title></head>
<body data-state="loading"><p id="role"></p><ul id="recs"></ul>
<script>
const params = new URLSearchParams(location.search);
fetch(params.get("api") + "/graphql", {
  method: "POST",
  headers: {
    "authorization": "Bearer " + params.get("token"),
    "content-type": "application/json",
  },
  body: JSON.stringify({
    query: "{ recommendations(audience: {}, first: 5) { items { asset { id title } } audience { role } } }",
  }),
})
  .then((r) => r.json())
  .then((answer) => {
    const list = answer.data.recommendations;
    document.querySelector("#role").textContent = list.audience.role;
    for (const item of list.items) {
      const li = document.createElement("li");
      li.dataset.id = item.asset.id;
      li.textContent = item.asset.title;
      document.querySelector("#recs").append(li);
    }
    document.body.dataset.state = "shown";
  })
  .catch(() => { document.body.dataset.state = "blocked"; });
</script></body></html>"##;

/// Serves `page` on a port of its own: another origin than the API's.
async fn customer_site(page: &'static str) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || async move { axum::response::Html(page) }),
    );
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (origin, task)
}

/// Posts `query` with `key` as its credential and returns `data`; errors fail the test.
async fn as_key(s: &TestServer, key: &str, query: &str) -> Value {
    let body: Value = s
        .client()
        .post(format!("{}/graphql", s.url))
        .bearer_auth(key)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

/// A key of `scope` made on the server itself.
async fn key_of(s: &TestServer, scope: stagefit::domain::Scope, name: &str) -> String {
    let access = &s.server.as_ref().unwrap().state().access;
    access
        .create_key(name, scope, Default::default())
        .await
        .unwrap()
        .1
}

/// The customer's backend: account `acme` with its CFO, and a visitor token for them,
/// signed with a server key. Returns the server key and the token.
async fn acme_cfo_visitor(s: &TestServer) -> (String, String) {
    let server = key_of(s, stagefit::domain::Scope::Server, "site backend").await;
    as_key(
        s,
        &server,
        r#"mutation {
            a: upsertAccount(account: { id: "acme", name: "Acme", industry: "retail" }) { id }
            c: upsertContact(contact: { id: "acme-cfo", accountId: "acme", name: "C", role: FINANCE }) { id }
        }"#,
    )
    .await;
    let token = as_key(
        s,
        &server,
        r#"mutation { createVisitorToken(accountId: "acme", contactId: "acme-cfo", ttlSeconds: 300) { token } }"#,
    )
    .await["createVisitorToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    (server, token)
}

#[tokio::test]
async fn a_page_on_an_allowed_origin_shows_its_visitors_recommendations_and_another_is_blocked() {
    let (allowed, allowed_site) = customer_site(CUSTOMER_PAGE).await;
    let (other, other_site) = customer_site(CUSTOMER_PAGE).await;
    let listed = allowed.clone();
    let mut s = TestServer::demo_with(move |c| c.cors_origins = vec![listed]).await;
    let (server, token) = acme_cfo_visitor(&s).await;
    // What the API ranks for that visitor, asked by the backend.
    let expected = ids(
        &as_key(
            &s,
            &server,
            r#"{ recommendations(audience: { accountId: "acme", contactId: "acme-cfo" }, first: 5) { items { asset { id } } } }"#,
        )
        .await["recommendations"]["items"],
        &["asset", "id"],
    );
    assert_eq!(expected.len(), 5);

    let page = |origin: &str| format!("{origin}/?api={}&token={token}", s.url);
    let seen = browse("visitor.mjs", &[&page(&allowed), &page(&other)]).await;
    assert_eq!(seen["errors"], json!([]), "script errors on the pages");
    assert_eq!(seen["allowed"]["state"], "shown", "{seen}");
    assert_eq!(seen["allowed"]["role"], "FINANCE", "{seen}");
    let shown: Vec<String> = seen["allowed"]["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(shown, expected);
    assert_eq!(seen["blocked"]["state"], "blocked", "{seen}");
    assert_eq!(seen["blocked"]["ids"], json!([]));
    allowed_site.abort();
    other_site.abort();
    s.stop().await;
}

/// Records, through the API, lists shown to `accounts` accounts at placement `home` and
/// clicks on the first `clicks` items of every other list.
async fn scripted_feedback(s: &TestServer, accounts: usize, clicks: usize) {
    for n in 0..accounts {
        let account = format!("acct-{n}");
        s.gql(
            r#"mutation($id: ID!) { upsertAccount(account: { id: $id, name: $id }) { id } }"#,
            json!({ "id": account }),
        )
        .await;
        let list = s
            .gql(
                r#"query($id: ID!) { recommendations(audience: { accountId: $id }, first: 6, placement: "home") {
                     recommendationId items { asset { id } } } }"#,
                json!({ "id": account }),
            )
            .await["recommendations"]
            .clone();
        let id = list["recommendationId"].as_str().unwrap();
        let items = ids(&list["items"], &["asset", "id"]);
        s.gql(
            r#"mutation($id: ID!, $a: [ID!]!) { recordImpressions(recommendationId: $id, assetIds: $a) { recorded } }"#,
            json!({ "id": id, "a": items }),
        )
        .await;
        if n % 2 == 0 {
            for (p, asset) in items.iter().take(clicks).enumerate() {
                s.gql(
                    r#"mutation($e: EngagementInput!) { recordEngagement(event: $e) { recorded } }"#,
                    json!({ "e": { "accountId": account, "assetId": asset, "kind": "VIEW",
                                   "recommendationId": id, "position": p + 1 } }),
                )
                .await;
            }
        }
    }
}

#[tokio::test]
async fn the_insights_page_shows_the_apis_own_numbers() {
    let mut s = TestServer::demo().await;
    s.gql(
        r#"mutation { upsertRankingProfile(name: "treatment", weights: { freshness: 4 }) { name } }"#,
        json!({}),
    )
    .await;
    s.gql(
        r#"mutation { startExperiment(name: "ab", placement: "home", variants: [{ profile: "default", share: 0.5 }, { profile: "treatment", share: 0.5 }]) { name } }"#,
        json!({}),
    )
    .await;
    scripted_feedback(&s, 12, 2).await;
    let shots = tempfile::tempdir().unwrap();
    let screenshot = std::env::var("STAGEFIT_INSIGHTS_SCREENSHOT")
        .unwrap_or_else(|_| shots.path().join("insights.png").display().to_string());
    let seen = browse("insights.mjs", &[&s.url, &screenshot]).await;
    assert_eq!(
        seen["external"],
        json!([]),
        "the page reached outside the server"
    );
    assert_eq!(seen["errors"], json!([]), "script errors on the page");
    assert_eq!(seen["state"], "shown", "{seen}");

    let cells = s
        .gql(
            "{ cellPerformance { stage role impressions clicks clickThroughRate } }",
            json!({}),
        )
        .await["cellPerformance"]
        .clone();
    let shown = seen["cells"].as_array().unwrap();
    assert_eq!(shown.len(), 30);
    let mut with_impressions = 0;
    for cell in cells.as_array().unwrap() {
        let td = shown
            .iter()
            .find(|c| c["stage"] == cell["stage"] && c["role"] == cell["role"])
            .unwrap_or_else(|| panic!("no cell for {cell}"));
        assert_eq!(td["impressions"], cell["impressions"], "{cell}");
        assert_eq!(td["clicks"], cell["clicks"], "{cell}");
        assert!(
            (td["ctr"].as_f64().unwrap() - cell["clickThroughRate"].as_f64().unwrap()).abs()
                < 1e-12
        );
        if cell["impressions"].as_u64().unwrap() > 0 {
            with_impressions += 1;
        }
    }
    assert!(with_impressions > 0);

    for (direction, key) in [("DESC", "best"), ("ASC", "worst")] {
        let api = s
            .gql(
                &format!(
                    "{{ assetPerformance(orderBy: CLICK_THROUGH_RATE, direction: {direction}, first: 5, minImpressions: 1) {{ items {{ asset {{ id }} clickThroughRate }} }} }}"
                ),
                json!({}),
            )
            .await;
        let expected = ids(&api["assetPerformance"]["items"], &["asset", "id"]);
        let rows = ids(&seen[key], &["id"]);
        assert_eq!(rows, expected, "{key}");
        assert_eq!(rows.len(), 5);
    }

    let e = s
        .gql(
            r#"{ experiment(name: "ab") { variants { profile ctrLow ctrHigh clickThroughRate } } }"#,
            json!({}),
        )
        .await["experiment"]["variants"]
        .clone();
    let box_ = &seen["experiments"][0];
    assert_eq!(box_["name"], "ab");
    assert_eq!(box_["bars"], 2);
    for (i, v) in e.as_array().unwrap().iter().enumerate() {
        let row = &box_["variants"][i];
        assert_eq!(row["profile"], v["profile"]);
        for (a, b) in [
            ("low", "ctrLow"),
            ("high", "ctrHigh"),
            ("ctr", "clickThroughRate"),
        ] {
            assert!(
                (row[a].as_f64().unwrap() - v[b].as_f64().unwrap()).abs() < 1e-12,
                "{row} {v}"
            );
        }
    }
    assert_eq!(box_["variants"][0]["verdict"], "control");
    s.stop().await;
}

/// A customer's page that puts the widget on it; the visitor token comes from a callback,
/// and the page themes the widget's links red.
const WIDGET_PAGE: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Customer site</title>
<style>stagefit-recommendations { --stagefit-accent: rgb(200, 0, 0); }</style></head>
<body><h1>Welcome back</h1>
<script>
const params = new URLSearchParams(location.search);
window.visitorToken = () => Promise.resolve(params.get("token"));
const script = document.createElement("script");
script.src = params.get("api") + "/widget.js";
document.head.append(script);
const widget = document.createElement("stagefit-recommendations");
widget.setAttribute("placement", "home");
widget.setAttribute("first", "3");
widget.setAttribute("token-callback", "visitorToken");
document.body.append(widget);
</script></body></html>"##;

#[tokio::test]
async fn the_widget_on_another_origin_shows_a_visitors_recommendations_and_records_them() {
    let (origin, site) = customer_site(WIDGET_PAGE).await;
    let listed = origin.clone();
    let mut s = TestServer::demo_with(move |c| c.cors_origins = vec![listed]).await;
    let (server, token) = acme_cfo_visitor(&s).await;
    let editor = key_of(&s, stagefit::domain::Scope::Editor, "content team").await;
    let expected = as_key(
        &s,
        &server,
        r#"{ recommendations(audience: { accountId: "acme", contactId: "acme-cfo" }, first: 3) { items { asset { id title url } } } }"#,
    )
    .await["recommendations"]["items"]
        .clone();

    let page = format!("{origin}/?api={}&token={token}", s.url);
    let seen = browse("widget.mjs", &[&page, &s.url]).await;
    assert_eq!(seen["errors"], json!([]), "script errors on the page");
    assert_eq!(seen["state"], "shown", "{seen}");
    let cards = seen["cards"].as_array().unwrap();
    assert_eq!(
        ids(&seen["cards"], &["id"]),
        ids(&expected, &["asset", "id"])
    );
    for (i, card) in cards.iter().enumerate() {
        assert_eq!(card["position"], i + 1);
        assert_eq!(card["title"], expected[i]["asset"]["title"]);
        assert_eq!(card["href"], expected[i]["asset"]["url"]);
        assert!(!card["type"].as_str().unwrap().is_empty());
        assert!(!card["reason"].as_str().unwrap().is_empty(), "{card}");
    }
    assert_eq!(seen["label"], "Recommended for you");
    assert_eq!(seen["linkColor"], "rgb(200, 0, 0)");
    // Nothing but the followed card's own address left the two origins.
    assert_eq!(seen["external"], json!([cards[0]["href"]]), "{seen}");

    // What the widget recorded is in the numbers: three impressions, one click.
    let perf = as_key(
        &s,
        &editor,
        "{ assetPerformance(orderBy: CLICKS) { totalCount items { asset { id } impressions clicks } } }",
    )
    .await["assetPerformance"]
        .clone();
    assert_eq!(perf["totalCount"], 3, "{perf}");
    assert_eq!(
        perf["items"][0],
        json!({ "asset": { "id": seen["followed"] }, "impressions": 1, "clicks": 1 })
    );
    let shown: u64 = perf["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["impressions"].as_u64().unwrap())
        .sum();
    assert_eq!(shown, 3);
    site.abort();
    s.stop().await;
}

/// An anonymous customer page: a widget with a publishable key, one pointed at a wrong
/// endpoint, one with a refused key and one at an address nothing answers (the key and
/// the API come in the query string).
const ANONYMOUS_PAGE: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Customer site</title></head>
<body><h1>Welcome</h1>
<script>
const params = new URLSearchParams(location.search);
const script = document.createElement("script");
script.src = params.get("api") + "/widget.js";
document.head.append(script);
for (const [id, attrs] of [
  ["good", { key: params.get("key") }],
  ["wrong", { key: params.get("key"), endpoint: location.origin + "/not-graphql" }],
  ["refused", { key: "sf_pub_00000000000000000000000000000000" }],
  ["unreachable", { key: params.get("key"), endpoint: "http://127.0.0.1:9/graphql" }],
]) {
  const widget = document.createElement("stagefit-recommendations");
  widget.id = id;
  for (const [k, v] of Object.entries(attrs)) widget.setAttribute(k, v);
  document.body.append(widget);
}
</script></body></html>"##;

#[tokio::test]
async fn the_widget_serves_an_anonymous_page_with_images_and_says_what_is_wrong() {
    let (origin, site) = customer_site(ANONYMOUS_PAGE).await;
    let listed = origin.clone();
    let mut s = TestServer::empty_with(move |c| c.cors_origins = vec![listed]).await;
    // Three published assets, two with a card image (served from the customer's site).
    let assets: Vec<Value> = (1..=3)
        .map(|i| {
            json!({ "id": format!("guide-{i}"), "title": format!("Guide {i}"), "contentType": "BUYER_GUIDE",
                    "url": format!("{origin}/guides/{i}"), "stages": ["CONSIDERATION"],
                    "imageUrl": (i < 3).then(|| format!("{origin}/cards/{i}.png")) })
        })
        .collect();
    s.gql(
        "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { created } }",
        json!({ "a": assets }),
    )
    .await;
    let editor = key_of(&s, stagefit::domain::Scope::Editor, "content team").await;
    let publishable = key_of(&s, stagefit::domain::Scope::Publishable, "site").await;

    let page = format!("{origin}/?api={}&key={publishable}", s.url);
    let seen = browse("anonymous.mjs", &[&page, &s.url]).await;
    assert_eq!(seen["errors"], json!([]), "script errors on the page");
    assert_eq!(seen["good"]["state"], "shown", "{seen}");
    // A wrong endpoint and a refused key say so, instead of "Unexpected end of JSON input".
    assert_eq!(seen["wrong"]["state"], "failed", "{seen}");
    let wrong = seen["wrong"]["error"].as_str().unwrap();
    assert!(
        wrong.contains("not GraphQL") && wrong.contains("/not-graphql"),
        "{wrong}"
    );
    assert_eq!(seen["refused"]["state"], "failed", "{seen}");
    let refused = seen["refused"]["error"].as_str().unwrap();
    assert!(refused.contains("key was refused"), "{refused}");
    // A request the browser stops (nothing listening, or CORS) names the likely causes.
    assert_eq!(seen["unreachable"]["state"], "failed", "{seen}");
    let unreachable = seen["unreachable"]["error"].as_str().unwrap();
    assert!(
        unreachable.contains("cannot reach") && unreachable.contains("--cors-origin"),
        "{unreachable}"
    );
    assert!(
        seen["warnings"].to_string().contains("not GraphQL"),
        "the console says why: {seen}"
    );
    // Cards show their images; the one without shows none.
    let cards = seen["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 3, "{seen}");
    for card in cards {
        let n = card["id"].as_str().unwrap().trim_start_matches("guide-");
        let image = (n != "3").then(|| format!("{origin}/cards/{n}.png"));
        assert_eq!(card["image"], json!(image), "{card}");
    }
    // A first-party visitor id, kept across pages.
    let cookie = seen["cookie"].as_str().unwrap();
    assert!(cookie.starts_with("stagefit_visitor="), "{cookie}");
    assert_eq!(seen["cookieAgain"], seen["cookie"]);
    // Three impressions and a click on each card, however it was opened.
    let perf = as_key(
        &s,
        &editor,
        "{ assetPerformance(orderBy: CLICKS) { totalCount items { asset { id } impressions clicks } } }",
    )
    .await["assetPerformance"]
        .clone();
    assert_eq!(perf["totalCount"], 3, "{perf}");
    for item in perf["items"].as_array().unwrap() {
        assert_eq!(item["impressions"], 1, "{perf}");
        assert_eq!(item["clicks"], 1, "{seen} {perf}");
    }
    site.abort();
    s.stop().await;
}
