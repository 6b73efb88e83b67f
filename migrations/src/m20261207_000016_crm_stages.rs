//! CRM stages in: `account.crm_stage`, the CRM's opportunity stage by its own name, and
//! `stage_mapping`, CRM stage names (by their lookup key: trimmed, lowercase, single
//! spaces) to buying stages; a null stage maps a name to none (a lost deal).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Account {
    Table,
    CrmStage,
}

#[derive(DeriveIden)]
enum StageMapping {
    Table,
    Key,
    CrmStage,
    Stage,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Account::Table)
                    .add_column(string_null(Account::CrmStage))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(StageMapping::Table)
                    .if_not_exists()
                    .col(string(StageMapping::Key).primary_key())
                    .col(string(StageMapping::CrmStage))
                    .col(string_null(StageMapping::Stage))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(StageMapping::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Account::Table)
                    .drop_column(Account::CrmStage)
                    .to_owned(),
            )
            .await
    }
}
