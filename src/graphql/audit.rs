//! The content team's audit: `coverage` and `staleAssets`.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::ApiResult;
use super::library::library;
use super::types::ConcernEnum;
use super::types::{AssetFilterInput, AssetObject, ContentTypeEnum, RoleEnum, StageEnum};
use crate::domain::IndustryCell;
use crate::domain::Language;
use crate::error::AppError;
use crate::services::{CoverageExtras, CoverageReport, CoverageReportCell, TagSubject};

/// Most asset ids listed per cell unless asked otherwise (`count` is always whole).
const DEFAULT_IDS_PER_CELL: i32 = 100;

/// A dimension of the coverage matrix (the domain's list: the conversions both ways are
/// generated, so a variant missing on either side fails the build).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::CoverageDimension")]
pub enum CoverageDimension {
    Stage,
    Role,
    Industry,
    ContentType,
    Language,
}

/// One combination of the requested dimensions; the others are null.
#[derive(SimpleObject)]
pub struct CoverageCell {
    pub stage: Option<StageEnum>,
    pub role: Option<RoleEnum>,
    /// An industry slug; null for the cross-industry cell (and when not requested).
    pub industry: Option<String>,
    /// The cell of assets written for every industry.
    pub cross_industry: bool,
    pub content_type: Option<ContentTypeEnum>,
    pub language: Option<String>,
    /// Published assets that serve the cell: with no roles, an asset serves every role;
    /// with no industry, every industry.
    pub count: u64,
    /// Of the published assets, those written for the cell: naming its role (assets for
    /// every role left out) and naming its industry or one of its sub-industries
    /// (cross-industry assets count only in the cross-industry cell). Since a parent
    /// industry's `count` holds only assets naming it, `specificCount` can exceed it there.
    /// Equal to `count` in views over neither roles nor industries.
    pub specific_count: u64,
    /// Of them, those not reviewed (or published, if never reviewed) within the stale
    /// threshold. Evergreen assets are never stale; undated ones are `undatedCount`.
    pub stale_count: u64,
    /// Of them, those with neither a publication nor a review date.
    pub undated_count: u64,
    /// Of `count`, the assets in the cell by tags their content team declared, by tags
    /// read from their text, and by defaults (the content type's stages, no role known):
    /// the weakest source among the view's stage, role and industry decides.
    pub declared_count: u64,
    pub inferred_count: u64,
    pub default_count: u64,
    /// Engagement events with the cell's assets in the last 90 days.
    pub recent_engagements: u64,
    /// The cell's asset ids, sorted (at most `idsPerCell`).
    pub asset_ids: Vec<ID>,
    /// The ids of the assets written for the cell, sorted (at most `idsPerCell`).
    pub specific_asset_ids: Vec<ID>,
}

#[derive(SimpleObject)]
pub struct CoverageReportObject {
    /// Every combination, empty ones included, in dimension order.
    pub cells: Vec<CoverageCell>,
    /// The combinations without a published asset.
    pub gaps: Vec<CoverageCell>,
    /// The combinations without a published asset written for them (`specificCount` 0),
    /// though general assets may serve them: content to write for that role or industry.
    pub specific_gaps: Vec<CoverageCell>,
    /// Published assets the filter let through.
    pub asset_count: u64,
    /// Of them, those that declare no stage, role or industry: their cells are read from
    /// their text or defaulted (see each cell's `declaredCount`, `inferredCount`,
    /// `defaultCount`).
    pub untagged_count: u64,
    /// Of them, those with neither a publication nor a review date: not counted as stale.
    pub undated_count: u64,
    pub stale_after_days: u32,
}

fn cell(
    c: &CoverageReportCell,
    rows: &[crate::domain::CoverageRow],
    ids_per_cell: usize,
) -> CoverageCell {
    let key = &c.cell.key;
    CoverageCell {
        stage: key.stage.map(Into::into),
        role: key.role.map(Into::into),
        industry: match &key.industry {
            Some(IndustryCell::Industry(i)) => Some(i.to_string()),
            _ => None,
        },
        cross_industry: key.industry == Some(IndustryCell::CrossIndustry),
        content_type: key.content_type.map(Into::into),
        language: key.language.as_ref().map(ToString::to_string),
        count: c.cell.count() as u64,
        specific_count: c.cell.specific_count().unwrap_or_default() as u64,
        stale_count: c.cell.stale_count,
        undated_count: c.cell.undated_count,
        declared_count: c.cell.declared_count,
        inferred_count: c.cell.inferred_count,
        default_count: c.cell.default_count,
        recent_engagements: c.engagements,
        asset_ids: c
            .cell
            .ids(rows)
            .take(ids_per_cell)
            .map(|id| ID(id.to_owned()))
            .collect(),
        specific_asset_ids: c
            .cell
            .specific_ids(rows)
            .take(ids_per_cell)
            .map(|id| ID(id.to_owned()))
            .collect(),
    }
}

/// A published asset overdue for review.
#[derive(SimpleObject)]
pub struct StaleAssetObject {
    pub asset: AssetObject,
    /// When it was last reviewed, else published; null when never dated.
    pub last_dated_at: Option<DateTime<Utc>>,
    pub age_days: Option<i64>,
}

fn days(value: Option<i32>, what: &str) -> Result<Option<u32>, AppError> {
    value
        .map(|d| {
            u32::try_from(d)
                .ok()
                .filter(|d| *d <= 36_500)
                .ok_or_else(|| {
                    AppError::bad_input(format!("{what} must be between 0 and 36500, got {d}"))
                })
        })
        .transpose()
}

#[derive(SimpleObject)]
pub struct StageSuggestion {
    pub stage: StageEnum,
    /// Share of the evidence, 0 to 1.
    pub confidence: f64,
}

#[derive(SimpleObject)]
pub struct RoleSuggestion {
    pub role: RoleEnum,
    pub confidence: f64,
}

#[derive(SimpleObject)]
pub struct ConcernSuggestion {
    pub concern: ConcernEnum,
    pub confidence: f64,
}

#[derive(SimpleObject)]
pub struct ContentTypeSuggestion {
    pub content_type: ContentTypeEnum,
    pub confidence: f64,
}

/// A tagged asset that voted, with its similarity (BM25 of the text's telling terms).
#[derive(SimpleObject)]
pub struct Neighbour {
    pub asset: AssetObject,
    pub similarity: f64,
}

/// Suggested tags, best first per kind, each with its confidence (at least 0.05).
#[derive(SimpleObject)]
pub struct TagSuggestionsObject {
    pub stages: Vec<StageSuggestion>,
    pub roles: Vec<RoleSuggestion>,
    pub concerns: Vec<ConcernSuggestion>,
    pub content_types: Vec<ContentTypeSuggestion>,
    pub neighbours: Vec<Neighbour>,
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// How many published assets serve each combination of the dimensions in `by`, which
    /// combinations have none (`gaps`), how many are stale and how much they were read in
    /// the last 90 days. Assets with no roles count toward every role; assets with no
    /// industry toward every industry and the cross-industry cell. `specificCount` and
    /// `specificGaps` leave those general assets out: what was written for the role or
    /// industry itself.
    #[graphql(
        cache_control(no_cache),
        complexity = "super::cost::RANKING * 10 + child_complexity"
    )]
    async fn coverage(
        &self,
        ctx: &Context<'_>,
        by: Vec<CoverageDimension>,
        filter: Option<AssetFilterInput>,
        stale_after_days: Option<i32>,
        #[graphql(default_with = "Some(DEFAULT_IDS_PER_CELL)")] ids_per_cell: Option<i32>,
    ) -> ApiResult<CoverageReportObject> {
        let library = library(ctx)?;
        let stale = days(stale_after_days, "staleAfterDays")?;
        let ids_per_cell = usize::try_from(ids_per_cell.unwrap_or(DEFAULT_IDS_PER_CELL))
            .map_err(|_| AppError::bad_input("idsPerCell must not be negative"))?;
        let look = ctx.look_ahead();
        let lists = [
            look.field("cells"),
            look.field("gaps"),
            look.field("specificGaps"),
        ];
        let extras = CoverageExtras {
            engagement: lists.iter().any(|l| l.field("recentEngagements").exists()),
            // Written assets only when some written figure is asked for.
            written: look.field("specificGaps").exists()
                || lists.iter().any(|l| {
                    l.field("specificCount").exists() || l.field("specificAssetIds").exists()
                }),
        };
        let report: CoverageReport = library
            .coverage(
                by.into_iter().map(Into::into).collect(),
                AssetFilterInput::parse(filter)?,
                stale,
                extras,
            )
            .await?;
        Ok(CoverageReportObject {
            specific_gaps: report
                .cells
                .iter()
                .filter(|c| c.cell.is_specific_gap())
                .map(|c| cell(c, &report.rows, ids_per_cell))
                .collect(),
            gaps: report
                .cells
                .iter()
                .filter(|c| c.cell.is_gap())
                .map(|c| cell(c, &report.rows, ids_per_cell))
                .collect(),
            cells: report
                .cells
                .iter()
                .map(|c| cell(c, &report.rows, ids_per_cell))
                .collect(),
            asset_count: report.assets,
            untagged_count: report.untagged,
            undated_count: report.undated,
            stale_after_days: stale.unwrap_or(library.stale_after_days()),
        })
    }

    /// Stages, roles, concerns and content type for an untagged or new asset, from its ten
    /// nearest tagged neighbours among published assets (each votes with its similarity;
    /// a known content type adds its default stages). With an embedding model the
    /// neighbours are the nearest in meaning among assets with declared tags (`similarity`
    /// is then their cosine), else the nearest by words. Give `assetId` (an asset of the
    /// library, compared with the others) or `text` (with its `language`, default `en`,
    /// and its `contentType` if known). `ignoreAssetIds` leaves assets out of the
    /// neighbours, to evaluate on a held-back part of the library.
    #[graphql(
        cache_control(no_cache),
        complexity = "super::cost::RANKING * 4 + child_complexity"
    )]
    async fn suggest_tags(
        &self,
        ctx: &Context<'_>,
        asset_id: Option<ID>,
        text: Option<String>,
        language: Option<String>,
        content_type: Option<ContentTypeEnum>,
        ignore_asset_ids: Option<Vec<ID>>,
    ) -> ApiResult<TagSuggestionsObject> {
        let subject = match (asset_id, text) {
            (Some(id), None) => TagSubject::Asset(id.0),
            (None, Some(text)) => TagSubject::Text {
                text,
                language: Language::parse(language.as_deref().unwrap_or("en"))
                    .map_err(|e| AppError::bad_input(format!("language: {e}")))?,
                content_type: content_type.map(Into::into),
            },
            _ => {
                return Err(AppError::bad_input("give exactly one of assetId and text").into());
            }
        };
        let ignore = ignore_asset_ids
            .unwrap_or_default()
            .into_iter()
            .map(|i| i.0)
            .collect();
        let report = library(ctx)?.suggest_tags(subject, ignore).await?;
        let s = report.suggestions;
        Ok(TagSuggestionsObject {
            stages: s
                .stages
                .into_iter()
                .map(|(v, confidence)| StageSuggestion {
                    stage: v.into(),
                    confidence,
                })
                .collect(),
            roles: s
                .roles
                .into_iter()
                .map(|(v, confidence)| RoleSuggestion {
                    role: v.into(),
                    confidence,
                })
                .collect(),
            concerns: s
                .concerns
                .into_iter()
                .map(|(v, confidence)| ConcernSuggestion {
                    concern: v.into(),
                    confidence,
                })
                .collect(),
            content_types: s
                .content_types
                .into_iter()
                .map(|(v, confidence)| ContentTypeSuggestion {
                    content_type: v.into(),
                    confidence,
                })
                .collect(),
            neighbours: report
                .neighbours
                .into_iter()
                .map(|(a, s)| Neighbour {
                    asset: AssetObject::from(a),
                    similarity: f64::from(s),
                })
                .collect(),
        })
    }

    /// Published assets last reviewed (else published) more than `olderThanDays` ago
    /// (default: the server's stale threshold, 365), oldest first. Undated assets are not
    /// stale (`coverage { undatedCount }` counts them). Evergreen assets only with
    /// `includeEvergreen`.
    #[graphql(cache_control(no_cache))]
    async fn stale_assets(
        &self,
        ctx: &Context<'_>,
        older_than_days: Option<i32>,
        filter: Option<AssetFilterInput>,
        #[graphql(default_with = "Some(false)")] include_evergreen: Option<bool>,
        #[graphql(default_with = "Some(50)")] first: Option<i32>,
    ) -> ApiResult<Vec<StaleAssetObject>> {
        let library = library(ctx)?;
        let first = library.page_size(first.unwrap_or(50))?;
        let list = library
            .stale_assets(
                days(older_than_days, "olderThanDays")?,
                AssetFilterInput::parse(filter)?,
                include_evergreen.unwrap_or(false),
                first,
            )
            .await?;
        Ok(list
            .into_iter()
            .map(|s| StaleAssetObject {
                asset: AssetObject::from(s.asset),
                last_dated_at: s.dated_at,
                age_days: s.age_days,
            })
            .collect())
    }
}
