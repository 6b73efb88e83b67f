//! What an operator watches: `/metrics` in Prometheus text, who may read it, and
//! `--metrics-addr`.

use serde_json::{Value, json};

use crate::support::TestServer;

/// Every line is a comment, or `name{labels} value`: what a Prometheus server accepts.
fn assert_prometheus_text(text: &str) -> prometheus_parse::Scrape {
    for line in text.lines() {
        if line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect(line);
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "metric name in {line:?}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "labels in {line:?}");
        }
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "value in {line:?}"
        );
    }
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

fn value_of(scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.iter().map(|b| b.count).fold(0.0, f64::max)
            }
            prometheus_parse::Value::Summary(_) => 0.0,
        })
        .sum()
}

async fn scrape(s: &TestServer) -> prometheus_parse::Scrape {
    let response = s.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    assert_prometheus_text(&response.text().await.unwrap())
}

#[tokio::test]
async fn metrics_count_requests_cache_answers_scoring_and_the_index() {
    let mut s = TestServer::demo().await;
    let before = scrape(&s).await;
    let query = json!({ "query": "query MetricsProbe { recommendations(audience: { stage: DECISION }, first: 3) { items { score } } }", "operationName": "MetricsProbe" });
    for _ in 0..3 {
        let response = s
            .client()
            .post(format!("{}/graphql", s.url))
            .json(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let body: Value = s
        .client()
        .post(format!("{}/graphql", s.url))
        .json(&json!({ "query": "mutation { refreshPopularity { events } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    let list = s
        .gql(
            "{ recommendations(audience: { stage: DECISION }, first: 2) { recommendationId items { asset { id } } } }",
            json!({}),
        )
        .await["recommendations"]
        .clone();
    let shown = s
        .gql(
            "mutation($id: ID!, $a: [ID!]!) { recordImpressions(recommendationId: $id, assetIds: $a) { recorded } }",
            json!({ "id": list["recommendationId"], "a": [list["items"][0]["asset"]["id"], list["items"][1]["asset"]["id"]] }),
        )
        .await;
    assert_eq!(shown["recordImpressions"]["recorded"], 2);
    let after = scrape(&s).await;
    let picks = Some(("operation", "MetricsProbe"));
    let grew = |name: &str, label| value_of(&after, name, label) - value_of(&before, name, label);
    // The recorder is the process's: other tests' requests count too, and once 200
    // operation names are known (the fuzz run alone brings more) new ones count as `other`.
    let other = Some(("operation", "other"));
    let named = grew("stagefit_http_requests_total", picks);
    assert!(
        named == 3.0 || grew("stagefit_http_requests_total", other) >= 3.0,
        "three requests named MetricsProbe (or `other` past the cap): {named}"
    );
    assert!(grew("stagefit_http_request_duration_seconds", None) >= 3.0);
    // The first was computed (a miss), the next two answered from the cache.
    assert!(grew("stagefit_response_cache_misses_total", None) >= 1.0);
    assert!(grew("stagefit_response_cache_hits_total", None) >= 2.0);
    assert!(grew("stagefit_recommendation_documents_scored", None) >= 1.0);
    assert!(grew("stagefit_popularity_refresh_duration_seconds", None) >= 1.0);
    assert!(grew("stagefit_impressions_recorded_total", None) >= 2.0);
    assert!(grew("stagefit_impression_write_duration_seconds", None) >= 1.0);
    // This server's gauges: set when it renders.
    assert!(value_of(&after, "stagefit_index_documents", None) >= 100.0);
    assert_eq!(value_of(&after, "stagefit_index_lag", None), 0.0);
    assert!(
        after
            .samples
            .iter()
            .any(|s| s.metric == "stagefit_db_pool_connections_in_use")
    );
    s.stop().await;
}

#[tokio::test]
async fn once_keys_exist_metrics_need_an_admin_key_but_on_the_metrics_address() {
    let mut s =
        TestServer::demo_with(|c| c.metrics_addr = Some("127.0.0.1:0".parse().unwrap())).await;
    let access = &s.server.as_ref().unwrap().state().access;
    let (_, admin) = access
        .create_key("ops", stagefit::domain::Scope::Admin, Default::default())
        .await
        .unwrap();
    let (_, editor) = access
        .create_key(
            "content",
            stagefit::domain::Scope::Editor,
            Default::default(),
        )
        .await
        .unwrap();
    // Keys exist: a loopback peer is no proof of anything (a reverse proxy on this host
    // forwards every visitor from loopback).
    assert_eq!(s.get("/metrics").await.status(), 401);
    for (key, expected) in [(editor, 401), (admin, 200)] {
        let response = s
            .client()
            .get(format!("{}/metrics", s.url))
            .header("x-forwarded-for", "203.0.113.9")
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected);
    }
    let side = s.server.as_ref().unwrap().metrics_addr.unwrap();
    let response = s
        .client()
        .get(format!("http://{side}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_prometheus_text(&response.text().await.unwrap());
    // The metrics address serves nothing else.
    let response = s
        .client()
        .post(format!("http://{side}/graphql"))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    s.stop().await;
}

/// This machine's address on its network, if it has one (no packet is sent).
fn outward_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("10.255.255.255:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn from_another_address_metrics_need_an_admin_key() {
    let Some(outward) = outward_address() else {
        eprintln!("no address but loopback here: nothing to reach from elsewhere");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut config = crate::support::config_in(tmp.path());
    config.addr = "0.0.0.0:0".parse().unwrap();
    config.insecure_open = true;
    let server = stagefit::state::Server::start(&config, true).await.unwrap();
    let (_, admin) = server
        .state()
        .access
        .create_key("ops", stagefit::domain::Scope::Admin, Default::default())
        .await
        .unwrap();
    let (_, editor) = server
        .state()
        .access
        .create_key(
            "content",
            stagefit::domain::Scope::Editor,
            Default::default(),
        )
        .await
        .unwrap();
    let url = format!("http://{outward}:{}/metrics", server.addr.port());
    let client = reqwest::Client::new();
    let status = |key: Option<String>| {
        let mut request = client.get(&url);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(None).await, 401);
    assert_eq!(status(Some(editor)).await, 401);
    assert_eq!(status(Some(admin)).await, 200);
    server.stop().await.unwrap();
}

/// With `STAGEFIT_LOG_FORMAT=json` every line is a JSON object, and every line of a request
/// names its request id; requests over the threshold get a `slow request` line.
#[tokio::test]
async fn json_logs_carry_the_request_id_and_slow_requests_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let served = crate::support::serve_binary(
        dir.path(),
        &["--demo", "--slow-request-ms", "0"],
        &[("STAGEFIT_LOG_FORMAT", "json")],
    );
    let addr = served.addr.clone();
    let next = || {
        served.next_line().map(|line| {
            serde_json::from_str::<Value>(&line)
                .unwrap_or_else(|_| panic!("a log line that is not JSON: {line}"))
        })
    };
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .header("x-request-id", "probe-4711")
        .json(&json!({ "query": "query Stages { taxonomy { stages { name } } }", "operationName": "Stages" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "probe-4711");
    let mut request_line = None;
    let mut slow_line = None;
    while request_line.is_none() || slow_line.is_none() {
        let Some(line) = next() else { break };
        let in_request = line["spans"]
            .as_array()
            .is_some_and(|spans| spans.iter().any(|s| s["request_id"] == "probe-4711"));
        match line["message"].as_str() {
            Some("request") => {
                assert!(in_request, "{line}");
                request_line = Some(line);
            }
            Some("slow request") => {
                assert!(in_request, "{line}");
                slow_line = Some(line);
            }
            _ => {}
        }
    }
    let request_line = request_line.expect("a request line");
    assert_eq!(request_line["request_id"], "probe-4711");
    assert_eq!(request_line["operation"], "Stages");
    let slow_line = slow_line.expect("a slow-request line at a 0 ms threshold");
    assert_eq!(slow_line["level"], "WARN");
    assert_eq!(slow_line["operation"], "Stages");
    assert!(
        slow_line["ms"].as_str().unwrap().parse::<f64>().is_ok(),
        "{slow_line}"
    );
    assert!(
        slow_line["execute_ms"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .is_ok()
    );
    served.kill();
}
