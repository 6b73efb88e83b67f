//! An account's activity, for a sales tool's account page: who in the buying committee
//! read what, which share links they opened, how the account's stage moved and why, and
//! per contact the next thing to send (the best recommendation neither read by the
//! account nor already shared with the contact).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::recommend::Recommendation;
use super::{AccountProfile, Library};
use crate::domain::{Asset, Contact};
use crate::error::AppResult;
use crate::store::{StageMove, StoredEngagement, StoredShareLink};

/// Days of activity when no `since` is given.
pub const DEFAULT_ACTIVITY_DAYS: i64 = 30;
/// Contacts that get a next send, in committee order.
pub const MAX_ACTIVITY_CONTACTS: usize = 25;
/// Candidates looked at per contact for one not yet shared.
const NEXT_SEND_CANDIDATES: usize = 10;
/// Share links looked at per contact to know what was sent.
const SHARED_LOOKED_AT: u64 = 500;

/// One event with its asset (gone assets have none).
pub struct ActivityRead {
    pub event: StoredEngagement,
    pub asset: Option<Arc<Asset>>,
}

/// A contact's reading since the start, and what to send next.
pub struct ContactActivity {
    pub contact: Contact,
    pub reads: u64,
    pub last_read_at: Option<DateTime<Utc>>,
    /// The best recommendation not read by the account nor shared with the contact, its
    /// position in the list, and the list's id (for `createShareLink`).
    pub next_send: Option<(Recommendation, u32, String)>,
}

pub struct AccountActivity {
    pub profile: Arc<AccountProfile>,
    pub since: DateTime<Utc>,
    pub reads: Vec<ActivityRead>,
    pub links_opened: Vec<StoredShareLink>,
    pub stage_changes: Vec<StageMove>,
    pub contacts: Vec<ContactActivity>,
}

impl Library {
    /// What account `id` did since `since` (30 days by default), each list newest first
    /// and at most `first` long.
    pub async fn account_activity(
        &self,
        id: &str,
        since: Option<DateTime<Utc>>,
        first: u64,
    ) -> AppResult<AccountActivity> {
        let profile = self.require_account(id).await?;
        let since =
            since.unwrap_or_else(|| Utc::now() - chrono::Duration::days(DEFAULT_ACTIVITY_DAYS));
        let from = since.timestamp();
        let events = self.store.recent_engagements(id, from, first).await?;
        let mut ids: Vec<String> = events
            .iter()
            .map(|e| e.engagement.asset_id.to_string())
            .collect();
        ids.sort();
        ids.dedup();
        let assets: HashMap<String, Arc<Asset>> = self
            .store
            .load_assets(&ids)
            .await?
            .into_iter()
            .map(|a| (a.id.to_string(), Arc::new(a)))
            .collect();
        let reads = events
            .into_iter()
            .map(|event| ActivityRead {
                asset: assets.get(event.engagement.asset_id.as_str()).cloned(),
                event,
            })
            .collect::<Vec<_>>();
        let links_opened = self.store.opened_share_links(id, from, first).await?;
        let stage_changes = self.store.stage_changes(id, from, first).await?;

        let mut contacts = Vec::new();
        for contact in profile
            .committee_order()
            .into_iter()
            .take(MAX_ACTIVITY_CONTACTS)
        {
            let theirs: Vec<&ActivityRead> = reads
                .iter()
                .filter(|r| r.event.engagement.contact_id.as_ref() == Some(&contact.id))
                .collect();
            let shared: HashSet<String> = self
                .store
                .share_links(Some(contact.id.as_str()), None, SHARED_LOOKED_AT)
                .await?
                .into_iter()
                .map(|l| l.asset_id)
                .collect();
            let list = self
                .contact_list(&profile, contact, NEXT_SEND_CANDIDATES, false)
                .await?;
            let list_id = list.id;
            let next_send = list
                .items
                .into_iter()
                .enumerate()
                .find(|(_, r)| !shared.contains(r.asset.id.as_str()))
                .map(|(i, r)| (r, u32::try_from(i + 1).unwrap_or(u32::MAX), list_id));
            contacts.push(ContactActivity {
                contact: contact.clone(),
                reads: theirs.len() as u64,
                last_read_at: theirs.first().map(|r| r.event.engagement.occurred_at),
                next_send,
            });
        }
        Ok(AccountActivity {
            profile,
            since,
            reads,
            links_opened,
            stage_changes,
            contacts,
        })
    }
}
