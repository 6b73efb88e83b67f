use sea_orm::entity::prelude::*;

/// One list value of an asset: `kind` is stage, role, industry, concern or topic.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "asset_tag")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub asset_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub kind: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub value: String,
    pub position: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
