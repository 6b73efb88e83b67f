//! `recommendations` and `nextContent`.

use async_graphql::{
    Context, Enum, ID, InputObject, InputValueError, InputValueResult, Name, Object, Scalar,
    ScalarType, SimpleObject, Value,
};

use super::ApiResult;
use super::library::library;
use super::types::{AssetFilterInput, AssetObject, ConcernEnum, RoleEnum, StageEnum};
use crate::domain::{Concern, IndustrySlug, Language, Role, Stage, TaxonomyValue};
use crate::domain::{Factor, WeightOverrides};
use crate::error::AppError;
use crate::services::ScoreReason as DomainReason;
use crate::services::{AudienceRequest, AudienceSource, RecommendationList, RecommendationQuery};

/// What `recommendations` and `nextContent` use when an argument is left out or null.
const DEFAULT_RECOMMENDATIONS: i32 = 10;
const DEFAULT_NEXT_CONTENT: i32 = 5;
const DEFAULT_DIVERSIFY: bool = true;
/// The `Cache-Control` of responses built from an account's history; the HTTP layer never
/// stores them either.
pub const PRIVATE: &str = "private, no-store";

macro_rules! lenient_name {
    ($(#[$doc:meta])* $name:ident as $gql:literal => $domain:ty) => {
        #[derive(Clone, Copy, Debug)]
        pub struct $name(pub $domain);

        $(#[$doc])*
        #[Scalar(name = $gql)]
        impl ScalarType for $name {
            fn parse(value: Value) -> InputValueResult<Self> {
                let raw = match &value {
                    Value::Enum(name) => name.as_str().to_owned(),
                    Value::String(s) => s.clone(),
                    _ => return Err(InputValueError::expected_type(value)),
                };
                <$domain as TaxonomyValue>::parse(&raw)
                    .map($name)
                    .map_err(InputValueError::custom)
            }

            fn to_value(&self) -> Value {
                Value::Enum(Name::new(self.0.name()))
            }
        }
    };
}

lenient_name! {
    /// A buying stage, as an enum literal (`DECISION`) or a string holding its name or any
    /// alias listed in `taxonomy { stages { aliases } }` (`"cost-awareness"`).
    StageName as "StageName" => Stage
}
lenient_name! {
    /// A buying-committee role, as an enum literal (`TECHNICAL_INTEGRATOR`) or a string
    /// holding its name or an alias.
    RoleName as "RoleName" => Role
}
lenient_name! {
    /// A buyer concern (`NEED FIT RISK COST ADOPTION VALIDATION`), as an enum literal or a
    /// string.
    ConcernName as "ConcernName" => Concern
}

/// Whom recommendations are for. Every field is optional; what is left out is defaulted
/// and reported in `RecommendationList.audience`.
#[derive(InputObject, Default)]
pub struct AudienceInput {
    /// The account asking (or asked about): its stage (from the CRM, or inferred from its
    /// reading), industry and language fill what the request leaves out, and what it
    /// already read is left out of the list.
    pub account_id: Option<ID>,
    /// A contact of the account: their role fills a missing `role`. Implies the account.
    pub contact_id: Option<ID>,
    /// Also recommend assets the account already engaged with (the same as the
    /// `includeConsumed` argument of `recommendations`).
    pub include_consumed: Option<bool>,
    pub stage: Option<StageName>,
    pub role: Option<RoleName>,
    /// Industry slug such as `financial-services/payments`.
    pub industry: Option<String>,
    /// BCP-47 tag; matched by language subtag.
    pub language: Option<String>,
    /// Anxieties to favour ("CFO worried about cost": `[COST]`).
    pub concerns: Option<Vec<ConcernName>>,
    /// Never recommend these.
    pub exclude_asset_ids: Option<Vec<ID>>,
    /// An anonymous visitor's own stable id (a first-party cookie, at most 128
    /// characters). With a `placement` that runs an experiment and no account or contact,
    /// it decides the variant, so the visitor always sees the same one. It ranks nothing.
    pub visitor_id: Option<String>,
}

impl AudienceInput {
    pub(super) fn parse(self) -> Result<AudienceRequest, AppError> {
        let industry = self
            .industry
            .as_deref()
            .map(IndustrySlug::parse)
            .transpose()
            .map_err(|e| AppError::bad_input(format!("audience.industry: {e}")))?;
        let language = self
            .language
            .as_deref()
            .map(Language::parse)
            .transpose()
            .map_err(|e| AppError::bad_input(format!("audience.language: {e}")))?;
        let mut concerns: Vec<Concern> = self
            .concerns
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.0)
            .collect();
        concerns.sort_by_key(|c| c.ordinal());
        concerns.dedup();
        let visitor_id = match self.visitor_id.as_deref().map(str::trim) {
            None => None,
            Some(v) if !v.is_empty() && v.chars().count() <= 128 => Some(v.to_owned()),
            Some(_) => {
                return Err(AppError::bad_input(
                    "audience.visitorId: give 1 to 128 characters",
                ));
            }
        };
        Ok(AudienceRequest {
            visitor_id,
            account_id: self.account_id.map(|id| id.0),
            contact_id: self.contact_id.map(|id| id.0),
            include_consumed: self.include_consumed.unwrap_or(false),
            stage: self.stage.map(|s| s.0),
            role: self.role.map(|r| r.0),
            industry,
            language,
            concerns,
            exclude_asset_ids: self
                .exclude_asset_ids
                .unwrap_or_default()
                .into_iter()
                .map(|id| id.0)
                .collect(),
        })
    }
}

/// The GraphQL side of the factor list (`domain::with_factors!`).
macro_rules! graphql_factors {
    ($(($variant:ident, $field:ident, $name:literal, $default:literal)),* $(,)?) => {
        /// Per-request weights for what-if tuning; each replaces its default (0 to 100).
        #[derive(InputObject, Default)]
        pub struct RankingWeightsInput {
            $(pub $field: Option<f64>),*
        }

        impl From<RankingWeightsInput> for WeightOverrides {
            fn from(w: RankingWeightsInput) -> Self {
                WeightOverrides {
                    $($field: w.$field),*
                }
            }
        }

        /// A named part of a score.
        #[derive(Enum, Clone, Copy, PartialEq, Eq)]
        pub enum RankingFactor {
            $(#[graphql(name = $name)] $variant),*
        }

        impl From<Factor> for RankingFactor {
            fn from(f: Factor) -> Self {
                match f {
                    $(Factor::$variant => RankingFactor::$variant),*
                }
            }
        }
    };
}

crate::with_factors!(graphql_factors);

/// Where a resolved audience field came from.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "AudienceSource")]
pub enum AudienceSourceEnum {
    /// Given in the request.
    Request,
    /// From the account's record.
    Account,
    /// From the contact's record.
    Contact,
    /// Inferred (from engagement, or from the asset just read).
    Inferred,
    /// Nothing said; the configured default.
    Default,
}

impl From<AudienceSource> for AudienceSourceEnum {
    fn from(s: AudienceSource) -> Self {
        match s {
            AudienceSource::Request => AudienceSourceEnum::Request,
            AudienceSource::Account => AudienceSourceEnum::Account,
            AudienceSource::Contact => AudienceSourceEnum::Contact,
            AudienceSource::Inferred => AudienceSourceEnum::Inferred,
            AudienceSource::Default => AudienceSourceEnum::Default,
        }
    }
}

/// One factor's part of a score: `contribution = weight x value`; the contributions of a
/// recommendation add up to its score.
#[derive(SimpleObject)]
pub struct ScoreReason {
    pub factor: RankingFactor,
    /// How well the asset fits on this factor, 0 to 1.
    pub value: f64,
    pub weight: f64,
    pub contribution: f64,
    /// Readable for a sales rep: "same industry (retail)", "decision stage, the buyer's own".
    pub detail: String,
}

impl From<DomainReason> for ScoreReason {
    fn from(r: DomainReason) -> Self {
        ScoreReason {
            factor: r.factor.into(),
            value: r.value,
            weight: r.weight,
            contribution: r.contribution,
            detail: r.detail,
        }
    }
}

#[derive(SimpleObject)]
pub struct Recommendation {
    pub asset: AssetObject,
    /// 1 for the first item: what `recordImpressions` and `recordEngagement` report back.
    pub position: i32,
    pub score: f64,
    pub reasons: Vec<ScoreReason>,
}

/// The audience a list was ranked for.
#[derive(SimpleObject)]
pub struct ResolvedAudience {
    pub stage: StageEnum,
    pub stage_source: AudienceSourceEnum,
    pub role: Option<RoleEnum>,
    pub role_source: AudienceSourceEnum,
    pub industry: Option<String>,
    pub industry_source: AudienceSourceEnum,
    pub language: String,
    pub language_source: AudienceSourceEnum,
    pub concerns: Vec<ConcernEnum>,
}

/// A ranked list and the audience it was ranked for.
#[derive(SimpleObject)]
#[graphql(name = "RecommendationList")]
pub struct RecommendationListObject {
    /// Unique to this answer (a cached list gets a new one each time) and opaque: pass it
    /// back to `recordImpressions` and `recordEngagement` so what was shown, clicked and
    /// completed counts for this list, its profile and its experiment variant.
    pub recommendation_id: ID,
    pub items: Vec<Recommendation>,
    pub audience: ResolvedAudience,
    /// The ranking profile that ranked the list (`default`: the configured weights).
    pub profile: String,
    /// The experiment that chose the profile, when one runs at the request's placement.
    pub experiment: Option<String>,
    /// The experiment's variant this account or visitor sees (named by its profile).
    pub variant: Option<String>,
    pub placement: Option<String>,
}

impl From<crate::services::Recommendation> for Recommendation {
    fn from(i: crate::services::Recommendation) -> Self {
        Recommendation {
            position: 0,
            asset: AssetObject(i.asset),
            score: i.scored.score,
            reasons: i.scored.reasons.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<crate::services::ResolvedAudience> for ResolvedAudience {
    fn from(r: crate::services::ResolvedAudience) -> Self {
        ResolvedAudience {
            stage: r.audience.stage.into(),
            stage_source: r.stage_source.into(),
            role: r.audience.role.map(Into::into),
            role_source: r.role_source.into(),
            industry: r.audience.industry.map(|i| i.to_string()),
            industry_source: r.industry_source.into(),
            language: r.audience.language.to_string(),
            language_source: r.language_source.into(),
            concerns: r.audience.concerns.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<RecommendationList> for RecommendationListObject {
    fn from(list: RecommendationList) -> Self {
        let r = list.audience;
        let ctx = list.context;
        RecommendationListObject {
            recommendation_id: ID(list.id),
            profile: ctx.profile,
            experiment: ctx.experiment,
            variant: ctx.variant,
            placement: ctx.placement,
            items: list
                .items
                .into_iter()
                .enumerate()
                .map(|(i, item)| Recommendation {
                    position: i32::try_from(i + 1).unwrap_or(i32::MAX),
                    ..item.into()
                })
                .collect(),
            audience: r.into(),
        }
    }
}

/// The arguments every `recommendations` field takes besides its audience: the root field
/// and the fields of `Account` and `Contact` share them.
#[derive(Default)]
pub(super) struct RecommendArgs {
    pub first: Option<i32>,
    pub query: Option<String>,
    pub filter: Option<AssetFilterInput>,
    pub weights: Option<RankingWeightsInput>,
    pub diversify: Option<bool>,
    pub chosen: Chosen,
}

/// `recommendations` for an audience already parsed.
pub(super) async fn recommend_for(
    ctx: &Context<'_>,
    audience: AudienceRequest,
    args: RecommendArgs,
) -> ApiResult<RecommendationListObject> {
    let RecommendArgs {
        first,
        query,
        filter,
        weights,
        diversify,
        chosen,
    } = args;
    let library = library(ctx)?;
    let first = library.page_size(first.unwrap_or(DEFAULT_RECOMMENDATIONS))?;
    let list = library
        .recommend(RecommendationQuery {
            audience,
            first,
            text: query,
            filter: AssetFilterInput::parse(filter)?,
            weights: weights.map(Into::into).unwrap_or_default(),
            diversify: diversify.unwrap_or(DEFAULT_DIVERSIFY),
            profile: chosen.profile,
            placement: chosen.placement,
        })
        .await?;
    Ok(list.into())
}

/// The `profile` and `placement` arguments, checked.
#[derive(Default)]
pub(super) struct Chosen {
    profile: Option<String>,
    placement: Option<String>,
}

impl Chosen {
    fn parse(profile: Option<String>, placement: Option<String>) -> Result<Self, AppError> {
        let check = |what: &str, v: Option<String>| {
            v.map(|v| crate::domain::parse_name(what, &v).map_err(AppError::bad_input))
                .transpose()
        };
        Ok(Chosen {
            profile: check("profile", profile)?,
            placement: check("placement", placement)?,
        })
    }
}

impl AudienceInput {
    /// For a visitor token: the token's account and contact, where the audience names
    /// none. (The rule table already refused any other account or contact.)
    pub(super) fn for_visitor(&mut self, ctx: &Context<'_>) {
        let Some(visitor) = ctx
            .data_opt::<crate::services::Credential>()
            .and_then(|c| c.visitor())
        else {
            return;
        };
        if self.account_id.is_none() {
            self.account_id = Some(ID(visitor.account_id.clone()));
        }
        if self.contact_id.is_none() {
            self.contact_id = visitor.contact_id.clone().map(ID);
        }
    }
}

#[derive(Default)]
pub struct RecommendQuery;

#[Object]
impl RecommendQuery {
    /// The assets most likely to move this audience forward, best first, each with the
    /// reasons for its score. Only published assets, never those in
    /// `audience.excludeAssetIds`. `query` adds text relevance; `filter` restricts (a
    /// `statuses` other than `PUBLISHED` is refused with `BAD_USER_INPUT`);
    /// `weights` overrides the default weights for this request only; `diversify` mixes
    /// formats and topics among near-ties at the top. `includeConsumed` brings back what
    /// the account already engaged with, as on `Account.recommendations`
    /// (`audience.includeConsumed` says the same; given both, they must agree).
    /// `profile` ranks with a stored ranking profile (`rankingProfiles`); without it, a
    /// `placement` that runs an experiment ranks with the variant of the account (or
    /// contact) asking, and anything else with the `default` profile.
    // The arguments are the public contract (DESIGN.md section 3), one per GraphQL argument.
    #[allow(clippy::too_many_arguments)]
    #[graphql(
        cache_control(max_age = 60),
        complexity = "super::cost::page(first, DEFAULT_RECOMMENDATIONS, child_complexity)"
    )]
    async fn recommendations(
        &self,
        ctx: &Context<'_>,
        audience: AudienceInput,
        #[graphql(default_with = "Some(DEFAULT_RECOMMENDATIONS)")] first: Option<i32>,
        query: Option<String>,
        filter: Option<AssetFilterInput>,
        weights: Option<RankingWeightsInput>,
        #[graphql(default_with = "Some(DEFAULT_DIVERSIFY)")] diversify: Option<bool>,
        include_consumed: Option<bool>,
        profile: Option<String>,
        placement: Option<String>,
    ) -> ApiResult<RecommendationListObject> {
        let chosen = Chosen::parse(profile, placement)?;
        let mut audience = audience;
        audience.for_visitor(ctx);
        let in_audience = audience.include_consumed;
        let mut audience = audience.parse()?;
        audience.include_consumed = match (include_consumed, in_audience) {
            (Some(a), Some(b)) if a != b => {
                return Err(AppError::bad_input(
                    "includeConsumed and audience.includeConsumed disagree; give one",
                )
                .into());
            }
            (a, b) => a.or(b).unwrap_or(false),
        };
        if audience.account_id.is_some() || audience.contact_id.is_some() {
            // Built from one account's history: never stored or shared by a cache.
            ctx.insert_http_header("cache-control", PRIVATE);
        }
        let args = RecommendArgs {
            first,
            query,
            filter,
            weights,
            diversify,
            chosen,
        };
        recommend_for(ctx, audience, args).await
    }

    /// What to read after `afterAssetId`: the same subject, pulling the reader one stage
    /// forward, never the asset itself. Audience fields left out are taken from the asset
    /// (source `INFERRED`). `profile` and `placement` work as on `recommendations`.
    #[graphql(
        cache_control(max_age = 60),
        complexity = "super::cost::page(first, DEFAULT_NEXT_CONTENT, child_complexity)"
    )]
    async fn next_content(
        &self,
        ctx: &Context<'_>,
        after_asset_id: ID,
        audience: Option<AudienceInput>,
        #[graphql(default_with = "Some(DEFAULT_NEXT_CONTENT)")] first: Option<i32>,
        profile: Option<String>,
        placement: Option<String>,
    ) -> ApiResult<RecommendationListObject> {
        let chosen = Chosen::parse(profile, placement)?;
        let library = library(ctx)?;
        let first = library.page_size(first.unwrap_or(DEFAULT_NEXT_CONTENT))?;
        // Read once: the asset checked is the one read after.
        let after = super::library::visible_asset(ctx, &after_asset_id)
            .await?
            .ok_or_else(|| super::library::no_asset(&after_asset_id))?;
        let mut audience = audience.unwrap_or_default();
        audience.for_visitor(ctx);
        if audience.account_id.is_some() || audience.contact_id.is_some() {
            ctx.insert_http_header("cache-control", PRIVATE);
        }
        let request = audience.parse()?;
        Ok(library
            .next_content(
                after,
                request,
                first,
                chosen.profile.as_deref(),
                chosen.placement.as_deref(),
            )
            .await?
            .into())
    }
}
