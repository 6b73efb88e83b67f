//! Bulk loads of logged lists (`stagefit generate-feedback` seeds the benchmarks with
//! them): the published assets they may show, the experiment they name, and the lists with
//! their clicks, written through the store's bulk path (multi-row inserts, `COPY`).

use super::lists::list_signer;
use crate::domain::{AssetStatus, LoggedFeedback};
use crate::error::AppResult;
use crate::store::{FeedbackSums, LoggedList, Store};

/// Rollup keys held before they are added to the stored rollups.
const SUMS_HELD: usize = 2_000_000;

/// Writes logged lists in bulk (`stagefit generate-feedback` seeds the benchmarks with them)
/// through the store's bulk path, in transactions of `batch` lists: each list with its
/// impressions, their clicks and completions; the rollups they make are summed over the
/// load and added at the end. Returns the impressions and clicks written.
pub async fn write_logged_lists(
    store: &Store,
    lists: impl Iterator<Item = LoggedFeedback>,
    batch: usize,
) -> AppResult<(u64, u64)> {
    let (mut impressions, mut clicks) = (0u64, 0u64);
    // Signed like a server's ids, so `recordImpressions` would take them.
    let signer = list_signer(store).await?;
    let mut pending: Vec<(String, LoggedList)> = Vec::with_capacity(batch);
    let mut sums = FeedbackSums::default();
    let mut flush =
        async |pending: &mut Vec<(String, LoggedList)>, sums: &mut FeedbackSums| -> AppResult<()> {
            let added = store.insert_lists_bulk(pending, sums).await?;
            impressions += added.impressions;
            clicks += added.clicks;
            pending.clear();
            if sums.keys_held() > SUMS_HELD {
                store.add_feedback_sums_bulk(sums).await?;
            }
            Ok(())
        };
    for (n, list) in lists.enumerate() {
        let id = signer.issue(
            &list.context,
            list.items.iter().map(|(asset, _)| asset.as_str()),
            &format!("{n:016x}"),
        );
        let items = list
            .items
            .into_iter()
            .map(|(asset, position)| {
                let outcome = list.clicked.iter().find(|(a, _, _)| *a == asset);
                let completed = outcome.is_some_and(|(_, _, completed)| *completed);
                (asset, position, outcome.is_some(), completed)
            })
            .collect();
        pending.push((
            id,
            LoggedList {
                context: list.context,
                items,
            },
        ));
        if pending.len() == batch {
            flush(&mut pending, &mut sums).await?;
        }
    }
    flush(&mut pending, &mut sums).await?;
    store.add_feedback_sums_bulk(&mut sums).await?;
    Ok((impressions, clicks))
}

/// The ids of every published asset, read a page at a time: what bulk-loaded lists show.
pub async fn published_asset_ids(store: &Store) -> AppResult<Vec<String>> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.assets_after(after.as_deref(), 10_000).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.to_string());
        ids.extend(
            page.iter()
                .filter(|a| a.status == AssetStatus::Published)
                .map(|a| a.id.to_string()),
        );
    }
    Ok(ids)
}

/// Stores a ranking profile and an experiment over it as given, for a bulk load's lists
/// to name (`stagefit generate-feedback`); an experiment of that name already stored stays.
/// Stores a ranking profile (what bulk-loaded lists name as the one that ranked them).
pub async fn store_profile(
    store: &Store,
    profile: &crate::domain::RankingProfile,
) -> AppResult<()> {
    store.upsert_ranking_profile(profile).await
}

pub async fn store_experiment(
    store: &Store,
    profile: &crate::domain::RankingProfile,
    experiment: &crate::domain::Experiment,
) -> AppResult<()> {
    store.upsert_ranking_profile(profile).await?;
    store.insert_experiment(experiment).await?;
    Ok(())
}
