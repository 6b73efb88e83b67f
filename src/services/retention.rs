//! The raw events' upkeep: every server, at start and then hourly, makes PostgreSQL's
//! monthly partitions ahead of time and removes engagement events and impressions past
//! their retention (see `store::retention`). Replicas doing it at once are harmless: the
//! partition changes take a database-wide lock and the deletions find nothing twice.

use std::time::Duration;

use chrono::Utc;

use super::Library;
use crate::error::AppResult;
use crate::store::{Expired, Expiring};

/// How often the upkeep runs.
const EVERY: Duration = Duration::from_secs(3600);
const DAY: i64 = 86_400;

/// Days each kind of raw event is kept (0: forever).
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    pub engagement_days: u32,
    pub feedback_days: u32,
}

/// What one pass did.
#[derive(Clone, Debug, Default)]
pub struct RetentionPass {
    /// Partitions created (PostgreSQL).
    pub partitions: Vec<String>,
    pub events: Expired,
    pub event_keys: u64,
    pub impressions: Expired,
    pub lists: u64,
    /// The longest any step held the writer lock (a batch of deletions, a dropped month).
    pub longest_hold: Duration,
}

/// The first second kept for `days` of retention (`i64::MIN`: all).
fn cut(now: i64, days: u32) -> i64 {
    if days == 0 {
        i64::MIN
    } else {
        now - i64::from(days) * DAY
    }
}

impl Library {
    /// One pass of the upkeep at `now` (Unix seconds).
    pub async fn keep_raw_events(&self, r: Retention, now: i64) -> AppResult<RetentionPass> {
        let store = &self.store;
        let (events_from, feedback_from) = (cut(now, r.engagement_days), cut(now, r.feedback_days));
        let mut pass = RetentionPass::default();
        pass.partitions.extend(
            store
                .add_partitions(Expiring::Events, now, events_from)
                .await?,
        );
        pass.partitions.extend(
            store
                .add_partitions(Expiring::Impressions, now, feedback_from)
                .await?,
        );
        let mut holds = Vec::new();
        if r.engagement_days > 0 {
            pass.events = store.expire(Expiring::Events, events_from).await?;
            let keys = store.expire(Expiring::EventKeys, events_from).await?;
            pass.event_keys = keys.rows;
            holds.extend([pass.events.longest_hold, keys.longest_hold]);
        }
        if r.feedback_days > 0 {
            pass.impressions = store.expire(Expiring::Impressions, feedback_from).await?;
            let lists = store.expire(Expiring::Lists, feedback_from).await?;
            pass.lists = lists.rows;
            holds.extend([pass.impressions.longest_hold, lists.longest_hold]);
        }
        pass.longest_hold = holds.into_iter().max().unwrap_or_default();
        // Profiles read before hold the events that went (their reading, their counts).
        if pass.events.rows > 0 || !pass.events.months.is_empty() {
            self.all_accounts_changed().await;
        }
        Ok(pass)
    }

    /// Runs the upkeep now and then every hour until the task is aborted; a pass that fails
    /// is logged and tried again at the next.
    pub fn start_retention(&self, r: Retention) -> tokio::task::JoinHandle<()> {
        let library = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let started = std::time::Instant::now();
                match library.keep_raw_events(r, Utc::now().timestamp()).await {
                    Ok(pass) => log(&pass, started.elapsed()),
                    Err(err) => tracing::warn!(
                        error = %format!("{:#}", err.unmasked()),
                        "cannot remove raw events past their retention"
                    ),
                }
            }
        })
    }
}

fn log(pass: &RetentionPass, took: Duration) {
    let removed = pass.events.rows
        + pass.event_keys
        + pass.impressions.rows
        + pass.lists
        + (pass.events.months.len() + pass.impressions.months.len()) as u64;
    if removed == 0 && pass.partitions.is_empty() {
        return;
    }
    tracing::info!(
        partitions_created = ?pass.partitions,
        events = pass.events.rows,
        event_months = ?pass.events.months,
        event_keys = pass.event_keys,
        impressions = pass.impressions.rows,
        impression_months = ?pass.impressions.months,
        lists = pass.lists,
        longest_hold_ms = pass.longest_hold.as_secs_f64() * 1e3,
        took_ms = took.as_millis() as u64,
        "raw events past their retention removed"
    );
}
