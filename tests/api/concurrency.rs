//! Concurrent writers on the default SQLite database: what a CRM sync does while page
//! views stream in. Every write must succeed and every acknowledged write must be stored.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use stagefit::store::Store;

use crate::support::{TestServer, demo_records};

const CLIENTS: usize = 8;
/// Rounds per client; each round is three writes (account, contact, event).
const ROUNDS: usize = 100;
/// Accounts per client: rounds revisit them, so upserts update as well as create.
const ACCOUNTS_PER_CLIENT: usize = 12;

const WRITE_ACCOUNT: &str = r#"
mutation($account: AccountInput!) { upsertAccount(account: $account) { id } }"#;
const WRITE_CONTACT: &str = r#"
mutation($contact: ContactInput!) { upsertContact(contact: $contact) { id } }"#;
const WRITE_EVENT: &str = r#"
mutation($event: EngagementInput!) { recordEngagement(event: $event) { recorded } }"#;

/// What one client was told was written.
#[derive(Default)]
struct Acknowledged {
    accounts: BTreeSet<String>,
    contacts: BTreeSet<(String, String)>,
    events: BTreeSet<(String, String)>,
    failures: Vec<String>,
}

async fn post(client: &reqwest::Client, url: &str, query: &str, variables: Value) -> Value {
    let response = client
        .post(format!("{url}/graphql"))
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("request");
    let status = response.status();
    let body: Value = response.json().await.expect("json body");
    if status != 200 {
        return json!({ "errors": [{ "message": format!("HTTP {status}: {body}") }] });
    }
    body
}

async fn run_client(url: String, client_no: usize, assets: Vec<String>) -> Acknowledged {
    let client = reqwest::Client::new();
    let mut ack = Acknowledged::default();
    let stages = ["AWARENESS", "CONSIDERATION", "DECISION"];
    for round in 0..ROUNDS {
        let account = format!("c{client_no}-acct-{}", round % ACCOUNTS_PER_CLIENT);
        let contact = format!("c{client_no}-person-{round}");
        let event = format!("c{client_no}-event-{round}");
        let writes = [
            (
                WRITE_ACCOUNT,
                json!({ "account": { "id": account, "name": format!("Account {account}"),
                                     "industry": "retail", "stage": stages[round % 3] } }),
            ),
            (
                WRITE_CONTACT,
                json!({ "contact": { "id": contact, "accountId": account, "name": contact,
                                     "role": "FINANCE" } }),
            ),
            (
                WRITE_EVENT,
                json!({ "event": { "accountId": account, "contactId": contact,
                                   "assetId": assets[(client_no * ROUNDS + round) % assets.len()],
                                   "kind": "VIEW", "clientEventId": event } }),
            ),
        ];
        for (i, (query, variables)) in writes.into_iter().enumerate() {
            let body = post(&client, &url, query, variables).await;
            if let Some(errors) = body.get("errors") {
                ack.failures.push(errors.to_string());
                continue;
            }
            match i {
                0 => {
                    ack.accounts.insert(account.clone());
                }
                1 => {
                    ack.contacts.insert((contact.clone(), account.clone()));
                }
                _ => {
                    ack.events.insert((account.clone(), event.clone()));
                }
            }
        }
    }
    ack
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_account_contact_and_event_writes_all_succeed_and_are_stored() {
    let _machine = crate::support::busy().await;
    let mut s = TestServer::demo().await;
    let assets: Vec<String> = demo_records()
        .iter()
        .filter(|r| r.get("status").is_none_or(|v| v == "published"))
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();

    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(run_client(s.url.clone(), c, assets.clone())))
        .collect();
    let mut all = Acknowledged::default();
    for task in tasks {
        let ack = task.await.unwrap();
        all.accounts.extend(ack.accounts);
        all.contacts.extend(ack.contacts);
        all.events.extend(ack.events);
        all.failures.extend(ack.failures);
    }
    let writes = CLIENTS * ROUNDS * 3;
    assert!(
        all.failures.is_empty(),
        "{} of {writes} writes failed, the first: {}",
        all.failures.len(),
        all.failures[0]
    );
    assert_eq!(all.accounts.len(), CLIENTS * ACCOUNTS_PER_CLIENT);
    assert_eq!(all.contacts.len(), CLIENTS * ROUNDS);
    assert_eq!(all.events.len(), CLIENTS * ROUNDS);

    // Read back through a connection of its own, not the server's caches.
    let store = Store::connect(&s.database_url()).await.unwrap();
    for id in &all.accounts {
        assert!(store.get_account(id).await.unwrap().is_some(), "{id}");
    }
    for (id, account) in &all.contacts {
        let contact = store.get_contact(id).await.unwrap().expect(id);
        assert_eq!(contact.account_id.as_str(), account);
    }
    let mut stored_events = BTreeSet::new();
    for account in &all.accounts {
        for e in store.engagements_page(account, 0, 10_000).await.unwrap() {
            let client_id = e.engagement.client_event_id.expect("client id");
            stored_events.insert((account.clone(), client_id));
        }
    }
    assert_eq!(stored_events, all.events);
    store.close().await;
    s.stop().await;
}
