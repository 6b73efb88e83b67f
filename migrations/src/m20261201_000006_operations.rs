//! Safelisted operations: GraphQL documents registered by an operator, known by the
//! SHA-256 of their text. Public pages may be restricted to running only these.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SafelistedOperation {
    Table,
    Hash,
    Document,
    Name,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SafelistedOperation::Table)
                    .if_not_exists()
                    .col(string(SafelistedOperation::Hash).primary_key())
                    .col(text(SafelistedOperation::Document))
                    .col(text(SafelistedOperation::Name))
                    .col(timestamp_with_time_zone(SafelistedOperation::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SafelistedOperation::Table).to_owned())
            .await
    }
}
