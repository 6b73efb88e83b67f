use sea_orm::entity::prelude::*;

/// A buying company, as the CRM describes it.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "account")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub industry: Option<String>,
    pub stage: Option<String>,
    pub stage_updated_at: Option<DateTimeUtc>,
    pub tier: Option<String>,
    pub language: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The buying stage as last settled (what `stage_change` moves from).
    pub journey_stage: Option<String>,
    /// The CRM's opportunity stage by its own name.
    pub crm_stage: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
