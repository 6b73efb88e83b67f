//! The content library: assets, their tags, the industry taxonomy and the change log that the
//! search index follows.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Asset {
    Table,
    Id,
    Title,
    Summary,
    Body,
    Url,
    ContentType,
    Language,
    PublishedAt,
    ReviewedAt,
    Evergreen,
    Gated,
    Status,
    ContentHash,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AssetTag {
    Table,
    AssetId,
    Kind,
    Value,
    Position,
}

#[derive(DeriveIden)]
enum Industry {
    Table,
    Slug,
    Label,
    Parent,
}

#[derive(DeriveIden)]
enum ChangeLog {
    Table,
    Seq,
    Entity,
    EntityId,
    Op,
    RecordedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Asset::Table)
                    .if_not_exists()
                    .col(string(Asset::Id).primary_key())
                    .col(text(Asset::Title))
                    .col(text(Asset::Summary))
                    .col(text(Asset::Body))
                    .col(text(Asset::Url))
                    .col(string(Asset::ContentType))
                    .col(string(Asset::Language))
                    .col(timestamp_with_time_zone_null(Asset::PublishedAt))
                    .col(timestamp_with_time_zone_null(Asset::ReviewedAt))
                    .col(boolean(Asset::Evergreen))
                    .col(boolean(Asset::Gated))
                    .col(string(Asset::Status))
                    .col(string(Asset::ContentHash))
                    .col(timestamp_with_time_zone(Asset::CreatedAt))
                    .col(timestamp_with_time_zone(Asset::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AssetTag::Table)
                    .if_not_exists()
                    .col(string(AssetTag::AssetId))
                    .col(string(AssetTag::Kind))
                    .col(string(AssetTag::Value))
                    .col(integer(AssetTag::Position))
                    .primary_key(
                        Index::create()
                            .col(AssetTag::AssetId)
                            .col(AssetTag::Kind)
                            .col(AssetTag::Value),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_asset_tag_asset")
                            .from(AssetTag::Table, AssetTag::AssetId)
                            .to(Asset::Table, Asset::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_asset_tag_kind_value")
                    .table(AssetTag::Table)
                    .col(AssetTag::Kind)
                    .col(AssetTag::Value)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Industry::Table)
                    .if_not_exists()
                    .col(string(Industry::Slug).primary_key())
                    .col(string(Industry::Label))
                    .col(string_null(Industry::Parent))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ChangeLog::Table)
                    .if_not_exists()
                    .col(big_pk_auto(ChangeLog::Seq))
                    .col(string(ChangeLog::Entity))
                    .col(string(ChangeLog::EntityId))
                    .col(string(ChangeLog::Op))
                    .col(timestamp_with_time_zone(ChangeLog::RecordedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ChangeLog::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Industry::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AssetTag::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Asset::Table).to_owned())
            .await
    }
}
