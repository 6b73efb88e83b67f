//! Bulk loads of engagement (`stagefit generate-engagement` seeds the benchmarks with
//! them): accounts, contacts and events written through statements of many rows, with
//! their popularity and co-read counters computed by the same rule as the write path
//! (`domain::counters`) and added once at the end, like the events per day, week and block
//! (a day's count is added once, not once per batch that has events of that day).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use rustc_hash::FxHasher;
use tokio::task::JoinHandle;

use crate::domain::{
    Account, CO_READ_KEPT, COUNTER_HALF_LIFE_DAYS, CohortsOf, Contact, CountedRead, CounterSink,
    Delta, Engagement, Stage, cohort_key, plan_each,
};
use crate::error::{AppError, AppResult};
use crate::store::{CounterRows, Store};

const DAY: i64 = 86_400;

/// Co-read pairs held before the lightest of crowded assets are dropped (what the server's
/// pruning does every 10 minutes), so memory stays bounded whatever the events.
const PAIRS_HELD: usize = 8_000_000;
/// Pairs written per transaction at the end.
const PAIRS_PER_WRITE: usize = 100_000;
/// (day, asset) counts held before they are added to the stored ones.
const DAYS_HELD: usize = 2_000_000;

/// Keys here are small and ours: a fast hash, not one that resists chosen keys.
type Fast<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Counts and co-reads summed over a load, by interned ids (a pair's key is 12 bytes, not
/// three strings).
#[derive(Default)]
struct Totals {
    names: Vec<String>,
    ids: Fast<String, u32>,
    counts: Fast<(u32, u32), Delta>,
    /// (asset, cohort, next asset).
    co_reads: Fast<(u32, u32, u32), Delta>,
    /// Events per (Unix day, asset).
    days: Fast<(i64, u32), i64>,
}

impl<'a> CounterSink<'a> for Totals {
    fn count(&mut self, cohort: &'a str, asset: &'a str, delta: Delta) {
        let key = (self.id(cohort), self.id(asset));
        *self.counts.entry(key).or_default() += delta;
    }

    fn co_read(&mut self, asset: &'a str, cohort: &'a str, next: &'a str, delta: Delta) {
        let key = (self.id(asset), self.id(cohort), self.id(next));
        *self.co_reads.entry(key).or_default() += delta;
    }
}

impl Totals {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }

    /// Adds the events per day held to the stored counts (with their weeks and blocks).
    async fn write_days(&mut self, store: &Store) -> AppResult<()> {
        let names = &self.names;
        store
            .add_event_days_bulk(
                self.days
                    .drain()
                    .map(|((day, asset), n)| ((day, names[asset as usize].as_str()), n)),
            )
            .await
    }

    /// Drops the lightest pairs of crowded assets once too many are held.
    fn bound(&mut self) {
        if self.co_reads.len() > PAIRS_HELD {
            self.keep_best();
        }
    }

    /// Keeps each asset's and cohort's [`CO_READ_KEPT`] heaviest pairs.
    fn keep_best(&mut self) {
        let mut groups: Fast<(u32, u32), Vec<(f64, u32)>> = Fast::default();
        for (&(a, c, n), d) in &self.co_reads {
            groups.entry((a, c)).or_default().push((d.weight, n));
        }
        for ((a, c), mut next) in groups {
            if next.len() <= CO_READ_KEPT {
                continue;
            }
            next.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
            for (_, n) in &next[CO_READ_KEPT..] {
                self.co_reads.remove(&(a, c, *n));
            }
        }
    }

    /// The totals by name, in key order (a B-tree takes rows in order several times
    /// faster than scattered), in pieces of about `size` pairs (the counts in the first).
    fn pieces(&mut self, size: usize) -> Vec<CounterRows<'_>> {
        self.keep_best();
        let name = |id: u32| self.names[id as usize].as_str();
        let mut counts: Vec<_> = self
            .counts
            .iter()
            .map(|(&(c, a), d)| (name(c), name(a), *d))
            .collect();
        counts.sort_unstable_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)));
        let mut co_reads: Vec<_> = self
            .co_reads
            .iter()
            .map(|(&(a, c, n), d)| (name(a), name(c), name(n), *d))
            .collect();
        co_reads.sort_unstable_by(|x, y| (x.0, x.1, x.2).cmp(&(y.0, y.1, y.2)));
        let mut chunks = co_reads.chunks(size.max(1)).map(<[_]>::to_vec);
        let mut pieces = vec![CounterRows {
            counts,
            co_reads: chunks.next().unwrap_or_default(),
        }];
        pieces.extend(chunks.map(|co_reads| CounterRows {
            counts: Vec::new(),
            co_reads,
        }));
        pieces
    }
}

/// Waits for a batch's write, if one is under way.
async fn finish(writing: Option<JoinHandle<AppResult<()>>>) -> AppResult<()> {
    match writing {
        Some(write) => write
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("a bulk write stopped: {e}")))?,
        None => Ok(()),
    }
}

/// What a bulk load wrote.
#[derive(Clone, Copy, Debug, Default)]
pub struct BulkEngagement {
    pub accounts: u64,
    pub events: u64,
    /// Distinct (asset, cohort, next asset) co-read pairs.
    pub pairs: u64,
}

/// Writes new accounts with their contacts and events, about `batch` events per
/// transaction. Refuses when the first account exists: a second load of the same accounts
/// would count their reading twice. Events go to the cohort of the account's declared
/// stage, else `default_stage` (as imports do); nothing is announced to webhooks.
pub async fn write_engagement_bulk(
    store: &Store,
    accounts: impl Iterator<Item = (Account, Vec<Contact>, Vec<Engagement>)>,
    batch: usize,
    default_stage: Stage,
) -> AppResult<BulkEngagement> {
    let mut accounts = accounts.peekable();
    if let Some((first, _, _)) = accounts.peek()
        && store.get_account(first.id.as_str()).await?.is_some()
    {
        return Err(AppError::bad_input(format!(
            "the database already has account {:?}: a bulk load writes new accounts only",
            first.id.as_str()
        )));
    }
    let mut done = BulkEngagement::default();
    let mut total = Totals::default();
    let mut pending: Vec<(Account, Vec<Contact>, Vec<Engagement>)> = Vec::new();
    let mut pending_events = 0;
    // One batch is written (by the database's own thread or server) while the next is
    // generated and planned here.
    let mut writing: Option<JoinHandle<AppResult<()>>> = None;
    let mut flush = async |pending: &mut Vec<(Account, Vec<Contact>, Vec<Engagement>)>,
                           total: &mut Totals,
                           writing: &mut Option<JoinHandle<AppResult<()>>>|
           -> AppResult<()> {
        let mut accounts = Vec::with_capacity(pending.len());
        let mut contacts = Vec::new();
        let mut rows = Vec::new();
        let mut reads = Vec::new();
        for (account, people, events) in pending.drain(..) {
            let cohort = cohort_key(
                account.industry.as_ref(),
                account.stage.unwrap_or(default_stage),
            );
            for e in events {
                let asset = total.id(e.asset_id.as_str());
                *total
                    .days
                    .entry((e.occurred_at.timestamp().div_euclid(DAY), asset))
                    .or_default() += 1;
                reads.push(CountedRead {
                    account: e.account_id.to_string(),
                    asset: e.asset_id.to_string(),
                    cohort: cohort.clone(),
                    depth: e.kind.depth(),
                    at: e.occurred_at.timestamp(),
                });
                rows.push((e, cohort.clone()));
            }
            accounts.push(account);
            contacts.extend(people);
        }
        // New accounts: nothing stored to compare with.
        let cohorts = CohortsOf::new(reads.iter().map(|r| r.cohort.as_str()));
        let shares = plan_each(&reads, &[], &cohorts, COUNTER_HALF_LIFE_DAYS, total);
        total.bound();
        done.events += rows.len() as u64;
        finish(writing.take()).await?;
        if total.days.len() > DAYS_HELD {
            total.write_days(store).await?;
        }
        let store = store.clone();
        *writing = Some(tokio::spawn(async move {
            store.upsert_accounts(&accounts).await?;
            store.upsert_contacts(&contacts).await?;
            store.insert_events_bulk(&rows, &shares).await
        }));
        Ok(())
    };
    for account in accounts {
        pending_events += account.2.len();
        done.accounts += 1;
        pending.push(account);
        if pending_events >= batch {
            flush(&mut pending, &mut total, &mut writing).await?;
            pending_events = 0;
        }
    }
    if !pending.is_empty() {
        flush(&mut pending, &mut total, &mut writing).await?;
    }
    finish(writing).await?;
    total.write_days(store).await?;
    // The pieces hold distinct pairs: into an empty table they go straight in.
    let new_pairs = !store.has_co_reads().await?;
    for piece in total.pieces(PAIRS_PER_WRITE) {
        done.pairs += piece.co_reads.len() as u64;
        store.add_counters(&piece, new_pairs).await?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crowded_assets_keep_their_heaviest_pairs() {
        let mut t = Totals::default();
        for n in 0..CO_READ_KEPT + 3 {
            let delta = Delta {
                weight: n as f64,
                accounts: 1,
            };
            t.co_read("a", "*", &format!("n{n:03}"), delta);
        }
        let delta = Delta {
            weight: 0.5,
            accounts: 1,
        };
        t.co_read("b", "*", "n000", delta);
        let pieces = t.pieces(PAIRS_PER_WRITE);
        let pairs: Vec<_> = pieces
            .iter()
            .flat_map(|p| p.co_reads.iter().map(|(a, c, n, _)| (*a, *c, *n)))
            .collect();
        assert_eq!(pairs.len(), CO_READ_KEPT + 1);
        assert!(pairs.is_sorted());
        assert!(!pairs.contains(&("a", "*", "n002")));
        assert!(pairs.contains(&("a", "*", "n003")));
        assert!(pairs.contains(&("b", "*", "n000")));
    }
}
