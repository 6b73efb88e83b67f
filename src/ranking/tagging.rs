//! Tag suggestions for an untagged or new asset: its nearest tagged neighbours vote, each
//! with its similarity, and a known content type adds its default stages as a prior.
//!
//! A neighbour's vote is shared among its tags of a kind (an asset for two stages gives
//! each half). For stages, a known content type adds as much weight again, shared among its
//! default stages: the format says much about the stage (a pricing sheet is for deciding),
//! the words say the rest. A value's confidence is its share of the kind's weight. Roles:
//! a neighbour with no roles votes for none of them, so "for everyone" shows as low
//! confidence everywhere.

use crate::domain::{Asset, Concern, ContentType, Role, Stage, TaxonomyValue};

/// Suggestions below this confidence are left out.
pub const MIN_CONFIDENCE: f64 = 0.05;

#[derive(Clone, Debug, PartialEq)]
pub struct TagSuggestions {
    pub stages: Vec<(Stage, f64)>,
    pub roles: Vec<(Role, f64)>,
    pub concerns: Vec<(Concern, f64)>,
    pub content_types: Vec<(ContentType, f64)>,
}

fn vote<T: TaxonomyValue>(
    neighbours: &[(&Asset, f64)],
    tags: impl Fn(&Asset) -> Vec<T>,
    prior: &[T],
    prior_weight: f64,
) -> Vec<(T, f64)> {
    let mut weights = vec![0.0f64; T::ALL.len()];
    for (asset, similarity) in neighbours {
        let values = tags(asset);
        for v in &values {
            weights[v.ordinal()] += similarity / values.len() as f64;
        }
    }
    for v in prior {
        weights[v.ordinal()] += prior_weight / prior.len() as f64;
    }
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return Vec::new();
    }
    let mut out: Vec<(T, f64)> = T::ALL
        .iter()
        .copied()
        .zip(weights)
        .map(|(v, w)| (v, w / total))
        .filter(|(_, c)| *c >= MIN_CONFIDENCE)
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.ordinal().cmp(&b.0.ordinal())));
    out
}

/// Suggestions from `neighbours` (asset, similarity > 0), best first per kind.
pub fn suggest_tags(
    neighbours: &[(&Asset, f64)],
    content_type: Option<ContentType>,
) -> TagSuggestions {
    let evidence: f64 = neighbours.iter().map(|(_, s)| s).sum();
    let prior: &[Stage] = content_type.map_or(&[], ContentType::default_stages);
    TagSuggestions {
        stages: vote(neighbours, |a| a.stages.clone(), prior, evidence.max(1.0)),
        roles: vote(neighbours, |a| a.roles.clone(), &[], 0.0),
        concerns: vote(neighbours, |a| a.concerns.clone(), &[], 0.0),
        content_types: vote(neighbours, |a| vec![a.content_type], &[], 0.0),
    }
}

/// Stage confidences by naive Bayes: for each stage, the chance that an asset of that stage
/// holds each word of the text (`words[w][s]` of `assets[s]`, smoothed by one) and each of
/// the subject's concerns and topics (`tags`), with equal chances for every stage before
/// the evidence (a crowded stage does not win by size). The words' log-likelihoods are
/// averaged and weighted by [`WORDS_WEIGHT`] (dozens of weak words would otherwise drown
/// everything); each tag counts in full; a known content type multiplies its default
/// stages' chances by [`FORMAT_ODDS`]. The result is normalised to confidences.
pub fn stage_naive_bayes(
    assets: &[u64],
    words: &[Vec<u64>],
    tags: &[Vec<u64>],
    content_type: Option<ContentType>,
) -> Vec<(Stage, f64)> {
    let prior: &[Stage] = content_type.map_or(&[], ContentType::default_stages);
    let mut logs: Vec<(Stage, f64)> = Stage::ALL
        .iter()
        .map(|stage| {
            let s = stage.ordinal();
            let n = assets.get(s).copied().unwrap_or(0) as f64;
            if n == 0.0 {
                // Nothing is known of a stage without assets; smoothing alone would make
                // every word look likely there.
                return (*stage, f64::NEG_INFINITY);
            }
            let likelihood = |counts: &Vec<u64>| {
                let c = counts.get(s).copied().unwrap_or(0) as f64;
                ((c + 1.0) / (n + 2.0)).ln()
            };
            // Words are many and each says little: their mean counts, scaled. Each tag
            // counts in full.
            let mut log = WORDS_WEIGHT * words.iter().map(likelihood).sum::<f64>()
                / words.len().max(1) as f64;
            log += tags.iter().map(likelihood).sum::<f64>();
            if prior.contains(stage) {
                log += FORMAT_ODDS.ln();
            }
            (*stage, log)
        })
        .collect();
    let best = logs
        .iter()
        .map(|(_, l)| *l)
        .fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = logs.iter().map(|(_, l)| (l - best).exp()).sum();
    for (_, l) in &mut logs {
        *l = (*l - best).exp() / total;
    }
    logs.retain(|(_, c)| *c >= MIN_CONFIDENCE);
    logs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.ordinal().cmp(&b.0.ordinal())));
    logs
}

/// How many times likelier a content type's default stages are before the words count.
pub const FORMAT_ODDS: f64 = 5.0;
/// What the text's words weigh together, as log-likelihood per word.
pub const WORDS_WEIGHT: f64 = 2.0;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AssetDraft;

    fn asset(stages: &[&str], roles: &[&str], content_type: &str) -> Asset {
        AssetDraft {
            id: Some("x".into()),
            title: Some("x".into()),
            content_type: Some(content_type.into()),
            stages: stages.iter().map(|s| (*s).to_owned()).collect(),
            roles: roles.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        }
        .validate()
        .unwrap()
    }

    #[test]
    fn neighbours_vote_by_similarity_and_the_format_adds_its_stages() {
        let a = asset(&["DECISION"], &["FINANCE"], "CASE_STUDY");
        let b = asset(
            &["CONSIDERATION", "DECISION"],
            &["FINANCE", "DECISION_MAKER"],
            "ROI_CALCULATOR",
        );
        let c = asset(&["AWARENESS"], &[], "EBOOK");
        let s = suggest_tags(&[(&a, 3.0), (&b, 2.0), (&c, 1.0)], None);
        assert_eq!(s.stages[0].0, Stage::Decision);
        assert!((s.stages[0].1 - 4.0 / 6.0).abs() < 1e-9);
        assert_eq!(s.roles[0], (Role::Finance, 4.0 / 5.0));
        assert_eq!(s.content_types[0].0, ContentType::CaseStudy);
        // A pricing sheet is for deciding, whatever the awareness-heavy neighbours say.
        let p = suggest_tags(&[(&c, 0.5)], Some(ContentType::PricingSheet));
        assert_eq!(p.stages[0].0, Stage::Decision);
        assert!((p.stages[0].1 - 2.0 / 3.0).abs() < 1e-9);
        assert!(suggest_tags(&[], None).stages.is_empty());
    }

    #[test]
    fn naive_bayes_weighs_words_tags_and_the_format_but_not_stage_sizes() {
        // 100 awareness assets, 10 decision ones; the word is in 5 awareness assets and
        // 2 of every other stage.
        let assets = [100, 50, 10, 50, 50];
        let word = vec![5, 2, 2, 2, 2];
        let s = stage_naive_bayes(&assets, std::slice::from_ref(&word), &[], None);
        assert_eq!(
            s[0].0,
            Stage::Decision,
            "a fifth of the decision assets: {s:?}"
        );
        // Two tags found in most awareness assets and in no decision one turn it around.
        let tag = vec![80, 0, 0, 0, 0];
        let t = stage_naive_bayes(&assets, &[word], &[tag.clone(), tag], None);
        assert_eq!(t[0].0, Stage::Awareness, "{t:?}");
        // A stage without assets is never suggested.
        let none = stage_naive_bayes(&[10, 0, 10, 10, 10], &[vec![1, 0, 1, 1, 1]], &[], None);
        assert!(none.iter().all(|(s, _)| *s != Stage::Consideration));
        // Without evidence, the format decides among equal stages.
        let f = stage_naive_bayes(&assets, &[], &[], Some(ContentType::PricingSheet));
        assert_eq!(f[0].0, Stage::Decision);
        let sum: f64 = f.iter().map(|(_, c)| c).sum();
        assert!(sum <= 1.0 + 1e-9);
    }
}
