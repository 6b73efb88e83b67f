//! What a search asks and answers, free of how the index answers it.

use super::{Asset, AssetFilter};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortOrder {
    /// By text relevance; newest first when there is no text.
    Relevance,
    Newest,
    Id,
}

/// A tag field that can be counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FacetField {
    Stage,
    Role,
    Industry,
    /// Industries with their ancestors: a parent counts its whole subtree.
    IndustryTree,
    ContentType,
    Language,
    Topic,
    Status,
}

#[derive(Clone, Debug)]
pub struct SearchRequest {
    pub text: Option<String>,
    pub filter: AssetFilter,
    pub limit: usize,
    pub offset: usize,
    pub sort: SortOrder,
    pub facets: Vec<FacetField>,
    pub highlights: bool,
    /// Whether the answer must say how many assets match. Without text the count is free;
    /// with text it means scoring every match instead of only those that can reach the page.
    pub count: bool,
}

/// Counts of one field's values, most frequent first.
#[derive(Clone, Debug, PartialEq)]
pub struct FacetCount {
    pub field: FacetField,
    pub values: Vec<(String, u64)>,
}

#[derive(Clone, Debug)]
pub struct Highlight {
    /// `title`, `summary` or `body`.
    pub field: &'static str,
    pub fragment: String,
    /// The fragment with matches in `<b>`, HTML-escaped.
    pub html: String,
}

#[derive(Clone, Debug)]
pub struct SearchHit {
    /// Shared with the index's cache of parsed assets.
    pub asset: std::sync::Arc<Asset>,
    pub score: f32,
    pub highlights: Vec<Highlight>,
}

#[derive(Clone, Debug)]
pub struct SearchPage {
    /// How many assets match: always without text, with text when the request asked.
    pub total: Option<u64>,
    /// Whether assets follow this page.
    pub has_more: bool,
    pub hits: Vec<SearchHit>,
    pub facets: Vec<FacetCount>,
}
