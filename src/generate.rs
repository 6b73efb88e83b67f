//! Synthetic libraries for benchmarks: deterministic for a given size and seed, in the
//! interchange format. Tags follow the mix of a real library (more awareness than
//! advocacy content, most assets for one or two roles, a third cross-industry), and text
//! is drawn from a B2B vocabulary with a Zipf-like distribution so that text queries have
//! realistic selectivity; about 30% of assets are in Chinese.

use std::io::Write;

use crate::domain::{AssetDraft, Given};

/// SplitMix64: tiny, fast, and stable forever, so a seed always means the same library.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// An index drawn by cumulative weights.
    fn weighted(&mut self, cumulative: &[f64]) -> usize {
        let total = cumulative.last().copied().unwrap_or(1.0);
        let x = self.unit() * total;
        // The first weight past x (a binary search: libraries have 100k assets).
        cumulative
            .partition_point(|c| *c <= x)
            .min(cumulative.len().saturating_sub(1))
    }
}

fn cumulative(weights: &[f64]) -> Vec<f64> {
    weights
        .iter()
        .scan(0.0, |sum, w| {
            *sum += w;
            Some(*sum)
        })
        .collect()
}

const STAGES: [(&str, f64); 5] = [
    ("AWARENESS", 0.34),
    ("CONSIDERATION", 0.27),
    ("DECISION", 0.20),
    ("ADOPTION", 0.13),
    ("ADVOCACY", 0.06),
];
const ROLES: [(&str, f64); 5] = [
    ("DECISION_MAKER", 0.35),
    ("TECHNICAL_INTEGRATOR", 0.30),
    ("BUSINESS_USER", 0.15),
    ("PROCUREMENT", 0.10),
    ("FINANCE", 0.10),
];
const TYPES: [&str; 20] = [
    "EBOOK",
    "BLOG_POST",
    "WHITEPAPER",
    "RESEARCH_REPORT",
    "INFOGRAPHIC",
    "VIDEO",
    "WEBINAR",
    "BUYER_GUIDE",
    "COMPARISON_GUIDE",
    "ROI_CALCULATOR",
    "ANALYST_REPORT",
    "CASE_STUDY",
    "DEMO",
    "FREE_TRIAL",
    "PRICING_SHEET",
    "SECURITY_WHITEPAPER",
    "IMPLEMENTATION_GUIDE",
    "API_DOCS",
    "TRAINING",
    "NEWSLETTER",
];
/// The industries of the reference library (and of generated ones).
pub const INDUSTRIES: [&str; 20] = [
    "financial-services",
    "financial-services/payments",
    "financial-services/banking",
    "financial-services/insurance",
    "retail",
    "retail/ecommerce",
    "manufacturing",
    "manufacturing/automotive",
    "manufacturing/electronics",
    "healthcare",
    "healthcare/pharma",
    "education",
    "logistics",
    "energy",
    "public-sector",
    "saas",
    "telecom",
    "media",
    "real-estate",
    "hospitality",
];
const CONCERNS: [&str; 6] = ["NEED", "FIT", "RISK", "COST", "ADOPTION", "VALIDATION"];
/// Most frequent first: the Zipf weights follow this order.
const WORDS: &str = "payment reconciliation settlement integration security invoice api cost \
    compliance data workflow automation roi platform risk customer pricing report guide \
    analytics finance cloud onboarding trial demo training adoption dashboard procurement \
    audit governance privacy encryption webhook checkout billing ledger treasury forecast \
    supplier catalog order inventory logistics retention churn growth pipeline revenue margin \
    efficiency scale enterprise partner ecosystem benchmark survey playbook checklist \
    architecture performance latency uptime support contract renewal subscription migration \
    signature sdk fulfilment reporting exception matching payout variance close";
const ZH_WORDS: &str = "支付 结算 对账 发票 接入 接口 安全 签名 合规 投资回报 成本 价格 试用 演示 \
    培训 采购 财务 风险 数据 隐私 加密 供应链 库存 物流 客户 留存 增长 效率 平台 报告 指南 白皮书";

pub struct Generator {
    rng: Rng,
    words: Vec<&'static str>,
    zipf: Vec<f64>,
    zh_words: Vec<&'static str>,
    stages: Vec<f64>,
    roles: Vec<f64>,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        let words: Vec<&str> = WORDS.split_whitespace().collect();
        let zipf = cumulative(
            &(0..words.len())
                .map(|i| 1.0 / (i + 1) as f64)
                .collect::<Vec<_>>(),
        );
        Self {
            rng: Rng(seed ^ 0x5354_4147_4546_4954),
            words,
            zipf,
            zh_words: ZH_WORDS.split_whitespace().collect(),
            stages: cumulative(&STAGES.map(|s| s.1)),
            roles: cumulative(&ROLES.map(|r| r.1)),
        }
    }

    /// Between `lo` and `hi` English words, Zipf-distributed.
    fn english(&mut self, lo: usize, hi: usize) -> Vec<&'static str> {
        let n = self.rng.range(lo, hi);
        (0..n)
            .map(|_| self.words[self.rng.weighted(&self.zipf)])
            .collect()
    }

    /// Between `lo` and `hi` Chinese words, uniformly drawn.
    fn chinese(&mut self, lo: usize, hi: usize) -> Vec<&'static str> {
        let n = self.rng.range(lo, hi);
        (0..n)
            .map(|_| self.zh_words[self.rng.below(self.zh_words.len())])
            .collect()
    }

    /// A search a visitor might type: one to three English words drawn like the library's
    /// own text, so the most frequent words come up most (benchmarks use a fixed series).
    pub fn query(&mut self) -> String {
        self.english(1, 3).join(" ")
    }

    /// The `i`-th asset of the library.
    pub fn asset(&mut self, i: u64) -> AssetDraft {
        let r = &mut self.rng;
        let chinese = r.unit() < 0.3;
        let (title, body) = if chinese {
            let t = self.chinese(3, 6).concat();
            let b = self.chinese(20, 60).concat();
            (t, b)
        } else {
            let mut t = self.english(4, 9).join(" ");
            if let Some(first) = t.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            (t, self.english(40, 160).join(" "))
        };
        let r = &mut self.rng;
        let mut stages: Vec<usize> = (0..if r.unit() < 0.25 { 2 } else { 1 })
            .map(|_| r.weighted(&self.stages))
            .collect();
        stages.sort();
        stages.dedup();
        let mut roles: Vec<usize> = if r.unit() < 0.25 {
            Vec::new()
        } else {
            (0..if r.unit() < 0.33 { 2 } else { 1 })
                .map(|_| r.weighted(&self.roles))
                .collect()
        };
        roles.sort();
        roles.dedup();
        let industries = if r.unit() < 0.3 {
            Vec::new()
        } else {
            vec![INDUSTRIES[r.below(INDUSTRIES.len())].to_owned()]
        };
        let mut concerns: Vec<String> = Vec::new();
        for _ in 0..r.below(3) {
            let c = CONCERNS[r.below(CONCERNS.len())].to_owned();
            if !concerns.contains(&c) {
                concerns.push(c);
            }
        }
        let mut topics: Vec<String> = Vec::new();
        for _ in 0..r.range(1, 3) {
            let t = self.words[self.rng.below(40)].to_owned();
            if !topics.contains(&t) {
                topics.push(t);
            }
        }
        let r = &mut self.rng;
        let date = |r: &mut Rng, from: usize| {
            format!(
                "{}-{:02}-{:02}",
                r.range(from, 2026),
                r.range(1, 12),
                r.range(1, 28)
            )
        };
        let status = if r.unit() < 0.95 {
            "published"
        } else if r.unit() < 0.5 {
            "draft"
        } else {
            "retired"
        };
        let summary: String = body.chars().take(160).collect();
        AssetDraft {
            id: Some(format!("s-{i:07}")),
            title: Some(title),
            summary: Some(summary),
            body: Some(body),
            url: Some(format!("https://example.com/a/{i}")),
            links: Vec::new(),
            image_url: None,
            content_type: Some(TYPES[r.below(TYPES.len())].to_owned()),
            stages: stages.iter().map(|s| STAGES[*s].0.to_owned()).collect(),
            roles: roles.iter().map(|x| ROLES[*x].0.to_owned()).collect(),
            industries,
            concerns,
            topics,
            language: Some(if chinese { "zh" } else { "en" }.to_owned()),
            published_at: Some(date(r, 2019)),
            reviewed_at: Some(date(r, 2022)),
            evergreen: Some(r.unit() < 0.15),
            gated: Some(r.unit() < 0.3),
            status: Some(status.to_owned()),
            tag_evidence: Vec::new(),
        }
    }
}

/// Writes `count` assets as JSON lines.
pub fn write_library(count: u64, seed: u64, out: &mut impl Write) -> std::io::Result<()> {
    let mut generator = Generator::new(seed);
    for i in 0..count {
        serde_json::to_writer(&mut *out, &generator.asset(i))?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Accounts with three contacts each and `events` engagement events over `asset_ids`,
/// spread over the last 180 days, as three JSON-lines files in `dir` (`accounts.jsonl`,
/// `contacts.jsonl`, `events.jsonl`) for `stagefit import --kind ...`. Account `i` is
/// `acct-0000i`; its contacts are `acct-0000i-c0` (decision maker), `-c1` (technical
/// integrator) and `-c2` (finance). A few accounts read much more than most, as in life.
pub fn write_engagement(
    asset_ids: &[String],
    accounts: u64,
    events: u64,
    seed: u64,
    now: chrono::DateTime<chrono::Utc>,
    dir: &std::path::Path,
) -> std::io::Result<()> {
    use crate::domain::{AccountDraft, ContactDraft, EngagementDraft};
    let mut rng = Rng(seed ^ 0x4143_434f_554e_5453);
    let file = |name: &str| -> std::io::Result<std::io::BufWriter<std::fs::File>> {
        Ok(std::io::BufWriter::new(std::fs::File::create(
            dir.join(name),
        )?))
    };
    let mut accounts_out = file("accounts.jsonl")?;
    let mut contacts_out = file("contacts.jsonl")?;
    let stages = [
        "AWARENESS",
        "CONSIDERATION",
        "DECISION",
        "ADOPTION",
        "ADVOCACY",
    ];
    let roles = ["DECISION_MAKER", "TECHNICAL_INTEGRATOR", "FINANCE"];
    for i in 0..accounts {
        let id = format!("acct-{i:05}");
        let account = AccountDraft {
            id: Some(id.clone()),
            name: Some(format!("Account {i}")),
            industry: (rng.unit() < 0.9)
                .then(|| INDUSTRIES[rng.below(INDUSTRIES.len())].to_owned()),
            stage: (rng.unit() < 0.7).then(|| stages[rng.below(stages.len())].into()),
            stage_updated_at: None,
            tier: Some(["enterprise", "mid-market", "smb"][rng.below(3)].to_owned()),
            language: Some("en".to_owned()),
            crm_stage: None,
        };
        serde_json::to_writer(&mut accounts_out, &account)?;
        accounts_out.write_all(b"\n")?;
        for (j, role) in roles.iter().enumerate() {
            let contact = ContactDraft {
                id: Some(format!("{id}-c{j}")),
                account_id: Some(id.clone()),
                name: Some(format!("Contact {j} of account {i}")),
                role: Some((*role).into()),
            };
            serde_json::to_writer(&mut contacts_out, &contact)?;
            contacts_out.write_all(b"\n")?;
        }
    }
    accounts_out.flush()?;
    contacts_out.flush()?;
    let mut events_out = file("events.jsonl")?;
    let kinds = cumulative(&[0.6, 0.15, 0.2, 0.05]);
    let kind_names = ["VIEW", "DOWNLOAD", "COMPLETE", "SHARE"];
    let asset_weights = cumulative(
        &(0..asset_ids.len())
            .map(|i| 1.0 / (i as f64 + 10.0))
            .collect::<Vec<_>>(),
    );
    for _ in 0..events {
        // Squaring a uniform draw skews reading toward the low account numbers.
        let a = ((rng.unit() * rng.unit()) * accounts as f64) as u64;
        let account = format!("acct-{:05}", a.min(accounts.saturating_sub(1)));
        let contact = (rng.unit() < 0.8).then(|| format!("{account}-c{}", rng.below(3)));
        let asset = &asset_ids[rng.weighted(&asset_weights)];
        let seconds_ago = (rng.unit() * 180.0 * 86_400.0) as i64;
        let event = EngagementDraft {
            account_id: Some(account),
            contact_id: contact,
            asset_id: Some(asset.clone()),
            kind: Some(kind_names[rng.weighted(&kinds)].into()),
            occurred_at: Some(Given::Value(now - chrono::Duration::seconds(seconds_ago))),
            client_event_id: None,
            ..Default::default()
        };
        serde_json::to_writer(&mut events_out, &event)?;
        events_out.write_all(b"\n")?;
    }
    events_out.flush()
}

/// Deterministic shown lists over `asset_ids` for benchmarks: ten items each, spread over
/// the last `days` days before `now`, half of them in experiment `bench` (variants
/// `default` and `bench-b`), and about `click_rate` of the items clicked (one in five of
/// those completed). Popular assets are shown more, as in a real library.
pub fn feedback_lists(
    asset_ids: &[String],
    lists: u64,
    days: u32,
    click_rate: f64,
    seed: u64,
    now: chrono::DateTime<chrono::Utc>,
) -> impl Iterator<Item = crate::domain::LoggedFeedback> + '_ {
    let mut rng = Rng(seed);
    let stages = ["AWARENESS", "CONSIDERATION", "DECISION", "ADOPTION"];
    (0..lists).map(move |n| {
        let at = now.timestamp() - (rng.unit() * f64::from(days) * 86_400.0) as i64;
        let in_experiment = n % 2 == 0;
        let variant = if rng.unit() < 0.5 {
            "default"
        } else {
            "bench-b"
        };
        let context = crate::domain::ListContext {
            at,
            account: Some(format!("acct-{:05}", rng.below(10_000))),
            profile: if in_experiment { variant } else { "default" }.to_owned(),
            experiment: in_experiment.then(|| "bench".to_owned()),
            variant: in_experiment.then(|| variant.to_owned()),
            placement: Some("home".to_owned()),
            stage: stages[rng.below(stages.len())].to_owned(),
            language: "en".to_owned(),
            ..Default::default()
        };
        let mut items: Vec<(String, u32)> = Vec::with_capacity(10);
        while items.len() < 10.min(asset_ids.len()) {
            // Squaring a uniform draw favours the first assets.
            let id = &asset_ids[(rng.unit() * rng.unit() * asset_ids.len() as f64) as usize];
            if !items.iter().any(|(i, _)| i == id) {
                items.push((id.clone(), items.len() as u32 + 1));
            }
        }
        let mut clicked = Vec::new();
        for (id, p) in &items {
            if rng.unit() < click_rate {
                clicked.push((id.clone(), *p, rng.unit() < 0.2));
            }
        }
        crate::domain::LoggedFeedback {
            context,
            items,
            clicked,
        }
    })
}

/// Reading journeys planted in generated engagement: accounts that follow one read its
/// assets in order, so "readers of this also read" has a known answer.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Journeys {
    pub paths: Vec<Vec<String>>,
}

impl Journeys {
    /// `count` journeys of 4 to 6 assets each, drawn without repeats from `asset_ids` while
    /// they last (then again from the start).
    pub fn plant(asset_ids: &[String], count: usize, seed: u64) -> Self {
        let mut rng = Rng(seed ^ 0x4A4F_5552_4E45_5953);
        let mut order: Vec<&String> = asset_ids.iter().collect();
        // Fisher-Yates.
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let mut next = 0;
        let paths = (0..count)
            .map(|_| {
                let len = rng.range(4, 6).min(order.len());
                (0..len)
                    .map(|_| {
                        let id = order[next % order.len().max(1)].clone();
                        next += 1;
                        id
                    })
                    .collect()
            })
            .filter(|p: &Vec<String>| p.len() >= 2)
            .collect();
        Journeys { paths }
    }

    /// Every step with a planted next asset, when the seed is a step of one journey only
    /// (else its next is not one asset): (seed, planted next).
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for p in &self.paths {
            for id in p {
                *seen.entry(id).or_default() += 1;
            }
        }
        self.paths
            .iter()
            .flat_map(|p| p.windows(2))
            .filter(|w| seen[w[0].as_str()] == 1)
            .map(|w| (w[0].clone(), w[1].clone()))
            .collect()
    }
}

/// What [`journey_lists`] shows: `lists` lists over `asset_ids` in the last `days` days,
/// logged as ranked by `profile`.
pub struct ListPlan<'a> {
    pub asset_ids: &'a [String],
    pub lists: u64,
    pub days: u32,
    pub click_rate: f64,
    pub profile: &'a str,
    pub seed: u64,
    pub now: chrono::DateTime<chrono::Utc>,
}

/// `nextContent` lists after the journeys' steps, for replays: each shown after a step
/// with a planted next asset (ranked by profile `profile`), ten items of which the planted
/// next asset is one, at a random place; readers click it on 60% of lists, and any item
/// with `click_rate` besides (one in five clicks a completion).
pub fn journey_lists<'a>(
    journeys: &'a Journeys,
    plan: ListPlan<'a>,
) -> impl Iterator<Item = crate::domain::LoggedFeedback> + 'a {
    let ListPlan {
        asset_ids,
        lists,
        days,
        click_rate,
        profile,
        seed,
        now,
    } = plan;
    let mut rng = Rng(seed ^ 0x4C49_5354_5341_4654);
    let pairs = journeys.pairs();
    (0..lists).filter_map(move |_| {
        let (seed_id, next) = pairs.get(rng.below(pairs.len()))?.clone();
        let at = now.timestamp() - (rng.unit() * f64::from(days) * 86_400.0) as i64;
        let context = crate::domain::ListContext {
            at,
            profile: profile.to_owned(),
            placement: Some("article".to_owned()),
            after: Some(seed_id.clone()),
            stage: "CONSIDERATION".to_owned(),
            language: "en".to_owned(),
            ..Default::default()
        };
        // Nine others (popular ones most), then the planted next asset at a random place.
        let width = 10.min(asset_ids.len());
        let mut others: Vec<String> = Vec::with_capacity(width);
        let mut draws = 0;
        while others.len() + 1 < width && draws < 1_000 {
            draws += 1;
            let id = &asset_ids[(rng.unit() * rng.unit() * asset_ids.len() as f64) as usize];
            if *id != seed_id && *id != next && !others.contains(id) {
                others.push(id.clone());
            }
        }
        others.insert(rng.below(others.len() + 1), next.clone());
        let items: Vec<(String, u32)> = others
            .into_iter()
            .enumerate()
            .map(|(i, id)| (id, i as u32 + 1))
            .collect();
        let mut clicked = Vec::new();
        for (id, p) in &items {
            let wanted = if *id == next { 0.6 } else { click_rate };
            if rng.unit() < wanted {
                clicked.push((id.clone(), *p, rng.unit() < 0.2));
            }
        }
        Some(crate::domain::LoggedFeedback {
            context,
            items,
            clicked,
        })
    })
}

/// One generated account with its committee and what it read, oldest first.
pub struct GeneratedAccount {
    pub account: crate::domain::Account,
    pub contacts: Vec<crate::domain::Contact>,
    pub events: Vec<crate::domain::Engagement>,
}

/// What [`engagement`] generates.
pub struct EngagementPlan<'a> {
    pub asset_ids: &'a [String],
    pub accounts: u64,
    /// About this many events in all.
    pub events: u64,
    pub journeys: &'a Journeys,
    /// The share of accounts that follow a journey.
    pub on_journey: f64,
    pub seed: u64,
    pub now: chrono::DateTime<chrono::Utc>,
}

/// Accounts (`acct-0000i`, three contacts each) reading over the last 180 days: most
/// follow one planted journey step by step (each step a few days after the last, 85% going
/// on to the next), and every account reads other assets as well, the popular ones most
/// (a Zipf-like draw). A few accounts read much more than most. Account `i` depends on
/// the seed and `i` alone, so any range of accounts can be generated on its own.
pub fn engagement<'a>(plan: &'a EngagementPlan<'a>) -> impl Iterator<Item = GeneratedAccount> + 'a {
    use crate::domain::{
        Account, AccountId, AssetId, Contact, ContactId, Engagement, EngagementKind, IndustrySlug,
        Language, Role,
    };
    let asset_weights = cumulative(
        &(0..plan.asset_ids.len())
            .map(|i| 1.0 / (i as f64 + 10.0))
            .collect::<Vec<_>>(),
    );
    let assets: Vec<Option<AssetId>> = plan
        .asset_ids
        .iter()
        .map(|id| AssetId::parse(id).ok())
        .collect();
    let industries: Vec<IndustrySlug> = INDUSTRIES
        .iter()
        .filter_map(|i| IndustrySlug::parse(i).ok())
        .collect();
    let kinds = cumulative(&[0.6, 0.15, 0.2, 0.05]);
    let kind_of = [
        EngagementKind::View,
        EngagementKind::Download,
        EngagementKind::Complete,
        EngagementKind::Share,
    ];
    let per_account = plan.events as f64 / plan.accounts.max(1) as f64;
    let journey_ids: Vec<Vec<Option<AssetId>>> = plan
        .journeys
        .paths
        .iter()
        .map(|p| p.iter().map(|id| AssetId::parse(id).ok()).collect())
        .collect();
    let now = plan.now;
    (0..plan.accounts).filter_map(move |i| {
        let mut rng = Rng(plan.seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x454E_4741_4745);
        let id = AccountId::parse(&format!("acct-{i:05}")).ok()?;
        let account = Account {
            id: id.clone(),
            name: format!("Account {i}"),
            industry: (rng.unit() < 0.9).then(|| industries[rng.below(industries.len())].clone()),
            stage: None,
            stage_updated_at: None,
            tier: Some(["enterprise", "mid-market", "smb"][rng.below(3)].to_owned()),
            language: Language::parse("en").ok(),
            crm_stage: None,
        };
        let contacts: Vec<Contact> = [
            Role::DecisionMaker,
            Role::TechnicalIntegrator,
            Role::Finance,
        ]
        .into_iter()
        .enumerate()
        .filter_map(|(j, role)| {
            Some(Contact {
                id: ContactId::parse(&format!("{id}-c{j}")).ok()?,
                account_id: id.clone(),
                name: format!("Contact {j} of account {i}"),
                role: Some(role),
            })
        })
        .collect();
        // Squaring a uniform draw gives a few heavy readers and many light ones, with the
        // mean the plan asks for (E[3u^2] = 1).
        let u = rng.unit();
        let total = (3.0 * u * u * per_account).round().max(1.0) as usize;
        let mut events: Vec<Engagement> = Vec::with_capacity(total);
        let push = |events: &mut Vec<Engagement>, rng: &mut Rng, asset: &AssetId, ago: i64| {
            let contact =
                (rng.unit() < 0.8).then(|| contacts[rng.below(contacts.len())].id.clone());
            events.push(Engagement {
                account_id: id.clone(),
                contact_id: contact,
                asset_id: asset.clone(),
                kind: kind_of[rng.weighted(&kinds)],
                occurred_at: now - chrono::Duration::seconds(ago.max(0)),
                client_event_id: None,
                attribution: None,
            });
        };
        if !journey_ids.is_empty() && rng.unit() < plan.on_journey {
            let path = &journey_ids[rng.below(journey_ids.len())];
            // Started within the last 150 days, a step every one to five days.
            let mut ago = (30.0 + rng.unit() * 120.0) * 86_400.0;
            for step in path {
                if let Some(asset) = step {
                    push(&mut events, &mut rng, asset, ago as i64);
                }
                if rng.unit() >= 0.85 {
                    break;
                }
                ago -= (1.0 + rng.unit() * 4.0) * 86_400.0;
            }
        }
        while events.len() < total {
            let at = rng.weighted(&asset_weights);
            let ago = (rng.unit() * 180.0 * 86_400.0) as i64;
            match &assets[at] {
                Some(asset) => push(&mut events, &mut rng, asset, ago),
                None => break,
            }
        }
        events.sort_by_key(|e| e.occurred_at);
        Some(GeneratedAccount {
            account,
            contacts,
            events,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_valid_library() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        write_library(300, 7, &mut a).unwrap();
        write_library(300, 7, &mut b).unwrap();
        assert_eq!(a, b);
        let mut c = Vec::new();
        write_library(300, 8, &mut c).unwrap();
        assert_ne!(a, c);
        let mut zh = 0;
        let mut published = 0;
        for line in String::from_utf8(a).unwrap().lines() {
            let asset = serde_json::from_str::<AssetDraft>(line)
                .unwrap()
                .validate()
                .unwrap();
            zh += usize::from(asset.language.primary() == "zh");
            published += usize::from(asset.status == crate::domain::AssetStatus::Published);
        }
        assert!((60..=120).contains(&zh), "{zh} Chinese assets of 300");
        assert!(published >= 270, "{published}");
    }
}
