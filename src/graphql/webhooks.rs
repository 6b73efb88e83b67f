//! Webhooks (an admin key): register a receiver for some events, change or delete it, and
//! see what was sent to it, attempt by attempt.

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, TimeZone, Utc};

use super::ApiResult;
use super::library::library;
use super::types::unix_time;
use crate::services::{DeliveryReport, StoredAttempt, StoredWebhook, WebhookDraft};

/// Deliveries listed when `first` is left out.
const DEFAULT_DELIVERIES: i32 = 50;

fn time_ms(millis: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(millis).single()
}

/// What a webhook can listen for (the domain's list; a variant missing on either side
/// fails the build).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::WebhookEvent")]
pub enum WebhookEvent {
    /// An engagement event was recorded (through the API, a share link or an import).
    EngagementRecorded,
    /// A person (never a mail scanner or unfurler) opened a share link.
    ShareLinkOpened,
    /// An account's buying stage moved (by reading, or its CRM stage changed).
    StageChanged,
    /// A stage x role x industry cell lost its last published asset (by declared tags).
    CoverageGapOpened,
}

/// Where a delivery stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::DeliveryState")]
pub enum DeliveryState {
    /// Waiting for its first or next attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Failed for the whole retry span (24 hours); its webhook was disabled.
    Failed,
}

/// A receiver of events. Each delivery is a POST of `{"id", "type", "createdAt", "data"}`
/// with the headers `stagefit-event-id` (the same on every retry: deduplicate on it),
/// `stagefit-event-type` and `stagefit-signature: t=UNIX_SECONDS,v1=HEX`, HEX being the
/// HMAC-SHA256 of `t.body` keyed with the secret.
#[derive(SimpleObject)]
#[graphql(name = "Webhook", complex)]
pub struct WebhookObject {
    pub id: ID,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub description: String,
    pub created_at: Option<DateTime<Utc>>,
    /// False once disabled (by an administrator, or after failing for 24 hours).
    pub enabled: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
}

impl From<StoredWebhook> for WebhookObject {
    fn from(h: StoredWebhook) -> Self {
        WebhookObject {
            id: ID(h.id),
            url: h.url,
            events: h.events.into_iter().map(Into::into).collect(),
            description: h.description,
            created_at: unix_time(h.created_at),
            enabled: h.disabled_at.is_none(),
            disabled_at: h.disabled_at.and_then(unix_time),
            disabled_reason: h.disabled_reason,
        }
    }
}

#[ComplexObject]
impl WebhookObject {
    /// Deliveries not yet made (waiting, or being retried).
    async fn pending(&self, ctx: &Context<'_>) -> ApiResult<u64> {
        Ok(library(ctx)?.pending_deliveries(&self.id).await?)
    }
}

/// One event for one webhook, with every attempt at it.
#[derive(SimpleObject)]
#[graphql(name = "WebhookDelivery")]
pub struct DeliveryObject {
    pub id: ID,
    /// The idempotency id: the same on every attempt.
    pub event_id: String,
    pub event_type: String,
    /// The account it is about (deliveries of one account go out in order); null for
    /// library events.
    pub account_id: Option<ID>,
    /// The body sent, exactly.
    pub payload: String,
    pub created_at: Option<DateTime<Utc>>,
    pub state: DeliveryState,
    pub attempt_count: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub attempts: Vec<AttemptObject>,
}

/// One POST to the receiver.
#[derive(SimpleObject)]
#[graphql(name = "WebhookAttempt")]
pub struct AttemptObject {
    pub at: Option<DateTime<Utc>>,
    /// The receiver's status; null when there was no answer (see `error`).
    pub status: Option<u16>,
    pub error: Option<String>,
    /// The first kilobyte of the receiver's answer.
    pub response: Option<String>,
    pub duration_ms: u64,
}

impl From<StoredAttempt> for AttemptObject {
    fn from(a: StoredAttempt) -> Self {
        AttemptObject {
            at: time_ms(a.attempted_at),
            status: a.status,
            error: a.error,
            response: a.response,
            duration_ms: a.duration_ms,
        }
    }
}

impl From<DeliveryReport> for DeliveryObject {
    fn from(r: DeliveryReport) -> Self {
        let d = r.delivery;
        let pending = d.state == crate::domain::DeliveryState::Pending;
        DeliveryObject {
            id: ID(d.id.to_string()),
            event_id: d.event_id,
            event_type: d.event_type,
            account_id: Some(d.ordering_key).filter(|k| !k.is_empty()).map(ID),
            payload: d.payload,
            created_at: unix_time(d.created_at),
            state: d.state.into(),
            attempt_count: d.attempts,
            next_attempt_at: time_ms(d.next_attempt_ms).filter(|_| pending),
            delivered_at: d.delivered_at.and_then(unix_time),
            last_status: d.last_status,
            last_error: d.last_error,
            attempts: r.attempts.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// Every webhook, oldest first (secrets are never shown).
    #[graphql(cache_control(no_cache))]
    async fn webhooks(&self, ctx: &Context<'_>) -> ApiResult<Vec<WebhookObject>> {
        Ok(library(ctx)?
            .webhooks()
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// A webhook's deliveries, newest first, with their attempts and the receiver's
    /// answers; only those in `state` if given.
    #[graphql(cache_control(no_cache))]
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        webhook_id: ID,
        state: Option<DeliveryState>,
        #[graphql(default_with = "Some(DEFAULT_DELIVERIES)")] first: Option<i32>,
    ) -> ApiResult<Vec<DeliveryObject>> {
        let library = library(ctx)?;
        let first = library.page_size(first.unwrap_or(DEFAULT_DELIVERIES))?;
        Ok(library
            .webhook_deliveries(&webhook_id, state.map(Into::into), first as u64)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

/// What `updateWebhook` changes; what is left out stays.
#[derive(InputObject)]
pub struct WebhookChangeInput {
    pub url: Option<String>,
    pub events: Option<Vec<WebhookEvent>>,
    pub secret: Option<String>,
    pub description: Option<String>,
    /// False disables; true enables (and clears why it was disabled).
    pub enabled: Option<bool>,
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Registers a receiver of `events` at `url` (http or https; loopback and private
    /// addresses only with `--webhook-allow-private`). `secret` (16 to 256 characters)
    /// signs every delivery; it is never shown again.
    #[graphql(cache_control(no_cache))]
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        url: String,
        events: Vec<WebhookEvent>,
        secret: String,
        description: Option<String>,
    ) -> ApiResult<WebhookObject> {
        let draft = WebhookDraft {
            url: Some(url),
            events: Some(events.into_iter().map(Into::into).collect()),
            secret: Some(secret),
            description,
            enabled: None,
        };
        Ok(library(ctx)?.create_webhook(draft).await?.into())
    }

    /// Changes what `change` gives. `enabled: true` turns a disabled webhook back on:
    /// what it still owes goes out, oldest first.
    #[graphql(cache_control(no_cache))]
    async fn update_webhook(
        &self,
        ctx: &Context<'_>,
        id: ID,
        change: WebhookChangeInput,
    ) -> ApiResult<WebhookObject> {
        let draft = WebhookDraft {
            url: change.url,
            events: change
                .events
                .map(|e| e.into_iter().map(Into::into).collect()),
            secret: change.secret,
            description: change.description,
            enabled: change.enabled,
        };
        Ok(library(ctx)?.update_webhook(&id, draft).await?.into())
    }

    /// Deletes a webhook and every delivery it still owes; false when there was none.
    #[graphql(cache_control(no_cache))]
    async fn delete_webhook(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        Ok(library(ctx)?.delete_webhook(&id).await?)
    }
}
