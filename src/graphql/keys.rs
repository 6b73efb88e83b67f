//! API keys over GraphQL, for admins: `apiKeys`, `createApiKey`, `revokeApiKey`. Who may
//! call them is the rule table's business (`access.rs`), like every other field.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::ApiResult;
use crate::domain::{ApiKey, Scope};
use crate::error::{AppError, AppResult};
use crate::services::Access;

/// What a key may call; each scope includes the ones before it.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "KeyScope")]
pub enum KeyScope {
    /// Safe inside a web page: library reads, search, recommendations for explicit
    /// audiences.
    Publishable,
    /// A sales tool or the customer's backend: accounts, contacts, events.
    Server,
    /// The content team: library writes, the audit, introspection.
    Editor,
    /// Keys, erasure, account exports.
    Admin,
}

impl From<KeyScope> for Scope {
    fn from(s: KeyScope) -> Self {
        match s {
            KeyScope::Publishable => Scope::Publishable,
            KeyScope::Server => Scope::Server,
            KeyScope::Editor => Scope::Editor,
            KeyScope::Admin => Scope::Admin,
        }
    }
}

impl From<Scope> for KeyScope {
    fn from(s: Scope) -> Self {
        match s {
            Scope::Publishable => KeyScope::Publishable,
            Scope::Server => KeyScope::Server,
            Scope::Editor => KeyScope::Editor,
            Scope::Admin => KeyScope::Admin,
        }
    }
}

/// An API key, without its secret (which is never stored).
#[derive(SimpleObject)]
#[graphql(name = "ApiKey")]
pub struct ApiKeyObject {
    pub id: ID,
    pub name: String,
    pub scope: KeyScope,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyObject {
    fn from(k: ApiKey) -> Self {
        Self {
            id: ID(k.id),
            name: k.name,
            scope: k.scope.into(),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A new key: `key` is shown this once and never again.
#[derive(SimpleObject)]
pub struct CreatedApiKey {
    pub key: String,
    pub api_key: ApiKeyObject,
}

fn access<'a>(ctx: &Context<'a>) -> AppResult<&'a Arc<Access>> {
    ctx.data::<Arc<Access>>()
        .map_err(|_| AppError::internal(anyhow::anyhow!("schema built without access")))
}

/// A mutation, or a request refused before it ran.
#[derive(SimpleObject)]
pub struct AuditEventObject {
    /// Opaque; pass it as `before` for the next page.
    pub cursor: String,
    pub at: DateTime<Utc>,
    /// The key that made it, by id (never its secret); null without a valid key.
    pub key_id: Option<ID>,
    /// The GraphQL operation's name, or its type and root fields.
    pub operation: String,
    pub client_address: Option<String>,
    pub status: i32,
    /// `ok`, or the first error's code (`FORBIDDEN`, `RATE_LIMITED`, ...).
    pub outcome: String,
}

#[derive(Default)]
pub struct KeysQuery;

#[Object]
impl KeysQuery {
    /// Every API key, revoked ones included, oldest first.
    #[graphql(cache_control(no_cache))]
    async fn api_keys(&self, ctx: &Context<'_>) -> ApiResult<Vec<ApiKeyObject>> {
        Ok(access(ctx)?
            .keys()
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// The audit trail, newest first: every mutation and every request refused before it
    /// ran (401, 403, 413, 429). `before` is a `cursor` of the previous page.
    #[graphql(cache_control(no_cache))]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(50)")] first: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<Vec<AuditEventObject>> {
        let first = u64::try_from(first.unwrap_or(50))
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| AppError::bad_input("first must be between 1 and 500"))?;
        let before = before
            .map(|b| {
                b.parse::<i64>()
                    .map_err(|_| AppError::bad_input("before: not a cursor of auditLog"))
            })
            .transpose()?;
        Ok(access(ctx)?
            .audit_events(before, first)
            .await?
            .into_iter()
            .map(|(id, e)| AuditEventObject {
                cursor: id.to_string(),
                at: e.at,
                key_id: e.key_id.map(ID),
                operation: e.operation,
                client_address: e.client,
                status: i32::from(e.status),
                outcome: e.outcome,
            })
            .collect())
    }
}

#[derive(Default)]
pub struct KeysMutation;

#[Object(cache_control(no_cache))]
impl KeysMutation {
    /// Creates a key of `scope`. The answer's `key` is the only copy there will be.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        name: String,
        scope: KeyScope,
    ) -> ApiResult<CreatedApiKey> {
        let (key, secret) = access(ctx)?.create_key(&name, scope.into()).await?;
        Ok(CreatedApiKey {
            key: secret,
            api_key: key.into(),
        })
    }

    /// Revokes a key by its id or its whole string. It stops working at once on this
    /// server and within 5 s on every other.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> ApiResult<ApiKeyObject> {
        Ok(access(ctx)?.revoke(&id).await?.into())
    }
}
