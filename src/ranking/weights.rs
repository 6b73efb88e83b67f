//! The factors and their weights.

use std::fmt;

/// A named part of a score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Factor {
    Stage,
    Role,
    Industry,
    Text,
    Concern,
    Freshness,
    Popularity,
    Language,
}

impl Factor {
    pub const ALL: [Factor; 8] = [
        Factor::Stage,
        Factor::Role,
        Factor::Industry,
        Factor::Text,
        Factor::Concern,
        Factor::Freshness,
        Factor::Popularity,
        Factor::Language,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Factor::Stage => "STAGE",
            Factor::Role => "ROLE",
            Factor::Industry => "INDUSTRY",
            Factor::Text => "TEXT",
            Factor::Concern => "CONCERN",
            Factor::Freshness => "FRESHNESS",
            Factor::Popularity => "POPULARITY",
            Factor::Language => "LANGUAGE",
        }
    }
}

impl fmt::Display for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How much each factor counts. The defaults put the buying stage first (the seeds' main
/// point), then language (an unreadable asset helps nobody), role, text and industry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weights {
    pub stage: f64,
    pub role: f64,
    pub industry: f64,
    pub text: f64,
    pub concern: f64,
    pub freshness: f64,
    pub popularity: f64,
    pub language: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            stage: 3.0,
            role: 2.0,
            industry: 1.5,
            text: 2.0,
            concern: 1.0,
            freshness: 0.5,
            popularity: 0.5,
            language: 2.5,
        }
    }
}

/// Weights a request overrides for itself (what-if tuning).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WeightOverrides {
    pub stage: Option<f64>,
    pub role: Option<f64>,
    pub industry: Option<f64>,
    pub text: Option<f64>,
    pub concern: Option<f64>,
    pub freshness: Option<f64>,
    pub popularity: Option<f64>,
    pub language: Option<f64>,
}

/// The largest weight accepted; scores stay readable and bounds stay finite.
pub const MAX_WEIGHT: f64 = 100.0;

impl Weights {
    pub fn get(&self, factor: Factor) -> f64 {
        match factor {
            Factor::Stage => self.stage,
            Factor::Role => self.role,
            Factor::Industry => self.industry,
            Factor::Text => self.text,
            Factor::Concern => self.concern,
            Factor::Freshness => self.freshness,
            Factor::Popularity => self.popularity,
            Factor::Language => self.language,
        }
    }

    /// These weights with a request's overrides applied. Weights are between 0 and 100:
    /// a negative weight would turn "fits" into "avoid", which a filter says better.
    pub fn with(&self, overrides: &WeightOverrides) -> Result<Weights, String> {
        let pick = |name: &str, base: f64, o: Option<f64>| -> Result<f64, String> {
            match o {
                None => Ok(base),
                Some(w) if w.is_finite() && (0.0..=MAX_WEIGHT).contains(&w) => Ok(w),
                Some(w) => Err(format!(
                    "weights.{name} must be between 0 and {MAX_WEIGHT}, got {w}"
                )),
            }
        };
        Ok(Weights {
            stage: pick("stage", self.stage, overrides.stage)?,
            role: pick("role", self.role, overrides.role)?,
            industry: pick("industry", self.industry, overrides.industry)?,
            text: pick("text", self.text, overrides.text)?,
            concern: pick("concern", self.concern, overrides.concern)?,
            freshness: pick("freshness", self.freshness, overrides.freshness)?,
            popularity: pick("popularity", self.popularity, overrides.popularity)?,
            language: pick("language", self.language, overrides.language)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_what_they_name_and_are_bounded() {
        let w = Weights::default()
            .with(&WeightOverrides {
                stage: Some(0.0),
                text: Some(7.5),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            (w.stage, w.text, w.role),
            (0.0, 7.5, Weights::default().role)
        );
        for bad in [-1.0, 101.0, f64::NAN, f64::INFINITY] {
            let err = Weights::default()
                .with(&WeightOverrides {
                    role: Some(bad),
                    ..Default::default()
                })
                .unwrap_err();
            assert!(err.starts_with("weights.role"), "{err}");
        }
    }
}
