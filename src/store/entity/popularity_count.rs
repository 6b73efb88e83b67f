use sea_orm::entity::prelude::*;

/// An asset's popularity in a cohort: the accounts' shares summed, in growing units, and
/// how many accounts they are.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "popularity_count")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub cohort: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub asset_id: String,
    #[sea_orm(column_type = "Double")]
    pub score: f64,
    pub accounts: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
