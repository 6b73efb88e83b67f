//! Shown lists: recommendation ids (signed, opened), the impression writer (lists from
//! concurrent requests share one transaction), clicks on anonymous lists, and dismissals.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::oneshot;

use super::super::Library;
use super::super::writer::{BatchWork, BatchWriter, WriterHandle, WriterSettings};
use crate::domain::{AssetStatus, ListContext, ListSigner, NONCE_LEN, SignedList, count_per_list};
use crate::error::{AppError, AppResult};
use crate::store::{ShownList, Store};

/// How often profiles and experiments are read again (other replicas' changes).
const RULES_EVERY: Duration = Duration::from_secs(2);
/// Lists waiting for the impression writer; past this, callers wait for room.
const IMPRESSION_QUEUE: usize = 4_096;
/// Lists written in one transaction at most.
const IMPRESSION_BATCH: usize = 512;
/// At most this many impressions in one call.
pub const MAX_IMPRESSIONS: usize = 100;

pub(super) type Job = (ShownList, oneshot::Sender<AppResult<u64>>);

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

/// The shared secret recommendation ids are signed with.
const LIST_ID_SECRET: &str = "recommendation-ids";
/// A list may be reported this long after the time its id says it was ranked: ids are made
/// by the replicas themselves, whose clocks agree within this.
const LIST_CLOCK_SKEW_SECS: i64 = 300;

/// The signer of recommendation ids, with the secret the database holds (stored now, from
/// 32 random bytes, when no replica stored one yet).
pub(super) async fn list_signer(store: &Store) -> AppResult<ListSigner> {
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

    pub(in crate::services) fn signer(&self) -> AppResult<&ListSigner> {
        self.feedback.signer.get().ok_or_else(|| {
            AppError::internal(anyhow::anyhow!(
                "the recommendation id secret was not loaded"
            ))
        })
    }

    /// The id of a list ranked with `context` that shows `items`, in order.
    pub(in crate::services) fn issue_list_id<'a>(
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
    pub(in crate::services) fn open_list(&self, id: &str) -> AppResult<SignedList> {
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

    /// Starts what the feedback loop runs beside requests: the impression writer (lists
    /// from concurrent requests share one transaction), and as its upkeep the rules'
    /// refresh. Lists older than `retention_days` (0: none) are refused.
    pub async fn start_feedback(&self, retention_days: u32) -> AppResult<WriterHandle> {
        self.refresh_feedback_rules().await?;
        self.load_list_signer().await?;
        self.feedback
            .retention_days
            .store(retention_days, Ordering::Relaxed);
        let work = Arc::new(ImpressionWork {
            library: self.clone(),
        });
        let (writer, handle) = super::super::writer::start(
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

    /// Records that a visitor followed an item of a list shown to no account (`COMPLETE`:
    /// and finished it): the list's click, and completion, each once however often it is
    /// reported. True when it counted now. A list shown to an account takes
    /// `recordEngagement`, which keeps the account's history too.
    pub async fn record_click(
        &self,
        recommendation_id: &str,
        asset: &str,
        position: Option<u32>,
        kind: crate::domain::EngagementKind,
    ) -> AppResult<bool> {
        let list = self.open_list(recommendation_id)?;
        if let Some(account) = &list.context.account {
            return Err(AppError::bad_input(format!(
                "recommendationId: the list was shown to account {account:?}; record the click \
                 with recordEngagement for that account"
            )));
        }
        crate::domain::AssetId::parse(asset)
            .map_err(|e| AppError::bad_input(format!("assetId: {e}")))?;
        if let Some(position) = position
            && (position == 0 || position > crate::domain::MAX_POSITION)
        {
            return Err(AppError::bad_input(format!(
                "position: must be 1 to {}, got {position}",
                crate::domain::MAX_POSITION
            )));
        }
        let Some(position) = self.signer()?.place(&list, asset, position) else {
            let place = position.map_or("in".to_owned(), |p| format!("at position {p} of"));
            return Err(AppError::bad_input(format!(
                "assetId: {asset:?} was not {place} that list; nothing was recorded"
            )));
        };
        let click = (
            crate::domain::Attribution {
                recommendation_id: recommendation_id.to_owned(),
                context: list.context,
                position: Some(position),
            },
            asset.to_owned(),
            kind,
        );
        let added = self.store.attribute_many(&[click]).await?;
        Ok(added.clicks > 0 || added.completions > 0)
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
}

/// The impression writer's work: lists in batches; as upkeep, the rules' refresh (other
/// replicas' changes). Impressions past the retention go in the raw events' upkeep
/// (`services::retention`).
struct ImpressionWork {
    library: Library,
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
