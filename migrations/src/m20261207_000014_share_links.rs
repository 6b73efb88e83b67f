//! Tracked share links: a link per recipient (a contact) to one asset, maybe from a
//! recommendation list, that counts who opened it. The link's token is never stored: `id`
//! is the SHA-256 of it (hex), so a copy of the database opens no link. Opens by people
//! and by scanners (mail security gateways, link unfurlers) are counted apart.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ShareLink {
    Table,
    Id,
    AccountId,
    ContactId,
    AssetId,
    RecommendationId,
    Position,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
    Opens,
    Scans,
    FirstOpenedAt,
    LastOpenedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ShareLink::Table)
                    .if_not_exists()
                    .col(string(ShareLink::Id).primary_key())
                    .col(string(ShareLink::AccountId))
                    .col(string(ShareLink::ContactId))
                    .col(string(ShareLink::AssetId))
                    .col(text_null(ShareLink::RecommendationId))
                    .col(integer_null(ShareLink::Position))
                    .col(big_integer(ShareLink::CreatedAt))
                    .col(big_integer(ShareLink::ExpiresAt))
                    .col(big_integer_null(ShareLink::RevokedAt))
                    .col(big_integer(ShareLink::Opens).default(0))
                    .col(big_integer(ShareLink::Scans).default(0))
                    .col(big_integer_null(ShareLink::FirstOpenedAt))
                    .col(big_integer_null(ShareLink::LastOpenedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("share_link_contact")
                    .table(ShareLink::Table)
                    .col(ShareLink::ContactId)
                    .col(ShareLink::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("share_link_account")
                    .table(ShareLink::Table)
                    .col(ShareLink::AccountId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ShareLink::Table).to_owned())
            .await
    }
}
