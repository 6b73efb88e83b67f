use sea_orm::entity::prelude::*;

/// One engagement event. Times are Unix seconds; `cohort` is the account's industry branch
/// and journey stage when the event was recorded, which popularity groups by.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "engagement")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: String,
    pub contact_id: Option<String>,
    pub asset_id: String,
    pub kind: String,
    pub occurred_at: i64,
    pub client_event_id: Option<String>,
    pub cohort: String,
    pub recorded_at: i64,
    pub recommendation_id: Option<String>,
    pub position: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
