//! API keys and the credentials a request presents. Deciding which fields a credential may
//! call is the GraphQL room's rule table (`graphql/access.rs`); this room says who the
//! caller is.
//!
//! Lookups are cached for [`KEY_CACHE`] per key hash, so a request costs a hash and a map
//! lookup, not a query. That age bounds how long a key revoked through another replica
//! keeps working; a revocation through this process drops the cache at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use subtle::ConstantTimeEq;

use crate::domain::{ApiKey, AuditEvent, Scope, key_hash, key_id, new_key, parse_key};
use crate::error::{AppError, AppResult};
use crate::store::Store;

/// How long a key lookup (and whether any key exists) is reused: under the 5 s within which
/// a revoked key must stop working on every replica.
pub const KEY_CACHE: Duration = Duration::from_secs(4);
/// `last_used_at` is written at most this often per key.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Who is calling.
#[derive(Clone, Debug, PartialEq)]
pub enum Credential {
    /// No key exists at all: the server is open (and, by start-up rule, only on a
    /// loopback address).
    Open,
    Key(ApiKey),
}

impl Credential {
    /// What the credential may do: everything when open.
    pub fn scope(&self) -> Scope {
        match self {
            Credential::Open => Scope::Admin,
            Credential::Key(key) => key.scope,
        }
    }

    pub fn key_id(&self) -> Option<&str> {
        match self {
            Credential::Open => None,
            Credential::Key(key) => Some(&key.id),
        }
    }
}

struct Cached<T> {
    value: T,
    at: Instant,
}

/// A key looked up by its hash, with the stored hash; `None` for a well-formed key nobody
/// created.
type Lookup = Option<(ApiKey, String)>;

pub struct Access {
    store: Store,
    /// By key hash.
    keys: Mutex<HashMap<String, Cached<Lookup>>>,
    any_key: Mutex<Option<Cached<bool>>>,
    touched: Mutex<HashMap<String, Instant>>,
}

impl Access {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            keys: Mutex::new(HashMap::new()),
            any_key: Mutex::new(None),
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// Creates a key; the returned string is the only copy there will ever be.
    pub async fn create_key(&self, name: &str, scope: Scope) -> AppResult<(ApiKey, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AppError::bad_input(
                "name: give the key a name of 1 to 200 characters",
            ));
        }
        let mut random = [0u8; 16];
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
        let raw = id_or_key.trim();
        let id = if raw.starts_with("sf_") {
            parse_key(raw).map_err(AppError::bad_input)?.id
        } else {
            raw.to_owned()
        };
        let key = self
            .store
            .revoke_key(&id, Utc::now())
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no API key with id {id:?}")))?;
        self.forget();
        Ok(key)
    }

    /// Drops every cached lookup: after a key is created or revoked through this process.
    fn forget(&self) {
        lock(&self.keys).clear();
        *lock(&self.any_key) = None;
    }

    /// Whether any key that is not revoked exists.
    pub async fn keys_exist(&self) -> AppResult<bool> {
        if let Some(cached) = lock(&self.any_key).as_ref()
            && cached.at.elapsed() < KEY_CACHE
        {
            return Ok(cached.value);
        }
        let exists = self.store.active_key_count().await? > 0;
        *lock(&self.any_key) = Some(Cached {
            value: exists,
            at: Instant::now(),
        });
        Ok(exists)
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

    async fn lookup(&self, hash: &str) -> AppResult<Lookup> {
        if let Some(cached) = lock(&self.keys).get(hash)
            && cached.at.elapsed() < KEY_CACHE
        {
            return Ok(cached.value.clone());
        }
        let found = self
            .store
            .key_by_hash(hash)
            .await?
            .map(|k| (k, hash.to_owned()));
        let mut keys = lock(&self.keys);
        // Unknown hashes are cached too, but a flood of them must not grow the map forever.
        if keys.len() > 10_000 {
            keys.retain(|_, c| c.at.elapsed() < KEY_CACHE);
        }
        keys.insert(
            hash.to_owned(),
            Cached {
                value: found.clone(),
                at: Instant::now(),
            },
        );
        Ok(found)
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Events waiting to be written; past this, new ones are dropped (and counted in the log)
/// rather than let a flood of refused requests grow memory.
const AUDIT_QUEUE: usize = 10_000;

/// The audit trail's writer. A request queues its event without waiting; one task writes
/// them in batches, so recording adds no database write to a request's time. Events still
/// queued when the server stops are lost.
#[derive(Clone)]
pub struct AuditTrail {
    sender: tokio::sync::mpsc::Sender<AuditEvent>,
}

impl AuditTrail {
    pub fn start(store: Store) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<AuditEvent>(AUDIT_QUEUE);
        let task = tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                let mut batch = vec![first];
                while batch.len() < 500 {
                    match receiver.try_recv() {
                        Ok(event) => batch.push(event),
                        Err(_) => break,
                    }
                }
                if let Err(err) = store.insert_audit_events(&batch).await {
                    tracing::error!(events = batch.len(), error = %format!("{:#}", err.unmasked()), "cannot write the audit trail");
                }
            }
        });
        (Self { sender }, task)
    }

    pub fn record(&self, event: AuditEvent) {
        if self.sender.try_send(event).is_err() {
            tracing::warn!("audit trail queue full: an event was dropped");
        }
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
