//! Bulk loads of engagement (`stagefit generate-engagement` seeds the benchmarks with
//! them): accounts, contacts and events written through statements of many rows, with
//! their popularity and co-read counters computed by the same rule as the write path
//! (`domain::counters`) and added once at the end.

use crate::domain::{
    Account, COUNTER_HALF_LIFE_DAYS, Contact, CountedRead, CounterPlan, Engagement, Stage,
    cohort_key, keep_best_co_reads, plan,
};
use crate::error::{AppError, AppResult};
use crate::store::Store;

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
    let mut total = CounterPlan::default();
    let mut pending: Vec<(Account, Vec<Contact>, Vec<Engagement>)> = Vec::new();
    let mut pending_events = 0;
    let mut flush = async |pending: &mut Vec<(Account, Vec<Contact>, Vec<Engagement>)>,
                           total: &mut CounterPlan|
           -> AppResult<()> {
        let accounts: Vec<Account> = pending.iter().map(|p| p.0.clone()).collect();
        store.upsert_accounts(&accounts).await?;
        let contacts: Vec<Contact> = pending.iter().flat_map(|p| p.1.iter().cloned()).collect();
        store.upsert_contacts(&contacts).await?;
        let mut rows = Vec::new();
        let mut reads = Vec::new();
        for (account, _, events) in pending.drain(..) {
            let cohort = cohort_key(
                account.industry.as_ref(),
                account.stage.unwrap_or(default_stage),
            );
            for e in events {
                reads.push(CountedRead {
                    account: e.account_id.to_string(),
                    asset: e.asset_id.to_string(),
                    cohort: cohort.clone(),
                    depth: e.kind.depth(),
                    at: e.occurred_at.timestamp(),
                });
                rows.push((e, cohort.clone()));
            }
        }
        // New accounts: nothing stored to compare with.
        let batch = plan(&reads, &[], COUNTER_HALF_LIFE_DAYS);
        store.insert_events_bulk(&rows, &batch.shares).await?;
        done.events += rows.len() as u64;
        for (k, d) in batch.counts {
            let t = total.counts.entry(k).or_default();
            t.weight += d.weight;
            t.accounts += d.accounts;
        }
        for (k, d) in batch.co_reads {
            let t = total.co_reads.entry(k).or_default();
            t.weight += d.weight;
            t.accounts += d.accounts;
        }
        Ok(())
    };
    for account in accounts {
        pending_events += account.2.len();
        done.accounts += 1;
        pending.push(account);
        if pending_events >= batch {
            flush(&mut pending, &mut total).await?;
            pending_events = 0;
        }
    }
    if !pending.is_empty() {
        flush(&mut pending, &mut total).await?;
    }
    keep_best_co_reads(&mut total.co_reads);
    done.pairs = total.co_reads.len() as u64;
    store.add_counters(&total).await?;
    Ok(done)
}
