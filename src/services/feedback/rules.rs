//! Ranking profiles and experiments: the rules every replica reads again every two seconds,
//! which profile ranks a request, and experiment reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use chrono::Utc;

use super::super::Library;
use super::super::writer::BatchWriter;
use super::lists::Job;
use crate::domain::{
    Choice, DEFAULT_PROFILE, Experiment, ListSigner, RankingProfile, Variant, WeightOverrides,
    parse_name, rate, two_proportion_test, wilson_interval,
};
use crate::error::{AppError, AppResult};
use crate::store::FeedbackCounts;

/// Profiles and experiments as last read.
#[derive(Debug, Default, PartialEq)]
struct Rules {
    profiles: Vec<RankingProfile>,
    experiments: Vec<Experiment>,
}

/// The feedback loop's shared state: the rules, their version (part of what a cached
/// response depends on), the impression writer, and the signer of recommendation ids.
#[derive(Default)]
pub(crate) struct FeedbackBoard {
    rules: RwLock<Arc<Rules>>,
    version: AtomicU64,
    pub(super) writer: OnceLock<BatchWriter<Job>>,
    pub(super) signer: OnceLock<ListSigner>,
    /// Days a list may be reported after it was shown (0: no limit).
    pub(super) retention_days: std::sync::atomic::AtomicU32,
    /// One refresh at a time: a slow read must not replace what a newer one stored.
    refreshing: tokio::sync::Mutex<()>,
}

impl FeedbackBoard {
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    fn rules(&self) -> Arc<Rules> {
        self.rules
            .read()
            .map(|r| r.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }
}

/// One variant's numbers.
#[derive(Clone, Debug)]
pub struct VariantReport {
    pub variant: Variant,
    pub counts: FeedbackCounts,
    pub ctr: f64,
    /// The 95% Wilson interval of the click-through rate.
    pub ctr_interval: (f64, f64),
    /// Against the first variant (the control): difference of rates, z and two-sided
    /// p-value; `None` for the control itself or when there is nothing to test.
    pub against_control: Option<(f64, f64, f64)>,
}

#[derive(Clone, Debug)]
pub struct ExperimentReport {
    pub experiment: Experiment,
    pub variants: Vec<VariantReport>,
}

impl Library {
    /// Reads profiles and experiments again; a change moves the version cached
    /// responses depend on.
    pub async fn refresh_feedback_rules(&self) -> AppResult<()> {
        let _one = self.feedback.refreshing.lock().await;
        let rules = Rules {
            profiles: self.store.ranking_profiles().await?,
            experiments: self.store.experiments().await?,
        };
        let mut current = self
            .feedback
            .rules
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if **current != rules {
            *current = Arc::new(rules);
            self.feedback.version.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }

    /// experiment and someone to assign (a contact or an account), that person's variant;
    /// else the default.
    pub(in crate::services) fn choose(
        &self,
        profile: Option<&str>,
        placement: Option<&str>,
        subject: Option<&str>,
    ) -> AppResult<Choice> {
        let rules = self.feedback.rules();
        let named = |name: &str| -> AppResult<WeightOverrides> {
            if name == DEFAULT_PROFILE {
                return Ok(WeightOverrides::default());
            }
            rules
                .profiles
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.weights)
                .ok_or_else(|| {
                    AppError::bad_input(format!(
                        "profile: no ranking profile named {name:?} (see rankingProfiles)"
                    ))
                })
        };
        if let Some(name) = profile {
            return Ok(Choice {
                profile: name.to_owned(),
                overrides: named(name)?,
                experiment: None,
                variant: None,
            });
        }
        if let (Some(placement), Some(subject)) = (placement, subject)
            && let Some(e) = rules
                .experiments
                .iter()
                .find(|e| e.stopped_at.is_none() && e.placement == placement)
        {
            let v = e.assign(subject);
            return Ok(Choice {
                profile: v.profile.clone(),
                // A profile deleted under a running experiment ranks as the default.
                overrides: named(&v.profile).unwrap_or_default(),
                experiment: Some(e.name.clone()),
                variant: Some(v.profile.clone()),
            });
        }
        Ok(Choice::default_profile())
    }

    /// The default profile (the configured weights) and the stored ones, by name.
    pub fn ranking_profiles(&self) -> Vec<RankingProfile> {
        let mut all = vec![RankingProfile {
            name: DEFAULT_PROFILE.to_owned(),
            description: "the configured weights".to_owned(),
            weights: WeightOverrides::default(),
            updated_at: 0,
        }];
        all.extend(self.feedback.rules().profiles.iter().cloned());
        all
    }

    /// The weights a profile ranks with.
    pub fn profile_weights(&self, p: &RankingProfile) -> AppResult<crate::domain::Weights> {
        self.ranking
            .weights
            .with(&p.weights)
            .map_err(AppError::bad_input)
    }

    pub async fn upsert_ranking_profile(
        &self,
        name: &str,
        weights: WeightOverrides,
        description: Option<String>,
    ) -> AppResult<RankingProfile> {
        let name = parse_name("name", name).map_err(AppError::bad_input)?;
        if name == DEFAULT_PROFILE {
            return Err(AppError::bad_input(
                "name: \"default\" is the configured weights (STAGEFIT_WEIGHTS); give another name",
            ));
        }
        self.ranking
            .weights
            .with(&weights)
            .map_err(AppError::bad_input)?;
        let description = description.unwrap_or_default().trim().to_owned();
        if description.chars().count() > 500 {
            return Err(AppError::bad_input("description: at most 500 characters"));
        }
        let profile = RankingProfile {
            name,
            description,
            weights,
            updated_at: Utc::now().timestamp(),
        };
        self.store.upsert_ranking_profile(&profile).await?;
        self.refresh_feedback_rules().await?;
        Ok(profile)
    }

    pub async fn start_experiment(
        &self,
        name: &str,
        placement: &str,
        variants: Vec<Variant>,
    ) -> AppResult<Experiment> {
        let name = parse_name("name", name).map_err(AppError::bad_input)?;
        let placement = parse_name("placement", placement).map_err(AppError::bad_input)?;
        Experiment::check_variants(&variants).map_err(AppError::bad_input)?;
        self.refresh_feedback_rules().await?;
        let rules = self.feedback.rules();
        for (i, v) in variants.iter().enumerate() {
            if v.profile != DEFAULT_PROFILE && !rules.profiles.iter().any(|p| p.name == v.profile) {
                return Err(AppError::bad_input(format!(
                    "variants[{i}].profile: no ranking profile named {:?}",
                    v.profile
                )));
            }
        }
        if let Some(running) = rules
            .experiments
            .iter()
            .find(|e| e.stopped_at.is_none() && e.placement == placement)
        {
            return Err(AppError::bad_input(format!(
                "placement {placement:?} already runs experiment {:?}; stop it first",
                running.name
            )));
        }
        let experiment = Experiment {
            name,
            placement,
            variants,
            started_at: Utc::now().timestamp(),
            stopped_at: None,
        };
        if !self.store.insert_experiment(&experiment).await? {
            return Err(AppError::bad_input(format!(
                "name: an experiment named {:?} exists; names are never reused, so its numbers stay its own",
                experiment.name
            )));
        }
        self.refresh_feedback_rules().await?;
        Ok(experiment)
    }

    pub async fn stop_experiment(&self, name: &str) -> AppResult<Experiment> {
        if !self
            .store
            .stop_experiment(name, Utc::now().timestamp())
            .await?
        {
            self.experiment(name).await?;
            return Err(AppError::bad_input(format!(
                "experiment {name:?} is already stopped"
            )));
        }
        self.refresh_feedback_rules().await?;
        self.experiment(name).await
    }

    pub async fn experiments(&self) -> AppResult<Vec<Experiment>> {
        self.store.experiments().await
    }

    async fn experiment(&self, name: &str) -> AppResult<Experiment> {
        self.store
            .experiments()
            .await?
            .into_iter()
            .find(|e| e.name == name)
            .ok_or_else(|| AppError::NotFound(format!("no experiment named {name:?}")))
    }

    /// Per variant: impressions, clicks, completions, the click-through rate with its
    /// interval, and the test against the control (the first variant).
    pub async fn experiment_report(&self, name: &str) -> AppResult<ExperimentReport> {
        let experiment = self.experiment(name).await?;
        let counts = self.store.feedback_by_variant(name).await?;
        let control = experiment
            .variants
            .first()
            .and_then(|v| counts.get(&v.profile))
            .cloned()
            .unwrap_or_default();
        let variants = experiment
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let c = counts.get(&v.profile).cloned().unwrap_or_default();
                VariantReport {
                    variant: v.clone(),
                    ctr: rate(c.clicks, c.impressions),
                    ctr_interval: wilson_interval(c.clicks, c.impressions),
                    against_control: (i > 0)
                        .then(|| {
                            two_proportion_test(
                                (control.clicks, control.impressions),
                                (c.clicks, c.impressions),
                            )
                        })
                        .flatten(),
                    counts: c,
                }
            })
            .collect();
        Ok(ExperimentReport {
            experiment,
            variants,
        })
    }
}
