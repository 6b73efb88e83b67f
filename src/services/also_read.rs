//! "Readers of this also read": what accounts read after some seed assets, from the
//! co-read counters the store keeps as events arrive (`domain::counters`), for the
//! ALSO_READ factor.
//!
//! An asset's neighbours are read per seed and cohort (the audience's industry, and every
//! industry), the [`NEIGHBOURS`] heaviest pairs that at least [`MIN_ACCOUNTS`] accounts
//! made: one account's reading alone is never shown back. A seed's lists are kept until the
//! popularity board's version moves (each replica's read of the counters every second
//! moves it when a new event was stored, an erasure at once), so a busy page asks the
//! database about once a second per seed at most, and an event shows within about two
//! seconds on every replica (the counters move in its own transaction).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use quick_cache::sync::Cache;

use super::Library;
use crate::domain::{ANY_INDUSTRY, COUNTER_HALF_LIFE_DAYS, IndustrySlug, decay_at};
use crate::error::AppResult;
use crate::ranking::{AlsoRead, AlsoReadHit, popularity_value};
use crate::store::Counted;

/// Neighbours read per seed and cohort.
pub const NEIGHBOURS: u64 = 20;
/// Accounts a pair needs before it counts: fewer would show one account's reading.
pub const MIN_ACCOUNTS: i64 = 2;
/// Seeds an account's latest reads give.
pub const ACCOUNT_SEEDS: usize = 3;
/// (seed, cohort) lists kept.
const CACHED_LISTS: usize = 20_000;

type Neighbours = Arc<Vec<Counted>>;

/// Recently read neighbour lists.
pub(super) struct ReadNextCache {
    /// (seed, cohort) -> (the popularity version it was read at, the list).
    lists: Cache<(String, String), (u64, Neighbours)>,
    /// Seed -> (the index position it was read at, its title), for the reasons.
    titles: Cache<String, (i64, String)>,
}

impl Default for ReadNextCache {
    fn default() -> Self {
        Self {
            lists: Cache::new(CACHED_LISTS),
            titles: Cache::new(CACHED_LISTS),
        }
    }
}

impl Library {
    /// What readers of `seeds` (asset ids, most telling first) read next, for an audience
    /// in `industry`; `title` names a single seed in the reasons of assets nobody read
    /// after it. `None` without seeds.
    pub(super) async fn also_read(
        &self,
        seeds: &[String],
        title: Option<&str>,
        industry: Option<&IndustrySlug>,
    ) -> AppResult<Option<AlsoRead>> {
        if seeds.is_empty() {
            return Ok(None);
        }
        let decay = decay_at(Utc::now().timestamp(), COUNTER_HALF_LIFE_DAYS);
        let industry = industry.map(IndustrySlug::root);
        let mut hits: HashMap<String, AlsoReadHit> = HashMap::new();
        let mut hit_seeds: Vec<&str> = Vec::new();
        for seed in seeds {
            // The audience's own industry first: an asset counted there keeps that count.
            let mut found: HashMap<String, AlsoReadHit> = HashMap::new();
            for cohort in industry.iter().copied().chain([ANY_INDUSTRY]) {
                let list = self.read_next(seed, cohort).await?;
                let max = list.first().map_or(0.0, |c| c.weight * decay);
                for c in list.iter() {
                    if found.contains_key(&c.asset_id) || seeds.contains(&c.asset_id) {
                        continue;
                    }
                    found.insert(
                        c.asset_id.clone(),
                        AlsoReadHit {
                            value: popularity_value(c.weight * decay, max),
                            accounts: c.accounts,
                            seed: seed.clone(),
                            industry: (cohort != ANY_INDUSTRY).then(|| cohort.to_owned()),
                        },
                    );
                }
            }
            if !found.is_empty() {
                hit_seeds.push(seed);
            }
            for (id, hit) in found {
                match hits.get(&id) {
                    Some(best) if (best.value, best.accounts) >= (hit.value, hit.accounts) => {}
                    _ => {
                        hits.insert(id, hit);
                    }
                }
            }
        }
        // Reasons name seeds by title: read only for the seeds that gave something.
        let mut titles: HashMap<&str, String> = HashMap::new();
        for seed in hit_seeds {
            titles.insert(seed, self.seed_title(seed).await?);
        }
        for hit in hits.values_mut() {
            if let Some(title) = titles.get(hit.seed.as_str()) {
                hit.seed = title.clone();
            }
        }
        let seeds = match (seeds, title) {
            ([_], Some(title)) => vec![title.to_owned()],
            _ => Vec::new(),
        };
        Ok(Some(AlsoRead { seeds, hits }))
    }

    /// A seed's title, from the cache while the library has not changed.
    async fn seed_title(&self, seed: &str) -> AppResult<String> {
        let seq = self.index_seq();
        if let Some((at, title)) = self.read_next.titles.get(seed)
            && at == seq
        {
            return Ok(title);
        }
        let title = self
            .store
            .get_asset(seed)
            .await?
            .map_or_else(|| seed.to_owned(), |a| a.title);
        self.read_next
            .titles
            .insert(seed.to_owned(), (seq, title.clone()));
        Ok(title)
    }

    /// A seed's neighbours in a cohort, from the cache when read since the popularity
    /// version last moved.
    async fn read_next(&self, seed: &str, cohort: &str) -> AppResult<Neighbours> {
        let key = (seed.to_owned(), cohort.to_owned());
        // Read before the database: a move meanwhile makes the entry old, never too new.
        let version = self.popularity.version();
        if let Some((at, list)) = self.read_next.lists.get(&key)
            && at == version
        {
            return Ok(list);
        }
        let list = Arc::new(
            self.store
                .read_next(seed, cohort, NEIGHBOURS, MIN_ACCOUNTS)
                .await?,
        );
        self.read_next.lists.insert(key, (version, list.clone()));
        Ok(list)
    }
}
