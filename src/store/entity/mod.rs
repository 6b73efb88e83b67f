//! sea-orm entities, one per table of `migrations/`.

pub mod asset;
pub mod asset_tag;
pub mod change_log;
pub mod industry;
