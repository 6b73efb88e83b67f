//! Engagement counters kept as events arrive, replacing the periodic recompute of
//! `asset_popularity` (dropped here; the server fills the new tables from the stored
//! events when they are empty).
//!
//! Weights are in growing units: an event's weight is its depth times 2^((t - epoch) / half
//! life), so a sum never needs rescanning to decay; a reader scales it back by the same
//! factor at its own time.
//!
//! - `popularity_share`: what one account adds to one asset's popularity in one cohort
//!   (its heaviest event), and when it first read the asset: what an update compares
//!   with, what an erasure subtracts, and the account's recent reads for co-reads.
//! - `popularity_count`: the sums per cohort and asset, with the number of accounts.
//! - `popularity_cohort`: the cohorts that have counts (read by every replica's poll).
//! - `co_read`: per asset, cohort and later asset, the accounts that read the later one
//!   within a window after the first, with their decayed weight.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PopularityShare {
    Table,
    AccountId,
    AssetId,
    Cohort,
    Weight,
    FirstAt,
}

#[derive(DeriveIden)]
enum PopularityCount {
    Table,
    Cohort,
    AssetId,
    Score,
    Accounts,
}

#[derive(DeriveIden)]
enum PopularityCohort {
    Table,
    Cohort,
}

#[derive(DeriveIden)]
enum CoRead {
    Table,
    AssetId,
    Cohort,
    NextId,
    Weight,
    Accounts,
}

#[derive(DeriveIden)]
enum AssetPopularity {
    Table,
    Cohort,
    AssetId,
    Value,
    RefreshedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PopularityShare::Table)
                    .if_not_exists()
                    .col(string(PopularityShare::AccountId))
                    .col(string(PopularityShare::AssetId))
                    .col(string(PopularityShare::Cohort))
                    .col(double(PopularityShare::Weight))
                    .col(big_integer(PopularityShare::FirstAt))
                    .primary_key(
                        Index::create()
                            .col(PopularityShare::AccountId)
                            .col(PopularityShare::AssetId)
                            .col(PopularityShare::Cohort),
                    )
                    .to_owned(),
            )
            .await?;
        // An account's recent reads, newest first.
        manager
            .create_index(
                Index::create()
                    .name("popularity_share_recent")
                    .table(PopularityShare::Table)
                    .col(PopularityShare::AccountId)
                    .col(PopularityShare::FirstAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PopularityCount::Table)
                    .if_not_exists()
                    .col(string(PopularityCount::Cohort))
                    .col(string(PopularityCount::AssetId))
                    .col(double(PopularityCount::Score))
                    .col(big_integer(PopularityCount::Accounts))
                    .primary_key(
                        Index::create()
                            .col(PopularityCount::Cohort)
                            .col(PopularityCount::AssetId),
                    )
                    .to_owned(),
            )
            .await?;
        // A cohort's best assets.
        manager
            .create_index(
                Index::create()
                    .name("popularity_count_best")
                    .table(PopularityCount::Table)
                    .col(PopularityCount::Cohort)
                    .col(PopularityCount::Score)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PopularityCohort::Table)
                    .if_not_exists()
                    .col(string(PopularityCohort::Cohort).primary_key())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CoRead::Table)
                    .if_not_exists()
                    .col(string(CoRead::AssetId))
                    .col(string(CoRead::Cohort))
                    .col(string(CoRead::NextId))
                    .col(double(CoRead::Weight))
                    .col(big_integer(CoRead::Accounts))
                    .primary_key(
                        Index::create()
                            .col(CoRead::AssetId)
                            .col(CoRead::Cohort)
                            .col(CoRead::NextId),
                    )
                    .to_owned(),
            )
            .await?;
        // No index on the weight: an asset's neighbours in a cohort are a prefix of the
        // key, at most 50 after each prune, sorted when read (an index would add a third
        // of the table's size to every pair's write).
        manager
            .drop_table(
                Table::drop()
                    .table(AssetPopularity::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PopularityShare::Table.into_iden(),
            PopularityCount::Table.into_iden(),
            PopularityCohort::Table.into_iden(),
            CoRead::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AssetPopularity::Table)
                    .if_not_exists()
                    .col(string(AssetPopularity::Cohort))
                    .col(string(AssetPopularity::AssetId))
                    .col(double(AssetPopularity::Value))
                    .col(big_integer(AssetPopularity::RefreshedAt))
                    .primary_key(
                        Index::create()
                            .col(AssetPopularity::Cohort)
                            .col(AssetPopularity::AssetId),
                    )
                    .to_owned(),
            )
            .await
    }
}
