//! The closed vocabularies (stages, roles, concerns, content types, statuses) and the two
//! open ones with a grammar (industry slugs, language tags).

use std::fmt;

/// Normalises a user-written name for lookup: lowercase, and `_`, spaces and `-` all become
/// `-`, so `Cost Awareness`, `cost_awareness` and `COST-AWARENESS` are the same key.
fn lookup_key(raw: &str) -> String {
    let mut key = String::with_capacity(raw.len());
    for c in raw.trim().chars() {
        match c {
            '_' | ' ' | '-' => {
                if !key.ends_with('-') {
                    key.push('-');
                }
            }
            c => key.extend(c.to_lowercase()),
        }
    }
    key
}

/// A closed vocabulary with canonical SCREAMING_SNAKE names.
pub trait TaxonomyValue: Sized + Copy + 'static {
    /// What the vocabulary is called in error messages.
    const KIND: &'static str;
    const ALL: &'static [Self];
    fn name(self) -> &'static str;
    /// Extra accepted spellings besides the canonical name, already in lookup-key form.
    fn aliases(self) -> &'static [&'static str] {
        &[]
    }

    /// Accepts the canonical name in any case with `-`, `_` or spaces, or any alias.
    fn parse(raw: &str) -> Result<Self, String> {
        // Stored and most written values are already canonical.
        if let Some(v) = Self::ALL.iter().find(|v| v.name() == raw) {
            return Ok(*v);
        }
        let key = lookup_key(raw);
        let key = key.strip_suffix("阶段").unwrap_or(&key);
        Self::ALL
            .iter()
            .copied()
            .find(|v| lookup_key(v.name()) == key || v.aliases().contains(&key))
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|v| v.name()).collect();
                format!(
                    "unknown {} {:?}; expected one of {}",
                    Self::KIND,
                    raw.trim(),
                    names.join(", ")
                )
            })
    }

    /// Position in `ALL`, used for bit masks and canonical ordering.
    fn ordinal(self) -> usize {
        Self::ALL
            .iter()
            .position(|v| v.name() == self.name())
            .unwrap_or_default()
    }

    fn from_ordinal(ordinal: usize) -> Option<Self> {
        Self::ALL.get(ordinal).copied()
    }

    /// Parses a list, dropping duplicates and sorting into canonical order.
    fn parse_list<S: AsRef<str>>(raw: &[S]) -> Result<Vec<Self>, String> {
        let mut values = raw
            .iter()
            .filter(|s| !s.as_ref().trim().is_empty())
            .map(|s| Self::parse(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        values.sort_by_key(|v| v.ordinal());
        values.dedup_by_key(|v| v.ordinal());
        Ok(values)
    }

    fn mask(values: &[Self]) -> u64 {
        values.iter().fold(0, |m, v| m | 1 << v.ordinal())
    }
}

macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident, $kind:literal { $($variant:ident => $text:literal [$($alias:literal),*]),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl TaxonomyValue for $name {
            const KIND: &'static str = $kind;
            const ALL: &'static [Self] = &[$(Self::$variant),+];
            fn name(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
            fn aliases(self) -> &'static [&'static str] {
                match self { $(Self::$variant => &[$($alias),*]),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

vocabulary! {
    /// The canonical buying stage. The seeds describe several journey models (APA, AISAS,
    /// three- and four-stage journeys, six anxiety stages); their stage names are aliases.
    Stage, "stage" {
        Awareness => "AWARENESS" ["need-emergence", "attention", "需求产生", "意识", "认知", "注意"],
        Consideration => "CONSIDERATION" ["need", "risk-awareness", "interest", "search", "需求", "风险意识", "考虑", "兴趣", "搜索"],
        Decision => "DECISION" ["preference", "cost-awareness", "action", "purchase", "成本意识", "偏好", "决策", "行动", "购买"],
        Adoption => "ADOPTION" ["learning-to-use", "nurture", "学习使用", "培育"],
        Advocacy => "ADVOCACY" ["word-of-mouth", "share", "advocate", "口碑分享", "口碑", "分享", "拥护"],
    }
}

vocabulary! {
    /// What a reader did with an asset, from a glance to passing it on.
    EngagementKind, "engagement kind" {
        View => "VIEW" ["viewed", "open", "opened"],
        Download => "DOWNLOAD" ["downloaded"],
        Complete => "COMPLETE" ["completed", "finished", "read"],
        Share => "SHARE" ["shared", "sent", "forward", "forwarded"],
    }
}

impl EngagementKind {
    /// How much an event says about where the account is: finishing an asset says more
    /// than opening it; passing it on says the reader found it worth a colleague's time.
    pub fn depth(self) -> f64 {
        match self {
            EngagementKind::View => 1.0,
            EngagementKind::Download => 2.0,
            EngagementKind::Share => 2.5,
            EngagementKind::Complete => 3.0,
        }
    }
}

impl Stage {
    pub fn description(self) -> &'static str {
        match self {
            Stage::Awareness => {
                "the buyer senses a problem and asks whether it is worth solving; thought leadership, ebooks, research and videos help"
            }
            Stage::Consideration => {
                "the buyer compares kinds of solution and weighs their risk; buyer guides, comparisons, ROI calculators and analyst reports help"
            }
            Stage::Decision => {
                "the buyer asks whether this vendor is the safe choice and at what cost; same-industry case studies, demos, trials and pricing help"
            }
            Stage::Adoption => {
                "the customer wants value from what it bought; onboarding, implementation guides, API docs and training help"
            }
            Stage::Advocacy => {
                "the customer wants to prove the choice was right; shareable results, co-authored stories and community help"
            }
        }
    }
}

vocabulary! {
    /// A seat on the buying committee.
    Role, "role" {
        DecisionMaker => "DECISION_MAKER" ["executive", "owner", "决策者"],
        TechnicalIntegrator => "TECHNICAL_INTEGRATOR" ["technical", "it", "engineering", "技术"],
        BusinessUser => "BUSINESS_USER" ["user", "业务"],
        Procurement => "PROCUREMENT" ["purchasing", "采购"],
        Finance => "FINANCE" ["财务"],
    }
}

impl Role {
    pub fn description(self) -> &'static str {
        match self {
            Role::DecisionMaker => {
                "owner or executive: price, settlement, differences between offers, compliance, ROI"
            }
            Role::TechnicalIntegrator => {
                "IT or engineering: data-transfer security, signatures and auth, front- and back-end integration, SDKs"
            }
            Role::BusinessUser => "the team that will use the product day to day",
            Role::Procurement => "runs the purchase: vendor comparison, terms, contracts",
            Role::Finance => "owns the budget: cost, payback, payment terms",
        }
    }
}

vocabulary! {
    /// The anxiety an asset answers.
    Concern, "concern" {
        Need => "NEED" [],
        Fit => "FIT" [],
        Risk => "RISK" [],
        Cost => "COST" [],
        Adoption => "ADOPTION" [],
        Validation => "VALIDATION" [],
    }
}

vocabulary! {
    /// Whether an asset may be shown.
    AssetStatus, "status" {
        Published => "PUBLISHED" [],
        Draft => "DRAFT" [],
        Retired => "RETIRED" [],
    }
}

vocabulary! {
    /// The format of an asset.
    ContentType, "content type" {
        Ebook => "EBOOK" ["e-book"],
        BlogPost => "BLOG_POST" ["blog", "article"],
        Whitepaper => "WHITEPAPER" ["white-paper"],
        ResearchReport => "RESEARCH_REPORT" ["research"],
        Infographic => "INFOGRAPHIC" [],
        Video => "VIDEO" [],
        Webinar => "WEBINAR" [],
        BuyerGuide => "BUYER_GUIDE" ["buyers-guide"],
        ComparisonGuide => "COMPARISON_GUIDE" ["comparison"],
        RoiCalculator => "ROI_CALCULATOR" ["roi"],
        AnalystReport => "ANALYST_REPORT" [],
        CaseStudy => "CASE_STUDY" ["customer-story"],
        Demo => "DEMO" ["product-tour"],
        FreeTrial => "FREE_TRIAL" ["trial"],
        PricingSheet => "PRICING_SHEET" ["pricing"],
        SecurityWhitepaper => "SECURITY_WHITEPAPER" [],
        ImplementationGuide => "IMPLEMENTATION_GUIDE" [],
        ApiDocs => "API_DOCS" ["api-documentation"],
        Training => "TRAINING" [],
        Newsletter => "NEWSLETTER" [],
        ReleaseNotes => "RELEASE_NOTES" ["release-note", "changelog", "product-update", "product-updates", "whats-new"],
        Documentation => "DOCUMENTATION" ["docs", "doc", "knowledge-base", "kb", "help-article", "help"],
    }
}

impl ContentType {
    /// Stages an asset of this type serves when its own stages are not given.
    pub fn default_stages(self) -> &'static [Stage] {
        use ContentType::*;
        use Stage::*;
        match self {
            Ebook | BlogPost | ResearchReport | Infographic | Video | Newsletter => &[Awareness],
            Whitepaper | Webinar => &[Awareness, Consideration],
            BuyerGuide | ComparisonGuide | RoiCalculator | AnalystReport => &[Consideration],
            SecurityWhitepaper => &[Consideration, Decision],
            CaseStudy => &[Consideration, Decision],
            Demo | FreeTrial | PricingSheet => &[Decision],
            ImplementationGuide => &[Decision, Adoption],
            ApiDocs | Training | ReleaseNotes | Documentation => &[Adoption],
        }
    }
}

impl ContentType {
    /// The type a CMS folder usually holds, from the first folder of a URL's path that
    /// names one (`/en/blog/x` is a blog post; `/docs/api/x` documentation). `None` when no
    /// folder does. The README's folder table lists them.
    pub fn from_path(url: &str) -> Option<Self> {
        use ContentType::*;
        super::asset::url_segments(url)
            .map(str::to_ascii_lowercase)
            .find_map(|folder| match folder.as_str() {
                "blog" | "blogs" | "articles" | "posts" | "news" | "insights" => Some(BlogPost),
                "customers" | "customer-stories" | "case-studies" | "case-study"
                | "success-stories" | "stories" => Some(CaseStudy),
                "docs" | "documentation" | "help" | "kb" | "knowledge-base" | "support"
                | "manual" | "handbook" => Some(Documentation),
                "api" | "api-reference" | "reference" | "sdk" | "sdks" => Some(ApiDocs),
                "changelog" | "release-notes" | "releases" | "updates" | "whats-new"
                | "product-updates" => Some(ReleaseNotes),
                "resources" | "whitepapers" | "whitepaper" => Some(Whitepaper),
                "ebooks" | "ebook" => Some(Ebook),
                "webinars" | "webinar" | "events" => Some(Webinar),
                "vs" | "compare" | "comparison" | "comparisons" | "alternatives" => {
                    Some(ComparisonGuide)
                }
                "pricing" | "plans" => Some(PricingSheet),
                "demo" | "demos" | "tour" => Some(Demo),
                "trial" | "free-trial" | "signup" => Some(FreeTrial),
                "security" | "trust" | "compliance" => Some(SecurityWhitepaper),
                "guides" | "tutorials" | "getting-started" => Some(ImplementationGuide),
                "training" | "academy" | "courses" | "learn" => Some(Training),
                "reports" | "research" => Some(ResearchReport),
                "videos" | "video" => Some(Video),
                "newsletter" | "newsletters" => Some(Newsletter),
                _ => None,
            })
    }
}

/// A position in the industry hierarchy: lowercase segments joined by `/`, such as
/// `financial-services/payments`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndustrySlug(String);

impl IndustrySlug {
    pub const MAX_DEPTH: usize = 4;

    /// Accepts any case and spaces or underscores inside segments (`Financial Services/
    /// Payments`), and refuses anything that would not make a clean path.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut segments = Vec::new();
        for segment in raw.trim().split('/') {
            let key = lookup_key(segment);
            let key = key.trim_matches('-');
            let valid = !key.is_empty()
                && key.len() <= 64
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !valid {
                return Err(format!(
                    "invalid industry {:?}: use lowercase words joined by '-', levels joined by '/', e.g. financial-services/payments",
                    raw.trim()
                ));
            }
            segments.push(key.to_owned());
        }
        if segments.len() > Self::MAX_DEPTH {
            return Err(format!(
                "invalid industry {:?}: at most {} levels",
                raw.trim(),
                Self::MAX_DEPTH
            ));
        }
        Ok(Self(segments.join("/")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn parent(&self) -> Option<IndustrySlug> {
        self.0.rsplit_once('/').map(|(p, _)| Self(p.to_owned()))
    }

    /// The top of the branch: `financial-services` for `financial-services/payments`.
    pub fn root(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }

    /// This slug and every ancestor, nearest first.
    pub fn self_and_ancestors(&self) -> Vec<IndustrySlug> {
        let mut out = vec![self.clone()];
        while let Some(parent) = out.last().and_then(IndustrySlug::parent) {
            out.push(parent);
        }
        out
    }

    pub fn is_ancestor_of(&self, other: &IndustrySlug) -> bool {
        other.0.len() > self.0.len()
            && other.0.starts_with(&self.0)
            && other.0.as_bytes()[self.0.len()] == b'/'
    }

    /// A readable label derived from the slug: `financial-services/payments` is `Payments`.
    pub fn default_label(&self) -> String {
        let leaf = self.0.rsplit('/').next().unwrap_or(&self.0);
        let mut label = String::with_capacity(leaf.len());
        for (i, word) in leaf.split('-').enumerate() {
            if i > 0 {
                label.push(' ');
            }
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                label.extend(first.to_uppercase());
                label.push_str(chars.as_str());
            }
        }
        label
    }
}

impl fmt::Display for IndustrySlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A BCP-47 language tag, normalised: language subtag lowercase, region uppercase, script
/// title case (`zh-Hans-CN`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Language(String);

impl Language {
    pub fn english() -> Self {
        Self("en".to_owned())
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim().replace('_', "-");
        let mut parts = raw.split('-');
        let primary = parts.next().unwrap_or_default();
        let bad = || {
            format!("invalid language tag {raw:?}: expected a BCP-47 tag such as en, zh or pt-BR")
        };
        if !(2..=3).contains(&primary.len()) || !primary.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(bad());
        }
        let mut tag = primary.to_ascii_lowercase();
        for part in parts {
            if !(1..=8).contains(&part.len()) || !part.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(bad());
            }
            tag.push('-');
            match part.len() {
                2 if part.chars().all(|c| c.is_ascii_alphabetic()) => {
                    tag.push_str(&part.to_ascii_uppercase())
                }
                4 if part.chars().all(|c| c.is_ascii_alphabetic()) => {
                    tag.push_str(&part[..1].to_ascii_uppercase());
                    tag.push_str(&part[1..].to_ascii_lowercase());
                }
                _ => tag.push_str(&part.to_ascii_lowercase()),
            }
        }
        Ok(Self(tag))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The language subtag alone (`zh` for `zh-Hant-TW`): what text analysis depends on.
    pub fn primary(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_alias_parses_to_its_stage() {
        let cases = [
            ("need-emergence", Stage::Awareness),
            ("attention", Stage::Awareness),
            ("awareness", Stage::Awareness),
            ("需求产生阶段", Stage::Awareness),
            ("need", Stage::Consideration),
            ("risk-awareness", Stage::Consideration),
            ("interest", Stage::Consideration),
            ("search", Stage::Consideration),
            ("preference", Stage::Decision),
            ("cost-awareness", Stage::Decision),
            ("Cost Awareness", Stage::Decision),
            ("action", Stage::Decision),
            ("purchase", Stage::Decision),
            ("learning-to-use", Stage::Adoption),
            ("learning_to_use", Stage::Adoption),
            ("nurture", Stage::Adoption),
            ("word-of-mouth", Stage::Advocacy),
            ("share", Stage::Advocacy),
            ("advocate", Stage::Advocacy),
            ("口碑分享", Stage::Advocacy),
        ];
        for (raw, stage) in cases {
            assert_eq!(Stage::parse(raw), Ok(stage), "{raw}");
        }
        for stage in Stage::ALL {
            assert_eq!(Stage::parse(stage.name()), Ok(*stage));
            assert_eq!(Stage::parse(&stage.name().to_lowercase()), Ok(*stage));
            for alias in stage.aliases() {
                assert_eq!(Stage::parse(alias), Ok(*stage), "{alias}");
            }
        }
    }

    #[test]
    fn no_alias_is_claimed_by_two_values() {
        fn check<T: TaxonomyValue + std::fmt::Debug>() {
            let mut seen = std::collections::HashSet::new();
            for v in T::ALL {
                assert!(seen.insert(lookup_key(v.name())), "{v:?}");
                for a in v.aliases() {
                    assert!(seen.insert((*a).to_owned()), "{a} is claimed twice");
                }
            }
        }
        check::<Stage>();
        check::<Role>();
        check::<Concern>();
        check::<ContentType>();
        check::<AssetStatus>();
    }

    #[test]
    fn unknown_values_are_refused_with_the_choices() {
        let err = Stage::parse("closing").unwrap_err();
        assert!(err.contains("unknown stage \"closing\""), "{err}");
        assert!(err.contains("AWARENESS, CONSIDERATION"), "{err}");
        assert!(Role::parse("").is_err());
        assert!(ContentType::parse("podcast").is_err());
        assert!(AssetStatus::parse("archived").is_err());
    }

    #[test]
    fn content_types_accept_dashes_and_case() {
        assert_eq!(ContentType::parse("case-study"), Ok(ContentType::CaseStudy));
        assert_eq!(
            ContentType::parse("Roi_Calculator"),
            Ok(ContentType::RoiCalculator)
        );
        assert_eq!(ContentType::parse("api docs"), Ok(ContentType::ApiDocs));
        for t in ContentType::ALL {
            assert!(!t.default_stages().is_empty(), "{t}");
        }
    }

    #[test]
    fn lists_are_deduplicated_in_canonical_order() {
        let stages = Stage::parse_list(&["decision", "awareness", "purchase", " "]);
        assert_eq!(stages, Ok(vec![Stage::Awareness, Stage::Decision]));
        assert_eq!(Stage::mask(&[Stage::Awareness, Stage::Decision]), 0b101);
    }

    #[test]
    fn industry_slugs_normalise_and_know_their_family() {
        let payments = IndustrySlug::parse("Financial Services/Payments").unwrap();
        assert_eq!(payments.as_str(), "financial-services/payments");
        let fs = IndustrySlug::parse("financial-services").unwrap();
        assert!(fs.is_ancestor_of(&payments));
        assert!(!payments.is_ancestor_of(&fs));
        assert!(
            !IndustrySlug::parse("financial")
                .unwrap()
                .is_ancestor_of(&fs)
        );
        assert_eq!(payments.self_and_ancestors(), vec![payments.clone(), fs]);
        assert_eq!(payments.default_label(), "Payments");
        for bad in ["", "a//b", "retail/", "ünïcode", "a/b/c/d/e", "semi;colon"] {
            assert!(IndustrySlug::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn language_tags_are_normalised() {
        assert_eq!(Language::parse("EN").unwrap().as_str(), "en");
        assert_eq!(Language::parse("pt_br").unwrap().as_str(), "pt-BR");
        assert_eq!(
            Language::parse("zh-hans-cn").unwrap().as_str(),
            "zh-Hans-CN"
        );
        assert_eq!(Language::parse("zh-Hant-TW").unwrap().primary(), "zh");
        for bad in ["", "e", "english", "en-", "12"] {
            assert!(Language::parse(bad).is_err(), "{bad}");
        }
    }
}
