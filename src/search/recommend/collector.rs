//! Scoring a tier's documents exactly on the continuous factors, keeping the best.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::Bound;
use std::sync::Arc;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::Scorer;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{
    DocAddress, DocId, DocSet, Score, Searcher, SegmentOrdinal, SegmentReader, TERMINATED, Term,
};

use super::super::push_bounded;
use super::super::schema::{EVERGREEN_TS, UNDATED_TS};
use super::text::{TextTerms, reachable_text};
use crate::domain::{Role, Stage, audience_leaning};
use crate::error::AppResult;
use crate::ranking::{concern_value, freshness_value, text_value};

#[derive(Clone, Copy)]
pub(super) struct Hit {
    pub(super) score: f64,
    pub(super) bm25: f32,
    /// Decides between equal scores first: how surely the asset speaks to the audience's
    /// stage and role (`audience_leaning`).
    pub(super) leaning: u32,
    /// Decides between equal scores and leanings: see `Asset::prominence`.
    pub(super) prominence: u64,
    pub(super) address: DocAddress,
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
    /// asset that speaks more surely to the audience, then the more prominent one (an
    /// overview before a narrow page), and only then the lower document address.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then_with(|| other.leaning.cmp(&self.leaning))
            .then_with(|| other.prominence.cmp(&self.prominence))
            .then_with(|| self.address.cmp(&other.address))
    }
}

/// The `limit`-th best score so far; minus infinity while there are fewer hits.
pub(super) fn kth_score(top: &BinaryHeap<Hit>, limit: usize) -> f64 {
    if top.len() >= limit {
        top.peek().map_or(f64::NEG_INFINITY, |h| h.score)
    } else {
        f64::NEG_INFINITY
    }
}

/// Scores one tier's documents exactly on the continuous factors.
pub(super) struct TierCollector {
    pub(super) settings: TierCollectorSettings,
    /// The text's boosted terms with the most each can score, when there is text.
    pub(super) text: Option<Arc<TextTerms>>,
    pub(super) excluded: Arc<Excluded>,
}

/// Documents never to collect, per segment ordinal, sorted: the request's excluded assets
/// (an account's reading can be thousands), looked up once per request instead of as a
/// clause of every tier's query.
pub(super) type Excluded = Vec<Vec<DocId>>;

/// The documents of the assets with these ids, per segment.
pub(super) fn excluded_docs(
    searcher: &Searcher,
    id_field: Field,
    ids: &[String],
) -> AppResult<Excluded> {
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

pub(super) struct TierSegmentCollector {
    pub(super) segment: SegmentOrdinal,
    pub(super) settings: TierCollectorSettings,
    pub(super) excluded: Arc<Excluded>,
    pub(super) freshness_ts: Column<i64>,
    pub(super) concerns: Column<u64>,
    pub(super) prominence: Column<u64>,
    pub(super) leanings: Column<u64>,
    /// One scorer per text term that occurs in the segment, highest possible score
    /// first, advanced only to documents that need a text score.
    pub(super) text: Vec<Box<dyn Scorer>>,
    /// `text_rest[i]`: the most the scorers from `i` on can add to a document's BM25.
    pub(super) text_rest: Vec<f32>,
    pub(super) top: BinaryHeap<Hit>,
    pub(super) scored: u64,
    /// `essential_terms` at the last floor it was computed for.
    pub(super) essential: Option<(f64, usize)>,
}

/// What every segment of one tier is scored with.
#[derive(Clone, Copy)]
pub(super) struct TierCollectorSettings {
    pub(super) graded: f64,
    pub(super) text_weight: f64,
    pub(super) text_scale: f32,
    pub(super) concern_weight: f64,
    pub(super) concerns: u64,
    pub(super) freshness_weight: f64,
    pub(super) now: i64,
    pub(super) half_life_days: f64,
    pub(super) limit: usize,
    pub(super) floor: f64,
    /// The audience's stage and role, for `Hit::leaning`.
    pub(super) audience: (Stage, Option<Role>),
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
            prominence: ff.u64("prominence")?,
            leanings: ff.u64("leanings")?,
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
        // An equal score may still enter: prominence decides ties.
        let floor = self.floor();
        if base + s.text_weight < floor {
            return;
        }
        // The terms that can add most are sought first; once even the rest at their best
        // could not lift the document past the floor, it is dropped unsought.
        let mut bm25 = 0.0;
        for (scorer, rest) in self.text.iter_mut().zip(&self.text_rest) {
            if base + s.text_weight * reachable_text(bm25 + rest, s.text_scale) < floor {
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
        if score < floor {
            return;
        }
        let hit = Hit {
            score,
            bm25,
            leaning: audience_leaning(
                self.leanings.first(doc).unwrap_or(0),
                s.audience.0,
                s.audience.1,
            ),
            prominence: self.prominence.first(doc).unwrap_or(0),
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
    pub(super) fn essential_terms(&mut self) -> usize {
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

/// The FRESHNESS value of an asset from its `freshness_ts` column, as `ranking` defines it.
pub(super) fn freshness_at(ts: i64, now: i64, half_life_days: f64) -> f64 {
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
pub(super) fn freshness_slices(
    now: i64,
    half_life_days: f64,
) -> Vec<(Bound<i64>, Bound<i64>, f64)> {
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

/// The best hits of the walk so far, and how many documents it scored.
pub(super) struct Top {
    pub(super) heap: BinaryHeap<Hit>,
    pub(super) limit: usize,
    pub(super) scored: u64,
}

impl Top {
    pub(super) fn new(limit: usize) -> Self {
        Self {
            heap: BinaryHeap::with_capacity(limit + 1),
            limit,
            scored: 0,
        }
    }

    /// The score a document must beat to enter.
    pub(super) fn floor(&self) -> f64 {
        kth_score(&self.heap, self.limit)
    }

    /// A collector's fruit: its hits and how many documents it scored.
    pub(super) fn add(&mut self, (hits, scored): (Vec<Hit>, u64)) {
        self.scored += scored;
        for hit in hits {
            push_bounded(&mut self.heap, hit, self.limit);
        }
    }

    /// Best first.
    pub(super) fn into_sorted(self) -> Vec<Hit> {
        self.heap.into_sorted_vec()
    }
}
