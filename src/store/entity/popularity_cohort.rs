use sea_orm::entity::prelude::*;

/// A cohort with popularity counts.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "popularity_cohort")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub cohort: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
