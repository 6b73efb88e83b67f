//! The ranking factors and their weights.
//!
//! The list of factors is written once, in [`with_factors!`]; every other list of them (the
//! `Factor` enum, `Weights`, `WeightOverrides`, the configuration's names, the GraphQL
//! weights input and factor enum) is generated from it, so adding a factor is one line
//! here plus the code that computes its value.

use std::fmt;

/// Calls `$callback!` with every factor as `(Variant, field, "NAME", default weight)`.
/// The defaults put the buying stage first (the seeds' main point), then language (an
/// unreadable asset helps nobody), role, text and industry.
#[macro_export]
macro_rules! with_factors {
    ($callback:ident) => {
        $callback! {
            (Stage, stage, "STAGE", 3.0),
            (Role, role, "ROLE", 2.0),
            (Industry, industry, "INDUSTRY", 1.5),
            (Text, text, "TEXT", 2.0),
            (Concern, concern, "CONCERN", 1.0),
            (Freshness, freshness, "FRESHNESS", 0.5),
            (Popularity, popularity, "POPULARITY", 0.5),
            (Language, language, "LANGUAGE", 2.5),
            (Sequel, sequel, "SEQUEL", 3.0),
            (AlsoRead, also_read, "ALSO_READ", 2.0),
        }
    };
}

/// The largest weight accepted; scores stay readable and bounds stay finite.
pub const MAX_WEIGHT: f64 = 100.0;

macro_rules! define_factors {
    ($(($variant:ident, $field:ident, $name:literal, $default:literal)),* $(,)?) => {
        /// A named part of a score.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Factor {
            $($variant),*
        }

        impl Factor {
            pub const ALL: [Factor; [$(stringify!($variant)),*].len()] = [$(Factor::$variant),*];

            /// The name in explanations and the API (`STAGE`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Factor::$variant => $name),*
                }
            }

            /// The name in weight settings (`stage`).
            pub fn key(self) -> &'static str {
                match self {
                    $(Factor::$variant => stringify!($field)),*
                }
            }
        }

        /// How much each factor counts.
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub struct Weights {
            $(pub $field: f64),*
        }

        impl Default for Weights {
            fn default() -> Self {
                Self {
                    $($field: $default),*
                }
            }
        }

        /// Weights a request overrides for itself (what-if tuning).
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        pub struct WeightOverrides {
            $(pub $field: Option<f64>),*
        }

        impl Weights {
            pub fn get(&self, factor: Factor) -> f64 {
                match factor {
                    $(Factor::$variant => self.$field),*
                }
            }

            /// These weights with a request's overrides applied. Weights are between 0 and
            /// 100: a negative weight would turn "fits" into "avoid", which a filter says
            /// better.
            pub fn with(&self, overrides: &WeightOverrides) -> Result<Weights, String> {
                Ok(Weights {
                    $($field: pick(stringify!($field), self.$field, overrides.$field)?),*
                })
            }
        }

        impl WeightOverrides {
            pub fn set(&mut self, factor: Factor, weight: f64) {
                match factor {
                    $(Factor::$variant => self.$field = Some(weight)),*
                }
            }

            pub fn get(&self, factor: Factor) -> Option<f64> {
                match factor {
                    $(Factor::$variant => self.$field),*
                }
            }

            /// These overrides under `top`: what `top` names wins.
            pub fn under(&self, top: &WeightOverrides) -> WeightOverrides {
                WeightOverrides {
                    $($field: top.$field.or(self.$field)),*
                }
            }
        }
    };
}

crate::with_factors!(define_factors);

fn pick(name: &str, base: f64, o: Option<f64>) -> Result<f64, String> {
    match o {
        None => Ok(base),
        Some(w) if w.is_finite() && (0.0..=MAX_WEIGHT).contains(&w) => Ok(w),
        Some(w) => Err(format!(
            "weights.{name} must be between 0 and {MAX_WEIGHT}, got {w}"
        )),
    }
}

impl Factor {
    /// The factor a weight setting names (`stage`, any case).
    pub fn from_key(key: &str) -> Option<Factor> {
        Factor::ALL
            .into_iter()
            .find(|f| f.key().eq_ignore_ascii_case(key.trim()))
    }
}

impl fmt::Display for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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

    #[test]
    fn every_factor_has_its_own_names_and_weight_slot() {
        let mut o = WeightOverrides::default();
        for (i, f) in Factor::ALL.into_iter().enumerate() {
            assert_eq!(Factor::from_key(f.key()), Some(f));
            assert_eq!(f.name(), f.key().to_ascii_uppercase());
            o.set(f, i as f64);
        }
        let w = Weights::default().with(&o).unwrap();
        for (i, f) in Factor::ALL.into_iter().enumerate() {
            assert_eq!(w.get(f), i as f64, "{f}");
        }
    }
}
