//! API keys: stored by the hash of their string, never the string itself.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    sea_query::Expr,
};

use super::entity::{api_key, audit_event};
use super::{Store, corrupt};
use crate::domain::{ApiKey, AuditEvent, Scope};
use crate::error::AppResult;

fn key_from_row(row: api_key::Model) -> AppResult<ApiKey> {
    Ok(ApiKey {
        scope: corrupt(Scope::parse(&row.scope), "api_key.scope")?,
        id: row.id,
        name: row.name,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        revoked_at: row.revoked_at,
    })
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
        })
        .exec_without_returning(txn.conn())
        .await?;
        txn.commit().await
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
        let txn = self.begin_txn().await?;
        api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, Expr::value(at))
            .filter(api_key::Column::Id.eq(id))
            .filter(api_key::Column::RevokedAt.is_null())
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
            let rows = chunk.iter().map(|e| audit_event::ActiveModel {
                at: Set(e.at.timestamp()),
                key_id: Set(e.key_id.clone()),
                operation: Set(e.operation.clone()),
                client: Set(e.client.clone()),
                status: Set(i32::from(e.status)),
                outcome: Set(e.outcome.clone()),
                ..Default::default()
            });
            audit_event::Entity::insert_many(rows)
                .exec_without_returning(txn.conn())
                .await?;
        }
        txn.commit().await
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
                    },
                ))
            })
            .collect()
    }
}
