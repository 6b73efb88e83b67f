//! What the content team's audit reads from the index: for every published asset the
//! filter lets through, its tags and dates from the fast columns. No stored document is
//! read, so an audit of 100k assets costs a column scan, not 100k document loads.

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use super::SearchIndex;
use super::query::filter_query;
use super::schema::{ANY, EVERGREEN_TS, UNDATED_TS};
use crate::domain::{
    AssetFilter, ContentType, CoverageRow, IndustrySlug, Language, Role, Stage, TaxonomyValue,
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
    id: Option<StrColumn>,
    industry: Option<StrColumn>,
    language: Option<StrColumn>,
    stage_mask: Column<u64>,
    role_mask: Column<u64>,
    content_type: Column<u64>,
    freshness: Column<i64>,
    reviewed: Column<i64>,
    published: Column<i64>,
    evergreen: Column<bool>,
    concerns: Column<u64>,
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

fn strings(column: &Option<StrColumn>, doc: DocId) -> Vec<String> {
    let Some(column) = column else {
        return Vec::new();
    };
    column
        .term_ords(doc)
        .filter_map(|ord| {
            let mut out = String::new();
            column.ord_to_str(ord, &mut out).ok()?.then_some(out)
        })
        .collect()
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
            id: ff.str("id")?,
            industry: ff.str("industry")?,
            language: ff.str("language")?,
            stage_mask: ff.u64("stage_mask")?,
            role_mask: ff.u64("role_mask")?,
            content_type: ff.u64("content_type_ord")?,
            freshness: ff.i64("freshness_ts")?,
            reviewed: ff.i64("reviewed_ts")?,
            published: ff.i64("published_ts")?,
            evergreen: ff.bool("evergreen")?,
            concerns: ff.u64("concern_mask")?,
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
        let Some(id) = strings(&self.id, doc).pop() else {
            return;
        };
        let industries = strings(&self.industry, doc)
            .iter()
            .filter(|i| *i != ANY)
            .filter_map(|i| IndustrySlug::parse(i).ok())
            .collect();
        let language = strings(&self.language, doc)
            .pop()
            .and_then(|l| Language::parse(&l).ok())
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
                // Evergreen assets never go stale; undated ones always count as stale.
                stale: freshness != EVERGREEN_TS && freshness < self.stale_before,
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
