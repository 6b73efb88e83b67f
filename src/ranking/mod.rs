//! Pure scoring: every score is a sum of named factor contributions, `weight x value` with
//! value in [0, 1], so each one can be explained and tuned.
//!
//! The graded factors (stage, role, industry, language) are defined once, as ordered
//! [`Level`]s of [`Criterion`]s. The index turns criteria into terms to find candidates
//! tier by tier; [`explain`] evaluates the same criteria on an asset. The continuous
//! factors (text, concern, freshness, popularity) are plain functions that both sides call.
//! No I/O here.

mod diversity;
mod factors;
mod hindsight;
mod journey;
mod tagging;

pub use diversity::{DiversityItem, diversify};
pub use factors::{
    AlsoRead, AlsoReadHit, Audience, Criterion, Dimension, Level, RankContext, RankingTrust,
    SAME_SUBJECT_FROM, ScoreReason, Scored, concern_value, explain, freshness_value,
    graded_dimensions, meaning_value, ranking_trust, text_value,
};
pub use hindsight::{holding_back, replay_audience};
pub use journey::{
    Evidence, HORIZON_DAYS, Reading, StageInference, account_stage, decayed, infer_stage,
    journey_stage, popularity_value,
};
pub use tagging::{MIN_CONFIDENCE, TagSuggestions, stage_naive_bayes, suggest_tags};
