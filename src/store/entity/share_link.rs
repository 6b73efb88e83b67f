use sea_orm::entity::prelude::*;

/// A tracked share link: `id` is the SHA-256 (hex) of its token, which is never stored.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "share_link")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub contact_id: String,
    pub asset_id: String,
    pub recommendation_id: Option<String>,
    pub position: Option<i32>,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// Opens by people.
    pub opens: i64,
    /// Opens by scanners and unfurlers.
    pub scans: i64,
    pub first_opened_at: Option<i64>,
    pub last_opened_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
