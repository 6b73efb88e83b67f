use sea_orm::entity::prelude::*;

/// An asset's popularity in a cohort of similar accounts, in [0, 1]; rewritten as a whole
/// by each refresh.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "asset_popularity")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub cohort: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub asset_id: String,
    #[sea_orm(column_type = "Double")]
    pub value: f64,
    pub refreshed_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
