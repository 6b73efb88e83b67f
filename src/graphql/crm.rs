//! CRM stages in (an editor key): which CRM opportunity stage names mean which buying
//! stage, and which names accounts carry that nothing maps.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};

use super::ApiResult;
use super::library::library;
use super::types::StageEnum;
use crate::services::StageMappingReport;

/// The default pipeline of a CRM, mapped to buying stages (see the README's table).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::CrmPreset")]
pub enum CrmPreset {
    /// Salesforce's default opportunity stages.
    Salesforce,
    /// HubSpot's default deal pipeline (labels and internal names).
    #[graphql(name = "HUBSPOT")]
    HubSpot,
}

/// One CRM stage name and its buying stage (null: it says nothing of one, as a lost deal).
#[derive(SimpleObject, InputObject)]
#[graphql(input_name = "StageMappingInput")]
pub struct StageMappingEntry {
    pub crm_stage: String,
    pub stage: Option<StageEnum>,
}

/// A CRM stage name accounts carry that the mapping does not know.
#[derive(SimpleObject)]
pub struct UnmappedCrmStage {
    pub crm_stage: String,
    pub accounts: u64,
}

#[derive(SimpleObject)]
pub struct StageMapping {
    pub entries: Vec<StageMappingEntry>,
    pub unmapped: Vec<UnmappedCrmStage>,
}

impl From<StageMappingReport> for StageMapping {
    fn from(r: StageMappingReport) -> Self {
        StageMapping {
            entries: r
                .entries
                .into_iter()
                .map(|(crm_stage, stage)| StageMappingEntry {
                    crm_stage,
                    stage: stage.map(Into::into),
                })
                .collect(),
            unmapped: r
                .unmapped
                .into_iter()
                .map(|(crm_stage, accounts)| UnmappedCrmStage {
                    crm_stage,
                    accounts,
                })
                .collect(),
        }
    }
}

#[derive(Default)]
pub struct CrmQuery;

#[Object]
impl CrmQuery {
    /// CRM stage names and the buying stages they mean; names accounts carry that it
    /// does not map are listed apart (those accounts rank by their `stage` or reading).
    #[graphql(cache_control(no_cache))]
    async fn stage_mapping(&self, ctx: &Context<'_>) -> ApiResult<StageMapping> {
        Ok(library(ctx)?.stage_mapping().await?.into())
    }
}

#[derive(Default)]
pub struct CrmMutation;

#[Object]
impl CrmMutation {
    /// Replaces the mapping: `preset`'s names (if given), then `entries` (which win over
    /// the preset's). Names match whatever their case and spacing; at most 200.
    #[graphql(cache_control(no_cache))]
    async fn set_stage_mapping(
        &self,
        ctx: &Context<'_>,
        preset: Option<CrmPreset>,
        #[graphql(default)] entries: Vec<StageMappingEntry>,
    ) -> ApiResult<StageMapping> {
        let entries = entries
            .into_iter()
            .map(|e| (e.crm_stage, e.stage.map(Into::into)))
            .collect();
        Ok(library(ctx)?
            .set_stage_mapping(preset.map(Into::into), entries)
            .await?
            .into())
    }
}
