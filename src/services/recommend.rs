//! Recommendations: resolve whom they are for, retrieve the best candidates from the
//! index, explain each with the ranking functions, and mix formats at the top.

use chrono::Utc;

use super::Library;
use crate::domain::{
    Asset, AssetFilter, AssetStatus, Concern, IndustrySlug, Language, Role, Stage, TaxonomyValue,
};
use crate::error::{AppError, AppResult};
use crate::ranking::{
    Audience, DiversityItem, RankContext, Scored, WeightOverrides, diversify, explain,
    graded_dimensions,
};
use crate::search::{DEFAULT_SLICE_TIERS_ABOVE, RecommendRequest};

/// Candidates retrieved per recommendation shown when diversifying: room to swap near-ties.
const DIVERSITY_WINDOW_FACTOR: usize = 2;
const MIN_DIVERSITY_WINDOW: usize = 20;

/// Where a resolved audience field came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudienceSource {
    Request,
    Account,
    Contact,
    Inferred,
    Default,
}

/// Whom a request says it is for; every field optional.
#[derive(Clone, Debug, Default)]
pub struct AudienceRequest {
    pub stage: Option<Stage>,
    pub role: Option<Role>,
    pub industry: Option<IndustrySlug>,
    pub language: Option<Language>,
    pub concerns: Vec<Concern>,
    pub exclude_asset_ids: Vec<String>,
}

/// The audience actually used, and where each part came from.
#[derive(Clone, Debug)]
pub struct ResolvedAudience {
    pub audience: Audience,
    pub stage_source: AudienceSource,
    pub role_source: AudienceSource,
    pub industry_source: AudienceSource,
    pub language_source: AudienceSource,
}

pub struct RecommendationQuery {
    pub audience: AudienceRequest,
    pub first: usize,
    pub text: Option<String>,
    pub filter: AssetFilter,
    pub weights: WeightOverrides,
    pub diversify: bool,
}

pub struct Recommendation {
    pub asset: Asset,
    pub scored: Scored,
}

pub struct RecommendationList {
    pub items: Vec<Recommendation>,
    pub audience: ResolvedAudience,
}

fn source<T>(requested: &Option<T>, otherwise: AudienceSource) -> AudienceSource {
    if requested.is_some() {
        AudienceSource::Request
    } else {
        otherwise
    }
}

/// What the ranking of one request needs besides the audience.
struct Ranking<'a> {
    text: Option<&'a str>,
    similar_to: Option<&'a str>,
    filter: &'a AssetFilter,
    exclude: &'a [String],
    weights: WeightOverrides,
    first: usize,
    diversify: bool,
}

impl Library {
    fn resolve(&self, request: &AudienceRequest) -> ResolvedAudience {
        let defaults = &self.ranking;
        ResolvedAudience {
            stage_source: source(&request.stage, AudienceSource::Default),
            role_source: source(&request.role, AudienceSource::Default),
            industry_source: source(&request.industry, AudienceSource::Default),
            language_source: source(&request.language, AudienceSource::Default),
            audience: Audience {
                stage: request.stage.unwrap_or(defaults.default_stage),
                role: request.role,
                industry: request.industry.clone(),
                language: request
                    .language
                    .clone()
                    .unwrap_or_else(|| defaults.default_language.clone()),
                concerns: request.concerns.clone(),
            },
        }
    }

    /// The best assets for an audience, each with the reasons for its score.
    pub async fn recommend(&self, query: RecommendationQuery) -> AppResult<RecommendationList> {
        if query
            .filter
            .statuses
            .iter()
            .any(|s| *s != AssetStatus::Published)
        {
            return Err(AppError::bad_input(
                "filter.statuses: recommendations only ever show published assets",
            ));
        }
        let resolved = self.resolve(&query.audience);
        let items = self
            .rank(
                &resolved.audience,
                Ranking {
                    text: query.text.as_deref(),
                    similar_to: None,
                    filter: &query.filter,
                    exclude: &query.audience.exclude_asset_ids,
                    weights: query.weights,
                    first: query.first,
                    diversify: query.diversify,
                },
            )
            .await?;
        Ok(RecommendationList {
            items,
            audience: resolved,
        })
    }

    /// What to read after an asset: the same subject, one stage further, in the reader's
    /// language and for the reader's role and industry when the asset says which. Never
    /// the asset itself.
    pub async fn next_content(
        &self,
        after: &str,
        mut request: AudienceRequest,
        first: usize,
    ) -> AppResult<RecommendationList> {
        let asset = self
            .asset(after)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no asset with id {after:?}")))?;
        let mut resolved = self.resolve(&request);
        if request.stage.is_none() {
            let furthest = asset
                .stages
                .iter()
                .copied()
                .max()
                .unwrap_or(Stage::Awareness);
            resolved.audience.stage =
                Stage::from_ordinal(furthest.ordinal() + 1).unwrap_or(furthest);
            resolved.stage_source = AudienceSource::Inferred;
        }
        if request.role.is_none()
            && let [role] = asset.roles.as_slice()
        {
            resolved.audience.role = Some(*role);
            resolved.role_source = AudienceSource::Inferred;
        }
        if request.industry.is_none()
            && let [industry] = asset.industries.as_slice()
        {
            resolved.audience.industry = Some(industry.clone());
            resolved.industry_source = AudienceSource::Inferred;
        }
        if request.language.is_none() {
            resolved.audience.language = asset.language.clone();
            resolved.language_source = AudienceSource::Inferred;
        }
        request.exclude_asset_ids.push(asset.id.to_string());
        let mut subject = asset.title.clone();
        for topic in &asset.topics {
            subject.push(' ');
            subject.push_str(topic);
        }
        let items = self
            .rank(
                &resolved.audience,
                Ranking {
                    text: Some(&subject),
                    similar_to: Some(&asset.title),
                    filter: &AssetFilter::default(),
                    exclude: &request.exclude_asset_ids,
                    weights: WeightOverrides::default(),
                    first,
                    diversify: true,
                },
            )
            .await?;
        Ok(RecommendationList {
            items,
            audience: resolved,
        })
    }

    async fn rank(&self, audience: &Audience, r: Ranking<'_>) -> AppResult<Vec<Recommendation>> {
        if r.first == 0 {
            return Ok(Vec::new());
        }
        let weights = self
            .ranking
            .weights
            .with(&r.weights)
            .map_err(AppError::bad_input)?;
        let dimensions = graded_dimensions(audience);
        let now = Utc::now();
        let window = if r.diversify {
            (r.first * DIVERSITY_WINDOW_FACTOR).max(MIN_DIVERSITY_WINDOW)
        } else {
            r.first
        };
        let index = self.index.clone();
        let (filter, exclude) = (r.filter.clone(), r.exclude.to_vec());
        let text = r.text.map(str::to_owned);
        let half_life_days = self.ranking.half_life_days;
        let concerns = TaxonomyValue::mask(&audience.concerns);
        let dims = dimensions.clone();
        let candidates = tokio::task::spawn_blocking(move || {
            index.recommend(&RecommendRequest {
                dimensions: &dims,
                weights: &weights,
                filter: &filter,
                exclude_ids: &exclude,
                text: text.as_deref(),
                concerns,
                now: now.timestamp(),
                half_life_days,
                window,
                slice_tiers_above: DEFAULT_SLICE_TIERS_ABOVE,
            })
        })
        .await
        .map_err(AppError::internal)??;

        let ctx = RankContext {
            weights: &weights,
            now,
            half_life_days,
            query: r.text,
            similar_to: r.similar_to,
        };
        let mut scored: Vec<Recommendation> = candidates
            .items
            .into_iter()
            .map(|c| Recommendation {
                scored: explain(
                    audience,
                    &dimensions,
                    &c.asset,
                    &ctx,
                    (c.bm25, candidates.text_scale),
                    0.0,
                ),
                asset: c.asset,
            })
            .collect();
        // The explanation is the authority on the score; retrieval only found the window.
        scored.sort_by(|a, b| b.scored.score.total_cmp(&a.scored.score));
        if !r.diversify {
            scored.truncate(r.first);
            return Ok(scored);
        }
        let order = {
            let items: Vec<DiversityItem<'_>> = scored
                .iter()
                .map(|s| DiversityItem {
                    score: s.scored.score,
                    content_type: s.asset.content_type,
                    topics: &s.asset.topics,
                })
                .collect();
            diversify(&items, r.first)
        };
        let mut slots: Vec<Option<Recommendation>> = scored.into_iter().map(Some).collect();
        Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
    }
}
