//! A third rollup level, four weeks (block `b` holds weeks `4b` to `4b + 3`, Unix days
//! `28b` to `28b + 27`): a span reads its first days from the daily rows, then weeks up to
//! the first whole block, then blocks, so 90 days read at most 6 days, 3 weeks and 4
//! blocks per asset instead of 6 days and 13 weeks. Grouping the span's rows by asset is
//! what analytics over 100k assets spend their time on; fewer rows, less to sort.
//!
//! - `feedback_four_weekly(block, asset_id, impressions, clicks, completions, dismissals)`
//! - `engagement_four_weekly(block, asset_id, events)`
//!
//! Each with a covering index on (block, asset, counts), filled from the weekly rows.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum FeedbackFourWeekly {
    Table,
    Block,
    AssetId,
    Impressions,
    Clicks,
    Completions,
    Dismissals,
}

#[derive(DeriveIden, Clone, Copy)]
enum EngagementFourWeekly {
    Table,
    Block,
    AssetId,
    Events,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use EngagementFourWeekly as E;
        use FeedbackFourWeekly as F;
        manager
            .create_table(
                Table::create()
                    .table(F::Table)
                    .col(integer(F::Block))
                    .col(string(F::AssetId))
                    .col(big_integer(F::Impressions))
                    .col(big_integer(F::Clicks))
                    .col(big_integer(F::Completions))
                    .col(big_integer(F::Dismissals))
                    .primary_key(Index::create().col(F::Block).col(F::AssetId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("feedback_four_weekly_span")
                    .table(F::Table)
                    .col(F::Block)
                    .col(F::AssetId)
                    .col(F::Impressions)
                    .col(F::Clicks)
                    .col(F::Completions)
                    .col(F::Dismissals)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(E::Table)
                    .col(integer(E::Block))
                    .col(string(E::AssetId))
                    .col(big_integer(E::Events))
                    .primary_key(Index::create().col(E::Block).col(E::AssetId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("engagement_four_weekly_span")
                    .table(E::Table)
                    .col(E::Block)
                    .col(E::AssetId)
                    .col(E::Events)
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        for fill in [
            "INSERT INTO feedback_four_weekly (block, asset_id, impressions, clicks, completions, dismissals) \
             SELECT week / 4, asset_id, SUM(impressions), SUM(clicks), SUM(completions), SUM(dismissals) \
             FROM feedback_weekly WHERE week >= 0 GROUP BY week / 4, asset_id",
            "INSERT INTO engagement_four_weekly (block, asset_id, events) \
             SELECT week / 4, asset_id, SUM(events) FROM engagement_weekly \
             WHERE week >= 0 GROUP BY week / 4, asset_id",
        ] {
            db.execute_unprepared(fill).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            FeedbackFourWeekly::Table.into_iden(),
            EngagementFourWeekly::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
