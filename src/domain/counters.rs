//! Engagement counters kept as events arrive: popularity per cohort and asset, and
//! co-reads ("readers of this also read") per asset pair.
//!
//! Weights are in *growing units*: an event at time `t` weighs its depth times
//! `2^((t - COUNTER_EPOCH) / half life)`. A sum of such weights never needs a rescan to
//! decay: multiplied by [`decay_at`] of the reading moment it is the sum of the events'
//! depths halved once per half life of their age, the same figure a full recompute gives.
//! With a 45-day half life the units stay finite in an `f64` for about 120 years past the
//! epoch.
//!
//! What one account adds is kept per (account, asset, cohort) as a *share*: its heaviest
//! event there, so an account counts once per asset (a share only grows: a later read
//! outweighs an older one once the older has decayed below it). The first read of an
//! asset by an account pairs it with the account's [`CO_READ_RECENT`] latest earlier
//! reads within [`CO_READ_WINDOW_DAYS`]: "read A, then B". The same rule, run over an
//! account's stored shares, says what it added ([`account_contribution`]), so erasing an
//! account subtracts exactly its part (for events recorded in time order; see the note
//! there).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{IndustrySlug, Stage, TaxonomyValue};

/// Popularity and co-reads halve every this many days, so yesterday's favourites do not
/// bury new assets for ever.
pub const COUNTER_HALF_LIFE_DAYS: f64 = 45.0;
/// 2026-01-01T00:00:00Z: where growing units are 1.
pub const COUNTER_EPOCH: i64 = 1_767_225_600;
/// A read pairs with earlier reads of the same account at most this many days before it.
pub const CO_READ_WINDOW_DAYS: i64 = 30;
/// A first read pairs with at most this many of the account's latest earlier reads.
pub const CO_READ_RECENT: usize = 5;
/// Neighbours kept per asset and co-read cohort: the heaviest (readers ask for fewer).
pub const CO_READ_KEPT: usize = 50;
/// Cohort key of co-reads across every industry (and of accounts with none).
pub const ANY_INDUSTRY: &str = "*";

/// The growing-units factor of time `at` (Unix seconds).
pub fn growth(at: i64, half_life_days: f64) -> f64 {
    ((at - COUNTER_EPOCH) as f64 / (half_life_days * 86_400.0)).exp2()
}

/// The factor that turns growing units back into weights as of `now`.
pub fn decay_at(now: i64, half_life_days: f64) -> f64 {
    1.0 / growth(now, half_life_days)
}

/// The cohort an account at `stage` in `industry` belongs to.
pub fn cohort_key(industry: Option<&IndustrySlug>, stage: Stage) -> String {
    format!(
        "{}|{}",
        industry.map_or(ANY_INDUSTRY, IndustrySlug::root),
        stage.name()
    )
}

/// The popularity cohorts an event of cohort `industry|STAGE` counts in: its own and, for
/// an industry, the stage's cohort across every industry (`*|STAGE`).
pub fn counted_cohorts(cohort: &str) -> Vec<String> {
    let mut all = vec![cohort.to_owned()];
    if let Some((industry, stage)) = cohort.split_once('|')
        && industry != ANY_INDUSTRY
    {
        all.push(format!("{ANY_INDUSTRY}|{stage}"));
    }
    all
}

/// The co-read cohorts of a read in popularity cohort `industry|STAGE`: every industry,
/// and its own industry when it has one.
pub fn co_read_cohorts(cohort: &str) -> Vec<String> {
    let industry = cohort.split_once('|').map_or(cohort, |(i, _)| i);
    let mut all = vec![ANY_INDUSTRY.to_owned()];
    if industry != ANY_INDUSTRY && !industry.is_empty() {
        all.push(industry.to_owned());
    }
    all
}

/// One event as the counters see it.
#[derive(Clone, Debug, PartialEq)]
pub struct CountedRead {
    pub account: String,
    pub asset: String,
    /// The popularity cohort the event was recorded in (`industry|STAGE`).
    pub cohort: String,
    /// The event kind's depth (a view 1, deeper engagement more).
    pub depth: f64,
    /// Unix seconds.
    pub at: i64,
}

/// A stored share (see the module).
#[derive(Clone, Debug, PartialEq)]
pub struct Share {
    pub account: String,
    pub asset: String,
    pub cohort: String,
    pub weight: f64,
    pub first_at: i64,
}

/// An addition to a counter: weight in growing units and accounts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Delta {
    pub weight: f64,
    pub accounts: i64,
}

impl std::ops::AddAssign for Delta {
    fn add_assign(&mut self, other: Delta) {
        self.weight += other.weight;
        self.accounts += other.accounts;
    }
}

/// What a batch of events changes. Keys are ordered, so every writer takes the rows'
/// locks in the same order.
#[derive(Debug, Default, PartialEq)]
pub struct CounterPlan {
    /// Shares to insert or raise, as they will be stored.
    pub shares: Vec<Share>,
    /// (cohort, asset) -> addition.
    pub counts: BTreeMap<(String, String), Delta>,
    /// (asset, cohort, next asset) -> addition.
    pub co_reads: BTreeMap<(String, String, String), Delta>,
}

impl CounterPlan {
    pub fn is_empty(&self) -> bool {
        self.shares.is_empty() && self.counts.is_empty() && self.co_reads.is_empty()
    }
}

/// An account's reads as the co-read rule sees them: each asset once, at its first read,
/// with the cohort of that read. Names are borrowed from the reads and shares planned.
#[derive(Default)]
struct Reads<'a> {
    /// asset -> (first read, its cohort).
    first: HashMap<&'a str, (i64, &'a str)>,
}

impl<'a> Reads<'a> {
    fn from_shares(shares: impl IntoIterator<Item = &'a Share>) -> Self {
        let mut reads = Reads::default();
        for s in shares {
            reads.note(&s.asset, s.first_at, &s.cohort);
        }
        reads
    }

    /// Keeps the earliest read of `asset`; between two cohorts of the same moment, the one
    /// of an industry (it names more).
    fn note(&mut self, asset: &'a str, at: i64, cohort: &'a str) {
        match self.first.get_mut(asset) {
            Some(first) => {
                let industry = !cohort.starts_with(ANY_INDUSTRY);
                if at < first.0 || (at == first.0 && industry) {
                    *first = (at, cohort);
                }
            }
            None => {
                self.first.insert(asset, (at, cohort));
            }
        }
    }

    /// The reads a first read of `asset` at `at` pairs with: read before it (by time, then
    /// id), within the window, the latest [`CO_READ_RECENT`].
    fn sources(&self, asset: &str, at: i64) -> Vec<&'a str> {
        let mut before: Vec<(i64, &'a str)> = self
            .first
            .iter()
            .filter(|(a, (t, _))| {
                (*t, **a) < (at, asset) && at - *t <= CO_READ_WINDOW_DAYS * 86_400
            })
            .map(|(a, (t, _))| (*t, *a))
            .collect();
        before.sort_unstable_by(|x, y| y.cmp(x));
        before.truncate(CO_READ_RECENT);
        before.into_iter().map(|(_, a)| a).collect()
    }
}

/// The counted and co-read cohorts of each cohort a plan meets, worked out once.
#[derive(Default)]
pub struct CohortsOf(HashMap<String, (Vec<String>, Vec<String>)>);

impl CohortsOf {
    pub fn new<'a>(cohorts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut all = CohortsOf::default();
        for c in cohorts {
            if !all.0.contains_key(c) {
                all.0
                    .insert(c.to_owned(), (counted_cohorts(c), co_read_cohorts(c)));
            }
        }
        all
    }

    fn counted(&self, cohort: &str) -> &[String] {
        self.0.get(cohort).map_or(&[], |c| &c.0)
    }

    fn co_read(&self, cohort: &str) -> &[String] {
        self.0.get(cohort).map_or(&[], |c| &c.1)
    }
}

/// Where a plan's additions go: summed by key for [`plan`], or straight into a bulk
/// load's interned totals. Names borrow from the reads, the shares and the cohorts planned.
pub trait CounterSink<'a> {
    /// Adds to the popularity of `asset` in `cohort`.
    fn count(&mut self, cohort: &'a str, asset: &'a str, delta: Delta);
    /// Adds to the co-read "read `asset`, then `next`" in `cohort`.
    fn co_read(&mut self, asset: &'a str, cohort: &'a str, next: &'a str, delta: Delta);
}

/// Sums by borrowed key, turned into a plan's owned and ordered keys once at the end.
#[derive(Default)]
struct Sums<'a> {
    counts: HashMap<(&'a str, &'a str), Delta>,
    co_reads: HashMap<(&'a str, &'a str, &'a str), Delta>,
}

impl<'a> CounterSink<'a> for Sums<'a> {
    fn count(&mut self, cohort: &'a str, asset: &'a str, delta: Delta) {
        *self.counts.entry((cohort, asset)).or_default() += delta;
    }

    fn co_read(&mut self, asset: &'a str, cohort: &'a str, next: &'a str, delta: Delta) {
        *self.co_reads.entry((asset, cohort, next)).or_default() += delta;
    }
}

impl Sums<'_> {
    fn into_plan(self, shares: Vec<Share>) -> CounterPlan {
        CounterPlan {
            shares,
            counts: self
                .counts
                .into_iter()
                .map(|((c, a), d)| ((c.to_owned(), a.to_owned()), d))
                .collect(),
            co_reads: self
                .co_reads
                .into_iter()
                .map(|((a, c, n), d)| ((a.to_owned(), c.to_owned(), n.to_owned()), d))
                .collect(),
        }
    }
}

/// What `reads` change, given the stored shares of their accounts: every share of an
/// (account, asset) pair the batch names, and the account's shares recent enough to pair
/// with (see [`CO_READ_WINDOW_DAYS`]). Reads of one account are taken in time order.
pub fn plan(reads: &[CountedRead], stored: &[Share], half_life_days: f64) -> CounterPlan {
    let cohorts = CohortsOf::new(reads.iter().map(|r| r.cohort.as_str()));
    let mut sums = Sums::default();
    let shares = plan_each(reads, stored, &cohorts, half_life_days, &mut sums);
    sums.into_plan(shares)
}

/// [`plan`] with its additions handed to `sink` as they are found (not summed), and the
/// shares returned. `cohorts` must know the cohort of every read.
pub fn plan_each<'a>(
    reads: &'a [CountedRead],
    stored: &'a [Share],
    cohorts: &'a CohortsOf,
    half_life_days: f64,
    sink: &mut impl CounterSink<'a>,
) -> Vec<Share> {
    let mut by_account: BTreeMap<&str, Vec<&CountedRead>> = BTreeMap::new();
    for r in reads {
        by_account.entry(&r.account).or_default().push(r);
    }
    let mut stored_of: HashMap<&str, Vec<&Share>> = HashMap::new();
    for s in stored {
        stored_of.entry(&s.account).or_default().push(s);
    }
    let mut shares: Vec<Share> = Vec::new();
    for (account, mut events) in by_account {
        events.sort_by(|a, b| (a.at, &a.asset).cmp(&(b.at, &b.asset)));
        let own = stored_of.remove(account).unwrap_or_default();
        // (asset, cohort) -> (weight, first read), as stored and then as planned.
        let mut known: HashMap<(&str, &str), (f64, i64)> = own
            .iter()
            .map(|s| {
                (
                    (s.asset.as_str(), s.cohort.as_str()),
                    (s.weight, s.first_at),
                )
            })
            .collect();
        // The shares this account's events raise: (asset, cohort) -> (weight, first read).
        let mut raised: BTreeMap<(&str, &str), (f64, i64)> = BTreeMap::new();
        let mut read: HashSet<&str> = own.iter().map(|s| s.asset.as_str()).collect();
        let mut history = Reads::from_shares(own.iter().copied());
        for e in events {
            let w = e.depth * growth(e.at, half_life_days);
            for cohort in cohorts.counted(&e.cohort) {
                let key = (e.asset.as_str(), cohort.as_str());
                let (raise, first_at, new) = match known.get(&key) {
                    None => (w, e.at, 1),
                    Some(&(old, _)) if w <= old => continue,
                    Some(&(old, first)) => (w - old, first, 0),
                };
                known.insert(key, (w, first_at));
                sink.count(
                    key.1,
                    key.0,
                    Delta {
                        weight: raise,
                        accounts: new,
                    },
                );
                raised.insert(key, (w, first_at));
            }
            if read.insert(&e.asset) {
                let unit = Delta {
                    weight: growth(e.at, half_life_days),
                    accounts: 1,
                };
                for source in history.sources(&e.asset, e.at) {
                    for cohort in cohorts.co_read(&e.cohort) {
                        sink.co_read(source, cohort, &e.asset, unit);
                    }
                }
                history.note(&e.asset, e.at, &e.cohort);
            }
        }
        shares.extend(
            raised
                .into_iter()
                .map(|((asset, cohort), (weight, first_at))| Share {
                    account: account.to_owned(),
                    asset: asset.to_owned(),
                    cohort: cohort.to_owned(),
                    weight,
                    first_at,
                }),
        );
    }
    shares
}

/// What an account's stored shares added to the counters: the counts of each share, and
/// the co-reads its first reads made by the rule of [`plan`]. Subtracted at erasure.
///
/// Exact when the account's events were recorded in time order. An event recorded after
/// a later one of the same account (an import of old history) paired with the reads
/// before it, not with those that followed: the contribution computed here then differs
/// for those pairs, and the erasure clamps counters at zero.
pub fn account_contribution(shares: &[Share], half_life_days: f64) -> CounterPlan {
    let cohorts = CohortsOf::new(shares.iter().map(|s| s.cohort.as_str()));
    let mut sums = Sums::default();
    for s in shares {
        let delta = Delta {
            weight: s.weight,
            accounts: 1,
        };
        sums.count(&s.cohort, &s.asset, delta);
    }
    let reads = Reads::from_shares(shares);
    for (asset, (at, cohort)) in &reads.first {
        let unit = Delta {
            weight: growth(*at, half_life_days),
            accounts: 1,
        };
        for source in reads.sources(asset, *at) {
            for c in cohorts.co_read(cohort) {
                sums.co_read(source, c, asset, unit);
            }
        }
    }
    sums.into_plan(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HL: f64 = 45.0;
    const DAY: i64 = 86_400;

    fn read(account: &str, asset: &str, cohort: &str, depth: f64, at: i64) -> CountedRead {
        CountedRead {
            account: account.into(),
            asset: asset.into(),
            cohort: cohort.into(),
            depth,
            at,
        }
    }

    /// Applies a plan to stored shares, as the store does.
    fn apply(stored: &mut Vec<Share>, plan: &CounterPlan) {
        for s in &plan.shares {
            stored
                .retain(|o| (&o.account, &o.asset, &o.cohort) != (&s.account, &s.asset, &s.cohort));
            stored.push(s.clone());
        }
    }

    #[test]
    fn growing_units_decay_like_a_recompute() {
        let t = COUNTER_EPOCH + 100 * DAY;
        let now = t + 45 * DAY;
        let w = 2.0 * growth(t, HL) * decay_at(now, HL);
        assert!((w - 1.0).abs() < 1e-12, "{w}");
        // A century on, the units are large but finite.
        assert!(growth(COUNTER_EPOCH + 36_500 * DAY, HL).is_finite());
    }

    #[test]
    fn an_account_counts_once_per_asset_with_its_heaviest_event() {
        let t = COUNTER_EPOCH;
        let mut stored = Vec::new();
        let first = plan(&[read("acme", "a", "retail|DECISION", 1.0, t)], &stored, HL);
        apply(&mut stored, &first);
        assert_eq!(
            first.counts[&("retail|DECISION".to_owned(), "a".to_owned())],
            Delta {
                weight: 1.0,
                accounts: 1
            }
        );
        assert_eq!(
            first.counts[&("*|DECISION".to_owned(), "a".to_owned())].accounts,
            1
        );
        // The same view again adds nothing; a download (depth 3) raises the share by 2.
        let again = plan(&[read("acme", "a", "retail|DECISION", 1.0, t)], &stored, HL);
        assert!(again.is_empty(), "{again:?}");
        let deeper = plan(&[read("acme", "a", "retail|DECISION", 3.0, t)], &stored, HL);
        assert_eq!(
            deeper.counts[&("retail|DECISION".to_owned(), "a".to_owned())],
            Delta {
                weight: 2.0,
                accounts: 0
            }
        );
        apply(&mut stored, &deeper);
        // Erasing subtracts what is stored: 3 in each cohort, one account.
        let gone = account_contribution(&stored, HL);
        assert_eq!(
            gone.counts[&("*|DECISION".to_owned(), "a".to_owned())],
            Delta {
                weight: 3.0,
                accounts: 1
            }
        );
    }

    #[test]
    fn a_first_read_pairs_with_the_latest_earlier_reads_in_the_window() {
        let t = COUNTER_EPOCH + 10 * DAY;
        let mut stored = Vec::new();
        // "old" is outside the window of "b"; "a" within; "b" read twice pairs once.
        let reads = [
            read("acme", "old", "healthcare|AWARENESS", 1.0, t - 40 * DAY),
            read("acme", "a", "healthcare|AWARENESS", 1.0, t - DAY),
            read("acme", "b", "healthcare|CONSIDERATION", 1.0, t),
            read("acme", "b", "healthcare|CONSIDERATION", 2.0, t + 60),
        ];
        let p = plan(&reads, &stored, HL);
        apply(&mut stored, &p);
        let pair =
            |a: &str, c: &str, b: &str| p.co_reads.get(&(a.into(), c.into(), b.into())).copied();
        assert_eq!(pair("a", "*", "b").map(|d| d.accounts), Some(1));
        assert_eq!(pair("a", "healthcare", "b").map(|d| d.accounts), Some(1));
        assert_eq!(pair("old", "*", "b"), None);
        assert_eq!(pair("old", "*", "a"), None, "40 days apart");
        assert_eq!(pair("b", "*", "a"), None, "the order is kept");
        // Later batches see the stored reads; the whole is what erasing subtracts.
        let next = plan(
            &[read("acme", "c", "healthcare|DECISION", 1.0, t + DAY)],
            &stored,
            HL,
        );
        apply(&mut stored, &next);
        assert!(
            next.co_reads
                .contains_key(&("b".into(), "*".into(), "c".into()))
        );
        assert!(
            next.co_reads
                .contains_key(&("a".into(), "*".into(), "c".into()))
        );
        let mut added = p.co_reads.clone();
        for (k, d) in next.co_reads {
            *added.entry(k).or_default() += d;
        }
        assert_eq!(account_contribution(&stored, HL).co_reads, added);
    }

    #[test]
    fn at_most_the_recent_reads_pair() {
        let t = COUNTER_EPOCH;
        let reads: Vec<CountedRead> = (0..CO_READ_RECENT + 5)
            .map(|i| {
                read(
                    "acme",
                    &format!("a{i:02}"),
                    "*|AWARENESS",
                    1.0,
                    t + i as i64,
                )
            })
            .collect();
        let p = plan(&reads, &[], HL);
        let last = format!("a{:02}", CO_READ_RECENT + 4);
        let sources = p.co_reads.keys().filter(|(_, _, b)| *b == last).count();
        assert_eq!(sources, CO_READ_RECENT);
        assert_eq!(co_read_cohorts("*|AWARENESS"), vec!["*".to_owned()]);
        assert_eq!(cohort_key(None, Stage::Decision), "*|DECISION");
        let payments = IndustrySlug::parse("financial-services/payments").unwrap();
        assert_eq!(
            cohort_key(Some(&payments), Stage::Awareness),
            "financial-services|AWARENESS"
        );
        assert_eq!(
            counted_cohorts("*|AWARENESS"),
            vec!["*|AWARENESS".to_owned()]
        );
    }
}
