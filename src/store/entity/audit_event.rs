use sea_orm::entity::prelude::*;

/// A mutation or a refused request, as the audit trail keeps it.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_event")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: i64,
    pub key_id: Option<String>,
    pub operation: String,
    pub client: Option<String>,
    pub status: i32,
    pub outcome: String,
    /// How many requests the row stands for: 1, or more for a bucket of refusals.
    pub count: i64,
    /// `minute|who|outcome` for a bucket of refusals (unique); null for one request.
    pub bucket: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
