//! Re-ranking so the top of a list mixes formats and topics (maximal marginal relevance,
//! limited to near-ties).
//!
//! At each position the candidates are those within `tolerance` of the best remaining
//! score, so a much better asset is never pushed down for a much worse one. Among them the
//! pick is the best score minus a penalty for resembling what is already chosen (same
//! content type, shared topics). In the top five, a third asset of one content type is
//! skipped while a near-tied alternative of another type exists.
//!
//! Two guards keep the list honest. An item that does not fit the request's text (a
//! `nextContent` seed's subject, a query) is never chosen for variety ahead of one that
//! does. And each position looks only at the next [`LOOKAHEAD`] candidates in score order,
//! so a list's top does not change with how many items were asked for (a longer list
//! retrieves more candidates, which could otherwise reach the top as alternatives).

use crate::domain::ContentType;

/// How far below the best remaining score an alternative may be and still be preferred
/// for variety, as a share of the list's top score.
const TOLERANCE_SHARE: f64 = 0.08;
/// Positions where the content-type cap applies, and the cap.
const CAPPED_POSITIONS: usize = 5;
const MAX_SAME_TYPE_IN_CAP: usize = 2;
/// Candidates each position considers, in score order.
pub const LOOKAHEAD: usize = 10;

pub struct DiversityItem<'a> {
    pub score: f64,
    pub content_type: ContentType,
    pub topics: &'a [String],
    /// Whether it fits the request's text (always, without text).
    pub fits: bool,
}

fn similarity(a: &DiversityItem<'_>, b: &DiversityItem<'_>) -> f64 {
    let same_type = if a.content_type == b.content_type {
        1.0
    } else {
        0.0
    };
    let shared = a.topics.iter().filter(|t| b.topics.contains(t)).count() as f64;
    let union = (a.topics.len() + b.topics.len()) as f64 - shared;
    let topics = if union > 0.0 { shared / union } else { 0.0 };
    0.7 * same_type + 0.3 * topics
}

/// Returns the order in which to show `items` (indices), at most `take` of them. `items`
/// must be sorted by score, best first.
pub fn diversify(items: &[DiversityItem<'_>], take: usize) -> Vec<usize> {
    let top = items.first().map(|i| i.score).unwrap_or(0.0).max(0.0);
    let tolerance = TOLERANCE_SHARE * top;
    let mut remaining: Vec<usize> = (0..items.len()).collect();
    let mut chosen: Vec<usize> = Vec::with_capacity(take.min(items.len()));
    while chosen.len() < take && !remaining.is_empty() {
        let best = remaining
            .iter()
            .map(|&i| items[i].score)
            .fold(f64::NEG_INFINITY, f64::max);
        // `remaining` stays in score order: its first candidates are the best.
        let leader_fits = items[remaining[0]].fits;
        let mut window: Vec<usize> = remaining
            .iter()
            .take(LOOKAHEAD)
            .copied()
            .filter(|&i| items[i].score >= best - tolerance)
            .filter(|&i| items[i].fits || !leader_fits)
            .collect();
        if chosen.len() < CAPPED_POSITIONS {
            let capped = |i: usize| {
                chosen
                    .iter()
                    .filter(|&&c| items[c].content_type == items[i].content_type)
                    .count()
                    >= MAX_SAME_TYPE_IN_CAP
            };
            if window.iter().any(|&i| !capped(i)) {
                window.retain(|&i| !capped(i));
            }
        }
        let adjusted = |i: usize| {
            let redundancy = chosen
                .iter()
                .map(|&c| similarity(&items[i], &items[c]))
                .fold(0.0, f64::max);
            items[i].score - tolerance * redundancy
        };
        let pick = window
            .iter()
            .copied()
            .max_by(|&a, &b| {
                adjusted(a)
                    .total_cmp(&adjusted(b))
                    // On equal merit keep the original order.
                    .then(b.cmp(&a))
            })
            .unwrap_or(remaining[0]);
        chosen.push(pick);
        remaining.retain(|&i| i != pick);
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use ContentType::*;

    fn items(spec: &[(f64, ContentType)]) -> Vec<DiversityItem<'static>> {
        spec.iter()
            .map(|&(score, content_type)| DiversityItem {
                score,
                content_type,
                topics: &[],
                fits: true,
            })
            .collect()
    }

    fn types(list: &[DiversityItem<'_>], order: &[usize]) -> Vec<ContentType> {
        order.iter().map(|&i| list[i].content_type).collect()
    }

    #[test]
    fn near_ties_mix_formats_in_the_top_five() {
        let list = items(&[
            (10.0, CaseStudy),
            (9.95, CaseStudy),
            (9.9, CaseStudy),
            (9.85, CaseStudy),
            (9.8, CaseStudy),
            (9.7, Ebook),
            (9.6, Demo),
            (9.5, Webinar),
        ]);
        let order = diversify(&list, 8);
        let top5 = &types(&list, &order)[..5];
        assert!(
            top5.iter().filter(|t| **t == CaseStudy).count() <= 2,
            "{top5:?}"
        );
        assert_eq!(order[0], 0, "the best asset stays first");
        assert_eq!(order.len(), 8);
    }

    #[test]
    fn a_much_better_asset_is_never_dropped_for_variety() {
        let list = items(&[
            (10.0, CaseStudy),
            (9.9, CaseStudy),
            (9.8, CaseStudy),
            (5.0, Ebook),
            (4.0, Demo),
        ]);
        let order = diversify(&list, 5);
        assert_eq!(order, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn topics_count_as_resemblance() {
        let a = ["roi".to_owned(), "pricing".to_owned()];
        let b = ["security".to_owned()];
        let list = vec![
            DiversityItem {
                score: 10.0,
                content_type: Ebook,
                topics: &a,
                fits: true,
            },
            DiversityItem {
                score: 9.9,
                content_type: Demo,
                topics: &a,
                fits: true,
            },
            DiversityItem {
                score: 9.85,
                content_type: Webinar,
                topics: &b,
                fits: true,
            },
        ];
        assert_eq!(diversify(&list, 3), vec![0, 2, 1]);
    }

    #[test]
    fn short_and_empty_lists() {
        assert!(diversify(&[], 5).is_empty());
        let list = items(&[(1.0, Ebook), (0.5, Ebook)]);
        assert_eq!(diversify(&list, 1), vec![0]);
    }

    #[test]
    fn an_item_off_the_subject_is_never_chosen_for_variety() {
        let mut list = items(&[
            (10.0, CaseStudy),
            (9.95, CaseStudy),
            (9.9, CaseStudy),
            (9.85, Demo),
        ]);
        list[3].fits = false;
        let order = diversify(&list, 4);
        // The demo would be the third pick for variety; it does not fit the subject.
        assert_eq!(order, vec![0, 1, 2, 3]);
    }

    #[test]
    fn the_top_does_not_change_with_the_length_asked() {
        let mut spec: Vec<(f64, ContentType)> = (0..12)
            .map(|i| (10.0 - 0.01 * i as f64, CaseStudy))
            .collect();
        spec.extend((0..8).map(|i| (9.8 - 0.01 * i as f64, Demo)));
        let long = items(&spec);
        let short = items(&spec[..14]);
        assert_eq!(diversify(&short, 5), diversify(&long, 5));
    }
}
