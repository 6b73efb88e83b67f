//! CRM stages in: the mapping from CRM opportunity stage names to buying stages, set by
//! the content team (whole, from a preset and/or entries) and read with the names
//! accounts carry that it does not map.

use super::Library;
use crate::domain::{CrmPreset, Stage, StageMapping};
use crate::error::{AppError, AppResult};

/// The mapping and what it misses.
pub struct StageMappingReport {
    /// CRM stage names as written, with their buying stage (`None`: no stage).
    pub entries: Vec<(String, Option<Stage>)>,
    /// Names accounts carry that the mapping does not know, with how many carry each.
    pub unmapped: Vec<(String, u64)>,
}

impl Library {
    pub async fn stage_mapping(&self) -> AppResult<StageMappingReport> {
        let mapping = self.store.stage_mapping().await?;
        let unmapped = self
            .store
            .crm_stages_in_use()
            .await?
            .into_iter()
            .filter(|(name, _)| mapping.lookup(name).is_none())
            .collect();
        Ok(StageMappingReport {
            entries: mapping
                .entries()
                .map(|(name, stage)| (name.to_owned(), stage))
                .collect(),
            unmapped,
        })
    }

    /// Replaces the mapping with `preset`'s names (if any), then `entries` (which win
    /// over the preset's). Accounts rank by it at once; their recorded stage settles at
    /// their next write.
    pub async fn set_stage_mapping(
        &self,
        preset: Option<CrmPreset>,
        entries: Vec<(String, Option<Stage>)>,
    ) -> AppResult<StageMappingReport> {
        // Checked alone first, so a problem names the entry as the caller numbered it.
        StageMapping::new(&entries).map_err(AppError::bad_input)?;
        let mut all: Vec<(String, Option<Stage>)> = preset
            .map(|p| {
                p.entries()
                    .iter()
                    .map(|(name, stage)| ((*name).to_owned(), *stage))
                    .collect()
            })
            .unwrap_or_default();
        all.extend(entries);
        let mapping = StageMapping::new(&all).map_err(AppError::bad_input)?;
        self.store.replace_stage_mapping(&mapping).await?;
        self.all_accounts_changed().await;
        self.stage_mapping().await
    }
}
