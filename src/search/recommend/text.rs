//! The text factor: the walk through a tier's documents that hold a text term, and
//! text scores for documents found otherwise.

use std::sync::Arc;

use tantivy::collector::{Collector, SegmentCollector, TopDocs};
use tantivy::query::{Bm25Weight, BoostQuery, EnableScoring, Query, TermQuery, Weight};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocSet, Searcher, SegmentOrdinal, TERMINATED, Term};

use super::collector::{Hit, TierCollector};
use crate::error::AppResult;
use crate::ranking::text_value;

/// The text's boosted term queries, each with the most it can add to a document's BM25.
pub(super) type TextTerms = Vec<(Box<dyn Weight>, f32)>;

/// The documents of a tier that hold at least one text term, visited the way MaxScore
/// visits a disjunction: by leapfrogging between the tier's postings and the terms', and
/// once the floor is high enough that a document needs one of the highest-bounded terms to
/// enter, only through those terms' postings. The result is the collector's over every
/// such document of the tier, with less visited.
pub(super) fn collect_text_tier(
    searcher: &Searcher,
    query: &dyn Query,
    collector: &TierCollector,
) -> tantivy::Result<(Vec<Hit>, u64)> {
    let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let mut fruits = Vec::with_capacity(searcher.segment_readers().len());
    for (ordinal, reader) in searcher.segment_readers().iter().enumerate() {
        let mut segment = collector.for_segment(ordinal as SegmentOrdinal, reader)?;
        let mut tier = weight.scorer(reader, 1.0)?;
        let alive = reader.alive_bitset();
        let mut doc = tier.doc();
        while doc != TERMINATED {
            // Only documents with some text term are visited here; which terms a document
            // needs narrows as the floor rises.
            let essential = segment.essential_terms();
            if essential == 0 {
                // No document left in this segment can enter.
                break;
            }
            let mut next = TERMINATED;
            for term in &mut segment.text[..essential] {
                if term.doc() < doc {
                    term.seek(doc);
                }
                next = next.min(term.doc());
            }
            if next == TERMINATED {
                break;
            }
            if next > doc {
                doc = tier.seek(next);
                continue;
            }
            if alive.is_none_or(|a| a.is_alive(doc)) {
                segment.collect(doc, 0.0);
            }
            doc = tier.advance();
        }
        fruits.push(segment.harvest());
    }
    collector.merge_fruits(fruits)
}

/// The TEXT value a BM25 bound allows, widened by a few float steps so that summing the
/// terms' scores in another order can never exceed it.
pub(super) fn reachable_text(bm25_bound: f32, scale: f32) -> f64 {
    text_value(bm25_bound * (1.0 + f32::EPSILON * 4.0), scale)
}

/// The summed BM25 of the text terms for each address (sorted by address).
pub(super) fn text_scores(
    searcher: &Searcher,
    text: &TextTerms,
    sorted: &[DocAddress],
) -> AppResult<Vec<f32>> {
    let mut out = vec![0.0f32; sorted.len()];
    let mut start = 0;
    while start < sorted.len() {
        let segment = sorted[start].segment_ord;
        let end = start
            + sorted[start..]
                .iter()
                .take_while(|a| a.segment_ord == segment)
                .count();
        let reader = searcher.segment_reader(segment);
        for (weight, _) in text.iter() {
            let mut scorer = weight.scorer(reader, 1.0)?;
            for (address, score) in sorted[start..end].iter().zip(&mut out[start..end]) {
                if scorer.doc() <= address.doc_id && scorer.seek(address.doc_id) == address.doc_id {
                    *score += scorer.score();
                }
            }
        }
        start = end;
    }
    Ok(out)
}

/// The text of a request, as the walk scores it.
pub(super) struct TextWeights {
    /// Each present term's boosted query weight with the most it can score.
    pub(super) terms: Arc<TextTerms>,
    /// The terms that occur somewhere, for excluding the documents already reached.
    pub(super) present: Vec<Term>,
    /// The TEXT scale: what each term scores at its best anywhere in the index, summed.
    pub(super) scale: f32,
}

impl TextWeights {
    /// `None` when no word occurs in the index (or there are none).
    ///
    /// A term's best is a top-1 query over its own postings, which block-max pruning
    /// answers from a few blocks; the best of the whole bag of words would need a
    /// disjunction over every posting of every term (most of the index for common words),
    /// measured at more than half of a text recommendation.
    pub(super) fn new(searcher: &Searcher, words: Vec<(Term, f32)>) -> AppResult<Option<Self>> {
        let scoring = EnableScoring::enabled_from_searcher(searcher);
        let mut scale = 0.0f32;
        let mut present: Vec<Term> = Vec::new();
        let mut terms: TextTerms = Vec::new();
        for (term, boost) in words {
            if searcher.doc_freq(&term)? == 0 {
                continue;
            }
            let query = TermQuery::new(term.clone(), IndexRecordOption::WithFreqs);
            // Unboosted: only a bare term query is answered with block-max pruning.
            let best = searcher
                .search(&query, &TopDocs::with_limit(1).order_by_score())?
                .first()
                .map_or(0.0, |(s, _)| *s * boost);
            if best <= 0.0 {
                continue;
            }
            scale += best;
            // The most this term can score in any document: the bound that lets the
            // collector leave it unsought.
            let max = Bm25Weight::for_terms(searcher, std::slice::from_ref(&term))?
                .boost_by(boost)
                .max_score();
            terms.push((
                BoostQuery::new(Box::new(query), boost).weight(scoring)?,
                max,
            ));
            present.push(term);
        }
        Ok((!terms.is_empty()).then(|| Self {
            terms: Arc::new(terms),
            present,
            scale,
        }))
    }
}
