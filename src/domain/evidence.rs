//! Where each tag of an asset comes from, and tags read from an asset's own text.
//!
//! A content team declares some tags; most real libraries declare few or none. For every
//! kind of tag (stages, roles, industries, concerns) an asset therefore records its
//! *source*: `Declared` by a person, `Inferred` from the asset's title, summary, body, URL
//! path and content type (with a confidence), or `Default` (the content type's default
//! stages; for the other kinds, nothing known). Ranking weighs a tag by its source, and
//! reasons say which it was.
//!
//! The inference is a transparent vote of the buying-journey vocabulary (what each stage
//! worries about, what each seat on the committee looks for; English and Chinese), each cue
//! weighted by where it is found (title and path count most), plus a weak prior from the
//! content type. Scores become confidences by a softmax; below [`ABSTAIN_BELOW`] (for
//! stages [`STAGE_ABSTAIN_BELOW`]) the inference abstains and the kind stays `Default`. It
//! reads no other asset, so it never learns from defaults as if they were labels, and an
//! asset's tags change only when its own text does.

use super::asset::{opening, url_segments};
use super::taxonomy::{Concern, ContentType, IndustrySlug, Role, Stage, TaxonomyValue};

/// Below this confidence an inferred value is not used (the kind stays `Default`).
pub const ABSTAIN_BELOW: f64 = 0.45;
/// Stages abstain lower: on the judged real libraries a stage read at less than 0.45 was
/// still right 58% of the time, the content type's default stage 35%.
pub const STAGE_ABSTAIN_BELOW: f64 = 0.3;
/// How much of the body is read: the opening of a page says what it is for.
const BODY_CHARS: usize = 6_000;

/// Where a kind of tag comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TagSource {
    /// Set by the content team (in the library, or accepted from a suggestion).
    Declared,
    /// Read from the asset's own text, with a confidence.
    Inferred,
    /// Nothing declared and nothing inferred: stages are the content type's defaults; roles
    /// and concerns are unknown; industries are none (cross-industry).
    Default,
}

impl TagSource {
    pub fn name(self) -> &'static str {
        match self {
            TagSource::Declared => "DECLARED",
            TagSource::Inferred => "INFERRED",
            TagSource::Default => "DEFAULT",
        }
    }
}

/// How far ranking trusts a kind of tag: the source, and for inferred tags the confidence
/// in two bands. Ranking needs few distinct grades (each is a level of the tier walk).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Trust {
    Declared,
    /// Inferred with confidence of at least [`STRONG_FROM`].
    Strong,
    /// Inferred with less.
    Likely,
    Default,
}

/// Inferred confidence from which a tag counts as `Trust::Strong`.
pub const STRONG_FROM: f64 = 0.7;

impl Trust {
    pub const ALL: [Trust; 4] = [
        Trust::Declared,
        Trust::Strong,
        Trust::Likely,
        Trust::Default,
    ];

    /// How much of a factor's fit ranking believes: the value used is
    /// `strength * fit + (1 - strength) * neutral`, where neutral is what an unknown tag is
    /// worth.
    pub fn strength(self) -> f64 {
        match self {
            Trust::Declared => 1.0,
            Trust::Strong => 0.75,
            Trust::Likely => 0.5,
            Trust::Default => 0.25,
        }
    }

    /// The prefix of this grade's index terms; declared tags keep their plain value, so a
    /// fully tagged library is indexed and ranked as it always was.
    pub fn prefix(self) -> &'static str {
        match self {
            Trust::Declared => "",
            Trust::Strong => "s~",
            Trust::Likely => "l~",
            Trust::Default => "d~",
        }
    }
}

/// The source of one kind of tag, with the confidence of its best value (1 when declared,
/// 0 when defaulted).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KindEvidence {
    pub source: TagSource,
    pub confidence: f64,
}

impl KindEvidence {
    pub const DECLARED: Self = Self {
        source: TagSource::Declared,
        confidence: 1.0,
    };
    pub const DEFAULT: Self = Self {
        source: TagSource::Default,
        confidence: 0.0,
    };

    pub fn trust(&self) -> Trust {
        match self.source {
            TagSource::Declared => Trust::Declared,
            TagSource::Inferred if self.confidence >= STRONG_FROM => Trust::Strong,
            TagSource::Inferred => Trust::Likely,
            TagSource::Default => Trust::Default,
        }
    }
}

/// The source of each kind of tag of an asset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TagEvidence {
    pub stages: KindEvidence,
    pub roles: KindEvidence,
    pub industries: KindEvidence,
    pub concerns: KindEvidence,
}

impl TagEvidence {
    pub const DECLARED: Self = Self {
        stages: KindEvidence::DECLARED,
        roles: KindEvidence::DECLARED,
        industries: KindEvidence::DECLARED,
        concerns: KindEvidence::DECLARED,
    };
}

/// What the text says, best first per kind, every value at or above
/// [`MIN_REPORTED`] (what `suggestTags` and the review file show).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InferredTags {
    pub stages: Vec<(Stage, f64)>,
    /// Whether the best stage is one the text's own words vote for (not the format's prior
    /// alone): only then is a reading below [`ABSTAIN_BELOW`] used.
    pub stage_named: bool,
    pub roles: Vec<(Role, f64)>,
    pub industries: Vec<(IndustrySlug, f64)>,
    pub concerns: Vec<(Concern, f64)>,
}

/// Inferred values below this confidence are not reported at all.
pub const MIN_REPORTED: f64 = 0.1;

/// The text an inference reads.
pub struct InferenceInput<'a> {
    pub title: &'a str,
    pub summary: &'a str,
    pub body: &'a str,
    pub url: &'a str,
    /// Unknown for a bare text (`suggestTags(text:)`).
    pub content_type: Option<ContentType>,
}

/// Where a cue is found and what finding it there weighs.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    Title,
    Path,
    Summary,
    Body,
}

impl Place {
    fn weight(self) -> f64 {
        match self {
            Place::Title => 3.0,
            Place::Path => 2.0,
            Place::Summary => 1.5,
            Place::Body => 1.0,
        }
    }
}

/// One cue: a word or phrase (lowercase; English words match at word starts, so `integrat`
/// finds `integration`; Chinese matches anywhere) and what it votes for, with a weight.
type Cue = (&'static str, f64);

const STAGE_CUES: [(Stage, &[Cue]); 5] = [
    (
        Stage::Awareness,
        &[
            ("what is", 1.5),
            ("why ", 1.0),
            ("trend", 1.5),
            ("introduction to", 1.5),
            ("challenge", 1.0),
            ("state of", 1.5),
            ("future of", 1.5),
            ("the rise of", 1.5),
            ("ebook", 1.0),
            ("research", 1.0),
            ("survey", 1.0),
            ("insight", 1.0),
            ("lessons", 0.8),
            ("thought", 0.5),
            ("problem", 0.8),
            ("beginner", 1.0),
            ("explained", 1.2),
            ("101", 1.0),
            // Thought leadership names a pain and a vision, not a procedure.
            ("imagine", 1.2),
            ("these days", 1.0),
            ("we believe", 1.2),
            ("vision", 1.0),
            ("the age of", 1.2),
            ("mainstream", 1.0),
            ("wasting", 1.0),
            ("friction", 1.0),
            ("productivity", 0.8),
            ("bottleneck", 1.0),
            ("frustrat", 1.0),
            ("pain", 0.8),
            ("痛点", 1.2),
            ("愿景", 1.0),
            ("时代", 1.0),
            ("效率", 0.8),
            ("瓶颈", 1.0),
            ("什么是", 1.5),
            ("趋势", 1.5),
            ("挑战", 1.0),
            ("洞察", 1.0),
            ("报告", 0.8),
            ("为什么", 1.0),
        ],
    ),
    (
        Stage::Consideration,
        &[
            (" vs ", 2.5),
            (" vs.", 2.5),
            ("versus", 2.5),
            ("compar", 2.0),
            ("alternative", 2.5),
            ("buyer", 2.0),
            ("evaluat", 1.5),
            ("checklist", 1.2),
            ("how to choose", 2.0),
            ("choosing", 1.5),
            ("criteria", 1.2),
            ("best practices", 1.0),
            ("benefits", 1.0),
            ("top ", 0.8),
            ("options", 0.8),
            ("approach", 0.6),
            ("features", 1.0),
            ("overview", 1.0),
            ("analyst", 1.2),
            ("webinar", 0.8),
            ("对比", 2.0),
            ("比较", 2.0),
            ("选型", 2.5),
            ("替代", 2.0),
            ("评估", 1.5),
            ("优势", 1.0),
            ("方案", 1.0),
            ("功能", 0.8),
        ],
    ),
    (
        Stage::Decision,
        &[
            ("pricing", 3.0),
            ("price", 2.0),
            ("plans", 1.2),
            ("quote", 1.0),
            ("case stud", 3.0),
            ("customer stor", 3.0),
            ("success stor", 2.5),
            ("customers", 1.2),
            ("testimonial", 2.0),
            ("demo", 2.0),
            ("free trial", 2.0),
            ("trial", 1.0),
            ("security", 1.2),
            ("compliance", 1.2),
            ("soc 2", 1.5),
            ("gdpr", 1.2),
            ("contract", 1.2),
            ("sla", 1.0),
            ("enterprise", 0.8),
            ("results", 0.8),
            ("increased", 0.6),
            ("reduced", 0.6),
            ("roi", 1.2),
            ("why choose", 2.0),
            // Buying words: the licence, the bill, a call with sales. (Not "subscription"
            // or 订阅 or 授权: publish/subscribe and authorization are technical.)
            ("licens", 1.5),
            ("purchas", 1.5),
            ("billing", 1.2),
            ("per user", 1.5),
            ("per month", 1.5),
            ("contact sales", 2.0),
            ("talk to sales", 2.0),
            ("价格", 3.0),
            ("定价", 3.0),
            ("案例", 3.0),
            ("客户故事", 3.0),
            ("试用", 2.0),
            ("演示", 2.0),
            ("安全", 1.0),
            ("合规", 1.2),
            ("合同", 1.2),
            ("购买", 1.5),
            ("联系销售", 2.0),
        ],
    ),
    (
        Stage::Adoption,
        &[
            ("install", 2.5),
            ("configur", 2.0),
            ("setup", 2.0),
            ("set up", 2.0),
            ("getting started", 2.5),
            ("get started", 2.0),
            ("quickstart", 2.5),
            ("quick start", 2.5),
            ("tutorial", 2.0),
            ("how to ", 1.2),
            ("api", 1.5),
            ("sdk", 2.0),
            ("endpoint", 2.0),
            ("parameter", 1.5),
            ("reference", 1.5),
            ("troubleshoot", 2.0),
            ("release note", 3.0),
            ("changelog", 3.0),
            ("what's new", 2.5),
            // What a release brings is for those who use the product (as 发布 below).
            ("release", 1.2),
            ("version", 1.0),
            ("upgrad", 1.5),
            ("migrat", 1.2),
            ("onboard", 2.0),
            ("docs", 1.5),
            ("documentation", 1.5),
            ("guide", 0.8),
            ("example", 1.0),
            ("step", 0.8),
            ("command", 1.2),
            ("deploy", 1.2),
            ("training", 1.5),
            ("安装", 2.5),
            ("配置", 2.0),
            ("快速开始", 2.5),
            ("入门", 2.0),
            ("教程", 2.0),
            ("接口", 1.5),
            ("参数", 1.5),
            ("部署", 1.5),
            ("升级", 1.5),
            ("发布", 1.5),
            ("文档", 1.5),
            ("使用", 0.8),
            ("培训", 1.5),
        ],
    ),
    (
        Stage::Advocacy,
        &[
            ("community", 2.0),
            ("champion", 2.0),
            ("referral", 2.5),
            ("ambassador", 2.5),
            ("award", 1.5),
            ("advocate", 2.0),
            ("share your", 2.0),
            ("user group", 2.0),
            ("meetup", 1.5),
            ("contribut", 1.0),
            ("社区", 2.0),
            ("分享", 1.0),
            ("推荐", 1.0),
            ("大会", 1.0),
        ],
    ),
];

const ROLE_CUES: [(Role, &[Cue]); 5] = [
    (
        Role::DecisionMaker,
        &[
            ("strateg", 1.5),
            ("executive", 2.0),
            ("leader", 1.5),
            ("ceo", 2.0),
            ("cio", 2.0),
            ("cto", 1.5),
            ("vp ", 1.5),
            ("business case", 2.0),
            ("roi", 1.5),
            ("revenue", 1.2),
            ("growth", 1.2),
            ("competitive", 1.2),
            ("transform", 1.2),
            ("market", 0.8),
            ("case stud", 1.5),
            ("customer stor", 1.5),
            ("why ", 0.6),
            ("risk", 0.8),
            ("compliance", 0.8),
            ("vendor", 0.8),
            ("decision", 1.0),
            ("战略", 1.5),
            ("增长", 1.2),
            ("收入", 1.2),
            ("转型", 1.2),
            ("管理者", 2.0),
            ("决策", 1.5),
            ("案例", 1.0),
        ],
    ),
    (
        Role::TechnicalIntegrator,
        &[
            ("api", 2.0),
            ("sdk", 2.5),
            ("endpoint", 2.0),
            ("integrat", 1.5),
            ("install", 2.0),
            ("configur", 1.5),
            ("developer", 2.0),
            ("code", 1.2),
            ("json", 2.0),
            ("webhook", 2.0),
            ("authenticat", 1.5),
            ("sso", 1.5),
            ("saml", 2.0),
            ("oauth", 2.0),
            ("deploy", 1.5),
            ("kubernetes", 2.0),
            ("docker", 2.0),
            ("cli", 1.5),
            ("schema", 1.5),
            ("database", 1.2),
            ("sql", 1.5),
            ("architecture", 1.5),
            ("latency", 1.5),
            ("performance", 0.8),
            ("encrypt", 1.2),
            ("parameter", 1.5),
            ("query", 1.0),
            ("server", 1.0),
            ("接口", 2.0),
            ("开发", 2.0),
            ("部署", 1.5),
            ("集成", 1.5),
            ("代码", 1.5),
            ("架构", 1.5),
            ("数据库", 1.5),
            ("配置", 1.2),
            ("性能", 1.0),
        ],
    ),
    (
        Role::BusinessUser,
        &[
            ("dashboard", 1.5),
            ("report", 1.0),
            ("workflow", 1.2),
            ("team", 1.0),
            ("campaign", 1.5),
            ("marketing", 1.2),
            ("sales", 1.0),
            ("analyst", 0.8),
            // A template is a report's or a campaign's as often as a code project's.
            ("template", 0.5),
            ("how to ", 0.8),
            ("tips", 1.2),
            ("productivity", 1.5),
            ("collaborat", 1.2),
            ("customer success", 1.2),
            ("use case", 1.0),
            ("funnel", 1.2),
            ("retention", 1.0),
            ("团队", 1.0),
            ("报表", 1.5),
            ("营销", 1.5),
            ("运营", 1.5),
            ("销售", 1.0),
            ("技巧", 1.2),
        ],
    ),
    (
        Role::Procurement,
        &[
            ("procure", 2.5),
            ("purchas", 2.0),
            ("contract", 2.0),
            ("terms", 1.2),
            ("rfp", 2.5),
            ("vendor", 1.5),
            ("supplier", 1.5),
            ("licens", 1.2),
            ("sla", 1.5),
            ("agreement", 1.5),
            ("采购", 2.5),
            ("合同", 2.0),
            ("招标", 2.5),
            ("供应商", 1.5),
        ],
    ),
    (
        Role::Finance,
        &[
            ("pricing", 2.0),
            ("price", 1.5),
            ("cost", 1.5),
            ("tco", 2.5),
            ("payback", 2.5),
            ("budget", 2.0),
            ("invoice", 1.5),
            ("billing", 1.5),
            ("payment", 1.0),
            ("savings", 1.5),
            ("roi", 1.2),
            ("cfo", 2.5),
            ("finance", 1.5),
            ("价格", 2.0),
            ("成本", 1.5),
            ("预算", 2.0),
            ("财务", 2.0),
            ("发票", 1.5),
        ],
    ),
];

const CONCERN_CUES: [(Concern, &[Cue]); 6] = [
    (
        Concern::Need,
        &[
            ("challenge", 1.0),
            ("problem", 1.0),
            ("why ", 0.8),
            ("pain", 1.0),
            ("trend", 0.8),
            ("挑战", 1.0),
            ("痛点", 1.5),
        ],
    ),
    (
        Concern::Fit,
        &[
            ("integrat", 1.0),
            ("requirement", 1.2),
            ("compatib", 1.2),
            ("features", 0.8),
            (" vs ", 1.2),
            ("compar", 1.0),
            ("alternative", 1.2),
            ("集成", 1.0),
            ("对比", 1.2),
            ("功能", 0.8),
        ],
    ),
    (
        Concern::Risk,
        &[
            ("security", 1.5),
            ("compliance", 1.5),
            ("gdpr", 1.5),
            ("soc 2", 1.5),
            ("privacy", 1.2),
            ("reliab", 1.0),
            ("uptime", 1.2),
            ("encrypt", 1.0),
            ("audit", 0.8),
            ("安全", 1.5),
            ("合规", 1.5),
            ("隐私", 1.2),
        ],
    ),
    (
        Concern::Cost,
        &[
            ("pricing", 1.5),
            ("price", 1.2),
            ("cost", 1.2),
            ("roi", 1.2),
            ("tco", 1.5),
            ("budget", 1.0),
            ("savings", 1.0),
            ("价格", 1.5),
            ("成本", 1.2),
        ],
    ),
    (
        Concern::Adoption,
        &[
            ("getting started", 1.5),
            ("onboard", 1.5),
            ("install", 1.2),
            ("setup", 1.0),
            ("set up", 1.0),
            ("tutorial", 1.2),
            ("training", 1.2),
            ("migrat", 1.0),
            ("入门", 1.5),
            ("教程", 1.2),
            ("安装", 1.2),
        ],
    ),
    (
        Concern::Validation,
        &[
            ("case stud", 1.5),
            ("customer stor", 1.5),
            ("testimonial", 1.5),
            ("results", 0.8),
            ("analyst", 1.0),
            ("review", 0.6),
            ("award", 1.0),
            ("案例", 1.5),
            ("客户", 0.8),
        ],
    ),
];

/// Industries a text can name: the slug and its cues.
const INDUSTRY_CUES: [(&str, &[Cue]); 17] = [
    (
        "healthcare",
        &[
            ("healthcare", 2.0),
            ("health care", 2.0),
            ("hospital", 2.0),
            ("patient", 1.5),
            ("clinic", 1.5),
            ("medical", 1.5),
            ("医疗", 2.0),
            ("医院", 2.0),
        ],
    ),
    (
        "healthcare/pharma",
        &[
            ("pharma", 2.0),
            ("life science", 2.0),
            ("biotech", 2.0),
            ("制药", 2.0),
        ],
    ),
    (
        "financial-services",
        &[
            ("financial services", 2.0),
            ("fintech", 2.0),
            ("finance industry", 2.0),
            ("金融", 2.0),
        ],
    ),
    (
        "financial-services/banking",
        &[("bank", 2.0), ("lending", 1.5), ("银行", 2.0)],
    ),
    (
        "financial-services/insurance",
        &[("insurance", 2.0), ("insurer", 2.0), ("保险", 2.0)],
    ),
    (
        "financial-services/payments",
        &[
            ("payments company", 2.0),
            ("payment provider", 2.0),
            ("支付", 1.5),
        ],
    ),
    (
        "retail",
        &[("retail", 2.0), ("retailer", 2.0), ("零售", 2.0)],
    ),
    (
        "retail/ecommerce",
        &[
            ("ecommerce", 2.0),
            ("e-commerce", 2.0),
            ("online store", 2.0),
            ("marketplace", 1.2),
            ("电商", 2.0),
        ],
    ),
    (
        "manufacturing",
        &[
            ("manufactur", 2.0),
            ("factory", 2.0),
            ("industrial", 1.5),
            ("制造", 2.0),
            ("工厂", 2.0),
        ],
    ),
    (
        "manufacturing/automotive",
        &[("automotive", 2.0), ("carmaker", 2.0), ("汽车", 2.0)],
    ),
    (
        "education",
        &[
            ("education", 2.0),
            ("university", 2.0),
            ("school", 1.5),
            ("student", 1.5),
            ("edtech", 2.0),
            ("教育", 2.0),
            ("高校", 2.0),
        ],
    ),
    (
        "logistics",
        &[
            ("logistics", 2.0),
            ("shipping", 1.2),
            ("supply chain", 1.5),
            ("物流", 2.0),
        ],
    ),
    (
        "energy",
        &[
            ("energy", 1.5),
            ("utilities", 1.5),
            ("oil and gas", 2.0),
            ("能源", 2.0),
            ("电力", 2.0),
        ],
    ),
    (
        "public-sector",
        &[
            ("government", 2.0),
            ("public sector", 2.0),
            ("政府", 2.0),
            ("政务", 2.0),
        ],
    ),
    (
        "telecom",
        &[
            ("telecom", 2.0),
            ("telco", 2.0),
            ("carrier", 1.0),
            ("运营商", 2.0),
            ("电信", 2.0),
        ],
    ),
    (
        "media",
        &[
            ("media", 1.2),
            ("publisher", 1.5),
            ("video streaming", 2.0),
            ("streaming service", 2.0),
            ("gaming", 1.5),
            ("video game", 1.5),
            ("游戏", 2.0),
            ("媒体", 1.5),
        ],
    ),
    (
        "hospitality",
        &[
            ("hotel", 2.0),
            ("hospitality", 2.0),
            ("travel", 1.5),
            ("restaurant", 1.5),
            ("酒店", 2.0),
            ("旅游", 1.5),
        ],
    ),
];

/// Industry cues that are everyday words elsewhere ("time and energy", "social media",
/// "the VS Code marketplace", "storage utilities"): they count in the title, path and
/// summary, not in the body. (Words that are verbs in technical writing, "store" and
/// "streaming", are not cues at all: "video streaming" is.)
const EVERYDAY_INDUSTRY_WORDS: &[&str] = &[
    "energy",
    "utilities",
    "gaming",
    "media",
    "shipping",
    "carrier",
    "marketplace",
    "travel",
    "industrial",
    "school",
    "student",
];

/// A stage's prior from the format: what the content type says before the words do.
/// Deliberately weaker than a title cue: a blog post can be a release note.
const FORMAT_PRIOR: f64 = 2.0;
/// Roles the format suggests, with the same weight.
fn format_roles(content_type: ContentType) -> &'static [Role] {
    use ContentType::*;
    match content_type {
        ApiDocs | Documentation | ImplementationGuide | ReleaseNotes => {
            &[Role::TechnicalIntegrator]
        }
        PricingSheet | RoiCalculator => &[Role::Finance],
        CaseStudy | AnalystReport | ComparisonGuide => &[Role::DecisionMaker],
        Training => &[Role::BusinessUser],
        _ => &[],
    }
}

/// The decision maker's prior on a text that is surely read before the purchase
/// (awareness, consideration, decision), scaled by how sure that is: a little more than
/// the format's, since a committee's technical readers arrive mostly after it.
const BEFORE_PURCHASE_PRIOR: f64 = 3.0;

/// Marks of a writer speaking for themselves (first person) and of questions: the voice of
/// an essay, an announcement, a story. English words count whole.
/// (Not 我 alone: it is inside every 我们, which would count twice.)
const ESSAY_MARKS: [&str; 10] = [
    "we", "our", "us", "ours", "i", "my", "?", "？", "我们", "咱们",
];
/// Marks of instructions: the voice of a guide. English words count whole, except those
/// that are cues as well (`install`, `configur`, `command`), which count at word starts
/// like every cue; phrases count wherever they start a word.
const PROCEDURE_MARKS: [&str; 29] = [
    "click",
    "run",
    "select",
    "enter",
    "navigate",
    "type",
    "press",
    "install",
    "configur",
    "step 1",
    "step 2",
    "the following",
    "create a",
    "open the",
    "to do this",
    "make sure",
    "go to",
    "note:",
    "e.g.",
    "command",
    "步骤",
    "点击",
    "运行",
    "执行",
    "输入",
    "选择",
    "首先",
    "然后",
    "安装",
];
/// Fewer voice marks than this say nothing about the voice.
const MIN_VOICE_MARKS: u32 = 4;

/// The share of essay marks among the essay and instruction marks of the summary and the
/// body's opening (0: a guide, 1: an essay); `None` when there are too few to tell. Read
/// from the same single pass as the cues.
fn essay_share(places: &Places) -> Option<f64> {
    let ids = &VOCABULARY.ids;
    let count = |marks: &[&str]| -> u32 {
        places
            .counts
            .iter()
            .filter(|(place, _)| matches!(place, Place::Summary | Place::Body))
            .map(|(_, counts)| {
                marks
                    .iter()
                    .filter_map(|m| ids.get(m))
                    .map(|&id| u32::from(counts[id]))
                    .sum::<u32>()
            })
            .sum()
    };
    let (essay, procedure) = (count(&ESSAY_MARKS), count(&PROCEDURE_MARKS));
    let marks = essay + procedure;
    (marks >= MIN_VOICE_MARKS).then(|| f64::from(essay) / f64::from(marks))
}

/// How much adoption's words in the summary and body count, by the text's voice: fully in
/// a guide or mixed prose, down to [`ESSAY_ADOPTION_WEIGHT`] in pure essay.
fn adoption_weight(essay_share: Option<f64>) -> f64 {
    let essayness = essay_share.map_or(0.0, |s| ((s - 0.5) / 0.5).clamp(0.0, 1.0));
    1.0 - (1.0 - ESSAY_ADOPTION_WEIGHT) * essayness
}

/// What adoption's words in an essay's summary and body weigh.
const ESSAY_ADOPTION_WEIGHT: f64 = 0.4;

/// How sure the softmax is willing to be: scores are divided by this before it.
const TEMPERATURE: f64 = 2.5;

/// Every cue of every kind in one automaton, so a text is read once whatever the number of
/// cues (a cue list searched one cue at a time read each body hundreds of times).
struct Vocabulary {
    /// `None` only if the fixed cues of this file could not be built (never seen).
    automaton: Option<aho_corasick::AhoCorasick>,
    /// Per pattern: whether it must start a word (English cues that start with a letter).
    word_start: Vec<bool>,
    /// Per pattern: what else a voice mark needs to count.
    voice_rule: Vec<VoiceRule>,
    ids: std::collections::HashMap<&'static str, usize>,
}

/// What a match of a voice mark needs besides starting a word.
#[derive(Clone, Copy)]
enum VoiceRule {
    /// A cue, or a mark that is a phrase or not English: nothing more.
    None,
    /// One of the voice's English words: a word of its own, not part of a name or a code
    /// ("we" is not "web"; "us-east-1", "my-app" and "i.e." are no first person).
    WholeWord,
    /// "?": after a letter and before a space or the end, as a question ends (not a URL's
    /// query string or an operator).
    Question,
}

/// Whether the match at `start..end` of `text` is a word of its own: no letter or digit
/// next to it, and no `-`, `_`, `/` or `.` joining it to one.
fn stands_alone(text: &str, start: usize, end: usize) -> bool {
    let joins = |c: Option<char>| matches!(c, Some('-' | '_' | '/' | '.'));
    let alnum = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let mut after = text[end..].chars();
    let (a1, a2) = (after.next(), after.next());
    let mut before = text[..start].chars().rev();
    let (b1, b2) = (before.next(), before.next());
    let joined_after = alnum(a1) || (joins(a1) && alnum(a2));
    let joined_before = alnum(b1) || (joins(b1) && alnum(b2));
    !(joined_after || joined_before)
}

/// Whether the `?` at `start..end` of `text` ends a question.
fn ends_a_question(text: &str, start: usize, end: usize) -> bool {
    text[..start]
        .chars()
        .next_back()
        .is_some_and(char::is_alphabetic)
        && text[end..]
            .chars()
            .next()
            .is_none_or(|c| c.is_whitespace() || matches!(c, '"' | '\'' | ')'))
}

static VOCABULARY: std::sync::LazyLock<Vocabulary> = std::sync::LazyLock::new(|| {
    let mut patterns: Vec<&'static str> = Vec::new();
    let lists = STAGE_CUES
        .iter()
        .map(|(_, c)| *c)
        .chain(ROLE_CUES.iter().map(|(_, c)| *c))
        .chain(CONCERN_CUES.iter().map(|(_, c)| *c))
        .chain(INDUSTRY_CUES.iter().map(|(_, c)| *c));
    for cues in lists {
        for (cue, _) in cues {
            if !patterns.contains(cue) {
                patterns.push(cue);
            }
        }
    }
    // The voice's marks; those that are no cue and are plain words count whole.
    let cue_count = patterns.len();
    for mark in ESSAY_MARKS.iter().chain(PROCEDURE_MARKS.iter()) {
        if !patterns.contains(mark) {
            patterns.push(mark);
        }
    }
    let word_start = patterns
        .iter()
        .map(|p| p.is_ascii() && p.starts_with(|c: char| c.is_alphanumeric()))
        .collect();
    let voice_rule = patterns
        .iter()
        .enumerate()
        .map(|(i, p)| match *p {
            "?" => VoiceRule::Question,
            p if i >= cue_count && p.chars().all(|c| c.is_ascii_alphabetic()) => {
                VoiceRule::WholeWord
            }
            _ => VoiceRule::None,
        })
        .collect();
    let ids = patterns.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    Vocabulary {
        automaton: aho_corasick::AhoCorasick::new(&patterns).ok(),
        word_start,
        voice_rule,
        ids,
    }
});

/// Matches of a cue counted past this say nothing more.
const MAX_MATCHES: u8 = 8;

/// Per place an inference reads, how often each cue of the vocabulary occurs there.
struct Places {
    counts: [(Place, Vec<u8>); 4],
}

impl Places {
    fn new(input: &InferenceInput<'_>) -> Self {
        // The path's folders and slug as words: `/docs/getting-started` reads
        // "docs getting started".
        let path: String = url_segments(input.url)
            .flat_map(|s| s.split(['-', '_', '.']))
            .collect::<Vec<_>>()
            .join(" ");
        let read = |text: &str| -> Vec<u8> {
            let vocabulary = &*VOCABULARY;
            let text = format!(" {} ", text.to_lowercase());
            let mut counts = vec![0u8; vocabulary.word_start.len()];
            let Some(automaton) = &vocabulary.automaton else {
                return counts;
            };
            for m in automaton.find_overlapping_iter(&text) {
                let id = m.pattern().as_usize();
                let starts_word = !vocabulary.word_start[id]
                    || text[..m.start()]
                        .chars()
                        .next_back()
                        .is_none_or(|c| !c.is_alphanumeric());
                let stands_alone = match vocabulary.voice_rule[id] {
                    VoiceRule::None => true,
                    VoiceRule::WholeWord => stands_alone(&text, m.start(), m.end()),
                    VoiceRule::Question => ends_a_question(&text, m.start(), m.end()),
                };
                if starts_word && stands_alone && counts[id] < MAX_MATCHES {
                    counts[id] += 1;
                }
            }
            counts
        };
        Self {
            counts: [
                (Place::Title, read(input.title)),
                (Place::Path, read(&path)),
                (Place::Summary, read(input.summary)),
                (Place::Body, read(opening(input.body, BODY_CHARS))),
            ],
        }
    }

    /// The cues' weighted evidence: per place, each cue's weight times the log of one plus
    /// its matches (the tenth mention says little more than the third).
    fn score(&self, cues: &[Cue]) -> f64 {
        self.score_scaled(cues, |_, _| 1.0)
    }

    /// The same, each cue's evidence in each place scaled by `scale(place, cue)`.
    fn score_scaled(&self, cues: &[Cue], scale: impl Fn(Place, &str) -> f64) -> f64 {
        let ids = &VOCABULARY.ids;
        let mut total = 0.0;
        for (place, counts) in &self.counts {
            for (cue, weight) in cues {
                let n = ids.get(cue).map_or(0, |&id| counts[id]);
                if n == 0 {
                    continue;
                }
                let scale = scale(*place, cue);
                if scale > 0.0 {
                    total += scale * place.weight() * weight * (1.0 + f64::from(n)).ln();
                }
            }
        }
        total
    }
}

fn softmax<T: Copy>(scores: &[(T, f64)]) -> Vec<(T, f64)> {
    let best = scores.iter().map(|(_, s)| *s).fold(f64::MIN, f64::max);
    let total: f64 = scores
        .iter()
        .map(|(_, s)| ((s - best) / TEMPERATURE).exp())
        .sum();
    scores
        .iter()
        .map(|(v, s)| (*v, ((s - best) / TEMPERATURE).exp() / total))
        .collect()
}

fn best_first<T>(mut values: Vec<(T, f64)>) -> Vec<(T, f64)> {
    values.retain(|(_, c)| *c >= MIN_REPORTED);
    values.sort_by(|a, b| b.1.total_cmp(&a.1));
    values
}

/// Reads stages, roles, industries and concerns from an asset's own text.
pub fn infer_tags(input: &InferenceInput<'_>) -> InferredTags {
    let places = Places::new(input);
    let adoption_in_prose = adoption_weight(essay_share(&places));
    let defaults = input
        .content_type
        .map_or(&[][..], ContentType::default_stages);
    // The stages the text's own words vote for (not the format's prior alone).
    let mut named: Vec<Stage> = Vec::new();
    let stage_scores: Vec<(Stage, f64)> = STAGE_CUES
        .iter()
        .map(|(stage, cues)| {
            let prior = if defaults.contains(stage) {
                FORMAT_PRIOR / defaults.len() as f64
            } else {
                0.0
            };
            // An essay speaks of setup and onboarding; a guide does them: in prose written
            // as an essay, the words of adoption in the summary and body count less.
            let evidence = if *stage == Stage::Adoption {
                places.score_scaled(cues, |place, _| match place {
                    Place::Summary | Place::Body => adoption_in_prose,
                    Place::Title | Place::Path => 1.0,
                })
            } else {
                places.score(cues)
            };
            if evidence > 0.0 {
                named.push(*stage);
            }
            (*stage, evidence + prior)
        })
        .collect();
    let format_roles = input.content_type.map_or(&[][..], format_roles);
    // Who reads before the purchase: the committee's decision maker first, however
    // technical the words (a "why time-series data" post talks of engineering to the
    // person who decides). The prior grows with how surely the text is pre-purchase.
    let stage_probs = softmax(&stage_scores);
    let before_purchase: f64 = stage_probs
        .iter()
        .filter(|(s, _)| matches!(s, Stage::Awareness | Stage::Consideration | Stage::Decision))
        .map(|(_, p)| p)
        .sum();
    let mut role_scores: Vec<(Role, f64)> = ROLE_CUES
        .iter()
        .map(|(role, cues)| {
            let prior = if format_roles.contains(role) {
                FORMAT_PRIOR
            } else {
                0.0
            };
            (*role, places.score(cues) + prior)
        })
        .collect();
    // It moves a role that words or the format suggest; it never makes one up.
    if role_scores.iter().any(|(_, s)| *s > 0.0) {
        for (role, score) in &mut role_scores {
            if *role == Role::DecisionMaker {
                *score += BEFORE_PURCHASE_PRIOR * before_purchase;
            }
        }
    }
    // Industries and concerns are not one-of-many: each is named or not. A value's
    // confidence grows with its evidence (`1 - e^(-s/4)`: a title mention about 0.6, one
    // body mention 0.15), and industries share it when several are named.
    let saturate = |s: f64| 1.0 - (-s / 4.0).exp();
    let industries: Vec<(IndustrySlug, f64)> = INDUSTRY_CUES
        .iter()
        .filter_map(|(slug, cues)| {
            // A word with an everyday sense names the industry only where the page says
            // what it is about.
            let s = places.score_scaled(cues, |place, cue| {
                if place == Place::Body && EVERYDAY_INDUSTRY_WORDS.contains(&cue) {
                    0.0
                } else {
                    1.0
                }
            });
            (s > 0.0).then(|| IndustrySlug::parse(slug).ok().map(|i| (i, s)))?
        })
        .collect();
    let industry_total: f64 = industries.iter().map(|(_, s)| s).sum();
    let industries = industries
        .into_iter()
        .map(|(i, s)| (i, saturate(industry_total) * s / industry_total))
        .collect();
    let concerns = CONCERN_CUES
        .iter()
        .map(|(concern, cues)| (*concern, saturate(places.score(cues))))
        .collect();
    InferredTags {
        // The format alone is the default, not a reading of the text.
        stage_named: stage_probs
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .is_some_and(|(best, _)| named.contains(best)),
        stages: if !named.is_empty() {
            best_first(stage_probs)
        } else {
            Vec::new()
        },
        roles: if role_scores.iter().any(|(_, s)| *s > 0.0) {
            best_first(softmax(&role_scores))
        } else {
            Vec::new()
        },
        industries: best_first(industries),
        concerns: best_first(concerns),
    }
}

/// The confidence an inference gives one value; 0 when it does not report it.
pub fn confidence_of<T: PartialEq>(inferred: &[(T, f64)], value: T) -> f64 {
    inferred
        .iter()
        .find(|(v, _)| *v == value)
        .map_or(0.0, |(_, c)| *c)
}

/// How surely an asset speaks to an audience's stage and role, from its packed
/// `Asset::leanings`: the product of the two in five steps (0 to 4; without a role, the
/// stage's alone). What decides between assets that score the same for that audience,
/// before prominence.
pub fn audience_leaning(leanings: u64, stage: Stage, role: Option<Role>) -> u32 {
    let at = |i: usize| ((leanings >> (6 * i)) & 63) as u32;
    let stage_sure = at(stage.ordinal());
    let role_sure = role.map_or(63, |r| at(Stage::ALL.len() + r.ordinal()));
    // Coarse on purpose: a few points of confidence say nothing, and an overview page
    // (prominence) should still come before a narrow one the text is a little surer of.
    (stage_sure * role_sure) / LEANING_STEP
}

/// The width of a step of `audience_leaning`: a fifth of its range.
const LEANING_STEP: u32 = 63 * 63 / 5 + 1;

/// The values of a kind to use from an inference: the best, and the runner-up when it is
/// nearly as sure; none when the best is below `floor` ([`ABSTAIN_BELOW`], for stages
/// [`STAGE_ABSTAIN_BELOW`]).
pub fn confident<T: Clone>(inferred: &[(T, f64)], multi: bool, floor: f64) -> (Vec<T>, f64) {
    let Some((_, top)) = inferred.first() else {
        return (Vec::new(), 0.0);
    };
    if *top < floor {
        return (Vec::new(), *top);
    }
    let values = inferred
        .iter()
        .take_while(|(_, c)| *c >= floor && (multi || *c >= top * 0.85))
        .take(if multi { 3 } else { 2 })
        .map(|(v, _)| v.clone())
        .collect();
    (values, *top)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(title: &str, url: &str, body: &str, content_type: ContentType) -> InferredTags {
        infer_tags(&InferenceInput {
            title,
            summary: "",
            body,
            url,
            content_type: Some(content_type),
        })
    }

    #[test]
    fn the_text_outweighs_the_format() {
        let notes = infer(
            "Release notes: version 4.2",
            "/blog/release-4-2",
            "This release adds a new API endpoint and fixes the SDK install step.",
            ContentType::BlogPost,
        );
        assert_eq!(notes.stages[0].0, Stage::Adoption, "{notes:?}");
        assert_eq!(notes.roles[0].0, Role::TechnicalIntegrator, "{notes:?}");
        let pricing = infer("Pricing and plans", "/pricing", "", ContentType::BlogPost);
        assert_eq!(pricing.stages[0].0, Stage::Decision, "{pricing:?}");
        let versus = infer(
            "Acme vs Globex: an honest comparison",
            "/vs/globex",
            "",
            ContentType::BlogPost,
        );
        assert_eq!(versus.stages[0].0, Stage::Consideration, "{versus:?}");
        // Buying words: a licence, a price per user, a call with sales.
        let licence = infer(
            "Team license",
            "/license",
            "Buy a license for your team: $39 per user per month, billed yearly. Install it \
             on your own cluster. Contact sales for a purchase order.",
            ContentType::BlogPost,
        );
        assert_eq!(licence.stages[0].0, Stage::Decision, "{licence:?}");
    }

    #[test]
    fn a_text_read_before_the_purchase_is_for_the_decision_maker() {
        // Technical words, but a question asked before buying: the person who decides
        // reads it. The same words in an install guide stay technical.
        let body = "Why time-series data? Latency and ingestion matter: the API, the SQL \
                    engine and the database must keep up with millions of rows.";
        for (title, url, format, reader) in [
            (
                "Why time-series data matters",
                "/blog/why-timeseries-data",
                ContentType::BlogPost,
                Role::DecisionMaker,
            ),
            (
                "Install the database",
                "/docs/install",
                ContentType::ImplementationGuide,
                Role::TechnicalIntegrator,
            ),
        ] {
            let t = infer(title, url, body, format);
            assert_eq!(t.roles[0].0, reader, "{title}: {t:?}");
        }
    }

    #[test]
    fn an_essay_about_setup_is_not_a_setup_guide() {
        // The same words of setup and onboarding: told as an essay (we, I, questions) the
        // post is read before buying; given as instructions it is for the customer.
        let essay = "We have all been there: a new job, and the first week goes to setting \
                     up the dev environment. Why do we still accept that? Our onboarding \
                     should take minutes. I think setup belongs in code, and we built it.";
        let guide = "To set up the environment, run the install command. Click Configure, \
                     select the workspace and enter your token. Make sure the setup \
                     finished: go to the dashboard.";
        let blog = |body| {
            infer(
                "Dev environments",
                "/blog/dev-environments",
                body,
                ContentType::BlogPost,
            )
        };
        assert_eq!(
            blog(essay).stages[0].0,
            Stage::Awareness,
            "{:?}",
            blog(essay)
        );
        assert_eq!(
            blog(guide).stages[0].0,
            Stage::Adoption,
            "{:?}",
            blog(guide)
        );
        // The same in Chinese.
        let essay = "我们都经历过：新工作的第一周都花在安装和配置开发环境上。为什么我们还要忍受？\
                     我们认为环境应该写成代码，新人入职只需几分钟。我们的愿景很简单。";
        let guide = "首先安装命令行工具，然后运行安装命令。点击配置，选择工作区，输入令牌。\
                     执行完成后，按照以下步骤检查配置。";
        let zh = |body| infer("开发环境", "/blog/dev-env", body, ContentType::BlogPost);
        assert_eq!(zh(essay).stages[0].0, Stage::Awareness, "{:?}", zh(essay));
        assert_eq!(zh(guide).stages[0].0, Stage::Adoption, "{:?}", zh(guide));
        // The voice needs a few marks to say anything: one "we" is no essay.
        let voice = |body: &str| {
            essay_share(&Places::new(&InferenceInput {
                title: "",
                summary: "",
                body,
                url: "",
                content_type: None,
            }))
        };
        assert_eq!(voice("We install it."), None);
        // Whole words: "web", "users", "myself", "ice" and "running" are no marks, nor
        // are regions, names, "i.e.", a URL's query string or an operator.
        assert_eq!(
            voice("The web users' weekly ice: myself, isolated, running, typed, entered."),
            None
        );
        assert_eq!(
            voice("Use us-east-1, us-west-2 or my-app; i.e. GET /items?limit=10, a ? b, f()?"),
            None
        );
        assert_eq!(
            voice("We? Our view: I think so. Click run."),
            Some(4.0 / 6.0)
        );
        assert_eq!(adoption_weight(None), 1.0);
        assert_eq!(adoption_weight(Some(0.5)), 1.0);
        assert!((adoption_weight(Some(1.0)) - ESSAY_ADOPTION_WEIGHT).abs() < 1e-9);
    }

    #[test]
    fn a_text_without_cues_abstains() {
        let t = infer(
            "Hello",
            "",
            "Lorem ipsum dolor sit amet.",
            ContentType::Ebook,
        );
        // Only the format speaks: a weak prior, below the abstention threshold is fine
        // or a single awareness vote; roles are not known at all.
        assert!(t.roles.is_empty(), "{t:?}");
        assert!(t.industries.is_empty(), "{t:?}");
        let (roles, _) = confident(&t.roles, false, ABSTAIN_BELOW);
        assert!(roles.is_empty());
    }

    #[test]
    fn an_unsure_stage_still_beats_the_formats_default() {
        // A stage read at 0.35 is used (the content type's default is right less often);
        // a role at 0.35 is not.
        let unsure = [(Stage::Decision, 0.35), (Stage::Adoption, 0.25)];
        assert_eq!(
            confident(&unsure, false, STAGE_ABSTAIN_BELOW),
            (vec![Stage::Decision], 0.35)
        );
        assert!(confident(&unsure, false, ABSTAIN_BELOW).0.is_empty());
        // Five stages all alike say nothing.
        let flat: Vec<(Stage, f64)> = Stage::ALL.iter().map(|s| (*s, 0.2)).collect();
        assert!(confident(&flat, false, STAGE_ABSTAIN_BELOW).0.is_empty());
    }

    #[test]
    fn industries_are_read_where_named() {
        // Named where the page says what it is about; everyday words (streaming data,
        // storing metrics, time and energy, the extension marketplace) name none.
        let everyday = "Store the metrics; stream the data. It saves time and energy, \
                        energy, energy. Install it from the marketplace; media files and \
                        storage utilities.";
        for (title, url, body, format, industry) in [
            (
                "How a hospital network cut patient wait times",
                "/customers/st-mary",
                "The hospital's patients ...",
                ContentType::CaseStudy,
                Some("healthcare"),
            ),
            (
                "Streaming on-chain data and storing metrics",
                "/tutorial/streaming",
                everyday,
                ContentType::Training,
                None,
            ),
            (
                "Energy utilities: a grid operator's story",
                "",
                "",
                ContentType::CaseStudy,
                Some("energy"),
            ),
        ] {
            let t = infer(title, url, body, format);
            match industry {
                Some(industry) => {
                    assert_eq!(t.industries[0].0.as_str(), industry, "{t:?}");
                    assert!(t.industries[0].1 > ABSTAIN_BELOW, "{t:?}");
                }
                None => assert!(t.industries.is_empty(), "{title}: {t:?}"),
            }
        }
        let zh = infer("某银行的数字化转型", "", "银行", ContentType::CaseStudy);
        assert_eq!(zh.industries[0].0.as_str(), "financial-services/banking");
    }

    #[test]
    fn english_cues_match_at_word_starts() {
        let places = |body: &str| {
            Places::new(&InferenceInput {
                title: "",
                summary: "",
                body,
                url: "",
                content_type: None,
            })
        };
        let count = |body: &str, cue: &'static str| {
            let id = VOCABULARY.ids[cue];
            places(body).counts[3].1[id]
        };
        assert_eq!(count("capital api", "api"), 1);
        assert_eq!(count("Integration, integrated", "integrat"), 2);
        assert_eq!(count("数据接口和接口", "接口"), 2);
        // "api reference" holds two cues, both counted.
        assert_eq!(count("API reference", "reference"), 1);
    }
}
