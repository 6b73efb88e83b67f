//! GraphQL mirrors of the domain types. The domain stays free of GraphQL; these wrappers
//! and enums convert at the edge.

use async_graphql::{Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::{
    Asset, AssetDraft, AssetFilter, AssetStatus, Concern, ContentType, IndustrySlug, Language,
    Role, Stage, TagField, TagSource,
};
use crate::error::{AppError, AppResult};

macro_rules! mirror_enum {
    ($(#[$doc:meta])* $gql:ident as $name:literal => $domain:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
        #[graphql(name = $name)]
        pub enum $gql { $($variant),+ }

        impl From<$domain> for $gql {
            fn from(v: $domain) -> Self {
                match v { $($domain::$variant => $gql::$variant),+ }
            }
        }

        impl From<$gql> for $domain {
            fn from(v: $gql) -> Self {
                match v { $($gql::$variant => $domain::$variant),+ }
            }
        }
    };
}

mirror_enum! {
    /// Canonical buying stage. Inputs that take strings also accept the aliases listed in
    /// `taxonomy { stages { aliases } }`.
    StageEnum as "Stage" => Stage { Awareness, Consideration, Decision, Adoption, Advocacy }
}
mirror_enum! {
    /// A seat on the buying committee.
    RoleEnum as "Role" => Role { DecisionMaker, TechnicalIntegrator, BusinessUser, Procurement, Finance }
}
mirror_enum! {
    /// The buyer anxiety an asset answers.
    ConcernEnum as "Concern" => Concern { Need, Fit, Risk, Cost, Adoption, Validation }
}
mirror_enum! {
    /// Only published assets are ever recommended or searched by default.
    AssetStatusEnum as "AssetStatus" => AssetStatus { Published, Draft, Retired }
}
mirror_enum! {
    /// The format of an asset.
    ContentTypeEnum as "ContentType" => ContentType {
        Ebook, BlogPost, Whitepaper, ResearchReport, Infographic, Video, Webinar, BuyerGuide,
        ComparisonGuide, RoiCalculator, AnalystReport, CaseStudy, Demo, FreeTrial, PricingSheet,
        SecurityWhitepaper, ImplementationGuide, ApiDocs, Training, Newsletter, ReleaseNotes,
        Documentation,
    }
}

pub(crate) use mirror_enum;

fn mirror<D: Copy, G: From<D>>(values: &[D]) -> Vec<G> {
    values.iter().copied().map(G::from).collect()
}

/// A content asset.
pub struct AssetObject(pub std::sync::Arc<Asset>);

impl From<Asset> for AssetObject {
    fn from(asset: Asset) -> Self {
        Self(std::sync::Arc::new(asset))
    }
}

#[Object(name = "Asset")]
impl AssetObject {
    /// Stable external id (slug).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn summary(&self) -> &str {
        &self.0.summary
    }
    /// Full text; can be long.
    async fn body(&self) -> &str {
        &self.0.body
    }
    async fn url(&self) -> Option<&str> {
        Some(self.0.url.as_str()).filter(|u| !u.is_empty())
    }
    async fn content_type(&self) -> ContentTypeEnum {
        self.0.content_type.into()
    }
    /// Stages the asset serves: declared, else read from its text, else its content type's
    /// defaults (`tagEvidence` says which).
    async fn stages(&self) -> Vec<StageEnum> {
        mirror(&self.0.stages)
    }
    /// Roles the asset is written for, declared or read from its text; empty means every
    /// role when declared, or not known (`tagEvidence`).
    async fn roles(&self) -> Vec<RoleEnum> {
        mirror(&self.0.roles)
    }
    /// Industry slugs; empty means cross-industry.
    async fn industries(&self) -> Vec<&str> {
        self.0.industries.iter().map(IndustrySlug::as_str).collect()
    }
    async fn concerns(&self) -> Vec<ConcernEnum> {
        mirror(&self.0.concerns)
    }
    async fn topics(&self) -> &[String] {
        &self.0.topics
    }
    /// The pages this one links to, as written on it: `nextContent` ranks those that are
    /// in the library as what the page sends its reader to next.
    async fn links(&self) -> &[String] {
        &self.0.links
    }
    /// A picture for the asset's card (http(s) or site-relative); null for none.
    async fn image_url(&self) -> Option<&str> {
        Some(self.0.image_url.as_str()).filter(|u| !u.is_empty())
    }
    /// BCP-47 language tag.
    async fn language(&self) -> &str {
        self.0.language.as_str()
    }
    async fn published_at(&self) -> Option<DateTime<Utc>> {
        self.0.published_at
    }
    /// Last content review; the stale audit uses it.
    async fn reviewed_at(&self) -> Option<DateTime<Utc>> {
        self.0.reviewed_at
    }
    /// Exempt from freshness decay.
    async fn evergreen(&self) -> bool {
        self.0.evergreen
    }
    /// Needs a form fill.
    async fn gated(&self) -> bool {
        self.0.gated
    }
    async fn status(&self) -> AssetStatusEnum {
        self.0.status.into()
    }
    /// Where each stage, role, industry and concern above comes from: declared by the
    /// content team, inferred from the asset's text (with a confidence), or the content
    /// type's default. A role entry without a value says the role is not known; a declared
    /// entry without a value says "every role" or "cross-industry".
    async fn tag_evidence(&self) -> Vec<TagEvidenceObject> {
        tag_evidence(&self.0)
    }
}

/// Where a kind of tag comes from.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "TagSource")]
pub enum TagSourceEnum {
    /// Set by the content team, in the library or by accepting a suggestion.
    Declared,
    /// Read from the asset's title, summary, body, URL path and content type.
    Inferred,
    /// Nothing declared or read: the content type's default stages; no role known.
    Default,
}

impl From<TagSource> for TagSourceEnum {
    fn from(s: TagSource) -> Self {
        match s {
            TagSource::Declared => Self::Declared,
            TagSource::Inferred => Self::Inferred,
            TagSource::Default => Self::Default,
        }
    }
}

/// Which kind of tag.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "TagField")]
pub enum TagFieldEnum {
    Stage,
    Role,
    Industry,
    Concern,
}

/// One tag of an asset and where it comes from.
#[derive(SimpleObject)]
#[graphql(name = "TagEvidence")]
pub struct TagEvidenceObject {
    pub field: TagFieldEnum,
    /// The value (`DECISION`, `TECHNICAL_INTEGRATOR`, `healthcare`); none for "role not
    /// known", "every role" or "cross-industry".
    pub value: Option<String>,
    pub source: TagSourceEnum,
    /// 1 for declared, the inference's confidence for inferred, 0 for a default.
    pub confidence: f64,
}

fn tag_evidence(asset: &Asset) -> Vec<TagEvidenceObject> {
    asset
        .tag_entries()
        .into_iter()
        .map(|t| TagEvidenceObject {
            field: match t.field {
                TagField::Stage => TagFieldEnum::Stage,
                TagField::Role => TagFieldEnum::Role,
                TagField::Industry => TagFieldEnum::Industry,
                TagField::Concern => TagFieldEnum::Concern,
            },
            value: t.value,
            source: t.source.into(),
            confidence: t.confidence,
        })
        .collect()
}

/// Which assets a query is about. Lists are "any of"; the lists together are "all of".
/// A role matches assets for that role and assets for every role; an industry matches
/// itself, its sub-industries and cross-industry assets; a language `zh` matches `zh-CN`.
/// Without `statuses` only published assets match.
#[derive(InputObject, Default, Clone)]
#[graphql(name = "AssetFilter")]
pub struct AssetFilterInput {
    pub stages: Option<Vec<StageEnum>>,
    pub roles: Option<Vec<RoleEnum>>,
    /// Industry slugs such as `financial-services/payments`.
    pub industries: Option<Vec<String>>,
    pub content_types: Option<Vec<ContentTypeEnum>>,
    /// BCP-47 tags.
    pub languages: Option<Vec<String>>,
    pub topics: Option<Vec<String>>,
    pub statuses: Option<Vec<AssetStatusEnum>>,
}

impl AssetFilterInput {
    pub fn parse(input: Option<AssetFilterInput>) -> AppResult<AssetFilter> {
        let Some(input) = input else {
            return Ok(AssetFilter::default());
        };
        let bad = |field: &str, e: String| AppError::bad_input(format!("filter.{field}: {e}"));
        Ok(AssetFilter {
            stages: input
                .stages
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            roles: input
                .roles
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            industries: input
                .industries
                .unwrap_or_default()
                .iter()
                .map(|s| IndustrySlug::parse(s).map_err(|e| bad("industries", e)))
                .collect::<AppResult<_>>()?,
            content_types: input
                .content_types
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            languages: input
                .languages
                .unwrap_or_default()
                .iter()
                .map(|s| Language::parse(s).map_err(|e| bad("languages", e)))
                .collect::<AppResult<_>>()?,
            topics: input.topics.unwrap_or_default(),
            statuses: input
                .statuses
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
        })
    }
}

/// One asset in the interchange format, camelCase. Strings are parsed exactly as an import
/// parses them: stage aliases such as `cost-awareness`, content types as `case-study`,
/// dates as `2024-05-01` or RFC 3339.
#[derive(InputObject, Clone)]
pub struct AssetInput {
    pub id: ID,
    pub title: String,
    pub summary: Option<String>,
    pub body: Option<String>,
    pub url: Option<String>,
    /// Links on the page (absolute, site-relative or relative to `url`), at most 100.
    pub links: Option<Vec<String>>,
    /// A picture for the asset's card: an http(s) URL or a site-relative path.
    pub image_url: Option<String>,
    pub content_type: String,
    pub stages: Option<Vec<String>>,
    pub roles: Option<Vec<String>>,
    pub industries: Option<Vec<String>>,
    pub concerns: Option<Vec<String>>,
    pub topics: Option<Vec<String>>,
    pub language: Option<String>,
    pub published_at: Option<String>,
    pub reviewed_at: Option<String>,
    pub evergreen: Option<bool>,
    pub gated: Option<bool>,
    /// `published` (default), `draft` or `retired`.
    pub status: Option<String>,
}

impl From<AssetInput> for AssetDraft {
    fn from(i: AssetInput) -> Self {
        AssetDraft {
            id: Some(i.id.0),
            title: Some(i.title),
            summary: i.summary,
            body: i.body,
            url: i.url,
            links: i.links.unwrap_or_default(),
            image_url: i.image_url,
            content_type: Some(i.content_type),
            stages: i.stages.unwrap_or_default(),
            roles: i.roles.unwrap_or_default(),
            industries: i.industries.unwrap_or_default(),
            concerns: i.concerns.unwrap_or_default(),
            topics: i.topics.unwrap_or_default(),
            language: i.language,
            published_at: i.published_at,
            reviewed_at: i.reviewed_at,
            evergreen: i.evergreen,
            gated: i.gated,
            status: i.status,
            tag_evidence: Vec::new(),
        }
    }
}

#[derive(SimpleObject)]
pub struct PageInfo {
    pub end_cursor: Option<String>,
    pub has_next_page: bool,
}

/// A stored time in Unix seconds, as the API shows it.
pub(super) fn unix_time(seconds: i64) -> Option<DateTime<Utc>> {
    use chrono::TimeZone;
    Utc.timestamp_opt(seconds, 0).single()
}
