use sea_orm::entity::prelude::*;

/// An asset shown in a list, and whether it was clicked and completed. `at` is the list's
/// time, the same for every row of a list; the table's key is (list, asset, at), since
/// PostgreSQL partitions it by `at`, and (list, asset) names one row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "impression")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub list_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub asset_id: String,
    pub account_id: Option<String>,
    pub position: i32,
    pub at: i64,
    pub clicked: bool,
    pub completed: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
