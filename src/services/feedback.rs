//! The feedback loop: which profile ranks a request (asked for, or an experiment's
//! variant), recording what was shown and what was dismissed, experiment reports, content
//! analytics, why an asset ranks where it does, and the offline replay of logged lists.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::oneshot;

use super::writer::{BatchWork, BatchWriter, Cadence, WriterHandle, WriterSettings};

use super::Library;
use super::recommend::{AudienceRequest, Ranking, Resolution, ResolvedAudience};
use crate::domain::{
    Asset, AssetFilter, AssetStatus, DEFAULT_PROFILE, Experiment, Factor, ListContext, ListSigner,
    NONCE_LEN, RankingProfile, Role, SignedList, Stage, TaxonomyValue, Variant, WeightOverrides,
    ideal_dcg5, list_measures, parse_name, two_proportion_test, wilson_interval,
};
use crate::error::{AppError, AppResult};
use crate::ranking::Scored;
use crate::store::{FeedbackCounts, ShownList, Store};

/// How often profiles and experiments are read again (other replicas' changes).
const RULES_EVERY: Duration = Duration::from_secs(2);
/// How often impressions past the retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Lists waiting for the impression writer; past this, callers wait for room.
const IMPRESSION_QUEUE: usize = 4_096;
/// Lists written in one transaction at most.
const IMPRESSION_BATCH: usize = 512;
/// At most this many impressions in one call.
pub const MAX_IMPRESSIONS: usize = 100;
/// "Moved forward": the account's stage advanced within this many days after engaging.
pub const MOVED_FORWARD_DAYS: i64 = 30;
/// How deep `explainRank` looks past the shown list.
pub const EXPLAIN_DEPTH: usize = 500;
/// Lists ranked per replayed context.
const REPLAY_DEPTH: usize = 10;

/// Profiles and experiments as last read.
#[derive(Debug, Default, PartialEq)]
struct Rules {
    profiles: Vec<RankingProfile>,
    experiments: Vec<Experiment>,
}

type Job = (ShownList, oneshot::Sender<AppResult<u64>>);

/// The feedback loop's shared state: the rules, their version (part of what a cached
/// response depends on), the impression writer, and the signer of recommendation ids.
#[derive(Default)]
pub(crate) struct FeedbackBoard {
    rules: RwLock<Arc<Rules>>,
    version: AtomicU64,
    writer: OnceLock<BatchWriter<Job>>,
    signer: OnceLock<ListSigner>,
    /// Days a list may be reported after it was shown (0: no limit).
    retention_days: std::sync::atomic::AtomicU32,
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

/// Which profile ranks a request, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    pub profile: String,
    pub overrides: WeightOverrides,
    pub experiment: Option<String>,
    pub variant: Option<String>,
}

impl Choice {
    /// The configured weights, chosen by nothing.
    fn default_profile() -> Self {
        Choice {
            profile: DEFAULT_PROFILE.to_owned(),
            overrides: WeightOverrides::default(),
            experiment: None,
            variant: None,
        }
    }
}

/// A fresh nonce for a recommendation id (hex).
fn new_nonce() -> String {
    let mut bytes = [0u8; NONCE_LEN / 2];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness from the system: the clock still tells answers apart.
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        bytes = nanos.to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What `recordImpressions` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImpressionReceipt {
    pub recorded: u64,
    pub duplicates: u64,
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

/// How one asset did.
#[derive(Clone, Debug)]
pub struct AssetPerformance {
    pub asset: Arc<Asset>,
    pub counts: FeedbackCounts,
    pub moved_forward: u64,
}

impl AssetPerformance {
    pub fn ctr(&self) -> f64 {
        rate(self.counts.clicks, self.counts.impressions)
    }
}

/// What `assetPerformance` orders by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PerformanceKey {
    Impressions,
    Clicks,
    ClickThroughRate,
    Completions,
    Dismissals,
    MovedForward,
}

/// A request for a page of asset performance.
#[derive(Clone, Debug)]
pub struct PerformanceQuery {
    pub filter: AssetFilter,
    /// The last days only; all time when `None`.
    pub since_days: Option<u32>,
    pub min_impressions: u64,
    pub order: PerformanceKey,
    pub descending: bool,
    pub offset: usize,
    pub first: usize,
}

pub struct PerformancePage {
    /// Assets that pass the filter (and `min_impressions`).
    pub total: usize,
    pub items: Vec<AssetPerformance>,
    pub has_more: bool,
}

/// One asset's numbers before its asset is loaded.
struct AssetPerformanceRow {
    id: String,
    stages: Vec<Stage>,
    roles: Vec<Role>,
    counts: FeedbackCounts,
    moved_forward: u64,
}

/// How the assets of one stage x role cell did together (an asset for several stages or
/// roles counts in each; an asset for every role counts in the `None` role).
#[derive(Clone, Debug)]
pub struct CellPerformance {
    pub stage: Stage,
    pub role: Option<Role>,
    pub assets: u64,
    pub counts: FeedbackCounts,
    pub moved_forward: u64,
}

pub fn rate(k: u64, n: u64) -> f64 {
    if n == 0 { 0.0 } else { k as f64 / n as f64 }
}

/// Where an asset ranks for an audience, and why not higher.
#[derive(Clone, Debug)]
pub struct RankExplanation {
    pub asset: Asset,
    pub audience: ResolvedAudience,
    pub profile: String,
    pub first: usize,
    /// Why it can never be shown to this audience; empty when it can.
    pub ineligible: Vec<String>,
    /// 1 for the first; `None` when ineligible or deeper than [`EXPLAIN_DEPTH`].
    pub rank: Option<usize>,
    pub scored: Option<Scored>,
    /// The last item a list of `first` shows.
    pub cutoff: Option<Scored>,
    /// What keeps it below the cutoff, largest gap first, in an editor's words.
    pub holding_back: Vec<String>,
}

/// The measures of one profile over the replayed lists.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplayMeasures {
    pub profile: String,
    pub mrr: f64,
    pub ndcg5: f64,
    pub recall10: f64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplayReport {
    pub lists: usize,
    pub candidate: ReplayMeasures,
    /// Each list re-ranked with the profile that ranked it when it was shown.
    pub logged: ReplayMeasures,
}

/// The shared secret recommendation ids are signed with.
const LIST_ID_SECRET: &str = "recommendation-ids";
/// A list may be reported this long after the time its id says it was ranked: ids are made
/// by the replicas themselves, whose clocks agree within this.
const LIST_CLOCK_SKEW_SECS: i64 = 300;

/// The signer of recommendation ids, with the secret the database holds (stored now, from
/// 32 random bytes, when no replica stored one yet).
async fn list_signer(store: &Store) -> AppResult<ListSigner> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random)
        .map_err(|e| AppError::internal(anyhow::anyhow!("no randomness for a secret: {e}")))?;
    let candidate: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let secret = store.shared_secret(LIST_ID_SECRET, &candidate).await?;
    Ok(ListSigner::new(secret.as_bytes()))
}

impl Library {
    /// Reads (or, first of all replicas, creates) the secret recommendation ids are signed
    /// with. Before this, ranking gives lists no id that opens.
    pub async fn load_list_signer(&self) -> AppResult<()> {
        if self.feedback.signer.get().is_some() {
            return Ok(());
        }
        let signer = list_signer(&self.store).await?;
        let _ = self.feedback.signer.set(signer);
        Ok(())
    }

    pub(super) fn signer(&self) -> AppResult<&ListSigner> {
        self.feedback.signer.get().ok_or_else(|| {
            AppError::internal(anyhow::anyhow!(
                "the recommendation id secret was not loaded"
            ))
        })
    }

    /// The id of a list ranked with `context` that shows `items`, in order.
    pub(super) fn issue_list_id<'a>(
        &self,
        context: &ListContext,
        items: impl IntoIterator<Item = &'a str>,
    ) -> AppResult<String> {
        Ok(self.signer()?.issue(context, items, &new_nonce()))
    }

    /// The same list id with a fresh nonce, signed again (same length): for answers the
    /// response cache replays.
    pub fn renew_list_id(&self, id: &str) -> Option<String> {
        self.feedback.signer.get()?.renew(id, &new_nonce())
    }

    /// Opens a recommendation id a caller reports against: signed by this deployment, not
    /// from the future, and not older than the retention (whose impressions are gone).
    pub(super) fn open_list(&self, id: &str) -> AppResult<SignedList> {
        let list = self.signer()?.open(id).map_err(AppError::bad_input)?;
        let now = Utc::now().timestamp();
        if list.context.at > now + LIST_CLOCK_SKEW_SECS {
            return Err(AppError::bad_input(
                "recommendationId: the list is dated in the future",
            ));
        }
        let days = self.feedback.retention_days.load(Ordering::Relaxed);
        if days > 0 && list.context.at < now - i64::from(days) * 86_400 {
            return Err(AppError::bad_input(format!(
                "recommendationId: the list was shown more than {days} days ago, past the retention"
            )));
        }
        Ok(list)
    }

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

    /// Starts what the feedback loop runs beside requests: the impression writer (lists
    /// from concurrent requests share one transaction), and as its upkeep the rules'
    /// refresh and the deletion of impressions older than `retention_days` (0 keeps them).
    pub async fn start_feedback(&self, retention_days: u32) -> AppResult<WriterHandle> {
        self.refresh_feedback_rules().await?;
        self.load_list_signer().await?;
        self.feedback
            .retention_days
            .store(retention_days, Ordering::Relaxed);
        let work = Arc::new(ImpressionWork {
            library: self.clone(),
            retention_days,
            prune: Cadence::new(PRUNE_EVERY),
        });
        let (writer, handle) = super::writer::start(
            work,
            WriterSettings {
                name: "impressions",
                capacity: IMPRESSION_QUEUE,
                batch: IMPRESSION_BATCH,
                upkeep: RULES_EVERY,
            },
        );
        let _ = self.feedback.writer.set(writer);
        Ok(handle)
    }

    /// Impression lists waiting to be written.
    pub fn impressions_queued(&self) -> usize {
        self.feedback.writer.get().map_or(0, BatchWriter::queued)
    }

    /// The profile for a request: the one asked for; else, with a placement that runs an
    /// experiment and someone to assign (a contact or an account), that person's variant;
    /// else the default.
    pub(super) fn choose(
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

    /// Records the items of a shown list that were seen, each once however often it is
    /// reported. `assets` are (asset id, position).
    pub async fn record_impressions(
        &self,
        recommendation_id: &str,
        assets: Vec<(String, Option<u32>)>,
    ) -> AppResult<ImpressionReceipt> {
        let list = self.open_list(recommendation_id)?;
        if assets.is_empty() || assets.len() > MAX_IMPRESSIONS {
            return Err(AppError::bad_input(format!(
                "assetIds: give 1 to {MAX_IMPRESSIONS}, got {}",
                assets.len()
            )));
        }
        let mut placed = Vec::with_capacity(assets.len());
        for (i, (id, position)) in assets.into_iter().enumerate() {
            crate::domain::AssetId::parse(&id)
                .map_err(|e| AppError::bad_input(format!("assetIds[{i}]: {e}")))?;
            if let Some(position) = position
                && (position == 0 || position > crate::domain::MAX_POSITION)
            {
                return Err(AppError::bad_input(format!(
                    "positions[{i}]: must be 1 to {}, got {position}",
                    crate::domain::MAX_POSITION
                )));
            }
            let Some(position) = self.signer()?.place(&list, &id, position) else {
                let place = position.map_or("in".to_owned(), |p| format!("at position {p} of"));
                return Err(AppError::bad_input(format!(
                    "assetIds[{i}]: {id:?} was not {place} that list; nothing was recorded"
                )));
            };
            placed.push((id, position));
        }
        let assets = placed;
        let context = list.context;
        let mut seen = HashSet::new();
        let mut unique = Vec::with_capacity(assets.len());
        for (id, position) in assets {
            if seen.insert(id.clone()) {
                unique.push((id, position));
            }
        }
        let total = unique.len() as u64;
        let list = ShownList {
            id: recommendation_id.to_owned(),
            context,
            assets: unique,
            at: Utc::now().timestamp(),
        };
        let recorded = match self.feedback.writer.get() {
            Some(writer) => {
                let (reply, answer) = oneshot::channel();
                writer.send((list, reply)).await.map_err(|_| {
                    AppError::internal(anyhow::anyhow!("the impression writer stopped"))
                })?;
                answer.await.map_err(|_| {
                    AppError::internal(anyhow::anyhow!("the impression writer stopped"))
                })??
            }
            // No writer (a command, not a server): written here, alone.
            None => self
                .store
                .record_impressions(std::slice::from_ref(&list))
                .await?
                .len() as u64,
        };
        Ok(ImpressionReceipt {
            recorded,
            duplicates: total - recorded,
        })
    }

    /// Never recommend `asset` to `account` again. False when it already was dismissed.
    pub async fn dismiss(&self, account: &str, asset: &str) -> AppResult<bool> {
        self.require_account(account).await?;
        // A draft is never recommended, so never dismissed: it answers as no asset does,
        // and whether an id is a draft stays the content team's to know.
        if self
            .asset(asset)
            .await?
            .is_none_or(|a| a.status == AssetStatus::Draft)
        {
            return Err(AppError::NotFound(format!("no asset with id {asset:?}")));
        }
        let new = self
            .store
            .dismiss(account, asset, Utc::now().timestamp())
            .await?;
        self.account_changed(account).await;
        Ok(new)
    }

    /// Counts and "moved forward" per asset since `since_days` ago (all time when `None`),
    /// for every asset with any.
    async fn feedback_rows(
        &self,
        since_days: Option<u32>,
    ) -> AppResult<Vec<(String, FeedbackCounts, u64)>> {
        let now = Utc::now().timestamp();
        let since = since_days.map_or(0, |d| now - i64::from(d) * 86_400);
        let mut counts = self
            .store
            .feedback_by_asset(since_days.map_or(i64::MIN, |_| since.div_euclid(86_400)))
            .await?;
        let mut moved = self.moved_forward(since.max(0)).await?;
        let mut ids: Vec<String> = counts.keys().chain(moved.keys()).cloned().collect();
        ids.sort();
        ids.dedup();
        Ok(ids
            .into_iter()
            .map(|id| {
                let c = counts.remove(&id).unwrap_or_default();
                let m = moved.remove(&id).unwrap_or(0);
                (id, c, m)
            })
            .collect())
    }

    /// The rows whose asset passes `filter`, with the stages and roles of each: from the
    /// index's columns for published assets (the default), without loading one; only a
    /// filter naming other statuses loads the assets.
    async fn admitted(
        &self,
        rows: Vec<(String, FeedbackCounts, u64)>,
        filter: &AssetFilter,
    ) -> AppResult<Vec<(AssetPerformanceRow, Option<Arc<Asset>>)>> {
        let ids: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        let mut out = Vec::with_capacity(rows.len());
        if filter
            .statuses
            .iter()
            .all(|s| *s == crate::domain::AssetStatus::Published)
        {
            // The index's columns say which published assets pass, and their stages and
            // roles, without loading one.
            let filter = filter.clone();
            let passing: HashMap<String, (Vec<Stage>, Vec<Role>)> = self
                .read_index(move |index| index.audit_rows(&filter, 0))
                .await?
                .into_iter()
                .map(|r| (r.coverage.id, (r.coverage.stages, r.coverage.roles)))
                .collect();
            for (id, counts, moved_forward) in rows {
                if let Some((stages, roles)) = passing.get(&id) {
                    out.push((
                        AssetPerformanceRow {
                            stages: stages.clone(),
                            roles: roles.clone(),
                            id,
                            counts,
                            moved_forward,
                        },
                        None,
                    ));
                }
            }
            return Ok(out);
        }
        // Other statuses: every asset with feedback is loaded and checked.
        let mut assets: HashMap<String, Asset> = HashMap::new();
        for chunk in ids.chunks(500) {
            for asset in self.store.load_assets(chunk).await? {
                if filter.admits(&asset) {
                    assets.insert(asset.id.to_string(), asset);
                }
            }
        }
        for (id, counts, moved_forward) in rows {
            if let Some(asset) = assets.remove(&id) {
                out.push((
                    AssetPerformanceRow {
                        stages: asset.stages.clone(),
                        roles: asset.roles.clone(),
                        id,
                        counts,
                        moved_forward,
                    },
                    Some(Arc::new(asset)),
                ));
            }
        }
        Ok(out)
    }

    /// A page of the assets with feedback that pass the query's filter, in its order.
    /// Only the page's assets are loaded when the filter is empty.
    pub async fn asset_performance(&self, q: &PerformanceQuery) -> AppResult<PerformancePage> {
        let mut rows = self
            .admitted(self.feedback_rows(q.since_days).await?, &q.filter)
            .await?;
        rows.retain(|(r, _)| r.counts.impressions >= q.min_impressions);
        let key = |r: &AssetPerformanceRow| -> f64 {
            match q.order {
                PerformanceKey::Impressions => r.counts.impressions as f64,
                PerformanceKey::Clicks => r.counts.clicks as f64,
                PerformanceKey::ClickThroughRate => rate(r.counts.clicks, r.counts.impressions),
                PerformanceKey::Completions => r.counts.completions as f64,
                PerformanceKey::Dismissals => r.counts.dismissals as f64,
                PerformanceKey::MovedForward => r.moved_forward as f64,
            }
        };
        // Ties: more impressions first (a rate on more evidence), then the id.
        rows.sort_by(|(a, _), (b, _)| {
            let by = key(a).total_cmp(&key(b));
            let by = if q.descending { by.reverse() } else { by };
            by.then(b.counts.impressions.cmp(&a.counts.impressions))
                .then_with(|| a.id.cmp(&b.id))
        });
        let total = rows.len();
        let page: Vec<_> = rows.into_iter().skip(q.offset).take(q.first).collect();
        let missing: Vec<String> = page
            .iter()
            .filter(|(_, a)| a.is_none())
            .map(|(r, _)| r.id.clone())
            .collect();
        let mut loaded: HashMap<String, Arc<Asset>> = self
            .store
            .load_assets(&missing)
            .await?
            .into_iter()
            .map(|a| (a.id.to_string(), Arc::new(a)))
            .collect();
        let items = page
            .into_iter()
            .filter_map(|(r, asset)| {
                let asset = asset.or_else(|| loaded.remove(&r.id))?;
                Some(AssetPerformance {
                    asset,
                    counts: r.counts,
                    moved_forward: r.moved_forward,
                })
            })
            .collect();
        Ok(PerformancePage {
            total,
            has_more: q.offset + q.first < total,
            items,
        })
    }

    /// The stage x role cells of the assets with feedback that pass `filter`.
    pub async fn cell_performance(
        &self,
        filter: &AssetFilter,
        since_days: Option<u32>,
    ) -> AppResult<Vec<CellPerformance>> {
        let rows = self
            .admitted(self.feedback_rows(since_days).await?, filter)
            .await?;
        let mut cells: Vec<CellPerformance> = Vec::new();
        for stage in Stage::ALL {
            for role in std::iter::once(None).chain(Role::ALL.iter().copied().map(Some)) {
                let mut cell = CellPerformance {
                    stage: *stage,
                    role,
                    assets: 0,
                    counts: FeedbackCounts::default(),
                    moved_forward: 0,
                };
                for (a, _) in &rows {
                    let in_role = match role {
                        None => a.roles.is_empty(),
                        Some(r) => a.roles.contains(&r),
                    };
                    if a.stages.contains(stage) && in_role {
                        cell.assets += 1;
                        cell.counts.impressions += a.counts.impressions;
                        cell.counts.clicks += a.counts.clicks;
                        cell.counts.completions += a.counts.completions;
                        cell.counts.dismissals += a.counts.dismissals;
                        cell.moved_forward += a.moved_forward;
                    }
                }
                cells.push(cell);
            }
        }
        Ok(cells)
    }

    /// Per asset: the accounts whose journey stage advanced within
    /// [`MOVED_FORWARD_DAYS`] after they engaged with it (a later event of theirs was
    /// recorded at a later stage).
    async fn moved_forward(&self, since: i64) -> AppResult<HashMap<String, u64>> {
        let events = self.store.journey_events(since).await?;
        // A scan of every event of the span: CPU work, off the runtime.
        tokio::task::spawn_blocking(move || moved_forward_counts(&events))
            .await
            .map_err(|e| AppError::internal(anyhow::anyhow!("moved-forward count failed: {e}")))
    }

    /// Where `asset_id` ranks for a request like `recommendations`, and what holds it back.
    #[allow(clippy::too_many_arguments)]
    pub async fn explain_rank(
        &self,
        asset_id: &str,
        request: AudienceRequest,
        text: Option<String>,
        filter: AssetFilter,
        profile: Option<String>,
        first: usize,
        diversify: bool,
    ) -> AppResult<RankExplanation> {
        if let Some(text) = &text {
            crate::domain::check_query_text("query", text).map_err(AppError::bad_input)?;
        }
        let asset = self
            .asset(asset_id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no asset with id {asset_id:?}")))?;
        let Resolution {
            resolved,
            exclude,
            account_id,
        } = self.resolve(&request).await?;
        let choice = self.choose(profile.as_deref(), None, None)?;
        let mut ineligible = Vec::new();
        match asset.status {
            AssetStatus::Draft => {
                ineligible.push("a draft: only published assets are recommended".to_owned())
            }
            AssetStatus::Retired => {
                ineligible.push("retired: only published assets are recommended".to_owned())
            }
            AssetStatus::Published => {}
        }
        if !filter.admits(&Asset {
            status: AssetStatus::Published,
            ..asset.clone()
        }) {
            ineligible.push("the request's filter leaves it out".to_owned());
        }
        if request.exclude_asset_ids.iter().any(|e| e == asset_id) {
            ineligible.push("the request excludes it (excludeAssetIds)".to_owned());
        }
        if let Some(account) = &account_id {
            let profile = self.require_account(account).await?;
            if profile.dismissed.iter().any(|d| d == asset_id) {
                ineligible.push(format!("account {account:?} dismissed it"));
            } else if !request.include_consumed && profile.consumed.iter().any(|c| c == asset_id) {
                ineligible.push(format!(
                    "account {account:?} already engaged with it (includeConsumed brings it back)"
                ));
            }
        }
        let mut explanation = RankExplanation {
            asset,
            audience: resolved.clone(),
            profile: choice.profile.clone(),
            first,
            ineligible,
            rank: None,
            scored: None,
            cutoff: None,
            holding_back: Vec::new(),
        };
        let ranking = |first: usize, diversify: bool, exclude: Vec<String>| Ranking {
            text: text.as_deref(),
            similar_to: None,
            filter: &filter,
            exclude,
            weights: choice.overrides,
            first,
            diversify,
            sequels: Vec::new(),
            linked: Vec::new(),
            text_first: false,
            seed_vector: None,
        };
        let shown = self
            .rank(
                &resolved.audience,
                ranking(first, diversify, exclude.clone()),
            )
            .await?;
        explanation.cutoff = (shown.len() == first)
            .then(|| shown.last().map(|r| r.scored.clone()))
            .flatten();
        if !explanation.ineligible.is_empty() {
            return Ok(explanation);
        }
        if let Some(i) = shown.iter().position(|r| r.asset.id.as_str() == asset_id) {
            explanation.rank = Some(i + 1);
            explanation.scored = Some(shown[i].scored.clone());
            return Ok(explanation);
        }
        // Past the shown list, the order is the score's (diversity only reorders the head).
        let mut deeper_exclude = exclude;
        deeper_exclude.extend(shown.iter().map(|r| r.asset.id.to_string()));
        let deeper = self
            .rank(
                &resolved.audience,
                ranking(EXPLAIN_DEPTH, false, deeper_exclude),
            )
            .await?;
        if let Some(i) = deeper.iter().position(|r| r.asset.id.as_str() == asset_id) {
            explanation.rank = Some(shown.len() + i + 1);
            let scored = deeper[i].scored.clone();
            if let Some(cutoff) = &explanation.cutoff {
                explanation.holding_back =
                    holding_back(&explanation.asset, &resolved, &scored, cutoff, first);
            }
            explanation.scored = Some(scored);
        }
        Ok(explanation)
    }

    /// Ranks the logged contexts of past lists (since `since`, Unix seconds) again with
    /// `profile`, and with the profile that ranked each, and says where the assets that
    /// were clicked (grade 1) or completed (grade 2) land.
    pub async fn replay(&self, profile: &str, since: i64) -> AppResult<ReplayReport> {
        let candidate = self.choose(Some(profile), None, None)?;
        let lists = self.store.logged_lists(since).await?;
        let mut report = ReplayReport {
            lists: 0,
            candidate: ReplayMeasures {
                profile: profile.to_owned(),
                ..Default::default()
            },
            logged: ReplayMeasures {
                profile: "as logged".to_owned(),
                ..Default::default()
            },
        };
        let mut logged_names = HashSet::new();
        for list in lists {
            let grades: HashMap<&str, f64> = list
                .items
                .iter()
                .filter(|i| i.2 || i.3)
                .map(|i| (i.0.as_str(), if i.3 { 2.0 } else { 1.0 }))
                .collect();
            if grades.is_empty() {
                continue;
            }
            let ctx = &list.context;
            let audience = replay_audience(ctx)?;
            // A profile deleted since ranks as the default.
            let logged = self
                .choose(Some(&ctx.profile), None, None)
                .unwrap_or_else(|_| Choice::default_profile());
            logged_names.insert(logged.profile.clone());
            let ideal = ideal_dcg5(grades.values().copied().collect());
            for (overrides, into) in [
                (candidate.overrides, &mut report.candidate),
                (logged.overrides, &mut report.logged),
            ] {
                let ranked = self
                    .rank(
                        &audience,
                        Ranking {
                            text: ctx.query.as_deref(),
                            similar_to: None,
                            filter: &AssetFilter::default(),
                            exclude: ctx.after.iter().cloned().collect(),
                            weights: overrides,
                            first: REPLAY_DEPTH,
                            diversify: true,
                            sequels: Vec::new(),
                            linked: Vec::new(),
                            text_first: false,
                            seed_vector: None,
                        },
                    )
                    .await?;
                let ids: Vec<String> = ranked.iter().map(|r| r.asset.id.to_string()).collect();
                let m = list_measures(&ids, |id| grades.get(id).copied().unwrap_or(0.0));
                into.mrr += m.reciprocal_rank;
                into.ndcg5 += if ideal > 0.0 { m.dcg5 / ideal } else { 0.0 };
                into.recall10 += m.found_in_10 as f64 / grades.len() as f64;
            }
            report.lists += 1;
        }
        if report.lists > 0 {
            let n = report.lists as f64;
            for m in [&mut report.candidate, &mut report.logged] {
                m.mrr /= n;
                m.ndcg5 /= n;
                m.recall10 /= n;
            }
        }
        let mut names: Vec<String> = logged_names.into_iter().collect();
        names.sort();
        if !names.is_empty() {
            report.logged.profile = names.join(", ");
        }
        Ok(report)
    }
}

/// Per asset, the accounts that moved forward after engaging with it, from events
/// (account, asset, time, cohort) ordered by account then time.
fn moved_forward_counts(events: &[(String, String, i64, String)]) -> HashMap<String, u64> {
    let stage_of = |cohort: &str| {
        cohort
            .rsplit('|')
            .next()
            .and_then(|s| Stage::parse(s).ok())
            .map(|s| s.ordinal())
    };
    let window = MOVED_FORWARD_DAYS * 86_400;
    let mut counted: HashSet<(&str, &str)> = HashSet::new();
    let mut out: HashMap<String, u64> = HashMap::new();
    for slice in events.chunk_by(|a, b| a.0 == b.0) {
        for (i, (account, asset, at, cohort)) in slice.iter().enumerate() {
            let Some(stage) = stage_of(cohort) else {
                continue;
            };
            if counted.contains(&(account.as_str(), asset.as_str())) {
                continue;
            }
            let advanced = slice[i + 1..]
                .iter()
                .take_while(|later| later.2 <= at + window)
                .any(|later| stage_of(&later.3).is_some_and(|s| s > stage));
            if advanced {
                counted.insert((account.as_str(), asset.as_str()));
                *out.entry(asset.clone()).or_default() += 1;
            }
        }
    }
    out
}

/// The impression writer's work: lists in batches; as upkeep, the rules' refresh (other
/// replicas' changes) and the hourly deletion past the retention.
struct ImpressionWork {
    library: Library,
    retention_days: u32,
    prune: Cadence,
}

impl BatchWork for ImpressionWork {
    type Item = Job;

    async fn write(&self, batch: Vec<Job>) {
        write_impressions(&self.library.store, batch).await;
    }

    async fn upkeep(&self) {
        if let Err(err) = self.library.refresh_feedback_rules().await {
            tracing::warn!(error = %format!("{:#}", err.unmasked()), "cannot read ranking profiles and experiments");
        }
        if self.retention_days == 0 || !self.prune.due() {
            return;
        }
        let before =
            (Utc::now() - chrono::Duration::days(i64::from(self.retention_days))).timestamp();
        match self.library.store.prune_feedback(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                impressions = n,
                retention_days = self.retention_days,
                "impressions pruned"
            ),
            Err(err) => {
                tracing::warn!(error = %format!("{:#}", err.unmasked()), "cannot prune impressions")
            }
        }
    }
}

/// Writes the lists of a batch in one transaction and answers each caller.
async fn write_impressions(store: &Store, batch: Vec<Job>) {
    let (lists, replies): (Vec<ShownList>, Vec<_>) = batch.into_iter().unzip();
    let started = std::time::Instant::now();
    let written = store.record_impressions(&lists).await;
    metrics::histogram!(crate::metrics::IMPRESSION_WRITE).record(started.elapsed().as_secs_f64());
    match written {
        Ok(inserted) => {
            metrics::counter!(crate::metrics::IMPRESSIONS).increment(inserted.len() as u64);
            let per_list = count_per_list(&inserted);
            for (list, reply) in lists.iter().zip(replies) {
                let key = crate::domain::list_key(&list.id);
                let _ = reply.send(Ok(per_list.get(key.as_str()).copied().unwrap_or(0)));
            }
        }
        Err(err) => {
            let unavailable = matches!(err, AppError::Unavailable(_));
            let message = format!("{:#}", err.unmasked());
            tracing::error!(lists = lists.len(), error = %message, "cannot record impressions");
            for reply in replies {
                let err = anyhow::anyhow!("{message}");
                let _ = reply.send(Err(if unavailable {
                    AppError::Unavailable(err)
                } else {
                    AppError::Internal(err)
                }));
            }
        }
    }
}

/// New impressions per list key.
fn count_per_list(inserted: &[(String, String)]) -> HashMap<&str, u64> {
    let mut counts = HashMap::new();
    for (key, _) in inserted {
        *counts.entry(key.as_str()).or_default() += 1;
    }
    counts
}

/// A logged context as the audience it was ranked for.
fn replay_audience(ctx: &ListContext) -> AppResult<crate::ranking::Audience> {
    let bad =
        |what: &str| AppError::internal(anyhow::anyhow!("a logged list's {what} cannot be read"));
    Ok(crate::ranking::Audience {
        stage: Stage::parse(&ctx.stage).map_err(|_| bad("stage"))?,
        role: ctx
            .role
            .as_deref()
            .map(Role::parse)
            .transpose()
            .map_err(|_| bad("role"))?,
        industry: ctx
            .industry
            .as_deref()
            .map(crate::domain::IndustrySlug::parse)
            .transpose()
            .map_err(|_| bad("industry"))?,
        language: crate::domain::Language::parse(&ctx.language).map_err(|_| bad("language"))?,
        concerns: ctx
            .concerns
            .iter()
            .filter_map(|c| crate::domain::Concern::parse(c).ok())
            .collect(),
    })
}

/// The factors where the asset gets less than the cutoff item, largest gap first.
fn holding_back(
    asset: &Asset,
    audience: &ResolvedAudience,
    scored: &Scored,
    cutoff: &Scored,
    first: usize,
) -> Vec<String> {
    let mut gaps: Vec<(f64, String)> = Factor::ALL
        .into_iter()
        .filter_map(|f| {
            let mine = reason_for(scored, f);
            let theirs = reason_for(cutoff, f).map_or(0.0, |r| r.contribution);
            let contribution = mine.map_or(0.0, |r| r.contribution);
            let gap = theirs - contribution;
            (gap > 1e-9).then(|| {
                let (weight, detail) = mine.map_or((0.0, ""), |r| (r.weight, r.detail.as_str()));
                (
                    gap,
                    factor_words(
                        f,
                        asset,
                        audience,
                        detail,
                        contribution,
                        weight,
                        theirs,
                        first,
                    ),
                )
            })
        })
        .collect();
    gaps.sort_by(|a, b| b.0.total_cmp(&a.0));
    gaps.into_iter().map(|(_, words)| words).collect()
}

fn reason_for(scored: &Scored, factor: Factor) -> Option<&crate::ranking::ScoreReason> {
    scored.reasons.iter().find(|r| r.factor == factor)
}

#[allow(clippy::too_many_arguments)]
fn factor_words(
    f: Factor,
    asset: &Asset,
    audience: &ResolvedAudience,
    detail: &str,
    mine: f64,
    weight: f64,
    theirs: f64,
    first: usize,
) -> String {
    let a = &audience.audience;
    let names = |v: Vec<&str>, none: &str| {
        if v.is_empty() {
            none.to_owned()
        } else {
            v.join(", ")
        }
    };
    let what = match f {
        Factor::Stage => format!(
            "stage {}, audience {}",
            names(asset.stages.iter().map(|s| s.name()).collect(), "none"),
            a.stage.name()
        ),
        Factor::Language => format!(
            "written in {}, the audience reads {}",
            asset.language.as_str(),
            a.language.as_str()
        ),
        Factor::Role => format!(
            "written for {}, audience {}",
            names(asset.roles.iter().map(|r| r.name()).collect(), "every role"),
            a.role.map_or("unknown", |r| r.name())
        ),
        Factor::Industry => format!(
            "for {}, audience {}",
            names(
                asset.industries.iter().map(|i| i.as_str()).collect(),
                "every industry"
            ),
            a.industry.as_ref().map_or("unknown", |i| i.as_str())
        ),
        _ => format!("{}: {detail}", f.name().to_lowercase()),
    };
    format!("{what}: {mine:.2} of {weight:.2} (the item at {first} gets {theirs:.2})")
}

/// Writes synthetic lists (`stagefit generate-feedback`) through the same store functions
/// as `recordImpressions` and attributed events, in batches of `batch` lists. Returns the
/// impressions and clicks written.
pub async fn write_generated_feedback(
    store: &Store,
    lists: impl Iterator<Item = crate::generate::FeedbackList>,
    batch: usize,
) -> AppResult<(u64, u64)> {
    let (mut impressions, mut clicks) = (0u64, 0u64);
    // Signed like a server's ids, so `recordImpressions` would take them.
    let signer = list_signer(store).await?;
    let mut shown = Vec::with_capacity(batch);
    let mut events = Vec::new();
    let mut flush = async |shown: &mut Vec<ShownList>, events: &mut Vec<_>| -> AppResult<()> {
        impressions += store.record_impressions(shown).await?.len() as u64;
        store.attribute_many(events).await?;
        clicks += events.len() as u64;
        shown.clear();
        events.clear();
        Ok(())
    };
    for (n, list) in lists.enumerate() {
        let id = signer.issue(
            &list.context,
            list.items.iter().map(|(asset, _)| asset.as_str()),
            &format!("{n:016x}"),
        );
        for (asset, position, completed) in &list.clicked {
            events.push((
                crate::domain::Attribution {
                    recommendation_id: id.clone(),
                    context: list.context.clone(),
                    position: Some(*position),
                },
                asset.clone(),
                if *completed {
                    crate::domain::EngagementKind::Complete
                } else {
                    crate::domain::EngagementKind::View
                },
                list.context.at,
            ));
        }
        shown.push(ShownList {
            id,
            at: list.context.at,
            context: list.context,
            assets: list.items,
        });
        if shown.len() == batch {
            flush(&mut shown, &mut events).await?;
        }
    }
    flush(&mut shown, &mut events).await?;
    Ok((impressions, clicks))
}
