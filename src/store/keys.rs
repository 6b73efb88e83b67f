//! API keys: stored by the hash of their string, never the string itself.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    sea_query::Expr,
};

use super::entity::{api_key, audit_event, safelisted_operation, server_secret};
use super::{Store, corrupt};
use crate::domain::{ApiKey, AuditEvent, Operation, Scope};
use crate::error::AppResult;

fn key_from_row(row: api_key::Model) -> AppResult<ApiKey> {
    Ok(ApiKey {
        scope: corrupt(Scope::parse(&row.scope), "api_key.scope")?,
        id: row.id,
        name: row.name,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        revoked_at: row.revoked_at,
        rate_per_second: rate(row.rate_per_second, "api_key.rate_per_second")?,
        client_rate_per_second: rate(row.client_rate_per_second, "api_key.client_rate_per_second")?,
    })
}

/// The row of an audit event: one request, or (`counted`) its bucket, dated at the start
/// of the bucket's minute.
fn audit_row(e: &AuditEvent, counted: bool) -> audit_event::ActiveModel {
    let at = e.at.timestamp();
    audit_event::ActiveModel {
        at: Set(if counted { at.div_euclid(60) * 60 } else { at }),
        key_id: Set(e.key_id.clone()),
        operation: Set(e.operation.clone()),
        client: Set(e.client.clone()),
        status: Set(i32::from(e.status)),
        outcome: Set(e.outcome.clone()),
        count: Set(i64::try_from(e.count).unwrap_or(i64::MAX)),
        bucket: Set(counted.then(|| e.bucket())),
        ..Default::default()
    }
}

fn rate(stored: Option<i32>, what: &'static str) -> AppResult<Option<u32>> {
    stored
        .map(|r| corrupt(u32::try_from(r).map_err(|e| e.to_string()), what))
        .transpose()
}

fn stored_rate(rate: Option<u32>) -> Option<i32> {
    rate.map(|r| i32::try_from(r).unwrap_or(i32::MAX))
}

impl Store {
    /// Stores a new key under its id and the hash of its string.
    pub async fn insert_key(&self, key: &ApiKey, hash: &str) -> AppResult<()> {
        let txn = self.begin_txn().await?;
        api_key::Entity::insert(api_key::ActiveModel {
            id: Set(key.id.clone()),
            name: Set(key.name.clone()),
            scope: Set(key.scope.name().to_owned()),
            hash: Set(hash.to_owned()),
            created_at: Set(key.created_at),
            last_used_at: Set(None),
            revoked_at: Set(None),
            rate_per_second: Set(stored_rate(key.rate_per_second)),
            client_rate_per_second: Set(stored_rate(key.client_rate_per_second)),
        })
        .exec_without_returning(txn.conn())
        .await?;
        txn.commit().await
    }

    /// The shared secret `name`: the stored one, or `candidate` if none was stored yet
    /// (the first replica to ask stores it; the others read what it stored).
    pub async fn shared_secret(&self, name: &str, candidate: &str) -> AppResult<String> {
        if let Some(stored) = server_secret::Entity::find_by_id(name.to_owned())
            .one(&self.db)
            .await?
        {
            return Ok(stored.value);
        }
        let txn = self.begin_txn().await?;
        server_secret::Entity::insert(server_secret::ActiveModel {
            name: Set(name.to_owned()),
            value: Set(candidate.to_owned()),
            created_at: Set(Utc::now().timestamp()),
        })
        .on_conflict_do_nothing_on([server_secret::Column::Name])
        .exec_without_returning(txn.conn())
        .await?;
        let stored = server_secret::Entity::find_by_id(name.to_owned())
            .one(txn.conn())
            .await?;
        txn.commit().await?;
        stored.map(|s| s.value).ok_or_else(|| {
            crate::error::AppError::internal(anyhow::anyhow!("shared secret {name} was not stored"))
        })
    }

    /// Every key, revoked ones included, oldest first.
    pub async fn keys(&self) -> AppResult<Vec<ApiKey>> {
        api_key::Entity::find()
            .order_by_asc(api_key::Column::CreatedAt)
            .order_by_asc(api_key::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(key_from_row)
            .collect()
    }

    /// The key with this hash, revoked or not.
    pub async fn key_by_hash(&self, hash: &str) -> AppResult<Option<ApiKey>> {
        api_key::Entity::find()
            .filter(api_key::Column::Hash.eq(hash))
            .one(&self.db)
            .await?
            .map(key_from_row)
            .transpose()
    }

    /// The key with this id, revoked or not, and its stored hash.
    pub async fn key_by_id(&self, id: &str) -> AppResult<Option<(ApiKey, String)>> {
        let Some(row) = api_key::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let hash = row.hash.clone();
        Ok(Some((key_from_row(row)?, hash)))
    }

    /// Sets a key's own rate limits (`None`: the server's default). `None` when there is no
    /// such key.
    pub async fn set_key_limits(
        &self,
        id: &str,
        rate_per_second: Option<u32>,
        client_rate_per_second: Option<u32>,
    ) -> AppResult<Option<ApiKey>> {
        let update = api_key::Entity::update_many()
            .col_expr(
                api_key::Column::RatePerSecond,
                Expr::value(stored_rate(rate_per_second)),
            )
            .col_expr(
                api_key::Column::ClientRatePerSecond,
                Expr::value(stored_rate(client_rate_per_second)),
            );
        self.update_key(id, update).await
    }

    /// Applies `update` to the key with this id and reads it back, in one transaction;
    /// `None` when there is no such key.
    async fn update_key(
        &self,
        id: &str,
        update: sea_orm::UpdateMany<api_key::Entity>,
    ) -> AppResult<Option<ApiKey>> {
        let txn = self.begin_txn().await?;
        update
            .filter(api_key::Column::Id.eq(id))
            .exec(txn.conn())
            .await?;
        let key = api_key::Entity::find_by_id(id.to_owned())
            .one(txn.conn())
            .await?
            .map(key_from_row)
            .transpose()?;
        txn.commit().await?;
        Ok(key)
    }

    /// How many keys are not revoked.
    pub async fn active_key_count(&self) -> AppResult<u64> {
        Ok(api_key::Entity::find()
            .filter(api_key::Column::RevokedAt.is_null())
            .count(&self.db)
            .await?)
    }

    /// Revokes a key (once: a second revocation keeps the first time). `None` when there
    /// is no such key.
    pub async fn revoke_key(&self, id: &str, at: DateTime<Utc>) -> AppResult<Option<ApiKey>> {
        let update = api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, Expr::value(at))
            .filter(api_key::Column::RevokedAt.is_null());
        self.update_key(id, update).await
    }

    /// Notes when a key was last used.
    pub async fn touch_key(&self, id: &str, at: DateTime<Utc>) -> AppResult<()> {
        let txn = self.begin_txn().await?;
        api_key::Entity::update_many()
            .col_expr(api_key::Column::LastUsedAt, Expr::value(at))
            .filter(api_key::Column::Id.eq(id))
            .exec(txn.conn())
            .await?;
        txn.commit().await
    }
}

impl Store {
    /// Appends audit events, all in one transaction.
    pub async fn insert_audit_events(&self, events: &[AuditEvent]) -> AppResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let txn = self.begin_txn().await?;
        for chunk in events.chunks(super::ROWS_PER_STATEMENT) {
            let rows = chunk.iter().map(|e| audit_row(e, false));
            audit_event::Entity::insert_many(rows)
                .exec_without_returning(txn.conn())
                .await?;
        }
        txn.commit().await
    }

    /// Adds counted refusals to their buckets' rows (`AuditEvent::bucket`), creating
    /// those not there yet, in one transaction. Replicas counting the same bucket add up.
    pub async fn add_audit_counts(&self, events: &[AuditEvent]) -> AppResult<()> {
        use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
        if events.is_empty() {
            return Ok(());
        }
        let txn = self.begin_txn().await?;
        for chunk in events.chunks(super::ROWS_PER_STATEMENT) {
            let rows = chunk.iter().map(|e| audit_row(e, true));
            audit_event::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::column(audit_event::Column::Bucket)
                        .value(
                            audit_event::Column::Count,
                            Expr::col((audit_event::Entity, audit_event::Column::Count))
                                .add(Expr::col((super::Excluded, audit_event::Column::Count))),
                        )
                        .to_owned(),
                )
                .exec_without_returning(txn.conn())
                .await?;
        }
        txn.commit().await
    }

    /// Deletes audit events older than `before` (Unix seconds); how many.
    pub async fn prune_audit_events(&self, before: i64) -> AppResult<u64> {
        let txn = self.begin_txn().await?;
        let deleted = audit_event::Entity::delete_many()
            .filter(audit_event::Column::At.lt(before))
            .exec(txn.conn())
            .await?
            .rows_affected;
        txn.commit().await?;
        Ok(deleted)
    }

    /// A page of the audit trail, newest first, before row `before` (all when `None`).
    pub async fn audit_events(
        &self,
        before: Option<i64>,
        limit: u64,
    ) -> AppResult<Vec<(i64, AuditEvent)>> {
        use sea_orm::QuerySelect;
        let mut query = audit_event::Entity::find()
            .order_by_desc(audit_event::Column::Id)
            .limit(limit);
        if let Some(before) = before {
            query = query.filter(audit_event::Column::Id.lt(before));
        }
        query
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| {
                let at = chrono::TimeZone::timestamp_opt(&Utc, row.at, 0)
                    .single()
                    .ok_or_else(|| {
                        crate::error::AppError::internal(anyhow::anyhow!(
                            "stored audit time {} is invalid",
                            row.at
                        ))
                    })?;
                Ok((
                    row.id,
                    AuditEvent {
                        at,
                        key_id: row.key_id,
                        operation: row.operation,
                        client: row.client,
                        status: u16::try_from(row.status).unwrap_or_default(),
                        outcome: row.outcome,
                        count: u64::try_from(row.count).unwrap_or_default(),
                    },
                ))
            })
            .collect()
    }
}

impl Store {
    /// Registers a document (again: keeps the first registration). Whether it was new.
    pub async fn insert_operation(&self, operation: &Operation) -> AppResult<bool> {
        let txn = self.begin_txn().await?;
        let exists = safelisted_operation::Entity::find_by_id(operation.hash.clone())
            .one(txn.conn())
            .await?
            .is_some();
        if !exists {
            safelisted_operation::Entity::insert(safelisted_operation::ActiveModel {
                hash: Set(operation.hash.clone()),
                document: Set(operation.document.clone()),
                name: Set(operation.name.clone()),
                created_at: Set(operation.created_at),
            })
            .exec_without_returning(txn.conn())
            .await?;
        }
        txn.commit().await?;
        Ok(!exists)
    }

    /// Every safelisted document, oldest first.
    pub async fn operations(&self) -> AppResult<Vec<Operation>> {
        Ok(safelisted_operation::Entity::find()
            .order_by_asc(safelisted_operation::Column::CreatedAt)
            .order_by_asc(safelisted_operation::Column::Hash)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| Operation {
                hash: row.hash,
                name: row.name,
                document: row.document,
                created_at: row.created_at,
            })
            .collect())
    }

    /// Removes a document from the safelist; whether it was there.
    pub async fn delete_operation(&self, hash: &str) -> AppResult<bool> {
        let txn = self.begin_txn().await?;
        let removed = safelisted_operation::Entity::delete_by_id(hash.to_owned())
            .exec(txn.conn())
            .await?
            .rows_affected
            > 0;
        txn.commit().await?;
        Ok(removed)
    }
}
