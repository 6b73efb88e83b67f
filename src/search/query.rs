//! Reading the index: filtered listings, full-text search with highlights and facets.

use std::collections::HashMap;
use std::sync::Arc;

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use tantivy::collector::{Count, TopDocs};
use tantivy::index::SegmentId;
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, Occur, Query, QueryParser, TermQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::schema::{Field, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::{DocAddress, DocId, Order, Searcher, TantivyDocument, Term};

use super::SearchIndex;
use super::facets::{FacetCollector, FacetCount, FacetField};
use super::schema::{ANY, Analyzer, Fields};
use crate::domain::{Asset, AssetDraft, AssetFilter, AssetStatus, TaxonomyValue};
use crate::error::{AppError, AppResult};

const SNIPPET_CHARS: usize = 180;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortOrder {
    /// By text relevance; newest first when there is no text.
    Relevance,
    Newest,
    Id,
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
    pub asset: Asset,
    pub score: f32,
    pub highlights: Vec<Highlight>,
}

#[derive(Clone, Debug)]
pub struct SearchPage {
    pub total: u64,
    pub hits: Vec<SearchHit>,
    pub facets: Vec<FacetCount>,
}

impl SearchIndex {
    /// Runs a search; blocking, call it off the async runtime.
    pub fn search(&self, request: &SearchRequest) -> AppResult<SearchPage> {
        let fields = &self.inner.fields;
        let searcher = self.inner.reader.searcher();
        let text_query = request
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| self.text_query(t));
        let filter = filter_query(fields, &request.filter);
        let query: Box<dyn Query> = match &text_query {
            Some(text) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, text.box_clone()),
                (Occur::Must, filter),
            ])),
            None => filter,
        };
        let facets =
            (!request.facets.is_empty()).then(|| FacetCollector::new(request.facets.clone()));
        let top = TopDocs::with_limit(request.limit.max(1)).and_offset(request.offset);
        let sort = match (request.sort, &text_query) {
            (SortOrder::Relevance, None) => SortOrder::Newest,
            (sort, _) => sort,
        };
        let (addresses, total, facets): (Vec<(f32, DocAddress)>, usize, Option<Vec<FacetCount>>) =
            match sort {
                SortOrder::Relevance => {
                    let (top, count, facets) =
                        searcher.search(&query, &(top.order_by_score(), Count, facets))?;
                    (top, count, facets)
                }
                SortOrder::Newest => {
                    let (top, count, facets) = searcher.search(
                        &query,
                        &(
                            top.order_by_fast_field::<i64>("published_ts", Order::Desc),
                            Count,
                            facets,
                        ),
                    )?;
                    (
                        top.into_iter().map(|(_, a)| (0.0, a)).collect(),
                        count,
                        facets,
                    )
                }
                SortOrder::Id => {
                    let (top, count, facets) = searcher.search(
                        &query,
                        &(
                            top.order_by_string_fast_field("id", Order::Asc),
                            Count,
                            facets,
                        ),
                    )?;
                    (
                        top.into_iter().map(|(_, a)| (0.0, a)).collect(),
                        count,
                        facets,
                    )
                }
            };
        let addresses = if request.limit == 0 {
            Vec::new()
        } else {
            addresses
        };

        let mut snippets = Snippets::default();
        let mut hits = Vec::with_capacity(addresses.len());
        for (score, address) in addresses {
            let asset = self.load_asset(&searcher, address)?;
            let highlights = match (&text_query, request.highlights) {
                (Some(q), true) => snippets.highlight(&searcher, fields, q.as_ref(), &asset)?,
                _ => Vec::new(),
            };
            hits.push(SearchHit {
                asset,
                score,
                highlights,
            });
        }
        Ok(SearchPage {
            total: total as u64,
            hits,
            facets: facets.unwrap_or_default(),
        })
    }

    /// Value counts over the assets a filter matches.
    pub fn facet_counts(
        &self,
        filter: &AssetFilter,
        fields: Vec<FacetField>,
    ) -> AppResult<Vec<FacetCount>> {
        let searcher = self.inner.reader.searcher();
        let query = filter_query(&self.inner.fields, filter);
        Ok(searcher.search(&query, &FacetCollector::new(fields))?)
    }

    /// How many documents the index holds, whatever their status.
    pub fn num_docs(&self) -> u64 {
        self.inner.reader.searcher().num_docs()
    }

    pub(super) fn text_query(&self, text: &str) -> Box<dyn Query> {
        let fields = &self.inner.fields;
        let boosted: Vec<(Field, f32)> = Analyzer::ALL
            .iter()
            .flat_map(|a| fields.text_for(*a).boosted())
            .collect();
        let mut parser =
            QueryParser::for_index(&self.inner.index, boosted.iter().map(|(f, _)| *f).collect());
        for (field, boost) in boosted {
            parser.set_field_boost(field, boost);
        }
        // Lenient: whatever a visitor types is a search, never a syntax error.
        parser.parse_query_lenient(text).0
    }
}

/// Any of a few terms, scoring nothing. (`TermSetQuery` would build an automaton and a
/// bitset the size of each segment per query: measured at a third of a recommendation's
/// time.)
pub(super) fn any_term(terms: &[Term]) -> Box<dyn Query> {
    let clauses: Vec<(Occur, Box<dyn Query>)> = terms
        .iter()
        .map(|t| {
            (
                Occur::Should,
                Box::new(TermQuery::new(t.clone(), IndexRecordOption::Basic)) as Box<dyn Query>,
            )
        })
        .collect();
    Box::new(ConstScoreQuery::new(
        Box::new(BooleanQuery::new(clauses)),
        0.0,
    ))
}

/// A non-scoring query for the filter; every list is "any of", the lists are "all of".
pub(super) fn filter_query(fields: &Fields, filter: &AssetFilter) -> Box<dyn Query> {
    let mut subqueries: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, Box::new(AllQuery))];
    subqueries.extend(filter_clauses(fields, filter, true));
    Box::new(ConstScoreQuery::new(
        Box::new(BooleanQuery::new(subqueries)),
        0.0,
    ))
}

/// The filter's clauses, all but the statuses when `with_status` is false (for documents
/// reached through a term only published assets carry); none when nothing is restricted.
pub(super) fn filter_clauses(
    fields: &Fields,
    filter: &AssetFilter,
    with_status: bool,
) -> Vec<(Occur, Box<dyn Query>)> {
    /// One "any of" clause, or `None` when the list is empty and does not restrict; `also`
    /// is a value that always matches (the `ANY` of assets for every role or industry).
    fn any_of<'a>(
        field: Field,
        values: impl IntoIterator<Item = &'a str>,
        also: Option<&str>,
    ) -> Option<Box<dyn Query>> {
        let mut terms: Vec<Term> = values
            .into_iter()
            .map(|v| Term::from_field_text(field, v))
            .collect();
        if terms.is_empty() {
            return None;
        }
        terms.extend(also.map(|a| Term::from_field_text(field, a)));
        Some(any_term(&terms))
    }
    let statuses = filter.effective_statuses();
    let topics: Vec<String> = filter
        .topics
        .iter()
        .map(|t| t.trim().to_lowercase())
        .collect();
    let status = if statuses.contains(&AssetStatus::Published) || !with_status {
        None
    } else {
        any_of(fields.status, statuses.iter().map(|s| s.name()), None)
    };
    let clauses = [
        status,
        any_of(fields.stage, filter.stages.iter().map(|s| s.name()), None),
        any_of(
            fields.role,
            filter.roles.iter().map(|r| r.name()),
            Some(ANY),
        ),
        any_of(
            fields.industry_tree,
            filter.industries.iter().map(|i| i.as_str()),
            Some(ANY),
        ),
        any_of(
            fields.content_type,
            filter.content_types.iter().map(|c| c.name()),
            None,
        ),
        any_of(
            fields.language_match,
            filter.languages.iter().map(|l| l.as_str()),
            None,
        ),
        any_of(fields.topic, topics.iter().map(String::as_str), None),
    ];
    let mut subqueries: Vec<(Occur, Box<dyn Query>)> = clauses
        .into_iter()
        .flatten()
        .map(|q| (Occur::Must, q))
        .collect();
    if with_status && statuses.contains(&AssetStatus::Published) {
        // Most of a library is published: excluding the few other statuses costs a seek in
        // two short lists instead of one in a list as long as the library.
        let excluded: Vec<Term> = AssetStatus::ALL
            .iter()
            .filter(|s| !statuses.contains(s))
            .map(|s| Term::from_field_text(fields.status, s.name()))
            .collect();
        if !excluded.is_empty() {
            subqueries.push((Occur::MustNot, any_term(&excluded)));
        }
    }
    subqueries
}

/// Parsed assets by where they sit in the index. A segment's documents never change, so an
/// entry never goes stale; those of merged-away segments age out. Reading a hit otherwise
/// costs a block decompression, a JSON parse and a validation: an eighth of a text
/// recommendation when measured.
pub(super) struct AssetCache(Cache<(SegmentId, DocId), Arc<Asset>, AssetBytes>);

#[derive(Clone)]
pub(super) struct AssetBytes;

impl Weighter<(SegmentId, DocId), Arc<Asset>> for AssetBytes {
    fn weight(&self, _: &(SegmentId, DocId), asset: &Arc<Asset>) -> u64 {
        (asset.title.len() + asset.summary.len() + asset.body.len() + 512) as u64
    }
}

impl AssetCache {
    pub(super) fn new(bytes: u64) -> Self {
        // quick_cache wants an estimate of the number of entries: assets of about 2 KiB.
        let items = (bytes / 2048).max(16) as usize;
        Self(Cache::with_weighter(items, bytes.max(1), AssetBytes))
    }
}

impl SearchIndex {
    /// The asset at a hit's address, from the cache of parsed assets when it is there.
    pub(super) fn load_asset(&self, searcher: &Searcher, address: DocAddress) -> AppResult<Asset> {
        let key = (
            searcher.segment_reader(address.segment_ord).segment_id(),
            address.doc_id,
        );
        if let Some(asset) = self.inner.assets.0.get(&key) {
            return Ok(Asset::clone(&asset));
        }
        let asset = read_asset(searcher, &self.inner.fields, address)?;
        self.inner.assets.0.insert(key, Arc::new(asset.clone()));
        Ok(asset)
    }
}

impl SearchIndex {
    /// Every document of the index as (id, fingerprint of the asset it holds), in no
    /// particular order: what `verify-index` compares with the database. Blocking.
    pub fn fingerprints(&self) -> AppResult<Vec<(String, String)>> {
        let searcher = self.inner.reader.searcher();
        let mut out = Vec::with_capacity(searcher.num_docs() as usize);
        for (segment_ord, segment) in searcher.segment_readers().iter().enumerate() {
            for doc_id in segment.doc_ids_alive() {
                let address = DocAddress::new(segment_ord as u32, doc_id);
                let asset = read_asset(&searcher, &self.inner.fields, address)?;
                out.push((asset.id.to_string(), asset.fingerprint()));
            }
        }
        Ok(out)
    }
}

fn read_asset(searcher: &Searcher, fields: &Fields, address: DocAddress) -> AppResult<Asset> {
    let doc: TantivyDocument = searcher.doc(address)?;
    let source = doc
        .get_first(fields.source)
        .and_then(|v| v.as_str())
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("index document without source")))?;
    let draft: AssetDraft = serde_json::from_str(source)
        .map_err(|e| AppError::internal(anyhow::Error::new(e).context("index document source")))?;
    draft.validate().map_err(|errors| {
        AppError::internal(anyhow::anyhow!(
            "index document {:?} no longer validates: {}",
            draft.id,
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })
}

/// Snippet generators built on first use, one per text field, for one request.
#[derive(Default)]
struct Snippets {
    generators: HashMap<Field, SnippetGenerator>,
}

impl Snippets {
    fn highlight(
        &mut self,
        searcher: &Searcher,
        fields: &Fields,
        query: &dyn Query,
        asset: &Asset,
    ) -> AppResult<Vec<Highlight>> {
        let text = fields.text_for(Analyzer::for_language(asset.language.primary()));
        let mut out = Vec::new();
        for (name, field, value) in [
            ("title", text.title, &asset.title),
            ("summary", text.summary, &asset.summary),
            ("body", text.body, &asset.body),
        ] {
            let generator = match self.generators.entry(field) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let mut g = SnippetGenerator::create(searcher, query, field)?;
                    g.set_max_num_chars(if name == "title" { 500 } else { SNIPPET_CHARS });
                    e.insert(g)
                }
            };
            let snippet = generator.snippet(value);
            if !snippet.highlighted().is_empty() {
                out.push(Highlight {
                    field: name,
                    fragment: snippet.fragment().to_owned(),
                    html: snippet.to_html(),
                });
            }
        }
        Ok(out)
    }
}
