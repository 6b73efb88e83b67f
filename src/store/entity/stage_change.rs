use sea_orm::entity::prelude::*;

/// An account's buying stage moved: from what (none the first time), to what, said by
/// whom (`reading` or `declared`) and why (the asset whose reading moved it).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "stage_change")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: String,
    pub changed_at: i64,
    pub from_stage: Option<String>,
    pub to_stage: String,
    pub source: String,
    pub cause: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
