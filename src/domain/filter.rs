//! Which assets a request is about.

use super::taxonomy::{AssetStatus, ContentType, IndustrySlug, Language, Role, Stage};

/// A conjunction of "any of" lists; an empty list does not restrict.
///
/// The lists follow whom an asset serves: a role filter also matches assets for every role
/// (no roles), an industry filter matches the industry, its sub-industries and
/// cross-industry assets, and a language filter `zh` matches `zh-CN` too. With no statuses
/// only published assets match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AssetFilter {
    pub stages: Vec<Stage>,
    pub roles: Vec<Role>,
    pub industries: Vec<IndustrySlug>,
    pub content_types: Vec<ContentType>,
    pub languages: Vec<Language>,
    pub topics: Vec<String>,
    pub statuses: Vec<AssetStatus>,
}

impl AssetFilter {
    /// The statuses this filter admits: published unless others are named.
    pub fn effective_statuses(&self) -> Vec<AssetStatus> {
        if self.statuses.is_empty() {
            vec![AssetStatus::Published]
        } else {
            self.statuses.clone()
        }
    }
}
