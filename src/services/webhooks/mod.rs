//! Webhooks: an administrator registers a receiver for some events; writes that report
//! such an event put it in the outbox in their own transaction (the store does that), and
//! the deliverer of every replica sends what is due ([`deliver`]). Also where an account's
//! buying stage is settled after each write that may move it, which is what
//! `STAGE_CHANGED` reports.

mod deliver;

use chrono::Utc;

use super::Library;
use crate::domain::{DeliveryState, SECRET_LENGTH, WebhookEvent};
use crate::error::{AppError, AppResult};
use crate::store::{StageMove, StoredAttempt, StoredDelivery, StoredWebhook, WebhookChange};

pub use deliver::{Deliverer, is_public_address};

/// Webhooks one deployment may have.
pub const MAX_WEBHOOKS: usize = 50;
/// Deliveries listed at most.
pub const MAX_DELIVERIES: u64 = 500;
/// Longest description.
const MAX_DESCRIPTION: usize = 500;
/// Longest receiver address.
const MAX_URL: usize = 2_000;
/// Accounts of one write whose profiles are read again and stages settled at once.
const SETTLING_AT_ONCE: usize = 4;
/// Most accounts of one write settled before it answers.
const SETTLED_INLINE: usize = 4;

/// A delivery with its attempts, oldest first.
pub struct DeliveryReport {
    pub delivery: StoredDelivery,
    pub attempts: Vec<StoredAttempt>,
}

/// What `createWebhook` and `updateWebhook` are given.
#[derive(Clone, Debug, Default)]
pub struct WebhookDraft {
    pub url: Option<String>,
    pub events: Option<Vec<WebhookEvent>>,
    pub secret: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

impl Library {
    fn check_webhook(&self, draft: &WebhookDraft) -> AppResult<()> {
        if let Some(url) = &draft.url {
            check_receiver(url, self.webhook_config.allow_private)?;
        }
        if let Some(events) = &draft.events
            && events.is_empty()
        {
            return Err(AppError::bad_input("events: name at least one event"));
        }
        if let Some(secret) = &draft.secret
            && !SECRET_LENGTH.contains(&secret.chars().count())
        {
            return Err(AppError::bad_input(format!(
                "secret: {} to {} characters (a random string the receiver also knows)",
                SECRET_LENGTH.start(),
                SECRET_LENGTH.end()
            )));
        }
        if let Some(d) = &draft.description
            && d.chars().count() > MAX_DESCRIPTION
        {
            return Err(AppError::bad_input(format!(
                "description: at most {MAX_DESCRIPTION} characters"
            )));
        }
        Ok(())
    }

    /// Registers a receiver of `events` at `url`, signing with `secret`.
    pub async fn create_webhook(&self, draft: WebhookDraft) -> AppResult<StoredWebhook> {
        let (Some(url), Some(events), Some(secret)) = (&draft.url, &draft.events, &draft.secret)
        else {
            return Err(AppError::bad_input("give url, events and secret"));
        };
        self.check_webhook(&draft)?;
        if self.store.webhooks().await?.len() >= MAX_WEBHOOKS {
            return Err(AppError::bad_input(format!(
                "at most {MAX_WEBHOOKS} webhooks; delete one first"
            )));
        }
        let mut random = [0u8; 9];
        getrandom::fill(&mut random)
            .map_err(|e| AppError::internal(anyhow::anyhow!("no randomness for an id: {e}")))?;
        let hook = StoredWebhook {
            id: format!(
                "wh_{}",
                random
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            ),
            url: url.trim().to_owned(),
            events: events.clone(),
            secret: secret.clone(),
            description: draft.description.clone().unwrap_or_default(),
            created_at: Utc::now().timestamp(),
            disabled_at: None,
            disabled_reason: None,
        };
        self.store.insert_webhook(&hook).await?;
        Ok(hook)
    }

    pub async fn webhooks(&self) -> AppResult<Vec<StoredWebhook>> {
        self.store.webhooks().await
    }

    /// Changes a webhook; enabling one that was disabled sends what it still owes.
    pub async fn update_webhook(&self, id: &str, draft: WebhookDraft) -> AppResult<StoredWebhook> {
        self.check_webhook(&draft)?;
        let change = WebhookChange {
            url: draft.url.map(|u| u.trim().to_owned()),
            events: draft.events,
            secret: draft.secret,
            description: draft.description,
            enabled: draft.enabled,
        };
        let hook = self
            .store
            .update_webhook(id, &change, Utc::now().timestamp())
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no webhook with id {id:?}")))?;
        self.deliverer.wake();
        Ok(hook)
    }

    /// Deletes a webhook and what it still owes; false when there was none.
    pub async fn delete_webhook(&self, id: &str) -> AppResult<bool> {
        self.store.delete_webhook(id).await
    }

    /// How many deliveries of a webhook are pending.
    pub async fn pending_deliveries(&self, id: &str) -> AppResult<u64> {
        self.store.pending_deliveries(id).await
    }

    /// A webhook's deliveries, newest first, with their attempts.
    pub async fn webhook_deliveries(
        &self,
        id: &str,
        state: Option<DeliveryState>,
        first: u64,
    ) -> AppResult<Vec<DeliveryReport>> {
        if self.store.webhook(id).await?.is_none() {
            return Err(AppError::NotFound(format!("no webhook with id {id:?}")));
        }
        let deliveries = self
            .store
            .deliveries(id, state, first.min(MAX_DELIVERIES))
            .await?;
        let ids: Vec<i64> = deliveries.iter().map(|d| d.id).collect();
        let mut attempts = self.store.attempts(&ids).await?;
        Ok(deliveries
            .into_iter()
            .map(|delivery| {
                let mine;
                (mine, attempts) = attempts
                    .drain(..)
                    .partition(|a| a.delivery_id == delivery.id);
                DeliveryReport {
                    delivery,
                    attempts: mine,
                }
            })
            .collect())
    }

    /// After writes about these accounts: their cached profiles are read again and their
    /// stages settled; the deliverer looks for new work.
    /// A write of a few accounts answers once their stages are settled; a batch over many
    /// (a backfill) answers at once and settles them in the background.
    pub(crate) async fn accounts_changed(&self, ids: &[String]) {
        for id in ids {
            self.account_changed(id).await;
        }
        if ids.len() <= SETTLED_INLINE {
            self.settle_stages(ids).await;
        } else {
            let library = self.clone();
            let ids = ids.to_vec();
            tokio::spawn(async move { library.settle_stages(&ids).await });
        }
    }

    async fn settle_stages(&self, ids: &[String]) {
        use futures::StreamExt;
        futures::stream::iter(ids)
            .for_each_concurrent(SETTLING_AT_ONCE, |id| async move {
                if let Err(err) = self.settle_stage(id).await {
                    // The write stands; the stage settles at the account's next write.
                    tracing::warn!(account = %id, error = %err, "cannot settle the account's stage");
                }
            })
            .await;
        self.deliverer.wake();
    }

    /// Records the stage the account's profile now gives it, if it moved. The cause of a
    /// move by reading is the heaviest recent event pointing at the new stage.
    async fn settle_stage(&self, id: &str) -> AppResult<Option<StageMove>> {
        let Some(profile) = self.account_profile(id).await? else {
            return Ok(None);
        };
        let (Some((stage, from_reading)), Some(source)) = (profile.journey, profile.stage_source)
        else {
            return Ok(None);
        };
        // Most writes move nothing: a read says so without taking the write lock.
        if self.store.settled_stage(id).await? == Some(stage) {
            return Ok(None);
        }
        let cause = if from_reading {
            profile.inference.as_ref().and_then(|inf| {
                inf.evidence
                    .iter()
                    .find(|e| e.reading.stages.contains(&stage))
                    .map(|e| e.reading.asset_id.clone())
            })
        } else {
            None
        };
        self.store
            .settle_stage(id, stage, source, cause.as_deref(), Utc::now())
            .await
    }

    /// An account's stage moves since `since` (Unix seconds), newest first.
    pub async fn stage_changes(
        &self,
        id: &str,
        since: i64,
        first: u64,
    ) -> AppResult<Vec<StageMove>> {
        self.store.stage_changes(id, since, first).await
    }
}

/// Whether `raw` may receive webhooks: an absolute http(s) address with a host and no
/// credentials; unless `allow_private`, not a loopback, private or link-local address
/// literal nor `localhost` (names are checked again at each delivery, where they resolve).
pub fn check_receiver(raw: &str, allow_private: bool) -> AppResult<()> {
    let raw = raw.trim();
    let bad = |why: &str| Err(AppError::bad_input(format!("url: {why} (got {raw:?})")));
    if raw.len() > MAX_URL {
        return bad(&format!("at most {MAX_URL} characters"));
    }
    if !crate::domain::is_http_url(raw) {
        return bad("give an absolute http:// or https:// address");
    }
    let Ok(uri) = raw.parse::<http::Uri>() else {
        return bad("not a valid address");
    };
    let Some(authority) = uri.authority() else {
        return bad("no host");
    };
    if authority.as_str().contains('@') {
        return bad("no user name or password in the address; the secret signs deliveries");
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.is_empty() {
        return bad("no host");
    }
    if !allow_private {
        let lower = host.to_ascii_lowercase();
        let local_name = lower == "localhost" || lower.ends_with(".localhost");
        let private_ip = host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| !is_public_address(ip));
        if local_name || private_ip {
            return bad(
                "a loopback or private address; start the server with --webhook-allow-private to allow it",
            );
        }
    }
    Ok(())
}
