//! Content analytics: how assets and stage x role cells did with buyers (shown, clicked,
//! completed, dismissed) and how many accounts moved forward after reading them.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;

use super::super::Library;
use crate::domain::{
    Asset, AssetFilter, MOVED_FORWARD_EVENTS, Role, Stage, TaxonomyValue, moved_forward_counts,
    rate,
};
use crate::error::{AppError, AppResult};
use crate::store::FeedbackCounts;

/// How one asset did.
#[derive(Clone, Debug)]
pub struct AssetPerformance {
    pub asset: Arc<Asset>,
    pub counts: FeedbackCounts,
    pub moved_forward: u64,
}

impl AssetPerformance {
    pub fn ctr(&self) -> f64 {
        rate(self.counts.clicks, self.counts.impressions)
    }
}

/// What `assetPerformance` orders by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PerformanceKey {
    Impressions,
    Clicks,
    ClickThroughRate,
    Completions,
    Dismissals,
    MovedForward,
}

/// A request for a page of asset performance.
#[derive(Clone, Debug)]
pub struct PerformanceQuery {
    pub filter: AssetFilter,
    /// The last days only; all time when `None`.
    pub since_days: Option<u32>,
    pub min_impressions: u64,
    pub order: PerformanceKey,
    pub descending: bool,
    pub offset: usize,
    pub first: usize,
    /// Whether to count the accounts that moved forward (a scan of the span's events):
    /// only when the answer shows or orders by them.
    pub moved_forward: bool,
}

pub struct PerformancePage {
    /// Assets that pass the filter (and `min_impressions`).
    pub total: usize,
    pub items: Vec<AssetPerformance>,
    pub has_more: bool,
}

/// Published assets that pass a filter, with their stages and roles.
type Passing = HashMap<String, (Vec<Stage>, Vec<Role>)>;

/// One asset's numbers before its asset is loaded.
struct AssetPerformanceRow {
    id: String,
    stages: Vec<Stage>,
    roles: Vec<Role>,
    counts: FeedbackCounts,
    moved_forward: u64,
}

/// How the assets of one stage x role cell did together (an asset for several stages or
/// roles counts in each; an asset for every role counts in the `None` role).
#[derive(Clone, Debug)]
pub struct CellPerformance {
    pub stage: Stage,
    pub role: Option<Role>,
    pub assets: u64,
    pub counts: FeedbackCounts,
    pub moved_forward: u64,
}

impl Library {
    /// Counts per asset since `since_days` ago (all time when `None`), for every asset with
    /// any, with the accounts each moved forward when `moved_forward` asks (else 0).
    async fn feedback_rows(
        &self,
        since_days: Option<u32>,
        moved_forward: bool,
    ) -> AppResult<Vec<(String, FeedbackCounts, u64)>> {
        let now = Utc::now().timestamp();
        let since = since_days.map_or(0, |d| now - i64::from(d) * 86_400);
        let counts = self
            .store
            .feedback_by_asset(since_days.map(|_| since.div_euclid(86_400)))
            .await?;
        let mut moved = if moved_forward {
            self.moved_forward(since.max(0)).await?
        } else {
            HashMap::new()
        };
        let mut rows: Vec<(String, FeedbackCounts, u64)> = counts
            .into_iter()
            .map(|(id, c)| {
                let m = moved.remove(&id).unwrap_or(0);
                (id, c, m)
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(rows)
    }

    /// For a filter of published assets (the default), which pass it, with their stages
    /// and roles, from the index's columns without loading one; `None` for other filters.
    async fn passing(&self, filter: &AssetFilter) -> AppResult<Option<Passing>> {
        if !filter
            .statuses
            .iter()
            .all(|s| *s == crate::domain::AssetStatus::Published)
        {
            return Ok(None);
        }
        let filter = filter.clone();
        Ok(Some(
            self.read_index(move |index| index.audit_rows(&filter, 0))
                .await?
                .into_iter()
                .map(|r| (r.coverage.id, (r.coverage.stages, r.coverage.roles)))
                .collect(),
        ))
    }

    /// The counts since `since_days` ago and what passes `filter`, read at once (the
    /// database and the index, on two threads), joined: only the rows whose asset passes,
    /// with its stages and roles. A filter naming other statuses than published loads the
    /// assets.
    async fn admitted(
        &self,
        since_days: Option<u32>,
        moved_forward: bool,
        filter: &AssetFilter,
    ) -> AppResult<Vec<(AssetPerformanceRow, Option<Arc<Asset>>)>> {
        let (rows, passing) = tokio::try_join!(
            self.feedback_rows(since_days, moved_forward),
            self.passing(filter)
        )?;
        let ids: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        let mut out = Vec::with_capacity(rows.len());
        if let Some(passing) = passing {
            for (id, counts, moved_forward) in rows {
                if let Some((stages, roles)) = passing.get(&id) {
                    out.push((
                        AssetPerformanceRow {
                            stages: stages.clone(),
                            roles: roles.clone(),
                            id,
                            counts,
                            moved_forward,
                        },
                        None,
                    ));
                }
            }
            return Ok(out);
        }
        // Other statuses: every asset with feedback is loaded and checked.
        let mut assets: HashMap<String, Asset> = HashMap::new();
        for chunk in ids.chunks(500) {
            for asset in self.store.load_assets(chunk).await? {
                if filter.admits(&asset) {
                    assets.insert(asset.id.to_string(), asset);
                }
            }
        }
        for (id, counts, moved_forward) in rows {
            if let Some(asset) = assets.remove(&id) {
                out.push((
                    AssetPerformanceRow {
                        stages: asset.stages.clone(),
                        roles: asset.roles.clone(),
                        id,
                        counts,
                        moved_forward,
                    },
                    Some(Arc::new(asset)),
                ));
            }
        }
        Ok(out)
    }

    /// A page of the assets with feedback that pass the query's filter, in its order.
    /// Only the page's assets are loaded when the filter is empty.
    pub async fn asset_performance(&self, q: &PerformanceQuery) -> AppResult<PerformancePage> {
        let mut rows = self
            .admitted(
                q.since_days,
                q.moved_forward || q.order == PerformanceKey::MovedForward,
                &q.filter,
            )
            .await?;
        rows.retain(|(r, _)| r.counts.impressions >= q.min_impressions);
        let key = |r: &AssetPerformanceRow| -> f64 {
            match q.order {
                PerformanceKey::Impressions => r.counts.impressions as f64,
                PerformanceKey::Clicks => r.counts.clicks as f64,
                PerformanceKey::ClickThroughRate => rate(r.counts.clicks, r.counts.impressions),
                PerformanceKey::Completions => r.counts.completions as f64,
                PerformanceKey::Dismissals => r.counts.dismissals as f64,
                PerformanceKey::MovedForward => r.moved_forward as f64,
            }
        };
        // Ties: more impressions first (a rate on more evidence), then the id.
        rows.sort_by(|(a, _), (b, _)| {
            let by = key(a).total_cmp(&key(b));
            let by = if q.descending { by.reverse() } else { by };
            by.then(b.counts.impressions.cmp(&a.counts.impressions))
                .then_with(|| a.id.cmp(&b.id))
        });
        let total = rows.len();
        let page: Vec<_> = rows.into_iter().skip(q.offset).take(q.first).collect();
        let missing: Vec<String> = page
            .iter()
            .filter(|(_, a)| a.is_none())
            .map(|(r, _)| r.id.clone())
            .collect();
        let mut loaded: HashMap<String, Arc<Asset>> = self
            .store
            .load_assets(&missing)
            .await?
            .into_iter()
            .map(|a| (a.id.to_string(), Arc::new(a)))
            .collect();
        let items = page
            .into_iter()
            .filter_map(|(r, asset)| {
                let asset = asset.or_else(|| loaded.remove(&r.id))?;
                Some(AssetPerformance {
                    asset,
                    counts: r.counts,
                    moved_forward: r.moved_forward,
                })
            })
            .collect();
        Ok(PerformancePage {
            total,
            has_more: q.offset + q.first < total,
            items,
        })
    }

    /// The stage x role cells of the assets with feedback that pass `filter`; the accounts
    /// moved forward are counted only when `moved_forward` asks (else 0).
    pub async fn cell_performance(
        &self,
        filter: &AssetFilter,
        since_days: Option<u32>,
        moved_forward: bool,
    ) -> AppResult<Vec<CellPerformance>> {
        let rows = self.admitted(since_days, moved_forward, filter).await?;
        let mut cells: Vec<CellPerformance> = Vec::new();
        for stage in Stage::ALL {
            for role in std::iter::once(None).chain(Role::ALL.iter().copied().map(Some)) {
                let mut cell = CellPerformance {
                    stage: *stage,
                    role,
                    assets: 0,
                    counts: FeedbackCounts::default(),
                    moved_forward: 0,
                };
                for (a, _) in &rows {
                    let in_role = match role {
                        None => a.roles.is_empty(),
                        Some(r) => a.roles.contains(&r),
                    };
                    if a.stages.contains(stage) && in_role {
                        cell.assets += 1;
                        cell.counts.impressions += a.counts.impressions;
                        cell.counts.clicks += a.counts.clicks;
                        cell.counts.completions += a.counts.completions;
                        cell.counts.dismissals += a.counts.dismissals;
                        cell.moved_forward += a.moved_forward;
                    }
                }
                cells.push(cell);
            }
        }
        Ok(cells)
    }

    /// Per asset: the accounts whose journey stage advanced within
    /// [`crate::domain::MOVED_FORWARD_DAYS`] after they engaged with it, over the newest
    /// [`MOVED_FORWARD_EVENTS`] events of the span at most.
    async fn moved_forward(&self, since: i64) -> AppResult<HashMap<String, u64>> {
        let events = self
            .store
            .journey_events(since, MOVED_FORWARD_EVENTS)
            .await?;
        // A scan of the span's events: CPU work, off the runtime.
        tokio::task::spawn_blocking(move || moved_forward_counts(events))
            .await
            .map_err(|e| AppError::internal(anyhow::anyhow!("moved-forward count failed: {e}")))
    }
}
