//! Tracked share links for sales tools (a server key): make one per recipient, list them
//! with who opened what, end one.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::ApiResult;
use super::library::library;
use super::types::unix_time;
use crate::services::{ShareLink, StoredShareLink};

/// Links listed when `first` is left out.
const DEFAULT_SHARE_LINKS: i32 = 50;

/// A link to one asset for one contact. Opens by people record a `VIEW` of the contact
/// (and a click on the list it came from); opens by mail scanners and link unfurlers are
/// counted apart, as `scans`.
#[derive(SimpleObject)]
#[graphql(name = "ShareLink")]
pub struct ShareLinkObject {
    /// The link's id (the SHA-256 of its token): what `revokeShareLink` takes.
    pub id: ID,
    /// The address to send (`https://HOST/l/TOKEN`): only in `createShareLink`'s answer,
    /// the one time the token exists outside the recipient's mail.
    pub url: Option<String>,
    pub token: Option<String>,
    pub account_id: ID,
    pub contact_id: ID,
    pub asset_id: ID,
    pub recommendation_id: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Opens by people.
    pub opens: u64,
    /// Opens by scanners and unfurlers (never views).
    pub scans: u64,
    pub first_opened_at: Option<DateTime<Utc>>,
    pub last_opened_at: Option<DateTime<Utc>>,
}

impl From<StoredShareLink> for ShareLinkObject {
    fn from(l: StoredShareLink) -> Self {
        ShareLinkObject {
            id: ID(l.id),
            url: None,
            token: None,
            account_id: ID(l.account_id),
            contact_id: ID(l.contact_id),
            asset_id: ID(l.asset_id),
            recommendation_id: l.recommendation_id,
            created_at: unix_time(l.created_at),
            expires_at: unix_time(l.expires_at),
            revoked_at: l.revoked_at.and_then(unix_time),
            opens: l.opens,
            scans: l.scans,
            first_opened_at: l.first_opened_at.and_then(unix_time),
            last_opened_at: l.last_opened_at.and_then(unix_time),
        }
    }
}

impl From<ShareLink> for ShareLinkObject {
    fn from(s: ShareLink) -> Self {
        ShareLinkObject {
            url: s.url,
            token: s.token,
            ..s.link.into()
        }
    }
}

#[derive(Default)]
pub struct ShareQuery;

#[Object]
impl ShareQuery {
    /// Share links to a contact and/or of an asset, newest first, with their opens.
    #[graphql(cache_control(no_cache))]
    async fn share_links(
        &self,
        ctx: &Context<'_>,
        contact_id: Option<ID>,
        asset_id: Option<ID>,
        #[graphql(default_with = "Some(DEFAULT_SHARE_LINKS)")] first: Option<i32>,
    ) -> ApiResult<Vec<ShareLinkObject>> {
        let library = library(ctx)?;
        let first = library.page_size(first.unwrap_or(DEFAULT_SHARE_LINKS))?;
        Ok(library
            .share_links(
                contact_id.as_ref().map(|c| c.as_str()),
                asset_id.as_ref().map(|a| a.as_str()),
                first as u64,
            )
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

#[derive(Default)]
pub struct ShareMutation;

#[Object]
impl ShareMutation {
    /// A link to `assetId` for `contactId`, living `expiresInDays` (30; at most 365).
    /// With `recommendationId`, the list it came from: an open counts as a click on it.
    /// The asset needs an absolute `url` to send the reader to.
    #[graphql(cache_control(no_cache))]
    async fn create_share_link(
        &self,
        ctx: &Context<'_>,
        asset_id: ID,
        contact_id: ID,
        recommendation_id: Option<ID>,
        expires_in_days: Option<i32>,
    ) -> ApiResult<ShareLinkObject> {
        let days = match expires_in_days {
            None => crate::services::DEFAULT_SHARE_DAYS,
            Some(d) => u32::try_from(d).unwrap_or(0),
        };
        Ok(library(ctx)?
            .create_share_link(
                &asset_id,
                &contact_id,
                recommendation_id.as_ref().map(|r| r.as_str()),
                days,
            )
            .await?
            .into())
    }

    /// Ends a link: opening it shows a plain page from now on.
    #[graphql(cache_control(no_cache))]
    async fn revoke_share_link(&self, ctx: &Context<'_>, id: ID) -> ApiResult<ShareLinkObject> {
        Ok(library(ctx)?.revoke_share_link(&id).await?.into())
    }
}
