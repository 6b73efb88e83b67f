//! Accounts, contacts and engagement: `account`, `accountExport`, `upsertAccount`,
//! `upsertContact`, `recordEngagement(s)`, `eraseAccount`, `refreshPopularity`.
//!
//! Everything here reads or writes one account's history, so every field is `no_cache`.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use super::ApiResult;
use super::library::library;
use super::recommend::{
    AudienceSourceEnum, RankingWeightsInput, RecommendArgs, Recommendation,
    RecommendationListObject, RoleName, StageName, recommend_for,
};
use super::types::{AssetFilterInput, AssetObject, PageInfo, RoleEnum, StageEnum};
use crate::domain::{AccountDraft, Contact, ContactDraft, EngagementDraft, EngagementKind, Given};
use crate::error::{AppError, AppResult};
use crate::services::StageInference;
use crate::services::{
    AccountProfile, AudienceRequest, AudienceSource, Committee, CommitteeMember, StoredEngagement,
};

const DEFAULT_ENGAGEMENT_PAGE: i32 = 50;
const DEFAULT_COMMITTEE_PICKS: i32 = 3;

/// Where an account's buying stage comes from.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "StageSource", remote = "crate::domain::StageSource")]
pub enum StageSourceEnum {
    /// The CRM's opportunity stage, through the stage mapping.
    Crm,
    /// The buying stage given as the account's `stage`.
    Declared,
    /// What the account's people read: further along than the CRM says, or with no
    /// stage from the CRM at all.
    Reading,
}

/// What an account or contact record looks like on the way in.
#[derive(InputObject)]
pub struct AccountInput {
    pub id: ID,
    pub name: String,
    /// Industry slug such as `financial-services/payments`.
    pub industry: Option<String>,
    /// The CRM's stage; leave it out when the CRM has none (it is then inferred from
    /// reading).
    pub stage: Option<StageName>,
    /// When the CRM set the stage. Left out: kept when the stage is unchanged, now when
    /// it changed.
    pub stage_updated_at: Option<DateTime<Utc>>,
    /// Free label such as `enterprise` or `mid-market`.
    pub tier: Option<String>,
    /// BCP-47 tag of the account's reading language.
    pub language: Option<String>,
    /// The CRM's opportunity stage by its own name (`Proposal/Price Quote`): mapped to a
    /// buying stage by `stageMapping`, it comes before `stage`.
    pub crm_stage: Option<String>,
}

impl From<AccountInput> for AccountDraft {
    fn from(a: AccountInput) -> Self {
        AccountDraft {
            id: Some(a.id.0),
            name: Some(a.name),
            industry: a.industry,
            stage: a.stage.map(|s| Given::Value(s.0)),
            stage_updated_at: a.stage_updated_at.map(Given::Value),
            tier: a.tier,
            language: a.language,
            crm_stage: a.crm_stage,
        }
    }
}

#[derive(InputObject)]
pub struct ContactInput {
    pub id: ID,
    pub account_id: ID,
    pub name: String,
    /// Their seat on the buying committee, when known.
    pub role: Option<RoleName>,
}

impl From<ContactInput> for ContactDraft {
    fn from(c: ContactInput) -> Self {
        ContactDraft {
            id: Some(c.id.0),
            account_id: Some(c.account_id.0),
            name: Some(c.name),
            role: c.role.map(|r| Given::Value(r.0)),
        }
    }
}

super::types::mirror_enum! {
    /// What a reader did with an asset.
    EngagementKindEnum as "EngagementKind" => EngagementKind { View, Download, Complete, Share }
}

#[derive(InputObject)]
pub struct EngagementInput {
    pub account_id: ID,
    /// The contact who engaged, when known.
    pub contact_id: Option<ID>,
    pub asset_id: ID,
    pub kind: EngagementKindEnum,
    /// When it happened; now when left out. More than five minutes ahead is refused.
    pub occurred_at: Option<DateTime<Utc>>,
    /// A client's own id for the event: sending the same id again for the account (a
    /// retry) records nothing new.
    pub client_event_id: Option<String>,
    /// The `recommendationId` of the list the asset was shown in: the event counts for
    /// that list (a click, and a completion when `kind` is `COMPLETE`) in analytics and
    /// experiments. A list shown to another account is refused.
    pub recommendation_id: Option<ID>,
    /// The asset's `position` in that list (1 for the first).
    pub position: Option<i32>,
}

impl From<EngagementInput> for EngagementDraft {
    fn from(e: EngagementInput) -> Self {
        EngagementDraft {
            account_id: Some(e.account_id.0),
            contact_id: e.contact_id.map(|c| c.0),
            asset_id: Some(e.asset_id.0),
            kind: Some(Given::Value(e.kind.into())),
            occurred_at: e.occurred_at.map(Given::Value),
            client_event_id: e.client_event_id,
            recommendation_id: e.recommendation_id.map(|id| id.0),
            position: e.position.map(i64::from),
        }
    }
}

/// A buying company with what stagefit knows of its journey.
pub struct AccountObject(pub Arc<AccountProfile>);

fn engagement_cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("e:{id}"))
}

fn decode_engagement_cursor(after: Option<&str>) -> AppResult<i64> {
    let Some(after) = after else { return Ok(0) };
    URL_SAFE_NO_PAD
        .decode(after)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("e:").and_then(|n| n.parse::<i64>().ok()))
        .ok_or_else(|| {
            AppError::bad_input(format!(
                "after: {after:?} is not a cursor returned by this API"
            ))
        })
}

#[Object(name = "Account", cache_control(no_cache))]
impl AccountObject {
    async fn id(&self) -> ID {
        ID(self.0.account.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.account.name
    }
    async fn industry(&self) -> Option<String> {
        self.0.account.industry.as_ref().map(ToString::to_string)
    }
    /// The CRM's stage, as last upserted.
    async fn stage(&self) -> Option<StageEnum> {
        self.0.account.stage.map(Into::into)
    }
    async fn stage_updated_at(&self) -> Option<DateTime<Utc>> {
        self.0.account.stage_updated_at
    }
    async fn tier(&self) -> Option<&str> {
        self.0.account.tier.as_deref()
    }
    async fn language(&self) -> Option<String> {
        self.0.account.language.as_ref().map(ToString::to_string)
    }
    async fn contacts(&self) -> Vec<ContactObject> {
        self.0.contacts.iter().cloned().map(ContactObject).collect()
    }
    /// The stage recommendations use when a request gives none: the CRM's, unless it is
    /// missing or reading newer than it points elsewhere with confidence of at least 0.5.
    async fn journey_stage(&self) -> Option<StageEnum> {
        self.0.journey.map(|(s, _)| s.into())
    }
    /// The CRM's opportunity stage by its own name, as last upserted.
    async fn crm_stage(&self) -> Option<&str> {
        self.0.account.crm_stage.as_deref()
    }
    /// Where `journeyStage` comes from: `CRM` (the CRM stage through `stageMapping`),
    /// `DECLARED` (`stage`) or `READING`; null when nothing says anything.
    async fn stage_source(&self) -> Option<StageSourceEnum> {
        self.0.stage_source.map(Into::into)
    }
    /// `ACCOUNT` (the CRM) or `INFERRED` (reading); null when neither says anything.
    async fn journey_stage_source(&self) -> Option<AudienceSourceEnum> {
        self.0.journey.map(|(_, inferred)| {
            if inferred {
                AudienceSource::Inferred.into()
            } else {
                AudienceSource::Account.into()
            }
        })
    }
    /// Where the account's reading of the last 180 days points, whatever the CRM says.
    async fn inferred_stage(&self) -> Option<StageInferenceObject> {
        self.0.inference.clone().map(StageInferenceObject)
    }
    /// Every asset the account engaged with (recommendations leave them out), also those
    /// whose events the server's engagement retention removed.
    async fn consumed_asset_ids(&self) -> Vec<ID> {
        self.0.consumed.iter().cloned().map(ID).collect()
    }
    /// The account's events the server still keeps (its engagement retention, 395 days
    /// unless configured, removes older ones).
    async fn engagement_count(&self) -> u64 {
        self.0.engagement_count
    }
    /// The newest events (at most 20), newest first.
    async fn recent_engagements(&self) -> Vec<EngagementObject> {
        self.0
            .recent
            .iter()
            .cloned()
            .map(EngagementObject)
            .collect()
    }
    /// Every event kept (see `engagementCount`) in the order it was recorded, a page at a
    /// time.
    #[graphql(complexity = "super::cost::page(first, 20, child_complexity)")]
    async fn engagements(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(DEFAULT_ENGAGEMENT_PAGE)")] first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<EngagementPage> {
        let library = library(ctx)?;
        let first = library.page_size(first.unwrap_or(DEFAULT_ENGAGEMENT_PAGE))?;
        let after = decode_engagement_cursor(after.as_deref())?;
        let (items, more) = library
            .account_engagements(self.0.account.id.as_str(), after, first)
            .await?;
        Ok(EngagementPage {
            page_info: PageInfo {
                end_cursor: items.last().map(|e| engagement_cursor(e.id)),
                has_next_page: more,
            },
            items: items.into_iter().map(EngagementObject).collect(),
        })
    }
    /// Recommendations for the account as a whole (no contact's role); the arguments are
    /// those of `Query.recommendations`.
    // One Rust argument per GraphQL argument: the public contract.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "super::cost::page(first, 10, child_complexity)")]
    async fn recommendations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(10)")] first: Option<i32>,
        query: Option<String>,
        filter: Option<AssetFilterInput>,
        weights: Option<RankingWeightsInput>,
        #[graphql(default_with = "Some(true)")] diversify: Option<bool>,
        #[graphql(default_with = "Some(false)")] include_consumed: Option<bool>,
    ) -> ApiResult<RecommendationListObject> {
        let audience = AudienceRequest {
            account_id: Some(self.0.account.id.to_string()),
            include_consumed: include_consumed.unwrap_or(false),
            ..Default::default()
        };
        let args = RecommendArgs {
            first,
            query,
            filter,
            weights,
            diversify,
            ..Default::default()
        };
        recommend_for(ctx, audience, args).await
    }
    /// The buying committee: every role with the contacts in it and what they engaged
    /// with, and for each contact their next best assets. An asset another contact of the
    /// account already has (picked for them above, or read by them) is not a contact's
    /// first pick unless it leads the next candidate by more than 10% of its score.
    #[graphql(complexity = "super::cost::page(first, 3, child_complexity.saturating_mul(5))")]
    async fn committee(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(DEFAULT_COMMITTEE_PICKS)")] first: Option<i32>,
        #[graphql(default_with = "Some(false)")] include_consumed: Option<bool>,
    ) -> ApiResult<CommitteeObject> {
        let library = library(ctx)?;
        let first = library.page_size(first.unwrap_or(DEFAULT_COMMITTEE_PICKS))?;
        Ok(CommitteeObject(
            library
                .committee(&self.0, first, include_consumed.unwrap_or(false))
                .await?,
        ))
    }
}

/// A person at an account.
pub struct ContactObject(pub Contact);

#[Object(name = "Contact", cache_control(no_cache))]
impl ContactObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn account_id(&self) -> ID {
        ID(self.0.account_id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn role(&self) -> Option<RoleEnum> {
        self.0.role.map(Into::into)
    }
    /// Recommendations for this contact: the account's stage, industry and language,
    /// their role, leaving out what the account read.
    // One Rust argument per GraphQL argument: the public contract.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "super::cost::page(first, 10, child_complexity)")]
    async fn recommendations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(10)")] first: Option<i32>,
        query: Option<String>,
        filter: Option<AssetFilterInput>,
        weights: Option<RankingWeightsInput>,
        #[graphql(default_with = "Some(true)")] diversify: Option<bool>,
        #[graphql(default_with = "Some(false)")] include_consumed: Option<bool>,
    ) -> ApiResult<RecommendationListObject> {
        let audience = AudienceRequest {
            account_id: Some(self.0.account_id.to_string()),
            contact_id: Some(self.0.id.to_string()),
            include_consumed: include_consumed.unwrap_or(false),
            ..Default::default()
        };
        let args = RecommendArgs {
            first,
            query,
            filter,
            weights,
            diversify,
            ..Default::default()
        };
        recommend_for(ctx, audience, args).await
    }
}

/// One engagement event.
pub struct EngagementObject(pub StoredEngagement);

#[Object(name = "Engagement", cache_control(no_cache))]
impl EngagementObject {
    /// The order it was recorded in.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn account_id(&self) -> ID {
        ID(self.0.engagement.account_id.to_string())
    }
    async fn contact_id(&self) -> Option<ID> {
        self.0
            .engagement
            .contact_id
            .as_ref()
            .map(|c| ID(c.to_string()))
    }
    async fn asset_id(&self) -> ID {
        ID(self.0.engagement.asset_id.to_string())
    }
    /// The asset, published or retired; null if it is gone, or (below an editor key) a
    /// draft again.
    async fn asset(&self, ctx: &Context<'_>) -> ApiResult<Option<AssetObject>> {
        Ok(
            super::library::visible_asset(ctx, self.0.engagement.asset_id.as_str())
                .await?
                .map(AssetObject::from),
        )
    }
    async fn kind(&self) -> EngagementKindEnum {
        self.0.engagement.kind.into()
    }
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.engagement.occurred_at
    }
    async fn client_event_id(&self) -> Option<&str> {
        self.0.engagement.client_event_id.as_deref()
    }
}

#[derive(SimpleObject)]
pub struct EngagementPage {
    pub items: Vec<EngagementObject>,
    pub page_info: PageInfo,
}

/// Where an account's reading points, how sure that is, and why.
pub struct StageInferenceObject(StageInference);

#[derive(SimpleObject)]
pub struct StageWeight {
    pub stage: StageEnum,
    pub weight: f64,
}

/// One event that counted toward an inference.
#[derive(SimpleObject)]
pub struct StageEvidence {
    pub asset_id: ID,
    pub stages: Vec<StageEnum>,
    pub kind: EngagementKindEnum,
    pub occurred_at: DateTime<Utc>,
    /// Depth x recency: COMPLETE 3, SHARE 2.5, DOWNLOAD 2, VIEW 1, halved every 30 days.
    pub weight: f64,
}

#[Object(name = "StageInference", cache_control(no_cache))]
impl StageInferenceObject {
    async fn stage(&self) -> StageEnum {
        self.0.stage.into()
    }
    /// 0 to 1: the stage's share of the evidence, damped while the evidence is thin.
    async fn confidence(&self) -> f64 {
        self.0.confidence
    }
    async fn stage_weights(&self) -> Vec<StageWeight> {
        self.0
            .stage_weights
            .iter()
            .map(|(stage, weight)| StageWeight {
                stage: (*stage).into(),
                weight: *weight,
            })
            .collect()
    }
    /// The heaviest events (at most ten), heaviest first.
    async fn evidence(&self) -> Vec<StageEvidence> {
        self.0
            .evidence
            .iter()
            .map(|e| StageEvidence {
                asset_id: ID(e.reading.asset_id.clone()),
                stages: e.reading.stages.iter().map(|s| (*s).into()).collect(),
                kind: e.reading.kind.into(),
                occurred_at: e.reading.occurred_at,
                weight: e.weight,
            })
            .collect()
    }
    async fn latest_evidence_at(&self) -> DateTime<Utc> {
        self.0.latest
    }
}

pub struct CommitteeObject(Committee);

#[derive(SimpleObject)]
#[graphql(cache_control(no_cache))]
pub struct CommitteeRoleObject {
    pub role: RoleEnum,
    pub contacts: Vec<ContactObject>,
    /// Whether any contact in the role engaged with anything.
    pub engaged: bool,
    /// Distinct assets the role's contacts engaged with.
    pub assets_engaged: u64,
}

pub struct CommitteeMemberObject(CommitteeMember);

#[Object(name = "CommitteeMember", cache_control(no_cache))]
impl CommitteeMemberObject {
    async fn contact(&self) -> ContactObject {
        ContactObject(self.0.contact.clone())
    }
    /// Distinct assets this contact engaged with.
    async fn assets_engaged(&self) -> u64 {
        self.0.assets_engaged as u64
    }
    async fn recommendations(&self) -> Vec<Recommendation> {
        self.0
            .recommendations
            .iter()
            .cloned()
            .map(Into::into)
            .collect()
    }
    /// The asset that ranked first for this contact but was moved down because another
    /// contact already has it.
    async fn deferred_asset_id(&self) -> Option<ID> {
        self.0.deferred.clone().map(ID)
    }
}

#[Object(name = "Committee", cache_control(no_cache))]
impl CommitteeObject {
    /// Every role of the committee, in taxonomy order, filled or not.
    async fn roles(&self) -> Vec<CommitteeRoleObject> {
        self.0
            .roles
            .iter()
            .map(|r| CommitteeRoleObject {
                role: r.role.into(),
                contacts: r.contacts.iter().cloned().map(ContactObject).collect(),
                engaged: r.assets_engaged > 0,
                assets_engaged: r.assets_engaged as u64,
            })
            .collect()
    }
    /// Roles without any contact: seats nobody at the account is known to fill.
    async fn missing_roles(&self) -> Vec<RoleEnum> {
        self.0
            .roles
            .iter()
            .filter(|r| r.contacts.is_empty())
            .map(|r| r.role.into())
            .collect()
    }
    /// Contacts in role order (decision makers first), with their next best assets.
    async fn members(&self) -> Vec<CommitteeMemberObject> {
        self.0
            .members
            .iter()
            .cloned()
            .map(CommitteeMemberObject)
            .collect()
    }
}

/// Everything stored about an account.
#[derive(SimpleObject)]
#[graphql(cache_control(no_cache))]
pub struct AccountExportObject {
    pub account: AccountObject,
    pub engagements: Vec<EngagementObject>,
}

#[derive(SimpleObject)]
pub struct EngagementReceiptObject {
    /// Events written now.
    pub recorded: u64,
    /// Events whose `clientEventId` the account had already used: recorded before.
    pub duplicates: u64,
}

#[derive(SimpleObject)]
pub struct AccountErasure {
    pub account_id: ID,
    pub engagements_erased: u64,
}

#[derive(SimpleObject)]
pub struct PopularityRefresh {
    /// Events read.
    pub events: u64,
    /// Cohorts with a popularity value after the rebuild.
    pub cohorts: u64,
    /// Asset values they hold (at most 16 per cohort).
    pub assets: u64,
}

#[derive(Default)]
pub struct AccountQuery;

// Field by field: an object-level setting would apply to the whole merged Query type.
#[Object]
impl AccountQuery {
    /// An account, or null when there is none with this id.
    #[graphql(cache_control(no_cache))]
    async fn account(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<AccountObject>> {
        // Everything below carries the account's data: never stored by a shared cache.
        ctx.insert_http_header("cache-control", super::recommend::PRIVATE);
        Ok(library(ctx)?.account_profile(&id).await?.map(AccountObject))
    }

    /// Everything stored about an account (record, contacts, every event kept), for a
    /// data-subject request. `NOT_FOUND` when there is no such account.
    #[graphql(cache_control(no_cache))]
    async fn account_export(&self, ctx: &Context<'_>, id: ID) -> ApiResult<AccountExportObject> {
        ctx.insert_http_header("cache-control", super::recommend::PRIVATE);
        let export = library(ctx)?.export_account(&id).await?;
        Ok(AccountExportObject {
            account: AccountObject(export.profile),
            engagements: export
                .engagements
                .into_iter()
                .map(EngagementObject)
                .collect(),
        })
    }
}

#[derive(Default)]
pub struct AccountMutation;

#[Object(cache_control(no_cache))]
impl AccountMutation {
    /// Creates or replaces an account by id.
    async fn upsert_account(
        &self,
        ctx: &Context<'_>,
        account: AccountInput,
    ) -> ApiResult<AccountObject> {
        let library = library(ctx)?;
        let stored = library.upsert_accounts(vec![account.into()]).await?;
        let id = stored
            .first()
            .map(|a| a.id.to_string())
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("upsert returned no account")))?;
        Ok(AccountObject(library.require_account(&id).await?))
    }

    /// Creates or replaces a contact by id; the account must exist (`NOT_FOUND`).
    async fn upsert_contact(
        &self,
        ctx: &Context<'_>,
        contact: ContactInput,
    ) -> ApiResult<ContactObject> {
        let mut stored = library(ctx)?.upsert_contacts(vec![contact.into()]).await?;
        stored
            .pop()
            .map(ContactObject)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("upsert returned no contact")).into())
    }

    /// Records one event. Unknown accounts, contacts or assets are `NOT_FOUND`; a time in
    /// the future is `BAD_USER_INPUT`. Stored durably before the answer.
    async fn record_engagement(
        &self,
        ctx: &Context<'_>,
        event: EngagementInput,
    ) -> ApiResult<EngagementReceiptObject> {
        receipt(ctx, vec![event]).await
    }

    /// Records up to 1,000 events, all or none.
    async fn record_engagements(
        &self,
        ctx: &Context<'_>,
        events: Vec<EngagementInput>,
    ) -> ApiResult<EngagementReceiptObject> {
        receipt(ctx, events).await
    }

    /// Deletes an account with its contacts and every event, and subtracts its share from
    /// every popularity and co-read counter in the same transaction, so no aggregate counts
    /// it any more. The index never held them.
    async fn erase_account(&self, ctx: &Context<'_>, id: ID) -> ApiResult<AccountErasure> {
        let erased = library(ctx)?.erase_account(&id).await?;
        Ok(AccountErasure {
            account_id: id,
            engagements_erased: erased,
        })
    }

    /// Rebuilds the popularity and co-read counters from the stored events: a repair (the
    /// counters move with every event). Events removed by retention no longer count.
    async fn refresh_popularity(&self, ctx: &Context<'_>) -> ApiResult<PopularityRefresh> {
        let stats = library(ctx)?.rebuild_popularity().await?;
        Ok(PopularityRefresh {
            events: stats.events,
            cohorts: stats.cohorts,
            assets: stats.assets,
        })
    }
}

async fn receipt(
    ctx: &Context<'_>,
    events: Vec<EngagementInput>,
) -> ApiResult<EngagementReceiptObject> {
    let receipt = library(ctx)?
        .record_engagements(events.into_iter().map(Into::into).collect())
        .await?;
    Ok(EngagementReceiptObject {
        recorded: receipt.recorded,
        duplicates: receipt.duplicates,
    })
}
