//! Webhooks and their outbox. A write that a webhook listens for adds one
//! `webhook_delivery` row per listening webhook inside its own transaction ([`enqueue`]),
//! so a rolled-back write sends nothing and a crash loses nothing. Deliverers (one per
//! replica) claim due rows with a lease: on PostgreSQL under `FOR UPDATE SKIP LOCKED`, so
//! two replicas never claim the same row; a replica killed mid-flight leaves a lease that
//! runs out, and the row goes out again (at least once, same event id). The deliveries of
//! one webhook and one ordering key (an account) go out one after another, in order.

use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, DeriveIden, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use super::entity::{account, stage_change, webhook, webhook_attempt, webhook_delivery};
use super::{Store, WriteTxn};
use crate::domain::{DeliveryState, OutboxEvent, Stage, StageSource, TaxonomyValue, WebhookEvent};
use crate::error::{AppError, AppResult};

/// A webhook as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredWebhook {
    pub id: String,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub secret: String,
    pub description: String,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    pub disabled_reason: Option<String>,
}

/// A change to a webhook; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub events: Option<Vec<WebhookEvent>>,
    pub secret: Option<String>,
    pub description: Option<String>,
    /// `Some(true)` enables (clearing why it was disabled); `Some(false)` disables.
    pub enabled: Option<bool>,
}

/// One event for one webhook.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredDelivery {
    pub id: i64,
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    pub ordering_key: String,
    pub payload: String,
    pub created_at: i64,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub delivered_at: Option<i64>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

/// One attempt at a delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredAttempt {
    pub delivery_id: i64,
    /// Unix milliseconds.
    pub attempted_at: i64,
    pub status: Option<u16>,
    pub error: Option<String>,
    /// The start of the receiver's answer.
    pub response: Option<String>,
    pub duration_ms: u64,
}

/// A delivery claimed for sending, with where and how to sign.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    pub delivery: StoredDelivery,
    pub url: String,
    pub secret: String,
}

/// What an attempt leads to.
#[derive(Clone, Debug, PartialEq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Try again at this time (Unix milliseconds).
    Retry(i64),
    /// Stop trying: the delivery fails and its webhook is disabled, saying why.
    GiveUp(String),
}

/// An account's stage moved (see [`Store::settle_stage`]).
#[derive(Clone, Debug, PartialEq)]
pub struct StageMove {
    pub account_id: String,
    pub changed_at: i64,
    pub from: Option<Stage>,
    pub to: Stage,
    /// What said so; `None` for a source this build does not know.
    pub source: Option<StageSource>,
    /// The asset whose reading moved it, when reading did.
    pub cause: Option<String>,
}

/// The table alias of an earlier delivery of the same key, in the claim's `NOT EXISTS`.
#[derive(DeriveIden)]
struct Earlier;

fn webhook_from_row(r: webhook::Model) -> StoredWebhook {
    StoredWebhook {
        events: WebhookEvent::split(&r.events),
        id: r.id,
        url: r.url,
        secret: r.secret,
        description: r.description,
        created_at: r.created_at,
        disabled_at: r.disabled_at,
        disabled_reason: r.disabled_reason,
    }
}

fn delivery_from_row(r: webhook_delivery::Model) -> AppResult<StoredDelivery> {
    Ok(StoredDelivery {
        state: DeliveryState::parse(&r.state).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!(
                "stored data: webhook_delivery.state {:?}",
                r.state
            ))
        })?,
        id: r.id,
        webhook_id: r.webhook_id,
        event_id: r.event_id,
        event_type: r.event_type,
        ordering_key: r.ordering_key,
        payload: r.payload,
        created_at: r.created_at,
        attempts: u32::try_from(r.attempts).unwrap_or(0),
        next_attempt_ms: r.next_attempt_ms,
        delivered_at: r.delivered_at,
        last_status: r.last_status.and_then(|s| u16::try_from(s).ok()),
        last_error: r.last_error,
    })
}

/// A fresh event id: `evt_` and 128 random bits in hex.
pub(super) fn new_event_id() -> AppResult<String> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random)
        .map_err(|e| AppError::internal(anyhow::anyhow!("no randomness for an event id: {e}")))?;
    Ok(format!(
        "evt_{}",
        random
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ))
}

/// The enabled webhooks listening for `kind`, as this transaction sees them.
pub(super) async fn listeners(
    conn: &DatabaseTransaction,
    kind: WebhookEvent,
) -> AppResult<Vec<String>> {
    let rows: Vec<(String, String)> = webhook::Entity::find()
        .select_only()
        .column(webhook::Column::Id)
        .column(webhook::Column::Events)
        .filter(webhook::Column::DisabledAt.is_null())
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, events)| WebhookEvent::split(events).contains(&kind))
        .map(|(id, _)| id)
        .collect())
}

/// Writes `events` to the outbox for `webhooks` (which listen for them), inside the
/// transaction of the change they report.
pub(super) async fn enqueue(
    conn: &DatabaseTransaction,
    webhooks: &[String],
    events: &[OutboxEvent],
) -> AppResult<()> {
    if webhooks.is_empty() || events.is_empty() {
        return Ok(());
    }
    let now = chrono::Utc::now();
    let rows: Vec<_> = events
        .iter()
        .flat_map(|e| {
            webhooks
                .iter()
                .map(move |hook| webhook_delivery::ActiveModel {
                    webhook_id: Set(hook.clone()),
                    event_id: Set(e.id.clone()),
                    event_type: Set(e.kind.name().to_owned()),
                    ordering_key: Set(e.ordering_key.clone()),
                    payload: Set(e.body.clone()),
                    created_at: Set(now.timestamp()),
                    state: Set(DeliveryState::Pending.name().to_owned()),
                    attempts: Set(0),
                    next_attempt_ms: Set(now.timestamp_millis()),
                    lease_until_ms: Set(0),
                    delivered_at: Set(None),
                    last_status: Set(None),
                    last_error: Set(None),
                    ..Default::default()
                })
        })
        .collect();
    for chunk in rows.chunks(super::ROWS_PER_STATEMENT / 8) {
        webhook_delivery::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// Writes `events` of `kind` to the outbox for whichever webhooks listen for it.
pub(super) async fn publish(
    conn: &DatabaseTransaction,
    kind: WebhookEvent,
    events: &[OutboxEvent],
) -> AppResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let hooks = listeners(conn, kind).await?;
    enqueue(conn, &hooks, events).await
}

/// Deletes what an account left in the outbox and its stage history (erasure).
pub(super) async fn erase_account(txn: &WriteTxn, account: &str) -> AppResult<()> {
    let ids: Vec<i64> = webhook_delivery::Entity::find()
        .select_only()
        .column(webhook_delivery::Column::Id)
        .filter(webhook_delivery::Column::OrderingKey.eq(account))
        .into_tuple()
        .all(txn.conn())
        .await?;
    for chunk in ids.chunks(super::ROWS_PER_STATEMENT) {
        webhook_attempt::Entity::delete_many()
            .filter(webhook_attempt::Column::DeliveryId.is_in(chunk.to_vec()))
            .exec(txn.conn())
            .await?;
        webhook_delivery::Entity::delete_many()
            .filter(webhook_delivery::Column::Id.is_in(chunk.to_vec()))
            .exec(txn.conn())
            .await?;
    }
    stage_change::Entity::delete_many()
        .filter(stage_change::Column::AccountId.eq(account))
        .exec(txn.conn())
        .await?;
    Ok(())
}

impl Store {
    pub async fn insert_webhook(&self, hook: &StoredWebhook) -> AppResult<()> {
        let txn = self.begin_txn().await?;
        webhook::Entity::insert(webhook::ActiveModel {
            id: Set(hook.id.clone()),
            url: Set(hook.url.clone()),
            events: Set(WebhookEvent::join(&hook.events)),
            secret: Set(hook.secret.clone()),
            description: Set(hook.description.clone()),
            created_at: Set(hook.created_at),
            disabled_at: Set(None),
            disabled_reason: Set(None),
        })
        .exec_without_returning(txn.conn())
        .await?;
        txn.commit().await
    }

    /// Every webhook, oldest first.
    pub async fn webhooks(&self) -> AppResult<Vec<StoredWebhook>> {
        Ok(webhook::Entity::find()
            .order_by_asc(webhook::Column::CreatedAt)
            .order_by_asc(webhook::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(webhook_from_row)
            .collect())
    }

    pub async fn webhook(&self, id: &str) -> AppResult<Option<StoredWebhook>> {
        Ok(webhook::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(webhook_from_row))
    }

    /// Applies `change` at `now` (Unix seconds); `None` when there is no such webhook.
    pub async fn update_webhook(
        &self,
        id: &str,
        change: &WebhookChange,
        now: i64,
    ) -> AppResult<Option<StoredWebhook>> {
        use webhook::Column as W;
        let txn = self.begin_txn().await?;
        let mut update = webhook::Entity::update_many().filter(W::Id.eq(id));
        if let Some(url) = &change.url {
            update = update.col_expr(W::Url, Expr::value(url.clone()));
        }
        if let Some(events) = &change.events {
            update = update.col_expr(W::Events, Expr::value(WebhookEvent::join(events)));
        }
        if let Some(secret) = &change.secret {
            update = update.col_expr(W::Secret, Expr::value(secret.clone()));
        }
        if let Some(description) = &change.description {
            update = update.col_expr(W::Description, Expr::value(description.clone()));
        }
        match change.enabled {
            Some(true) => {
                update = update
                    .col_expr(W::DisabledAt, Expr::value(Option::<i64>::None))
                    .col_expr(W::DisabledReason, Expr::value(Option::<String>::None));
            }
            Some(false) => {
                update = update
                    .col_expr(W::DisabledAt, Expr::col(W::DisabledAt).if_null(now))
                    .col_expr(
                        W::DisabledReason,
                        Expr::col(W::DisabledReason).if_null("disabled by an administrator"),
                    );
            }
            None => {}
        }
        update.exec(txn.conn()).await?;
        let hook = webhook::Entity::find_by_id(id.to_owned())
            .one(txn.conn())
            .await?
            .map(webhook_from_row);
        txn.commit().await?;
        Ok(hook)
    }

    /// Deletes a webhook with its deliveries and their attempts; false when there was none.
    pub async fn delete_webhook(&self, id: &str) -> AppResult<bool> {
        let txn = self.begin_txn().await?;
        webhook_attempt::Entity::delete_many()
            .filter(webhook_attempt::Column::WebhookId.eq(id))
            .exec(txn.conn())
            .await?;
        webhook_delivery::Entity::delete_many()
            .filter(webhook_delivery::Column::WebhookId.eq(id))
            .exec(txn.conn())
            .await?;
        let deleted = webhook::Entity::delete_by_id(id.to_owned())
            .exec(txn.conn())
            .await?
            .rows_affected;
        txn.commit().await?;
        Ok(deleted > 0)
    }

    /// Claims up to `limit` deliveries due at `now_ms` for `lease_ms`: pending, of an
    /// enabled webhook, not leased by anyone, and the earliest pending one of their
    /// webhook and ordering key. Oldest first.
    pub async fn claim_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u64,
    ) -> AppResult<Vec<ClaimedDelivery>> {
        use webhook_delivery::{Column as D, Entity as Deliveries};
        let txn = self.begin_txn().await?;
        let pending = DeliveryState::Pending.name();
        let earlier = Query::select()
            .expr(Expr::val(1))
            .from_as(Deliveries, Earlier)
            .and_where(Expr::col((Earlier, D::WebhookId)).equals((Deliveries, D::WebhookId)))
            .and_where(Expr::col((Earlier, D::OrderingKey)).equals((Deliveries, D::OrderingKey)))
            .and_where(Expr::col((Earlier, D::State)).eq(pending))
            .and_where(Expr::col((Earlier, D::Id)).lt(Expr::col((Deliveries, D::Id))))
            .to_owned();
        let enabled = Query::select()
            .column(webhook::Column::Id)
            .from(webhook::Entity)
            .and_where(webhook::Column::DisabledAt.is_null())
            .to_owned();
        let due: Vec<webhook_delivery::Model> = Deliveries::find()
            .filter(D::State.eq(pending))
            .filter(D::NextAttemptMs.lte(now_ms))
            .filter(D::LeaseUntilMs.lte(now_ms))
            .filter(D::WebhookId.in_subquery(enabled))
            .filter(Expr::exists(earlier).not())
            .order_by_asc(D::Id)
            .limit(limit)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .all(txn.conn())
            .await?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = due.iter().map(|d| d.id).collect();
        Deliveries::update_many()
            .col_expr(D::LeaseUntilMs, Expr::value(now_ms + lease_ms))
            .filter(D::Id.is_in(ids))
            .exec(txn.conn())
            .await?;
        let mut hooks: Vec<String> = due.iter().map(|d| d.webhook_id.clone()).collect();
        hooks.sort();
        hooks.dedup();
        let hooks: std::collections::HashMap<String, webhook::Model> = webhook::Entity::find()
            .filter(webhook::Column::Id.is_in(hooks))
            .all(txn.conn())
            .await?
            .into_iter()
            .map(|h| (h.id.clone(), h))
            .collect();
        txn.commit().await?;
        let mut claimed = Vec::with_capacity(due.len());
        for row in due {
            let Some(hook) = hooks.get(&row.webhook_id) else {
                continue;
            };
            claimed.push(ClaimedDelivery {
                url: hook.url.clone(),
                secret: hook.secret.clone(),
                delivery: delivery_from_row(row)?,
            });
        }
        Ok(claimed)
    }

    /// Logs attempts at deliveries and applies their outcomes, in one transaction. A
    /// delivery another replica already finished (its lease ran out while this one was
    /// sending) keeps its state; the attempt is logged all the same.
    pub async fn finish_deliveries(
        &self,
        finished: &[(&StoredDelivery, StoredAttempt, DeliveryOutcome)],
    ) -> AppResult<()> {
        use webhook_delivery::Column as D;
        if finished.is_empty() {
            return Ok(());
        }
        let txn = self.begin_txn().await?;
        let attempts: Vec<_> = finished
            .iter()
            .map(|(d, attempt, _)| webhook_attempt::ActiveModel {
                delivery_id: Set(d.id),
                webhook_id: Set(d.webhook_id.clone()),
                attempted_at: Set(attempt.attempted_at),
                status: Set(attempt.status.map(i32::from)),
                error: Set(attempt.error.clone()),
                response: Set(attempt.response.clone()),
                duration_ms: Set(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX)),
                ..Default::default()
            })
            .collect();
        for chunk in attempts.chunks(super::ROWS_PER_STATEMENT / 8) {
            webhook_attempt::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(txn.conn())
                .await?;
        }
        let now = chrono::Utc::now().timestamp();
        // Delivered ones by status in one statement each (nearly always one: 200); the
        // rest one by one, each with its own next time.
        let mut delivered: std::collections::BTreeMap<Option<u16>, Vec<i64>> =
            std::collections::BTreeMap::new();
        for (d, attempt, outcome) in finished {
            if *outcome == DeliveryOutcome::Delivered {
                delivered.entry(attempt.status).or_default().push(d.id);
            }
        }
        for (status, ids) in delivered {
            webhook_delivery::Entity::update_many()
                .filter(D::Id.is_in(ids))
                .filter(D::State.eq(DeliveryState::Pending.name()))
                .col_expr(D::Attempts, Expr::col(D::Attempts).add(1))
                .col_expr(D::LeaseUntilMs, Expr::value(0i64))
                .col_expr(D::LastStatus, Expr::value(status.map(i32::from)))
                .col_expr(D::LastError, Expr::value(Option::<String>::None))
                .col_expr(D::State, Expr::value(DeliveryState::Delivered.name()))
                .col_expr(D::DeliveredAt, Expr::value(now))
                .exec(txn.conn())
                .await?;
        }
        for (d, attempt, outcome) in finished {
            let update = webhook_delivery::Entity::update_many()
                .filter(D::Id.eq(d.id))
                .filter(D::State.eq(DeliveryState::Pending.name()))
                .col_expr(D::Attempts, Expr::col(D::Attempts).add(1))
                .col_expr(D::LeaseUntilMs, Expr::value(0i64))
                .col_expr(D::LastStatus, Expr::value(attempt.status.map(i32::from)))
                .col_expr(D::LastError, Expr::value(attempt.error.clone()));
            match outcome {
                DeliveryOutcome::Delivered => continue,
                DeliveryOutcome::Retry(at) => {
                    update
                        .col_expr(D::NextAttemptMs, Expr::value(*at))
                        .exec(txn.conn())
                        .await?;
                }
                DeliveryOutcome::GiveUp(reason) => {
                    update
                        .col_expr(D::State, Expr::value(DeliveryState::Failed.name()))
                        .exec(txn.conn())
                        .await?;
                    webhook::Entity::update_many()
                        .filter(webhook::Column::Id.eq(&d.webhook_id))
                        .filter(webhook::Column::DisabledAt.is_null())
                        .col_expr(webhook::Column::DisabledAt, Expr::value(now))
                        .col_expr(webhook::Column::DisabledReason, Expr::value(reason.clone()))
                        .exec(txn.conn())
                        .await?;
                }
            }
        }
        txn.commit().await
    }

    /// A webhook's deliveries, newest first, at most `limit`, in `state` if given.
    pub async fn deliveries(
        &self,
        webhook_id: &str,
        state: Option<DeliveryState>,
        limit: u64,
    ) -> AppResult<Vec<StoredDelivery>> {
        use webhook_delivery::Column as D;
        let mut find = webhook_delivery::Entity::find().filter(D::WebhookId.eq(webhook_id));
        if let Some(state) = state {
            find = find.filter(D::State.eq(state.name()));
        }
        find.order_by_desc(D::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(delivery_from_row)
            .collect()
    }

    /// The attempts at these deliveries, oldest first.
    pub async fn attempts(&self, deliveries: &[i64]) -> AppResult<Vec<StoredAttempt>> {
        let mut out = Vec::new();
        for chunk in deliveries.chunks(super::ROWS_PER_STATEMENT) {
            let rows = webhook_attempt::Entity::find()
                .filter(webhook_attempt::Column::DeliveryId.is_in(chunk.to_vec()))
                .order_by_asc(webhook_attempt::Column::Id)
                .all(&self.db)
                .await?;
            out.extend(rows.into_iter().map(|r| StoredAttempt {
                delivery_id: r.delivery_id,
                attempted_at: r.attempted_at,
                status: r.status.and_then(|s| u16::try_from(s).ok()),
                error: r.error,
                response: r.response,
                duration_ms: u64::try_from(r.duration_ms).unwrap_or(0),
            }));
        }
        Ok(out)
    }

    /// How many deliveries of a webhook are still pending.
    pub async fn pending_deliveries(&self, webhook_id: &str) -> AppResult<u64> {
        Ok(webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::WebhookId.eq(webhook_id))
            .filter(webhook_delivery::Column::State.eq(DeliveryState::Pending.name()))
            .count(&self.db)
            .await?)
    }

    /// Deletes finished deliveries (delivered or failed) created before `before` (Unix
    /// seconds) with their attempts, at most `limit` of them; how many went.
    pub async fn prune_deliveries(&self, before: i64, limit: u64) -> AppResult<u64> {
        use webhook_delivery::Column as D;
        let txn = self.begin_txn().await?;
        let ids: Vec<i64> = webhook_delivery::Entity::find()
            .select_only()
            .column(D::Id)
            .filter(D::State.ne(DeliveryState::Pending.name()))
            .filter(D::CreatedAt.lt(before))
            .order_by_asc(D::Id)
            .limit(limit)
            .into_tuple()
            .all(txn.conn())
            .await?;
        for chunk in ids.chunks(super::ROWS_PER_STATEMENT) {
            webhook_attempt::Entity::delete_many()
                .filter(webhook_attempt::Column::DeliveryId.is_in(chunk.to_vec()))
                .exec(txn.conn())
                .await?;
            webhook_delivery::Entity::delete_many()
                .filter(D::Id.is_in(chunk.to_vec()))
                .exec(txn.conn())
                .await?;
        }
        txn.commit().await?;
        Ok(ids.len() as u64)
    }

    /// The account's stage as last settled (none before the first).
    pub async fn settled_stage(&self, account_id: &str) -> AppResult<Option<Stage>> {
        let stage: Option<Option<String>> = account::Entity::find_by_id(account_id.to_owned())
            .select_only()
            .column(account::Column::JourneyStage)
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(stage.flatten().and_then(|s| Stage::parse(&s).ok()))
    }

    /// Records the account's stage as `to` if it was something else (or nothing), with
    /// the move in the stage history and a `STAGE_CHANGED` event in the outbox, all in
    /// one transaction. Concurrent settlers of one account take turns on its row. `None`:
    /// no such account, or its stage already was `to`.
    pub async fn settle_stage(
        &self,
        account_id: &str,
        to: Stage,
        source: StageSource,
        cause: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> AppResult<Option<StageMove>> {
        let txn = self.begin_txn().await?;
        // Takes the row (PostgreSQL) so that two replicas settling at once take turns.
        let Some(row) = account::Entity::find_by_id(account_id.to_owned())
            .lock(LockType::Update)
            .one(txn.conn())
            .await?
        else {
            return Ok(None);
        };
        if row.journey_stage.as_deref() == Some(to.name()) {
            return Ok(None);
        }
        let from = row
            .journey_stage
            .as_deref()
            .and_then(|s| Stage::parse(s).ok());
        account::Entity::update_many()
            .filter(account::Column::Id.eq(account_id))
            .col_expr(account::Column::JourneyStage, Expr::value(to.name()))
            .exec(txn.conn())
            .await?;
        let moved = StageMove {
            account_id: account_id.to_owned(),
            changed_at: now.timestamp(),
            from,
            to,
            source: Some(source),
            cause: cause.map(str::to_owned),
        };
        stage_change::Entity::insert(stage_change::ActiveModel {
            account_id: Set(moved.account_id.clone()),
            changed_at: Set(moved.changed_at),
            from_stage: Set(from.map(|s| s.name().to_owned())),
            to_stage: Set(to.name().to_owned()),
            source: Set(source.name().to_owned()),
            cause: Set(moved.cause.clone()),
            ..Default::default()
        })
        .exec_without_returning(txn.conn())
        .await?;
        let event = OutboxEvent::new(
            new_event_id()?,
            WebhookEvent::StageChanged,
            Some(account_id),
            now,
            serde_json::json!({
                "accountId": account_id,
                "from": from.map(|s| s.name()),
                "to": to.name(),
                "source": source.name(),
                "cause": moved.cause,
            }),
        );
        publish(txn.conn(), WebhookEvent::StageChanged, &[event]).await?;
        txn.commit().await?;
        Ok(Some(moved))
    }

    /// An account's stage moves since `since` (Unix seconds), newest first.
    pub async fn stage_changes(
        &self,
        account_id: &str,
        since: i64,
        limit: u64,
    ) -> AppResult<Vec<StageMove>> {
        use stage_change::Column as C;
        let rows = stage_change::Entity::find()
            .filter(C::AccountId.eq(account_id))
            .filter(C::ChangedAt.gte(since))
            .order_by_desc(C::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(StageMove {
                    from: r.from_stage.as_deref().and_then(|s| Stage::parse(s).ok()),
                    to: Stage::parse(&r.to_stage).ok()?,
                    account_id: r.account_id,
                    changed_at: r.changed_at,
                    source: StageSource::parse(&r.source),
                    cause: r.cause,
                })
            })
            .collect())
    }
}
