use sea_orm::entity::prelude::*;

/// Engagement events per four weeks they happened in (block `b`: weeks `4b` to `4b + 3`)
/// and asset; kept when events expire.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "engagement_four_weekly")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub block: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub asset_id: String,
    pub events: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
