//! Accounts, contacts, engagement events and the popularity side table. None of this is
//! in the search index, so these writes skip the change log.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeZone, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::entity::{account, asset, asset_tag, contact, engagement, popularity_share};
use super::{ROWS_PER_STATEMENT, Store, corrupt};
use crate::domain::{
    Account, AccountId, AssetId, Contact, ContactId, Engagement, EngagementKind, IndustrySlug,
    Language, Role, Stage, TaxonomyValue,
};
use crate::error::{AppError, AppResult};

/// A stored event with its row id (the order events were recorded in).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEngagement {
    pub id: i64,
    pub engagement: Engagement,
}

fn account_from_row(row: account::Model) -> AppResult<Account> {
    Ok(Account {
        id: corrupt(AccountId::parse(&row.id), "account.id")?,
        name: row.name,
        industry: row
            .industry
            .map(|i| corrupt(IndustrySlug::parse(&i), "account.industry"))
            .transpose()?,
        stage: row
            .stage
            .map(|s| corrupt(Stage::parse(&s), "account.stage"))
            .transpose()?,
        stage_updated_at: row.stage_updated_at,
        crm_stage: row.crm_stage,
        tier: row.tier,
        language: row
            .language
            .map(|l| corrupt(Language::parse(&l), "account.language"))
            .transpose()?,
    })
}

fn contact_from_row(row: contact::Model) -> AppResult<Contact> {
    Ok(Contact {
        id: corrupt(ContactId::parse(&row.id), "contact.id")?,
        account_id: corrupt(AccountId::parse(&row.account_id), "contact.account_id")?,
        name: row.name,
        role: row
            .role
            .map(|r| corrupt(Role::parse(&r), "contact.role"))
            .transpose()?,
    })
}

fn timestamp(seconds: i64) -> AppResult<DateTime<Utc>> {
    Utc.timestamp_opt(seconds, 0)
        .single()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("stored time {seconds} is invalid")))
}

fn engagement_from_row(row: engagement::Model) -> AppResult<StoredEngagement> {
    Ok(StoredEngagement {
        id: row.id,
        engagement: Engagement {
            account_id: corrupt(AccountId::parse(&row.account_id), "engagement.account_id")?,
            contact_id: row
                .contact_id
                .map(|c| corrupt(ContactId::parse(&c), "engagement.contact_id"))
                .transpose()?,
            asset_id: corrupt(AssetId::parse(&row.asset_id), "engagement.asset_id")?,
            kind: corrupt(EngagementKind::parse(&row.kind), "engagement.kind")?,
            occurred_at: timestamp(row.occurred_at)?,
            client_event_id: row.client_event_id,
            attribution: row.recommendation_id.and_then(|id| {
                Some(crate::domain::Attribution {
                    context: crate::domain::ListContext::from_id(&id).ok()?,
                    recommendation_id: id,
                    position: row.position.and_then(|p| u32::try_from(p).ok()),
                })
            }),
        },
    })
}

impl Store {
    pub async fn get_account(&self, id: &str) -> AppResult<Option<Account>> {
        account::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(account_from_row)
            .transpose()
    }

    /// Inserts or replaces accounts, all or none. A stage given without its time keeps the
    /// stored time when it is the stored stage, and is dated now when it changed.
    pub async fn upsert_accounts(&self, accounts: &[Account]) -> AppResult<Vec<Account>> {
        let txn = self.begin_txn().await?;
        let now = Utc::now();
        let mut stored_out = Vec::with_capacity(accounts.len());
        for chunk in accounts.chunks(ROWS_PER_STATEMENT) {
            let ids: Vec<String> = chunk.iter().map(|a| a.id.to_string()).collect();
            let stored: HashMap<String, (Option<String>, Option<DateTime<Utc>>)> =
                account::Entity::find()
                    .select_only()
                    .column(account::Column::Id)
                    .column(account::Column::Stage)
                    .column(account::Column::StageUpdatedAt)
                    .filter(account::Column::Id.is_in(ids))
                    .into_tuple::<(String, Option<String>, Option<DateTime<Utc>>)>()
                    .all(txn.conn())
                    .await?
                    .into_iter()
                    .map(|(id, stage, at)| (id, (stage, at)))
                    .collect();
            let mut rows = Vec::with_capacity(chunk.len());
            for a in chunk {
                let mut a = a.clone();
                if let Some(stage) = a.stage
                    && a.stage_updated_at.is_none()
                {
                    a.stage_updated_at = match stored.get(a.id.as_str()) {
                        Some((Some(old), at)) if old == stage.name() => at.or(Some(now)),
                        _ => Some(now),
                    };
                }
                rows.push(account::ActiveModel {
                    id: Set(a.id.to_string()),
                    name: Set(a.name.clone()),
                    industry: Set(a.industry.as_ref().map(ToString::to_string)),
                    stage: Set(a.stage.map(|s| s.name().to_owned())),
                    stage_updated_at: Set(a.stage_updated_at),
                    tier: Set(a.tier.clone()),
                    language: Set(a.language.as_ref().map(ToString::to_string)),
                    created_at: Set(now),
                    updated_at: Set(now),
                    journey_stage: sea_orm::ActiveValue::NotSet,
                    crm_stage: Set(a.crm_stage.clone()),
                });
                stored_out.push(a);
            }
            account::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::column(account::Column::Id)
                        .update_columns([
                            account::Column::Name,
                            account::Column::Industry,
                            account::Column::Stage,
                            account::Column::StageUpdatedAt,
                            account::Column::Tier,
                            account::Column::Language,
                            account::Column::CrmStage,
                            account::Column::UpdatedAt,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(txn.conn())
                .await?;
        }
        txn.commit().await?;
        Ok(stored_out)
    }

    pub async fn get_contact(&self, id: &str) -> AppResult<Option<Contact>> {
        contact::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(contact_from_row)
            .transpose()
    }

    /// An account's contacts in id order.
    pub async fn contacts_of(&self, account_id: &str) -> AppResult<Vec<Contact>> {
        contact::Entity::find()
            .filter(contact::Column::AccountId.eq(account_id))
            .order_by_asc(contact::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(contact_from_row)
            .collect()
    }

    /// Which of these account ids exist.
    pub async fn existing_accounts(&self, ids: &[String]) -> AppResult<Vec<String>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT * 2) {
            let found: Vec<String> = account::Entity::find()
                .select_only()
                .column(account::Column::Id)
                .filter(account::Column::Id.is_in(chunk.to_vec()))
                .into_tuple()
                .all(&self.db)
                .await?;
            out.extend(found);
        }
        Ok(out)
    }

    /// Inserts or replaces contacts, all or none; their accounts must exist (the caller
    /// checks, the foreign key enforces).
    pub async fn upsert_contacts(&self, contacts: &[Contact]) -> AppResult<()> {
        let txn = self.begin_txn().await?;
        let now = Utc::now();
        for chunk in contacts.chunks(ROWS_PER_STATEMENT) {
            let rows = chunk.iter().map(|c| contact::ActiveModel {
                id: Set(c.id.to_string()),
                account_id: Set(c.account_id.to_string()),
                name: Set(c.name.clone()),
                role: Set(c.role.map(|r| r.name().to_owned())),
                created_at: Set(now),
                updated_at: Set(now),
            });
            contact::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::column(contact::Column::Id)
                        .update_columns([
                            contact::Column::AccountId,
                            contact::Column::Name,
                            contact::Column::Role,
                            contact::Column::UpdatedAt,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(txn.conn())
                .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// The ids among `ids` of assets that are not drafts: what an engagement event may name
    /// through the API, where a draft must look like no asset at all.
    pub async fn released_asset_ids(&self, ids: &[String]) -> AppResult<HashSet<String>> {
        let mut out = HashSet::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT * 2) {
            let found: Vec<String> = asset::Entity::find()
                .select_only()
                .column(asset::Column::Id)
                .filter(asset::Column::Id.is_in(chunk.to_vec()))
                .filter(
                    asset::Column::Status
                        .ne(crate::domain::AssetStatus::Draft.name().to_lowercase()),
                )
                .into_tuple()
                .all(&self.db)
                .await?;
            out.extend(found);
        }
        Ok(out)
    }

    /// The stages of each asset that exists among `ids` (empty for an asset without
    /// stages); ids of no asset are absent.
    pub async fn asset_stages(&self, ids: &[String]) -> AppResult<HashMap<String, Vec<Stage>>> {
        let mut out: HashMap<String, Vec<Stage>> = HashMap::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT * 2) {
            let found: Vec<String> = asset::Entity::find()
                .select_only()
                .column(asset::Column::Id)
                .filter(asset::Column::Id.is_in(chunk.to_vec()))
                .into_tuple()
                .all(&self.db)
                .await?;
            for id in found {
                out.entry(id).or_default();
            }
            let tags: Vec<(String, String)> = asset_tag::Entity::find()
                .select_only()
                .column(asset_tag::Column::AssetId)
                .column(asset_tag::Column::Value)
                .filter(asset_tag::Column::AssetId.is_in(chunk.to_vec()))
                .filter(asset_tag::Column::Kind.eq("stage"))
                .order_by_asc(asset_tag::Column::Position)
                .into_tuple()
                .all(&self.db)
                .await?;
            for (id, stage) in tags {
                let stage = corrupt(Stage::parse(&stage), "asset_tag stage")?;
                out.entry(id).or_default().push(stage);
            }
        }
        Ok(out)
    }

    /// Records events, each with the cohort of its account, in one transaction. An event
    /// whose client id the account already used is skipped. Returns how many were new.
    pub async fn insert_engagements(&self, events: &[(Engagement, String)]) -> AppResult<u64> {
        let txn = self.begin_txn().await?;
        let inserted = super::events::insert_engagements(&txn, events).await?;
        txn.commit().await?;
        Ok(inserted)
    }

    /// An account's events since `since` (Unix seconds), newest first, at most `limit`.
    pub async fn recent_engagements(
        &self,
        account_id: &str,
        since: i64,
        limit: u64,
    ) -> AppResult<Vec<StoredEngagement>> {
        engagement::Entity::find()
            .filter(engagement::Column::AccountId.eq(account_id))
            .filter(engagement::Column::OccurredAt.gte(since))
            .order_by_desc(engagement::Column::OccurredAt)
            .order_by_desc(engagement::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(engagement_from_row)
            .collect()
    }

    /// Every asset the account engaged with, by id, with the contacts who did: from its
    /// stored events, and from its popularity shares for what it read before the events
    /// retention removed (whose contacts are not known any more).
    pub async fn consumed_assets(
        &self,
        account_id: &str,
    ) -> AppResult<Vec<(String, Option<String>)>> {
        let mut read: Vec<(String, Option<String>)> = engagement::Entity::find()
            .select_only()
            .column(engagement::Column::AssetId)
            .column(engagement::Column::ContactId)
            .distinct()
            .filter(engagement::Column::AccountId.eq(account_id))
            .into_tuple()
            .all(&self.db)
            .await?;
        let known: HashSet<String> = read.iter().map(|(asset, _)| asset.clone()).collect();
        let shared: Vec<String> = popularity_share::Entity::find()
            .select_only()
            .column(popularity_share::Column::AssetId)
            .distinct()
            .filter(popularity_share::Column::AccountId.eq(account_id))
            .into_tuple()
            .all(&self.db)
            .await?;
        read.extend(
            shared
                .into_iter()
                .filter(|asset| !known.contains(asset))
                .map(|asset| (asset, None)),
        );
        Ok(read)
    }

    /// A page of an account's events in the order they were recorded.
    pub async fn engagements_page(
        &self,
        account_id: &str,
        after_id: i64,
        limit: u64,
    ) -> AppResult<Vec<StoredEngagement>> {
        engagement::Entity::find()
            .filter(engagement::Column::AccountId.eq(account_id))
            .filter(engagement::Column::Id.gt(after_id))
            .order_by_asc(engagement::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(engagement_from_row)
            .collect()
    }

    /// The newest event's row id (0 without events).
    pub async fn newest_engagement_id(&self) -> AppResult<i64> {
        let max: Option<Option<i64>> = engagement::Entity::find()
            .select_only()
            .column_as(engagement::Column::Id.max(), "max_id")
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(max.flatten().unwrap_or(0))
    }

    /// Whether any event is stored.
    pub async fn has_engagement(&self) -> AppResult<bool> {
        Ok(engagement::Entity::find()
            .select_only()
            .column(engagement::Column::Id)
            .limit(1)
            .into_tuple::<i64>()
            .one(&self.db)
            .await?
            .is_some())
    }

    pub async fn count_engagements(&self, account_id: &str) -> AppResult<u64> {
        Ok(engagement::Entity::find()
            .filter(engagement::Column::AccountId.eq(account_id))
            .count(&self.db)
            .await?)
    }

    /// Deletes an account, its contacts and its events in one transaction. Returns the
    /// number of events deleted, or `None` when there is no such account.
    pub async fn erase_account(&self, id: &str) -> AppResult<Option<u64>> {
        let txn = self.begin_txn().await?;
        let erased = engagement::Entity::delete_many()
            .filter(engagement::Column::AccountId.eq(id))
            .exec_with_returning(txn.conn())
            .await?;
        let events = erased.len() as u64;
        // Its events leave the per-asset counts too (those past the retention are gone
        // already, and stay counted: a count per asset and day, no account in it).
        super::spans::count_events(
            txn.conn(),
            erased.iter().map(|e| (e.asset_id.as_str(), e.occurred_at)),
            -1,
        )
        .await?;
        super::entity::engagement_key::Entity::delete_many()
            .filter(super::entity::engagement_key::Column::AccountId.eq(id))
            .exec(txn.conn())
            .await?;
        super::counters::erase_account(&txn, id).await?;
        super::feedback::erase_account(&txn, id).await?;
        super::share_links::erase_account(&txn, id).await?;
        super::webhooks::erase_account(&txn, id).await?;
        contact::Entity::delete_many()
            .filter(contact::Column::AccountId.eq(id))
            .exec(txn.conn())
            .await?;
        let accounts = account::Entity::delete_by_id(id.to_owned())
            .exec(txn.conn())
            .await?
            .rows_affected;
        if accounts == 0 && events == 0 {
            return Ok(None);
        }
        txn.commit().await?;
        Ok(Some(events))
    }
}

impl Store {
    /// The accounts that the contacts with these ids belong to now (for contacts that
    /// exist).
    pub async fn accounts_of_contacts(&self, ids: &[String]) -> AppResult<Vec<String>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT * 2) {
            let found: Vec<String> = contact::Entity::find()
                .select_only()
                .column(contact::Column::AccountId)
                .filter(contact::Column::Id.is_in(chunk.to_vec()))
                .into_tuple()
                .all(&self.db)
                .await?;
            out.extend(found);
        }
        Ok(out)
    }

    /// The accounts with these ids that exist.
    pub async fn load_accounts(&self, ids: &[String]) -> AppResult<Vec<Account>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT * 2) {
            let rows = account::Entity::find()
                .filter(account::Column::Id.is_in(chunk.to_vec()))
                .all(&self.db)
                .await?;
            for row in rows {
                out.push(account_from_row(row)?);
            }
        }
        Ok(out)
    }

    /// The contacts of these accounts.
    pub async fn contacts_of_accounts(&self, ids: &[String]) -> AppResult<Vec<Contact>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT * 2) {
            let rows = contact::Entity::find()
                .filter(contact::Column::AccountId.is_in(chunk.to_vec()))
                .all(&self.db)
                .await?;
            for row in rows {
                out.push(contact_from_row(row)?);
            }
        }
        Ok(out)
    }
}
