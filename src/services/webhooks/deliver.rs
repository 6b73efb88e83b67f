//! The deliverer: one per replica. It claims due deliveries from the outbox, posts each
//! to its receiver signed with the webhook's secret, and records the attempt: a 2xx
//! delivers; anything else (another status, a refused connection, a timeout) is tried
//! again after a backoff with jitter, until the delivery has failed for the whole retry
//! span (24 hours), when it fails and its webhook is disabled with the reason.
//!
//! Receivers are reached over the public network only: every address a name resolves to
//! is checked at each delivery (a name that later resolves to a private address is
//! refused then), redirects are not followed and no proxy from the environment is used.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use super::super::Library;
use crate::config::WebhookConfig;
use crate::domain::{retry_delay, signature};
use crate::store::{ClaimedDelivery, DeliveryOutcome, StoredAttempt};

/// Deliveries in flight at once (claimed as room frees up).
const IN_FLIGHT: usize = 32;
/// How much of a receiver's answer is kept with the attempt.
const RESPONSE_KEPT: u64 = 1024;
/// Delivered and failed deliveries are kept this long, then pruned.
const KEPT_FOR: Duration = Duration::from_secs(30 * 86_400);
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Wakes the deliverer of this process when a write put something in the outbox.
pub struct Deliverer {
    wake: Notify,
}

impl Deliverer {
    pub fn new() -> Self {
        Self {
            wake: Notify::new(),
        }
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

impl Default for Deliverer {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether an address is on the public internet: not loopback, private, link-local,
/// shared (CGNAT), documentation, benchmarking, multicast or reserved, in IPv4 or IPv6
/// (IPv4-mapped and NAT64 addresses are judged by the IPv4 address inside).
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public_v4(v4);
            }
            let s = v6.segments();
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let o = v6.octets();
                return public_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || v6 == Ipv6Addr::from([0u8; 16]))
        }
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

/// Resolves as ureq does, then keeps public addresses only (unless private ones are
/// allowed): the check and the connection use the same addresses.
struct PublicOnly {
    inner: DefaultResolver,
    allow_private: bool,
}

impl std::fmt::Debug for PublicOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicOnly")
            .field("allow_private", &self.allow_private)
            .finish()
    }
}

impl Resolver for PublicOnly {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let found = self.inner.resolve(uri, config, timeout)?;
        if self.allow_private {
            return Ok(found);
        }
        let mut kept = self.inner.empty();
        for addr in found.iter().filter(|a| is_public_address(a.ip())) {
            kept.push(*addr);
        }
        if kept.is_empty() {
            return Err(ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the receiver resolves to a loopback or private address \
                 (start the server with --webhook-allow-private to allow it)",
            )));
        }
        Ok(kept)
    }
}

fn agent(config: &WebhookConfig) -> ureq::Agent {
    let settings = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .proxy(None)
        .timeout_global(Some(config.timeout))
        .user_agent(concat!("stagefit-webhooks/", env!("CARGO_PKG_VERSION")))
        .build();
    ureq::Agent::with_parts(
        settings,
        DefaultConnector::new(),
        PublicOnly {
            inner: DefaultResolver::default(),
            allow_private: config.allow_private,
        },
    )
}

/// One POST of a delivery: the status and the start of the answer, or why there was none.
fn post(agent: &ureq::Agent, claimed: &ClaimedDelivery) -> StoredAttempt {
    let started = Instant::now();
    let attempted_at = Utc::now();
    let d = &claimed.delivery;
    let signed = signature(&claimed.secret, attempted_at.timestamp(), &d.payload);
    let sent = agent
        .post(&claimed.url)
        .header("content-type", "application/json")
        .header("stagefit-signature", &signed)
        .header("stagefit-event-id", &d.event_id)
        .header("stagefit-event-type", &d.event_type)
        .send(d.payload.as_bytes());
    let (status, error, response) = match sent {
        Ok(mut answer) => {
            let mut kept = Vec::new();
            let _ = answer
                .body_mut()
                .as_reader()
                .take(RESPONSE_KEPT)
                .read_to_end(&mut kept);
            let text = String::from_utf8_lossy(&kept).into_owned();
            (Some(answer.status().as_u16()), None, Some(text))
        }
        Err(err) => (None, Some(describe(&err)), None),
    };
    StoredAttempt {
        delivery_id: d.id,
        attempted_at: attempted_at.timestamp_millis(),
        status,
        error,
        response,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

fn describe(err: &ureq::Error) -> String {
    match err {
        ureq::Error::Timeout(_) => "no answer in time".to_owned(),
        ureq::Error::HostNotFound => "the receiver's host name does not resolve".to_owned(),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "the receiver refused the connection".to_owned()
        }
        other => other.to_string(),
    }
}

/// What an attempt leads to: a 2xx delivers; otherwise try again after the backoff, or
/// give up once the delivery has failed for `give_up_after`.
fn outcome(
    attempt: &StoredAttempt,
    claimed: &ClaimedDelivery,
    config: &WebhookConfig,
    jitter: f64,
) -> DeliveryOutcome {
    if attempt.status.is_some_and(|s| (200..300).contains(&s)) {
        return DeliveryOutcome::Delivered;
    }
    let now = Utc::now();
    let failing_for = now.timestamp() - claimed.delivery.created_at;
    if failing_for >= i64::try_from(config.give_up_after.as_secs()).unwrap_or(i64::MAX) {
        let last = match (attempt.status, &attempt.error) {
            (Some(status), _) => format!("status {status}"),
            (None, Some(error)) => error.clone(),
            (None, None) => "no answer".to_owned(),
        };
        return DeliveryOutcome::GiveUp(format!(
            "event {} failed for {} s over {} attempts (last: {last}); disabled",
            claimed.delivery.event_id,
            failing_for,
            claimed.delivery.attempts + 1
        ));
    }
    let wait = retry_delay(claimed.delivery.attempts + 1, config.retry_base, jitter);
    DeliveryOutcome::Retry(
        now.timestamp_millis() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2),
    )
}

fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX)
}

/// Sends one claimed delivery and decides what follows; `None` when the sending task died.
async fn attempt(
    agent: ureq::Agent,
    claimed: ClaimedDelivery,
    config: &WebhookConfig,
) -> Option<(ClaimedDelivery, StoredAttempt, DeliveryOutcome)> {
    let sent = {
        let claimed = claimed.clone();
        tokio::task::spawn_blocking(move || post(&agent, &claimed)).await
    };
    let attempt = sent.ok()?;
    let next = outcome(&attempt, &claimed, config, jitter());
    let label = match next {
        DeliveryOutcome::Delivered => "delivered",
        DeliveryOutcome::Retry(_) => "retry",
        DeliveryOutcome::GiveUp(_) => "failed",
    };
    metrics::counter!(crate::metrics::WEBHOOK_ATTEMPTS, "outcome" => label).increment(1);
    if let DeliveryOutcome::GiveUp(reason) = &next {
        tracing::warn!(webhook = %claimed.delivery.webhook_id, %reason, "webhook disabled");
    }
    Some((claimed, attempt, next))
}

impl Library {
    /// Starts this replica's deliverer.
    pub fn start_webhooks(&self) -> JoinHandle<()> {
        let library = self.clone();
        tokio::spawn(async move { library.deliver_forever().await })
    }

    async fn deliver_forever(self) {
        let config = self.webhook_config.clone();
        let agent = agent(&config);
        // An attempt holds its delivery for its timeout and some: past that, another
        // replica (or this one, restarted) may send it again.
        let margin = config.timeout.min(Duration::from_secs(5));
        let lease_ms = i64::try_from((config.timeout + margin).as_millis()).unwrap_or(i64::MAX / 4);
        let mut pruned = Instant::now();
        // Attempts run as tasks of their own and report here; the loop claims more as soon
        // as there is room, so a receiver that hangs to its timeout holds back only its
        // own deliveries, never another webhook's or another account's.
        let (report, mut reports) = tokio::sync::mpsc::channel(IN_FLIGHT * 2);
        let mut in_flight = 0usize;
        // Each turn follows something that may have made deliveries due: a start, an
        // attempt done (the next of its account may go), a wake-up or a poll.
        loop {
            if in_flight < IN_FLIGHT {
                let room = (IN_FLIGHT - in_flight) as u64;
                match self
                    .store
                    .claim_deliveries(Utc::now().timestamp_millis(), lease_ms, room)
                    .await
                {
                    Ok(claimed) => {
                        for claimed in claimed {
                            in_flight += 1;
                            let agent = agent.clone();
                            let config = config.clone();
                            let report = report.clone();
                            tokio::spawn(async move {
                                let done = attempt(agent, claimed, &config).await;
                                let _ = report.send(done).await;
                            });
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "cannot read the webhook outbox"),
                }
            }
            if in_flight == 0 {
                if pruned.elapsed() >= PRUNE_EVERY {
                    pruned = Instant::now();
                    self.prune_deliveries().await;
                }
                tokio::select! {
                    () = self.deliverer.wake.notified() => {}
                    () = tokio::time::sleep(config.poll) => {}
                }
                continue;
            }
            let room = in_flight < IN_FLIGHT;
            tokio::select! {
                Some(first) = reports.recv() => {
                    // Whatever else is done by now goes in the same transaction.
                    let mut finished: Vec<_> = first.into_iter().collect();
                    in_flight -= 1;
                    while let Ok(more) = reports.try_recv() {
                        in_flight -= 1;
                        finished.extend(more);
                    }
                    let rows: Vec<_> = finished
                        .iter()
                        .map(|(c, a, o)| (&c.delivery, a.clone(), o.clone()))
                        .collect();
                    if let Err(err) = self.store.finish_deliveries(&rows).await {
                        // The leases run out and the deliveries go again: at least once.
                        tracing::warn!(error = %err, "cannot record webhook attempts");
                    }
                }
                () = self.deliverer.wake.notified(), if room => {}
                () = tokio::time::sleep(config.poll), if room => {}
            }
        }
    }

    async fn prune_deliveries(&self) {
        let before = Utc::now().timestamp() - KEPT_FOR.as_secs() as i64;
        if let Err(err) = self.store.prune_deliveries(before, 10_000).await {
            tracing::warn!(error = %err, "cannot prune old webhook deliveries");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_receive_webhooks() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
        ] {
            let ip: IpAddr = private.parse().unwrap();
            assert!(!is_public_address(ip), "{private}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = public.parse().unwrap();
            assert!(is_public_address(ip), "{public}");
        }
    }
}
