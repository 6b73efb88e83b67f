//! Tracked share links: stored by the SHA-256 of their token, counted as they are opened
//! (people and scanners apart) with single-statement increments, so replicas opening the
//! same link at once lose no count.

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::entity::share_link;
use super::{Store, WriteTxn};
use crate::domain::{Engagement, OutboxEvent, WebhookEvent};
use crate::error::AppResult;
use chrono::{DateTime, Utc};

/// A share link as stored (never its token).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredShareLink {
    pub id: String,
    pub account_id: String,
    pub contact_id: String,
    pub asset_id: String,
    pub recommendation_id: Option<String>,
    pub position: Option<u32>,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub opens: u64,
    pub scans: u64,
    pub first_opened_at: Option<i64>,
    pub last_opened_at: Option<i64>,
}

fn from_row(r: share_link::Model) -> StoredShareLink {
    StoredShareLink {
        id: r.id,
        account_id: r.account_id,
        contact_id: r.contact_id,
        asset_id: r.asset_id,
        recommendation_id: r.recommendation_id,
        position: r.position.and_then(|p| u32::try_from(p).ok()),
        created_at: r.created_at,
        expires_at: r.expires_at,
        revoked_at: r.revoked_at,
        opens: u64::try_from(r.opens).unwrap_or(0),
        scans: u64::try_from(r.scans).unwrap_or(0),
        first_opened_at: r.first_opened_at,
        last_opened_at: r.last_opened_at,
    }
}

/// Deletes an account's share links (erasure).
pub(super) async fn erase_account(txn: &WriteTxn, account: &str) -> AppResult<()> {
    share_link::Entity::delete_many()
        .filter(share_link::Column::AccountId.eq(account))
        .exec(txn.conn())
        .await?;
    Ok(())
}

impl Store {
    pub async fn insert_share_link(&self, link: &StoredShareLink) -> AppResult<()> {
        let txn = self.begin_txn().await?;
        share_link::Entity::insert(share_link::ActiveModel {
            id: Set(link.id.clone()),
            account_id: Set(link.account_id.clone()),
            contact_id: Set(link.contact_id.clone()),
            asset_id: Set(link.asset_id.clone()),
            recommendation_id: Set(link.recommendation_id.clone()),
            position: Set(link.position.and_then(|p| i32::try_from(p).ok())),
            created_at: Set(link.created_at),
            expires_at: Set(link.expires_at),
            revoked_at: Set(None),
            opens: Set(0),
            scans: Set(0),
            first_opened_at: Set(None),
            last_opened_at: Set(None),
        })
        .exec_without_returning(txn.conn())
        .await?;
        txn.commit().await
    }

    pub async fn share_link(&self, id: &str) -> AppResult<Option<StoredShareLink>> {
        Ok(share_link::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(from_row))
    }

    /// Links to a contact or of an asset (or both), newest first, at most `limit`.
    pub async fn share_links(
        &self,
        contact: Option<&str>,
        asset: Option<&str>,
        limit: u64,
    ) -> AppResult<Vec<StoredShareLink>> {
        let mut find = share_link::Entity::find();
        if let Some(contact) = contact {
            find = find.filter(share_link::Column::ContactId.eq(contact));
        }
        if let Some(asset) = asset {
            find = find.filter(share_link::Column::AssetId.eq(asset));
        }
        Ok(find
            .order_by_desc(share_link::Column::CreatedAt)
            .order_by_asc(share_link::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(from_row)
            .collect())
    }

    /// An account's links opened by a person since `since` (Unix seconds), the most
    /// recently opened first, at most `limit`.
    pub async fn opened_share_links(
        &self,
        account: &str,
        since: i64,
        limit: u64,
    ) -> AppResult<Vec<StoredShareLink>> {
        Ok(share_link::Entity::find()
            .filter(share_link::Column::AccountId.eq(account))
            .filter(share_link::Column::LastOpenedAt.gte(since))
            .order_by_desc(share_link::Column::LastOpenedAt)
            .order_by_asc(share_link::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(from_row)
            .collect())
    }

    /// Marks a link revoked at `at` (the first revocation stands) and returns it; `None`
    /// when there is no such link.
    pub async fn revoke_share_link(&self, id: &str, at: i64) -> AppResult<Option<StoredShareLink>> {
        let txn = self.begin_txn().await?;
        share_link::Entity::update_many()
            .col_expr(share_link::Column::RevokedAt, Expr::value(at))
            .filter(share_link::Column::Id.eq(id))
            .filter(share_link::Column::RevokedAt.is_null())
            .exec(txn.conn())
            .await?;
        let link = share_link::Entity::find_by_id(id.to_owned())
            .one(txn.conn())
            .await?
            .map(from_row);
        txn.commit().await?;
        Ok(link)
    }

    /// Counts one open of `link` at `at`, in one transaction with what it records: by a
    /// scanner, a scan alone; by a person, the open, the `view` events (the contact's
    /// `VIEW`, cohort) and a `SHARE_LINK_OPENED` event in the outbox.
    pub async fn record_share_link_open(
        &self,
        link: &StoredShareLink,
        scanned: bool,
        at: DateTime<Utc>,
        view: &[(Engagement, String)],
    ) -> AppResult<()> {
        use share_link::Column as L;
        let txn = self.begin_txn().await?;
        let mut update = share_link::Entity::update_many().filter(L::Id.eq(&link.id));
        update = if scanned {
            update.col_expr(L::Scans, Expr::col(L::Scans).add(1))
        } else {
            let seconds = at.timestamp();
            update
                .col_expr(L::Opens, Expr::col(L::Opens).add(1))
                .col_expr(L::LastOpenedAt, Expr::value(seconds))
                .col_expr(
                    L::FirstOpenedAt,
                    Expr::col(L::FirstOpenedAt).if_null(seconds),
                )
        };
        update.exec(txn.conn()).await?;
        if !scanned {
            super::events::insert_engagements(&txn, view).await?;
            let event = OutboxEvent::new(
                super::webhooks::new_event_id()?,
                WebhookEvent::ShareLinkOpened,
                Some(&link.account_id),
                at,
                serde_json::json!({
                    "shareLinkId": link.id,
                    "accountId": link.account_id,
                    "contactId": link.contact_id,
                    "assetId": link.asset_id,
                    "recommendationId": link.recommendation_id,
                    "openedAt": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                }),
            );
            super::webhooks::publish(txn.conn(), WebhookEvent::ShareLinkOpened, &[event]).await?;
        }
        txn.commit().await
    }
}
