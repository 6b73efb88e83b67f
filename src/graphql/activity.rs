//! An account's activity for a sales tool's account page (a server key).

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::ApiResult;
use super::accounts::{AccountObject, ContactObject, EngagementKindEnum, StageSourceEnum};
use super::library::library;
use super::recommend::{PRIVATE, Recommendation};
use super::share::ShareLinkObject;
use super::types::{StageEnum, unix_time};
use crate::services::{AccountActivity, ActivityRead, ContactActivity, StageMove};

/// Entries per list when `first` is left out.
const DEFAULT_ACTIVITY: i32 = 50;

/// One thing a person of the account read (or viewed, downloaded, shared).
#[derive(SimpleObject)]
pub struct ActivityReadObject {
    /// Who, when the event named a contact.
    pub contact_id: Option<ID>,
    pub asset_id: ID,
    /// Null when the asset is gone.
    pub asset_title: Option<String>,
    pub kind: EngagementKindEnum,
    pub occurred_at: DateTime<Utc>,
    /// The list it was picked from, when the event said so.
    pub recommendation_id: Option<String>,
}

impl From<ActivityRead> for ActivityReadObject {
    fn from(r: ActivityRead) -> Self {
        let e = r.event.engagement;
        ActivityReadObject {
            contact_id: e.contact_id.map(|c| ID(c.to_string())),
            asset_id: ID(e.asset_id.to_string()),
            asset_title: r.asset.map(|a| a.title.clone()),
            kind: e.kind.into(),
            occurred_at: e.occurred_at,
            recommendation_id: e.attribution.map(|a| a.recommendation_id),
        }
    }
}

/// The account's stage moved.
#[derive(SimpleObject)]
pub struct StageChangeObject {
    pub at: Option<DateTime<Utc>>,
    /// Null the first time a stage was known.
    pub from: Option<StageEnum>,
    pub to: StageEnum,
    /// What said so: the CRM (through the mapping), the declared stage, or reading.
    pub source: Option<StageSourceEnum>,
    /// When reading moved it: the asset whose reading weighed most toward the new stage.
    pub cause_asset_id: Option<ID>,
}

impl From<StageMove> for StageChangeObject {
    fn from(m: StageMove) -> Self {
        StageChangeObject {
            at: unix_time(m.changed_at),
            from: m.from.map(Into::into),
            to: m.to.into(),
            source: m.source.map(Into::into),
            cause_asset_id: m.cause.map(ID),
        }
    }
}

/// A contact's reading in the span, and the next thing to send them.
#[derive(SimpleObject)]
pub struct ContactActivityObject {
    pub contact: ContactObject,
    /// Their events among `reads`.
    pub reads: u64,
    pub last_read_at: Option<DateTime<Utc>>,
    /// The best recommendation for them that the account has not read and they were not
    /// sent a share link to; null when there is none.
    pub next_send: Option<Recommendation>,
    /// The list `nextSend` came from: pass it to `createShareLink` so an open counts for it.
    pub recommendation_id: Option<ID>,
}

impl From<ContactActivity> for ContactActivityObject {
    fn from(c: ContactActivity) -> Self {
        let (next_send, recommendation_id) = match c.next_send {
            Some((item, position, list)) => (
                Some(Recommendation {
                    position: i32::try_from(position).unwrap_or(i32::MAX),
                    ..item.into()
                }),
                Some(ID(list)),
            ),
            None => (None, None),
        };
        ContactActivityObject {
            contact: ContactObject(c.contact),
            reads: c.reads,
            last_read_at: c.last_read_at,
            next_send,
            recommendation_id,
        }
    }
}

/// What the account did since `since`: each list newest first.
#[derive(SimpleObject)]
#[graphql(name = "AccountActivity")]
pub struct AccountActivityObject {
    pub account: AccountObject,
    pub since: DateTime<Utc>,
    pub reads: Vec<ActivityReadObject>,
    /// Share links a person opened in the span, the most recently opened first.
    pub links_opened: Vec<ShareLinkObject>,
    pub stage_changes: Vec<StageChangeObject>,
    /// Every contact (at most 25, in committee order) with their next send.
    pub contacts: Vec<ContactActivityObject>,
}

impl From<AccountActivity> for AccountActivityObject {
    fn from(a: AccountActivity) -> Self {
        AccountActivityObject {
            account: AccountObject(a.profile),
            since: a.since,
            reads: a.reads.into_iter().map(Into::into).collect(),
            links_opened: a.links_opened.into_iter().map(Into::into).collect(),
            stage_changes: a.stage_changes.into_iter().map(Into::into).collect(),
            contacts: a.contacts.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Default)]
pub struct ActivityQuery;

#[Object]
impl ActivityQuery {
    /// Who in the buying committee read what, which share links they opened, how the
    /// account's stage moved and why, and per contact the next thing to send, since
    /// `since` (30 days ago when left out). `NOT_FOUND` for an unknown account.
    #[graphql(
        cache_control(no_cache),
        complexity = "super::cost::page(first, DEFAULT_ACTIVITY, child_complexity)"
    )]
    async fn account_activity(
        &self,
        ctx: &Context<'_>,
        account_id: ID,
        since: Option<DateTime<Utc>>,
        #[graphql(default_with = "Some(DEFAULT_ACTIVITY)")] first: Option<i32>,
    ) -> ApiResult<AccountActivityObject> {
        ctx.insert_http_header("cache-control", PRIVATE);
        let library = library(ctx)?;
        let first = library.page_size(first.unwrap_or(DEFAULT_ACTIVITY))?;
        Ok(library
            .account_activity(&account_id, since, first as u64)
            .await?
            .into())
    }
}
