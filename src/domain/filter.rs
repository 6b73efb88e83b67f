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

impl AssetFilter {
    /// Whether an asset passes this filter, with the index's meaning of every list (see
    /// the type's documentation). Used where assets are checked one by one, not searched.
    pub fn admits(&self, asset: &super::Asset) -> bool {
        let any = |empty: bool, hit: bool| empty || hit;
        self.effective_statuses().contains(&asset.status)
            && any(
                self.stages.is_empty(),
                asset.stages.iter().any(|s| self.stages.contains(s)),
            )
            && any(
                self.roles.is_empty() || asset.roles.is_empty(),
                asset.roles.iter().any(|r| self.roles.contains(r)),
            )
            && any(
                self.industries.is_empty() || asset.industries.is_empty(),
                asset.industries.iter().any(|i| {
                    self.industries
                        .iter()
                        .any(|f| f == i || f.is_ancestor_of(i))
                }),
            )
            && any(
                self.content_types.is_empty(),
                self.content_types.contains(&asset.content_type),
            )
            && any(
                self.languages.is_empty(),
                self.languages.iter().any(|l| {
                    l.as_str().eq_ignore_ascii_case(asset.language.as_str())
                        || (l.as_str() == l.primary()
                            && l.primary().eq_ignore_ascii_case(asset.language.primary()))
                }),
            )
            && any(
                self.topics.is_empty(),
                asset
                    .topics
                    .iter()
                    .any(|t| self.topics.iter().any(|f| f.eq_ignore_ascii_case(t))),
            )
    }
}
