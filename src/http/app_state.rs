//! What request handlers get: the library and the parts of the HTTP layer one running
//! instance shares (access, limits, caches, schema). `state.rs` builds it once at start;
//! it is cheap to clone.

use std::sync::Arc;
use std::time::Duration;

use super::{ConnectionLimits, ParsedDocuments, RateLimits, ResponseCache};
use crate::graphql::AppSchema;
use crate::services::{Access, AuditTrail, Library, Safelist};

#[derive(Clone)]
pub struct AppState {
    pub library: Library,
    /// Who is calling: API keys and the credentials requests present.
    pub access: Arc<Access>,
    /// Mutations and refused requests, recorded off the request path.
    pub audit: AuditTrail,
    /// Documents web pages may run, by hash.
    pub safelist: Arc<Safelist>,
    /// Publishable keys and visitor tokens run only safelisted documents.
    pub publishable_safelist: bool,
    /// Requests per key and per visitor, checked before anything runs.
    pub limits: Arc<RateLimits>,
    /// How long one GraphQL request may run before it gets 503 `TIMEOUT`.
    pub request_timeout: Duration,
    /// How long a client may take to send a request body before it gets 408 `TIMEOUT`.
    pub body_timeout: Duration,
    /// Header timeout and shutdown grace of the listeners.
    pub connections: ConnectionLimits,
    /// Requests taking at least this long get a `slow request` line at `warn`.
    pub slow_request: Duration,
    /// `/readyz` answers 503 while the index is more changes than this behind.
    pub ready_max_lag: i64,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// Origins browsers may call `/graphql` from (validated at start).
    pub cors_origins: Arc<Vec<axum::http::HeaderValue>>,
    pub schema: AppSchema,
    /// Responses to repeated queries; `None` when turned off.
    pub cache: Option<Arc<ResponseCache>>,
    /// Parses of the documents seen lately, by their text.
    pub documents: Arc<ParsedDocuments>,
}
