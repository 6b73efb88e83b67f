//! Webhooks over real HTTP, into a receiver run by the test: every delivery signed
//! (checked here with an HMAC of our own), retried after 500s and timeouts, in order per
//! account, nothing for a rolled-back write, nothing lost across a SIGKILL of the server,
//! disabled after the retry span and sent when enabled again, coverage gaps announced,
//! and (PostgreSQL) each event delivered once by two replicas.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{POSTGRES_ENV, TestServer, config_in, serve_binary};

const SECRET: &str = "whsec_0123456789abcdef";

/// What the receiver answers a request with.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Status(u16),
    /// Answers 200, but only after this long (the sender gives up first).
    Hang(Duration),
}

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Got {
    event_id: String,
    event_type: String,
    signature: String,
    body: String,
    /// What it was answered with.
    status: u16,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Inbox {
    got: Vec<Got>,
    plan: VecDeque<Answer>,
}

/// A webhook receiver on 127.0.0.1: records every request and answers by plan (200 once
/// the plan is used up).
struct Receiver {
    url: String,
    addr: SocketAddr,
    inbox: Arc<Mutex<Inbox>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(plan: &[Answer]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let inbox = Arc::new(Mutex::new(Inbox {
            got: Vec::new(),
            plan: plan.iter().copied().collect(),
        }));
        Self::serve(listener, inbox).await
    }

    /// A receiver on `addr` (where an earlier one was down), keeping `inbox`.
    async fn start_on(addr: SocketAddr, inbox: Arc<Mutex<Inbox>>) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        Self::serve(listener, inbox).await
    }

    async fn serve(listener: tokio::net::TcpListener, inbox: Arc<Mutex<Inbox>>) -> Self {
        use axum::http::HeaderMap;
        let addr = listener.local_addr().unwrap();
        let shared = inbox.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let inbox = shared.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .map(|v| v.to_str().unwrap().to_owned())
                            .unwrap_or_default()
                    };
                    let answer = {
                        let mut inbox = inbox.lock().unwrap();
                        let answer = inbox.plan.pop_front().unwrap_or(Answer::Status(200));
                        let status = match answer {
                            Answer::Status(s) => s,
                            Answer::Hang(_) => 0,
                        };
                        inbox.got.push(Got {
                            event_id: header("stagefit-event-id"),
                            event_type: header("stagefit-event-type"),
                            signature: header("stagefit-signature"),
                            body,
                            status,
                        });
                        answer
                    };
                    let status = match answer {
                        Answer::Status(s) => s,
                        Answer::Hang(d) => {
                            tokio::time::sleep(d).await;
                            200
                        }
                    };
                    (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        format!("answered {status}"),
                    )
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            addr,
            inbox,
            task,
        }
    }

    fn got(&self) -> Vec<Got> {
        self.inbox.lock().unwrap().got.clone()
    }

    /// Waits until `done` holds for what came in (20 s at most).
    async fn until(&self, what: &str, done: impl Fn(&[Got]) -> bool) -> Vec<Got> {
        let since = Instant::now();
        loop {
            let got = self.got();
            if done(&got) {
                return got;
            }
            assert!(
                since.elapsed() < Duration::from_secs(20),
                "{what} never came: {got:#?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops answering (the port closes).
    fn down(self) -> (SocketAddr, Arc<Mutex<Inbox>>) {
        self.task.abort();
        (self.addr, self.inbox)
    }
}

/// The HMAC the header should carry, computed here with `ring` directly.
fn signed_correctly(secret: &str, header: &str, body: &str) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value.to_owned()),
            Some(("v1", value)) => v1 = Some(value.to_owned()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let age = chrono::Utc::now().timestamp() - t.parse::<i64>().unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let expected: String = ring::hmac::sign(&key, format!("{t}.{body}").as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (0..300).contains(&age) && expected == v1
}

/// Distinct event ids with a 2xx answer, in the order they first got one.
fn delivered(got: &[Got]) -> Vec<&Got> {
    let mut seen = BTreeSet::new();
    got.iter()
        .filter(|g| (200..300).contains(&g.status) && seen.insert(g.event_id.clone()))
        .collect()
}

fn quick(c: &mut stagefit::config::Config) {
    c.webhooks.allow_private = true;
    c.webhooks.retry_base = Duration::from_millis(100);
    c.webhooks.timeout = Duration::from_millis(700);
    c.webhooks.poll = Duration::from_millis(100);
}

async fn create_webhook(s: &TestServer, url: &str, events: &[&str]) -> String {
    s.gql(
        "mutation($u: String!, $e: [WebhookEvent!]!, $s: String!) {
            createWebhook(url: $u, events: $e, secret: $s) { id enabled events } }",
        json!({ "u": url, "e": events, "s": SECRET }),
    )
    .await["createWebhook"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn record(s: &TestServer, account: &str, asset: &str, client_id: &str) -> Value {
    s.gql(
        "mutation($e: EngagementInput!) { recordEngagement(event: $e) { recorded duplicates } }",
        json!({ "e": { "accountId": account, "assetId": asset, "kind": "VIEW",
                       "clientEventId": client_id } }),
    )
    .await["recordEngagement"]
        .clone()
}

#[tokio::test]
async fn deliveries_are_signed_retried_after_500s_and_timeouts_and_in_order_per_account() {
    let _machine = crate::support::busy().await;
    let receiver =
        Receiver::start(&[Answer::Status(500), Answer::Hang(Duration::from_secs(3))]).await;
    let mut s = TestServer::demo_with(quick).await;
    let hook = create_webhook(&s, &receiver.url, &["ENGAGEMENT_RECORDED", "STAGE_CHANGED"]).await;
    s.gql(
        r#"mutation {
            a: upsertAccount(account: { id: "acme", name: "Acme", industry: "retail", stage: CONSIDERATION }) { id }
            b: upsertAccount(account: { id: "zeta", name: "Zeta", industry: "retail" }) { id }
        }"#,
        json!({}),
    )
    .await;
    let assets = [
        "pricing-sheet",
        "api-docs-webhooks",
        "roi-calculator-close-time",
    ];
    for (i, asset) in assets.iter().enumerate() {
        record(&s, "acme", asset, &format!("acme-{i}")).await;
        record(&s, "zeta", asset, &format!("zeta-{i}")).await;
    }
    // A retried event is a duplicate: recorded once, announced once.
    assert_eq!(
        record(&s, "acme", assets[0], "acme-0").await["duplicates"],
        1
    );

    let engagements = |got: &[Got]| {
        delivered(got)
            .iter()
            .filter(|g| g.event_type == "ENGAGEMENT_RECORDED")
            .count()
    };
    let got = receiver
        .until("six engagement events", |got| engagements(got) == 6)
        .await;
    for g in &got {
        assert!(signed_correctly(SECRET, &g.signature, &g.body), "{g:?}");
        assert_eq!(g.json()["id"], g.event_id.as_str());
        assert_eq!(g.json()["type"], g.event_type.as_str());
    }
    // The first request was answered 500 and the second not in time; both events came
    // again, with their ids, until answered 200.
    let answers = |id: &str| -> Vec<u16> {
        got.iter()
            .filter(|g| g.event_id == id)
            .map(|g| g.status)
            .collect()
    };
    assert_eq!(got[0].status, 500);
    assert_eq!(answers(&got[0].event_id).last(), Some(&200), "{got:#?}");
    assert_eq!(got[1].status, 0);
    assert_eq!(answers(&got[1].event_id).last(), Some(&200), "{got:#?}");
    // Each account's events arrive in the order they were recorded.
    let mut per_account: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for g in delivered(&got) {
        let data = &g.json()["data"];
        if g.event_type == "ENGAGEMENT_RECORDED" {
            per_account
                .entry(data["accountId"].as_str().unwrap().to_owned())
                .or_default()
                .push(data["clientEventId"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(per_account["acme"], ["acme-0", "acme-1", "acme-2"]);
    assert_eq!(per_account["zeta"], ["zeta-0", "zeta-1", "zeta-2"]);
    // Acme's CRM stage was its first known stage.
    let stages: Vec<Value> = delivered(&got)
        .iter()
        .filter(|g| g.event_type == "STAGE_CHANGED")
        .map(|g| g.json()["data"].clone())
        .collect();
    let first_acme = stages.iter().find(|d| d["accountId"] == "acme").unwrap();
    assert_eq!(first_acme["from"], Value::Null);
    assert_eq!(first_acme["to"], "CONSIDERATION");
    assert_eq!(first_acme["source"], "declared");

    // The webhook's log shows every attempt and the receiver's answers.
    let log = s
        .gql(
            "query($w: ID!) { webhookDeliveries(webhookId: $w, first: 100) {
                eventId eventType accountId state attemptCount lastStatus
                attempts { status error response durationMs } } }",
            json!({ "w": hook }),
        )
        .await["webhookDeliveries"]
        .clone();
    let logged = |id: &str| {
        log.as_array()
            .unwrap()
            .iter()
            .find(|d| d["eventId"] == id)
            .unwrap()
            .clone()
    };
    let first = logged(&got[0].event_id);
    assert_eq!(first["state"], "DELIVERED", "{first:#}");
    assert_eq!(first["attemptCount"], answers(&got[0].event_id).len());
    let attempts = first["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["status"], 500);
    assert_eq!(attempts[0]["response"], "answered 500");
    assert_eq!(attempts.last().unwrap()["status"], 200);
    // The second request (the first one's retry, or another event) got no answer in time.
    let second = logged(&got[1].event_id);
    assert!(
        second["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["status"] == Value::Null && a["error"] == "no answer in time"),
        "{second:#}"
    );
    assert_eq!(second["lastStatus"], 200);
    // Everything goes out in the end (stage moves by reading may still be on their way).
    let since = Instant::now();
    let hooks = loop {
        let hooks = s
            .gql("{ webhooks { id url enabled pending events } }", json!({}))
            .await["webhooks"]
            .clone();
        if hooks[0]["pending"] == 0 {
            break hooks;
        }
        assert!(since.elapsed() < Duration::from_secs(20), "{hooks:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(hooks[0]["url"], receiver.url.as_str());
    s.stop().await;
}

#[tokio::test]
async fn receivers_must_be_public_http_addresses_with_a_real_secret() {
    let mut s = TestServer::empty().await;
    let create = "mutation($u: String!, $e: [WebhookEvent!]!, $s: String!) {
        createWebhook(url: $u, events: $e, secret: $s) { id } }";
    for (url, events, secret, says) in [
        (
            "http://127.0.0.1:9/hook",
            vec!["STAGE_CHANGED"],
            SECRET,
            "--webhook-allow-private",
        ),
        (
            "http://localhost/hook",
            vec!["STAGE_CHANGED"],
            SECRET,
            "loopback",
        ),
        (
            "http://[::1]/hook",
            vec!["STAGE_CHANGED"],
            SECRET,
            "loopback",
        ),
        (
            "http://169.254.169.254/latest",
            vec!["STAGE_CHANGED"],
            SECRET,
            "private",
        ),
        (
            "http://10.0.0.8/hook",
            vec!["STAGE_CHANGED"],
            SECRET,
            "private",
        ),
        (
            "ftp://example.com/hook",
            vec!["STAGE_CHANGED"],
            SECRET,
            "http",
        ),
        (
            "https://user:pw@example.com/hook",
            vec!["STAGE_CHANGED"],
            SECRET,
            "password",
        ),
        (
            "https://example.com/hook",
            vec![],
            SECRET,
            "at least one event",
        ),
        (
            "https://example.com/hook",
            vec!["STAGE_CHANGED"],
            "short",
            "16 to 256",
        ),
    ] {
        let error = s
            .gql_error(create, json!({ "u": url, "e": events, "s": secret }))
            .await;
        assert_eq!(
            error["extensions"]["code"], "BAD_USER_INPUT",
            "{url}: {error}"
        );
        assert!(
            error["message"].as_str().unwrap().contains(says),
            "{url}: {error}"
        );
    }
    let error = s
        .gql_error(
            create,
            json!({ "u": "https://example.com/h", "e": ["NOPE"], "s": SECRET }),
        )
        .await;
    assert!(
        error["message"].as_str().unwrap().contains("NOPE"),
        "{error}"
    );
    // A public address is taken; the secret is never shown.
    let id = create_webhook(&s, "https://hooks.example.com/stagefit", &["STAGE_CHANGED"]).await;
    let listed = s.request("{ webhooks { id secret } }", json!({})).await;
    assert!(
        listed["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("secret")
    );
    let changed = s
        .gql(
            "mutation($id: ID!) { updateWebhook(id: $id, change: { enabled: false }) { enabled disabledReason } }",
            json!({ "id": id }),
        )
        .await["updateWebhook"]
        .clone();
    assert_eq!(changed["enabled"], false);
    assert_eq!(changed["disabledReason"], "disabled by an administrator");
    let error = s
        .gql_error(
            "mutation { updateWebhook(id: \"wh_none\", change: { enabled: true }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error["extensions"]["code"], "NOT_FOUND");
    assert_eq!(
        s.gql(
            "mutation($id: ID!) { deleteWebhook(id: $id) }",
            json!({ "id": id })
        )
        .await["deleteWebhook"],
        true
    );
    s.stop().await;
}

/// Runs raw SQL on the server's database (to make a write fail on purpose).
async fn execute(s: &TestServer, sql: &[&str]) {
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(s.database_url()).await.unwrap();
    for statement in sql {
        db.execute_unprepared(statement).await.unwrap();
    }
    db.close().await.unwrap();
}

#[tokio::test]
async fn a_rolled_back_write_sends_nothing_and_a_share_link_open_is_announced_once() {
    let _machine = crate::support::busy().await;
    let receiver = Receiver::start(&[]).await;
    let mut s = TestServer::demo_with(quick).await;
    create_webhook(
        &s,
        &receiver.url,
        &["ENGAGEMENT_RECORDED", "SHARE_LINK_OPENED"],
    )
    .await;
    s.gql(
        r#"mutation {
            a: upsertAccount(account: { id: "acme", name: "Acme" }) { id }
            c: upsertContact(contact: { id: "acme-cfo", accountId: "acme", name: "C", role: FINANCE }) { id }
        }"#,
        json!({}),
    )
    .await;
    let link = s
        .gql(
            r#"mutation { createShareLink(assetId: "pricing-sheet", contactId: "acme-cfo") { id url } }"#,
            json!({}),
        )
        .await["createShareLink"]
        .clone();
    let path = link["url"]
        .as_str()
        .unwrap()
        .split_once("/l/")
        .map(|(_, token)| format!("/l/{token}"))
        .unwrap();
    // The open's last statement (its SHARE_LINK_OPENED row) fails: the view and the
    // ENGAGEMENT_RECORDED row written before it in the same transaction go too.
    let postgres = std::env::var(POSTGRES_ENV).is_ok();
    if postgres {
        execute(
            &s,
            &[
                "CREATE FUNCTION refuse_opens() RETURNS trigger AS $$ BEGIN \
                 IF NEW.event_type = 'SHARE_LINK_OPENED' THEN RAISE EXCEPTION 'refused'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER refuse_opens BEFORE INSERT ON webhook_delivery \
                 FOR EACH ROW EXECUTE FUNCTION refuse_opens()",
            ],
        )
        .await;
    } else {
        execute(
            &s,
            &[
                "CREATE TRIGGER refuse_opens BEFORE INSERT ON webhook_delivery \
               WHEN NEW.event_type = 'SHARE_LINK_OPENED' \
               BEGIN SELECT RAISE(ABORT, 'refused'); END",
            ],
        )
        .await;
    }
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36")
        .build()
        .unwrap();
    let failed = browser
        .get(format!("{}{path}", s.url))
        .send()
        .await
        .unwrap();
    assert!(failed.status().is_server_error(), "{}", failed.status());
    let opens = |body: Value| body["shareLinks"][0]["opens"].clone();
    let listed = r#"{ shareLinks(contactId: "acme-cfo") { opens } }"#;
    assert_eq!(opens(s.gql(listed, json!({})).await), 0);
    if postgres {
        execute(&s, &["DROP TRIGGER refuse_opens ON webhook_delivery"]).await;
    } else {
        execute(&s, &["DROP TRIGGER refuse_opens"]).await;
    }
    let opened = browser
        .get(format!("{}{path}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 303);
    // A scanner's open is no reader's: nothing is announced for it.
    let scanned = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Mozilla/5.0 (compatible; Proofpoint URL Defense)")
        .build()
        .unwrap()
        .get(format!("{}{path}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(scanned.status(), 303);
    assert_eq!(opens(s.gql(listed, json!({})).await), 1);
    receiver
        .until("the open", |got| {
            got.iter().any(|g| g.event_type == "SHARE_LINK_OPENED")
                && got.iter().any(|g| g.event_type == "ENGAGEMENT_RECORDED")
        })
        .await;
    // The later write is delivered: had the rolled-back one been, it would be first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.got();
    let kinds: Vec<&str> = got.iter().map(|g| g.event_type.as_str()).collect();
    assert_eq!(
        kinds,
        ["ENGAGEMENT_RECORDED", "SHARE_LINK_OPENED"],
        "{got:#?}"
    );
    let open = got[1].json()["data"].clone();
    assert_eq!(open["shareLinkId"], link["id"]);
    assert_eq!(open["contactId"], "acme-cfo");
    assert_eq!(open["assetId"], "pricing-sheet");
    assert_eq!(got[0].json()["data"]["kind"], "VIEW");
    s.stop().await;
}

#[tokio::test]
async fn a_receiver_down_gets_every_event_once_and_a_webhook_failing_too_long_is_disabled() {
    let _machine = crate::support::busy().await;
    let (addr, inbox) = Receiver::start(&[]).await.down();
    let url = format!("http://{addr}/hook");
    let mut s = TestServer::demo_with(|c| {
        quick(c);
        c.webhooks.give_up_after = Duration::from_secs(2);
    })
    .await;
    let hook = create_webhook(&s, &url, &["ENGAGEMENT_RECORDED"]).await;
    s.gql(
        r#"mutation { upsertAccount(account: { id: "acme", name: "Acme" }) { id } }"#,
        json!({}),
    )
    .await;
    for i in 0..5 {
        record(&s, "acme", "pricing-sheet", &format!("down-{i}")).await;
    }
    // Refused for longer than the retry span: the webhook is disabled and says why.
    let since = Instant::now();
    let hooks = loop {
        let hooks = s
            .gql("{ webhooks { enabled disabledReason pending } }", json!({}))
            .await["webhooks"]
            .clone();
        if hooks[0]["enabled"] == false {
            break hooks;
        }
        assert!(since.elapsed() < Duration::from_secs(20), "never disabled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let reason = hooks[0]["disabledReason"].as_str().unwrap();
    assert!(reason.contains("refused the connection"), "{reason}");
    let failed = s
        .gql(
            "query($w: ID!) { webhookDeliveries(webhookId: $w, state: FAILED) { eventId attemptCount } }",
            json!({ "w": hook }),
        )
        .await["webhookDeliveries"]
        .clone();
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed:#}");
    assert_eq!(hooks[0]["pending"], 4, "{hooks:#}");
    // Events while disabled are not queued for it.
    record(&s, "acme", "pricing-sheet", "while-disabled").await;
    let pending = s.gql("{ webhooks { pending } }", json!({})).await;
    assert_eq!(pending["webhooks"][0]["pending"], 4, "{pending:#}");

    // Back up and enabled again: what it still owed goes out, each event once.
    let receiver = Receiver::start_on(addr, inbox).await;
    s.gql(
        "mutation($w: ID!) { updateWebhook(id: $w, change: { enabled: true }) { enabled } }",
        json!({ "w": hook }),
    )
    .await;
    let got = receiver
        .until("four owed events", |got| delivered(got).len() == 4)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.got().len().max(got.len());
    assert_eq!(got, 4, "each event once: {:#?}", receiver.got());
    let ids: Vec<String> = delivered(&receiver.got())
        .iter()
        .map(|g| {
            g.json()["data"]["clientEventId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, ["down-1", "down-2", "down-3", "down-4"]);
    s.stop().await;
}

#[tokio::test]
async fn a_receiver_down_for_a_while_gets_every_event_once_when_it_is_back() {
    let _machine = crate::support::busy().await;
    let (addr, inbox) = Receiver::start(&[]).await.down();
    let mut s = TestServer::demo_with(quick).await;
    let hook = create_webhook(&s, &format!("http://{addr}/hook"), &["ENGAGEMENT_RECORDED"]).await;
    s.gql(
        r#"mutation { a: upsertAccount(account: { id: "a1", name: "A" }) { id }
                      b: upsertAccount(account: { id: "a2", name: "B" }) { id } }"#,
        json!({}),
    )
    .await;
    for i in 0..3 {
        record(&s, "a1", "pricing-sheet", &format!("a1-{i}")).await;
        record(&s, "a2", "pricing-sheet", &format!("a2-{i}")).await;
    }
    // Down long enough for several refused attempts (100 ms, doubling, with jitter).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let receiver = Receiver::start_on(addr, inbox).await;
    receiver
        .until("six events", |got| delivered(got).len() == 6)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.got();
    assert_eq!(got.len(), 6, "each event once: {got:#?}");
    let log = s
        .gql(
            "query($w: ID!) { webhookDeliveries(webhookId: $w) { state attemptCount attempts { error } } }",
            json!({ "w": hook }),
        )
        .await["webhookDeliveries"]
        .clone();
    let refused = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["attemptCount"].as_u64().unwrap() > 2)
        .count();
    assert!(
        refused >= 2,
        "the first of each account was tried again and again: {log:#}"
    );
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "DELIVERED"),
        "{log:#}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_receiver_that_hangs_holds_back_only_its_own_deliveries() {
    let _machine = crate::support::busy().await;
    let hang = Answer::Hang(Duration::from_secs(10));
    let slow = Receiver::start(&[hang; 8]).await;
    let fast = Receiver::start(&[]).await;
    let mut s = TestServer::demo_with(|c| {
        quick(c);
        c.webhooks.timeout = Duration::from_secs(4);
    })
    .await;
    create_webhook(&s, &slow.url, &["ENGAGEMENT_RECORDED"]).await;
    create_webhook(&s, &fast.url, &["ENGAGEMENT_RECORDED"]).await;
    s.gql(
        r#"mutation { upsertAccount(account: { id: "acme", name: "Acme" }) { id } }"#,
        json!({}),
    )
    .await;
    let since = Instant::now();
    for i in 0..4 {
        record(&s, "acme", "pricing-sheet", &format!("e{i}")).await;
    }
    // One after another (one account), each waiting for the one before: had they waited
    // for the hanging receiver's 4 s timeout too, this would take 12 s and more.
    fast.until("four events", |got| delivered(got).len() == 4)
        .await;
    let took = since.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(
        slow.got().len(),
        1,
        "the slow one's first is still in flight"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_coverage_gap_is_announced_when_a_cell_loses_its_last_published_asset() {
    let _machine = crate::support::busy().await;
    let receiver = Receiver::start(&[]).await;
    let mut s = TestServer::empty_with(quick).await;
    let upsert = "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { created } }";
    let asset = |id: &str, stage: &str, roles: &[&str], industries: &[&str]| {
        json!({ "id": id, "title": format!("About {id}"), "contentType": "ebook",
                "url": format!("https://example.com/{id}"), "status": "PUBLISHED",
                "stages": [stage], "roles": roles, "industries": industries })
    };
    s.gql(
        upsert,
        json!({ "a": [
            asset("cfo-guide", "DECISION", &["FINANCE"], &["healthcare"]),
            asset("cfo-brief", "DECISION", &["FINANCE"], &["healthcare"]),
            asset("primer", "AWARENESS", &[], &["retail"]),
        ] }),
    )
    .await;
    create_webhook(&s, &receiver.url, &["COVERAGE_GAP_OPENED"]).await;
    let retire = "mutation($id: ID!) { retireAsset(id: $id) { id } }";
    // Another asset still serves the cell: no gap.
    s.gql(retire, json!({ "id": "cfo-brief" })).await;
    // The last one goes: the cell is empty.
    s.gql(retire, json!({ "id": "cfo-guide" })).await;
    let got = receiver.until("a gap", |got| !got.is_empty()).await;
    let gap = got[0].json()["data"].clone();
    assert_eq!(
        gap,
        json!({ "stage": "DECISION", "role": "FINANCE", "industry": "healthcare",
                "lastAssetIds": ["cfo-guide"] })
    );
    // An asset for every role empties a cell per role; changing tags counts as leaving.
    s.gql(
        upsert,
        json!({ "a": [asset("primer", "CONSIDERATION", &[], &["retail"])] }),
    )
    .await;
    let roles = s.gql("{ taxonomy { roles { name } } }", json!({})).await["taxonomy"]["roles"]
        .as_array()
        .unwrap()
        .len();
    let got = receiver
        .until("a gap per role", |got| got.len() == 1 + roles)
        .await;
    for g in &got[1..] {
        let data = g.json()["data"].clone();
        assert_eq!(data["stage"], "AWARENESS");
        assert_eq!(data["industry"], "retail");
        assert_eq!(data["lastAssetIds"], json!(["primer"]));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.got().len(), 1 + roles, "{:#?}", receiver.got());
    s.stop().await;
}

#[tokio::test]
async fn deliveries_in_flight_when_the_server_is_killed_go_out_after_the_restart() {
    let _machine = crate::support::busy().await;
    // The first delivery hangs until the server is dead; later ones are answered at once.
    let receiver = Receiver::start(&[Answer::Hang(Duration::from_secs(30))]).await;
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--demo",
        "--webhook-allow-private",
        "--webhook-timeout-ms",
        "1500",
        "--webhook-retry-base-ms",
        "100",
    ];
    let first = serve_binary(dir.path(), &args, &[]);
    let client = reqwest::Client::new();
    let gql = |addr: String, query: &'static str, variables: Value| {
        let client = client.clone();
        async move {
            let body: Value = client
                .post(format!("http://{addr}/graphql"))
                .json(&json!({ "query": query, "variables": variables }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(body.get("errors").is_none(), "{body}");
            body["data"].clone()
        }
    };
    gql(
        first.addr.clone(),
        "mutation($u: String!, $s: String!) {
            createWebhook(url: $u, events: [ENGAGEMENT_RECORDED], secret: $s) { id } }",
        json!({ "u": receiver.url, "s": SECRET }),
    )
    .await;
    gql(
        first.addr.clone(),
        r#"mutation { a: upsertAccount(account: { id: "a1", name: "A" }) { id }
                      b: upsertAccount(account: { id: "a2", name: "B" }) { id } }"#,
        json!({}),
    )
    .await;
    let event = "mutation($e: EngagementInput!) { recordEngagement(event: $e) { recorded } }";
    gql(
        first.addr.clone(),
        event,
        json!({ "e": { "accountId": "a1", "assetId": "pricing-sheet", "kind": "VIEW", "clientEventId": "k1" } }),
    )
    .await;
    receiver
        .until("the first delivery", |got| !got.is_empty())
        .await;
    // Written while that delivery is in flight, then the process dies at once.
    gql(
        first.addr.clone(),
        event,
        json!({ "e": { "accountId": "a1", "assetId": "roi-calculator-close-time", "kind": "VIEW", "clientEventId": "k2" } }),
    )
    .await;
    gql(
        first.addr.clone(),
        event,
        json!({ "e": { "accountId": "a2", "assetId": "roi-calculator-close-time", "kind": "VIEW", "clientEventId": "k3" } }),
    )
    .await;
    first.kill();
    let second = serve_binary(dir.path(), &args[1..], &[]);
    let got = receiver
        .until("every event after the restart", |got| {
            delivered(got).len() == 3
        })
        .await;
    let ids: BTreeSet<String> = delivered(&got)
        .iter()
        .map(|g| {
            g.json()["data"]["clientEventId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, BTreeSet::from(["k1".into(), "k2".into(), "k3".into()]));
    // The one in flight went again with its event id: at least once, never lost.
    let again = got.iter().filter(|g| g.event_id == got[0].event_id).count();
    assert_eq!(again, 2, "{got:#?}");
    // And a1's events kept their order across the crash.
    let a1: Vec<String> = delivered(&got)
        .iter()
        .filter(|g| g.json()["data"]["accountId"] == "a1")
        .map(|g| {
            g.json()["data"]["clientEventId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(a1, ["k1", "k2"]);
    second.kill();
}

#[tokio::test]
async fn two_replicas_deliver_each_event_once() {
    let _machine = crate::support::busy().await;
    if std::env::var(POSTGRES_ENV).is_err() {
        eprintln!("runs with the PostgreSQL suite (scripts/test.sh)");
        return;
    }
    let receiver = Receiver::start(&[]).await;
    let shared = tempfile::tempdir().unwrap();
    let url = config_in(shared.path()).database_url;
    let mut servers = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let url = url.clone();
        let server = TestServer::start_in_with(dir.path(), true, move |c| {
            quick(c);
            // Both replicas look for work all the time: their claims overlap.
            c.webhooks.poll = Duration::from_millis(5);
            // A lease long enough that only two claims at once could send an event twice
            // (with 0.7 s, a loaded machine let leases run out before the outcome was
            // written: a second send, which is at-least-once working as meant).
            c.webhooks.timeout = Duration::from_secs(5);
            c.database_url = url;
        })
        .await;
        servers.push((server, dir));
    }
    create_webhook(&servers[0].0, &receiver.url, &["ENGAGEMENT_RECORDED"]).await;
    let accounts: Vec<String> = (0..30).map(|i| format!("acct-{i}")).collect();
    for a in &accounts {
        servers[0]
            .0
            .gql(
                "mutation($id: ID!) { upsertAccount(account: { id: $id, name: \"N\" }) { id } }",
                json!({ "id": a }),
            )
            .await;
    }
    let mut writes = Vec::new();
    for (i, a) in accounts.iter().enumerate() {
        for n in 0..5 {
            let server = &servers[(i + n) % 2].0;
            let client_id = format!("{a}-{n}");
            writes.push(async move { record(server, a, "pricing-sheet", &client_id).await });
        }
    }
    futures::future::join_all(writes).await;
    let got = receiver
        .until("every event", |got| delivered(got).len() == 150)
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = receiver.got().len().max(got.len());
    assert_eq!(got, 150, "each event once: {:#?}", receiver.got());
    for (mut server, _dir) in servers {
        server.stop().await;
    }
}
