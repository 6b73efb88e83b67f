//! Rollups for analytics over spans: a span of days reads its first days from the daily
//! rollup and the weeks after them from the weekly one, so 90 days read at most 6 days and
//! 13 weeks per asset whatever the events.
//!
//! - `feedback_weekly(week, asset_id, impressions, clicks, completions, dismissals)`: the
//!   feedback of `feedback_daily` per week and asset, all profiles and variants together.
//! - `engagement_daily(day, asset_id, events)` and `engagement_weekly(week, asset_id,
//!   events)`: engagement events per asset, by the day they happened (Unix days) and by
//!   week (`day / 7`), kept when the events expire.
//!
//! Each has a covering index on (period, asset, counts), so a span is read from the index
//! alone. The rows are filled from what is stored.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum FeedbackWeekly {
    Table,
    Week,
    AssetId,
    Impressions,
    Clicks,
    Completions,
    Dismissals,
}

#[derive(DeriveIden, Clone, Copy)]
enum EngagementDaily {
    Table,
    Day,
    AssetId,
    Events,
}

#[derive(DeriveIden, Clone, Copy)]
enum EngagementWeekly {
    Table,
    Week,
    AssetId,
    Events,
}

async fn create(
    manager: &SchemaManager<'_>,
    table: TableCreateStatement,
    index: IndexCreateStatement,
) -> Result<(), DbErr> {
    manager.create_table(table).await?;
    manager.create_index(index).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use EngagementDaily as D;
        use EngagementWeekly as W;
        use FeedbackWeekly as F;
        create(
            manager,
            Table::create()
                .table(F::Table)
                .col(integer(F::Week))
                .col(string(F::AssetId))
                .col(big_integer(F::Impressions))
                .col(big_integer(F::Clicks))
                .col(big_integer(F::Completions))
                .col(big_integer(F::Dismissals))
                .primary_key(Index::create().col(F::Week).col(F::AssetId))
                .to_owned(),
            Index::create()
                .name("feedback_weekly_span")
                .table(F::Table)
                .col(F::Week)
                .col(F::AssetId)
                .col(F::Impressions)
                .col(F::Clicks)
                .col(F::Completions)
                .col(F::Dismissals)
                .to_owned(),
        )
        .await?;
        create(
            manager,
            Table::create()
                .table(D::Table)
                .col(integer(D::Day))
                .col(string(D::AssetId))
                .col(big_integer(D::Events))
                .primary_key(Index::create().col(D::Day).col(D::AssetId))
                .to_owned(),
            Index::create()
                .name("engagement_daily_span")
                .table(D::Table)
                .col(D::Day)
                .col(D::AssetId)
                .col(D::Events)
                .to_owned(),
        )
        .await?;
        create(
            manager,
            Table::create()
                .table(W::Table)
                .col(integer(W::Week))
                .col(string(W::AssetId))
                .col(big_integer(W::Events))
                .primary_key(Index::create().col(W::Week).col(W::AssetId))
                .to_owned(),
            Index::create()
                .name("engagement_weekly_span")
                .table(W::Table)
                .col(W::Week)
                .col(W::AssetId)
                .col(W::Events)
                .to_owned(),
        )
        .await?;
        let db = manager.get_connection();
        for fill in [
            "INSERT INTO feedback_weekly (week, asset_id, impressions, clicks, completions, dismissals) \
             SELECT day / 7, asset_id, SUM(impressions), SUM(clicks), SUM(completions), SUM(dismissals) \
             FROM feedback_daily WHERE day >= 0 GROUP BY day / 7, asset_id",
            "INSERT INTO engagement_daily (day, asset_id, events) \
             SELECT occurred_at / 86400, asset_id, COUNT(*) FROM engagement \
             WHERE occurred_at >= 0 GROUP BY occurred_at / 86400, asset_id",
            "INSERT INTO engagement_weekly (week, asset_id, events) \
             SELECT day / 7, asset_id, SUM(events) FROM engagement_daily GROUP BY day / 7, asset_id",
        ] {
            db.execute_unprepared(fill).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            FeedbackWeekly::Table.into_iden(),
            EngagementDaily::Table.into_iden(),
            EngagementWeekly::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
