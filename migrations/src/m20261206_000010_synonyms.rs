//! Synonyms: `synonym_group(position, terms)`, the groups of words a library uses for the
//! same thing (`churn|retention|attrition`), terms joined by `|`, searched together. A new
//! database starts with a few common groups; editors replace the list as a whole.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SynonymGroup {
    Table,
    Position,
    Terms,
}

/// The groups a new library starts with, as they were when this migration was written.
const STARTING_GROUPS: &[&str] = &[
    "churn|retention|attrition",
    "telecom|telecommunications|telco",
    "pricing|price|cost|plans",
    "case study|customer story|success story|testimonial",
    "rbac|role-based access control|permissions",
    "sso|single sign-on|saml",
    "self-host|self-hosted|on-premises|on-prem",
    "roi|return on investment|payback",
    "fintech|financial services|banking|payments",
    "流失|留存",
    "电信|运营商",
    "价格|定价|费用",
    "案例|客户故事",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SynonymGroup::Table)
                    .if_not_exists()
                    .col(integer(SynonymGroup::Position).primary_key())
                    .col(text(SynonymGroup::Terms))
                    .to_owned(),
            )
            .await?;
        let mut insert = Query::insert();
        insert
            .into_table(SynonymGroup::Table)
            .columns([SynonymGroup::Position, SynonymGroup::Terms]);
        for (i, terms) in STARTING_GROUPS.iter().enumerate() {
            insert
                .values([(i as i32).into(), (*terms).into()])
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        manager.exec_stmt(insert).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SynonymGroup::Table).to_owned())
            .await
    }
}
