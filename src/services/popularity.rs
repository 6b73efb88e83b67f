//! Popularity: how much similar accounts engaged with each asset, kept out of the index.
//!
//! Similar accounts share a cohort: the top of their industry branch and their journey
//! stage (`financial-services|DECISION`), plus one cohort per stage across industries
//! (`*|DECISION`) for audiences with no industry. Each event is tagged with its
//! account's cohort when recorded. A refresh reads the events of the last
//! [`POPULARITY_HORIZON_DAYS`], counts each account once per asset (its deepest, most
//! recent engagement, halved every `POPULARITY_HALF_LIFE_DAYS`), sums over accounts, keeps
//! the [`POPULAR_PER_COHORT`] best assets of each cohort and log-scales them against the
//! cohort's best (`ranking::popularity_value`). The result replaces the `asset_popularity`
//! table in one transaction and the in-memory board in one swap.
//!
//! Assets outside a cohort's best have popularity 0 there: that bounds what a
//! recommendation must look up beyond its tier walk (see `search::recommend`), and the tail
//! of a log scale is worth little anyway.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::Utc;
use tokio::sync::Mutex;

use crate::domain::{IndustrySlug, Stage, TaxonomyValue};
use crate::error::AppResult;
use crate::ranking::{POPULARITY_HALF_LIFE_DAYS, decayed, popularity_value};
use crate::store::{PopularityRow, Store};

/// Assets per cohort with a popularity value.
pub const POPULAR_PER_COHORT: usize = 16;
/// Events older than this no longer count (four half-lives: a sixteenth of their weight).
pub const POPULARITY_HORIZON_DAYS: i64 = 180;
/// Events read per query during a refresh.
const REFRESH_CHUNK: u64 = 50_000;
/// Cohort of accounts without an industry, and the all-industries cohort of a stage.
const ANY_INDUSTRY: &str = "*";

/// The cohort an account at `stage` in `industry` belongs to.
pub fn cohort_key(industry: Option<&IndustrySlug>, stage: Stage) -> String {
    format!(
        "{}|{}",
        industry.map_or(ANY_INDUSTRY, IndustrySlug::root),
        stage.name()
    )
}

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
    fn from_rows(rows: Vec<PopularityRow>) -> Self {
        let mut cohorts: HashMap<String, CohortPopularity> = HashMap::new();
        for row in rows {
            let c = cohorts.entry(row.cohort).or_default();
            c.ids.push(row.asset_id.clone());
            c.values.insert(row.asset_id, row.value);
        }
        for c in cohorts.values_mut() {
            c.ids
                .sort_by(|a, b| c.values[b].total_cmp(&c.values[a]).then(a.cmp(b)));
        }
        Self {
            cohorts: cohorts.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
        }
    }

    pub fn cohort(&self, key: &str) -> Option<Arc<CohortPopularity>> {
        self.cohorts.get(key).cloned()
    }
}

/// What a refresh did.
#[derive(Clone, Copy, Debug, Default)]
pub struct PopularityStats {
    pub events: u64,
    pub cohorts: u64,
    pub assets: u64,
    /// False when nothing changed since the last refresh and it was skipped.
    pub refreshed: bool,
}

/// The current popularity values of this process.
pub struct PopularityBoard {
    snapshot: RwLock<Arc<PopularitySnapshot>>,
    /// Moves with every swap, so cached responses computed with older values expire.
    version: AtomicU64,
    /// The event watermark of the last refresh; one refresh at a time.
    last_refresh: Mutex<Option<(i64, u64)>>,
}

impl Default for PopularityBoard {
    fn default() -> Self {
        Self {
            snapshot: RwLock::new(Arc::new(PopularitySnapshot::default())),
            version: AtomicU64::new(0),
            last_refresh: Mutex::new(None),
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

    fn swap(&self, snapshot: PopularitySnapshot) {
        let snapshot = Arc::new(snapshot);
        match self.snapshot.write() {
            Ok(mut s) => *s = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// Loads what the table holds, as the last refresh (of any replica) left it.
    pub async fn load(&self, store: &Store) -> AppResult<()> {
        let rows = store.popularity().await?;
        self.swap(PopularitySnapshot::from_rows(rows));
        Ok(())
    }

    /// Recomputes popularity from the events, unless none was recorded or erased since the
    /// last refresh and `force` is false.
    pub async fn refresh(&self, store: &Store, force: bool) -> AppResult<PopularityStats> {
        let started = std::time::Instant::now();
        let stats = self.refresh_timed(store, force).await;
        if stats.as_ref().is_ok_and(|s| s.refreshed) {
            metrics::histogram!(crate::metrics::POPULARITY_REFRESH)
                .record(started.elapsed().as_secs_f64());
            store
                .announce(crate::store::ReplicaChange::Popularity)
                .await;
        }
        stats
    }

    async fn refresh_timed(&self, store: &Store, force: bool) -> AppResult<PopularityStats> {
        let mut last = self.last_refresh.lock().await;
        let watermark = store.engagement_watermark().await?;
        if !force && *last == Some(watermark) {
            return Ok(PopularityStats::default());
        }
        let now = Utc::now().timestamp();
        let since = now - POPULARITY_HORIZON_DAYS * 86_400;
        let mut tally = Tally::default();
        let mut after = 0;
        loop {
            let events = store.cohort_events(since, after, REFRESH_CHUNK).await?;
            let Some(last_event) = events.last() else {
                break;
            };
            after = last_event.id;
            for e in &events {
                let age_days = (now - e.occurred_at) as f64 / 86_400.0;
                let weight = decayed(e.kind.depth(), age_days, POPULARITY_HALF_LIFE_DAYS);
                tally.add(&e.cohort, &e.account_id, &e.asset_id, weight);
            }
        }
        let rows = tally.rows();
        let stats = PopularityStats {
            events: tally.events,
            cohorts: rows
                .iter()
                .map(|r| &r.cohort)
                .collect::<std::collections::HashSet<_>>()
                .len() as u64,
            assets: rows.len() as u64,
            refreshed: true,
        };
        store.replace_popularity(&rows).await?;
        self.swap(PopularitySnapshot::from_rows(rows));
        *last = Some(watermark);
        Ok(stats)
    }
}

/// Engagement summed per cohort and asset, each account counted once per asset.
#[derive(Default)]
struct Tally {
    cohorts: Vec<String>,
    cohort_ids: HashMap<String, u32>,
    /// Cohort of an event -> (its id, the id of its stage's all-industries cohort).
    cohort_pairs: HashMap<String, (u32, Option<u32>)>,
    assets: Vec<String>,
    asset_ids: HashMap<String, u32>,
    accounts: HashMap<String, u32>,
    /// (cohort, asset, account) -> the account's heaviest event for the asset.
    best: HashMap<(u32, u32, u32), f64>,
    events: u64,
}

fn intern(names: &mut Vec<String>, ids: &mut HashMap<String, u32>, name: &str) -> u32 {
    if let Some(id) = ids.get(name) {
        return *id;
    }
    let id = names.len() as u32;
    names.push(name.to_owned());
    ids.insert(name.to_owned(), id);
    id
}

impl Tally {
    fn add(&mut self, cohort: &str, account: &str, asset: &str, weight: f64) {
        self.events += 1;
        let asset = intern(&mut self.assets, &mut self.asset_ids, asset);
        let account = match self.accounts.get(account) {
            Some(id) => *id,
            None => {
                let id = self.accounts.len() as u32;
                self.accounts.insert(account.to_owned(), id);
                id
            }
        };
        let (own, every_industry) = self.cohort_ids(cohort);
        for c in std::iter::once(own).chain(every_industry) {
            let best = self.best.entry((c, asset, account)).or_insert(0.0);
            *best = best.max(weight);
        }
    }

    /// The cohort's id and, for a cohort of one industry, that of its stage across every
    /// industry; computed once per cohort, not per event.
    fn cohort_ids(&mut self, cohort: &str) -> (u32, Option<u32>) {
        if let Some(ids) = self.cohort_pairs.get(cohort) {
            return *ids;
        }
        let own = intern(&mut self.cohorts, &mut self.cohort_ids, cohort);
        let every_industry = cohort
            .split_once('|')
            .filter(|(industry, _)| *industry != ANY_INDUSTRY)
            .map(|(_, stage)| {
                let key = format!("{ANY_INDUSTRY}|{stage}");
                intern(&mut self.cohorts, &mut self.cohort_ids, &key)
            });
        self.cohort_pairs
            .insert(cohort.to_owned(), (own, every_industry));
        (own, every_industry)
    }

    fn rows(&self) -> Vec<PopularityRow> {
        let mut sums: HashMap<(u32, u32), f64> = HashMap::new();
        for (&(c, asset, _), &w) in &self.best {
            *sums.entry((c, asset)).or_insert(0.0) += w;
        }
        let mut by_cohort: HashMap<u32, Vec<(u32, f64)>> = HashMap::new();
        for ((c, asset), raw) in sums {
            by_cohort.entry(c).or_default().push((asset, raw));
        }
        let mut rows = Vec::new();
        for (c, mut assets) in by_cohort {
            assets.sort_by(|a, b| {
                b.1.total_cmp(&a.1)
                    .then_with(|| self.assets[a.0 as usize].cmp(&self.assets[b.0 as usize]))
            });
            assets.truncate(POPULAR_PER_COHORT);
            let max = assets.first().map_or(0.0, |a| a.1);
            rows.extend(assets.into_iter().map(|(asset, raw)| PopularityRow {
                cohort: self.cohorts[c as usize].clone(),
                asset_id: self.assets[asset as usize].clone(),
                value: popularity_value(raw, max),
            }));
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_account_counts_once_per_asset_and_joins_the_all_industries_cohort() {
        let mut t = Tally::default();
        // One account reading "a" five times weighs what one reading does.
        for _ in 0..5 {
            t.add("retail|DECISION", "acme", "a", 1.0);
        }
        t.add("retail|DECISION", "bolt", "b", 1.0);
        t.add("retail|DECISION", "crux", "b", 3.0);
        t.add("*|DECISION", "dyn", "a", 1.0);
        let rows = t.rows();
        let value = |cohort: &str, asset: &str| {
            rows.iter()
                .find(|r| r.cohort == cohort && r.asset_id == asset)
                .map(|r| r.value)
        };
        assert_eq!(value("retail|DECISION", "b"), Some(1.0));
        let a = value("retail|DECISION", "a").unwrap();
        assert!((a - 2f64.ln() / 5f64.ln()).abs() < 1e-9, "{a}");
        // Across industries: "a" by two accounts (2), "b" by two (4).
        assert_eq!(value("*|DECISION", "b"), Some(1.0));
        assert!((value("*|DECISION", "a").unwrap() - 3f64.ln() / 5f64.ln()).abs() < 1e-9);
        assert_eq!(cohort_key(None, Stage::Decision), "*|DECISION");
        let payments = IndustrySlug::parse("financial-services/payments").unwrap();
        assert_eq!(
            cohort_key(Some(&payments), Stage::Awareness),
            "financial-services|AWARENESS"
        );
    }
}
