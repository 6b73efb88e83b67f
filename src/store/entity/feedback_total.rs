use sea_orm::entity::prelude::*;

/// Feedback counts per asset, profile, experiment and variant, all time.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "feedback_total")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub asset_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub profile: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub experiment: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub variant: String,
    pub impressions: i64,
    pub clicks: i64,
    pub completions: i64,
    pub dismissals: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
