//! The CRM stage mapping: replaced whole, read whole (it is small), and the CRM stage
//! names accounts carry, counted, so the content team sees which are not mapped.

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::entity::{account, stage_mapping};
use super::{Store, corrupt};
use crate::domain::{Stage, StageMapping, TaxonomyValue, crm_stage_key};
use crate::error::AppResult;

impl Store {
    /// The mapping as stored.
    pub async fn stage_mapping(&self) -> AppResult<StageMapping> {
        let rows = stage_mapping::Entity::find()
            .order_by_asc(stage_mapping::Column::Key)
            .all(&self.db)
            .await?;
        let mut entries = Vec::with_capacity(rows.len());
        for r in rows {
            let stage = r
                .stage
                .map(|s| corrupt(Stage::parse(&s), "stage_mapping.stage"))
                .transpose()?;
            entries.push((r.crm_stage, stage));
        }
        StageMapping::new(&entries).map_err(|e| {
            crate::error::AppError::internal(anyhow::anyhow!("stored data: stage_mapping: {e}"))
        })
    }

    /// What one CRM stage name maps to: `None` when it is not mapped, `Some(None)` when it
    /// is mapped to no stage.
    pub async fn crm_stage_mapped(&self, crm_stage: &str) -> AppResult<Option<Option<Stage>>> {
        let Some(row) = stage_mapping::Entity::find_by_id(crm_stage_key(crm_stage))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(
            row.stage
                .map(|s| corrupt(Stage::parse(&s), "stage_mapping.stage"))
                .transpose()?,
        ))
    }

    /// Replaces the whole mapping in one transaction.
    pub async fn replace_stage_mapping(&self, mapping: &StageMapping) -> AppResult<()> {
        let txn = self.begin_txn().await?;
        stage_mapping::Entity::delete_many()
            .exec(txn.conn())
            .await?;
        let rows: Vec<_> = mapping
            .entries()
            .map(|(name, stage)| stage_mapping::ActiveModel {
                key: Set(crm_stage_key(name)),
                crm_stage: Set(name.to_owned()),
                stage: Set(stage.map(|s| s.name().to_owned())),
            })
            .collect();
        if !rows.is_empty() {
            stage_mapping::Entity::insert_many(rows)
                .exec_without_returning(txn.conn())
                .await?;
        }
        txn.commit().await
    }

    /// The CRM stage names accounts carry, each with how many accounts carry it.
    pub async fn crm_stages_in_use(&self) -> AppResult<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> = account::Entity::find()
            .select_only()
            .column(account::Column::CrmStage)
            .column_as(account::Column::Id.count(), "accounts")
            .filter(account::Column::CrmStage.is_not_null())
            .group_by(account::Column::CrmStage)
            .order_by_asc(account::Column::CrmStage)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(name, n)| (name, u64::try_from(n).unwrap_or(0)))
            .collect())
    }
}
