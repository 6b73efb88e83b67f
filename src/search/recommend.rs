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

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::Bound;

use std::sync::Arc;
use tantivy::DocSet;
use tantivy::collector::{Collector, DocSetCollector, SegmentCollector, TopDocs};
use tantivy::columnar::Column;

use tantivy::query::{
    Bm25Weight, BooleanQuery, BoostQuery, EnableScoring, Occur, Query, RangeQuery, Scorer,
    TermQuery, Weight,
};
use tantivy::schema::Field;
use tantivy::schema::IndexRecordOption;
use tantivy::{
    DocAddress, DocId, Score, Searcher, SegmentOrdinal, SegmentReader, TERMINATED, Term,
};

use super::SearchIndex;
use super::filter::{FilterPlan, any_term, filter_query};
use super::schema::{ANY, EVERGREEN_TS, Fields, SPECIFIC, UNDATED_TS, tier_key};
use crate::domain::{Asset, AssetFilter, TaxonomyValue};
use crate::error::AppResult;
use crate::ranking::{Criterion, Dimension, Weights, concern_value, freshness_value, text_value};

/// What to retrieve.
pub struct RecommendRequest<'a> {
    pub dimensions: &'a [Dimension],
    pub weights: &'a Weights,
    /// Its `statuses` are not consulted: only published assets are ever candidates.
    pub filter: &'a AssetFilter,
    pub exclude_ids: &'a [String],
    /// Assets with a popularity value for this audience. The tier walk bounds scores
    /// without popularity, so these are looked up and returned as well, whatever their
    /// tier, when they pass the filter; the caller's explanation scores them.
    pub popular_ids: &'a [String],
    pub text: Option<&'a str>,
    /// Requested concerns as a mask.
    pub concerns: u64,
    pub now: i64,
    pub half_life_days: f64,
    /// How many candidates to return (the final list plus room for diversity).
    pub window: usize,
    /// A tier estimated to hold at least this many documents is visited in freshness
    /// slices (`DEFAULT_SLICE_TIERS_ABOVE`; tests vary it).
    pub slice_tiers_above: usize,
}

/// Tiers smaller than this are cheaper to score in one pass than in five slices: at 100k
/// assets the best tier of an explicit audience holds about 140 documents, an anonymous
/// one about 2,000.
pub const DEFAULT_SLICE_TIERS_ABOVE: usize = 400;

/// A retrieved asset with what the explanation needs.
pub struct Candidate {
    pub asset: Asset,
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

/// One level of one factor, as terms.
struct IndexLevel {
    criteria: Vec<Criterion>,
    terms: Vec<Term>,
    value: f64,
}

/// One graded factor with a weight, as the tier walk sees it.
struct GradedDim {
    weight: f64,
    levels: Vec<IndexLevel>,
    rest_value: f64,
}

struct Tier {
    graded: f64,
    /// Per factor: the chosen level index (`levels.len()` = none of the levels).
    levels: Vec<usize>,
}

fn criterion_term(fields: &Fields, c: &Criterion) -> Term {
    match c {
        Criterion::Stage(s) => Term::from_field_text(fields.stage, s.name()),
        Criterion::Role(r) => Term::from_field_text(fields.role, r.name()),
        Criterion::AnyRole => Term::from_field_text(fields.role, ANY),
        Criterion::IndustryExact(i) => Term::from_field_text(fields.industry, i.as_str()),
        Criterion::IndustryWithin(i) => Term::from_field_text(fields.industry_tree, i.as_str()),
        Criterion::AnyIndustry => Term::from_field_text(fields.industry, ANY),
        Criterion::Language(l) => Term::from_field_text(fields.language_match, l),
    }
}

/// Every combination of levels, best graded score first.
fn tiers(graded: &[GradedDim]) -> Vec<Tier> {
    let mut out = vec![Tier {
        graded: 0.0,
        levels: Vec::new(),
    }];
    for dim in graded {
        let mut next = Vec::with_capacity(out.len() * (dim.levels.len() + 1));
        for tier in &out {
            for choice in 0..=dim.levels.len() {
                let value = dim
                    .levels
                    .get(choice)
                    .map(|l| l.value)
                    .unwrap_or(dim.rest_value);
                let mut chosen = tier.levels.clone();
                chosen.push(choice);
                next.push(Tier {
                    graded: tier.graded + dim.weight * value,
                    levels: chosen,
                });
            }
        }
        out = next;
    }
    out.sort_by(|a, b| {
        b.graded
            .total_cmp(&a.graded)
            .then_with(|| a.levels.cmp(&b.levels))
    });
    out
}

/// Where a criterion's value goes in a `tier_key`: stage, role, language, industry.
const KEY_PARTS: usize = 4;

/// A criterion as a `tier_key` part: its slot, its value, and whether the industries below
/// it count too.
fn key_part(c: &Criterion) -> (usize, &str, bool) {
    match c {
        Criterion::Stage(s) => (0, s.name(), false),
        Criterion::Role(r) => (1, r.name(), false),
        Criterion::AnyRole => (1, ANY, false),
        Criterion::Language(l) => (2, l.as_str(), false),
        Criterion::IndustryExact(i) => (3, i.as_str(), false),
        Criterion::IndustryWithin(i) => (3, i.as_str(), true),
        Criterion::AnyIndustry => (3, ANY, false),
    }
}

/// The `tier_key` terms that hold every document of a tier (the better levels still have
/// to be excluded), or `None` when the tier cannot be written as keys: a factor left out
/// by a zero weight, or "another stage" or "another language".
///
/// A factor's "rest" level is `SPECIFIC` when one of its levels is the `ANY` of assets
/// for every role or industry: an asset that is not for every role names some role.
fn tier_key_terms(
    searcher: &Searcher,
    field: Field,
    graded: &[GradedDim],
    tier: &Tier,
) -> tantivy::Result<Option<Vec<Term>>> {
    // Per part: exact values, and values whose subtree counts too.
    let mut parts: [Option<(Vec<&str>, Vec<&str>)>; KEY_PARTS] = Default::default();
    for (dim, &choice) in graded.iter().zip(&tier.levels) {
        let (slot, values, below) = match dim.levels.get(choice) {
            Some(level) => {
                let Some(first) = level.criteria.first() else {
                    return Ok(None);
                };
                let slot = key_part(first).0;
                let mut values = Vec::new();
                let mut below = Vec::new();
                for c in &level.criteria {
                    let (s, value, subtree) = key_part(c);
                    if s != slot {
                        return Ok(None);
                    }
                    values.push(value);
                    if subtree {
                        below.push(value);
                    }
                }
                (slot, values, below)
            }
            None => {
                let any = dim
                    .levels
                    .iter()
                    .flat_map(|l| &l.criteria)
                    .find(|c| is_any(c));
                match any {
                    Some(c) => (key_part(c).0, vec![SPECIFIC], Vec::new()),
                    None => return Ok(None),
                }
            }
        };
        if parts[slot].is_some() {
            return Ok(None);
        }
        parts[slot] = Some((values, below));
    }
    let [Some(stages), Some(roles), Some(languages), Some(industries)] = parts else {
        return Ok(None);
    };
    let mut terms: Vec<Term> = Vec::new();
    let mut add = |key: &str| {
        let term = Term::from_field_text(field, key);
        if !terms.contains(&term) {
            terms.push(term);
        }
    };
    for stage in &stages.0 {
        for role in &roles.0 {
            for language in &languages.0 {
                for industry in &industries.0 {
                    add(&tier_key(stage, role, language, industry));
                }
                // The industries below one: every key that starts with it and a slash,
                // as each segment's term dictionary lists them.
                for industry in &industries.1 {
                    let from = tier_key(stage, role, language, &format!("{industry}/"));
                    let to = tier_key(stage, role, language, &format!("{industry}0"));
                    for segment in searcher.segment_readers() {
                        let index = segment.inverted_index(field)?;
                        let mut stream = index.terms().range().ge(&from).lt(&to).into_stream()?;
                        while stream.advance() {
                            if let Ok(key) = std::str::from_utf8(stream.key()) {
                                add(key);
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(Some(terms))
}

/// For each level of each factor, the share of the index its terms match.
fn level_shares(searcher: &Searcher, graded: &[GradedDim]) -> tantivy::Result<Vec<Vec<f64>>> {
    let total = searcher.num_docs().max(1) as f64;
    graded
        .iter()
        .map(|dim| {
            dim.levels
                .iter()
                .map(|l| {
                    let mut matched = 0;
                    for term in &l.terms {
                        matched += searcher.doc_freq(term)?;
                    }
                    Ok((matched as f64 / total).min(1.0))
                })
                .collect()
        })
        .collect()
}

fn is_any(c: &Criterion) -> bool {
    matches!(c, Criterion::AnyRole | Criterion::AnyIndustry)
}

/// Whether no document of a tier whose keys come from `chosen` (the rest level when
/// `None`: `SPECIFIC`) can meet a better level's criterion, so excluding it is wasted
/// work: an asset for every role names no role, and one that names roles is not for
/// every role.
fn disjoint(better: &Criterion, chosen: Option<&IndexLevel>) -> bool {
    let Some(level) = chosen else {
        return is_any(better);
    };
    if is_any(better) {
        !level.criteria.iter().any(is_any)
    } else {
        !level.criteria.is_empty() && level.criteria.iter().all(is_any)
    }
}

#[derive(Clone, Copy)]
struct Hit {
    score: f64,
    bm25: f32,
    address: DocAddress,
}

impl PartialEq for Hit {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Hit {}
impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Hit {
    /// Reversed, so a `BinaryHeap<Hit>` pops the worst hit first; equal scores keep the
    /// lower document address.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then_with(|| self.address.cmp(&other.address))
    }
}

/// The `limit`-th best score so far; minus infinity while there are fewer hits.
fn kth_score(top: &BinaryHeap<Hit>, limit: usize) -> f64 {
    if top.len() >= limit {
        top.peek().map_or(f64::NEG_INFINITY, |h| h.score)
    } else {
        f64::NEG_INFINITY
    }
}

/// Keeps the `limit` best hits: adds `hit` if there is room or it beats the worst.
fn push_bounded(top: &mut BinaryHeap<Hit>, hit: Hit, limit: usize) {
    if top.len() < limit {
        top.push(hit);
    } else if let Some(worst) = top.peek()
        && hit < *worst
    {
        top.pop();
        top.push(hit);
    }
}

/// The text's boosted term queries, each with the most it can add to a document's BM25.
type TextTerms = Vec<(Box<dyn Weight>, f32)>;

/// Scores one tier's documents exactly on the continuous factors.
struct TierCollector {
    settings: TierCollectorSettings,
    /// The text's boosted terms with the most each can score, when there is text.
    text: Option<Arc<TextTerms>>,
    excluded: Arc<Excluded>,
}

/// Documents never to collect, per segment ordinal, sorted: the request's excluded assets
/// (an account's reading can be thousands), looked up once per request instead of as a
/// clause of every tier's query.
type Excluded = Vec<Vec<DocId>>;

/// The documents of the assets with these ids, per segment.
fn excluded_docs(searcher: &Searcher, id_field: Field, ids: &[String]) -> AppResult<Excluded> {
    let mut out = Vec::with_capacity(searcher.segment_readers().len());
    for reader in searcher.segment_readers() {
        let inverted = reader.inverted_index(id_field)?;
        let mut docs = Vec::new();
        for id in ids {
            let term = Term::from_field_text(id_field, id);
            if let Some(mut postings) = inverted
                .read_postings(&term, IndexRecordOption::Basic)
                .map_err(tantivy::TantivyError::from)?
            {
                let mut doc = postings.doc();
                while doc != TERMINATED {
                    docs.push(doc);
                    doc = postings.advance();
                }
            }
        }
        docs.sort_unstable();
        docs.dedup();
        out.push(docs);
    }
    Ok(out)
}

struct TierSegmentCollector {
    segment: SegmentOrdinal,
    settings: TierCollectorSettings,
    excluded: Arc<Excluded>,
    freshness_ts: Column<i64>,
    concerns: Column<u64>,
    /// One scorer per text term that occurs in the segment, highest possible score
    /// first, advanced only to documents that need a text score.
    text: Vec<Box<dyn Scorer>>,
    /// `text_rest[i]`: the most the scorers from `i` on can add to a document's BM25.
    text_rest: Vec<f32>,
    top: BinaryHeap<Hit>,
    scored: u64,
    /// `essential_terms` at the last floor it was computed for.
    essential: Option<(f64, usize)>,
}

/// What every segment of one tier is scored with.
#[derive(Clone, Copy)]
struct TierCollectorSettings {
    graded: f64,
    text_weight: f64,
    text_scale: f32,
    concern_weight: f64,
    concerns: u64,
    freshness_weight: f64,
    now: i64,
    half_life_days: f64,
    limit: usize,
    floor: f64,
}

impl Collector for TierCollector {
    type Fruit = (Vec<Hit>, u64);
    type Child = TierSegmentCollector;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<TierSegmentCollector> {
        let ff = reader.fast_fields();
        let mut text: Vec<(Box<dyn Scorer>, f32)> = Vec::new();
        for (weight, max) in self.text.iter().flat_map(|w| w.iter()) {
            let scorer = weight.scorer(reader, 1.0)?;
            if scorer.doc() != TERMINATED {
                text.push((scorer, *max));
            }
        }
        text.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut text_rest = vec![0.0f32; text.len() + 1];
        for i in (0..text.len()).rev() {
            text_rest[i] = text_rest[i + 1] + text[i].1;
        }
        Ok(TierSegmentCollector {
            segment,
            settings: self.settings,
            excluded: self.excluded.clone(),
            freshness_ts: ff.i64("freshness_ts")?,
            concerns: ff.u64("concern_mask")?,
            text: text.into_iter().map(|(scorer, _)| scorer).collect(),
            text_rest,
            top: BinaryHeap::with_capacity(self.settings.limit + 1),
            scored: 0,
            essential: None,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, segments: Vec<(Vec<Hit>, u64)>) -> tantivy::Result<(Vec<Hit>, u64)> {
        let scored = segments.iter().map(|s| s.1).sum();
        Ok((segments.into_iter().flat_map(|s| s.0).collect(), scored))
    }
}

impl SegmentCollector for TierSegmentCollector {
    type Fruit = (Vec<Hit>, u64);

    fn collect(&mut self, doc: DocId, _: Score) {
        if self.excluded[self.segment as usize]
            .binary_search(&doc)
            .is_ok()
        {
            return;
        }
        let s = &self.settings;
        self.scored += 1;
        let freshness = freshness_at(
            self.freshness_ts.first(doc).unwrap_or(UNDATED_TS),
            s.now,
            s.half_life_days,
        );
        let mut base = s.graded + s.freshness_weight * freshness;
        if s.concern_weight > 0.0 {
            let concerns = self.concerns.first(doc).unwrap_or(0);
            base += s.concern_weight * concern_value(s.concerns, concerns);
        }
        let floor = self.floor();
        if base + s.text_weight <= floor {
            return;
        }
        // The terms that can add most are sought first; once even the rest at their best
        // could not lift the document past the floor, it is dropped unsought.
        let mut bm25 = 0.0;
        for (scorer, rest) in self.text.iter_mut().zip(&self.text_rest) {
            if base + s.text_weight * reachable_text(bm25 + rest, s.text_scale) <= floor {
                return;
            }
            if scorer.doc() < doc {
                scorer.seek(doc);
            }
            if scorer.doc() == doc && doc != TERMINATED {
                bm25 += scorer.score();
            }
        }
        let score = base + s.text_weight * text_value(bm25, s.text_scale);
        if score <= floor {
            return;
        }
        let hit = Hit {
            score,
            bm25,
            address: DocAddress::new(self.segment, doc),
        };
        push_bounded(&mut self.top, hit, s.limit);
    }

    fn harvest(self) -> (Vec<Hit>, u64) {
        (self.top.into_vec(), self.scored)
    }
}

impl TierSegmentCollector {
    /// The score a document must beat to enter: the k-th best of the tier's start, or of
    /// this segment once it holds k hits (the global k-th can only be better).
    fn floor(&self) -> f64 {
        let s = &self.settings;
        match self.top.peek() {
            Some(worst) if self.top.len() >= s.limit => s.floor.max(worst.score),
            _ => s.floor,
        }
    }

    /// How many of the text terms (most they can score first) a document must contain one
    /// of to still enter, the rest being unable to lift it past the floor even at their
    /// best; all of them while the floor is that low, 0 once nothing can enter.
    fn essential_terms(&mut self) -> usize {
        let s = &self.settings;
        let floor = self.floor();
        if let Some((at, essential)) = self.essential
            && at == floor
        {
            return essential;
        }
        let base_max = s.graded + s.freshness_weight + s.concern_weight;
        let essential = (0..self.text.len())
            .find(|&e| {
                base_max + s.text_weight * reachable_text(self.text_rest[e], s.text_scale) <= floor
            })
            .unwrap_or(self.text.len());
        self.essential = Some((floor, essential));
        essential
    }
}

/// The documents of a tier that hold at least one text term, visited the way MaxScore
/// visits a disjunction: by leapfrogging between the tier's postings and the terms', and
/// once the floor is high enough that a document needs one of the highest-bounded terms to
/// enter, only through those terms' postings. The result is the collector's over every
/// such document of the tier, with less visited.
fn collect_text_tier(
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
fn reachable_text(bm25_bound: f32, scale: f32) -> f64 {
    text_value(bm25_bound * (1.0 + f32::EPSILON * 4.0), scale)
}

/// The FRESHNESS value of an asset from its `freshness_ts` column, as `ranking` defines it.
fn freshness_at(ts: i64, now: i64, half_life_days: f64) -> f64 {
    match ts {
        EVERGREEN_TS => freshness_value(None, true, now, half_life_days),
        UNDATED_TS => freshness_value(None, false, now, half_life_days),
        t => freshness_value(Some(t), false, now, half_life_days),
    }
}

/// A large tier is visited in slices of `freshness_ts`, freshest first, so that the walk
/// can stop inside it: every asset of a slice is at most as fresh as the slice's newest
/// edge. Ages are in fractions of the half-life; evergreen assets (and future dates) come
/// first, undated ones (freshness one half) with the oldest.
fn freshness_slices(now: i64, half_life_days: f64) -> Vec<(Bound<i64>, Bound<i64>, f64)> {
    let day = 86_400.0;
    let edge = |fraction: f64| now - (fraction * half_life_days.max(1.0) * day) as i64;
    let at = |ts: i64| freshness_at(ts, now, half_life_days);
    let (e1, e2, e3) = (edge(0.125), edge(0.5), edge(1.0));
    vec![
        (Bound::Included(now), Bound::Unbounded, 1.0),
        (Bound::Included(e1), Bound::Excluded(now), at(now)),
        (Bound::Included(e2), Bound::Excluded(e1), at(e1)),
        (Bound::Included(e3), Bound::Excluded(e2), at(e2)),
        (
            Bound::Unbounded,
            Bound::Excluded(e3),
            at(e3).max(at(UNDATED_TS)),
        ),
    ]
}

/// The summed BM25 of the text terms for each address (sorted by address).
fn text_scores(
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

impl SearchIndex {
    /// The `window` best assets for a request, exactly as if every matching asset had been
    /// scored. Blocking: call it off the async runtime.
    pub fn recommend(&self, request: &RecommendRequest<'_>) -> AppResult<Candidates> {
        let fields = &self.inner.fields;
        let searcher = self.inner.reader.searcher();
        let w = request.weights;
        let window = request.window.max(1);

        // One boosted term query per field and word; their summed BM25 is the text score.
        let text_terms: Vec<(Term, f32)> = request
            .text
            .filter(|_| w.text > 0.0)
            .map(|t| self.text_terms(t))
            .unwrap_or_default();
        // The TEXT scale: what each term scores at its best anywhere in the index, summed.
        // A term's best is a top-1 query over its own postings, which block-max pruning
        // answers from a few blocks; the best of the whole bag of words would need a
        // disjunction over every posting of every term (most of the index for common
        // words), measured at more than half of a text recommendation.
        let scoring = EnableScoring::enabled_from_searcher(&searcher);
        let mut text_scale = 0.0f32;
        let mut text_present: Vec<Term> = Vec::new();
        let mut weights: TextTerms = Vec::new();
        for (term, boost) in text_terms {
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
            text_scale += best;
            // The most this term can score in any document: the bound that lets the
            // collector leave it unsought.
            let max = Bm25Weight::for_terms(&searcher, std::slice::from_ref(&term))?
                .boost_by(boost)
                .max_score();
            weights.push((
                BoostQuery::new(Box::new(query), boost).weight(scoring)?,
                max,
            ));
            text_present.push(term);
        }
        let text_weights = (!weights.is_empty()).then(|| Arc::new(weights));

        // Every tier's filter: whole for tiers that intersect the levels' own terms,
        // without the statuses for tiers reached through keys.
        let published = AssetFilter {
            statuses: Vec::new(),
            ..request.filter.clone()
        };
        let base: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Must, filter_query(fields, &published))];
        let key_base = FilterPlan::new(fields, &published, false).clauses();
        let excluded = Arc::new(excluded_docs(&searcher, fields.id, request.exclude_ids)?);

        // Graded factors with no weight cannot change the order: leave them out of tiers.
        let graded: Vec<GradedDim> = request
            .dimensions
            .iter()
            .map(|d| (w.get(d.factor), d))
            .filter(|(weight, _)| *weight > 0.0)
            .map(|(weight, d)| GradedDim {
                weight,
                levels: d
                    .levels
                    .iter()
                    .map(|l| IndexLevel {
                        criteria: l.criteria.clone(),
                        terms: l
                            .criteria
                            .iter()
                            .map(|c| criterion_term(fields, c))
                            .collect(),
                        value: l.value,
                    })
                    .collect(),
                rest_value: d.rest_value,
            })
            .collect();

        let concern_weight = if request.concerns == 0 {
            0.0
        } else {
            w.concern
        };
        let text_bound = if text_weights.is_some() { w.text } else { 0.0 };
        // Popularity is zero until engagement is recorded, so it adds nothing to the bound.
        let other_bound = concern_weight + w.freshness;

        let mut top: BinaryHeap<Hit> = BinaryHeap::with_capacity(window + 1);
        let mut tiers_searched = 0;
        let mut docs_scored = 0;
        // Freshness slices can stop the walk of documents that score no text; only then
        // are tier sizes needed.
        let may_slice = w.freshness > 0.0;
        let total = searcher.num_docs().max(1) as f64;
        let mut level_share: Option<Vec<Vec<f64>>> = None;
        let sliced = freshness_slices(request.now, request.half_life_days);
        let fresh_ts = fields.freshness_ts;
        for tier in tiers(&graded) {
            let floor = kth_score(&top, window);
            if floor >= tier.graded + text_bound + other_bound {
                break;
            }
            let keys = tier_key_terms(&searcher, fields.tier_key, &graded, &tier)?;
            // Only published assets carry keys, so key tiers need no status clause.
            let mut clauses: Vec<(Occur, Box<dyn Query>)> =
                (if keys.is_some() { &key_base } else { &base })
                    .iter()
                    .map(|(o, q)| (*o, q.box_clone()))
                    .collect();
            if let Some(keys) = &keys {
                clauses.push((Occur::Must, any_term(keys)));
            }
            for (dim, &choice) in graded.iter().zip(&tier.levels) {
                let chosen = dim.levels.get(choice);
                if keys.is_none()
                    && let Some(level) = chosen
                {
                    clauses.push((Occur::Must, any_term(&level.terms)));
                }
                let better: Vec<Term> = dim.levels[..choice.min(dim.levels.len())]
                    .iter()
                    .flat_map(|l| l.criteria.iter().zip(&l.terms))
                    .filter(|(c, _)| keys.is_none() || !disjoint(c, chosen))
                    .map(|(_, t)| t.clone())
                    .collect();
                if !better.is_empty() {
                    clauses.push((Occur::MustNot, any_term(&better)));
                }
            }
            let slice = may_slice
                && match &keys {
                    // Every document of the tier has one of its keys.
                    Some(keys) => {
                        let mut size = 0;
                        for key in keys {
                            size += searcher.doc_freq(key)?;
                        }
                        size as f64 >= request.slice_tiers_above as f64
                    }
                    // The tier's size if its factors were independent (an over-estimate
                    // for all but the best tier, which excludes nothing).
                    None => {
                        let shares = match &level_share {
                            Some(shares) => shares,
                            None => level_share.insert(level_shares(&searcher, &graded)?),
                        };
                        let estimate: f64 = graded
                            .iter()
                            .zip(&tier.levels)
                            .zip(shares.iter())
                            .filter_map(|((_, &choice), share)| share.get(choice).copied())
                            .product::<f64>()
                            * total;
                        estimate >= request.slice_tiers_above as f64
                    }
                };
            let whole = [(Bound::Unbounded, Bound::Unbounded, 1.0)];
            let slices = if slice { &sliced[..] } else { &whole[..] };
            tiers_searched += 1;
            let settings = |floor: f64, text_weight: f64| TierCollectorSettings {
                graded: tier.graded,
                text_weight,
                text_scale,
                concern_weight,
                concerns: request.concerns,
                freshness_weight: w.freshness,
                now: request.now,
                half_life_days: request.half_life_days,
                limit: window,
                floor,
            };
            // With text, the tier's documents that hold a text term come first, reached
            // through those terms' postings. The others score no text and are walked
            // next like a tier without text, often not at all once the first part has
            // raised the floor.
            if let Some(text) = &text_weights {
                let collector = TierCollector {
                    settings: settings(kth_score(&top, window), text_bound),
                    text: Some(text.clone()),
                    excluded: excluded.clone(),
                };
                let query =
                    BooleanQuery::new(clauses.iter().map(|(o, q)| (*o, q.box_clone())).collect());
                let (hits, scored) = collect_text_tier(&searcher, &query, &collector)?;
                docs_scored += scored;
                for hit in hits {
                    push_bounded(&mut top, hit, window);
                }
                clauses.push((Occur::MustNot, any_term(&text_present)));
            }
            for &(from, to, freshest) in slices {
                let floor = kth_score(&top, window);
                if floor >= tier.graded + concern_weight + w.freshness * freshest {
                    break;
                }
                let mut query = clauses
                    .iter()
                    .map(|(o, q)| (*o, q.box_clone()))
                    .collect::<Vec<_>>();
                if (from, to) != (Bound::Unbounded, Bound::Unbounded) {
                    let term = |ts: i64| Term::from_field_i64(fresh_ts, ts);
                    query.push((
                        Occur::Must,
                        Box::new(RangeQuery::new(from.map(term), to.map(term))),
                    ));
                }
                let collector = TierCollector {
                    settings: settings(floor, 0.0),
                    text: None,
                    excluded: excluded.clone(),
                };
                let (hits, scored) = searcher.search(&BooleanQuery::new(query), &collector)?;
                docs_scored += scored;
                for hit in hits {
                    push_bounded(&mut top, hit, window);
                }
            }
        }

        let mut hits = top.into_vec();
        hits.sort();
        // Popular assets the walk did not reach: the walk's bound leaves popularity out,
        // so any of them might still beat its k-th score.
        let mut popular = Vec::new();
        if !request.popular_ids.is_empty() {
            let ids: Vec<Term> = request
                .popular_ids
                .iter()
                .map(|id| Term::from_field_text(fields.id, id))
                .collect();
            let mut query: Vec<(Occur, Box<dyn Query>)> =
                base.iter().map(|(o, q)| (*o, q.box_clone())).collect();
            query.push((Occur::Must, any_term(&ids)));
            let mut found: Vec<DocAddress> = searcher
                .search(&BooleanQuery::new(query), &DocSetCollector)?
                .into_iter()
                .filter(|a| {
                    !hits.iter().any(|h| h.address == *a)
                        && excluded[a.segment_ord as usize]
                            .binary_search(&a.doc_id)
                            .is_err()
                })
                .collect();
            found.sort();
            let bm25 = match &text_weights {
                Some(text) => text_scores(&searcher, text, &found)?,
                None => vec![0.0; found.len()],
            };
            popular = found.into_iter().zip(bm25).collect();
        }
        let items = hits
            .into_iter()
            .map(|h| (h.address, h.bm25, h.score))
            .chain(
                popular
                    .into_iter()
                    .map(|(address, bm25)| (address, bm25, 0.0)),
            )
            .map(|(address, bm25, score)| {
                Ok(Candidate {
                    asset: self.load_asset(&searcher, address)?,
                    bm25,
                    score,
                })
            })
            .collect::<AppResult<Vec<_>>>()?;
        Ok(Candidates {
            items,
            text_scale,
            tiers_searched,
            docs_scored,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AssetDraft, Concern, IndustrySlug, Language, Role, Stage};
    use crate::ranking::{Audience, WeightOverrides, graded_dimensions};
    use crate::search::{IndexLock, IndexOp, open};

    fn demo_index() -> (tempfile::TempDir, SearchIndex, Vec<Asset>) {
        let dir = tempfile::tempdir().unwrap();
        let lock = IndexLock::acquire(dir.path()).unwrap();
        let (index, mut writer) = open(&lock, 32 * 1024 * 1024).unwrap();
        let assets: Vec<Asset> = include_str!("../../demo/library.jsonl")
            .lines()
            .map(|l| {
                serde_json::from_str::<AssetDraft>(l)
                    .unwrap()
                    .validate()
                    .unwrap()
            })
            .collect();
        let n = assets.len();
        // Two commits, so the index has more than one segment.
        for (seq, half) in assets.chunks(n.div_ceil(2)).enumerate() {
            let ops = half
                .iter()
                .cloned()
                .map(|a| IndexOp::Upsert(Box::new(a)))
                .collect();
            writer.stage(ops).unwrap();
            writer.commit(seq as i64 + 1).unwrap();
        }
        // A third commit retires every seventh asset, so the first segments hold deleted
        // (published) versions that must never be found.
        let mut assets = assets;
        let mut retired = Vec::new();
        for asset in assets.iter_mut().step_by(7) {
            asset.status = crate::domain::AssetStatus::Retired;
            retired.push(IndexOp::Upsert(Box::new(asset.clone())));
        }
        writer.stage(retired).unwrap();
        writer.commit(3).unwrap();
        drop(lock);
        (dir, index, assets)
    }

    fn ids(c: &Candidates) -> Vec<(String, i64)> {
        c.items
            .iter()
            .map(|i| (i.asset.id.to_string(), (i.score * 1e9).round() as i64))
            .collect()
    }

    #[test]
    fn tiers_give_exactly_the_exhaustive_top_k() {
        let (_dir, index, assets) = demo_index();
        let n = assets.len();
        let now = chrono::Utc::now().timestamp();
        let industries = [
            None,
            Some("financial-services/payments"),
            Some("retail"),
            Some("healthcare"),
        ];
        let roles = [
            None,
            Some(Role::TechnicalIntegrator),
            Some(Role::Finance),
            Some(Role::Procurement),
        ];
        let texts = [
            None,
            Some("reconciliation"),
            Some("结算"),
            Some("security api"),
        ];
        let weight_sets = [
            WeightOverrides::default(),
            WeightOverrides {
                stage: Some(0.0),
                text: Some(6.0),
                ..Default::default()
            },
            WeightOverrides {
                language: Some(0.0),
                freshness: Some(4.0),
                ..Default::default()
            },
        ];
        let filters = [
            AssetFilter::default(),
            AssetFilter {
                content_types: vec![crate::domain::ContentType::CaseStudy],
                ..Default::default()
            },
        ];
        let mut checked = 0;
        let mut pruned_tiers = 0;
        for (case, stage) in Stage::ALL.iter().enumerate() {
            for (r, role) in roles.iter().enumerate() {
                let industry = industries[(case + r) % industries.len()];
                let text = texts[(case * 3 + r) % texts.len()];
                let overrides = &weight_sets[(case + 2 * r) % weight_sets.len()];
                let filter = &filters[(case + r) % filters.len()];
                let audience = Audience {
                    stage: *stage,
                    role: *role,
                    industry: industry.map(|i| IndustrySlug::parse(i).unwrap()),
                    language: Language::parse(if case % 2 == 0 { "en" } else { "zh" }).unwrap(),
                    concerns: if r == 2 {
                        vec![Concern::Cost, Concern::Risk]
                    } else {
                        vec![]
                    },
                };
                let weights = Weights::default().with(overrides).unwrap();
                let dims = graded_dimensions(&audience);
                // The excluded: one named asset and every ninth of the library (some of
                // them drafts or retired), skipped by the collector, not by the query.
                let mut exclude = vec!["pricing-sheet".to_owned()];
                exclude.extend(assets.iter().step_by(9).map(|a| a.id.to_string()));
                // The reference scores every document in one pass per tier; half the
                // pruned cases slice every tier by freshness.
                let sliced = if (case + r) % 2 == 0 { 0 } else { usize::MAX };
                let request = |window, slice_tiers_above| RecommendRequest {
                    dimensions: &dims,
                    weights: &weights,
                    filter,
                    exclude_ids: &exclude,
                    popular_ids: &[],
                    text,
                    concerns: TaxonomyValue::mask(&audience.concerns),
                    now,
                    half_life_days: 365.0,
                    window,
                    slice_tiers_above,
                };
                let everything = index.recommend(&request(n, usize::MAX)).unwrap();
                // The reference holds every published asset the filter lets through,
                // each once: no tier lost or repeated one.
                let mut listed: Vec<&str> = everything
                    .items
                    .iter()
                    .map(|c| c.asset.id.as_str())
                    .collect();
                listed.sort();
                listed.dedup();
                let eligible = assets
                    .iter()
                    .filter(|a| a.status == crate::domain::AssetStatus::Published)
                    .filter(|a| !exclude.iter().any(|e| e == a.id.as_str()))
                    .filter(|a| {
                        filter.content_types.is_empty()
                            || filter.content_types.contains(&a.content_type)
                    })
                    .count();
                assert_eq!(listed.len(), eligible, "{audience:?} {text:?}");
                assert_eq!(everything.items.len(), eligible, "{audience:?} {text:?}");
                for k in [1, 5, 10] {
                    let pruned = index.recommend(&request(k, sliced)).unwrap();
                    let want: Vec<_> = ids(&everything).into_iter().take(k).collect();
                    // Equal scores may come in either order; compare scores position by
                    // position and ids as sets of the strictly better ones.
                    let got = ids(&pruned);
                    assert_eq!(
                        got.iter().map(|g| g.1).collect::<Vec<_>>(),
                        want.iter().map(|w| w.1).collect::<Vec<_>>(),
                        "{audience:?} {text:?} k={k}"
                    );
                    assert!(
                        pruned
                            .items
                            .iter()
                            .all(|c| !exclude.iter().any(|e| e == c.asset.id.as_str()))
                    );
                    assert!(
                        pruned
                            .items
                            .iter()
                            .all(|c| c.asset.status == crate::domain::AssetStatus::Published)
                    );
                    pruned_tiers += everything.tiers_searched - pruned.tiers_searched;
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 60);
        assert!(pruned_tiers > 0, "the walk never stopped early");
    }

    #[test]
    fn popular_assets_outside_the_walk_come_back_when_eligible() {
        let (_dir, index, assets) = demo_index();
        let audience = Audience {
            stage: Stage::Adoption,
            role: Some(Role::TechnicalIntegrator),
            industry: None,
            language: Language::english(),
            concerns: vec![],
        };
        let weights = Weights::default();
        let dims = graded_dimensions(&audience);
        let published: Vec<&Asset> = assets
            .iter()
            .filter(|a| a.status == crate::domain::AssetStatus::Published)
            .collect();
        // Awareness assets in Chinese: far below the two best of an English adoption
        // audience. One is excluded, and one draft is named too.
        let far: Vec<String> = published
            .iter()
            .filter(|a| a.language.primary() == "zh" && a.stages == [Stage::Awareness])
            .take(3)
            .map(|a| a.id.to_string())
            .collect();
        assert_eq!(far.len(), 3);
        let draft = assets
            .iter()
            .find(|a| a.status == crate::domain::AssetStatus::Draft)
            .unwrap()
            .id
            .to_string();
        let mut popular = far.clone();
        popular.push(draft);
        let exclude = vec![far[2].clone()];
        let got = index
            .recommend(&RecommendRequest {
                dimensions: &dims,
                weights: &weights,
                filter: &AssetFilter::default(),
                exclude_ids: &exclude,
                popular_ids: &popular,
                text: Some("api"),
                concerns: 0,
                now: chrono::Utc::now().timestamp(),
                half_life_days: 365.0,
                window: 2,
                slice_tiers_above: DEFAULT_SLICE_TIERS_ABOVE,
            })
            .unwrap();
        let ids: Vec<&str> = got.items.iter().map(|c| c.asset.id.as_str()).collect();
        assert_eq!(ids.len(), 4, "{ids:?}");
        // Both score 0: their order between themselves is not defined.
        let mut after_walk = ids[2..].to_vec();
        after_walk.sort_unstable();
        let mut eligible: Vec<&str> = far[..2].iter().map(String::as_str).collect();
        eligible.sort_unstable();
        assert_eq!(
            after_walk, eligible,
            "the two eligible popular ones, after the walk's"
        );
        assert!(got.items[2..].iter().all(|c| c.score == 0.0));
    }

    /// The text part of a tier skips documents that hold only terms that cannot lift them
    /// past the k-th score; many queries and audiences check that it skips nothing that
    /// could enter.
    #[test]
    fn text_tiers_give_exactly_the_exhaustive_top_k() {
        let (_dir, index, assets) = demo_index();
        let now = chrono::Utc::now().timestamp();
        let weights = Weights::default();
        let filter = AssetFilter::default();
        let texts = [
            "reconciliation",
            "payment reconciliation",
            "api integration security",
            "pricing",
            "roi cost",
            "case study",
            "结算",
            "treasury forecasting cash",
        ];
        let mut checked = 0;
        for stage in Stage::ALL {
            for role in [None, Some(Role::TechnicalIntegrator)] {
                for text in texts {
                    let audience = Audience {
                        stage: *stage,
                        role,
                        industry: None,
                        language: Language::english(),
                        concerns: vec![],
                    };
                    let dims = graded_dimensions(&audience);
                    let request = |window| RecommendRequest {
                        dimensions: &dims,
                        weights: &weights,
                        filter: &filter,
                        exclude_ids: &[],
                        popular_ids: &[],
                        text: Some(text),
                        concerns: 0,
                        now,
                        half_life_days: 365.0,
                        window,
                        slice_tiers_above: DEFAULT_SLICE_TIERS_ABOVE,
                    };
                    let everything = index.recommend(&request(assets.len())).unwrap();
                    for k in [1, 5] {
                        let pruned = index.recommend(&request(k)).unwrap();
                        let want: Vec<i64> =
                            ids(&everything).into_iter().take(k).map(|w| w.1).collect();
                        let got: Vec<i64> = ids(&pruned).into_iter().map(|g| g.1).collect();
                        assert_eq!(got, want, "{audience:?} {text:?} k={k}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, Stage::ALL.len() * 2 * texts.len() * 2);
    }

    #[test]
    fn retrieval_scores_equal_the_explanations() {
        let (_dir, index, _assets) = demo_index();
        let now = chrono::Utc::now();
        let weights = Weights::default();
        for stage in Stage::ALL {
            let audience = Audience {
                stage: *stage,
                role: Some(Role::DecisionMaker),
                industry: Some(IndustrySlug::parse("financial-services/banking").unwrap()),
                language: Language::english(),
                concerns: vec![Concern::Validation],
            };
            let dims = graded_dimensions(&audience);
            let found = index
                .recommend(&RecommendRequest {
                    dimensions: &dims,
                    weights: &weights,
                    filter: &AssetFilter::default(),
                    exclude_ids: &[],
                    popular_ids: &[],
                    text: Some("treasury"),
                    concerns: TaxonomyValue::mask(&audience.concerns),
                    now: now.timestamp(),
                    half_life_days: 365.0,
                    window: 20,
                    slice_tiers_above: 0,
                })
                .unwrap();
            let ctx = crate::ranking::RankContext {
                weights: &weights,
                now,
                half_life_days: 365.0,
                query: Some("treasury"),
                similar_to: None,
            };
            for c in &found.items {
                let explained = crate::ranking::explain(
                    &audience,
                    &dims,
                    &c.asset,
                    &ctx,
                    (c.bm25, found.text_scale),
                    0.0,
                );
                assert!(
                    (explained.score - c.score).abs() < 1e-9,
                    "{} {} vs {}",
                    c.asset.id,
                    explained.score,
                    c.score
                );
            }
        }
    }
}
