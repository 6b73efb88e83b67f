//! Accounts, their contacts, engagement events and the popularity side table.
//!
//! None of these feed the search index, so none of them is written to the change log.
//! Engagement times are Unix seconds: the table is the largest in the database and the
//! popularity refresh compares them by the million.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Account {
    Table,
    Id,
    Name,
    Industry,
    Stage,
    StageUpdatedAt,
    Tier,
    Language,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Contact {
    Table,
    Id,
    AccountId,
    Name,
    Role,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Engagement {
    Table,
    Id,
    AccountId,
    ContactId,
    AssetId,
    Kind,
    OccurredAt,
    ClientEventId,
    Cohort,
    RecordedAt,
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
                    .table(Account::Table)
                    .if_not_exists()
                    .col(string(Account::Id).primary_key())
                    .col(text(Account::Name))
                    .col(string_null(Account::Industry))
                    .col(string_null(Account::Stage))
                    .col(timestamp_with_time_zone_null(Account::StageUpdatedAt))
                    .col(string_null(Account::Tier))
                    .col(string_null(Account::Language))
                    .col(timestamp_with_time_zone(Account::CreatedAt))
                    .col(timestamp_with_time_zone(Account::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Contact::Table)
                    .if_not_exists()
                    .col(string(Contact::Id).primary_key())
                    .col(string(Contact::AccountId))
                    .col(text(Contact::Name))
                    .col(string_null(Contact::Role))
                    .col(timestamp_with_time_zone(Contact::CreatedAt))
                    .col(timestamp_with_time_zone(Contact::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_contact_account")
                            .from(Contact::Table, Contact::AccountId)
                            .to(Account::Table, Account::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_contact_account")
                    .table(Contact::Table)
                    .col(Contact::AccountId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Engagement::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Engagement::Id))
                    .col(string(Engagement::AccountId))
                    .col(string_null(Engagement::ContactId))
                    .col(string(Engagement::AssetId))
                    .col(string(Engagement::Kind))
                    .col(big_integer(Engagement::OccurredAt))
                    .col(string_null(Engagement::ClientEventId))
                    .col(string(Engagement::Cohort))
                    .col(big_integer(Engagement::RecordedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_engagement_account_time")
                    .table(Engagement::Table)
                    .col(Engagement::AccountId)
                    .col(Engagement::OccurredAt)
                    .to_owned(),
            )
            .await?;
        // A client retrying an event with the same id records it once.
        manager
            .create_index(
                Index::create()
                    .name("idx_engagement_client_event")
                    .table(Engagement::Table)
                    .col(Engagement::AccountId)
                    .col(Engagement::ClientEventId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_engagement_time")
                    .table(Engagement::Table)
                    .col(Engagement::OccurredAt)
                    .to_owned(),
            )
            .await?;
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
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AssetPopularity::Table.into_iden(),
            Engagement::Table.into_iden(),
            Contact::Table.into_iden(),
            Account::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
