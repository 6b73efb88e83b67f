//! Candidate retrieval for recommendations: exact top-k by tiers.
//!
//! The graded factors (stage, role, industry, language) give every asset one of a few
//! levels per factor; a *tier* is one combination of levels, and every asset in it has the
//! same graded score D. Tiers are visited in decreasing D. Each asset is indexed under one
//! `tier_key` term per combination of its stage, role, language and industry, so a tier is
//! a union of a few short posting lists (better levels' terms excluded) rather than an
//! intersection of four long ones; the few tiers keys cannot express ("another stage",
//! "another language", a factor weighted zero) fall back to that intersection.
//!
//! The continuous factors (text, concern, freshness, popularity) are scored exactly by a
//! collector over fast fields and are bounded by their weights, so the walk stops as soon
//! as the k-th best score found is at least the next tier's D plus that bound: no unvisited
//! asset can enter the top k, and the result equals scoring every document.
//!
//! Text is scored lazily. The text is analysed into one boosted term per field, as search
//! boosts them, and the collector seeks each term's postings only for documents whose
//! other factors could still beat the current k-th score. A tier's documents holding some
//! term are reached through the terms' postings (`collect_text_tier`); the others score
//! no text and are walked like a tier without text. (An optional text clause in the tier
//! query would make tantivy score every posting of every text term: most of the index for
//! common words.)

mod collector;
#[cfg(test)]
mod tests;
mod text;
mod tiers;

use std::ops::Bound;
use std::sync::Arc;

use tantivy::collector::DocSetCollector;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery};
use tantivy::{DocAddress, Searcher, Term};

use super::SearchIndex;
use super::filter::{FilterPlan, any_term, filter_query};
use crate::domain::{Asset, AssetFilter, Role, Stage, is_one_word};
use crate::error::AppResult;
use crate::ranking::{Dimension, RankContext};
use collector::{
    Excluded, TierCollector, TierCollectorSettings, Top, excluded_docs, freshness_slices,
};
use text::{TextWeights, collect_text_tier, text_scores};
use tiers::{TierSizes, graded_dims, tier_clauses, tier_key_terms, tiers};

/// What to retrieve.
pub struct RecommendRequest<'a> {
    /// Weights, clock, half-life and text: what the explanation reads too.
    pub rank: &'a RankContext,
    pub dimensions: &'a [Dimension],
    /// Its `statuses` are not consulted: only published assets are ever candidates.
    pub filter: &'a AssetFilter,
    pub exclude_ids: &'a [String],
    /// Assets with a popularity value for this audience. The tier walk bounds scores
    /// without popularity, so these are looked up and returned as well, whatever their
    /// tier, when they pass the filter; the caller's explanation scores them.
    pub popular_ids: &'a [String],
    /// Requested concerns as a mask.
    pub concerns: u64,
    /// How many candidates to return (the final list plus room for diversity).
    pub window: usize,
    /// A tier estimated to hold at least this many documents is visited in freshness
    /// slices (`DEFAULT_SLICE_TIERS_ABOVE`; tests vary it).
    pub slice_tiers_above: usize,
    /// Text outweighs every graded factor (a `nextContent` seed nobody tagged): take the
    /// best text matches as the candidates (see `text_first`) instead of walking tiers,
    /// which could not stop before scoring nearly every document.
    pub text_first: bool,
    /// The audience's stage and role: between equal scores, the asset that speaks to them
    /// more surely comes first.
    pub audience: (Stage, Option<Role>),
}

/// Text matches a text-first request takes as candidates, per candidate asked for.
const TEXT_FIRST_POOL_PER_CANDIDATE: usize = 5;

/// Tiers smaller than this are cheaper to score in one pass than in five slices: at 100k
/// assets the best tier of an explicit audience holds about 140 documents, an anonymous
/// one about 2,000.
pub const DEFAULT_SLICE_TIERS_ABOVE: usize = 400;

/// A retrieved asset with what the explanation needs.
pub struct Candidate {
    /// Shared with the index's cache of parsed assets.
    pub asset: Arc<Asset>,
    pub bm25: f32,
    /// The score retrieval ranked it by, without popularity (0 for a popular asset found
    /// outside the walk); the explanation recomputes it from the asset.
    pub score: f64,
}

pub struct Candidates {
    pub items: Vec<Candidate>,
    /// The TEXT factor's scale: what each text term scores at its best in the index,
    /// summed (see `ranking::text_value`).
    pub text_scale: f32,
    /// How many tiers were searched and documents scored: the cost of the request.
    pub tiers_searched: usize,
    pub docs_scored: u64,
}

impl SearchIndex {
    /// The `window` best assets for a request, exactly as if every matching asset had been
    /// scored. Blocking: call it off the async runtime.
    pub fn recommend(&self, request: &RecommendRequest<'_>) -> AppResult<Candidates> {
        let fields = &self.inner.fields;
        let searcher = self.inner.reader.searcher();
        let w = &request.rank.weights;
        let now = request.rank.now.timestamp();
        let half_life_days = request.rank.half_life_days;
        let window = request.window.max(1);

        // A synonym of several words counts only as a phrase in search; the walk scores
        // words, so it takes the one-word synonyms only ("financial services" would
        // otherwise add "services", a word of half the library).
        let one_word: Vec<&str> = request
            .rank
            .synonyms
            .iter()
            .map(String::as_str)
            .filter(|t| is_one_word(t))
            .collect();
        let words = match request.rank.query.as_deref() {
            Some(text) if w.text > 0.0 && one_word.is_empty() => self.text_terms(text),
            Some(text) if w.text > 0.0 => {
                self.text_terms(&format!("{text} {}", one_word.join(" ")))
            }
            _ => Vec::new(),
        };
        let text_first_words = request.text_first.then(|| words.clone());
        let text = TextWeights::new(&searcher, words)?;
        // Every tier's filter: whole for tiers that intersect the levels' own terms,
        // without the statuses for tiers reached through keys (only published assets
        // carry keys).
        let published = AssetFilter {
            statuses: Vec::new(),
            ..request.filter.clone()
        };
        let base: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Must, filter_query(fields, &published))];
        let key_base = FilterPlan::new(fields, &published, false).clauses();
        let excluded = Arc::new(excluded_docs(&searcher, fields.id, request.exclude_ids)?);
        let graded = graded_dims(&searcher, fields, request.dimensions, w)?;

        let concern_weight = if request.concerns == 0 {
            0.0
        } else {
            w.concern
        };
        let text_bound = if text.is_some() { w.text } else { 0.0 };
        // Popularity is zero until engagement is recorded, so it adds nothing to the bound.
        let other_bound = concern_weight + w.freshness;
        let settings = TierCollectorSettings {
            graded: 0.0,
            text_weight: 0.0,
            text_scale: text.as_ref().map_or(0.0, |t| t.scale),
            concern_weight,
            concerns: request.concerns,
            freshness_weight: w.freshness,
            now,
            half_life_days,
            limit: window,
            floor: f64::NEG_INFINITY,
            audience: request.audience,
        };
        if let (Some(words), Some(text)) = (&text_first_words, &text)
            && let Some(found) =
                self.text_first(&searcher, words, text, &published, &excluded, window)?
        {
            let docs_scored = found.len() as u64;
            let found = found.into_iter().map(|(a, bm25)| (a, bm25, 0.0)).collect();
            return Ok(Candidates {
                items: self.candidates(&searcher, found, request, &base, &excluded, Some(text))?,
                text_scale: text.scale,
                tiers_searched: 0,
                docs_scored,
            });
        }
        let mut sizes = TierSizes::new(&searcher, &graded, request.slice_tiers_above);
        let sliced = freshness_slices(now, half_life_days);
        let whole = [(Bound::Unbounded, Bound::Unbounded, 1.0)];

        let mut top = Top::new(window);
        let mut tiers_searched = 0;
        for tier in tiers(&graded) {
            if top.floor() >= tier.graded + text_bound + other_bound {
                break;
            }
            let keys = tier_key_terms(&searcher, fields.tier_key, &graded, &tier)?;
            // A tier no document has a key of costs nothing to skip. Tags read from the
            // text make many such tiers (one per combination of trust), so this matters
            // most for untagged libraries.
            if let Some(keys) = &keys {
                let mut held = 0;
                for key in keys {
                    held += searcher.doc_freq(key)?;
                }
                if held == 0 {
                    continue;
                }
            }
            tiers_searched += 1;
            let mut clauses = tier_clauses(&graded, &tier, keys.as_deref(), &base, &key_base);
            let settings = TierCollectorSettings {
                graded: tier.graded,
                ..settings
            };
            // With text, the tier's documents that hold a text term come first, reached
            // through those terms' postings. The others score no text and are walked
            // next like a tier without text, often not at all once the first part has
            // raised the floor.
            if let Some(text) = &text {
                let collector = TierCollector {
                    settings: TierCollectorSettings {
                        text_weight: text_bound,
                        floor: top.floor(),
                        ..settings
                    },
                    text: Some(text.terms.clone()),
                    excluded: excluded.clone(),
                };
                let query = BooleanQuery::new(clone_clauses(&clauses));
                top.add(collect_text_tier(&searcher, &query, &collector)?);
                clauses.push((Occur::MustNot, any_term(&text.present)));
            }
            // Freshness slices can stop the walk of documents that score no text; only
            // large tiers are worth slicing.
            let slices = if w.freshness > 0.0 && sizes.is_large(&tier, keys.as_deref())? {
                &sliced[..]
            } else {
                &whole[..]
            };
            for &(from, to, freshest) in slices {
                let floor = top.floor();
                if floor >= tier.graded + concern_weight + w.freshness * freshest {
                    break;
                }
                let mut query = clone_clauses(&clauses);
                if (from, to) != (Bound::Unbounded, Bound::Unbounded) {
                    let term = |ts: i64| Term::from_field_i64(fields.freshness_ts, ts);
                    query.push((
                        Occur::Must,
                        Box::new(RangeQuery::new(from.map(term), to.map(term))),
                    ));
                }
                let collector = TierCollector {
                    settings: TierCollectorSettings { floor, ..settings },
                    text: None,
                    excluded: excluded.clone(),
                };
                top.add(searcher.search(&BooleanQuery::new(query), &collector)?);
            }
        }

        let docs_scored = top.scored;
        let found = top
            .into_sorted()
            .into_iter()
            .map(|h| (h.address, h.bm25, h.score))
            .collect();
        Ok(Candidates {
            items: self.candidates(&searcher, found, request, &base, &excluded, text.as_ref())?,
            text_scale: text.as_ref().map_or(0.0, |t| t.scale),
            tiers_searched,
            docs_scored,
        })
    }

    /// The assets of what retrieval found (address, BM25, score), then of the popular
    /// ones it did not reach (scored by the explanation).
    fn candidates(
        &self,
        searcher: &Searcher,
        found: Vec<(DocAddress, f32, f64)>,
        request: &RecommendRequest<'_>,
        base: &[(Occur, Box<dyn Query>)],
        excluded: &Excluded,
        text: Option<&TextWeights>,
    ) -> AppResult<Vec<Candidate>> {
        let popular = self.popular_outside_the_walk(
            searcher,
            request.popular_ids,
            base,
            &found,
            excluded,
            text,
        )?;
        found
            .into_iter()
            .chain(popular.into_iter().map(|(a, bm25)| (a, bm25, 0.0)))
            .map(|(address, bm25, score)| {
                Ok(Candidate {
                    asset: self.load_asset(searcher, address)?,
                    bm25,
                    score,
                })
            })
            .collect()
    }

    /// The best text matches among the assets the filter lets through (excluded ones left
    /// out), with their BM25: `window` times a few, block-max pruned. `None` when fewer
    /// than `window` assets match, so the tier walk fills the list. Not exact like the
    /// walk: an asset far down the text order with the best graded fit can be missed,
    /// which is the point when the text is meant to lead.
    fn text_first(
        &self,
        searcher: &Searcher,
        words: &[(Term, f32)],
        text: &TextWeights,
        published: &AssetFilter,
        excluded: &Excluded,
        window: usize,
    ) -> AppResult<Option<Vec<(DocAddress, f32)>>> {
        use tantivy::collector::TopDocs;
        use tantivy::query::{BoostQuery, TermQuery};
        use tantivy::schema::IndexRecordOption;
        let any_word: Vec<(Occur, Box<dyn Query>)> = words
            .iter()
            .map(|(term, boost)| {
                let q: Box<dyn Query> = Box::new(BoostQuery::new(
                    Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs)),
                    *boost,
                ));
                (Occur::Should, q)
            })
            .collect();
        let query = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(BooleanQuery::new(any_word)) as Box<dyn Query>,
            ),
            (
                Occur::Must,
                Box::new(tantivy::query::ConstScoreQuery::new(
                    filter_query(&self.inner.fields, published),
                    0.0,
                )),
            ),
        ]);
        let pool = (window * TEXT_FIRST_POOL_PER_CANDIDATE).max(100);
        let mut found: Vec<DocAddress> = searcher
            .search(&query, &TopDocs::with_limit(pool).order_by_score())?
            .into_iter()
            .map(|(_, address)| address)
            .filter(|a| {
                excluded[a.segment_ord as usize]
                    .binary_search(&a.doc_id)
                    .is_err()
            })
            .collect();
        if found.len() < window {
            return Ok(None);
        }
        found.sort();
        let bm25 = text_scores(searcher, &text.terms, &found)?;
        Ok(Some(found.into_iter().zip(bm25).collect()))
    }

    /// Popular assets the walk did not reach, with their text scores: the walk's bound
    /// leaves popularity out, so any of them might still beat its k-th score.
    fn popular_outside_the_walk(
        &self,
        searcher: &Searcher,
        popular_ids: &[String],
        base: &[(Occur, Box<dyn Query>)],
        found: &[(DocAddress, f32, f64)],
        excluded: &Excluded,
        text: Option<&TextWeights>,
    ) -> AppResult<Vec<(DocAddress, f32)>> {
        if popular_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Term> = popular_ids
            .iter()
            .map(|id| Term::from_field_text(self.inner.fields.id, id))
            .collect();
        let mut query = clone_clauses(base);
        query.push((Occur::Must, any_term(&ids)));
        let mut found: Vec<DocAddress> = searcher
            .search(&BooleanQuery::new(query), &DocSetCollector)?
            .into_iter()
            .filter(|a| {
                !found.iter().any(|f| f.0 == *a)
                    && excluded[a.segment_ord as usize]
                        .binary_search(&a.doc_id)
                        .is_err()
            })
            .collect();
        found.sort();
        let bm25 = match text {
            Some(text) => text_scores(searcher, &text.terms, &found)?,
            None => vec![0.0; found.len()],
        };
        Ok(found.into_iter().zip(bm25).collect())
    }
}

fn clone_clauses(clauses: &[(Occur, Box<dyn Query>)]) -> Vec<(Occur, Box<dyn Query>)> {
    clauses.iter().map(|(o, q)| (*o, q.box_clone())).collect()
}
