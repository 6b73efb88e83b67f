//! Accounts, contacts and engagement: writing them, reading an account's profile (what it
//! read, the stage its reading points to), its buying committee, export and erasure.
//!
//! A profile is read from the database once and reused for a few seconds
//! (`Config::account_cache_secs`); every write through this process drops the profiles
//! it touches, so an event recorded here shows in the next recommendation.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

use super::popularity::PopularityStats;
use super::recommend::{AudienceRequest, Recommendation, RecommendationQuery};
use super::references::EventReferences;
use super::{Library, distinct, validate_batch};
use crate::domain::cohort_key;
use crate::domain::{
    Account, AccountDraft, Contact, ContactDraft, ContactId, Engagement, EngagementDraft, Role,
    Stage, StageSource, TaxonomyValue,
};
use crate::error::{AppError, AppResult};
use crate::ranking::{HORIZON_DAYS, Reading, StageInference, account_stage, infer_stage};
use crate::store::ReplicaChange;
use crate::store::StoredEngagement;

/// Most events one `recordEngagements` call may carry.
pub const MAX_ENGAGEMENT_BATCH: usize = 1_000;
/// Most contacts or accounts one upsert may carry (imports take larger files).
pub const MAX_ACCOUNT_BATCH: usize = 1_000;
/// Events of the horizon read for stage inference, newest first.
const INFERENCE_EVENTS: u64 = 500;
/// Newest events kept in a profile for display.
const RECENT_EVENTS: usize = 20;
/// Bytes of profiles kept.
const PROFILE_CACHE_BYTES: u64 = 32 * 1024 * 1024;
/// An asset already picked for or read by another contact of the account stays a contact's
/// top pick only when it leads the next candidate by more than this share of its score.
pub const CLEARLY_BEST_MARGIN: f64 = 0.10;

/// What the service knows about an account at one moment.
#[derive(Debug)]
pub struct AccountProfile {
    pub account: Account,
    pub contacts: Vec<Contact>,
    /// Every asset the account engaged with, sorted.
    pub consumed: Vec<String>,
    /// Assets the account dismissed: never recommended to it again.
    pub dismissed: Vec<String>,
    /// For each asset, the contacts who engaged with it.
    pub read_by: HashMap<String, Vec<ContactId>>,
    /// The newest events, newest first.
    pub recent: Vec<StoredEngagement>,
    pub engagement_count: u64,
    pub inference: Option<StageInference>,
    /// The stage to rank for and whether reading (not the CRM) says so; `None` when
    /// neither says anything.
    pub journey: Option<(Stage, bool)>,
    /// Where the journey stage comes from: the CRM's stage through the mapping, the
    /// declared stage, or reading.
    pub stage_source: Option<StageSource>,
    loaded: Instant,
}

impl AccountProfile {
    /// The popularity cohort the account's events go to.
    pub fn cohort(&self, default_stage: Stage) -> String {
        cohort_key(
            self.account.industry.as_ref(),
            self.journey.map_or(default_stage, |(s, _)| s),
        )
    }

    /// The contacts in committee order: by role in the taxonomy's order (no role last),
    /// then by id.
    pub fn committee_order(&self) -> Vec<&Contact> {
        let mut ordered: Vec<&Contact> = self.contacts.iter().collect();
        ordered.sort_by_key(|c| (c.role.map_or(usize::MAX, |r| r.ordinal()), c.id.clone()));
        ordered
    }

    pub fn contact(&self, id: &str) -> Option<&Contact> {
        self.contacts.iter().find(|c| c.id.as_str() == id)
    }

    /// Distinct assets each contact engaged with.
    pub fn assets_read_by(&self, contact: &ContactId) -> usize {
        self.read_by
            .values()
            .filter(|who| who.contains(contact))
            .count()
    }
}

#[derive(Clone)]
struct ProfileBytes;

impl Weighter<String, Arc<AccountProfile>> for ProfileBytes {
    fn weight(&self, _: &String, p: &Arc<AccountProfile>) -> u64 {
        (512 + 96 * (p.consumed.len() + p.contacts.len() + p.recent.len())) as u64
    }
}

/// Profiles of recently asked-about accounts.
pub struct ProfileCache {
    entries: Cache<String, Arc<AccountProfile>, ProfileBytes>,
    max_age: Duration,
    /// Moves with every `forget`: a profile loaded across a write is used once, not kept.
    epoch: AtomicU64,
}

impl ProfileCache {
    pub fn new(max_age: Duration) -> Self {
        Self {
            entries: Cache::with_weighter(8_192, PROFILE_CACHE_BYTES, ProfileBytes),
            max_age,
            epoch: AtomicU64::new(0),
        }
    }

    fn forget(&self, id: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.remove(id);
    }

    fn forget_all(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.clear();
    }
}

/// What recording a batch of events did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngagementReceipt {
    pub recorded: u64,
    /// Events whose client event id the account had already used: recorded before.
    pub duplicates: u64,
}

/// One role of the buying committee as the account's contacts fill it.
pub struct CommitteeRole {
    pub role: Role,
    pub contacts: Vec<Contact>,
    /// Distinct assets the role's contacts engaged with.
    pub assets_engaged: usize,
}

#[derive(Clone)]
pub struct CommitteeMember {
    pub contact: Contact,
    pub assets_engaged: usize,
    pub recommendations: Vec<Recommendation>,
    /// Set when the list's first pick was moved down because another contact of the
    /// account already has it: its id.
    pub deferred: Option<String>,
}

pub struct Committee {
    pub roles: Vec<CommitteeRole>,
    pub members: Vec<CommitteeMember>,
}

/// Everything stored about an account.
pub struct AccountExport {
    /// Read now, not from the profile cache: the record and contacts as stored.
    pub profile: Arc<AccountProfile>,
    pub engagements: Vec<StoredEngagement>,
}

impl Library {
    /// Validates every account first, writes all or none.
    pub async fn upsert_accounts(&self, drafts: Vec<AccountDraft>) -> AppResult<Vec<Account>> {
        let now = Utc::now();
        let accounts = validate_batch(
            "accounts",
            MAX_ACCOUNT_BATCH,
            &drafts,
            |d| d.id.clone(),
            |d| d.validate(now),
        )?;
        let stored = self.store.upsert_accounts(&accounts).await?;
        let ids: Vec<String> = stored.iter().map(|a| a.id.to_string()).collect();
        self.accounts_changed(&ids).await;
        Ok(stored)
    }

    /// Validates every contact first; their accounts must exist. Writes all or none.
    pub async fn upsert_contacts(&self, drafts: Vec<ContactDraft>) -> AppResult<Vec<Contact>> {
        let contacts = validate_batch(
            "contacts",
            MAX_ACCOUNT_BATCH,
            &drafts,
            |d| d.id.clone(),
            ContactDraft::validate,
        )?;
        let wanted = distinct(contacts.iter().map(|c| c.account_id.to_string()));
        let found: HashSet<String> = self
            .store
            .existing_accounts(&wanted)
            .await?
            .into_iter()
            .collect();
        if let Some(missing) = contacts
            .iter()
            .find(|c| !found.contains(c.account_id.as_str()))
        {
            return Err(AppError::NotFound(format!(
                "no account with id {:?} (contact {:?}); upsert the account first",
                missing.account_id.as_str(),
                missing.id.as_str()
            )));
        }
        // A contact moving to another account changes both.
        let ids: Vec<String> = contacts.iter().map(|c| c.id.to_string()).collect();
        let mut touched: HashSet<String> = wanted.into_iter().collect();
        touched.extend(self.store.accounts_of_contacts(&ids).await?);
        self.store.upsert_contacts(&contacts).await?;
        for id in touched {
            self.account_changed(&id).await;
        }
        Ok(contacts)
    }

    /// An account's profile, from the cache when it is young enough. Concurrent requests
    /// for an account that is not cached wait for one load instead of each loading it.
    pub async fn account_profile(&self, id: &str) -> AppResult<Option<Arc<AccountProfile>>> {
        let cache = &self.profiles;
        loop {
            match cache.entries.get_value_or_guard_async(id).await {
                Ok(p) if p.loaded.elapsed() < cache.max_age => return Ok(Some(p)),
                Ok(_) => {
                    cache.entries.remove(id);
                }
                Err(guard) => {
                    let epoch = cache.epoch.load(Ordering::Acquire);
                    let Some(profile) = self.load_profile(id).await? else {
                        return Ok(None);
                    };
                    let profile = Arc::new(profile);
                    // A write meanwhile may not be in what was read: do not keep it.
                    if cache.epoch.load(Ordering::Acquire) == epoch {
                        let _ = guard.insert(profile.clone());
                    }
                    return Ok(Some(profile));
                }
            }
        }
    }

    async fn load_profile(&self, id: &str) -> AppResult<Option<AccountProfile>> {
        let Some(account) = self.store.get_account(id).await? else {
            return Ok(None);
        };
        let now = Utc::now();
        let contacts = self.store.contacts_of(id).await?;
        let since = (now - chrono::Duration::days(HORIZON_DAYS)).timestamp();
        let recent = self
            .store
            .recent_engagements(id, since, INFERENCE_EVENTS)
            .await?;
        let mut read_by: HashMap<String, Vec<ContactId>> = HashMap::new();
        for (asset, contact) in self.store.consumed_assets(id).await? {
            let who = read_by.entry(asset).or_default();
            if let Some(c) = contact.and_then(|c| ContactId::parse(&c).ok())
                && !who.contains(&c)
            {
                who.push(c);
            }
        }
        let mut consumed: Vec<String> = read_by.keys().cloned().collect();
        consumed.sort();
        let engagement_count = self.store.count_engagements(id).await?;
        let asset_ids = distinct(recent.iter().map(|e| e.engagement.asset_id.to_string()));
        let stages = self.store.asset_stages(&asset_ids).await?;
        let readings: Vec<Reading> = recent
            .iter()
            .map(|e| Reading {
                asset_id: e.engagement.asset_id.to_string(),
                stages: stages
                    .get(e.engagement.asset_id.as_str())
                    .cloned()
                    .unwrap_or_default(),
                kind: e.engagement.kind,
                occurred_at: e.engagement.occurred_at,
            })
            .collect();
        let inference = infer_stage(&readings, now);
        let crm = match &account.crm_stage {
            Some(name) => self.store.crm_stage_mapped(name).await?.flatten(),
            None => None,
        };
        let stage = account_stage(
            crm,
            account.stage.map(|s| (s, account.stage_updated_at)),
            inference.as_ref(),
        );
        let journey = stage.map(|(s, source)| (s, source == StageSource::Reading));
        let mut recent = recent;
        recent.truncate(RECENT_EVENTS);
        let dismissed = self.store.dismissed(id).await?;
        Ok(Some(AccountProfile {
            account,
            contacts,
            consumed,
            dismissed,
            read_by,
            recent,
            engagement_count,
            inference,
            journey,
            stage_source: stage.map(|(_, source)| source),
            loaded: Instant::now(),
        }))
    }

    /// The profile or `NOT_FOUND`.
    pub async fn require_account(&self, id: &str) -> AppResult<Arc<AccountProfile>> {
        self.account_profile(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no account with id {id:?}")))
    }

    /// Validates every event, checks that their accounts, contacts and assets exist, and
    /// records them durably before returning. All or nothing.
    pub async fn record_engagements(
        &self,
        drafts: Vec<EngagementDraft>,
    ) -> AppResult<EngagementReceipt> {
        let (rows, accounts) = self.prepare_engagements(drafts).await?;
        let total = rows.len() as u64;
        let recorded = self.store.insert_engagements(&rows).await?;
        self.accounts_changed(&accounts).await;
        Ok(EngagementReceipt {
            recorded,
            duplicates: total - recorded,
        })
    }

    /// Events checked as [`Library::record_engagements`] checks them, each with its
    /// account's popularity cohort, and the accounts they are of.
    pub(super) async fn prepare_engagements(
        &self,
        drafts: Vec<EngagementDraft>,
    ) -> AppResult<(Vec<(Engagement, String)>, Vec<String>)> {
        let now = Utc::now();
        let events = validate_batch(
            "events",
            MAX_ENGAGEMENT_BATCH,
            &drafts,
            |d| d.client_event_id.clone(),
            |d| d.validate(now),
        )?;
        // A list an event names was shown by this deployment, within the retention, with
        // the event's asset in it (at its position, when one is given).
        for (i, e) in events.iter().enumerate() {
            if let Some(a) = &e.attribution {
                let list = match self.open_list(&a.recommendation_id) {
                    Ok(list) => list,
                    Err(AppError::BadUserInput { message, .. }) => {
                        return Err(AppError::bad_input(format!("events[{i}].{message}")));
                    }
                    Err(other) => return Err(other),
                };
                if self
                    .signer()?
                    .place(&list, e.asset_id.as_str(), a.position)
                    .is_none()
                {
                    let place = a
                        .position
                        .map_or("in".to_owned(), |p| format!("at position {p} of"));
                    return Err(AppError::bad_input(format!(
                        "events[{i}]: {:?} was not {place} the list of that recommendationId; nothing was recorded",
                        e.asset_id.as_str()
                    )));
                }
            }
        }
        // The accounts' profiles are cached: they say which accounts and contacts exist.
        let mut profiles: HashMap<String, Arc<AccountProfile>> = HashMap::new();
        for e in &events {
            let id = e.account_id.as_str();
            if !profiles.contains_key(id)
                && let Some(profile) = self.account_profile(id).await?
            {
                profiles.insert(id.to_owned(), profile);
            }
        }
        let asset_ids = distinct(events.iter().map(|e| e.asset_id.to_string()));
        let refs = EventReferences::known(
            profiles.values().map(|p| {
                let contacts = p.contacts.iter().map(|c| c.id.to_string()).collect();
                (p.account.clone(), contacts)
            }),
            self.store.released_asset_ids(&asset_ids).await?,
        );
        if let Some((_, problem)) = events.iter().find_map(|e| refs.missing(e)) {
            return Err(AppError::NotFound(problem));
        }
        let default_stage = self.ranking.default_stage;
        let rows: Vec<_> = events
            .into_iter()
            .map(|e| {
                let cohort = profiles[e.account_id.as_str()].cohort(default_stage);
                (e, cohort)
            })
            .collect();
        let mut accounts: Vec<String> = profiles.into_keys().collect();
        accounts.sort();
        Ok((rows, accounts))
    }

    /// A page of an account's events in recording order, after the row id `after`, and
    /// whether more follow.
    pub async fn account_engagements(
        &self,
        id: &str,
        after: i64,
        first: usize,
    ) -> AppResult<(Vec<StoredEngagement>, bool)> {
        let mut page = self
            .store
            .engagements_page(id, after, first as u64 + 1)
            .await?;
        let more = page.len() > first;
        page.truncate(first);
        Ok((page, more))
    }

    /// Who sits on the account's buying committee, who has engaged, and what each contact
    /// should read next. Contacts are served in role order (decision makers first); a
    /// contact's first pick is moved down when another contact already has it (picked
    /// earlier in this view, or read by them) unless it leads the next candidate by more
    /// than [`CLEARLY_BEST_MARGIN`].
    pub async fn committee(
        &self,
        profile: &AccountProfile,
        first: usize,
        include_consumed: bool,
    ) -> AppResult<Committee> {
        let roles = Role::ALL
            .iter()
            .map(|&role| {
                let contacts: Vec<Contact> = profile
                    .contacts
                    .iter()
                    .filter(|c| c.role == Some(role))
                    .cloned()
                    .collect();
                let assets_engaged = profile
                    .read_by
                    .values()
                    .filter(|who| who.iter().any(|w| contacts.iter().any(|c| c.id == *w)))
                    .count();
                CommitteeRole {
                    role,
                    contacts,
                    assets_engaged,
                }
            })
            .collect();
        let ordered = profile.committee_order();
        let mut picked: HashSet<String> = HashSet::new();
        let mut members = Vec::with_capacity(ordered.len());
        for contact in ordered {
            let list = self
                .contact_list(profile, contact, first + 1, include_consumed)
                .await?;
            let mut items = list.items;
            let others_have = |id: &str| {
                picked.contains(id)
                    || profile
                        .read_by
                        .get(id)
                        .is_some_and(|who| who.iter().any(|w| *w != contact.id))
            };
            let mut deferred = None;
            if let Some(top) = items.first()
                && others_have(top.asset.id.as_str())
                && let Some(alt) = items.iter().position(|i| !others_have(i.asset.id.as_str()))
            {
                let lead = top.scored.score - items[alt].scored.score;
                if lead <= CLEARLY_BEST_MARGIN * top.scored.score {
                    deferred = Some(top.asset.id.to_string());
                    let alternative = items.remove(alt);
                    items.insert(0, alternative);
                }
            }
            items.truncate(first);
            if let Some(top) = items.first() {
                picked.insert(top.asset.id.to_string());
            }
            members.push(CommitteeMember {
                assets_engaged: profile.assets_read_by(&contact.id),
                contact: contact.clone(),
                recommendations: items,
                deferred,
            });
        }
        Ok(Committee { roles, members })
    }

    /// A contact's list as the committee and the activity ask for it: the account's
    /// stage, industry and language, the contact's role, diversified.
    pub(super) async fn contact_list(
        &self,
        profile: &AccountProfile,
        contact: &Contact,
        first: usize,
        include_consumed: bool,
    ) -> AppResult<super::RecommendationList> {
        self.recommend(RecommendationQuery {
            profile: None,
            placement: None,
            audience: AudienceRequest {
                account_id: Some(profile.account.id.to_string()),
                contact_id: Some(contact.id.to_string()),
                include_consumed,
                ..Default::default()
            },
            first,
            text: None,
            filter: Default::default(),
            weights: Default::default(),
            diversify: true,
        })
        .await
    }

    /// Everything stored about an account, for a data-subject request.
    pub async fn export_account(&self, id: &str) -> AppResult<AccountExport> {
        let profile = self
            .load_profile(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no account with id {id:?}")))?;
        let mut engagements = Vec::new();
        let mut after = 0;
        loop {
            let page = self.store.engagements_page(id, after, 10_000).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            engagements.extend(page);
        }
        Ok(AccountExport {
            profile: Arc::new(profile),
            engagements,
        })
    }

    /// Deletes the account, its contacts and its events, then recomputes popularity so no
    /// aggregate still counts them. Returns how many events were erased.
    /// An account's record, contacts or events changed: its cached profile goes here, and
    /// on the other replicas when they hear of it.
    pub(super) async fn account_changed(&self, id: &str) {
        self.profiles.forget(id);
        self.store
            .announce(ReplicaChange::Account(id.to_owned()))
            .await;
    }

    /// Every account's profile may have changed: drop them here and on the other replicas.
    pub(super) async fn all_accounts_changed(&self) {
        self.profiles.forget_all();
        self.store.announce(ReplicaChange::AllAccounts).await;
    }

    /// Acts on a change another replica announced.
    pub(super) async fn replica_changed(&self, change: ReplicaChange) {
        match change {
            ReplicaChange::Library => self.follower.nudge(),
            ReplicaChange::Account(id) => self.profiles.forget(&id),
            ReplicaChange::AllAccounts => self.profiles.forget_all(),
            ReplicaChange::Popularity => {
                self.popularity.touch();
                if let Err(err) = self.popularity.load(&self.store).await {
                    tracing::warn!(error = %format!("{:#}", err.unmasked()), "cannot load popularity another replica computed");
                }
            }
        }
    }

    /// After missing announcements (the listening connection broke): forget every cached
    /// profile and catch up.
    pub(super) async fn replicas_unheard(&self) {
        self.profiles.forget_all();
        self.follower.nudge();
        if let Err(err) = self.popularity.load(&self.store).await {
            tracing::warn!(error = %format!("{:#}", err.unmasked()), "cannot load popularity");
        }
    }

    pub async fn erase_account(&self, id: &str) -> AppResult<u64> {
        let erased = self
            .store
            .erase_account(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no account with id {id:?}")))?;
        self.account_changed(id).await;
        // Its share left the counters with it: every replica reads them again now.
        self.popularity.load(&self.store).await?;
        self.popularity.touch();
        self.store.announce(ReplicaChange::Popularity).await;
        Ok(erased)
    }

    /// Rebuilds the popularity and co-read counters from the stored events (a repair: they
    /// are kept as events arrive).
    pub async fn rebuild_popularity(&self) -> AppResult<PopularityStats> {
        self.popularity.rebuild(&self.store).await
    }
}
