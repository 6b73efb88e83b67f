//! Answers read from the database and reused for a while ([`KEY_CACHE`](super::KEY_CACHE) unless the
//! settings say otherwise; tests shorten it): API keys by hash and by id,
//! whether any key exists, the safelist. While the database cannot be reached, the last
//! answer stands (reads go on; nothing can be revoked or registered meanwhile either).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

use crate::error::{AppError, AppResult};

/// Entries kept before the expired ones are swept: unknown keys are cached too, and a
/// flood of them must not grow the map forever.
const SWEEP_ABOVE: usize = 10_000;

pub(super) struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
    max_age: std::time::Duration,
}

impl<K: Hash + Eq + Clone, V: Clone> TtlCache<K, V> {
    pub(super) fn new(max_age: std::time::Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            max_age,
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, V)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The answer for `key`: cached if younger than the cache's age, else `load`ed (and the
    /// stale answer kept when the database is unavailable).
    pub(super) async fn get_or_load(
        &self,
        key: &K,
        load: impl Future<Output = AppResult<V>>,
    ) -> AppResult<V> {
        let stale = match self.entries().get(key) {
            Some((at, value)) if at.elapsed() < self.max_age => return Ok(value.clone()),
            Some((_, value)) => Some(value.clone()),
            None => None,
        };
        let value = match (load.await, stale) {
            (Ok(value), _) => value,
            (Err(AppError::Unavailable(_)), Some(stale)) => return Ok(stale),
            (Err(err), _) => return Err(err),
        };
        let mut entries = self.entries();
        if entries.len() > SWEEP_ABOVE {
            entries.retain(|_, (at, _)| at.elapsed() < self.max_age);
        }
        entries.insert(key.clone(), (Instant::now(), value.clone()));
        Ok(value)
    }

    /// Whether a fresh answer for `key` is cached (so getting it reads nothing).
    pub(super) fn holds_fresh(&self, key: &K) -> bool {
        self.entries()
            .get(key)
            .is_some_and(|(at, _)| at.elapsed() < self.max_age)
    }

    /// Forgets every answer: after a change through this process.
    pub(super) fn clear(&self) {
        self.entries().clear();
    }
}
