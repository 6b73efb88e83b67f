//! What the content team's audit reads from the index: for every published asset the
//! filter lets through, its tags and dates from the fast columns. No stored document is
//! read, so an audit of 100k assets costs a column scan, not 100k document loads.

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use super::SearchIndex;
use super::filter::filter_query;
use super::schema::{ANY, EVERGREEN_TS, UNDATED_TS};
use crate::domain::{
    AssetFilter, ContentType, CoverageRow, IndustrySlug, Language, Role, Stage, TagSources,
    TaxonomyValue,
};
use crate::error::AppResult;

/// One published asset as the audit sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRow {
    /// `stale` is set for `stale_before`.
    pub coverage: CoverageRow,
    /// When it was last reviewed, else published (Unix seconds); `None` when undated.
    pub dated_at: Option<i64>,
    pub evergreen: bool,
    /// Whether it names any concern or topic (its stages and roles may all be defaults).
    pub described: bool,
}

struct AuditCollector {
    stale_before: i64,
}

struct AuditSegmentCollector {
    stale_before: i64,
    id: Option<Decoded<String>>,
    industry: Option<Decoded<IndustrySlug>>,
    language: Option<Decoded<Language>>,
    stage_mask: Column<u64>,
    role_mask: Column<u64>,
    content_type: Column<u64>,
    freshness: Column<i64>,
    reviewed: Column<i64>,
    published: Column<i64>,
    evergreen: Column<bool>,
    concerns: Column<u64>,
    sources: Column<u64>,
    topic: Option<StrColumn>,
    rows: Vec<AuditRow>,
}

fn from_mask<T: TaxonomyValue>(mask: u64) -> Vec<T> {
    T::ALL
        .iter()
        .copied()
        .filter(|v| mask & (1 << v.ordinal()) != 0)
        .collect()
}

/// A string column with its dictionary decoded once for the segment: streaming the sorted
/// dictionary is much cheaper than looking up one ordinal per document.
struct Decoded<T> {
    column: StrColumn,
    values: Vec<Option<T>>,
}

impl<T> Decoded<T> {
    fn new(
        column: Option<StrColumn>,
        parse: impl Fn(&str) -> Option<T>,
    ) -> tantivy::Result<Option<Self>> {
        let Some(column) = column else {
            return Ok(None);
        };
        let mut values = Vec::with_capacity(column.num_terms());
        let mut stream = column.dictionary().stream()?;
        while stream.advance() {
            let ord = stream.term_ord() as usize;
            while values.len() < ord {
                values.push(None);
            }
            values.push(std::str::from_utf8(stream.key()).ok().and_then(&parse));
        }
        Ok(Some(Self { column, values }))
    }

    fn of(&self, doc: DocId) -> impl Iterator<Item = &T> + '_ {
        self.column
            .term_ords(doc)
            .filter_map(|ord| self.values.get(ord as usize).and_then(Option::as_ref))
    }
}

fn all_of<'a, T: 'a>(
    decoded: &'a Option<Decoded<T>>,
    doc: DocId,
) -> Box<dyn Iterator<Item = &'a T> + 'a> {
    match decoded {
        Some(d) => Box::new(d.of(doc)),
        None => Box::new(std::iter::empty()),
    }
}

impl Collector for AuditCollector {
    type Fruit = Vec<AuditRow>;
    type Child = AuditSegmentCollector;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<AuditSegmentCollector> {
        let ff = reader.fast_fields();
        Ok(AuditSegmentCollector {
            stale_before: self.stale_before,
            id: Decoded::new(ff.str("id")?, |s| Some(s.to_owned()))?,
            industry: Decoded::new(ff.str("industry")?, |s| {
                (s != ANY).then(|| IndustrySlug::parse(s).ok()).flatten()
            })?,
            language: Decoded::new(ff.str("language")?, |s| Language::parse(s).ok())?,
            stage_mask: ff.u64("stage_mask")?,
            role_mask: ff.u64("role_mask")?,
            content_type: ff.u64("content_type_ord")?,
            freshness: ff.i64("freshness_ts")?,
            reviewed: ff.i64("reviewed_ts")?,
            published: ff.i64("published_ts")?,
            evergreen: ff.bool("evergreen")?,
            concerns: ff.u64("concern_mask")?,
            sources: ff.u64("tag_sources")?,
            topic: ff.str("topic")?,
            rows: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, segments: Vec<Vec<AuditRow>>) -> tantivy::Result<Vec<AuditRow>> {
        let mut rows: Vec<AuditRow> = segments.into_iter().flatten().collect();
        rows.sort_by(|a, b| a.coverage.id.cmp(&b.coverage.id));
        Ok(rows)
    }
}

impl SegmentCollector for AuditSegmentCollector {
    type Fruit = Vec<AuditRow>;

    fn collect(&mut self, doc: DocId, _: Score) {
        let Some(id) = all_of(&self.id, doc).next().cloned() else {
            return;
        };
        let industries = all_of(&self.industry, doc).cloned().collect();
        let language = all_of(&self.language, doc)
            .next()
            .cloned()
            .unwrap_or_else(Language::english);
        let content_type = self
            .content_type
            .first(doc)
            .and_then(|o| ContentType::ALL.get(o as usize).copied())
            .unwrap_or(ContentType::Ebook);
        let freshness = self.freshness.first(doc).unwrap_or(UNDATED_TS);
        let evergreen = self.evergreen.first(doc).unwrap_or(false);
        let described = self.concerns.first(doc).unwrap_or(0) != 0
            || self
                .topic
                .as_ref()
                .is_some_and(|t| t.term_ords(doc).next().is_some());
        let dated_at = self
            .reviewed
            .first(doc)
            .or_else(|| self.published.first(doc));
        self.rows.push(AuditRow {
            coverage: CoverageRow {
                id,
                stages: from_mask::<Stage>(self.stage_mask.first(doc).unwrap_or(0)),
                roles: from_mask::<Role>(self.role_mask.first(doc).unwrap_or(0)),
                industries,
                content_type,
                language,
                // Evergreen assets never go stale; undated ones are undated, not stale.
                stale: freshness != EVERGREEN_TS
                    && freshness != UNDATED_TS
                    && freshness < self.stale_before,
                undated: freshness == UNDATED_TS,
                sources: TagSources::unpack(self.sources.first(doc).unwrap_or(0)),
            },
            dated_at,
            evergreen,
            described,
        });
    }

    fn harvest(self) -> Vec<AuditRow> {
        self.rows
    }
}

impl SearchIndex {
    /// Every published asset the filter lets through, by id, from the fast columns.
    /// `stale_before`: assets last reviewed (else published) before it are stale.
    pub fn audit_rows(&self, filter: &AssetFilter, stale_before: i64) -> AppResult<Vec<AuditRow>> {
        let searcher = self.inner.reader.searcher();
        let published = AssetFilter {
            statuses: Vec::new(),
            ..filter.clone()
        };
        let query = filter_query(&self.inner.fields, &published);
        Ok(searcher.search(&query, &AuditCollector { stale_before })?)
    }
}
