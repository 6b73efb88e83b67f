use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "asset")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub title: String,
    pub summary: String,
    pub body: String,
    pub url: String,
    /// The links on the page as written, one a line, in order (empty for none).
    pub links: String,
    /// A picture for the asset's card (empty for none).
    pub image_url: String,
    pub content_type: String,
    pub language: String,
    pub published_at: Option<DateTimeUtc>,
    pub reviewed_at: Option<DateTimeUtc>,
    pub evergreen: bool,
    pub gated: bool,
    pub status: String,
    pub content_hash: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
