//! API keys over GraphQL, for admins: `apiKeys`, `createApiKey`, `revokeApiKey`,
//! `setApiKeyLimits`, `auditLog`; and `createVisitorToken` for server keys. Who may call
//! them is the rule table's business (`access.rs`), like every other field.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::ApiResult;
use crate::domain::{ApiKey, Scope};
use crate::error::{AppError, AppResult};
use crate::services::{Access, Credential, KeyLimits};

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
    /// Requests a second for the key, all its callers together; null: the server's
    /// default (`--rate-per-key`).
    pub rate_per_second: Option<i32>,
    /// Requests a second per client address of a publishable key or of the visitor tokens
    /// a server key signs; null: the server's default (`--rate-per-client`).
    pub client_rate_per_second: Option<i32>,
}

fn rate_out(rate: Option<u32>) -> Option<i32> {
    rate.map(|r| i32::try_from(r).unwrap_or(i32::MAX))
}

/// A key's own rates as GraphQL gives them; the service checks their range (a negative
/// rate reaches it as 0, which it refuses with the same message).
fn limits(rate_per_second: Option<i32>, client_rate_per_second: Option<i32>) -> KeyLimits {
    let rate = |r: Option<i32>| r.map(|r| u32::try_from(r).unwrap_or(0));
    KeyLimits {
        rate_per_second: rate(rate_per_second),
        client_rate_per_second: rate(client_rate_per_second),
    }
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
            rate_per_second: rate_out(k.rate_per_second),
            client_rate_per_second: rate_out(k.client_rate_per_second),
        }
    }
}

/// A signed visitor token for a web page: the browser's Bearer credential.
#[derive(SimpleObject)]
pub struct VisitorToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
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
    /// Opaque; pass it as `after` for the next (older) page.
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
    /// How many requests the entry stands for. Refusals are one entry per key (or else
    /// address), outcome and minute (and operation, for 403 and 413), `at` the minute's
    /// start.
    pub count: i64,
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
    /// ran (401, 403, 413, 429; refusals counted per key or address, outcome and minute).
    /// `after` is the last `cursor` of the previous page.
    #[graphql(cache_control(no_cache))]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(50)")] first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Vec<AuditEventObject>> {
        let first = u64::try_from(first.unwrap_or(50))
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| AppError::bad_input("first must be between 1 and 500"))?;
        let before = after
            .map(|b| {
                b.parse::<i64>()
                    .map_err(|_| AppError::bad_input("after: not a cursor of auditLog"))
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
                count: i64::try_from(e.count).unwrap_or(i64::MAX),
            })
            .collect())
    }
}

#[derive(Default)]
pub struct KeysMutation;

#[Object(cache_control(no_cache))]
impl KeysMutation {
    /// Creates a key of `scope`. The answer's `key` is the only copy there will be. The
    /// rates, when given, replace the server's defaults for this key.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        name: String,
        scope: KeyScope,
        rate_per_second: Option<i32>,
        client_rate_per_second: Option<i32>,
    ) -> ApiResult<CreatedApiKey> {
        let limits = limits(rate_per_second, client_rate_per_second);
        let (key, secret) = access(ctx)?.create_key(&name, scope.into(), limits).await?;
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

    /// Sets a key's own rate limits (by id or key string); a rate left out or null returns
    /// to the server's default. Effective at once here, within 5 s on every other server.
    async fn set_api_key_limits(
        &self,
        ctx: &Context<'_>,
        id: ID,
        rate_per_second: Option<i32>,
        client_rate_per_second: Option<i32>,
    ) -> ApiResult<ApiKeyObject> {
        let limits = limits(rate_per_second, client_rate_per_second);
        Ok(access(ctx)?.set_limits(&id, limits).await?.into())
    }

    /// A visitor token for a web page showing `accountId`'s visitor (and `contactId`'s,
    /// when known), signed with the calling server key and living `ttlSeconds` (at most
    /// 86400). The same token any JWT library makes with the key string as HS256 secret
    /// (see SECURITY.md); revoking the key ends its tokens. `NOT_FOUND` for an unknown
    /// account, or a contact that is not the account's.
    async fn create_visitor_token(
        &self,
        ctx: &Context<'_>,
        account_id: ID,
        contact_id: Option<ID>,
        #[graphql(default = 3600)] ttl_seconds: i32,
    ) -> ApiResult<VisitorToken> {
        let signer = match ctx.data_opt::<Credential>().and_then(|c| c.key()) {
            Some(key) if key.scope >= crate::domain::Scope::Server => key.id.clone(),
            _ => {
                return Err(AppError::bad_input(
                    "a visitor token is signed with the server key that asks for it; call with a server key",
                )
                .into());
            }
        };
        let profile = super::library::library(ctx)?
            .require_account(&account_id)
            .await?;
        if let Some(contact) = &contact_id
            && profile.contact(contact).is_none()
        {
            return Err(AppError::NotFound(format!(
                "account {:?} has no contact {:?}",
                account_id.as_str(),
                contact.as_str()
            ))
            .into());
        }
        let token = access(ctx)?
            .visitor_token(
                &signer,
                (&account_id, contact_id.as_ref().map(|c| c.as_str())),
                chrono::Duration::seconds(i64::from(ttl_seconds)),
            )
            .await?;
        Ok(VisitorToken {
            token: token.token,
            expires_at: token.expires_at,
        })
    }
}
