//! Who may call what: scopes and API keys. Pure: a key's randomness is given, not drawn.
//!
//! A key reads `sf_pub_` (its scope) + 52 base62 characters (over 300 random bits) + 6
//! base62 characters of CRC-32 over everything before them. The checksum refuses a typo
//! without a database lookup, and the fixed shape lets leaked-secret scanners match keys. A
//! key is stored only as the SHA-256 of its string; its public id is derived from that hash.
//!
//! A key is 65 bytes long on purpose: HMAC hashes a secret longer than its 64-byte block
//! before use, so an HS256 signature made with the whole key string (a visitor token signed
//! by the customer's backend) equals one made with the key's SHA-256, which is all the server
//! keeps. The server checks visitor tokens without ever holding the key.

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
const SECRET_LEN: usize = 52;
/// Random bytes a key is made from: 320 bits, of which the 52 characters keep over 309.
pub const KEY_RANDOM_BYTES: usize = 40;
const CHECK_LEN: usize = 6;
/// `sf_pub_` + secret + checksum: longer than SHA-256's 64-byte block (see above).
pub const KEY_LEN: usize = PREFIX_LEN + SECRET_LEN + CHECK_LEN;
const _: () = assert!(KEY_LEN > 64);

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
    /// Requests a second for the key, all its callers together; the server's default
    /// when `None`.
    pub rate_per_second: Option<u32>,
    /// Requests a second per client address, for a publishable key (and the visitor tokens
    /// of a server key); the server's default when `None`.
    pub client_rate_per_second: Option<u32>,
}

/// A safelisted GraphQL document.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    /// Hex SHA-256 of the document's exact text: what `persistedQuery.sha256Hash` names.
    pub hash: String,
    pub name: String,
    pub document: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The claims of a visitor token: whom a web page asks for.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VisitorClaims {
    /// The account id.
    pub sub: String,
    /// The contact id, when the visitor is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// Expiry, seconds since 1970.
    pub exp: i64,
}

/// The longest a visitor token may live.
pub const MAX_VISITOR_TOKEN_TTL: chrono::Duration = chrono::Duration::hours(24);

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
    /// How many requests it stands for: 1, or, for refusals that come in floods (401,
    /// 429), every such refusal of its key or address and outcome in its minute.
    pub count: u64,
}

/// Longest operation kept in the audit trail; a longer one is cut, with `...`.
pub const MAX_AUDITED_OPERATION: usize = 200;

impl AuditEvent {
    /// The bucket a refusal counts in: its minute, its key (or else its address) and its
    /// outcome, and for a refusal of a valid key (403, 413) also what it asked for.
    pub fn bucket(&self) -> String {
        let who = self
            .key_id
            .as_deref()
            .or(self.client.as_deref())
            .unwrap_or("-");
        let minute = self.at.timestamp().div_euclid(60) * 60;
        match self.status {
            403 | 413 => format!(
                "{minute}|{who}|{}|{}|{}",
                self.status, self.outcome, self.operation
            ),
            _ => format!("{minute}|{who}|{}|{}", self.status, self.outcome),
        }
    }

    /// Whether the event is a refusal, counted per bucket rather than one row each: a
    /// publishable key may send 1,000 of them a second (and an unknown credential or a
    /// limited caller as many as it likes).
    pub fn counted_per_bucket(&self) -> bool {
        matches!(self.status, 401 | 403 | 413 | 429)
    }
}

/// An operation as the audit trail keeps it: control characters dropped, at most
/// [`MAX_AUDITED_OPERATION`] characters.
pub fn audited_operation(raw: &str) -> String {
    let clean: String = raw.chars().filter(|c| !c.is_control()).collect();
    if clean.chars().count() <= MAX_AUDITED_OPERATION {
        return clean;
    }
    let mut cut: String = clean.chars().take(MAX_AUDITED_OPERATION).collect();
    cut.push_str("...");
    cut
}

/// `width` base62 digits of the big-endian number `bytes` (its low digits when it has more).
fn base62_wide(bytes: &[u8], width: usize) -> String {
    let mut number = bytes.to_vec();
    let mut digits = vec![b'0'; width];
    for slot in digits.iter_mut().rev() {
        // Long division of the whole number by 62; the remainder is the next digit.
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = (value / 62) as u8;
            remainder = value % 62;
        }
        *slot = BASE62[remainder as usize];
    }
    String::from_utf8(digits).unwrap_or_default()
}

/// A new key string of `scope` from [`KEY_RANDOM_BYTES`] random bytes.
pub fn new_key(scope: Scope, random: [u8; KEY_RANDOM_BYTES]) -> String {
    let head = format!("{}{}", scope.prefix(), base62_wide(&random, SECRET_LEN));
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

/// The bytes of a stored (hex) key hash: the HMAC secret visitor tokens are checked with.
pub fn hash_bytes(hash: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if hash.len() != 64 {
        return None;
    }
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(hash.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
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
        let key = new_key(Scope::Server, [7; KEY_RANDOM_BYTES]);
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
            let k = new_key(scope, [1; KEY_RANDOM_BYTES]);
            assert_eq!(parse_key(&k).unwrap().scope, scope);
            assert_ne!(k, new_key(scope, [2; KEY_RANDOM_BYTES]));
        }
        assert!(Scope::Publishable < Scope::Server && Scope::Editor < Scope::Admin);
        assert_eq!(
            hash_bytes(&claim.hash).map(|b| b.to_vec()),
            Some(Sha256::digest(key.as_bytes()).to_vec())
        );
        assert_eq!(hash_bytes("zz"), None);
    }

    #[test]
    fn keys_spread_their_randomness_over_every_character() {
        // The lowest and highest numbers give the extreme digits; a one-bit change at
        // either end of the bytes changes the key.
        let zero = new_key(Scope::Publishable, [0; KEY_RANDOM_BYTES]);
        assert_eq!(
            &zero[PREFIX_LEN..PREFIX_LEN + SECRET_LEN],
            "0".repeat(SECRET_LEN)
        );
        let mut low = [0; KEY_RANDOM_BYTES];
        low[KEY_RANDOM_BYTES - 1] = 61;
        assert!(new_key(Scope::Publishable, low)[..PREFIX_LEN + SECRET_LEN].ends_with('z'));
        let mut high = [0; KEY_RANDOM_BYTES];
        high[0] = 1;
        assert_ne!(new_key(Scope::Publishable, high), zero);
        assert_eq!(base62_wide(&[0, 0, 62], 3), "010");
        assert_eq!(base62_wide(&[1, 0], 2), "48"); // 256 = 4 * 62 + 8
    }
}
