use sea_orm::entity::prelude::*;

/// A shown recommendation list (by the digest of its id) and its context as JSON.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "served_list")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub at: i64,
    pub account_id: Option<String>,
    pub profile: String,
    pub experiment: String,
    pub variant: String,
    pub context: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
