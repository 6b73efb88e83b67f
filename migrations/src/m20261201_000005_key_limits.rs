//! Rate limits of one key, where it should not have the server's defaults: requests a
//! second for the key, and for a publishable key per client address. Null means the
//! default.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKey {
    Table,
    RatePerSecond,
    ClientRatePerSecond,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one column at a time.
        for column in [ApiKey::RatePerSecond, ApiKey::ClientRatePerSecond] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ApiKey::Table)
                        .add_column(integer_null(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [ApiKey::RatePerSecond, ApiKey::ClientRatePerSecond] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ApiKey::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
