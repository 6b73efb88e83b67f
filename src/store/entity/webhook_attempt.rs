use sea_orm::entity::prelude::*;

/// One try at a delivery: the receiver's status (or why there was none) and the start of
/// its answer.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_attempt")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub delivery_id: i64,
    pub webhook_id: String,
    pub attempted_at: i64,
    pub status: Option<i32>,
    pub error: Option<String>,
    pub response: Option<String>,
    pub duration_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
