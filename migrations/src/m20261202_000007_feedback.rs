//! The feedback loop: named ranking profiles, A/B experiments over them, the lists that were
//! shown (with the context they were ranked for), impressions and their outcomes, daily and
//! all-time rollups for analytics, and dismissals. Engagement events gain the list and position they
//! came from. Times are Unix seconds; days are Unix days (seconds / 86400).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RankingProfile {
    Table,
    Name,
    Weights,
    Description,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Experiment {
    Table,
    Name,
    Placement,
    Variants,
    StartedAt,
    StoppedAt,
}

#[derive(DeriveIden)]
enum ServedList {
    Table,
    Id,
    At,
    AccountId,
    Profile,
    Experiment,
    Variant,
    Context,
}

#[derive(DeriveIden)]
enum Impression {
    Table,
    ListId,
    AssetId,
    AccountId,
    Position,
    At,
    Clicked,
    Completed,
}

#[derive(DeriveIden)]
enum FeedbackDaily {
    Table,
    Day,
    AssetId,
    Profile,
    Experiment,
    Variant,
    Impressions,
    Clicks,
    Completions,
    Dismissals,
}

#[derive(DeriveIden)]
enum FeedbackTotal {
    Table,
    AssetId,
    Profile,
    Experiment,
    Variant,
    Impressions,
    Clicks,
    Completions,
    Dismissals,
}

#[derive(DeriveIden)]
enum Dismissal {
    Table,
    AccountId,
    AssetId,
    At,
}

#[derive(DeriveIden)]
enum Engagement {
    Table,
    RecommendationId,
    Position,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RankingProfile::Table)
                    .if_not_exists()
                    .col(string(RankingProfile::Name).primary_key())
                    .col(text(RankingProfile::Weights))
                    .col(text(RankingProfile::Description))
                    .col(big_integer(RankingProfile::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Experiment::Table)
                    .if_not_exists()
                    .col(string(Experiment::Name).primary_key())
                    .col(string(Experiment::Placement))
                    .col(text(Experiment::Variants))
                    .col(big_integer(Experiment::StartedAt))
                    .col(big_integer_null(Experiment::StoppedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ServedList::Table)
                    .if_not_exists()
                    .col(string(ServedList::Id).primary_key())
                    .col(big_integer(ServedList::At))
                    .col(string_null(ServedList::AccountId))
                    .col(string(ServedList::Profile))
                    .col(string(ServedList::Experiment))
                    .col(string(ServedList::Variant))
                    .col(text(ServedList::Context))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("served_list_at")
                    .table(ServedList::Table)
                    .col(ServedList::At)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Impression::Table)
                    .if_not_exists()
                    .col(string(Impression::ListId))
                    .col(string(Impression::AssetId))
                    .col(string_null(Impression::AccountId))
                    .col(integer(Impression::Position))
                    .col(big_integer(Impression::At))
                    .col(boolean(Impression::Clicked))
                    .col(boolean(Impression::Completed))
                    .primary_key(
                        Index::create()
                            .col(Impression::ListId)
                            .col(Impression::AssetId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("impression_at")
                    .table(Impression::Table)
                    .col(Impression::At)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("impression_account")
                    .table(Impression::Table)
                    .col(Impression::AccountId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FeedbackDaily::Table)
                    .if_not_exists()
                    .col(integer(FeedbackDaily::Day))
                    .col(string(FeedbackDaily::AssetId))
                    .col(string(FeedbackDaily::Profile))
                    .col(string(FeedbackDaily::Experiment))
                    .col(string(FeedbackDaily::Variant))
                    .col(big_integer(FeedbackDaily::Impressions))
                    .col(big_integer(FeedbackDaily::Clicks))
                    .col(big_integer(FeedbackDaily::Completions))
                    .col(big_integer(FeedbackDaily::Dismissals))
                    .primary_key(
                        Index::create()
                            .col(FeedbackDaily::Day)
                            .col(FeedbackDaily::AssetId)
                            .col(FeedbackDaily::Profile)
                            .col(FeedbackDaily::Experiment)
                            .col(FeedbackDaily::Variant),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                // Covers a span's sums per asset: without it, each row of the span is
                // looked up in the table (1.8 s against 0.25 s for 30 days of 10k assets).
                Index::create()
                    .name("feedback_daily_span")
                    .table(FeedbackDaily::Table)
                    .col(FeedbackDaily::Day)
                    .col(FeedbackDaily::AssetId)
                    .col(FeedbackDaily::Impressions)
                    .col(FeedbackDaily::Clicks)
                    .col(FeedbackDaily::Completions)
                    .col(FeedbackDaily::Dismissals)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FeedbackTotal::Table)
                    .if_not_exists()
                    .col(string(FeedbackTotal::AssetId))
                    .col(string(FeedbackTotal::Profile))
                    .col(string(FeedbackTotal::Experiment))
                    .col(string(FeedbackTotal::Variant))
                    .col(big_integer(FeedbackTotal::Impressions))
                    .col(big_integer(FeedbackTotal::Clicks))
                    .col(big_integer(FeedbackTotal::Completions))
                    .col(big_integer(FeedbackTotal::Dismissals))
                    .primary_key(
                        Index::create()
                            .col(FeedbackTotal::AssetId)
                            .col(FeedbackTotal::Profile)
                            .col(FeedbackTotal::Experiment)
                            .col(FeedbackTotal::Variant),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Dismissal::Table)
                    .if_not_exists()
                    .col(string(Dismissal::AccountId))
                    .col(string(Dismissal::AssetId))
                    .col(big_integer(Dismissal::At))
                    .primary_key(
                        Index::create()
                            .col(Dismissal::AccountId)
                            .col(Dismissal::AssetId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Engagement::Table)
                    .add_column(string_null(Engagement::RecommendationId))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Engagement::Table)
                    .add_column(integer_null(Engagement::Position))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            RankingProfile::Table.into_iden(),
            Experiment::Table.into_iden(),
            ServedList::Table.into_iden(),
            Impression::Table.into_iden(),
            FeedbackDaily::Table.into_iden(),
            FeedbackTotal::Table.into_iden(),
            Dismissal::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Engagement::Table)
                    .drop_column(Engagement::RecommendationId)
                    .drop_column(Engagement::Position)
                    .to_owned(),
            )
            .await
    }
}
