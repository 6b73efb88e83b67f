use sea_orm::entity::prelude::*;

/// Accounts (of a cohort: an industry, or `*` for all) that read `next_id` within a window
/// after `asset_id`, and their weight in growing units.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "co_read")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub asset_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub cohort: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub next_id: String,
    #[sea_orm(column_type = "Double")]
    pub weight: f64,
    pub accounts: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
