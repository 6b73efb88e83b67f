//! Rate limits, checked after authentication and before anything is parsed or run: a
//! token bucket per key, and for publishable keys and visitor tokens one per (key, client
//! address) as well, so one abusive visitor cannot use up a site's quota and one key never
//! eats another's. A visitor token spends from the server key that signed it. governor's
//! GCRA buckets; the open mode (loopback only) is not limited.
//!
//! A key may carry its own rates (`keys limit`); it then gets buckets of its own, rebuilt
//! when its rates change.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};

use crate::config::RateLimitConfig;
use crate::domain::Scope;
use crate::services::Credential;

/// Buckets unused for a while are dropped every this many checks.
const PRUNE_EVERY: u64 = 10_000;

/// A key's own bucket, with the rate it was built for.
type Own<T> = Mutex<HashMap<String, (u32, Arc<T>)>>;

/// Addresses remembered as over their failure budget at most; past this the oldest
/// entries go first (each also expires on its own).
const MAX_FAILING_ADDRESSES: usize = 100_000;

pub struct RateLimits {
    /// Failed credentials (401) per client address.
    failures: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses that spent their failure budget, until when: they present no credential
    /// that needs a database lookup before then.
    failing: Mutex<HashMap<IpAddr, std::time::Instant>>,
    per_key: DefaultKeyedRateLimiter<String>,
    per_client: DefaultKeyedRateLimiter<(String, IpAddr)>,
    /// Keys with their own rate, by key id.
    own_per_key: Own<DefaultDirectRateLimiter>,
    own_per_client: Own<DefaultKeyedRateLimiter<IpAddr>>,
    clock: DefaultClock,
    checks: AtomicU64,
}

fn quota(per_second: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(burst)
}

/// The bucket of `id` for `rate`, made (or remade, when the rate changed) on first use.
fn own<T>(map: &Own<T>, id: &str, rate: u32, make: impl FnOnce() -> T) -> Arc<T> {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    match map.get(id) {
        Some((built_for, bucket)) if *built_for == rate => bucket.clone(),
        _ => {
            let bucket = Arc::new(make());
            map.insert(id.to_owned(), (rate, bucket.clone()));
            bucket
        }
    }
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig) -> Self {
        Self {
            failures: DefaultKeyedRateLimiter::keyed(quota(
                config.auth_failures_per_second,
                config.auth_failure_burst,
            )),
            failing: Mutex::new(HashMap::new()),
            per_key: DefaultKeyedRateLimiter::keyed(quota(
                config.per_key_per_second,
                config.per_key_per_second,
            )),
            per_client: DefaultKeyedRateLimiter::keyed(quota(
                config.per_client_per_second,
                config.per_client_burst,
            )),
            own_per_key: Mutex::new(HashMap::new()),
            own_per_client: Mutex::new(HashMap::new()),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// How long `client` must wait before it may present a credential that needs a
    /// database lookup, if it spent its budget of failed credentials.
    pub fn failing(&self, client: Option<IpAddr>) -> Option<Duration> {
        let client = client?;
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        let until = *failing.get(&client)?;
        let now = std::time::Instant::now();
        if until <= now {
            failing.remove(&client);
            return None;
        }
        Some(until - now)
    }

    /// Counts a failed credential (401) of `client` against its budget.
    pub fn note_failure(&self, client: Option<IpAddr>) {
        let Some(client) = client else { return };
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.failures.retain_recent();
        }
        let Err(not_until) = self.failures.check_key(&client) else {
            return;
        };
        let wait = not_until.wait_time_from(self.clock.now());
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        if failing.len() >= MAX_FAILING_ADDRESSES {
            let now = std::time::Instant::now();
            failing.retain(|_, until| *until > now);
            if failing.len() >= MAX_FAILING_ADDRESSES {
                // Every entry is live: the budget still limits these addresses, if later.
                return;
            }
        }
        failing.insert(
            client,
            std::time::Instant::now() + wait.max(Duration::from_millis(1)),
        );
    }

    /// `None` when the request may go on; else how long until it could.
    pub fn check(&self, credential: &Credential, client: Option<IpAddr>) -> Option<Duration> {
        let key = credential.key()?;
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.per_key.retain_recent();
            self.per_client.retain_recent();
            for (_, bucket) in self
                .own_per_client
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
            {
                bucket.retain_recent();
            }
        }
        let now = self.clock.now();
        // The visitor's own bucket first: a refused visitor does not spend the key's.
        if credential.scope() == Scope::Publishable
            && let Some(client) = client
        {
            let checked = match key.client_rate_per_second {
                None => self.per_client.check_key(&(key.id.clone(), client)),
                Some(rate) => own(&self.own_per_client, &key.id, rate, || {
                    DefaultKeyedRateLimiter::keyed(quota(rate, rate.saturating_mul(2)))
                })
                .check_key(&client),
            };
            if let Err(not_until) = checked {
                return Some(not_until.wait_time_from(now));
            }
        }
        let checked = match key.rate_per_second {
            None => self.per_key.check_key(&key.id),
            Some(rate) => own(&self.own_per_key, &key.id, rate, || {
                DefaultDirectRateLimiter::direct(quota(rate, rate))
            })
            .check(),
        };
        checked.err().map(|not_until| not_until.wait_time_from(now))
    }
}
