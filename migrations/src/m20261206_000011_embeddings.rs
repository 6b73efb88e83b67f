//! Embeddings: `asset_embedding(asset_id, model, text_hash, vectors)`, an asset's sentence
//! vectors under one model, so a restart or another replica loads them instead of running
//! the model again. `text_hash` names the text they were computed from; `vectors` holds
//! the int8 codes of the whole text's vector and the title's, then their two scales (f32,
//! little-endian). No foreign key: a row of a deleted asset is never read.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AssetEmbedding {
    Table,
    AssetId,
    Model,
    TextHash,
    Vectors,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AssetEmbedding::Table)
                    .if_not_exists()
                    .col(string(AssetEmbedding::AssetId))
                    .col(string(AssetEmbedding::Model))
                    .col(big_integer(AssetEmbedding::TextHash))
                    .col(blob(AssetEmbedding::Vectors))
                    .primary_key(
                        Index::create()
                            .col(AssetEmbedding::AssetId)
                            .col(AssetEmbedding::Model),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AssetEmbedding::Table).to_owned())
            .await
    }
}
