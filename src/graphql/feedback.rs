//! The feedback loop's fields: impressions and dismissals, ranking profiles, experiments,
//! content analytics and `explainRank`. Everything here reads or writes the database, so
//! every field is `no_cache`.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::ApiResult;
use super::library::{decode_cursor, library, page_info};
use super::recommend::{AudienceInput, RankingWeightsInput, ResolvedAudience, ScoreReason};
use super::types::{AssetFilterInput, AssetObject, PageInfo, RoleEnum, StageEnum};
use crate::domain::{Experiment, Factor, RankingProfile, Variant, WeightOverrides};
use crate::error::AppError;
use crate::services::{
    AssetPerformance, CellPerformance, ExperimentReport, ExplainQuery, Library, PerformanceQuery,
    rate,
};

const DEFAULT_PERFORMANCE_PAGE: i32 = 20;
const DEFAULT_EXPLAIN_FIRST: i32 = 10;

fn when(seconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0)
}

/// The weight of every factor a profile ranks with.
#[derive(SimpleObject)]
pub struct FactorWeight {
    pub factor: super::recommend::RankingFactor,
    pub weight: f64,
    /// Whether the profile sets it (otherwise it is the configured default).
    pub overridden: bool,
}

/// A named weight set: `recommendations(profile: "homepage")` ranks with it.
pub struct RankingProfileObject {
    profile: RankingProfile,
    weights: Vec<FactorWeight>,
}

impl RankingProfileObject {
    fn new(library: &Library, profile: RankingProfile) -> ApiResult<Self> {
        let weights = library.profile_weights(&profile)?;
        let overrides: WeightOverrides = profile.weights;
        Ok(Self {
            weights: Factor::ALL
                .into_iter()
                .map(|f| FactorWeight {
                    factor: f.into(),
                    weight: weights.get(f),
                    overridden: overrides.get(f).is_some(),
                })
                .collect(),
            profile,
        })
    }
}

#[Object(name = "RankingProfile", cache_control(no_cache))]
impl RankingProfileObject {
    async fn name(&self) -> &str {
        &self.profile.name
    }
    async fn description(&self) -> &str {
        &self.profile.description
    }
    async fn weights(&self) -> &[FactorWeight] {
        &self.weights
    }
    /// Null for `default`, which the configuration holds.
    async fn updated_at(&self) -> Option<DateTime<Utc>> {
        (self.profile.updated_at > 0)
            .then(|| when(self.profile.updated_at))
            .flatten()
    }
}

#[derive(InputObject)]
pub struct VariantInput {
    /// A ranking profile's name (`default` for the configured weights).
    pub profile: String,
    /// The share of accounts (or visitors) that see it, above 0 and at most 1; the
    /// variants' shares add up to 1.
    pub share: f64,
}

/// One variant's numbers. Clicks count each shown item once however often it was
/// engaged with; completions count `COMPLETE` events.
#[derive(SimpleObject)]
pub struct VariantStats {
    pub profile: String,
    pub share: f64,
    pub impressions: u64,
    pub clicks: u64,
    pub completions: u64,
    /// clicks / impressions (0 without impressions).
    pub click_through_rate: f64,
    /// The 95% Wilson score interval of the click-through rate.
    pub ctr_low: f64,
    pub ctr_high: f64,
    /// This variant's rate minus the control's (the first variant); null for the
    /// control, and when either has no impressions or no clicks at all.
    pub difference: Option<f64>,
    /// The two-sided p-value of the pooled two-proportion z-test against the control.
    pub p_value: Option<f64>,
    /// p-value below 0.05.
    pub significant: Option<bool>,
}

pub struct ExperimentObject {
    experiment: Experiment,
    report: Option<ExperimentReport>,
}

#[Object(name = "Experiment", cache_control(no_cache))]
impl ExperimentObject {
    async fn name(&self) -> &str {
        &self.experiment.name
    }
    async fn placement(&self) -> &str {
        &self.experiment.placement
    }
    async fn running(&self) -> bool {
        self.experiment.stopped_at.is_none()
    }
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        when(self.experiment.started_at)
    }
    async fn stopped_at(&self) -> Option<DateTime<Utc>> {
        self.experiment.stopped_at.and_then(when)
    }
    /// In order; the first is the control.
    async fn variants(&self, ctx: &Context<'_>) -> ApiResult<Vec<VariantStats>> {
        let report = match &self.report {
            Some(r) => r.clone(),
            None => {
                library(ctx)?
                    .experiment_report(&self.experiment.name)
                    .await?
            }
        };
        Ok(report
            .variants
            .into_iter()
            .map(|v| {
                let (low, high) = v.ctr_interval;
                VariantStats {
                    profile: v.variant.profile,
                    share: v.variant.share,
                    impressions: v.counts.impressions,
                    clicks: v.counts.clicks,
                    completions: v.counts.completions,
                    click_through_rate: v.ctr,
                    ctr_low: low,
                    ctr_high: high,
                    difference: v.against_control.map(|t| t.0),
                    p_value: v.against_control.map(|t| t.2),
                    significant: v.against_control.map(|t| t.2 < 0.05),
                }
            })
            .collect())
    }
}

/// How an asset did with buyers.
#[derive(SimpleObject)]
pub struct AssetPerformanceObject {
    pub asset: AssetObject,
    pub impressions: u64,
    pub clicks: u64,
    pub click_through_rate: f64,
    pub completions: u64,
    /// Accounts that asked never to see it again.
    pub dismissals: u64,
    /// Accounts whose journey stage advanced within 30 days after engaging with it.
    pub moved_forward: u64,
}

impl From<AssetPerformance> for AssetPerformanceObject {
    fn from(p: AssetPerformance) -> Self {
        AssetPerformanceObject {
            click_through_rate: p.ctr(),
            impressions: p.counts.impressions,
            clicks: p.counts.clicks,
            completions: p.counts.completions,
            dismissals: p.counts.dismissals,
            moved_forward: p.moved_forward,
            asset: AssetObject(p.asset),
        }
    }
}

#[derive(SimpleObject)]
pub struct AssetPerformanceConnection {
    pub total_count: u64,
    pub items: Vec<AssetPerformanceObject>,
    pub page_info: PageInfo,
}

/// The stage x role cell's assets together.
#[derive(SimpleObject)]
pub struct CellPerformanceObject {
    pub stage: StageEnum,
    /// Null: assets written for every role.
    pub role: Option<RoleEnum>,
    pub assets: u64,
    pub impressions: u64,
    pub clicks: u64,
    pub click_through_rate: f64,
    pub completions: u64,
    pub dismissals: u64,
    pub moved_forward: u64,
}

impl From<CellPerformance> for CellPerformanceObject {
    fn from(c: CellPerformance) -> Self {
        CellPerformanceObject {
            stage: c.stage.into(),
            role: c.role.map(Into::into),
            assets: c.assets,
            impressions: c.counts.impressions,
            clicks: c.counts.clicks,
            click_through_rate: rate(c.counts.clicks, c.counts.impressions),
            completions: c.counts.completions,
            dismissals: c.counts.dismissals,
            moved_forward: c.moved_forward,
        }
    }
}

/// What `assetPerformance` orders by (the services' list: conversions both ways are
/// generated).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::services::PerformanceKey")]
pub enum PerformanceOrder {
    Impressions,
    Clicks,
    ClickThroughRate,
    Completions,
    Dismissals,
    MovedForward,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum OrderDirection {
    Desc,
    Asc,
}

/// What `recordImpressions` and `dismissRecommendation` did.
#[derive(SimpleObject)]
pub struct ImpressionReceiptObject {
    pub recorded: u64,
    /// Already recorded for that list: counted once.
    pub duplicates: u64,
}

/// Where an asset ranks for an audience, and why.
#[derive(SimpleObject)]
pub struct RankExplanationObject {
    pub asset: AssetObject,
    pub audience: ResolvedAudience,
    pub profile: String,
    /// Whether a request like this one can show it at all.
    pub eligible: bool,
    /// Why not, when it cannot (a draft, retired, filtered out, excluded, already read,
    /// dismissed).
    pub ineligible_reasons: Vec<String>,
    /// 1 for the first; null when ineligible or below the first 500 past the list.
    pub rank: Option<i32>,
    /// Whether a list of `first` shows it.
    pub shown: bool,
    pub first: i32,
    pub score: Option<f64>,
    pub reasons: Vec<ScoreReason>,
    /// The score of the last item a list of `first` shows.
    pub cutoff_score: Option<f64>,
    /// What keeps it below that item, the largest gap first.
    pub holding_back: Vec<String>,
}

#[derive(Default)]
pub struct FeedbackQuery;

#[Object]
impl FeedbackQuery {
    /// Every ranking profile, `default` (the configured weights) first.
    #[graphql(cache_control(no_cache))]
    async fn ranking_profiles(&self, ctx: &Context<'_>) -> ApiResult<Vec<RankingProfileObject>> {
        let library = library(ctx)?;
        library
            .ranking_profiles()
            .into_iter()
            .map(|p| RankingProfileObject::new(library, p))
            .collect()
    }

    /// Every experiment, running or stopped, oldest first.
    #[graphql(cache_control(no_cache))]
    async fn experiments(&self, ctx: &Context<'_>) -> ApiResult<Vec<ExperimentObject>> {
        Ok(library(ctx)?
            .experiments()
            .await?
            .into_iter()
            .map(|experiment| ExperimentObject {
                experiment,
                report: None,
            })
            .collect())
    }

    /// One experiment with its numbers per variant.
    #[graphql(cache_control(no_cache))]
    async fn experiment(&self, ctx: &Context<'_>, name: String) -> ApiResult<ExperimentObject> {
        let report = library(ctx)?.experiment_report(&name).await?;
        Ok(ExperimentObject {
            experiment: report.experiment.clone(),
            report: Some(report),
        })
    }

    /// How assets did: shown, clicked, completed, dismissed, and accounts moved forward.
    /// Only assets with any feedback; `sinceDays` counts the last days only;
    /// `minImpressions` leaves out assets shown fewer times (a rate on little evidence).
    #[graphql(
        cache_control(no_cache),
        complexity = "super::cost::page(first, DEFAULT_PERFORMANCE_PAGE, child_complexity)"
    )]
    // One Rust argument per GraphQL argument: the public contract.
    #[allow(clippy::too_many_arguments)]
    async fn asset_performance(
        &self,
        ctx: &Context<'_>,
        filter: Option<AssetFilterInput>,
        #[graphql(default_with = "PerformanceOrder::ClickThroughRate")] order_by: PerformanceOrder,
        #[graphql(default_with = "OrderDirection::Desc")] direction: OrderDirection,
        #[graphql(default_with = "Some(DEFAULT_PERFORMANCE_PAGE)")] first: Option<i32>,
        after: Option<String>,
        since_days: Option<u32>,
        min_impressions: Option<u64>,
    ) -> ApiResult<AssetPerformanceConnection> {
        let library = library(ctx)?;
        let first = library.page_size(first.unwrap_or(DEFAULT_PERFORMANCE_PAGE))?;
        let offset = decode_cursor(after.as_deref())?;
        let page = library
            .asset_performance(&PerformanceQuery {
                filter: AssetFilterInput::parse(filter)?,
                since_days,
                min_impressions: min_impressions.unwrap_or(0),
                order: order_by.into(),
                descending: direction == OrderDirection::Desc,
                offset,
                first,
                moved_forward: ctx
                    .look_ahead()
                    .field("items")
                    .field("movedForward")
                    .exists(),
            })
            .await?;
        let items: Vec<AssetPerformanceObject> = page.items.into_iter().map(Into::into).collect();
        let returned = items.len();
        Ok(AssetPerformanceConnection {
            total_count: page.total as u64,
            items,
            page_info: page_info(offset, returned, page.has_more),
        })
    }

    /// Feedback per stage x role cell, over the assets `filter` admits.
    #[graphql(cache_control(no_cache))]
    async fn cell_performance(
        &self,
        ctx: &Context<'_>,
        filter: Option<AssetFilterInput>,
        since_days: Option<u32>,
    ) -> ApiResult<Vec<CellPerformanceObject>> {
        Ok(library(ctx)?
            .cell_performance(
                &AssetFilterInput::parse(filter)?,
                since_days,
                ctx.look_ahead().field("movedForward").exists(),
            )
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Why not this asset? Where it ranks for the audience (as `recommendations` with the
    /// same arguments would rank it), its score and reasons, the score of the last item a
    /// list of `first` shows, and what holds it back; or why it cannot be shown at all.
    #[graphql(cache_control(no_cache))]
    // One Rust argument per GraphQL argument: the public contract.
    #[allow(clippy::too_many_arguments)]
    async fn explain_rank(
        &self,
        ctx: &Context<'_>,
        asset_id: ID,
        audience: Option<AudienceInput>,
        query: Option<String>,
        filter: Option<AssetFilterInput>,
        profile: Option<String>,
        #[graphql(default_with = "Some(DEFAULT_EXPLAIN_FIRST)")] first: Option<i32>,
        #[graphql(default_with = "Some(true)")] diversify: Option<bool>,
    ) -> ApiResult<RankExplanationObject> {
        let library = library(ctx)?;
        let first = library.page_size(first.unwrap_or(DEFAULT_EXPLAIN_FIRST))?;
        let profile = profile
            .map(|p| crate::domain::parse_name("profile", &p).map_err(AppError::bad_input))
            .transpose()?;
        let request = audience.unwrap_or_default().parse()?;
        let e = library
            .explain_rank(ExplainQuery {
                asset_id: asset_id.to_string(),
                request,
                text: query,
                filter: AssetFilterInput::parse(filter)?,
                profile,
                first,
                diversify: diversify.unwrap_or(true),
            })
            .await?;
        let to_i32 = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        Ok(RankExplanationObject {
            asset: AssetObject::from(e.asset),
            audience: e.audience.into(),
            profile: e.profile,
            eligible: e.ineligible.is_empty(),
            ineligible_reasons: e.ineligible,
            shown: e.rank.is_some_and(|r| r <= first),
            rank: e.rank.map(to_i32),
            first: to_i32(first),
            score: e.scored.as_ref().map(|s| s.score),
            reasons: e
                .scored
                .map(|s| s.reasons.into_iter().map(Into::into).collect())
                .unwrap_or_default(),
            cutoff_score: e.cutoff.map(|c| c.score),
            holding_back: e.holding_back,
        })
    }
}

#[derive(Default)]
pub struct FeedbackMutation;

#[Object]
impl FeedbackMutation {
    /// Records that a visitor followed an item of a list shown to no account (an anonymous
    /// page's widget, with a publishable key): the list's click, and its completion for
    /// `COMPLETE` (`kind` is `VIEW` when left out), each counted once however often
    /// reported. True when it counted now. The
    /// item must have been in that list (at `position`, when given). A list shown to an
    /// account is refused: `recordEngagement` records its clicks with the account's history.
    #[graphql(cache_control(no_cache))]
    async fn record_click(
        &self,
        ctx: &Context<'_>,
        recommendation_id: ID,
        asset_id: ID,
        position: Option<i32>,
        kind: Option<super::accounts::EngagementKindEnum>,
    ) -> ApiResult<bool> {
        let kind = kind.unwrap_or(super::accounts::EngagementKindEnum::View);
        let position = position
            .map(|p| {
                u32::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
                    AppError::bad_input(format!("position: must be 1 or more, got {p}"))
                })
            })
            .transpose()?;
        Ok(library(ctx)?
            .record_click(&recommendation_id, &asset_id, position, kind.into())
            .await?)
    }

    /// Records which items of a shown list were seen (cheap: call it on every page view).
    /// `positions` gives each asset's position in the list (1 for the first); left out,
    /// each asset's position is the one it had in the list. Each asset must have been in
    /// that list (at that position): the id is signed and says which assets it showed.
    /// Each (list, asset) counts once. A list shown to an account needs a server key or
    /// that account's visitor token.
    #[graphql(cache_control(no_cache))]
    async fn record_impressions(
        &self,
        ctx: &Context<'_>,
        recommendation_id: ID,
        asset_ids: Vec<ID>,
        positions: Option<Vec<i32>>,
    ) -> ApiResult<ImpressionReceiptObject> {
        let positions: Vec<Option<u32>> = match positions {
            None => vec![None; asset_ids.len()],
            Some(p) if p.len() == asset_ids.len() => p
                .into_iter()
                .enumerate()
                .map(|(i, p)| {
                    u32::try_from(p)
                        .ok()
                        .filter(|p| *p > 0)
                        .map(Some)
                        .ok_or_else(|| {
                            AppError::bad_input(format!(
                                "positions[{i}]: must be 1 or more, got {p}"
                            ))
                        })
                })
                .collect::<Result<_, _>>()?,
            Some(p) => {
                return Err(AppError::bad_input(format!(
                    "positions: give one per asset id ({}), got {}",
                    asset_ids.len(),
                    p.len()
                ))
                .into());
            }
        };
        let receipt = library(ctx)?
            .record_impressions(
                &recommendation_id,
                asset_ids
                    .into_iter()
                    .map(|id| id.0)
                    .zip(positions)
                    .collect(),
            )
            .await?;
        Ok(ImpressionReceiptObject {
            recorded: receipt.recorded,
            duplicates: receipt.duplicates,
        })
    }

    /// Never recommend this asset to the account again; counted as negative feedback. A
    /// visitor token dismisses for its own account (`accountId` may be left out); a server
    /// key names the account. True when newly dismissed.
    #[graphql(cache_control(no_cache))]
    async fn dismiss_recommendation(
        &self,
        ctx: &Context<'_>,
        asset_id: ID,
        account_id: Option<ID>,
    ) -> ApiResult<bool> {
        let visitor = ctx
            .data_opt::<crate::services::Credential>()
            .and_then(|c| c.visitor())
            .map(|v| v.account_id.clone());
        let account = account_id.map(|a| a.0).or(visitor).ok_or_else(|| {
            AppError::bad_input("accountId: name the account (or use its visitor token)")
        })?;
        Ok(library(ctx)?.dismiss(&account, &asset_id).await?)
    }

    /// Creates or replaces a named weight set. `weights` names only what differs from
    /// the configured weights; `default` cannot be replaced.
    #[graphql(cache_control(no_cache))]
    async fn upsert_ranking_profile(
        &self,
        ctx: &Context<'_>,
        name: String,
        weights: RankingWeightsInput,
        description: Option<String>,
    ) -> ApiResult<RankingProfileObject> {
        let library = library(ctx)?;
        let profile = library
            .upsert_ranking_profile(&name, weights.into(), description)
            .await?;
        RankingProfileObject::new(library, profile)
    }

    /// Starts an A/B test at a placement: each account (or visitor) is assigned a
    /// variant by a hash of the experiment's name and its id, so it always sees the same
    /// one. One running experiment per placement; names are never reused.
    #[graphql(cache_control(no_cache))]
    async fn start_experiment(
        &self,
        ctx: &Context<'_>,
        name: String,
        placement: String,
        variants: Vec<VariantInput>,
    ) -> ApiResult<ExperimentObject> {
        let experiment = library(ctx)?
            .start_experiment(
                &name,
                &placement,
                variants
                    .into_iter()
                    .map(|v| Variant {
                        profile: v.profile,
                        share: v.share,
                    })
                    .collect(),
            )
            .await?;
        Ok(ExperimentObject {
            experiment,
            report: None,
        })
    }

    /// Stops an experiment: its placement ranks with the default profile again, and its
    /// numbers stay.
    #[graphql(cache_control(no_cache))]
    async fn stop_experiment(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> ApiResult<ExperimentObject> {
        let experiment = library(ctx)?.stop_experiment(&name).await?;
        Ok(ExperimentObject {
            experiment,
            report: None,
        })
    }
}
