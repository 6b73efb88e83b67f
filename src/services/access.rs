//! API keys and the credentials a request presents. Deciding which fields a credential may
//! call is the GraphQL room's rule table (`graphql/access.rs`); this room says who the
//! caller is.
//!
//! Lookups are cached for [`KEY_CACHE`] per key hash, so a request costs a hash and a map
//! lookup, not a query. That age bounds how long a key revoked through another replica
//! keeps working; a revocation through this process drops the cache at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq;

use super::ttl::TtlCache;
use super::writer::{BatchWork, BatchWriter, Cadence, WriterHandle, WriterSettings};
use crate::domain::{
    ApiKey, AuditEvent, KEY_RANDOM_BYTES, MAX_VISITOR_TOKEN_TTL, Scope, VisitorClaims, hash_bytes,
    key_hash, key_id, new_key, parse_key,
};
use crate::error::{AppError, AppResult};
use crate::store::Store;

/// How long a key lookup (and whether any key exists) is reused: under the 5 s within which
/// a revoked key must stop working on every replica.
pub const KEY_CACHE: Duration = crate::config::DEFAULT_KEY_CACHE;
/// `last_used_at` is written at most this often per key.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Who is calling.
#[derive(Clone, Debug, PartialEq)]
pub enum Credential {
    /// No key exists at all: the server is open (and, by start-up rule, only on a
    /// loopback address).
    Open,
    Key(ApiKey),
    /// A visitor token: publishable, bound to one account.
    Visitor(Visitor),
}

/// What a valid visitor token says, with the key that signed it.
#[derive(Clone, Debug, PartialEq)]
pub struct Visitor {
    pub key: ApiKey,
    pub account_id: String,
    pub contact_id: Option<String>,
    pub expires_at: DateTime<Utc>,
}

impl Credential {
    /// What the credential may do: everything when open.
    pub fn scope(&self) -> Scope {
        match self {
            Credential::Open => Scope::Admin,
            Credential::Key(key) => key.scope,
            Credential::Visitor(_) => Scope::Publishable,
        }
    }

    /// The key that made the request, or signed its visitor token.
    pub fn key(&self) -> Option<&ApiKey> {
        match self {
            Credential::Open => None,
            Credential::Key(key) => Some(key),
            Credential::Visitor(visitor) => Some(&visitor.key),
        }
    }

    pub fn key_id(&self) -> Option<&str> {
        self.key().map(|k| k.id.as_str())
    }

    /// The account (and contact) a visitor token is bound to.
    pub fn visitor(&self) -> Option<&Visitor> {
        match self {
            Credential::Visitor(visitor) => Some(visitor),
            _ => None,
        }
    }
}

/// A visitor token minted by the server.
#[derive(Clone, Debug, PartialEq)]
pub struct VisitorToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Clock skew allowed on a visitor token's expiry, both ways.
const TOKEN_LEEWAY_SECS: i64 = 30;

/// A key looked up by its hash, with the stored hash; `None` for a well-formed key nobody
/// created.
type Lookup = Option<(ApiKey, String)>;

pub struct Access {
    store: Store,
    /// By key hash.
    keys: TtlCache<String, Lookup>,
    /// By key id, for visitor tokens (`kid`).
    by_id: TtlCache<String, Lookup>,
    any_key: TtlCache<(), bool>,
    touched: Mutex<HashMap<String, Instant>>,
}

impl Access {
    /// Keys looked up in `store`, each answer reused for `key_cache` (a revoked key works
    /// that long at most on a replica that did not revoke it).
    pub fn new(store: Store, key_cache: Duration) -> Self {
        Self {
            store,
            keys: TtlCache::new(key_cache),
            by_id: TtlCache::new(key_cache),
            any_key: TtlCache::new(key_cache),
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// Creates a key; the returned string is the only copy there will ever be.
    pub async fn create_key(
        &self,
        name: &str,
        scope: Scope,
        limits: KeyLimits,
    ) -> AppResult<(ApiKey, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AppError::bad_input(
                "name: give the key a name of 1 to 200 characters",
            ));
        }
        limits.check()?;
        let mut random = [0u8; KEY_RANDOM_BYTES];
        getrandom::fill(&mut random)
            .map_err(|e| AppError::internal(anyhow::anyhow!("no randomness for a key: {e}")))?;
        let secret = new_key(scope, random);
        let hash = key_hash(&secret);
        let key = ApiKey {
            id: key_id(&hash),
            name: name.to_owned(),
            scope,
            created_at: Utc::now(),
            last_used_at: None,
            revoked_at: None,
            rate_per_second: limits.rate_per_second,
            client_rate_per_second: limits.client_rate_per_second,
        };
        self.store.insert_key(&key, &hash).await?;
        self.forget();
        Ok((key, secret))
    }

    pub async fn keys(&self) -> AppResult<Vec<ApiKey>> {
        self.store.keys().await
    }

    /// Revokes by id (`k_...`) or by the whole key string.
    pub async fn revoke(&self, id_or_key: &str) -> AppResult<ApiKey> {
        let id = id_of(id_or_key)?;
        let key = self
            .store
            .revoke_key(&id, Utc::now())
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no API key with id {id:?}")))?;
        self.forget();
        Ok(key)
    }

    /// Sets a key's own rate limits, by id or key string; `None` returns a limit to the
    /// server's default. Takes effect on this process at once, on others within
    /// [`KEY_CACHE`].
    pub async fn set_limits(&self, id_or_key: &str, limits: KeyLimits) -> AppResult<ApiKey> {
        limits.check()?;
        let id = id_of(id_or_key)?;
        let key = self
            .store
            .set_key_limits(&id, limits.rate_per_second, limits.client_rate_per_second)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no API key with id {id:?}")))?;
        self.forget();
        Ok(key)
    }

    /// Drops every cached lookup: after a key is created or revoked through this process.
    fn forget(&self) {
        self.keys.clear();
        self.by_id.clear();
        self.any_key.clear();
    }

    /// Whether any key that is not revoked exists.
    pub async fn keys_exist(&self) -> AppResult<bool> {
        self.any_key
            .get_or_load(&(), async { Ok(self.store.active_key_count().await? > 0) })
            .await
    }

    /// Whether authenticating `bearer` would read the database (its key, its token's
    /// signing key, or whether any key exists is not cached): what a client address that
    /// keeps failing is no longer allowed.
    pub fn needs_lookup(&self, bearer: Option<&str>) -> bool {
        match bearer {
            None => !self.any_key.holds_fresh(&()),
            Some(raw) if !raw.starts_with("sf_") && raw.split('.').count() == 3 => {
                match jsonwebtoken::decode_header(raw) {
                    Ok(header) => header.kid.is_some_and(|kid| !self.by_id.holds_fresh(&kid)),
                    Err(_) => false,
                }
            }
            Some(raw) => match parse_key(raw) {
                Ok(claim) => !self.keys.holds_fresh(&claim.hash),
                // Refused on its shape alone, with no lookup.
                Err(_) => false,
            },
        }
    }

    /// Who presents `bearer` (the `Authorization: Bearer` value, if any). No credential is
    /// fine only while no key exists; a malformed, unknown or revoked key never is.
    pub async fn authenticate(&self, bearer: Option<&str>) -> AppResult<Credential> {
        let Some(raw) = bearer else {
            return if self.keys_exist().await? {
                Err(AppError::Unauthenticated(
                    "an API key is required: send Authorization: Bearer KEY".to_owned(),
                ))
            } else {
                Ok(Credential::Open)
            };
        };
        if !raw.starts_with("sf_") && raw.split('.').count() == 3 {
            return self.visitor(raw).await.map(Credential::Visitor);
        }
        let claim = parse_key(raw).map_err(AppError::Unauthenticated)?;
        let found = self.lookup(&claim.hash).await?;
        let Some((key, stored_hash)) = found else {
            return Err(AppError::Unauthenticated("unknown API key".to_owned()));
        };
        // The map was keyed by the hash already; compare it once more in constant time so
        // no path through here depends on how much of a hash matched.
        if !bool::from(stored_hash.as_bytes().ct_eq(claim.hash.as_bytes())) {
            return Err(AppError::Unauthenticated("unknown API key".to_owned()));
        }
        if key.revoked_at.is_some() {
            return Err(AppError::Unauthenticated(format!(
                "API key {} was revoked",
                key.id
            )));
        }
        self.touch(&key.id);
        Ok(Credential::Key(key))
    }

    /// Checks a visitor token: its `kid` names a server key that is not revoked, its
    /// HS256 signature was made with that key, it has not expired and lives at most
    /// [`MAX_VISITOR_TOKEN_TTL`].
    async fn visitor(&self, token: &str) -> AppResult<Visitor> {
        use jsonwebtoken::errors::ErrorKind;
        let refuse = |why: String| AppError::Unauthenticated(format!("visitor token: {why}"));
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| refuse(format!("not a JWT ({e})")))?;
        if header.alg != jsonwebtoken::Algorithm::HS256 {
            return Err(refuse(format!(
                "signed with {:?}; stagefit accepts HS256 only",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| refuse("no kid: name the server key that signed it".to_owned()))?;
        let Some((key, hash)) = self.lookup_id(&kid).await? else {
            return Err(refuse(format!("no server key with id {kid:?}")));
        };
        if key.scope < Scope::Server {
            return Err(refuse(format!(
                "key {kid} is {}; only server keys (or above) sign visitor tokens",
                key.scope
            )));
        }
        if key.revoked_at.is_some() {
            return Err(refuse(format!("key {kid} was revoked")));
        }
        let secret = signing_secret(&key, &hash)?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = TOKEN_LEEWAY_SECS.unsigned_abs();
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = jsonwebtoken::decode::<VisitorClaims>(
            token,
            &jsonwebtoken::DecodingKey::from_secret(&secret),
            &validation,
        )
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => refuse("expired".to_owned()),
            ErrorKind::ImmatureSignature => refuse("not valid yet (nbf)".to_owned()),
            ErrorKind::InvalidSignature => {
                refuse(format!("the signature was not made with key {kid}"))
            }
            _ => refuse(format!("invalid ({e})")),
        })?
        .claims;
        let now = Utc::now();
        let expires_at = DateTime::from_timestamp(claims.exp, 0)
            .ok_or_else(|| refuse("exp is out of range".to_owned()))?;
        if expires_at > now + MAX_VISITOR_TOKEN_TTL + chrono::Duration::seconds(TOKEN_LEEWAY_SECS) {
            return Err(refuse(
                "exp is more than 24 h ahead; sign tokens that live a day at most".to_owned(),
            ));
        }
        if claims.sub.trim().is_empty() {
            return Err(refuse("sub (the account id) is empty".to_owned()));
        }
        self.touch(&key.id);
        Ok(Visitor {
            key,
            account_id: claims.sub,
            contact_id: claims.contact.filter(|c| !c.is_empty()),
            expires_at,
        })
    }

    /// A visitor token for an account (and contact), signed with `signer`'s key, living
    /// `ttl`: what a customer's backend would sign itself.
    pub async fn visitor_token(
        &self,
        signer: &str,
        claims_for: (&str, Option<&str>),
        ttl: chrono::Duration,
    ) -> AppResult<VisitorToken> {
        let (account_id, contact_id) = claims_for;
        if ttl < chrono::Duration::seconds(1) || ttl > MAX_VISITOR_TOKEN_TTL {
            return Err(AppError::bad_input(
                "ttlSeconds: a visitor token lives 1 to 86400 seconds",
            ));
        }
        let Some((key, hash)) = self.lookup_id(signer).await? else {
            return Err(AppError::NotFound(format!("no API key with id {signer:?}")));
        };
        let secret = signing_secret(&key, &hash)?;
        let expires_at = Utc::now() + ttl;
        let claims = VisitorClaims {
            sub: account_id.to_owned(),
            contact: contact_id.map(str::to_owned),
            exp: expires_at.timestamp(),
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(key.id.clone());
        let token = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .map_err(|e| AppError::internal(anyhow::anyhow!("cannot sign a visitor token: {e}")))?;
        Ok(VisitorToken {
            token,
            expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or(expires_at),
        })
    }

    async fn lookup_id(&self, id: &str) -> AppResult<Lookup> {
        self.by_id
            .get_or_load(&id.to_owned(), async {
                // Ids are `k_` and 12 hex digits; anything else is nobody's, without a query.
                if id.len() == 14 && id.starts_with("k_") {
                    metrics::counter!(crate::metrics::KEY_LOOKUPS).increment(1);
                    self.store.key_by_id(id).await
                } else {
                    Ok(None)
                }
            })
            .await
    }

    async fn lookup(&self, hash: &str) -> AppResult<Lookup> {
        self.keys
            .get_or_load(&hash.to_owned(), async {
                metrics::counter!(crate::metrics::KEY_LOOKUPS).increment(1);
                Ok(self
                    .store
                    .key_by_hash(hash)
                    .await?
                    .map(|k| (k, hash.to_owned())))
            })
            .await
    }

    /// Records that a key was used, at most once a minute per key, off the request path.
    fn touch(&self, id: &str) {
        {
            let mut touched = lock(&self.touched);
            if touched.get(id).is_some_and(|at| at.elapsed() < TOUCH_EVERY) {
                return;
            }
            touched.insert(id.to_owned(), Instant::now());
        }
        let store = self.store.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            if let Err(err) = store.touch_key(&id, Utc::now()).await {
                tracing::warn!(key = %id, error = %format!("{:#}", err.unmasked()), "cannot note a key's last use");
            }
        });
    }
}

/// The HMAC secret of a key's visitor tokens: its stored SHA-256, which HMAC makes of the
/// 65-byte key string anyway (see `domain::access`).
fn signing_secret(key: &ApiKey, hash: &str) -> AppResult<[u8; 32]> {
    hash_bytes(hash).ok_or_else(|| {
        AppError::internal(anyhow::anyhow!("stored hash of key {} is not hex", key.id))
    })
}

/// A key's own rate limits; `None` keeps the server's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyLimits {
    pub rate_per_second: Option<u32>,
    pub client_rate_per_second: Option<u32>,
}

impl KeyLimits {
    fn check(self) -> AppResult<()> {
        for (name, rate) in [
            ("ratePerSecond", self.rate_per_second),
            ("clientRatePerSecond", self.client_rate_per_second),
        ] {
            if let Some(rate) = rate
                && !(1..=1_000_000).contains(&rate)
            {
                return Err(AppError::bad_input(format!(
                    "{name}: a rate is 1 to 1000000 requests a second (leave it out for the default)"
                )));
            }
        }
        Ok(())
    }
}

/// The id a revocation or limit change names: a `k_...` id, or the key string itself.
fn id_of(id_or_key: &str) -> AppResult<String> {
    let raw = id_or_key.trim();
    if raw.starts_with("sf_") {
        Ok(parse_key(raw).map_err(AppError::bad_input)?.id)
    } else {
        Ok(raw.to_owned())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Events waiting to be written; past this, a request waits for room before it answers.
const AUDIT_QUEUE: usize = 10_000;
/// Events written in one transaction at most.
const AUDIT_BATCH: usize = 500;
/// How often counted refusals are added to their rows.
const AUDIT_FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often events past the retention are deleted.
const AUDIT_PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Buckets of refusals counted between two flushes at most; past this, a refusal counts in
/// its minute's catch-all bucket (`*`), so a flood from many addresses cannot grow memory.
const MAX_REFUSAL_BUCKETS: usize = 10_000;

/// The audit trail's writer. A mutation or a refused request queues its event before its
/// answer is sent; one supervised task writes them in batches, so recording adds no
/// database write to a request's time, and a shutdown writes what is queued before the
/// process exits. Refusals that come in floods (401, 429) are counted per key or address,
/// outcome and minute, and added to one row per bucket every second.
#[derive(Clone)]
pub struct AuditTrail {
    writer: BatchWriter<AuditEvent>,
    work: Arc<AuditWork>,
}

struct AuditWork {
    store: Store,
    retention_days: u32,
    /// Counted refusals not yet written, by bucket.
    refusals: Mutex<HashMap<String, AuditEvent>>,
    prune: Cadence,
}

impl BatchWork for AuditWork {
    type Item = AuditEvent;

    async fn write(&self, batch: Vec<AuditEvent>) {
        if let Err(err) = self.store.insert_audit_events(&batch).await {
            tracing::error!(events = batch.len(), error = %format!("{:#}", err.unmasked()), "cannot write the audit trail");
        }
    }

    async fn upkeep(&self) {
        let counted: Vec<AuditEvent> = std::mem::take(&mut *lock(&self.refusals))
            .into_values()
            .collect();
        if let Err(err) = self.store.add_audit_counts(&counted).await {
            tracing::error!(buckets = counted.len(), error = %format!("{:#}", err.unmasked()), "cannot write counted refusals to the audit trail");
        }
        if self.retention_days == 0 || !self.prune.due() {
            return;
        }
        let before =
            (Utc::now() - chrono::Duration::days(i64::from(self.retention_days))).timestamp();
        match self.store.prune_audit_events(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                events = n,
                retention_days = self.retention_days,
                "audit trail pruned"
            ),
            Err(err) => {
                tracing::warn!(error = %format!("{:#}", err.unmasked()), "cannot prune the audit trail")
            }
        }
    }
}

impl AuditTrail {
    /// Starts the writer; it also deletes events older than `retention_days` (0: keeps
    /// them all) at start and every hour.
    pub fn start(store: Store, retention_days: u32) -> (Self, WriterHandle) {
        let work = Arc::new(AuditWork {
            store,
            retention_days,
            refusals: Mutex::new(HashMap::new()),
            prune: Cadence::new(AUDIT_PRUNE_EVERY),
        });
        let (writer, handle) = super::writer::start(
            work.clone(),
            WriterSettings {
                name: "audit",
                capacity: AUDIT_QUEUE,
                batch: AUDIT_BATCH,
                upkeep: AUDIT_FLUSH_EVERY,
            },
        );
        (Self { writer, work }, handle)
    }

    /// Records an event: a refusal that comes in floods is counted in its bucket; anything
    /// else is queued (waiting for room when the queue is full) before this returns.
    pub async fn record(&self, mut event: AuditEvent) {
        event.operation = crate::domain::audited_operation(&event.operation);
        if event.counted_per_bucket() {
            self.count(event);
            return;
        }
        if self.writer.send(event).await.is_err() {
            tracing::warn!("the audit trail has stopped: an event after shutdown was not recorded");
        }
    }

    fn count(&self, mut event: AuditEvent) {
        let mut refusals = lock(&self.work.refusals);
        let mut bucket = event.bucket();
        if !refusals.contains_key(&bucket) && refusals.len() >= MAX_REFUSAL_BUCKETS {
            metrics::counter!(crate::metrics::AUDIT_POOLED).increment(1);
            event.key_id = None;
            event.client = Some("*".to_owned());
            bucket = event.bucket();
        }
        match refusals.get_mut(&bucket) {
            Some(counted) => counted.count += event.count,
            None => {
                refusals.insert(bucket, event);
            }
        }
    }

    /// Events waiting to be written.
    pub fn queued(&self) -> usize {
        self.writer.queued()
    }
}

impl Access {
    /// A page of the audit trail, newest first, before row `before`.
    pub async fn audit_events(
        &self,
        before: Option<i64>,
        limit: u64,
    ) -> AppResult<Vec<(i64, AuditEvent)>> {
        self.store.audit_events(before, limit).await
    }
}
