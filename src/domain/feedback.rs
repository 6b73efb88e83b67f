//! The feedback loop's pure parts: what a shown list remembers of how it was ranked (its
//! recommendation id), ranking profile names, experiments and who sees which variant, the
//! statistics of click-through rates, the measures of an offline replay, and which accounts
//! moved forward after reading an asset.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use std::collections::{HashMap, HashSet};

use super::{Factor, Stage, TaxonomyValue, WeightOverrides};

/// The profile the configured weights make; it cannot be stored or replaced.
pub const DEFAULT_PROFILE: &str = "default";
/// Longest profile, experiment and placement names.
pub const MAX_NAME_LEN: usize = 64;
/// At most this many variants in one experiment.
pub const MAX_VARIANTS: usize = 8;
/// Shares must add up to 1 within this.
const SHARE_TOLERANCE: f64 = 1e-6;

/// What a shown list remembers: enough to tie feedback to the profile and variant that
/// ranked it, and to rank the same request again offline (`stagefit replay`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ListContext {
    /// Unix seconds when it was ranked.
    pub at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub profile: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<String>,
    /// `nextContent`'s asset, absent for `recommendations`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The resolved audience, by names (`DECISION`, `TECHNICAL_INTEGRATOR`).
    pub stage: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub industry: Option<String>,
    pub language: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub concerns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// Random characters that make every recommendation id unique, even for one cached list.
pub const NONCE_LEN: usize = 16;
/// Bytes of an item's tag: the first bytes of the SHA-256 of its asset id.
const ITEM_TAG_LEN: usize = 4;
/// Bytes of the HMAC-SHA256 an id keeps (base64url: 22 characters).
const MAC_LEN: usize = 16;
/// Characters of an id after its items: `.`, the nonce, `.`, the MAC.
pub const ID_TAIL_LEN: usize = 1 + NONCE_LEN + 1 + 22;
/// Longest recommendation id accepted: a context with a 512-character query and a hundred
/// items is under 2 KB.
pub const MAX_LIST_ID_BYTES: usize = 4096;

/// Signs and checks recommendation ids with a secret every replica shares.
///
/// An id is `CONTEXT.ITEMS.NONCE.MAC`: the list's context as base64url JSON, a 4-byte tag
/// of each shown asset in position order (base64url), 16 hex characters of randomness, and
/// the first 16 bytes of HMAC-SHA256 over everything before the last `.`. Only the server
/// makes ids that open, so an id names a list that was shown, to whom, when, and which
/// asset sat at which position. The tags are keyed too (HMAC of the asset id): without
/// the secret, finding another id with an asset's tag takes some 2^32 requests, not the
/// seconds four bytes of a plain hash take offline.
pub struct ListSigner {
    key: ring::hmac::Key,
}

/// A recommendation id that opened: its context and its items' tags (which
/// [`ListSigner::place`] reads).
#[derive(Clone, Debug, PartialEq)]
pub struct SignedList {
    pub context: ListContext,
    items: Vec<[u8; ITEM_TAG_LEN]>,
}

impl SignedList {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl ListSigner {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
        }
    }

    /// An asset's tag: the first bytes of an HMAC of its id, apart from an id's MAC by its
    /// prefix.
    fn item_tag(&self, asset: &str) -> [u8; ITEM_TAG_LEN] {
        let mut context = ring::hmac::Context::with_key(&self.key);
        context.update(b"item\0");
        context.update(asset.as_bytes());
        let digest = context.sign();
        let mut tag = [0u8; ITEM_TAG_LEN];
        tag.copy_from_slice(&digest.as_ref()[..ITEM_TAG_LEN]);
        tag
    }

    /// Where `asset` sat in `list` (1 the first): at `position` when one is given, else
    /// wherever it was; `None` when it was not there.
    pub fn place(&self, list: &SignedList, asset: &str, position: Option<u32>) -> Option<u32> {
        let tag = self.item_tag(asset);
        match position {
            Some(p) => (p >= 1 && list.items.get(p as usize - 1) == Some(&tag)).then_some(p),
            None => list
                .items
                .iter()
                .position(|t| *t == tag)
                .and_then(|i| u32::try_from(i + 1).ok()),
        }
    }

    /// The part of `id` its MAC covers, when the MAC is right (compared in constant time).
    fn verified<'i>(&self, id: &'i str) -> Option<&'i str> {
        let (signed, mac) = id.rsplit_once('.')?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        let expected = ring::hmac::sign(&self.key, signed.as_bytes());
        (mac.len() == MAC_LEN
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                &expected.as_ref()[..MAC_LEN],
                mac.as_slice(),
            )))
        .then_some(signed)
    }

    fn mac(&self, signed: &str) -> String {
        let tag = ring::hmac::sign(&self.key, signed.as_bytes());
        URL_SAFE_NO_PAD.encode(&tag.as_ref()[..MAC_LEN])
    }

    /// The id of a list shown with `context` whose items are `items`, in order.
    pub fn issue<'a>(
        &self,
        context: &ListContext,
        items: impl IntoIterator<Item = &'a str>,
        nonce: &str,
    ) -> String {
        let json = serde_json::to_vec(context).unwrap_or_default();
        let tags: Vec<u8> = items
            .into_iter()
            .flat_map(|asset| self.item_tag(asset))
            .collect();
        let signed = format!(
            "{}.{}.{nonce}",
            URL_SAFE_NO_PAD.encode(json),
            URL_SAFE_NO_PAD.encode(tags)
        );
        let mac = self.mac(&signed);
        format!("{signed}.{mac}")
    }

    /// The same id with another nonce, signed again; same length. `None` for anything that
    /// is not an unaltered id of this signer: a cached answer may hold other text under the
    /// name `recommendationId` (an alias of any string field), which must neither be
    /// signed nor cut.
    pub fn renew(&self, id: &str, nonce: &str) -> Option<String> {
        if nonce.len() != NONCE_LEN
            || id.len() < ID_TAIL_LEN
            || id.len() > MAX_LIST_ID_BYTES
            || !id.is_ascii()
        {
            return None;
        }
        self.verified(id)?;
        let body = &id[..id.len() - ID_TAIL_LEN];
        let signed = format!("{body}.{nonce}");
        let mac = self.mac(&signed);
        Some(format!("{signed}.{mac}"))
    }

    /// Opens an id made by [`ListSigner::issue`] with this secret: its size, its signature
    /// (compared in constant time), then its parts.
    pub fn open(&self, id: &str) -> Result<SignedList, String> {
        if id.len() > MAX_LIST_ID_BYTES {
            return Err(format!(
                "recommendationId is {} bytes; stagefit gives out ids of at most {MAX_LIST_ID_BYTES}",
                id.len()
            ));
        }
        let bad =
            || "recommendationId is not one this stagefit gave out (or it was altered)".to_owned();
        let signed = self.verified(id).ok_or_else(bad)?;
        let mut parts = signed.split('.');
        let (Some(context), Some(items), Some(nonce), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if nonce.len() != NONCE_LEN {
            return Err(bad());
        }
        let json = URL_SAFE_NO_PAD.decode(context).map_err(|_| bad())?;
        let context: ListContext = serde_json::from_slice(&json).map_err(|_| bad())?;
        let tags = URL_SAFE_NO_PAD.decode(items).map_err(|_| bad())?;
        if tags.len() % ITEM_TAG_LEN != 0 {
            return Err(bad());
        }
        let items = tags
            .chunks_exact(ITEM_TAG_LEN)
            .map(|c| {
                let mut tag = [0u8; ITEM_TAG_LEN];
                tag.copy_from_slice(c);
                tag
            })
            .collect();
        Ok(SignedList { context, items })
    }
}

impl ListContext {
    /// The context of an id, read without checking its signature: enough for the rule
    /// table to see whose list it claims to be, and for events stored with an id to show
    /// it. Whatever records against an id opens it with [`ListSigner::open`] first. Ids
    /// stored before they were signed (`CONTEXT.NONCE`) read too.
    pub fn from_id(id: &str) -> Result<ListContext, String> {
        let bad = || {
            format!(
                "recommendationId {:?} is not one stagefit gave out",
                shorten(id)
            )
        };
        if id.len() > MAX_LIST_ID_BYTES || !matches!(id.split('.').count(), 2 | 4) {
            return Err(bad());
        }
        let context = id.split('.').next().ok_or_else(bad)?;
        let json = URL_SAFE_NO_PAD.decode(context).map_err(|_| bad())?;
        serde_json::from_slice(&json).map_err(|_| bad())
    }
}

/// At most 40 characters of a caller's text, for a message.
fn shorten(text: &str) -> String {
    let mut short: String = text.chars().take(40).collect();
    if short.len() < text.len() {
        short.push_str("...");
    }
    short
}

/// The key a list is stored under: a digest of its id, short and fixed in length.
pub fn list_key(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Profile, experiment and placement names: 1 to 64 of `a-z 0-9 - _`.
pub fn parse_name(what: &str, raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "{what} {raw:?}: use 1 to {MAX_NAME_LEN} lowercase letters, digits, '-' or '_'"
        ));
    }
    Ok(name.to_owned())
}

/// A profile's weights as stored: the factors it sets, by their setting names.
pub fn weights_to_json(weights: &WeightOverrides) -> String {
    let map: serde_json::Map<String, serde_json::Value> = Factor::ALL
        .into_iter()
        .filter_map(|f| Some((f.key().to_owned(), weights.get(f)?.into())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

pub fn weights_from_json(raw: &str) -> Result<WeightOverrides, String> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(raw).map_err(|e| format!("stored weights: {e}"))?;
    let mut weights = WeightOverrides::default();
    for (key, value) in map {
        let factor =
            Factor::from_key(&key).ok_or_else(|| format!("stored weights: no factor {key:?}"))?;
        let value = value
            .as_f64()
            .ok_or_else(|| format!("stored weights: {key} is not a number"))?;
        weights.set(factor, value);
    }
    Ok(weights)
}

/// A named weight set.
#[derive(Clone, Debug, PartialEq)]
pub struct RankingProfile {
    pub name: String,
    pub description: String,
    /// What it changes from the configured weights.
    pub weights: WeightOverrides,
    pub updated_at: i64,
}

/// One arm of an experiment: a profile and the share of subjects that see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    pub profile: String,
    pub share: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Experiment {
    pub name: String,
    pub placement: String,
    /// The first is the control the others are compared with.
    pub variants: Vec<Variant>,
    pub started_at: i64,
    pub stopped_at: Option<i64>,
}

impl Experiment {
    /// Checks the variants: 2 to 8, distinct profiles, shares in (0, 1] adding up to 1.
    pub fn check_variants(variants: &[Variant]) -> Result<(), String> {
        if variants.len() < 2 || variants.len() > MAX_VARIANTS {
            return Err(format!(
                "variants: give 2 to {MAX_VARIANTS}, got {}",
                variants.len()
            ));
        }
        for (i, v) in variants.iter().enumerate() {
            if !(v.share.is_finite() && v.share > 0.0 && v.share <= 1.0) {
                return Err(format!(
                    "variants[{i}].share must be above 0 and at most 1, got {}",
                    v.share
                ));
            }
            if variants[..i].iter().any(|w| w.profile == v.profile) {
                return Err(format!(
                    "variants[{i}].profile {:?} is already a variant",
                    v.profile
                ));
            }
        }
        let total: f64 = variants.iter().map(|v| v.share).sum();
        if (total - 1.0).abs() > SHARE_TOLERANCE {
            return Err(format!(
                "variants: shares must add up to 1, they add up to {total}"
            ));
        }
        Ok(())
    }

    /// The variant `subject` (an account or contact id) sees: a hash of the experiment's
    /// name and the subject placed on the shares. The same subject always gets the same
    /// variant, on every replica, with nothing stored.
    pub fn assign(&self, subject: &str) -> &Variant {
        let point = unit_hash(&self.name, subject);
        let mut edge = 0.0;
        for v in &self.variants {
            edge += v.share;
            if point < edge {
                return v;
            }
        }
        // Rounding left the point past the last edge.
        &self.variants[self.variants.len() - 1]
    }
}

/// A uniform number in [0, 1) from the experiment's name and the subject.
fn unit_hash(experiment: &str, subject: &str) -> f64 {
    let mut h = Sha256::new();
    h.update(experiment.as_bytes());
    h.update([0u8]);
    h.update(subject.as_bytes());
    let digest = h.finalize();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    // 53 bits: exactly representable.
    (u64::from_be_bytes(head) >> 11) as f64 / (1u64 << 53) as f64
}

/// The 95% Wilson score interval of a proportion `k / n`; (0, 0) when `n` is 0.
pub fn wilson_interval(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 0.0);
    }
    let z = Z95;
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let denominator = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denominator;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denominator;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The two-sided 95% point of the normal distribution.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The pooled two-proportion z-test of `b` against `a` (clicks, impressions each): the
/// difference of rates `b - a`, z, and the two-sided p-value. `None` when either side has
/// no impressions or the pooled rate is 0 or 1 (nothing to test).
pub fn two_proportion_test(a: (u64, u64), b: (u64, u64)) -> Option<(f64, f64, f64)> {
    let (ka, na, kb, nb) = (a.0 as f64, a.1 as f64, b.0 as f64, b.1 as f64);
    if na == 0.0 || nb == 0.0 {
        return None;
    }
    let pooled = (ka + kb) / (na + nb);
    let se = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    if se == 0.0 {
        return None;
    }
    let difference = kb / nb - ka / na;
    let z = difference / se;
    Some((difference, z, 2.0 * (1.0 - normal_cdf(z.abs()))))
}

/// The standard normal distribution function, through erf (W. J. Cody's rational
/// approximations are overkill here; Abramowitz and Stegun 7.1.26 is good to 1.5e-7).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

fn erf(x: f64) -> f64 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    sign * (1.0 - poly * (-x * x).exp())
}

/// How a ranked list did against what the reader chose: reciprocal rank of the first
/// relevant asset, NDCG over the first five, and the share of relevant assets in the first
/// ten. `relevance` grades an asset (0: not chosen); `ranked` is best first.
pub fn list_measures(ranked: &[String], relevance: impl Fn(&str) -> f64) -> ListMeasures {
    let grades: Vec<f64> = ranked.iter().map(|id| relevance(id)).collect();
    let reciprocal_rank = grades
        .iter()
        .position(|g| *g > 0.0)
        .map_or(0.0, |i| 1.0 / (i + 1) as f64);
    let dcg = |gs: &[f64]| -> f64 {
        gs.iter()
            .take(5)
            .enumerate()
            .map(|(i, g)| (2f64.powf(*g) - 1.0) / ((i + 2) as f64).log2())
            .sum()
    };
    ListMeasures {
        reciprocal_rank,
        dcg5: dcg(&grades),
        found_in_10: grades.iter().take(10).filter(|g| **g > 0.0).count(),
    }
}

/// Per list: the raw sums a replay averages over its lists.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ListMeasures {
    pub reciprocal_rank: f64,
    pub dcg5: f64,
    pub found_in_10: usize,
}

/// NDCG@5's ideal: the relevant grades sorted, best first.
pub fn ideal_dcg5(mut grades: Vec<f64>) -> f64 {
    grades.sort_by(|a, b| b.total_cmp(a));
    grades
        .iter()
        .take(5)
        .enumerate()
        .map(|(i, g)| (2f64.powf(*g) - 1.0) / ((i + 2) as f64).log2())
        .sum()
}

/// Which profile ranks a request, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    pub profile: String,
    pub overrides: WeightOverrides,
    pub experiment: Option<String>,
    pub variant: Option<String>,
}

impl Choice {
    /// The configured weights, chosen by nothing.
    pub fn default_profile() -> Self {
        Choice {
            profile: DEFAULT_PROFILE.to_owned(),
            overrides: WeightOverrides::default(),
            experiment: None,
            variant: None,
        }
    }
}

/// A shown list and what was done with it, as a bulk load writes it (the benchmarks'
/// synthetic feedback): the context it was ranked with, its items with their positions,
/// and the items clicked (with position, and whether the click completed).
#[derive(Clone, Debug)]
pub struct LoggedFeedback {
    pub context: ListContext,
    pub items: Vec<(String, u32)>,
    pub clicked: Vec<(String, u32, bool)>,
}

/// A click-through rate: `k` of `n`, 0 when nothing was shown.
pub fn rate(k: u64, n: u64) -> f64 {
    if n == 0 { 0.0 } else { k as f64 / n as f64 }
}

/// "Moved forward": the account's stage advanced within this many days after engaging.
pub const MOVED_FORWARD_DAYS: i64 = 30;
/// "Moved forward" reads at most the newest this many events of the span, so its cost has
/// a ceiling whatever the traffic (about a second of one core).
pub const MOVED_FORWARD_EVENTS: u64 = 500_000;

/// An event as "moved forward" reads it: (account, asset, Unix seconds, cohort). The
/// cohort ends with the stage the account was at (`industry|STAGE`).
pub type JourneyEvent = (String, String, i64, String);

/// Per asset, the accounts whose journey stage advanced within [`MOVED_FORWARD_DAYS`]
/// after they engaged with it (a later event of theirs was recorded at a later stage).
/// Each account counts once per asset; `events` come in the order they were recorded
/// (which orders events of the same second).
pub fn moved_forward_counts(mut events: Vec<JourneyEvent>) -> HashMap<String, u64> {
    // Stable: events of one account and second keep their recorded order.
    events.sort_by(|a, b| a.0.cmp(&b.0).then(a.2.cmp(&b.2)));
    let stage_of = |cohort: &str| {
        cohort
            .rsplit('|')
            .next()
            .and_then(|s| Stage::parse(s).ok())
            .map(|s| s.ordinal())
    };
    let window = MOVED_FORWARD_DAYS * 86_400;
    let mut counted: HashSet<(&str, &str)> = HashSet::new();
    let mut out: HashMap<String, u64> = HashMap::new();
    for slice in events.chunk_by(|a, b| a.0 == b.0) {
        for (i, (account, asset, at, cohort)) in slice.iter().enumerate() {
            let Some(stage) = stage_of(cohort) else {
                continue;
            };
            if counted.contains(&(account.as_str(), asset.as_str())) {
                continue;
            }
            let advanced = slice[i + 1..]
                .iter()
                .take_while(|later| later.2 <= at + window)
                .any(|later| stage_of(&later.3).is_some_and(|s| s > stage));
            if advanced {
                counted.insert((account.as_str(), asset.as_str()));
                *out.entry(asset.clone()).or_default() += 1;
            }
        }
    }
    out
}

/// New impressions per list key, from the (list key, asset) pairs a write inserted.
pub fn count_per_list(inserted: &[(String, String)]) -> HashMap<&str, u64> {
    let mut counts = HashMap::new();
    for (key, _) in inserted {
        *counts.entry(key.as_str()).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(account: &str, asset: &str, day: i64, stage: &str) -> JourneyEvent {
        (
            account.into(),
            asset.into(),
            day * 86_400,
            format!("health|{stage}"),
        )
    }

    #[test]
    fn an_account_moves_forward_once_per_asset_within_the_window() {
        let events = vec![
            // acme reads a and b at awareness, then a again, and reaches consideration on
            // day 10: a and b both moved it forward, a counted once.
            event("acme", "b", 1, "AWARENESS"),
            event("acme", "a", 0, "AWARENESS"),
            event("acme", "a", 2, "AWARENESS"),
            event("acme", "c", 10, "CONSIDERATION"),
            // beta reads a, advances only after the 30-day window: not counted.
            event("beta", "a", 0, "AWARENESS"),
            event("beta", "d", 31, "DECISION"),
            // gamma moves back: not forward.
            event("gamma", "a", 0, "DECISION"),
            event("gamma", "e", 1, "AWARENESS"),
            // A cohort with no stage counts for nothing.
            ("delta".into(), "a".into(), 0, "health|".into()),
            event("delta", "f", 1, "DECISION"),
        ];
        let counts = moved_forward_counts(events);
        assert_eq!(counts.get("a"), Some(&1));
        assert_eq!(counts.get("b"), Some(&1));
        assert_eq!(counts.get("c"), None);
        assert_eq!(counts.len(), 2, "{counts:?}");
    }

    #[test]
    fn two_accounts_moved_forward_by_one_asset_count_twice() {
        let events = vec![
            event("x", "a", 0, "AWARENESS"),
            event("y", "a", 0, "CONSIDERATION"),
            event("x", "z", 29, "DECISION"),
            event("y", "z", 5, "DECISION"),
        ];
        assert_eq!(moved_forward_counts(events).get("a"), Some(&2));
    }

    #[test]
    fn new_impressions_count_per_list() {
        let inserted = vec![
            ("l1".to_owned(), "a".to_owned()),
            ("l2".to_owned(), "a".to_owned()),
            ("l1".to_owned(), "b".to_owned()),
        ];
        let counts = count_per_list(&inserted);
        assert_eq!(counts.get("l1"), Some(&2));
        assert_eq!(counts.get("l2"), Some(&1));
        assert_eq!(rate(1, 4), 0.25);
        assert_eq!(rate(3, 0), 0.0);
    }

    #[test]
    fn an_id_carries_its_context_and_items_and_opens_only_unaltered() {
        let ctx = ListContext {
            at: 1_700_000_000,
            account: Some("acme".into()),
            profile: "homepage".into(),
            experiment: Some("hp".into()),
            variant: Some("homepage".into()),
            stage: "DECISION".into(),
            language: "en".into(),
            query: Some("pci. compliance".into()),
            ..Default::default()
        };
        let signer = ListSigner::new(b"a secret of the test");
        let id = signer.issue(&ctx, ["guide", "pricing-sheet"], "0123456789abcdef");
        let opened = signer.open(&id).unwrap();
        assert_eq!(opened.context, ctx);
        assert_eq!(opened.len(), 2);
        assert_eq!(ListContext::from_id(&id).unwrap(), ctx);
        assert_eq!(signer.place(&opened, "guide", Some(1)), Some(1));
        assert_eq!(signer.place(&opened, "pricing-sheet", Some(2)), Some(2));
        assert_eq!(signer.place(&opened, "pricing-sheet", None), Some(2));
        assert_eq!(signer.place(&opened, "guide", Some(2)), None);
        assert_eq!(signer.place(&opened, "other", None), None);
        assert_eq!(signer.place(&opened, "guide", Some(0)), None);
        assert_eq!(signer.place(&opened, "guide", Some(3)), None);
        // Tags are keyed: another secret tags the same asset otherwise.
        assert_ne!(
            signer.item_tag("guide"),
            ListSigner::new(b"another secret").item_tag("guide")
        );

        // Another nonce: same length, opens, another id; only an unaltered id is renewed,
        // and text that is not one (any string a cached answer holds under that name) is
        // left alone, not cut and not signed.
        let renewed = signer.renew(&id, "fedcba9876543210").unwrap();
        let mut altered = id.clone();
        altered.replace_range(0..1, "x");
        assert_eq!(signer.renew(&altered, "fedcba9876543210"), None);
        let unicode = format!("{}é{}", "a".repeat(20), "b".repeat(ID_TAIL_LEN));
        assert_eq!(signer.renew(&unicode, "fedcba9876543210"), None);
        assert_eq!(
            signer.renew(&"z".repeat(ID_TAIL_LEN + 10), "fedcba9876543210"),
            None
        );
        assert_eq!(renewed.len(), id.len());
        assert_ne!(renewed, id);
        assert_eq!(signer.open(&renewed).unwrap(), opened);

        // Any change, another secret, or an unsigned id of the old shape: refused.
        let other = ListSigner::new(b"another secret");
        assert!(other.open(&id).is_err());
        let forged_ctx = ListContext {
            account: Some("globex".into()),
            ..ctx.clone()
        };
        let forged = format!(
            "{}{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_ctx).unwrap()),
            &id[id.find('.').unwrap()..]
        );
        for bad in [
            "",
            "x",
            "abc.0123456789abcdef",
            &id[..id.len() - 1],
            &id[1..],
            &forged,
            &format!("{id}A"),
            &"A".repeat(MAX_LIST_ID_BYTES + 1),
        ] {
            assert!(signer.open(bad).is_err(), "{bad}");
        }
        assert_eq!(list_key(&id).len(), 32);
    }

    #[test]
    fn assignment_is_stable_and_follows_the_shares() {
        let e = Experiment {
            name: "hp".into(),
            placement: "home".into(),
            variants: vec![
                Variant {
                    profile: "a".into(),
                    share: 0.2,
                },
                Variant {
                    profile: "b".into(),
                    share: 0.8,
                },
            ],
            started_at: 0,
            stopped_at: None,
        };
        let a = (0..10_000)
            .filter(|i| e.assign(&format!("visitor-{i}")).profile == "a")
            .count();
        assert!((1_700..=2_300).contains(&a), "{a}");
        assert_eq!(e.assign("v-1"), e.assign("v-1"));
    }

    #[test]
    fn statistics_match_hand_computed_values() {
        // 10 of 100: Wilson centre (0.1 + 1.9208/100)/1.038415, half-width 0.0578.
        let (lo, hi) = wilson_interval(10, 100);
        assert!((lo - 0.05522).abs() < 1e-4, "{lo}");
        assert!((hi - 0.17437).abs() < 1e-4, "{hi}");
        // 10/100 against 20/100: pooled 0.15, se 0.050498, z 1.98030, p 0.04767.
        let (d, z, p) = two_proportion_test((10, 100), (20, 100)).unwrap();
        assert!((d - 0.1).abs() < 1e-12);
        assert!((z - 1.980_295).abs() < 1e-5, "{z}");
        assert!((p - 0.047_67).abs() < 1e-4, "{p}");
        assert!(two_proportion_test((0, 0), (1, 2)).is_none());
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
    }

    #[test]
    fn measures_of_a_list() {
        let ranked: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let m = list_measures(&ranked, |id| if id == "b" { 1.0 } else { 0.0 });
        assert_eq!(m.reciprocal_rank, 0.5);
        assert!((m.dcg5 - 1.0 / 3f64.log2()).abs() < 1e-12);
        assert_eq!(m.found_in_10, 1);
        assert_eq!(ideal_dcg5(vec![1.0]), 1.0);
    }
}
