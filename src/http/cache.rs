//! A cache of whole GraphQL responses, so that the same question asked again (the same
//! audience from many visitors of one site, a sales tool refreshing a list) is answered
//! without executing it.
//!
//! - The key is the request exactly as sent: the POST body or the GET query string. Two
//!   requests that differ only in whitespace are two entries; nothing is parsed on a hit.
//! - Only responses without errors whose fields all allow caching are stored: the schema
//!   marks the index-backed queries with a `cache_control` max age, and `asset(id)` and
//!   every mutation with `no_cache`. A response's max age is the smallest of its fields'.
//! - An entry is valid while the index shows the same change-log position it was computed
//!   at and popularity has not been refreshed, and for at most its max age (freshness moves
//!   with the clock). Any write the index applies (a mutation, an import by another process)
//!   or a popularity refresh makes every older entry a miss.
//! - A response whose resolvers marked it `Cache-Control: private, no-store` (one built
//!   from an account's history) is never stored.
//! - Memory is bounded by the bytes of the stored bodies; the least useful entries go first.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

use crate::services::DataVersion;

/// Bodies larger than this are not stored: long lists are rarely asked for twice.
const MAX_BODY_BYTES: usize = 256 * 1024;
/// Bytes counted per entry besides its body: the key, the bookkeeping.
const ENTRY_OVERHEAD_BYTES: u64 = 128;

/// How the request reached us; part of the key because the same bytes mean different
/// things as a body and as a query string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    method: Method,
    /// Answers are never shared between credentials the rule table treats differently.
    scope: crate::domain::Scope,
    /// A visitor token's account and contact: the same request means another audience for
    /// another visitor.
    visitor: Option<(String, Option<String>)>,
    request: Bytes,
}

impl CacheKey {
    pub fn new(method: Method, credential: &crate::services::Credential, request: Bytes) -> Self {
        Self {
            method,
            scope: credential.scope(),
            visitor: credential
                .visitor()
                .map(|v| (v.account_id.clone(), v.contact_id.clone())),
            request,
        }
    }
}

#[derive(Clone)]
struct Entry {
    body: Bytes,
    /// The operation it answered, for the request log and metrics of a hit.
    operation: std::sync::Arc<str>,
    /// The index's change-log position and popularity version when the response was
    /// computed.
    seq: DataVersion,
    expires: Instant,
}

impl Entry {
    fn is_valid(&self, seq: DataVersion, now: Instant) -> bool {
        self.seq == seq && now < self.expires
    }
}

#[derive(Clone)]
struct ByBytes;

impl Weighter<CacheKey, Entry> for ByBytes {
    fn weight(&self, key: &CacheKey, entry: &Entry) -> u64 {
        (key.request.len() + entry.body.len() + entry.operation.len()) as u64 + ENTRY_OVERHEAD_BYTES
    }
}

/// Whether a hit, a miss that was stored, or a response that may not be stored: sent as
/// the `x-cache` header so operators and tests can see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Hit,
    Miss,
    Bypass,
}

impl Outcome {
    pub fn header_value(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Bypass => "bypass",
        }
    }
}

pub struct ResponseCache {
    entries: Cache<CacheKey, Entry, ByBytes>,
}

impl ResponseCache {
    /// A cache holding at most `capacity_bytes` of requests and responses; `None` when the
    /// capacity is zero (caching off).
    pub fn new(capacity_bytes: u64) -> Option<Self> {
        if capacity_bytes == 0 {
            return None;
        }
        // About 4 KiB per entry: ten recommendations with their reasons.
        let estimated_items = (capacity_bytes / 4096).clamp(16, 1 << 20) as usize;
        Some(Self {
            entries: Cache::with_weighter(estimated_items, capacity_bytes, ByBytes),
        })
    }

    /// The stored body for `key` if it was computed at change-log position `seq` and has
    /// not expired.
    pub fn get(&self, key: &CacheKey, seq: DataVersion) -> Option<Bytes> {
        self.get_with_operation(key, seq).map(|(body, _)| body)
    }

    /// The stored body and the operation it answered.
    pub fn get_with_operation(
        &self,
        key: &CacheKey,
        seq: DataVersion,
    ) -> Option<(Bytes, std::sync::Arc<str>)> {
        let entry = self.entries.get(key)?;
        if entry.is_valid(seq, Instant::now()) {
            Some((entry.body, entry.operation))
        } else {
            self.entries.remove(key);
            None
        }
    }

    /// Stores a response computed at `seq` for `max_age`; refuses bodies too large to be
    /// worth keeping.
    pub fn put(
        &self,
        key: CacheKey,
        seq: DataVersion,
        max_age: Duration,
        body: Bytes,
        operation: &str,
    ) -> bool {
        if body.len() > MAX_BODY_BYTES || max_age.is_zero() {
            return false;
        }
        self.entries.insert(
            key,
            Entry {
                body,
                operation: std::sync::Arc::from(operation),
                seq,
                expires: Instant::now() + max_age,
            },
        );
        true
    }
}

/// A cached answer's recommendation ids with fresh nonces, each signed again by `renew`:
/// every answer's id is unique, also when its bytes come from the cache. The nonce and
/// signature are the id's fixed-length tail, so the body keeps its length and nothing else
/// in it changes.
pub fn with_fresh_recommendation_ids(body: Bytes, renew: impl Fn(&str) -> Option<String>) -> Bytes {
    const FIELD: &[u8] = b"\"recommendationId\":\"";
    if !body.windows(FIELD.len()).any(|w| w == FIELD) {
        return body;
    }
    let mut out = body.to_vec();
    let mut from = 0;
    while let Some(at) = out[from..]
        .windows(FIELD.len())
        .position(|w| w == FIELD)
        .map(|i| from + i + FIELD.len())
    {
        let Some(end) = out[at..].iter().position(|b| *b == b'"').map(|i| at + i) else {
            break;
        };
        let renewed = std::str::from_utf8(&out[at..end]).ok().and_then(&renew);
        if let Some(renewed) = renewed
            && renewed.len() == end - at
        {
            out[at..end].copy_from_slice(renewed.as_bytes());
        }
        from = end;
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_recommendation_ids_get_fresh_nonces_and_nothing_else_changes() {
        let signer = crate::domain::ListSigner::new(b"test secret");
        let context = crate::domain::ListContext {
            at: 1,
            profile: "default".into(),
            stage: "DECISION".into(),
            language: "en".into(),
            ..Default::default()
        };
        let id = signer.issue(&context, ["a", "b"], "0123456789abcdef");
        let body = Bytes::from(format!(
            "{{\"data\":{{\"a\":{{\"recommendationId\":\"{id}\",\"x\":1}},\"b\":{{\"recommendationId\":\"{id}\"}}}}}}"
        ));
        let nonces = std::sync::atomic::AtomicU64::new(0);
        let renew = |id: &str| {
            let n = nonces.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            signer.renew(id, &format!("{n:016x}"))
        };
        let fresh = with_fresh_recommendation_ids(body.clone(), renew);
        assert_eq!(fresh.len(), body.len());
        let text = String::from_utf8(fresh.to_vec()).unwrap();
        assert!(!text.contains(&id), "{text}");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let a = value["data"]["a"]["recommendationId"].as_str().unwrap();
        let b = value["data"]["b"]["recommendationId"].as_str().unwrap();
        assert_ne!(a, b);
        // Both still open, to the same list.
        assert_eq!(signer.open(a).unwrap(), signer.open(&id).unwrap());
        assert_eq!(signer.open(b).unwrap(), signer.open(&id).unwrap());
        let plain = Bytes::from_static(b"{\"data\":{}}");
        assert_eq!(
            with_fresh_recommendation_ids(plain.clone(), |_| None),
            plain
        );
    }
    use crate::domain::Scope;
    use crate::services::Credential;

    fn v(index_seq: i64) -> DataVersion {
        DataVersion {
            ranking: 0,
            index_seq,
            popularity: 0,
            synonyms: 0,
            meaning: 0,
        }
    }

    fn api_key(scope: Scope) -> crate::domain::ApiKey {
        crate::domain::ApiKey {
            id: format!("k_{scope}"),
            name: "test".to_owned(),
            scope,
            created_at: chrono::Utc::now(),
            last_used_at: None,
            revoked_at: None,
            rate_per_second: None,
            client_rate_per_second: None,
        }
    }

    fn credential(scope: Scope) -> Credential {
        Credential::Key(api_key(scope))
    }

    fn visitor(account: &str) -> Credential {
        Credential::Visitor(crate::services::Visitor {
            key: api_key(Scope::Server),
            account_id: account.to_owned(),
            contact_id: None,
            expires_at: chrono::Utc::now(),
        })
    }

    fn key(text: &str) -> CacheKey {
        CacheKey::new(
            Method::Post,
            &credential(Scope::Publishable),
            Bytes::copy_from_slice(text.as_bytes()),
        )
    }

    #[test]
    fn entries_live_until_the_index_moves_or_they_expire() {
        let cache = ResponseCache::new(1 << 20).unwrap();
        let body = Bytes::from_static(b"{\"data\":{}}");
        assert!(cache.put(key("a"), v(7), Duration::from_secs(60), body.clone(), "op"));
        assert_eq!(cache.get(&key("a"), v(7)), Some(body.clone()));
        assert_eq!(
            cache.get(
                &CacheKey::new(
                    Method::Get,
                    &credential(Scope::Publishable),
                    Bytes::from_static(b"a")
                ),
                v(7)
            ),
            None,
            "a GET and a POST never share an entry"
        );
        let as_editor = CacheKey::new(
            Method::Post,
            &credential(Scope::Editor),
            Bytes::from_static(b"a"),
        );
        assert_eq!(
            cache.get(&as_editor, v(7)),
            None,
            "credentials of different scopes never share an entry"
        );
        let for_acme = CacheKey::new(Method::Post, &visitor("acme"), Bytes::from_static(b"a"));
        assert!(cache.put(
            for_acme.clone(),
            v(7),
            Duration::from_secs(60),
            body.clone(),
            "op"
        ));
        assert_eq!(cache.get(&for_acme, v(7)), Some(body.clone()));
        assert_eq!(
            cache.get(
                &CacheKey::new(Method::Post, &visitor("globex"), Bytes::from_static(b"a")),
                v(7)
            ),
            None,
            "visitors of two accounts never share an entry"
        );
        assert_eq!(cache.get(&key("a"), v(8)), None, "a newer index misses");
        assert_eq!(
            cache.get(&key("a"), v(7)),
            None,
            "and the stale entry is gone"
        );
        assert!(cache.put(key("b"), v(7), Duration::from_secs(60), body.clone(), "op"));
        let refreshed = DataVersion {
            popularity: 1,
            ..v(7)
        };
        let reprofiled = DataVersion { ranking: 1, ..v(7) };
        assert_eq!(
            cache.get(&key("b"), reprofiled),
            None,
            "a profile or experiment changed"
        );
        assert!(cache.put(key("b"), v(7), Duration::from_secs(60), body.clone(), "op"));
        assert_eq!(
            cache.get(&key("b"), refreshed),
            None,
            "new popularity misses"
        );

        let entry = Entry {
            body,
            operation: std::sync::Arc::from("op"),
            seq: v(1),
            expires: Instant::now() + Duration::from_secs(5),
        };
        assert!(entry.is_valid(v(1), Instant::now()));
        assert!(!entry.is_valid(v(1), Instant::now() + Duration::from_secs(6)));
    }

    #[test]
    fn large_bodies_and_zero_ages_are_not_stored_and_zero_capacity_is_off() {
        let cache = ResponseCache::new(1 << 20).unwrap();
        let big = Bytes::from(vec![b' '; MAX_BODY_BYTES + 1]);
        assert!(!cache.put(key("big"), v(1), Duration::from_secs(60), big, "op"));
        assert!(!cache.put(
            key("now"),
            v(1),
            Duration::ZERO,
            Bytes::from_static(b"{}"),
            "op"
        ));
        assert_eq!(cache.get(&key("big"), v(1)), None);
        assert!(ResponseCache::new(0).is_none());
    }

    #[test]
    fn memory_stays_within_the_capacity() {
        let capacity = 64 * 1024;
        let cache = ResponseCache::new(capacity).unwrap();
        for i in 0..1_000 {
            let body = Bytes::from(vec![b'x'; 1_000]);
            cache.put(
                key(&format!("q{i}")),
                v(1),
                Duration::from_secs(60),
                body,
                "op",
            );
        }
        assert!(cache.entries.weight() <= capacity);
        assert!(cache.entries.len() > 10);
    }
}
