//! Hardening:
//!
//! - `server_secret(name, value, created_at)`: secrets every replica shares, created once
//!   (the key that signs recommendation ids).
//! - `audit_event.count` and `audit_event.bucket`: refusals that can come in floods (401,
//!   429) are kept as one row per key or address, outcome and minute, named by `bucket`
//!   (unique; null for every row that stands for one request), with how many it stands for.
//! - Asset urls that start `//` or `/\` claimed to be site-relative but lead to another
//!   host; they are cleared, and the change log tells every index to read those assets
//!   again.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ServerSecret {
    Table,
    Name,
    Value,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AuditEvent {
    Table,
    Count,
    Bucket,
}

const BUCKET_INDEX: &str = "audit_event_bucket";

/// Assets whose url leaves the site while looking site-relative.
const OFF_SITE: &str = "substr(url, 1, 2) IN ('//', '/\\')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ServerSecret::Table)
                    .if_not_exists()
                    .col(string(ServerSecret::Name).primary_key())
                    .col(string(ServerSecret::Value))
                    .col(big_integer(ServerSecret::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AuditEvent::Table)
                    .add_column(big_integer(AuditEvent::Count).default(1))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AuditEvent::Table)
                    .add_column(string_null(AuditEvent::Bucket))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(BUCKET_INDEX)
                    .table(AuditEvent::Table)
                    .col(AuditEvent::Bucket)
                    .unique()
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "INSERT INTO change_log (entity, entity_id, op, recorded_at) \
             SELECT 'asset', id, 'upsert', CURRENT_TIMESTAMP FROM asset WHERE {OFF_SITE}"
        ))
        .await?;
        db.execute_unprepared(&format!("UPDATE asset SET url = '' WHERE {OFF_SITE}"))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(BUCKET_INDEX)
                    .table(AuditEvent::Table)
                    .to_owned(),
            )
            .await?;
        for column in [AuditEvent::Bucket, AuditEvent::Count] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AuditEvent::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(ServerSecret::Table).to_owned())
            .await
    }
}
