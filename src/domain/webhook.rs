//! Webhooks, the pure parts: the events stagefit pushes to other systems, the envelope
//! each is sent in, how a delivery is signed, and when a failed one is tried again.
//!
//! The signature: `stagefit-signature: t=UNIX_SECONDS,v1=HEX`, where HEX is the
//! HMAC-SHA256, keyed with the webhook's secret, of the timestamp, a dot and the body
//! exactly as sent. A receiver recomputes it, compares in constant time and refuses a
//! timestamp far from its clock (a replayed delivery).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// What a webhook can listen for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WebhookEvent {
    /// An engagement event was recorded (a duplicate by client id is not).
    EngagementRecorded,
    /// A person (not a scanner) opened a share link.
    ShareLinkOpened,
    /// An account's buying stage moved.
    StageChanged,
    /// A cell of stage x role x industry lost its last published asset.
    CoverageGapOpened,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 4] = [
        WebhookEvent::EngagementRecorded,
        WebhookEvent::ShareLinkOpened,
        WebhookEvent::StageChanged,
        WebhookEvent::CoverageGapOpened,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WebhookEvent::EngagementRecorded => "ENGAGEMENT_RECORDED",
            WebhookEvent::ShareLinkOpened => "SHARE_LINK_OPENED",
            WebhookEvent::StageChanged => "STAGE_CHANGED",
            WebhookEvent::CoverageGapOpened => "COVERAGE_GAP_OPENED",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        let wanted = raw.trim().to_ascii_uppercase().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|e| e.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|e| e.name()).collect();
                format!("{raw:?} is not an event; one of {}", names.join(", "))
            })
    }

    /// Event names as a webhook row stores them (comma-separated, in [`Self::ALL`] order).
    pub fn join(events: &[WebhookEvent]) -> String {
        let mut sorted = events.to_vec();
        sorted.sort();
        sorted.dedup();
        let names: Vec<&str> = sorted.iter().map(|e| e.name()).collect();
        names.join(",")
    }

    /// The events of a stored list; unknown names (of a newer version) are skipped.
    pub fn split(stored: &str) -> Vec<WebhookEvent> {
        stored
            .split(',')
            .filter_map(|n| WebhookEvent::parse(n).ok())
            .collect()
    }
}

/// An event about to enter the outbox: written once, in the transaction of the change it
/// reports, then delivered to every webhook listening for its kind.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEvent {
    /// The idempotency id (`evt_...`): the same on every attempt and for every webhook.
    pub id: String,
    pub kind: WebhookEvent,
    /// Deliveries of one key go out in order: the account's id (empty for library events).
    pub ordering_key: String,
    /// The body sent, exactly: see [`envelope`].
    pub body: String,
}

impl OutboxEvent {
    /// `data` in its envelope, keyed for ordering by `account` (if any).
    pub fn new(
        id: String,
        kind: WebhookEvent,
        account: Option<&str>,
        at: DateTime<Utc>,
        data: Value,
    ) -> Self {
        OutboxEvent {
            body: envelope(&id, kind, at, data),
            id,
            kind,
            ordering_key: account.unwrap_or_default().to_owned(),
        }
    }
}

/// The body of a delivery: `{"id", "type", "createdAt", "data"}`.
pub fn envelope(id: &str, kind: WebhookEvent, at: DateTime<Utc>, data: Value) -> String {
    json!({
        "id": id,
        "type": kind.name(),
        "createdAt": at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "data": data,
    })
    .to_string()
}

/// The `stagefit-signature` header for `body` sent at `timestamp` (Unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, format!("{timestamp}.{body}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// Where one event's delivery to one webhook stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not yet answered with a 2xx: waiting for its first or next attempt.
    Pending,
    /// A 2xx came back.
    Delivered,
    /// Given up after failing for the whole retry span; its webhook was disabled.
    Failed,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 3] = [
        DeliveryState::Pending,
        DeliveryState::Delivered,
        DeliveryState::Failed,
    ];

    /// As stored.
    pub fn name(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == stored)
    }
}

/// The longest wait between two attempts.
pub const MAX_RETRY_INTERVAL: Duration = Duration::from_secs(30 * 60);

/// How long to wait after the `failures`-th failed attempt (1 for the first): `base`
/// doubled per failure up to [`MAX_RETRY_INTERVAL`], of which a random half (`jitter` in
/// [0, 1)) is kept, so receivers coming back are not hit by every sender at once.
pub fn retry_delay(failures: u32, base: Duration, jitter: f64) -> Duration {
    let doubled = base
        .checked_mul(1u32 << failures.saturating_sub(1).min(20))
        .unwrap_or(MAX_RETRY_INTERVAL)
        .min(MAX_RETRY_INTERVAL);
    doubled.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// Shortest and longest secret a webhook may have.
pub const SECRET_LENGTH: std::ops::RangeInclusive<usize> = 16..=256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_by_name_and_round_trip_through_storage() {
        assert_eq!(
            WebhookEvent::parse("stage-changed"),
            Ok(WebhookEvent::StageChanged)
        );
        assert!(
            WebhookEvent::parse("STAGE")
                .unwrap_err()
                .contains("COVERAGE_GAP_OPENED")
        );
        let stored = WebhookEvent::join(&[
            WebhookEvent::StageChanged,
            WebhookEvent::EngagementRecorded,
            WebhookEvent::StageChanged,
        ]);
        assert_eq!(stored, "ENGAGEMENT_RECORDED,STAGE_CHANGED");
        assert_eq!(
            WebhookEvent::split(&format!("{stored},FROM_THE_FUTURE")),
            [WebhookEvent::EngagementRecorded, WebhookEvent::StageChanged]
        );
    }

    #[test]
    fn the_signature_is_the_hmac_of_timestamp_dot_body() {
        // Worked out with `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test`.
        assert_eq!(
            signature("whsec_test", 1_700_000_000, r#"{"a":1}"#),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
        assert_ne!(
            signature("whsec_test", 1_700_000_001, r#"{"a":1}"#),
            signature("whsec_test", 1_700_000_000, r#"{"a":1}"#)
        );
    }

    #[test]
    fn retries_back_off_with_jitter_up_to_a_cap() {
        let base = Duration::from_secs(5);
        assert_eq!(retry_delay(1, base, 1.0), Duration::from_secs(5));
        assert_eq!(retry_delay(1, base, 0.0), Duration::from_millis(2500));
        assert_eq!(retry_delay(3, base, 1.0), Duration::from_secs(20));
        assert_eq!(retry_delay(40, base, 1.0), MAX_RETRY_INTERVAL);
        assert_eq!(retry_delay(40, base, 0.0), MAX_RETRY_INTERVAL / 2);
        // Over 24 hours of failures, about 60 attempts.
        let mut elapsed = Duration::ZERO;
        let mut attempts = 0;
        while elapsed < Duration::from_secs(24 * 3600) {
            attempts += 1;
            elapsed += retry_delay(attempts, base, 1.0);
        }
        assert!((45..70).contains(&attempts), "{attempts}");
    }

    #[test]
    fn an_envelope_carries_id_type_time_and_data() {
        let at = DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let event = OutboxEvent::new(
            "evt_1".into(),
            WebhookEvent::ShareLinkOpened,
            Some("acme"),
            at,
            json!({ "assetId": "a" }),
        );
        let body: Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!(
            body,
            json!({ "id": "evt_1", "type": "SHARE_LINK_OPENED",
                    "createdAt": "2026-12-07T10:00:00Z", "data": { "assetId": "a" } })
        );
        assert_eq!(event.ordering_key, "acme");
    }
}
