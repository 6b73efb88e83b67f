use sea_orm::entity::prelude::*;

/// An asset's sentence vectors under one model (see the migration for the layout).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "asset_embedding")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub asset_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub model: String,
    pub text_hash: i64,
    pub vectors: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
