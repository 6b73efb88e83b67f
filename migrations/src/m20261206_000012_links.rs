//! Links: `asset.links`, the links on an asset's page as written, one a line, in order
//! (empty for none). They are resolved against the library's addresses when a reader asks
//! what comes next, so a link to a page imported later reaches it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Asset {
    Table,
    Links,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Asset::Table)
                    .add_column(text(Asset::Links).default(""))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Asset::Table)
                    .drop_column(Asset::Links)
                    .to_owned(),
            )
            .await
    }
}
