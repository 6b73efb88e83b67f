//! Rate limits, checked after authentication and before anything is parsed or run: a
//! token bucket per key, and for publishable keys one per (key, client address) as well,
//! so one abusive visitor cannot use up a site's quota and one key never eats another's.
//! governor's GCRA buckets; the open mode (loopback only) is not limited.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::RateLimitConfig;
use crate::domain::Scope;
use crate::services::Credential;

/// Buckets unused for a while are dropped every this many checks.
const PRUNE_EVERY: u64 = 10_000;

pub struct RateLimits {
    per_key: DefaultKeyedRateLimiter<String>,
    per_client: DefaultKeyedRateLimiter<(String, IpAddr)>,
    clock: DefaultClock,
    checks: AtomicU64,
}

fn quota(per_second: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(burst)
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig) -> Self {
        Self {
            per_key: DefaultKeyedRateLimiter::keyed(quota(
                config.per_key_per_second,
                config.per_key_per_second,
            )),
            per_client: DefaultKeyedRateLimiter::keyed(quota(
                config.per_client_per_second,
                config.per_client_burst,
            )),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// `None` when the request may go on; else how long until it could.
    pub fn check(&self, credential: &Credential, client: Option<IpAddr>) -> Option<Duration> {
        let Credential::Key(key) = credential else {
            return None;
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.per_key.retain_recent();
            self.per_client.retain_recent();
        }
        // The visitor's own bucket first: a refused visitor does not spend the key's.
        if key.scope == Scope::Publishable
            && let Some(client) = client
            && let Err(not_until) = self.per_client.check_key(&(key.id.clone(), client))
        {
            return Some(not_until.wait_time_from(self.clock.now()));
        }
        self.per_key
            .check_key(&key.id)
            .err()
            .map(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}
