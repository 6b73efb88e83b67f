//! What engagement says: the stage an account's reading points to (with its confidence and
//! evidence), and how engagement among similar accounts becomes a popularity value.
//!
//! Stage inference weighs every event of the last [`HORIZON_DAYS`] by its depth
//! (`EngagementKind::depth`: COMPLETE 3 > SHARE 2.5 > DOWNLOAD 2 > VIEW 1) and its recency
//! (halved every [`RECENCY_HALF_LIFE_DAYS`]). An event's weight is shared equally among its
//! asset's stages. The stage with the most weight wins; on a tie the later stage, since
//! buyers who read ahead are further along. Its confidence is its share of all the weight,
//! damped while the evidence is thin: `share x mass / (mass + PRIOR_MASS)`, so one view
//! gives 0.33 and four recent completions of one stage 0.86.

use chrono::{DateTime, Utc};

use crate::domain::{EngagementKind, Stage, StageSource, TaxonomyValue};

pub const RECENCY_HALF_LIFE_DAYS: f64 = 30.0;
/// Older events are no evidence of where the account is now.
pub const HORIZON_DAYS: i64 = 180;
/// Weight of evidence at which confidence is halved: a single view is a weak signal.
pub const PRIOR_MASS: f64 = 2.0;
/// Confidence reading needs to overrule a CRM stage set before that reading.
pub const OVERRULE_CONFIDENCE: f64 = 0.5;
/// Evidence items kept in an inference for the reader.
const MAX_EVIDENCE: usize = 10;

/// One event as inference sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    pub asset_id: String,
    pub stages: Vec<Stage>,
    pub kind: EngagementKind,
    pub occurred_at: DateTime<Utc>,
}

/// One event that counted, with the weight it carried.
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
    pub reading: Reading,
    pub weight: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StageInference {
    pub stage: Stage,
    /// 0 to 1.
    pub confidence: f64,
    /// Weight per stage, in stage order.
    pub stage_weights: Vec<(Stage, f64)>,
    /// The heaviest events, heaviest first.
    pub evidence: Vec<Evidence>,
    /// The newest event that counted.
    pub latest: DateTime<Utc>,
}

/// `weight` halved every `half_life_days` of `age_days`; future times count as now.
pub fn decayed(weight: f64, age_days: f64, half_life_days: f64) -> f64 {
    weight * 0.5f64.powf(age_days.max(0.0) / half_life_days)
}

fn age_days(at: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    (now - at).num_seconds() as f64 / 86_400.0
}

/// Where the readings point, or `None` when none of them is evidence (all too old, or of
/// assets without stages).
pub fn infer_stage(readings: &[Reading], now: DateTime<Utc>) -> Option<StageInference> {
    let mut totals = [0.0f64; Stage::ALL.len()];
    let mut evidence = Vec::new();
    let mut latest: Option<DateTime<Utc>> = None;
    for reading in readings {
        let age = age_days(reading.occurred_at, now);
        if reading.stages.is_empty() || age > HORIZON_DAYS as f64 {
            continue;
        }
        let weight = decayed(reading.kind.depth(), age, RECENCY_HALF_LIFE_DAYS);
        let share = weight / reading.stages.len() as f64;
        for stage in &reading.stages {
            totals[stage.ordinal()] += share;
        }
        latest = latest.max(Some(reading.occurred_at));
        evidence.push(Evidence {
            reading: reading.clone(),
            weight,
        });
    }
    let latest = latest?;
    let mass: f64 = totals.iter().sum();
    let (best, best_weight) =
        totals.iter().enumerate().fold(
            (0, f64::MIN),
            |(bi, bw), (i, &w)| {
                if w >= bw { (i, w) } else { (bi, bw) }
            },
        );
    evidence.sort_by(|a, b| {
        b.weight
            .total_cmp(&a.weight)
            .then(b.reading.occurred_at.cmp(&a.reading.occurred_at))
    });
    evidence.truncate(MAX_EVIDENCE);
    Some(StageInference {
        stage: Stage::ALL[best],
        confidence: best_weight / mass * mass / (mass + PRIOR_MASS),
        stage_weights: Stage::ALL.iter().copied().zip(totals).collect(),
        evidence,
        latest,
    })
}

/// Which stage to rank for, and whether it came from reading: the CRM's stage unless it
/// is missing, or reading newer than it points elsewhere with at least
/// [`OVERRULE_CONFIDENCE`].
pub fn journey_stage(
    crm: Option<(Stage, Option<DateTime<Utc>>)>,
    inference: Option<&StageInference>,
) -> Option<(Stage, bool)> {
    match (crm, inference) {
        (None, Some(inf)) => Some((inf.stage, true)),
        (None, None) => None,
        (Some((stage, set_at)), Some(inf))
            if inf.stage != stage
                && inf.confidence >= OVERRULE_CONFIDENCE
                && set_at.is_none_or(|t| inf.latest > t) =>
        {
            Some((inf.stage, true))
        }
        (Some((stage, _)), _) => Some((stage, false)),
    }
}

/// Which stage to rank for and where it comes from: the CRM's opportunity stage (through
/// the mapping) unless reading shows the account further along with at least
/// [`OVERRULE_CONFIDENCE`]; without one, [`journey_stage`] over the declared stage.
pub fn account_stage(
    crm: Option<Stage>,
    declared: Option<(Stage, Option<DateTime<Utc>>)>,
    inference: Option<&StageInference>,
) -> Option<(Stage, StageSource)> {
    if let Some(crm) = crm {
        return Some(match inference {
            Some(inf) if inf.stage > crm && inf.confidence >= OVERRULE_CONFIDENCE => {
                (inf.stage, StageSource::Reading)
            }
            _ => (crm, StageSource::Crm),
        });
    }
    journey_stage(declared, inference).map(|(stage, read)| {
        let source = if read {
            StageSource::Reading
        } else {
            StageSource::Declared
        };
        (stage, source)
    })
}

/// An asset's popularity in a cohort, in [0, 1]: log-scaled against the cohort's most
/// engaged asset, so the tenth view counts less than the first.
pub fn popularity_value(raw: f64, cohort_max: f64) -> f64 {
    if raw <= 0.0 || cohort_max <= 0.0 {
        return 0.0;
    }
    (raw.ln_1p() / cohort_max.ln_1p()).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::parse_timestamp;

    fn now() -> DateTime<Utc> {
        parse_timestamp("2026-06-01T00:00:00Z").unwrap()
    }

    fn read(stages: &[Stage], kind: EngagementKind, days_ago: i64) -> Reading {
        Reading {
            asset_id: format!("a{days_ago}-{}", stages.len()),
            stages: stages.to_vec(),
            kind,
            occurred_at: now() - chrono::Duration::days(days_ago),
        }
    }

    use EngagementKind::{Complete, Download, View};
    use Stage::{Awareness, Consideration, Decision};

    #[test]
    fn four_recent_completions_of_decision_assets_say_decision() {
        let history: Vec<Reading> = (1..=4).map(|d| read(&[Decision], Complete, d)).collect();
        let inf = infer_stage(&history, now()).unwrap();
        assert_eq!(inf.stage, Decision);
        assert!(inf.confidence > 0.8, "{}", inf.confidence);
        assert_eq!(inf.evidence.len(), 4);
        assert_eq!(inf.latest, now() - chrono::Duration::days(1));
    }

    #[test]
    fn depth_outweighs_count_of_shallow_views() {
        // Three glances at awareness pieces against two completed comparisons.
        let history = vec![
            read(&[Awareness], View, 1),
            read(&[Awareness], View, 2),
            read(&[Awareness], View, 3),
            read(&[Consideration], Complete, 2),
            read(&[Consideration], Complete, 3),
        ];
        assert_eq!(infer_stage(&history, now()).unwrap().stage, Consideration);
    }

    #[test]
    fn recent_reading_outweighs_old_reading() {
        // Much awareness reading three months ago, a little decision reading this week.
        let mut history: Vec<Reading> = (90..96).map(|d| read(&[Awareness], Complete, d)).collect();
        history.push(read(&[Decision], Download, 2));
        history.push(read(&[Decision], View, 1));
        let inf = infer_stage(&history, now()).unwrap();
        assert_eq!(inf.stage, Decision);
        assert_eq!(inf.evidence[0].reading.stages, [Decision]);
    }

    #[test]
    fn thin_or_stale_evidence_is_weak_or_none() {
        let one = infer_stage(&[read(&[Decision], View, 0)], now()).unwrap();
        assert!(
            (one.confidence - 1.0 / 3.0).abs() < 1e-9,
            "{}",
            one.confidence
        );
        assert_eq!(
            infer_stage(&[read(&[Decision], Complete, 400)], now()),
            None
        );
        assert_eq!(infer_stage(&[read(&[], Complete, 1)], now()), None);
        assert_eq!(infer_stage(&[], now()), None);
    }

    #[test]
    fn a_mixed_history_has_lower_confidence_and_shares_multi_stage_assets() {
        let history = vec![
            read(&[Consideration, Decision], Complete, 1),
            read(&[Decision], Complete, 1),
            read(&[Consideration], Complete, 1),
        ];
        let inf = infer_stage(&history, now()).unwrap();
        // Equal weight on both: the later stage wins the tie.
        assert_eq!(inf.stage, Decision);
        let weights: Vec<f64> = inf.stage_weights.iter().map(|(_, w)| *w).collect();
        assert!((weights[1] - weights[2]).abs() < 1e-9);
        assert!(inf.confidence < 0.5, "{}", inf.confidence);
    }

    #[test]
    fn reading_overrules_the_crm_only_when_newer_and_confident() {
        let history: Vec<Reading> = (1..=4).map(|d| read(&[Decision], Complete, d)).collect();
        let inf = infer_stage(&history, now()).unwrap();
        let long_ago = Some(now() - chrono::Duration::days(30));
        let yesterday_noon = Some(now() - chrono::Duration::hours(12));
        assert_eq!(journey_stage(None, Some(&inf)), Some((Decision, true)));
        assert_eq!(journey_stage(None, None), None);
        assert_eq!(
            journey_stage(Some((Consideration, long_ago)), Some(&inf)),
            Some((Decision, true))
        );
        // The CRM spoke after the reading: it knows something reading does not.
        assert_eq!(
            journey_stage(Some((Consideration, yesterday_noon)), Some(&inf)),
            Some((Consideration, false))
        );
        let weak = infer_stage(&[read(&[Decision], View, 0)], now()).unwrap();
        assert_eq!(
            journey_stage(Some((Consideration, long_ago)), Some(&weak)),
            Some((Consideration, false))
        );
    }

    #[test]
    fn popularity_is_log_scaled_within_its_cohort() {
        assert_eq!(popularity_value(0.0, 10.0), 0.0);
        assert_eq!(popularity_value(10.0, 10.0), 1.0);
        let half = popularity_value(3.0, 15.0);
        assert!((half - 0.5).abs() < 1e-9, "{half}");
        assert!(decayed(2.0, 45.0, 45.0) - 1.0 < 1e-12);
    }

    #[test]
    fn the_crm_stage_stands_unless_reading_is_further_along() {
        let reading = |stage: Stage, confidence: f64| StageInference {
            stage,
            confidence,
            stage_weights: Vec::new(),
            evidence: Vec::new(),
            latest: now(),
        };
        let decision = Some(Stage::Decision);
        assert_eq!(
            account_stage(decision, None, Some(&reading(Stage::Adoption, 0.8))),
            Some((Stage::Adoption, StageSource::Reading))
        );
        // Reading behind the CRM, or too unsure, leaves the CRM's stage.
        assert_eq!(
            account_stage(decision, None, Some(&reading(Stage::Awareness, 0.9))),
            Some((Stage::Decision, StageSource::Crm))
        );
        assert_eq!(
            account_stage(decision, None, Some(&reading(Stage::Adoption, 0.3))),
            Some((Stage::Decision, StageSource::Crm))
        );
        // The CRM's stage comes before the declared one; without it, the declared one.
        assert_eq!(
            account_stage(decision, Some((Stage::Awareness, None)), None),
            Some((Stage::Decision, StageSource::Crm))
        );
        assert_eq!(
            account_stage(None, Some((Stage::Awareness, None)), None),
            Some((Stage::Awareness, StageSource::Declared))
        );
        assert_eq!(account_stage(None, None, None), None);
    }
}
