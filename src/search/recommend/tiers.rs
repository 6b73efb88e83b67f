//! Tiers: combinations of the graded factors' levels, best first, and the terms that
//! find each one's documents.

use tantivy::query::{Occur, Query};
use tantivy::schema::Field;
use tantivy::{Searcher, Term};

use super::super::filter::any_term;
use super::super::schema::{ANY, Fields, SPECIFIC, ranked, tier_key};
use crate::domain::{TaxonomyValue, Trust, Weights};
use crate::ranking::{Criterion, Dimension};

/// One level of one factor, as terms.
pub(super) struct IndexLevel {
    pub(super) criteria: Vec<Criterion>,
    pub(super) terms: Vec<Term>,
    pub(super) value: f64,
}

/// One graded factor with a weight, as the tier walk sees it.
pub(super) struct GradedDim {
    pub(super) weight: f64,
    pub(super) levels: Vec<IndexLevel>,
    pub(super) rest_value: f64,
}

pub(super) struct Tier {
    pub(super) graded: f64,
    /// Per factor: the chosen level index (`levels.len()` = none of the levels).
    pub(super) levels: Vec<usize>,
}

pub(super) fn criterion_term(fields: &Fields, c: &Criterion) -> Term {
    let (field, value) = match c {
        Criterion::Stage(s, t) => (fields.stage_rank, ranked(*t, s.name())),
        Criterion::Role(r, t) => (fields.role_rank, ranked(*t, r.name())),
        Criterion::AnyRole(t) => (fields.role_rank, ranked(*t, ANY)),
        Criterion::SomeRole(t) => (fields.role_rank, ranked(*t, SPECIFIC)),
        Criterion::IndustryExact(i, t) => (fields.industry_rank, ranked(*t, i.as_str())),
        Criterion::IndustryWithin(i, t) => (fields.industry_tree_rank, ranked(*t, i.as_str())),
        Criterion::AnyIndustry => (fields.industry_rank, ANY.to_owned()),
        Criterion::SomeIndustry(t) => (fields.industry_rank, ranked(*t, SPECIFIC)),
        Criterion::Language(l) => return Term::from_field_text(fields.language_match, l),
    };
    Term::from_field_text(field, &value)
}

/// Every combination of levels, best graded score first.
pub(super) fn tiers(graded: &[GradedDim]) -> Vec<Tier> {
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
pub(super) const KEY_PARTS: usize = 4;

/// A criterion as a `tier_key` part: its slot, its value, and whether the industries below
/// it count too.
pub(super) fn key_part(c: &Criterion) -> (usize, String, bool) {
    match c {
        Criterion::Stage(s, t) => (0, ranked(*t, s.name()), false),
        Criterion::Role(r, t) => (1, ranked(*t, r.name()), false),
        Criterion::AnyRole(t) => (1, ranked(*t, ANY), false),
        Criterion::SomeRole(t) => (1, ranked(*t, SPECIFIC), false),
        Criterion::Language(l) => (2, l.clone(), false),
        Criterion::IndustryExact(i, t) => (3, ranked(*t, i.as_str()), false),
        Criterion::IndustryWithin(i, t) => (3, ranked(*t, i.as_str()), true),
        Criterion::AnyIndustry => (3, ANY.to_owned(), false),
        Criterion::SomeIndustry(t) => (3, ranked(*t, SPECIFIC), false),
    }
}

/// The `tier_key` terms that hold every document of a tier (the better levels still have
/// to be excluded), or `None` when the tier cannot be written as keys: a factor left out
/// by a zero weight, or "another stage" or "another language".
///
/// A factor's "rest" level is `SPECIFIC` when one of its levels is the `ANY` of assets
/// for every role or industry: an asset that is not for every role names some role.
pub(super) fn tier_key_terms(
    searcher: &Searcher,
    field: Field,
    graded: &[GradedDim],
    tier: &Tier,
) -> tantivy::Result<Option<Vec<Term>>> {
    // Per part: exact values, and values whose subtree counts too.
    let mut parts: [Option<(Vec<String>, Vec<String>)>; KEY_PARTS] = Default::default();
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
                    if subtree {
                        below.push(value.clone());
                    }
                    values.push(value);
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
                    Some(c) => (key_part(c).0, vec![SPECIFIC.to_owned()], Vec::new()),
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
pub(super) fn level_shares(
    searcher: &Searcher,
    graded: &[GradedDim],
) -> tantivy::Result<Vec<Vec<f64>>> {
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

pub(super) fn is_any(c: &Criterion) -> bool {
    matches!(c, Criterion::AnyRole(_) | Criterion::AnyIndustry)
}

/// Whether no document of a tier whose keys come from `chosen` (the rest level when
/// `None`: `SPECIFIC`) can meet a better level's criterion, so excluding it is wasted
/// work: an asset for every role names no role, and one that names roles is not for
/// every role.
pub(super) fn disjoint(better: &Criterion, chosen: Option<&IndexLevel>) -> bool {
    let Some(level) = chosen else {
        return is_any(better);
    };
    if is_any(better) {
        !level.criteria.iter().any(is_any)
    } else {
        !level.criteria.is_empty() && level.criteria.iter().all(is_any)
    }
}

/// The graded factors that carry a weight, with their levels as terms. (Factors weighted
/// zero cannot change the order: they are left out of the tiers.) Levels for tags that are
/// not declared and that no document of the index has are left out too, so a fully tagged
/// library walks the tiers it always did.
pub(super) fn graded_dims(
    searcher: &Searcher,
    fields: &Fields,
    dimensions: &[Dimension],
    w: &Weights,
) -> tantivy::Result<Vec<GradedDim>> {
    let mut out = Vec::new();
    for (weight, d) in dimensions
        .iter()
        .map(|d| (w.get(d.factor), d))
        .filter(|(weight, _)| *weight > 0.0)
    {
        let mut levels = Vec::with_capacity(d.levels.len());
        for l in &d.levels {
            let terms: Vec<Term> = l
                .criteria
                .iter()
                .map(|c| criterion_term(fields, c))
                .collect();
            if !l.criteria.iter().any(declared) {
                let mut held = 0;
                for term in &terms {
                    held += searcher.doc_freq(term)?;
                }
                if held == 0 {
                    continue;
                }
            }
            levels.push(IndexLevel {
                criteria: l.criteria.clone(),
                terms,
                value: l.value,
            });
        }
        out.push(GradedDim {
            weight,
            levels,
            rest_value: d.rest_value,
        });
    }
    Ok(out)
}

/// Whether a criterion is about declared tags (or about no tag at all).
fn declared(c: &Criterion) -> bool {
    match c {
        Criterion::Stage(_, t)
        | Criterion::Role(_, t)
        | Criterion::AnyRole(t)
        | Criterion::SomeRole(t)
        | Criterion::IndustryExact(_, t)
        | Criterion::IndustryWithin(_, t)
        | Criterion::SomeIndustry(t) => *t == Trust::Declared,
        Criterion::AnyIndustry | Criterion::Language(_) => true,
    }
}

/// The query clauses that find exactly a tier's documents: its keys (or its levels' terms)
/// on top of the request's filter, without the documents of better levels.
pub(super) fn tier_clauses(
    graded: &[GradedDim],
    tier: &Tier,
    keys: Option<&[Term]>,
    base: &[(Occur, Box<dyn Query>)],
    key_base: &[(Occur, Box<dyn Query>)],
) -> Vec<(Occur, Box<dyn Query>)> {
    let mut clauses = super::clone_clauses(if keys.is_some() { key_base } else { base });
    if let Some(keys) = keys {
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
    clauses
}

/// Whether a tier is large enough to visit in freshness slices.
pub(super) struct TierSizes<'a> {
    pub(super) searcher: &'a Searcher,
    pub(super) graded: &'a [GradedDim],
    pub(super) above: usize,
    /// Each level's share of the index, computed when first needed.
    pub(super) shares: Option<Vec<Vec<f64>>>,
}

impl<'a> TierSizes<'a> {
    pub(super) fn new(searcher: &'a Searcher, graded: &'a [GradedDim], above: usize) -> Self {
        Self {
            searcher,
            graded,
            above,
            shares: None,
        }
    }

    pub(super) fn is_large(&mut self, tier: &Tier, keys: Option<&[Term]>) -> tantivy::Result<bool> {
        let size = match keys {
            // Every document of the tier has one of its keys.
            Some(keys) => {
                let mut size = 0;
                for key in keys {
                    size += self.searcher.doc_freq(key)?;
                }
                size as f64
            }
            // The tier's size if its factors were independent (an over-estimate for all
            // but the best tier, which excludes nothing).
            None => {
                let shares = match &self.shares {
                    Some(shares) => shares,
                    None => self
                        .shares
                        .insert(level_shares(self.searcher, self.graded)?),
                };
                let total = self.searcher.num_docs().max(1) as f64;
                self.graded
                    .iter()
                    .zip(&tier.levels)
                    .zip(shares.iter())
                    .filter_map(|((_, &choice), share)| share.get(choice).copied())
                    .product::<f64>()
                    * total
            }
        };
        Ok(size >= self.above as f64)
    }
}
