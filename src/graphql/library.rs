//! Reading and editing the library: `asset`, `assets`, `search`, `similarAssets`,
//! `taxonomy`, `upsertAssets`, `retireAsset`.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::ApiResult;
use super::types::{
    AssetFilterInput, AssetInput, AssetObject, ContentTypeEnum, PageInfo, RoleEnum, StageEnum,
    TagFieldEnum,
};
use crate::domain::{
    Asset, AssetStatus, ContentType, FacetCount, FacetField, Role, SearchPage, SearchRequest,
    SimilarAssets, SimilarityBasis, SortOrder, Stage, TaxonomyValue,
};
use crate::error::{AppError, AppResult};
use crate::services::Library;

/// Deepest offset a cursor may point at; deeper pages are better served by narrower filters.
const MAX_OFFSET: usize = 100_000;

/// Page size of `assets` and `search` when `first` is left out or null.
const DEFAULT_PAGE: i32 = 20;
/// Page size of `similarAssets` when `first` is left out or null.
const DEFAULT_SIMILAR: i32 = 10;

#[derive(Default)]
pub struct LibraryQuery;

#[derive(Default)]
pub struct LibraryMutation;

pub(super) fn library<'a>(ctx: &Context<'a>) -> AppResult<&'a Library> {
    ctx.data::<Library>()
        .map_err(|_| AppError::internal(anyhow::anyhow!("schema built without a library")))
}

/// The asset `id` as the caller may see it: a draft is unreleased, so below an editor key
/// there is none.
pub(super) async fn visible_asset(ctx: &Context<'_>, id: &str) -> AppResult<Option<Asset>> {
    let sees_drafts = super::access::caller_sees_drafts(ctx);
    Ok(library(ctx)?
        .asset(id)
        .await?
        .filter(|a| sees_drafts || a.status != AssetStatus::Draft))
}

/// What a request about an asset the caller may not see answers: the same as for one
/// that does not exist.
pub(super) fn no_asset(id: &str) -> AppError {
    AppError::NotFound(format!("no asset with id {id:?}"))
}

pub(super) fn encode_cursor(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
}

pub(super) fn decode_cursor(after: Option<&str>) -> AppResult<usize> {
    let Some(after) = after else { return Ok(0) };
    URL_SAFE_NO_PAD
        .decode(after)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("o:").and_then(|n| n.parse::<usize>().ok()))
        .filter(|n| *n <= MAX_OFFSET)
        .ok_or_else(|| {
            AppError::bad_input(format!(
                "after: {after:?} is not a cursor returned by this API"
            ))
        })
}

pub(super) fn page_info(offset: usize, returned: usize, has_more: bool) -> PageInfo {
    PageInfo {
        end_cursor: (returned > 0).then(|| encode_cursor(offset + returned)),
        has_next_page: has_more,
    }
}

/// A dimension that search results are counted by.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum FacetDimension {
    Stage,
    Role,
    Industry,
    ContentType,
    Language,
}

impl FacetDimension {
    fn field(self) -> FacetField {
        match self {
            FacetDimension::Stage => FacetField::Stage,
            FacetDimension::Role => FacetField::Role,
            FacetDimension::Industry => FacetField::Industry,
            FacetDimension::ContentType => FacetField::ContentType,
            FacetDimension::Language => FacetField::Language,
        }
    }
}

const FACETS: [FacetDimension; 5] = [
    FacetDimension::Stage,
    FacetDimension::Role,
    FacetDimension::Industry,
    FacetDimension::ContentType,
    FacetDimension::Language,
];

#[derive(SimpleObject)]
pub struct FacetValue {
    /// A tag value; `ANY` counts assets for every role or cross-industry assets.
    pub value: String,
    pub count: u64,
}

#[derive(SimpleObject)]
pub struct Facet {
    pub field: FacetDimension,
    pub values: Vec<FacetValue>,
}

fn facets(counts: Vec<FacetCount>) -> Vec<Facet> {
    FACETS
        .iter()
        .zip(counts)
        .map(|(dim, count)| Facet {
            field: *dim,
            values: count
                .values
                .into_iter()
                .map(|(value, count)| FacetValue { value, count })
                .collect(),
        })
        .collect()
}

/// Where a search term was found.
#[derive(SimpleObject)]
pub struct Highlight {
    /// `title`, `summary` or `body`.
    pub field: String,
    /// Plain text around the match.
    pub fragment: String,
    /// The fragment, HTML-escaped, with matches in `<b>`.
    pub html: String,
}

#[derive(SimpleObject)]
pub struct SearchHit {
    pub asset: AssetObject,
    /// Text relevance (BM25); 0 when the query is empty and results are newest first.
    pub score: f64,
    /// The best fragment of each field that holds a word of the query, with the words in
    /// `<b>`; read from the first 20,000 characters of each field.
    pub highlights: Vec<Highlight>,
}

#[derive(SimpleObject)]
pub struct SearchResult {
    /// How many assets match. With text, counting means scoring every match: select it
    /// only when it is shown (without it, only what can reach the page is scored). It
    /// counts the assets whose words match: with an embedding model, `items` may also
    /// hold assets near the query in meaning, which it does not count.
    pub total_count: u64,
    pub items: Vec<SearchHit>,
    /// Counts per stage, role, industry, content type and language over all matches.
    pub facets: Vec<Facet>,
    pub page_info: PageInfo,
    /// True when the query matched only in passing: none of the first five hits holds 35%
    /// of the query (its words weighted by how rare they are in the library; a word no
    /// asset has weighs most; a synonym found counts as the rarest word missing), read in
    /// each hit's title, summary and first 6,000 characters. `items` is then empty, though
    /// `totalCount` counts the assets that mention a word. With an embedding model, a hit
    /// with a cosine of 0.4 or more with the query counts as a good match, and hits near in
    /// meaning but below it count as passing. False when nothing matches at all (`items`
    /// is empty too).
    pub no_good_match: bool,
}

/// What `similarAssets` compared by.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "SimilarityBasis")]
pub enum SimilarityBasisEnum {
    /// The embedding model's vectors: `similarity` is a cosine (about 0.3 and up: a
    /// related subject; 0.6 and up: the same subject).
    Meaning,
    /// The asset's most telling words (BM25): the server runs no embedding model, the
    /// library's vectors are not computed yet, or the filter names statuses other than
    /// published (only published assets are embedded). `similarity` is relative to the
    /// best item (1) and says nothing across lists.
    Words,
}

#[derive(SimpleObject)]
pub struct SimilarAsset {
    pub asset: AssetObject,
    pub similarity: f64,
}

#[derive(SimpleObject)]
pub struct SimilarAssetList {
    pub by: SimilarityBasisEnum,
    /// Best first; never the asset asked about.
    pub items: Vec<SimilarAsset>,
}

impl From<SimilarAssets> for SimilarAssetList {
    fn from(similar: SimilarAssets) -> Self {
        Self {
            by: match similar.by {
                SimilarityBasis::Meaning => SimilarityBasisEnum::Meaning,
                SimilarityBasis::Words => SimilarityBasisEnum::Words,
            },
            items: similar
                .items
                .into_iter()
                .map(|(asset, similarity)| SimilarAsset {
                    asset: AssetObject(asset),
                    similarity,
                })
                .collect(),
        }
    }
}

#[derive(SimpleObject)]
pub struct AssetConnection {
    pub total_count: u64,
    pub items: Vec<AssetObject>,
    pub page_info: PageInfo,
}

#[derive(SimpleObject)]
pub struct StageInfo {
    pub name: StageEnum,
    pub description: String,
    /// Other spellings accepted wherever a stage is given as a string.
    pub aliases: Vec<String>,
}

#[derive(SimpleObject)]
pub struct RoleInfo {
    pub name: RoleEnum,
    pub description: String,
    pub aliases: Vec<String>,
}

#[derive(SimpleObject)]
pub struct ContentTypeInfo {
    pub name: ContentTypeEnum,
    /// Stages an asset of this type serves when its own are not given.
    pub default_stages: Vec<StageEnum>,
}

#[derive(SimpleObject)]
pub struct IndustryInfo {
    pub slug: String,
    pub label: String,
    pub parent: Option<String>,
    /// Published assets tagged with this industry or one below it.
    pub asset_count: u64,
}

#[derive(SimpleObject)]
pub struct Taxonomy {
    pub stages: Vec<StageInfo>,
    pub roles: Vec<RoleInfo>,
    pub content_types: Vec<ContentTypeInfo>,
    pub industries: Vec<IndustryInfo>,
}

#[derive(SimpleObject)]
pub struct UpsertAssetsPayload {
    pub created: u64,
    pub updated: u64,
    /// Identical to what was stored; not rewritten.
    pub unchanged: u64,
    pub assets: Vec<AssetObject>,
}

impl From<crate::services::UpsertOutcome> for UpsertAssetsPayload {
    fn from(outcome: crate::services::UpsertOutcome) -> Self {
        Self {
            created: outcome.counts.created,
            updated: outcome.counts.updated,
            unchanged: outcome.counts.unchanged,
            assets: outcome.assets.into_iter().map(AssetObject::from).collect(),
        }
    }
}

fn hits(page: SearchPage) -> Vec<SearchHit> {
    page.hits
        .into_iter()
        .map(|h| SearchHit {
            asset: AssetObject(h.asset),
            score: f64::from(h.score),
            highlights: h
                .highlights
                .into_iter()
                .map(|x| Highlight {
                    field: x.field.to_owned(),
                    fragment: x.fragment,
                    html: x.html,
                })
                .collect(),
        })
        .collect()
}

#[Object]
impl LibraryQuery {
    /// One asset by id, published, retired or (for editor keys and above) draft; null when
    /// there is none.
    // Read from the database, which may be ahead of the index: never cached.
    #[graphql(cache_control(no_cache))]
    async fn asset(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<AssetObject>> {
        Ok(visible_asset(ctx, &id).await?.map(AssetObject::from))
    }

    /// The library in id order, filtered; published only unless `filter.statuses` says
    /// otherwise.
    #[graphql(
        cache_control(max_age = 60),
        complexity = "super::cost::page(first, 20, child_complexity)"
    )]
    async fn assets(
        &self,
        ctx: &Context<'_>,
        filter: Option<AssetFilterInput>,
        #[graphql(default_with = "Some(DEFAULT_PAGE)")] first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<AssetConnection> {
        let library = library(ctx)?;
        let limit = library.page_size(first.unwrap_or(DEFAULT_PAGE))?;
        let offset = decode_cursor(after.as_deref())?;
        let page = library
            .search(SearchRequest {
                text: None,
                filter: AssetFilterInput::parse(filter)?,
                limit,
                offset,
                sort: SortOrder::Id,
                facets: Vec::new(),
                highlights: false,
                count: true,
                synonyms: Vec::new(),
                semantic_ratio: None,
            })
            .await?;
        let (total, has_more) = (page.total.unwrap_or_default(), page.has_more);
        let items: Vec<AssetObject> = page
            .hits
            .into_iter()
            .map(|h| AssetObject(h.asset))
            .collect();
        Ok(AssetConnection {
            total_count: total,
            page_info: page_info(offset, items.len(), has_more),
            items,
        })
    }

    /// Full-text search over titles, summaries and bodies in English (stemmed), Chinese
    /// (segmented into words) and other languages. An empty query lists the filtered
    /// library, newest first. Drafts and retired assets appear only when
    /// `filter.statuses` names them (drafts for editor keys and above). When the server
    /// runs an embedding model, the order also weighs meaning: `semanticRatio` is its
    /// share, from 0 (words alone) to 1 (meaning alone); the server's default (0.3 unless
    /// configured) when left out. Each item's `score` is then the fused value (0 to 1).
    /// Meaning orders the first 100 results of a query of plain words (an operator such
    /// as `-word`, NOT or a quoted phrase keeps the words' order), and such a list ends
    /// there.
    #[graphql(
        cache_control(max_age = 60),
        complexity = "super::cost::page(first, 20, child_complexity)"
    )]
    async fn search(
        &self,
        ctx: &Context<'_>,
        query: String,
        filter: Option<AssetFilterInput>,
        #[graphql(default_with = "Some(DEFAULT_PAGE)")] first: Option<i32>,
        after: Option<String>,
        semantic_ratio: Option<f64>,
    ) -> ApiResult<SearchResult> {
        let library = library(ctx)?;
        if let Some(r) = semantic_ratio
            && !(0.0..=1.0).contains(&r)
        {
            return Err(AppError::bad_input(format!(
                "semanticRatio {r}: give a share from 0 (words alone) to 1 (meaning alone)"
            ))
            .into());
        }
        let limit = library.page_size(first.unwrap_or(DEFAULT_PAGE))?;
        let offset = decode_cursor(after.as_deref())?;
        let look = ctx.look_ahead();
        let want_facets = look.field("facets").exists();
        let want_highlights = look.field("items").field("highlights").exists();
        let page = library
            .search(SearchRequest {
                text: Some(query),
                filter: AssetFilterInput::parse(filter)?,
                limit,
                offset,
                sort: SortOrder::Relevance,
                facets: if want_facets {
                    FACETS.iter().map(|d| d.field()).collect()
                } else {
                    Vec::new()
                },
                highlights: want_highlights,
                // Counting text matches means scoring all of them: only when asked.
                count: look.field("totalCount").exists(),
                synonyms: Vec::new(),
                semantic_ratio,
            })
            .await?;
        let (total, has_more) = (page.total.unwrap_or_default(), page.has_more);
        let no_good_match = page.no_good_match;
        let facet_list = if want_facets {
            facets(page.facets.clone())
        } else {
            Vec::new()
        };
        let items = hits(page);
        Ok(SearchResult {
            total_count: total,
            page_info: page_info(offset, items.len(), has_more),
            items,
            facets: facet_list,
            no_good_match,
        })
    }

    /// The assets most like `assetId`, whatever the audience: by meaning (cosine of the
    /// embedding model's vectors) when the server runs a model and the asset has its
    /// vector, else by its most telling words; `by` says which. The filter works as in
    /// `search` (published assets unless `filter.statuses` names others) and is applied
    /// before the cut, so a narrow filter still fills the page when it can. Only published
    /// assets are embedded: a filter naming other statuses compares by words, and an
    /// asset still being embedded joins once its vector is in.
    #[graphql(
        cache_control(max_age = 60),
        complexity = "super::cost::page(first, DEFAULT_SIMILAR, child_complexity)"
    )]
    async fn similar_assets(
        &self,
        ctx: &Context<'_>,
        asset_id: ID,
        filter: Option<AssetFilterInput>,
        #[graphql(default_with = "Some(DEFAULT_SIMILAR)")] first: Option<i32>,
    ) -> ApiResult<SimilarAssetList> {
        let library = library(ctx)?;
        let first = library.page_size(first.unwrap_or(DEFAULT_SIMILAR))?;
        let filter = AssetFilterInput::parse(filter)?;
        // The asset checked is the one compared.
        let seed = visible_asset(ctx, &asset_id)
            .await?
            .ok_or_else(|| no_asset(&asset_id))?;
        Ok(library.similar_assets(seed, first, filter).await?.into())
    }

    /// The library's synonym groups: a search (or a recommendation's query) naming one term
    /// of a group also searches the others.
    async fn synonyms(&self, ctx: &Context<'_>) -> ApiResult<Vec<Vec<String>>> {
        Ok(library(ctx)?.synonyms().await?.groups().to_vec())
    }

    /// The vocabularies: stages with their aliases, roles, content types with their
    /// default stages, and the industries in use with their published-asset counts (below
    /// an editor key, only those some published asset serves).
    #[graphql(cache_control(max_age = 60))]
    async fn taxonomy(&self, ctx: &Context<'_>) -> ApiResult<Taxonomy> {
        let look = ctx.look_ahead();
        // An industry no published asset serves is the content team's to know of: only
        // drafts (or retired assets) name it.
        let sees_drafts = super::access::caller_sees_drafts(ctx);
        let industries = if look.field("industries").exists() {
            library(ctx)?
                .industries()
                .await?
                .into_iter()
                .filter(|i| sees_drafts || i.asset_count > 0)
                .map(|i| IndustryInfo {
                    slug: i.slug.to_string(),
                    label: i.label,
                    parent: i.parent.map(|p| p.to_string()),
                    asset_count: i.asset_count,
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(Taxonomy {
            stages: Stage::ALL
                .iter()
                .map(|s| StageInfo {
                    name: (*s).into(),
                    description: s.description().to_owned(),
                    aliases: s.aliases().iter().map(|a| (*a).to_owned()).collect(),
                })
                .collect(),
            roles: Role::ALL
                .iter()
                .map(|r| RoleInfo {
                    name: (*r).into(),
                    description: r.description().to_owned(),
                    aliases: r.aliases().iter().map(|a| (*a).to_owned()).collect(),
                })
                .collect(),
            content_types: ContentType::ALL
                .iter()
                .map(|c| ContentTypeInfo {
                    name: (*c).into(),
                    default_stages: c.default_stages().iter().map(|s| (*s).into()).collect(),
                })
                .collect(),
            industries,
        })
    }
}

/// One accepted suggestion: the asset, the kind of tag and its value (`DECISION`,
/// `TECHNICAL_INTEGRATOR`, `healthcare`, `RISK`).
#[derive(InputObject)]
pub struct TagAcceptInput {
    pub asset_id: ID,
    pub field: TagFieldEnum,
    pub value: String,
}

// Writes are never answered from the response cache.
#[Object(cache_control(no_cache))]
impl LibraryMutation {
    /// Creates or updates assets by id (at most 1,000 per call). Every asset is validated
    /// first; if any is invalid nothing is written and the error lists each problem in
    /// `extensions.problems`. Returns once search shows the change.
    async fn upsert_assets(
        &self,
        ctx: &Context<'_>,
        assets: Vec<AssetInput>,
    ) -> ApiResult<UpsertAssetsPayload> {
        let outcome = library(ctx)?
            .upsert_assets(assets.into_iter().map(Into::into).collect())
            .await?;
        Ok(outcome.into())
    }

    /// Declares tags a person accepted from the suggestions (`suggestTags`, `tagEvidence`,
    /// or a review file): each value joins what the asset already declares, and declared
    /// tags replace what was read from the text. All or nothing (at most 10,000); returns
    /// the assets once search shows them.
    async fn accept_tag_suggestions(
        &self,
        ctx: &Context<'_>,
        accept: Vec<TagAcceptInput>,
    ) -> ApiResult<UpsertAssetsPayload> {
        let accepted = accept
            .into_iter()
            .enumerate()
            .map(|(i, a)| crate::services::Acceptance {
                place: format!("accept[{i}]"),
                asset_id: a.asset_id.0,
                field: match a.field {
                    TagFieldEnum::Stage => "stage",
                    TagFieldEnum::Role => "role",
                    TagFieldEnum::Industry => "industry",
                    TagFieldEnum::Concern => "concern",
                }
                .to_owned(),
                value: a.value,
            })
            .collect();
        let outcome = library(ctx)?.accept_tags(accepted).await?;
        Ok(outcome.into())
    }

    /// Replaces the synonym groups as a whole (`[["churn", "retention"], ["telecom",
    /// "telecommunications"]]`): at most 1,000 groups of 2 to 16 terms of at most 64
    /// characters; terms are matched case-insensitively as whole words (Chinese anywhere).
    /// Every replica uses the new groups within 5 seconds.
    async fn set_synonyms(
        &self,
        ctx: &Context<'_>,
        groups: Vec<Vec<String>>,
    ) -> ApiResult<Vec<Vec<String>>> {
        Ok(library(ctx)?.set_synonyms(groups).await?.groups().to_vec())
    }

    /// Retires an asset: it stays in the library (and exports) but is never shown again.
    async fn retire_asset(&self, ctx: &Context<'_>, id: ID) -> ApiResult<AssetObject> {
        Ok(AssetObject::from(library(ctx)?.retire_asset(&id).await?))
    }
}
