use sea_orm::entity::prelude::*;

/// One event for one webhook: the outbox row, written in the change's transaction, and
/// where its delivery stands (`pending`, `delivered`, `failed`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_delivery")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    pub ordering_key: String,
    pub payload: String,
    pub created_at: i64,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_ms: i64,
    pub lease_until_ms: i64,
    pub delivered_at: Option<i64>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
