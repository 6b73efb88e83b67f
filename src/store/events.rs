//! Writing engagement events inside a transaction: the one path every recording takes
//! (the API, share links, imports), which also puts `ENGAGEMENT_RECORDED` in the outbox
//! and credits the recommendation list an event names.

use chrono::{TimeZone, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use std::collections::HashSet;

use super::entity::{engagement, engagement_key};
use super::{ROWS_PER_STATEMENT, WriteTxn};
use crate::domain::{CountedRead, Engagement, OutboxEvent, TaxonomyValue, WebhookEvent};
use crate::error::AppResult;

/// Records events inside `txn` (see `Store::insert_engagements`), each new one also as an
/// `ENGAGEMENT_RECORDED` event in the outbox when a webhook listens for it.
pub(super) async fn insert_engagements(
    txn: &WriteTxn,
    events: &[(Engagement, String)],
) -> AppResult<u64> {
    let hooks = super::webhooks::listeners(txn.conn(), WebhookEvent::EngagementRecorded).await?;
    let recorded_at = Utc::now().timestamp();
    let fresh = new_events(txn, events).await?;
    let mut inserted = 0;
    for chunk in fresh.chunks(ROWS_PER_STATEMENT) {
        let rows = chunk.iter().map(|(e, cohort)| engagement::ActiveModel {
            account_id: Set(e.account_id.to_string()),
            contact_id: Set(e.contact_id.as_ref().map(ToString::to_string)),
            asset_id: Set(e.asset_id.to_string()),
            kind: Set(e.kind.name().to_owned()),
            occurred_at: Set(e.occurred_at.timestamp()),
            client_event_id: Set(e.client_event_id.clone()),
            cohort: Set(cohort.clone()),
            recorded_at: Set(recorded_at),
            recommendation_id: Set(e.attribution.as_ref().map(|a| a.recommendation_id.clone())),
            position: Set(e
                .attribution
                .as_ref()
                .and_then(|a| a.position)
                .and_then(|p| i32::try_from(p).ok())),
            ..Default::default()
        });
        let insert = engagement::Entity::insert_many(rows);
        if hooks.is_empty() {
            inserted += insert.exec_without_returning(txn.conn()).await?;
            continue;
        }
        let ids = insert.exec_with_returning_keys(txn.conn()).await?;
        inserted += ids.len() as u64;
        let rows = engagement::Entity::find()
            .filter(engagement::Column::Id.is_in(ids))
            .order_by_asc(engagement::Column::Id)
            .all(txn.conn())
            .await?;
        let now = Utc::now();
        let mut announced = Vec::with_capacity(rows.len());
        for row in rows {
            let occurred = Utc
                .timestamp_opt(row.occurred_at, 0)
                .single()
                .unwrap_or(now);
            announced.push(OutboxEvent::new(
                super::webhooks::new_event_id()?,
                WebhookEvent::EngagementRecorded,
                Some(&row.account_id),
                now,
                serde_json::json!({
                    "accountId": row.account_id,
                    "contactId": row.contact_id,
                    "assetId": row.asset_id,
                    "kind": row.kind,
                    "occurredAt": occurred.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "clientEventId": row.client_event_id,
                    "recommendationId": row.recommendation_id,
                    "position": row.position,
                }),
            ));
        }
        super::webhooks::enqueue(txn.conn(), &hooks, &announced).await?;
    }
    super::spans::count_events(
        txn.conn(),
        fresh
            .iter()
            .map(|(e, _)| (e.asset_id.as_str(), e.occurred_at.timestamp())),
        1,
    )
    .await?;
    // Popularity and co-reads, in the events' own transaction (a retried event changes
    // no counter: see `counters::count_reads`). A clock a little ahead counts as now.
    let now = Utc::now().timestamp();
    let reads: Vec<CountedRead> = events
        .iter()
        .map(|(e, cohort)| CountedRead {
            account: e.account_id.to_string(),
            asset: e.asset_id.to_string(),
            cohort: cohort.clone(),
            depth: e.kind.depth(),
            at: e.occurred_at.timestamp().min(now),
        })
        .collect();
    super::counters::count_reads(txn, &reads).await?;
    // Outcomes are idempotent (a flag set once), so a retried event counts nothing twice.
    for (e, _) in events {
        if let Some(a) = &e.attribution {
            super::feedback::attribute(txn, a, e.asset_id.as_str(), e.kind).await?;
        }
    }
    Ok(inserted)
}

/// The events of `events` to record: those without a client id, and the first with each
/// client id its account has not used yet (whose key is stored here, in `txn`).
async fn new_events<'a>(
    txn: &WriteTxn,
    events: &'a [(Engagement, String)],
) -> AppResult<Vec<&'a (Engagement, String)>> {
    let mut keys = Vec::new();
    let mut seen = HashSet::new();
    for (e, _) in events {
        if let Some(client) = &e.client_event_id
            && seen.insert((e.account_id.as_str(), client.as_str()))
        {
            keys.push(engagement_key::ActiveModel {
                account_id: Set(e.account_id.to_string()),
                client_event_id: Set(client.clone()),
                occurred_at: Set(e.occurred_at.timestamp()),
            });
        }
    }
    let mut unused: HashSet<(String, String)> = HashSet::with_capacity(keys.len());
    let mut keys = keys.into_iter().peekable();
    while keys.peek().is_some() {
        let chunk: Vec<_> = keys.by_ref().take(ROWS_PER_STATEMENT).collect();
        let stored = engagement_key::Entity::insert_many(chunk)
            .on_conflict_do_nothing_on([
                engagement_key::Column::AccountId,
                engagement_key::Column::ClientEventId,
            ])
            .exec_with_returning_keys(txn.conn())
            .await?;
        if let sea_orm::TryInsertResult::Inserted(new) = stored {
            unused.extend(new);
        }
    }
    Ok(events
        .iter()
        .filter(|(e, _)| match &e.client_event_id {
            None => true,
            // `remove`: a second event with the same id in this batch is a retry too.
            Some(client) => unused.remove(&(e.account_id.to_string(), client.clone())),
        })
        .collect())
}

impl super::Store {
    /// Writes events with their cohorts and the shares they made in one transaction,
    /// through the bulk path (`store::bulk`): a bulk load (`stagefit generate-engagement`)
    /// of new accounts, with no outbox and no list attribution. The counts and co-reads
    /// (`Store::add_counters`) and the per-day counts (`Store::add_event_days_bulk`) are
    /// added apart.
    pub async fn insert_events_bulk(
        &self,
        events: &[(Engagement, String)],
        shares: &[crate::domain::Share],
    ) -> AppResult<()> {
        use super::bulk::{Cell, OnKey};
        use engagement::Column as E;
        use sea_orm::{EntityName, IdenStatic};
        let columns = [
            E::AccountId,
            E::ContactId,
            E::AssetId,
            E::Kind,
            E::OccurredAt,
            E::ClientEventId,
            E::Cohort,
            E::RecordedAt,
            E::RecommendationId,
            E::Position,
        ]
        .map(|c| c.as_str());
        let recorded_at = chrono::Utc::now().timestamp();
        let mut cells = Vec::with_capacity(events.len() * columns.len());
        for (e, cohort) in events {
            let attribution = e.attribution.as_ref();
            cells.extend([
                Cell::Text(e.account_id.as_str()),
                e.contact_id.as_ref().map(|c| c.as_str()).into(),
                Cell::Text(e.asset_id.as_str()),
                Cell::Text(e.kind.name()),
                Cell::Int(e.occurred_at.timestamp()),
                e.client_event_id.as_deref().into(),
                Cell::Text(cohort),
                Cell::Int(recorded_at),
                attribution.map(|a| a.recommendation_id.as_str()).into(),
                attribution
                    .and_then(|a| a.position)
                    .map_or(Cell::Null, |p| Cell::Int(i64::from(p))),
            ]);
        }
        // The client ids (a bulk load's events are new: a used one fails the load).
        let mut keys = Vec::new();
        for (e, _) in events {
            if let Some(client) = &e.client_event_id {
                keys.extend([
                    Cell::Text(e.account_id.as_str()),
                    Cell::Text(client),
                    Cell::Int(e.occurred_at.timestamp()),
                ]);
            }
        }
        let mut bulk = self.bulk().await?;
        bulk.write(
            engagement::Entity.table_name(),
            &columns,
            &cells,
            OnKey::Fail,
        )
        .await?;
        use engagement_key::Column as K;
        bulk.write(
            engagement_key::Entity.table_name(),
            &[K::AccountId, K::ClientEventId, K::OccurredAt].map(|c| c.as_str()),
            &keys,
            OnKey::Fail,
        )
        .await?;
        super::counters::write_shares_bulk(&mut bulk, shares).await?;
        bulk.commit().await
    }
}
