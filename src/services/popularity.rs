//! Popularity: how much similar accounts engaged with each asset, kept out of the index.
//!
//! Similar accounts share a cohort: the top of their industry branch and their journey
//! stage (`financial-services|DECISION`), plus one cohort per stage across industries
//! (`*|DECISION`) for audiences with no industry. Each event is tagged with its
//! account's cohort when recorded, and the store adds it to the counters in the event's
//! own transaction (`domain::counters`: each account once per asset, its deepest, most
//! recent engagement, halved every `COUNTER_HALF_LIFE_DAYS`). Every replica reads the
//! [`POPULAR_PER_COHORT`] best assets of each cohort every `--popularity-refresh-secs`
//! and log-scales them against the cohort's best (`ranking::popularity_value`); the board
//! swaps (and cached answers expire) only when a value moved. What a read costs grows
//! with the cohorts, not with the events.
//!
//! Assets outside a cohort's best have popularity 0 there: that bounds what a
//! recommendation must look up beyond its tier walk (see `search::recommend`), and the tail
//! of a log scale is worth little anyway.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::Utc;
use tokio::sync::Mutex;

use crate::domain::{COUNTER_HALF_LIFE_DAYS, decay_at};
use crate::error::AppResult;
use crate::ranking::popularity_value;
use crate::store::{Counted, Store};

/// Assets per cohort with a popularity value.
pub const POPULAR_PER_COHORT: usize = 16;
/// Events read per transaction by a rebuild of the counters.
const REBUILD_CHUNK: u64 = 5_000;
/// Values are decayed to the start of the hour they are read in, so they move with the
/// events, not with every read.
const DECAY_STEP_SECS: i64 = 3_600;

/// One cohort's popular assets.
#[derive(Default, Debug)]
pub struct CohortPopularity {
    pub values: HashMap<String, f64>,
    /// The same assets, most popular first.
    pub ids: Vec<String>,
}

#[derive(Default, Debug)]
pub struct PopularitySnapshot {
    cohorts: HashMap<String, Arc<CohortPopularity>>,
}

impl PopularitySnapshot {
    /// Each cohort's best, as stored, decayed to `now`.
    fn from_counts(cohorts: Vec<(String, Vec<Counted>)>, now: i64) -> Self {
        let decay = decay_at(now, COUNTER_HALF_LIFE_DAYS);
        let cohorts = cohorts
            .into_iter()
            .filter(|(_, best)| !best.is_empty())
            .map(|(key, best)| {
                let max = best.first().map_or(0.0, |c| c.weight * decay);
                let mut c = CohortPopularity::default();
                for counted in best {
                    let value = popularity_value(counted.weight * decay, max);
                    c.ids.push(counted.asset_id.clone());
                    c.values.insert(counted.asset_id, value);
                }
                (key, Arc::new(c))
            })
            .collect();
        Self { cohorts }
    }

    pub fn cohort(&self, key: &str) -> Option<Arc<CohortPopularity>> {
        self.cohorts.get(key).cloned()
    }

    /// Whether both hold the same assets with the same values (to the last bit).
    fn same_as(&self, other: &Self) -> bool {
        self.cohorts.len() == other.cohorts.len()
            && self.cohorts.iter().all(|(k, c)| {
                other.cohorts.get(k).is_some_and(|o| {
                    o.ids == c.ids
                        && c.ids.iter().all(|id| {
                            c.values.get(id).map(|v| v.to_bits())
                                == o.values.get(id).map(|v| v.to_bits())
                        })
                })
            })
    }
}

/// What a rebuild of the counters did.
#[derive(Clone, Copy, Debug, Default)]
pub struct PopularityStats {
    /// Events read.
    pub events: u64,
    /// Cohorts and assets with a popularity value after it.
    pub cohorts: u64,
    pub assets: u64,
}

/// The current popularity values of this process.
pub struct PopularityBoard {
    snapshot: RwLock<Arc<PopularitySnapshot>>,
    /// Moves with every swap, so cached responses computed with older values expire.
    version: AtomicU64,
    /// The newest event row the last load saw: a new one may have moved co-reads, which
    /// answers cached under the current version would not show.
    newest_event: AtomicI64,
    /// One load or rebuild at a time.
    loading: Mutex<()>,
}

impl Default for PopularityBoard {
    fn default() -> Self {
        Self {
            snapshot: RwLock::new(Arc::new(PopularitySnapshot::default())),
            version: AtomicU64::new(0),
            newest_event: AtomicI64::new(0),
            loading: Mutex::new(()),
        }
    }
}

impl PopularityBoard {
    pub fn snapshot(&self) -> Arc<PopularitySnapshot> {
        match self.snapshot.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Makes every answer computed before it stale (events moved counters that the best
    /// lists do not show, such as co-reads).
    pub fn touch(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// Replaces the values when they differ; says whether they did.
    fn swap(&self, snapshot: PopularitySnapshot) -> bool {
        if self.snapshot().same_as(&snapshot) {
            return false;
        }
        let snapshot = Arc::new(snapshot);
        match self.snapshot.write() {
            Ok(mut s) => *s = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
        self.version.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// Reads every cohort's best from the counters (as any replica's events left them).
    /// Returns whether a value changed. A new event since the last load moves the version
    /// even when no best list changed.
    pub async fn load(&self, store: &Store) -> AppResult<bool> {
        let _one = self.loading.lock().await;
        self.load_locked(store).await
    }

    async fn load_locked(&self, store: &Store) -> AppResult<bool> {
        let now = Utc::now().timestamp();
        let mut cohorts = Vec::new();
        for cohort in store.popularity_cohorts().await? {
            let best = store
                .cohort_best(&cohort, POPULAR_PER_COHORT as u64)
                .await?;
            cohorts.push((cohort, best));
        }
        let at = now - now.rem_euclid(DECAY_STEP_SECS);
        let newest = store.newest_engagement_id().await?;
        let changed = self.swap(PopularitySnapshot::from_counts(cohorts, at));
        if self.newest_event.swap(newest, Ordering::AcqRel) != newest && !changed {
            self.touch();
        }
        Ok(changed)
    }

    /// Rebuilds the counters from the stored events (a repair), then loads them.
    pub async fn rebuild(&self, store: &Store) -> AppResult<PopularityStats> {
        let _one = self.loading.lock().await;
        let started = std::time::Instant::now();
        let events = store.rebuild_counters(REBUILD_CHUNK).await?;
        self.load_locked(store).await?;
        metrics::histogram!(crate::metrics::POPULARITY_REFRESH)
            .record(started.elapsed().as_secs_f64());
        store
            .announce(crate::store::ReplicaChange::Popularity)
            .await;
        let snapshot = self.snapshot();
        Ok(PopularityStats {
            events,
            cohorts: snapshot.cohorts.len() as u64,
            assets: snapshot.cohorts.values().map(|c| c.ids.len() as u64).sum(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(asset: &str, weight: f64) -> Counted {
        Counted {
            asset_id: asset.into(),
            weight,
            accounts: 1,
        }
    }

    #[test]
    fn values_are_log_scaled_against_the_cohort_best_at_the_reading_time() {
        let epoch = crate::domain::COUNTER_EPOCH;
        // Stored in growing units; 45 days on, everything weighs half.
        let now = epoch + 45 * 86_400;
        let snapshot = PopularitySnapshot::from_counts(
            vec![(
                "retail|DECISION".into(),
                vec![counted("b", 8.0), counted("a", 2.0)],
            )],
            now,
        );
        let c = snapshot.cohort("retail|DECISION").unwrap();
        assert_eq!(c.ids, vec!["b".to_owned(), "a".to_owned()]);
        assert_eq!(c.values["b"], 1.0);
        let a = c.values["a"];
        assert!((a - 2f64.ln() / 5f64.ln()).abs() < 1e-9, "{a}");
        assert!(snapshot.same_as(&PopularitySnapshot::from_counts(
            vec![(
                "retail|DECISION".into(),
                vec![counted("b", 8.0), counted("a", 2.0)],
            )],
            now,
        )));
    }
}
