//! Filters over the tags, as terms and as bits.
//!
//! A filter is a few "any of these terms" groups that must all hold, and a few terms that
//! must not ([`FilterPlan`]). As a query it intersects posting lists, which costs a walk
//! through lists as long as a quarter of the library for every request. As bits it costs a
//! few word-wise ANDs: each (segment, term) posting list is read once into a bitset
//! ([`Bits`]) and kept, since a segment's postings never change.

use std::sync::Arc;

use quick_cache::Weighter;
use quick_cache::sync::Cache;
use tantivy::index::SegmentId;
use tantivy::query::{AllQuery, BooleanQuery, ConstScoreQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, DocSet, SegmentReader, TERMINATED, Term};

use super::SearchIndex;
use super::schema::{ANY, Fields};
use crate::domain::{AssetFilter, AssetStatus, TaxonomyValue};
use crate::error::AppResult;

/// A set of a segment's documents, one bit each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Bits {
    words: Vec<u64>,
}

impl Bits {
    fn empty(max_doc: DocId) -> Self {
        Self {
            words: vec![0; (max_doc as usize).div_ceil(64)],
        }
    }

    /// An empty set over the same documents.
    pub(super) fn none_like(&self) -> Self {
        Self {
            words: vec![0; self.words.len()],
        }
    }

    pub(super) fn insert(&mut self, doc: DocId) {
        self.words[(doc / 64) as usize] |= 1 << (doc % 64);
    }

    pub(super) fn contains(&self, doc: DocId) -> bool {
        self.words
            .get((doc / 64) as usize)
            .is_some_and(|w| w & (1 << (doc % 64)) != 0)
    }

    fn and(&mut self, other: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= b;
        }
    }

    fn or(&mut self, other: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    fn and_not(&mut self, other: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= !b;
        }
    }

    pub(super) fn len(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// The documents in increasing order.
    pub(super) fn iter(&self) -> impl Iterator<Item = DocId> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            let base = i as DocId * 64;
            let mut rest = word;
            std::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let bit = rest.trailing_zeros();
                    rest &= rest - 1;
                    base + bit
                })
            })
        })
    }

    fn bytes(&self) -> u64 {
        (self.words.len() * 8) as u64
    }
}

/// What a filter asks of the index's terms: in every group at least one term, and none of
/// the excluded terms.
#[derive(Clone, Debug, Default)]
pub(super) struct FilterPlan {
    all_of: Vec<Vec<Term>>,
    none_of: Vec<Term>,
}

impl FilterPlan {
    /// The plan for a filter. Without `with_status` the statuses are left out (for documents
    /// reached through a term only published assets carry).
    pub(super) fn new(fields: &Fields, filter: &AssetFilter, with_status: bool) -> Self {
        /// One "any of" group, or `None` when the list is empty and does not restrict;
        /// `also` is a value that always matches (the `ANY` of assets for every role or
        /// industry).
        fn any_of<'a>(
            field: Field,
            values: impl IntoIterator<Item = &'a str>,
            also: Option<&str>,
        ) -> Option<Vec<Term>> {
            let mut terms: Vec<Term> = values
                .into_iter()
                .map(|v| Term::from_field_text(field, v))
                .collect();
            if terms.is_empty() {
                return None;
            }
            terms.extend(also.map(|a| Term::from_field_text(field, a)));
            Some(terms)
        }
        let statuses = filter.effective_statuses();
        let topics: Vec<String> = filter
            .topics
            .iter()
            .map(|t| t.trim().to_lowercase())
            .collect();
        let published = statuses.contains(&AssetStatus::Published);
        let status = if published || !with_status {
            None
        } else {
            any_of(fields.status, statuses.iter().map(|s| s.name()), None)
        };
        let all_of = [
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
        ]
        .into_iter()
        .flatten()
        .collect();
        // Most of a library is published: excluding the few other statuses reads two short
        // lists instead of one as long as the library.
        let none_of = if with_status && published {
            AssetStatus::ALL
                .iter()
                .filter(|s| !statuses.contains(s))
                .map(|s| Term::from_field_text(fields.status, s.name()))
                .collect()
        } else {
            Vec::new()
        };
        Self { all_of, none_of }
    }

    /// The plan as query clauses (none when nothing is restricted).
    pub(super) fn clauses(&self) -> Vec<(Occur, Box<dyn Query>)> {
        let mut out: Vec<(Occur, Box<dyn Query>)> = self
            .all_of
            .iter()
            .map(|terms| (Occur::Must, any_term(terms)))
            .collect();
        if !self.none_of.is_empty() {
            out.push((Occur::MustNot, any_term(&self.none_of)));
        }
        out
    }

    /// The plan as one non-scoring query.
    pub(super) fn query(&self) -> Box<dyn Query> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, Box::new(AllQuery))];
        clauses.extend(self.clauses());
        Box::new(ConstScoreQuery::new(
            Box::new(BooleanQuery::new(clauses)),
            0.0,
        ))
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
    FilterPlan::new(fields, filter, true).query()
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum BitsKey {
    Term(SegmentId, Term),
    /// A segment's live documents as of its delete generation.
    Alive(SegmentId, Option<u64>),
}

#[derive(Clone)]
pub(super) struct BitsBytes;

impl Weighter<BitsKey, Arc<Bits>> for BitsBytes {
    fn weight(&self, _: &BitsKey, bits: &Arc<Bits>) -> u64 {
        bits.bytes() + 64
    }
}

/// The bits of recently used (segment, term) pairs and of segments' live documents.
pub(super) struct BitsCache(Cache<BitsKey, Arc<Bits>, BitsBytes>);

impl BitsCache {
    pub(super) fn new(bytes: u64) -> Self {
        Self(Cache::with_weighter(256, bytes.max(1), BitsBytes))
    }
}

impl SearchIndex {
    /// The documents of one segment that a plan lets through, live ones only.
    pub(super) fn filter_bits(&self, reader: &SegmentReader, plan: &FilterPlan) -> AppResult<Bits> {
        let mut out = Bits::clone(&self.alive_bits(reader));
        for group in &plan.all_of {
            if let [term] = group.as_slice() {
                let bits = self.term_bits(reader, term)?;
                out.and(&bits);
                continue;
            }
            let mut any = Bits::empty(reader.max_doc());
            for term in group {
                let bits = self.term_bits(reader, term)?;
                any.or(&bits);
            }
            out.and(&any);
        }
        for term in &plan.none_of {
            let bits = self.term_bits(reader, term)?;
            out.and_not(&bits);
        }
        Ok(out)
    }

    fn alive_bits(&self, reader: &SegmentReader) -> Arc<Bits> {
        let key = BitsKey::Alive(reader.segment_id(), reader.delete_opstamp());
        if let Some(bits) = self.inner.bits.0.get(&key) {
            return bits;
        }
        let mut bits = Bits::empty(reader.max_doc());
        match reader.alive_bitset() {
            Some(alive) => alive.iter_alive().for_each(|doc| bits.insert(doc)),
            None => (0..reader.max_doc()).for_each(|doc| bits.insert(doc)),
        }
        let bits = Arc::new(bits);
        self.inner.bits.0.insert(key, bits.clone());
        bits
    }

    fn term_bits(&self, reader: &SegmentReader, term: &Term) -> AppResult<Arc<Bits>> {
        let key = BitsKey::Term(reader.segment_id(), term.clone());
        if let Some(bits) = self.inner.bits.0.get(&key) {
            return Ok(bits);
        }
        let mut bits = Bits::empty(reader.max_doc());
        let index = reader.inverted_index(term.field())?;
        if let Some(mut postings) = index
            .read_postings(term, IndexRecordOption::Basic)
            .map_err(tantivy::TantivyError::from)?
        {
            let mut doc = postings.doc();
            while doc != TERMINATED {
                bits.insert(doc);
                doc = postings.advance();
            }
        }
        let bits = Arc::new(bits);
        self.inner.bits.0.insert(key, bits.clone());
        Ok(bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(max: DocId, docs: &[DocId]) -> Bits {
        let mut b = Bits::empty(max);
        docs.iter().for_each(|d| b.insert(*d));
        b
    }

    #[test]
    fn bits_combine_word_by_word_across_word_edges() {
        let mut a = bits(200, &[0, 63, 64, 65, 127, 128, 199]);
        assert_eq!(a.len(), 7);
        a.and(&bits(200, &[63, 64, 128, 150, 199]));
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![63, 64, 128, 199]);
        a.or(&bits(200, &[1, 150]));
        a.and_not(&bits(200, &[64, 199]));
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![1, 63, 128, 150]);
        assert!(a.contains(150) && !a.contains(64) && !a.contains(5_000));
    }
}
