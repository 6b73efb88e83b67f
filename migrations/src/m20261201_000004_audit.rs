//! The audit trail: every mutation and every refused request, with the key that made it
//! (by id, never its secret). Times are Unix seconds.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditEvent {
    Table,
    Id,
    At,
    KeyId,
    Operation,
    Client,
    Status,
    Outcome,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvent::Table)
                    .if_not_exists()
                    .col(big_pk_auto(AuditEvent::Id))
                    .col(big_integer(AuditEvent::At))
                    .col(string_null(AuditEvent::KeyId))
                    .col(text(AuditEvent::Operation))
                    .col(string_null(AuditEvent::Client))
                    .col(integer(AuditEvent::Status))
                    .col(string(AuditEvent::Outcome))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditEvent::Table).to_owned())
            .await
    }
}
