//! Webhooks and their durable outbox. A change that a webhook listens for writes one
//! `webhook_delivery` row per listening webhook in the change's own transaction: a
//! rolled-back write sends nothing, a crash loses nothing. Replicas claim deliveries with
//! a lease (`lease_until_ms`), each attempt is logged in `webhook_attempt`. An account's
//! buying stage as last settled is `account.journey_stage`; each move is a `stage_change`.
//! Times ending in `_ms` are Unix milliseconds, the others Unix seconds.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Webhook {
    Table,
    Id,
    Url,
    Events,
    Secret,
    Description,
    CreatedAt,
    DisabledAt,
    DisabledReason,
}

#[derive(DeriveIden)]
enum WebhookDelivery {
    Table,
    Id,
    WebhookId,
    EventId,
    EventType,
    OrderingKey,
    Payload,
    CreatedAt,
    State,
    Attempts,
    NextAttemptMs,
    LeaseUntilMs,
    DeliveredAt,
    LastStatus,
    LastError,
}

#[derive(DeriveIden)]
enum WebhookAttempt {
    Table,
    Id,
    DeliveryId,
    WebhookId,
    AttemptedAt,
    Status,
    Error,
    Response,
    DurationMs,
}

#[derive(DeriveIden)]
enum StageChange {
    Table,
    Id,
    AccountId,
    ChangedAt,
    FromStage,
    ToStage,
    Source,
    Cause,
}

#[derive(DeriveIden)]
enum Account {
    Table,
    JourneyStage,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Webhook::Table)
                    .if_not_exists()
                    .col(string(Webhook::Id).primary_key())
                    .col(text(Webhook::Url))
                    .col(text(Webhook::Events))
                    .col(text(Webhook::Secret))
                    .col(text(Webhook::Description).default(""))
                    .col(big_integer(Webhook::CreatedAt))
                    .col(big_integer_null(Webhook::DisabledAt))
                    .col(text_null(Webhook::DisabledReason))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDelivery::Table)
                    .if_not_exists()
                    .col(big_pk_auto(WebhookDelivery::Id))
                    .col(string(WebhookDelivery::WebhookId))
                    .col(string(WebhookDelivery::EventId))
                    .col(string(WebhookDelivery::EventType))
                    .col(string(WebhookDelivery::OrderingKey))
                    .col(text(WebhookDelivery::Payload))
                    .col(big_integer(WebhookDelivery::CreatedAt))
                    .col(string(WebhookDelivery::State))
                    .col(integer(WebhookDelivery::Attempts).default(0))
                    .col(big_integer(WebhookDelivery::NextAttemptMs))
                    .col(big_integer(WebhookDelivery::LeaseUntilMs).default(0))
                    .col(big_integer_null(WebhookDelivery::DeliveredAt))
                    .col(integer_null(WebhookDelivery::LastStatus))
                    .col(text_null(WebhookDelivery::LastError))
                    .to_owned(),
            )
            .await?;
        // What the deliverer asks: pending rows due, and the earliest pending row of a
        // webhook's ordering key (deliveries of one account go out in order).
        manager
            .create_index(
                Index::create()
                    .name("webhook_delivery_due")
                    .table(WebhookDelivery::Table)
                    .col(WebhookDelivery::State)
                    .col(WebhookDelivery::NextAttemptMs)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_delivery_order")
                    .table(WebhookDelivery::Table)
                    .col(WebhookDelivery::WebhookId)
                    .col(WebhookDelivery::OrderingKey)
                    .col(WebhookDelivery::State)
                    .col(WebhookDelivery::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_delivery_event")
                    .table(WebhookDelivery::Table)
                    .col(WebhookDelivery::WebhookId)
                    .col(WebhookDelivery::EventId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookAttempt::Table)
                    .if_not_exists()
                    .col(big_pk_auto(WebhookAttempt::Id))
                    .col(big_integer(WebhookAttempt::DeliveryId))
                    .col(string(WebhookAttempt::WebhookId))
                    .col(big_integer(WebhookAttempt::AttemptedAt))
                    .col(integer_null(WebhookAttempt::Status))
                    .col(text_null(WebhookAttempt::Error))
                    .col(text_null(WebhookAttempt::Response))
                    .col(big_integer(WebhookAttempt::DurationMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_attempt_delivery")
                    .table(WebhookAttempt::Table)
                    .col(WebhookAttempt::DeliveryId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(StageChange::Table)
                    .if_not_exists()
                    .col(big_pk_auto(StageChange::Id))
                    .col(string(StageChange::AccountId))
                    .col(big_integer(StageChange::ChangedAt))
                    .col(string_null(StageChange::FromStage))
                    .col(string(StageChange::ToStage))
                    .col(string(StageChange::Source))
                    .col(text_null(StageChange::Cause))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("stage_change_account")
                    .table(StageChange::Table)
                    .col(StageChange::AccountId)
                    .col(StageChange::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Account::Table)
                    .add_column(string_null(Account::JourneyStage))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Account::Table)
                    .drop_column(Account::JourneyStage)
                    .to_owned(),
            )
            .await?;
        for table in [
            StageChange::Table.into_iden(),
            WebhookAttempt::Table.into_iden(),
            WebhookDelivery::Table.into_iden(),
            Webhook::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
