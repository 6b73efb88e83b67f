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
