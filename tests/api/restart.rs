//! Nothing committed is lost across restarts, and the index is always derivable.

use serde_json::{Value, json};

use crate::support::{TestServer, stagefit, text};

const SNAPSHOT: &str = r#"{
  search(query: "reconciliation", first: 100) { totalCount items { asset { id title } } }
  chinese: search(query: "对账", first: 100) { totalCount items { asset { id } } }
  assets(first: 100, filter: { statuses: [PUBLISHED, DRAFT, RETIRED] }) { totalCount items { id status stages } }
  taxonomy { industries { slug assetCount } }
}"#;

/// The answers, with equally relevant hits in a stable order: ties may come back in
/// another order from a rebuilt index.
async fn snapshot(s: &TestServer) -> Value {
    let mut data = s.gql(SNAPSHOT, json!({})).await;
    for key in ["search", "chinese"] {
        if let Some(items) = data[key]["items"].as_array_mut() {
            items.sort_by_key(|i| i["asset"]["id"].as_str().unwrap_or_default().to_owned());
        }
    }
    data
}

#[tokio::test]
async fn a_restart_keeps_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_in(tmp.path(), true).await;
    s.gql(
        "mutation { upsertAssets(assets: [{ id: \"after-demo\", title: \"Reconciliation after restart\",
           contentType: \"BLOG_POST\", industries: [\"energy/utilities\"] }]) { created } }",
        json!({}),
    )
    .await;
    s.gql(
        "mutation { retireAsset(id: \"pricing-sheet\") { id } }",
        json!({}),
    )
    .await;
    let before = snapshot(&s).await;
    s.stop().await;

    let mut again = TestServer::start_in(tmp.path(), false).await;
    assert_eq!(snapshot(&again).await, before);
    again.stop().await;

    // An index that cannot be opened is replaced by a rebuilt one, and nothing of the
    // broken generation is left behind.
    let current = std::fs::read_to_string(tmp.path().join("index/CURRENT")).unwrap();
    let broken = tmp.path().join("index").join(current.trim());
    std::fs::write(broken.join("meta.json"), "not an index").unwrap();
    let mut repaired = TestServer::start_in(tmp.path(), false).await;
    assert_eq!(snapshot(&repaired).await, before);
    repaired.stop().await;
    assert!(!broken.exists(), "the broken generation is deleted");

    // The index is derived: delete it and it is rebuilt with the same answers.
    std::fs::remove_dir_all(tmp.path().join("index")).unwrap();
    let mut rebuilt = TestServer::start_in(tmp.path(), false).await;
    assert_eq!(snapshot(&rebuilt).await, before);
    rebuilt.stop().await;
}

#[tokio::test]
async fn reindex_refuses_a_running_server_and_rebuilds_when_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_in(tmp.path(), true).await;
    let before = snapshot(&s).await;
    let out = stagefit(tmp.path(), &["reindex"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("in use by another stagefit process"),
        "{}",
        text(&out.stderr)
    );
    s.stop().await;

    let out = stagefit(tmp.path(), &["reindex"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("rebuilt the index"),
        "{}",
        text(&out.stdout)
    );
    let generations: Vec<String> = std::fs::read_dir(tmp.path().join("index"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("gen-"))
        .collect();
    assert_eq!(
        generations.len(),
        1,
        "old generations are removed: {generations:?}"
    );

    let mut after = TestServer::start_in(tmp.path(), false).await;
    assert_eq!(snapshot(&after).await, before);
    after.stop().await;
}
