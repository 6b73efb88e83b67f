//! Who may call what: scopes and API keys. Pure: a key's randomness is given, not drawn.
//!
//! A key reads `sf_pub_` (its scope) + 22 base62 characters (128 random bits) + 6 base62
//! characters of CRC-32 over everything before them. The checksum refuses a typo without
//! a database lookup, and the fixed shape lets leaked-secret scanners match keys. A key is
//! stored only as the SHA-256 of its string; its public id is derived from that hash.

use std::fmt;

use sha2::{Digest, Sha256};

/// What a credential may do; each scope includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Safe inside a web page: the library, search and recommendations for explicit
    /// audiences.
    Publishable,
    /// A sales tool or the customer's backend: accounts, contacts and events.
    Server,
    /// The content team: library writes and the audit.
    Editor,
    /// Keys, erasure, exports.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::Publishable,
        Scope::Server,
        Scope::Editor,
        Scope::Admin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Publishable => "publishable",
            Scope::Server => "server",
            Scope::Editor => "editor",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        let lower = raw.trim().to_ascii_lowercase();
        Scope::ALL
            .into_iter()
            .find(|s| s.name() == lower)
            .ok_or_else(|| {
                format!("unknown scope {raw:?}; expected publishable, server, editor or admin")
            })
    }

    fn prefix(self) -> &'static str {
        match self {
            Scope::Publishable => "sf_pub_",
            Scope::Server => "sf_srv_",
            Scope::Editor => "sf_edt_",
            Scope::Admin => "sf_adm_",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const PREFIX_LEN: usize = 7;
const SECRET_LEN: usize = 22;
const CHECK_LEN: usize = 6;
/// `sf_pub_` + secret + checksum.
pub const KEY_LEN: usize = PREFIX_LEN + SECRET_LEN + CHECK_LEN;

fn base62(mut value: u128, width: usize) -> String {
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(out).unwrap_or_default()
}

fn checksum(head: &str) -> String {
    base62(u128::from(crc32fast::hash(head.as_bytes())), CHECK_LEN)
}

/// A stored key, without its secret.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One entry of the audit trail: a mutation, or a request refused before it ran.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    pub at: chrono::DateTime<chrono::Utc>,
    /// The key that made it, by id; `None` without a (valid) key.
    pub key_id: Option<String>,
    /// The GraphQL operation (its name, or its type and root fields), or the path.
    pub operation: String,
    /// The client's address.
    pub client: Option<String>,
    pub status: u16,
    /// `ok`, or the first error code (`FORBIDDEN`, `RATE_LIMITED`, `NOT_FOUND`, ...).
    pub outcome: String,
}

/// A new key string of `scope` from 16 random bytes.
pub fn new_key(scope: Scope, random: [u8; 16]) -> String {
    let head = format!(
        "{}{}",
        scope.prefix(),
        base62(u128::from_be_bytes(random), SECRET_LEN)
    );
    let check = checksum(&head);
    head + &check
}

/// A key string that has the shape of a key: its scope, hash and id, known without a
/// lookup. Whether it exists and is not revoked is for the store to say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyClaim {
    pub scope: Scope,
    /// Hex SHA-256 of the whole string, as stored.
    pub hash: String,
    pub id: String,
}

/// Checks a presented key's shape and checksum.
pub fn parse_key(raw: &str) -> Result<KeyClaim, String> {
    const BAD: &str = "not a stagefit API key (check for a typo)";
    if raw.len() != KEY_LEN || !raw.is_ascii() {
        return Err(BAD.to_owned());
    }
    let scope = Scope::ALL
        .into_iter()
        .find(|s| raw.starts_with(s.prefix()))
        .ok_or_else(|| BAD.to_owned())?;
    let (head, check) = raw.split_at(PREFIX_LEN + SECRET_LEN);
    if !head[PREFIX_LEN..]
        .bytes()
        .all(|b| b.is_ascii_alphanumeric())
        || checksum(head) != check
    {
        return Err(BAD.to_owned());
    }
    let hash = key_hash(raw);
    Ok(KeyClaim {
        scope,
        id: key_id(&hash),
        hash,
    })
}

pub fn key_hash(raw: &str) -> String {
    Sha256::digest(raw.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The public id of a key: `k_` and the first 12 hex digits of its hash.
pub fn key_id(hash: &str) -> String {
    format!("k_{}", &hash[..12.min(hash.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_their_scope_and_refuse_typos_without_a_lookup() {
        let key = new_key(Scope::Server, [7; 16]);
        assert_eq!(key.len(), KEY_LEN);
        assert!(key.starts_with("sf_srv_"));
        let claim = parse_key(&key).unwrap();
        assert_eq!(claim.scope, Scope::Server);
        assert_eq!(claim.hash, key_hash(&key));
        assert!(claim.id.starts_with("k_") && claim.id.len() == 14);
        // One character changed anywhere, or a different scope prefix: refused.
        for i in 0..key.len() {
            let mut bytes = key.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).unwrap();
            assert!(parse_key(&typo).is_err(), "{typo}");
        }
        assert!(parse_key(&key.replace("sf_srv_", "sf_adm_")).is_err());
        assert!(parse_key("").is_err());
        assert!(parse_key(&format!("{key}x")).is_err());
        // Different randomness, different keys of every scope.
        for scope in Scope::ALL {
            let k = new_key(scope, [1; 16]);
            assert_eq!(parse_key(&k).unwrap().scope, scope);
            assert_ne!(k, new_key(scope, [2; 16]));
        }
        assert!(Scope::Publishable < Scope::Server && Scope::Editor < Scope::Admin);
    }
}
