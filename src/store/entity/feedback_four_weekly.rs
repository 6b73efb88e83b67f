use sea_orm::entity::prelude::*;

/// Feedback counts per four weeks (block `b`: weeks `4b` to `4b + 3`) and asset, every
/// profile and variant together.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "feedback_four_weekly")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub block: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub asset_id: String,
    pub impressions: i64,
    pub clicks: i64,
    pub completions: i64,
    pub dismissals: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
