use sea_orm::entity::prelude::*;

/// One group of synonyms: its terms joined by `|`, in the list's order.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "synonym_group")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub position: i32,
    pub terms: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
