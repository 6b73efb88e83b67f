use sea_orm::entity::prelude::*;

/// What one account adds to an asset's popularity in a cohort: its heaviest event, in
/// growing units (see `domain::counters`), and when it first read the asset (Unix seconds).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "popularity_share")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub asset_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub cohort: String,
    #[sea_orm(column_type = "Double")]
    pub weight: f64,
    pub first_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
