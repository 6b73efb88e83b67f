//! Factor values and explanations.

use chrono::{DateTime, Utc};

use crate::domain::{
    Asset, Concern, Factor, IndustrySlug, Language, Role, Stage, TagSource, TaxonomyValue, Trust,
    Weights,
};

/// Whom a ranking is for, fully resolved (every unknown already defaulted or absent).
#[derive(Clone, Debug, PartialEq)]
pub struct Audience {
    pub stage: Stage,
    pub role: Option<Role>,
    pub industry: Option<IndustrySlug>,
    pub language: Language,
    pub concerns: Vec<Concern>,
}

/// One condition an asset may meet; the index has a term for each. Tags carry how far
/// ranking trusts them (`Trust`): a criterion matches an asset's tag of that trust only.
#[derive(Clone, Debug, PartialEq)]
pub enum Criterion {
    Stage(Stage, Trust),
    Role(Role, Trust),
    /// The asset names no role: declared for every role, or (`Trust::Default`) not known.
    AnyRole(Trust),
    /// The asset has some role of this trust (inferred roles: any of them).
    SomeRole(Trust),
    IndustryExact(IndustrySlug, Trust),
    /// The asset's industry is this one or below it.
    IndustryWithin(IndustrySlug, Trust),
    /// The asset names no industry: cross-industry.
    AnyIndustry,
    /// The asset has some industry of this trust.
    SomeIndustry(Trust),
    /// The asset's language subtag.
    Language(String),
}

impl Criterion {
    pub fn matches(&self, asset: &Asset) -> bool {
        let trust = ranking_trust(asset);
        match self {
            Criterion::Stage(s, t) => *t == trust.stages && asset.stages.contains(s),
            Criterion::Role(r, t) => *t == trust.roles && asset.roles.contains(r),
            Criterion::AnyRole(t) => *t == trust.roles && asset.roles.is_empty(),
            Criterion::SomeRole(t) => *t == trust.roles && !asset.roles.is_empty(),
            Criterion::IndustryExact(i, t) => {
                *t == trust.industries && asset.industries.contains(i)
            }
            Criterion::IndustryWithin(i, t) => {
                *t == trust.industries
                    && asset
                        .industries
                        .iter()
                        .any(|a| a == i || i.is_ancestor_of(a))
            }
            Criterion::AnyIndustry => asset.industries.is_empty(),
            Criterion::SomeIndustry(t) => *t == trust.industries && !asset.industries.is_empty(),
            Criterion::Language(primary) => asset.language.primary() == primary,
        }
    }
}

/// How far ranking trusts each graded kind of an asset's tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RankingTrust {
    pub stages: Trust,
    pub roles: Trust,
    pub industries: Trust,
}

/// An asset's trust per kind. Industries that are neither declared nor read mean
/// cross-industry, as a declared empty list does.
pub fn ranking_trust(asset: &Asset) -> RankingTrust {
    let e = &asset.evidence;
    RankingTrust {
        stages: e.stages.trust(),
        roles: e.roles.trust(),
        industries: match e.industries.source {
            TagSource::Default => Trust::Declared,
            _ => e.industries.trust(),
        },
    }
}

/// One grade of a factor: an asset meeting any criterion (and no better level's) is worth
/// `value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Level {
    pub criteria: Vec<Criterion>,
    pub value: f64,
    pub detail: String,
}

/// A graded factor: its levels, best first, and what an asset meeting none is worth.
#[derive(Clone, Debug, PartialEq)]
pub struct Dimension {
    pub factor: Factor,
    pub levels: Vec<Level>,
    pub rest_value: f64,
    pub rest_detail: String,
}

impl Dimension {
    /// The value and explanation of an asset on this factor.
    pub fn fit(&self, asset: &Asset) -> (f64, &str) {
        self.levels
            .iter()
            .find(|l| l.criteria.iter().any(|c| c.matches(asset)))
            .map(|l| (l.value, l.detail.as_str()))
            .unwrap_or((self.rest_value, self.rest_detail.as_str()))
    }
}

fn level(criteria: Vec<Criterion>, value: f64, detail: String) -> Level {
    Level {
        criteria,
        value,
        detail,
    }
}

fn neighbour(stage: Stage, step: isize) -> Option<Stage> {
    let i = stage.ordinal() as isize + step;
    usize::try_from(i).ok().and_then(Stage::from_ordinal)
}

/// What a tag of unknown value is worth on each factor: the fit of an untrusted tag is
/// pulled towards it (`Trust::strength`).
const NEUTRAL_STAGE: f64 = 0.35;
const NEUTRAL_ROLE: f64 = 0.5;
const NEUTRAL_INDUSTRY: f64 = 0.4;

/// The placeholder a level's detail holds for the asset's own confidence; `explain`
/// writes the number in.
const CONFIDENCE: &str = "{confidence}";

/// A fit as worth for a tag of some trust.
fn trusted(fit: f64, trust: Trust, neutral: f64) -> f64 {
    let s = trust.strength();
    s * fit + (1.0 - s) * neutral
}

/// What a level's detail adds for a tag that is not declared.
fn provenance(trust: Trust, default: &str) -> String {
    match trust {
        Trust::Declared => String::new(),
        Trust::Strong | Trust::Likely => format!(", inferred from the text ({CONFIDENCE})"),
        Trust::Default => format!(", {default}"),
    }
}

/// Levels sorted best first (a stable sort: equal values keep the order written).
fn sorted(mut levels: Vec<Level>) -> Vec<Level> {
    levels.sort_by(|a, b| b.value.total_cmp(&a.value));
    levels
}

/// The graded factors for an audience, in the order reasons are listed.
///
/// Declared tags are graded as they always were:
/// - STAGE: the audience's own stage 1.0; the next stage 0.6 (pulls the buyer forward); the
///   previous stage 0.3; any other 0. Nothing is filtered by stage: buyers jump around.
/// - ROLE: written for the role 1.0; for every role 0.6; for another role 0. With no role
///   known, assets for every role 0.6 and role-specific ones 0.3.
/// - INDUSTRY: the same industry 1.0; a parent or sub-industry 0.6; cross-industry 0.4;
///   another industry 0. With no industry known, cross-industry 0.4, specific 0.2.
/// - LANGUAGE: the audience's language (by language subtag) 1.0, else 0.
///
/// A tag read from the text or defaulted is believed in part: its fit is pulled towards
/// what an unknown tag is worth (stage 0.35, role 0.5, industry 0.4) by its trust's
/// strength (inferred strongly 0.75, likely 0.5, defaulted 0.25), so an asset's own subject
/// and an explicit industry or query outweigh a content type's default stage. An untagged
/// asset's role is "not known": 0.6 pulled to 0.5.
pub fn graded_dimensions(audience: &Audience) -> Vec<Dimension> {
    let inferred = [Trust::Strong, Trust::Likely];
    let stage = audience.stage;
    let mut stage_fits: Vec<(Vec<Stage>, f64, String)> = vec![(
        vec![stage],
        1.0,
        format!("{} stage, the buyer's own", stage.name().to_lowercase()),
    )];
    if let Some(next) = neighbour(stage, 1) {
        stage_fits.push((
            vec![next],
            0.6,
            format!("{} stage, one step ahead", next.name().to_lowercase()),
        ));
    }
    if let Some(previous) = neighbour(stage, -1) {
        stage_fits.push((
            vec![previous],
            0.3,
            format!("{} stage, one step back", previous.name().to_lowercase()),
        ));
    }
    let named: Vec<Stage> = stage_fits.iter().flat_map(|f| f.0.clone()).collect();
    let others: Vec<Stage> = Stage::ALL
        .iter()
        .copied()
        .filter(|s| !named.contains(s))
        .collect();
    let mut stage_levels = Vec::new();
    for trust in Trust::ALL {
        let mut fits = stage_fits.clone();
        if trust != Trust::Declared && !others.is_empty() {
            fits.push((others.clone(), 0.0, "for another stage".to_owned()));
        }
        for (stages, fit, detail) in fits {
            stage_levels.push(level(
                stages.iter().map(|s| Criterion::Stage(*s, trust)).collect(),
                trusted(fit, trust, NEUTRAL_STAGE),
                format!(
                    "{detail}{}",
                    provenance(trust, "untagged: the content type's default stage")
                ),
            ));
        }
    }
    let stage_dim = Dimension {
        factor: Factor::Stage,
        levels: sorted(stage_levels),
        rest_value: 0.0,
        rest_detail: "for another stage".to_owned(),
    };

    let not_known = level(
        vec![Criterion::AnyRole(Trust::Default)],
        trusted(0.6, Trust::Default, NEUTRAL_ROLE),
        "role not known (untagged)".to_owned(),
    );
    let role_dim = match audience.role {
        Some(role) => {
            let mut levels = vec![
                level(
                    vec![Criterion::Role(role, Trust::Declared)],
                    1.0,
                    format!("written for {}", role_label(role)),
                ),
                level(
                    vec![Criterion::AnyRole(Trust::Declared)],
                    0.6,
                    "written for every role".to_owned(),
                ),
                not_known,
            ];
            for trust in inferred {
                let p = provenance(trust, "");
                levels.push(level(
                    vec![Criterion::Role(role, trust)],
                    trusted(1.0, trust, NEUTRAL_ROLE),
                    format!("written for {}{p}", role_label(role)),
                ));
                levels.push(level(
                    vec![Criterion::SomeRole(trust)],
                    trusted(0.0, trust, NEUTRAL_ROLE),
                    format!("written for other roles{p}"),
                ));
            }
            Dimension {
                factor: Factor::Role,
                levels: sorted(levels),
                rest_value: 0.0,
                rest_detail: "written for other roles".to_owned(),
            }
        }
        None => {
            let mut levels = vec![
                level(
                    vec![Criterion::AnyRole(Trust::Declared)],
                    0.6,
                    "written for every role (role unknown)".to_owned(),
                ),
                not_known,
            ];
            for trust in inferred {
                levels.push(level(
                    vec![Criterion::SomeRole(trust)],
                    trusted(0.3, trust, NEUTRAL_ROLE),
                    format!(
                        "written for specific roles (role unknown){}",
                        provenance(trust, "")
                    ),
                ));
            }
            Dimension {
                factor: Factor::Role,
                levels: sorted(levels),
                rest_value: 0.3,
                rest_detail: "written for specific roles (role unknown)".to_owned(),
            }
        }
    };

    let industry_dim = match &audience.industry {
        Some(industry) => {
            let related = |trust: Trust| -> Vec<Criterion> {
                let mut related: Vec<Criterion> = industry
                    .self_and_ancestors()
                    .into_iter()
                    .skip(1)
                    .map(|i| Criterion::IndustryExact(i, trust))
                    .collect();
                related.push(Criterion::IndustryWithin(industry.clone(), trust));
                related
            };
            let mut levels = vec![
                level(
                    vec![Criterion::IndustryExact(industry.clone(), Trust::Declared)],
                    1.0,
                    format!("same industry ({industry})"),
                ),
                level(
                    related(Trust::Declared),
                    0.6,
                    format!("related industry to {industry}"),
                ),
                level(
                    vec![Criterion::AnyIndustry],
                    0.4,
                    "cross-industry".to_owned(),
                ),
            ];
            for trust in inferred {
                let p = provenance(trust, "");
                levels.push(level(
                    vec![Criterion::IndustryExact(industry.clone(), trust)],
                    trusted(1.0, trust, NEUTRAL_INDUSTRY),
                    format!("same industry ({industry}){p}"),
                ));
                levels.push(level(
                    related(trust),
                    trusted(0.6, trust, NEUTRAL_INDUSTRY),
                    format!("related industry to {industry}{p}"),
                ));
                levels.push(level(
                    vec![Criterion::SomeIndustry(trust)],
                    trusted(0.0, trust, NEUTRAL_INDUSTRY),
                    format!("another industry{p}"),
                ));
            }
            Dimension {
                factor: Factor::Industry,
                levels: sorted(levels),
                rest_value: 0.0,
                rest_detail: "another industry".to_owned(),
            }
        }
        None => {
            let mut levels = vec![level(
                vec![Criterion::AnyIndustry],
                0.4,
                "cross-industry (industry unknown)".to_owned(),
            )];
            for trust in inferred {
                levels.push(level(
                    vec![Criterion::SomeIndustry(trust)],
                    trusted(0.2, trust, NEUTRAL_INDUSTRY),
                    format!(
                        "industry-specific (industry unknown){}",
                        provenance(trust, "")
                    ),
                ));
            }
            Dimension {
                factor: Factor::Industry,
                levels: sorted(levels),
                rest_value: 0.2,
                rest_detail: "industry-specific (industry unknown)".to_owned(),
            }
        }
    };

    let primary = audience.language.primary().to_owned();
    let language_dim = Dimension {
        factor: Factor::Language,
        levels: vec![level(
            vec![Criterion::Language(primary.clone())],
            1.0,
            format!("in {primary}"),
        )],
        rest_value: 0.0,
        rest_detail: format!("not in {primary}"),
    };
    vec![stage_dim, role_dim, industry_dim, language_dim]
}

/// A level's detail for one asset: its own confidence written in.
fn detail_for(detail: &str, factor: Factor, asset: &Asset) -> String {
    if !detail.contains(CONFIDENCE) {
        return detail.to_owned();
    }
    let e = &asset.evidence;
    let confidence = match factor {
        Factor::Stage => e.stages.confidence,
        Factor::Role => e.roles.confidence,
        Factor::Industry => e.industries.confidence,
        _ => e.concerns.confidence,
    };
    detail.replace(CONFIDENCE, &format!("{confidence:.2}"))
}

fn role_label(role: Role) -> &'static str {
    match role {
        Role::DecisionMaker => "decision makers",
        Role::TechnicalIntegrator => "technical integrators",
        Role::BusinessUser => "business users",
        Role::Procurement => "procurement",
        Role::Finance => "finance",
    }
}

/// Text relevance scaled to [0, 1]: the asset's BM25 over the query's scale, the sum of
/// what each of its terms (per text field) scores at its best anywhere in the library. An
/// asset that matched every word in every field as well as the library's best match for
/// that word would score 1; a typical best match scores 0.5 to 0.9, less for long queries.
pub fn text_value(bm25: f32, scale: f32) -> f64 {
    if scale > 0.0 && bm25 > 0.0 {
        (f64::from(bm25) / f64::from(scale)).min(1.0)
    } else {
        0.0
    }
}

/// Cosines of sentence embeddings below this say nothing of a shared subject (unrelated
/// texts of one library sit around 0 to 0.2 with all-MiniLM-L6-v2).
pub const MEANING_FROM: f64 = 0.3;
/// A cosine from which two texts are as alike as the library's best word match.
pub const MEANING_FULL: f64 = 0.7;

/// A vector's cosine scaled to [0, 1] like `text_value`: 0 up to `MEANING_FROM`, 1 from
/// `MEANING_FULL`, linear between.
pub fn meaning_value(cosine: f32) -> f64 {
    if !cosine.is_finite() {
        return 0.0;
    }
    ((f64::from(cosine) - MEANING_FROM) / (MEANING_FULL - MEANING_FROM)).clamp(0.0, 1.0)
}

/// The share of the requested concerns an asset answers (masks as in `Concern::mask`).
pub fn concern_value(requested: u64, asset: u64) -> f64 {
    let wanted = requested.count_ones();
    if wanted == 0 {
        0.0
    } else {
        f64::from((requested & asset).count_ones()) / f64::from(wanted)
    }
}

/// Freshness halves every `half_life_days` since the last review (or publication);
/// evergreen assets never decay; an undated asset counts as half fresh.
pub fn freshness_value(
    last_reviewed: Option<i64>,
    evergreen: bool,
    now: i64,
    half_life_days: f64,
) -> f64 {
    if evergreen {
        return 1.0;
    }
    match last_reviewed {
        None => 0.5,
        Some(t) => {
            let age_days = ((now - t).max(0) as f64) / 86_400.0;
            0.5f64.powf(age_days / half_life_days.max(1.0))
        }
    }
}

/// The text value from which a `nextContent` item is said to be on the seed's subject.
pub const SAME_SUBJECT_FROM: f64 = 0.1;

/// One factor's part of a score.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreReason {
    pub factor: Factor,
    pub value: f64,
    pub weight: f64,
    pub contribution: f64,
    pub detail: String,
}

/// A score and the reasons that add up to it exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    pub score: f64,
    pub reasons: Vec<ScoreReason>,
}

/// The context of one ranking request besides the audience: built once per request, and
/// read by both retrieval (through `search::RecommendRequest`) and the explanation, so the
/// two cannot score with different weights, clocks or text.
#[derive(Clone, Debug)]
pub struct RankContext {
    pub weights: Weights,
    pub now: DateTime<Utc>,
    pub half_life_days: f64,
    /// The query text, when there is one.
    pub query: Option<String>,
    /// Terms the query gains from the library's synonym groups, searched like its words.
    pub synonyms: Vec<String>,
    /// For `nextContent`: the ids of the assets that continue the seed (its next part,
    /// chapter or month), which the SEQUEL factor puts first.
    pub sequels: Vec<String>,
    /// For `nextContent`: the ids of the assets the seed links to, which the SEQUEL
    /// factor counts as continuations too.
    pub linked: Vec<String>,
    /// Set when the text is not a visitor's query but an asset's subject (next content):
    /// the TEXT reason then says what the asset resembles.
    pub similar_to: Option<String>,
    /// The share of the TEXT factor that meaning (embeddings) decides, words the rest: 0
    /// without a model or vectors.
    pub semantic_ratio: f64,
    /// What readers of the seeds (a `nextContent` seed, an account's latest reads) read
    /// next; `None` without seeds, and then no ALSO_READ reason.
    pub also_read: Option<AlsoRead>,
}

/// What accounts read after some seed assets: the ALSO_READ factor's values.
#[derive(Clone, Debug, Default)]
pub struct AlsoRead {
    /// The seeds' titles, for the reason of an asset none of their readers read next.
    pub seeds: Vec<String>,
    /// Asset id -> its best value over the seeds.
    pub hits: std::collections::HashMap<String, AlsoReadHit>,
}

/// One asset read next by readers of a seed.
#[derive(Clone, Debug, PartialEq)]
pub struct AlsoReadHit {
    /// In [0, 1]: log-scaled against the seed's most read next asset (as popularity is
    /// within a cohort).
    pub value: f64,
    /// Accounts that read it after the seed.
    pub accounts: i64,
    /// The seed's title.
    pub seed: String,
    /// The industry those accounts are in, when the count is of one industry.
    pub industry: Option<String>,
}

impl AlsoRead {
    fn reason(&self, asset_id: &str) -> (f64, String) {
        if let Some(hit) = self.hits.get(asset_id) {
            let within = hit
                .industry
                .as_deref()
                .map(|i| format!(" in {i}"))
                .unwrap_or_default();
            return (
                hit.value,
                format!(
                    "read next by {} accounts{within} that read \"{}\"",
                    hit.accounts, hit.seed
                ),
            );
        }
        let detail = match self.seeds.as_slice() {
            [seed] => format!("not read next by readers of \"{seed}\""),
            _ => "not read next by readers of what this account read".to_owned(),
        };
        (0.0, detail)
    }
}

/// Scores an asset for an audience, with one reason per factor that has a weight.
/// `bm25` is the asset's BM25 and the text scale (see `text_value`), both 0 without a
/// query; `cosine` its vector's cosine with the query's or the seed's, when both have one
/// (weighed by `ctx.semantic_ratio`); `popularity` is in [0, 1].
pub fn explain(
    audience: &Audience,
    dimensions: &[Dimension],
    asset: &Asset,
    ctx: &RankContext,
    bm25: (f32, f32),
    cosine: Option<f32>,
    popularity: f64,
) -> Scored {
    let mut reasons = Vec::with_capacity(8);
    let mut push = |factor: Factor, value: f64, detail: String| {
        let weight = ctx.weights.get(factor);
        if weight > 0.0 {
            reasons.push(ScoreReason {
                factor,
                value,
                weight,
                contribution: weight * value,
                detail,
            });
        }
    };
    for dim in dimensions {
        let (value, detail) = dim.fit(asset);
        push(dim.factor, value, detail_for(detail, dim.factor, asset));
    }
    if let Some(query) = ctx.query.as_deref().filter(|q| !q.trim().is_empty()) {
        let words = text_value(bm25.0, bm25.1);
        let ratio = match cosine {
            Some(_) => ctx.semantic_ratio.clamp(0.0, 1.0),
            None => 0.0,
        };
        let meaning = cosine.map_or(0.0, meaning_value);
        let value = (1.0 - ratio) * words + ratio * meaning;
        // Which part matched: meaning when it carries more of the value than the words.
        let by_meaning = ratio * meaning > (1.0 - ratio) * words;
        let detail = match (ctx.similar_to.as_deref(), value > 0.0) {
            (Some(subject), true) if by_meaning && value >= SAME_SUBJECT_FROM => format!(
                "similar in meaning to \"{subject}\" ({:.2})",
                cosine.unwrap_or(0.0)
            ),
            // "The same subject" needs more than a shared common word.
            (Some(subject), true) if value >= SAME_SUBJECT_FROM => {
                format!("on the same subject as \"{subject}\"")
            }
            (Some(subject), true) => format!("loosely related to \"{subject}\""),
            (Some(subject), false) => format!("on another subject than \"{subject}\""),
            (None, true) if by_meaning => format!(
                "similar in meaning to \"{}\" ({:.2})",
                query.trim(),
                cosine.unwrap_or(0.0)
            ),
            (None, true) => format!("matches \"{}\"", query.trim()),
            (None, false) => format!("does not mention \"{}\"", query.trim()),
        };
        push(Factor::Text, value, detail);
    }
    if !audience.concerns.is_empty() {
        let value = concern_value(
            TaxonomyValue::mask(&audience.concerns),
            TaxonomyValue::mask(&asset.concerns),
        );
        let answered: Vec<String> = audience
            .concerns
            .iter()
            .filter(|c| asset.concerns.contains(c))
            .map(|c| c.name().to_lowercase())
            .collect();
        let detail = if answered.is_empty() {
            "answers none of the requested concerns".to_owned()
        } else {
            format!("answers {}", answered.join(", "))
        };
        push(Factor::Concern, value, detail);
    }
    let reviewed = asset.last_reviewed().map(|t| t.timestamp());
    let value = freshness_value(
        reviewed,
        asset.evergreen,
        ctx.now.timestamp(),
        ctx.half_life_days,
    );
    let detail = match (asset.evergreen, asset.last_reviewed()) {
        (true, _) => "evergreen".to_owned(),
        (false, Some(t)) if asset.reviewed_at.is_some() => {
            format!("reviewed {}", t.format("%Y-%m-%d"))
        }
        (false, Some(t)) => format!("published {}", t.format("%Y-%m-%d")),
        (false, None) => "never dated".to_owned(),
    };
    push(Factor::Freshness, value, detail);
    push(
        Factor::Popularity,
        popularity,
        if popularity > 0.0 {
            "read by similar accounts".to_owned()
        } else {
            "no engagement data yet".to_owned()
        },
    );
    if !ctx.sequels.is_empty() || !ctx.linked.is_empty() {
        let subject = ctx.similar_to.as_deref().unwrap_or_default();
        let id = asset.id.as_str();
        let (value, detail) = if ctx.sequels.iter().any(|s| s == id) {
            (1.0, format!("the next part after \"{subject}\""))
        } else if ctx.linked.iter().any(|s| s == id) {
            (1.0, format!("\"{subject}\" links to it"))
        } else {
            (0.0, "not a continuation".to_owned())
        };
        push(Factor::Sequel, value, detail);
    }
    if let Some(also_read) = &ctx.also_read {
        let (value, detail) = also_read.reason(asset.id.as_str());
        push(Factor::AlsoRead, value, detail);
    }
    let score = reasons.iter().map(|r| r.contribution).sum();
    Scored { score, reasons }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AssetDraft;

    fn asset(stages: &[&str], roles: &[&str], industries: &[&str], lang: &str) -> Asset {
        AssetDraft {
            id: Some("a".into()),
            title: Some("A".into()),
            content_type: Some("EBOOK".into()),
            stages: stages.iter().map(|s| s.to_string()).collect(),
            roles: roles.iter().map(|s| s.to_string()).collect(),
            industries: industries.iter().map(|s| s.to_string()).collect(),
            language: Some(lang.into()),
            published_at: Some("2026-01-01".into()),
            ..AssetDraft::default()
        }
        .validate()
        .unwrap()
    }

    fn audience(stage: Stage, role: Option<Role>, industry: Option<&str>) -> Audience {
        Audience {
            stage,
            role,
            industry: industry.map(|i| IndustrySlug::parse(i).unwrap()),
            language: Language::english(),
            concerns: vec![],
        }
    }

    fn value(aud: &Audience, factor: Factor, a: &Asset) -> f64 {
        let dims = graded_dimensions(aud);
        dims.iter().find(|d| d.factor == factor).unwrap().fit(a).0
    }

    #[test]
    fn stage_fit_is_graded_own_next_previous_other() {
        let aud = audience(Stage::Consideration, None, None);
        let v = |s: &str| value(&aud, Factor::Stage, &asset(&[s], &[], &[], "en"));
        assert_eq!(v("CONSIDERATION"), 1.0);
        assert_eq!(v("DECISION"), 0.6);
        assert_eq!(v("AWARENESS"), 0.3);
        assert_eq!(v("ADOPTION"), 0.0);
        // The best of an asset's stages counts.
        let both = asset(&["ADOPTION", "DECISION"], &[], &[], "en");
        assert_eq!(value(&aud, Factor::Stage, &both), 0.6);
        // At the ends of the journey there is no next or previous stage.
        let first = audience(Stage::Awareness, None, None);
        assert_eq!(
            value(&first, Factor::Stage, &asset(&["ADVOCACY"], &[], &[], "en")),
            0.0
        );
        let declared = graded_dimensions(&first)[0]
            .levels
            .iter()
            .filter(|l| matches!(l.criteria[0], Criterion::Stage(_, Trust::Declared)))
            .count();
        assert_eq!(declared, 2);
    }

    #[test]
    fn tags_nobody_declared_count_for_less() {
        let aud = audience(Stage::Decision, Some(Role::TechnicalIntegrator), None);
        // Untagged, and the text says nothing: the content type's default stage (an ebook:
        // awareness, two steps back), believed a quarter; the role is not known.
        let blank = asset(&[], &[], &[], "en");
        assert_eq!(blank.evidence.stages.source, TagSource::Default);
        let stage = value(&aud, Factor::Stage, &blank);
        assert!((stage - 0.75 * 0.35).abs() < 1e-9, "{stage}");
        assert!((value(&aud, Factor::Role, &blank) - 0.525).abs() < 1e-9);
        let dims = graded_dimensions(&aud);
        assert_eq!(dims[1].fit(&blank).1, "role not known (untagged)");
        // The text names its readers: an SDK reference is read as for integrators.
        let sdk = AssetDraft {
            id: Some("sdk".into()),
            title: Some("SDK reference: install and configure the API client".into()),
            body: Some("Install the SDK, set the endpoint and the API key parameter.".into()),
            content_type: Some("API_DOCS".into()),
            ..AssetDraft::default()
        }
        .validate()
        .unwrap();
        assert_eq!(sdk.evidence.roles.source, TagSource::Inferred);
        let role = value(&aud, Factor::Role, &sdk);
        assert!(role > 0.6 && role < 1.0, "{role}");
        let scored = explain(
            &aud,
            &dims,
            &sdk,
            &RankContext {
                weights: Weights::default(),
                now: chrono::Utc::now(),
                half_life_days: 180.0,
                query: None,
                synonyms: Vec::new(),
                sequels: Vec::new(),
                linked: Vec::new(),
                similar_to: None,
                semantic_ratio: 0.0,
                also_read: None,
            },
            (0.0, 0.0),
            None,
            0.0,
        );
        let role_reason = &scored.reasons[1].detail;
        assert!(
            role_reason.starts_with("written for technical integrators, inferred from the text ("),
            "{role_reason}"
        );
    }

    #[test]
    fn role_fit_prefers_the_role_then_everyone() {
        let aud = audience(Stage::Decision, Some(Role::TechnicalIntegrator), None);
        assert_eq!(
            value(
                &aud,
                Factor::Role,
                &asset(&[], &["TECHNICAL_INTEGRATOR", "FINANCE"], &[], "en")
            ),
            1.0
        );
        // A tagged asset that names no role is for every role.
        assert_eq!(
            value(&aud, Factor::Role, &asset(&["DECISION"], &[], &[], "en")),
            0.6
        );
        assert_eq!(
            value(&aud, Factor::Role, &asset(&[], &["FINANCE"], &[], "en")),
            0.0
        );
        let unknown = audience(Stage::Decision, None, None);
        assert_eq!(
            value(
                &unknown,
                Factor::Role,
                &asset(&["DECISION"], &[], &[], "en")
            ),
            0.6
        );
        assert_eq!(
            value(&unknown, Factor::Role, &asset(&[], &["FINANCE"], &[], "en")),
            0.3
        );
    }

    #[test]
    fn industry_fit_follows_the_hierarchy() {
        let aud = audience(Stage::Decision, None, Some("financial-services/payments"));
        let v = |i: &[&str]| value(&aud, Factor::Industry, &asset(&[], &[], i, "en"));
        assert_eq!(v(&["financial-services/payments"]), 1.0);
        assert_eq!(v(&["financial-services"]), 0.6);
        assert_eq!(v(&["financial-services/payments/cards"]), 0.6);
        assert_eq!(v(&["financial-services/banking"]), 0.0);
        assert_eq!(v(&[]), 0.4);
        assert_eq!(v(&["retail", "financial-services/payments"]), 1.0);
        let unknown = audience(Stage::Decision, None, None);
        assert_eq!(
            value(&unknown, Factor::Industry, &asset(&[], &[], &[], "en")),
            0.4
        );
        assert_eq!(
            value(
                &unknown,
                Factor::Industry,
                &asset(&[], &[], &["retail"], "en")
            ),
            0.2
        );
    }

    #[test]
    fn language_matches_by_subtag() {
        let mut aud = audience(Stage::Decision, None, None);
        aud.language = Language::parse("zh").unwrap();
        assert_eq!(
            value(&aud, Factor::Language, &asset(&[], &[], &[], "zh-CN")),
            1.0
        );
        assert_eq!(
            value(&aud, Factor::Language, &asset(&[], &[], &[], "en")),
            0.0
        );
    }

    #[test]
    fn continuous_factors() {
        assert_eq!(text_value(2.0, 4.0), 0.5);
        assert_eq!(text_value(5.0, 4.0), 1.0);
        assert_eq!(text_value(0.0, 0.0), 0.0);
        let cost_risk = Concern::mask(&[Concern::Cost, Concern::Risk]);
        assert_eq!(
            concern_value(cost_risk, Concern::mask(&[Concern::Cost])),
            0.5
        );
        assert_eq!(concern_value(0, cost_risk), 0.0);
        let now = 1_000 * 86_400;
        assert_eq!(freshness_value(Some(now), false, now, 365.0), 1.0);
        assert!((freshness_value(Some(now - 365 * 86_400), false, now, 365.0) - 0.5).abs() < 1e-12);
        assert_eq!(freshness_value(Some(0), true, now, 365.0), 1.0);
        assert_eq!(freshness_value(None, false, now, 365.0), 0.5);
        assert_eq!(freshness_value(Some(now + 86_400), false, now, 365.0), 1.0);
    }

    #[test]
    fn reasons_add_up_to_the_score() {
        let mut aud = audience(Stage::Decision, Some(Role::Finance), Some("retail"));
        aud.concerns = vec![Concern::Cost];
        let a = asset(&["DECISION"], &["FINANCE"], &["retail/ecommerce"], "en");
        let weights = Weights::default();
        let ctx = RankContext {
            weights,
            now: Utc::now(),
            half_life_days: 365.0,
            query: Some("pricing".to_owned()),
            synonyms: Vec::new(),
            sequels: Vec::new(),
            linked: Vec::new(),
            similar_to: None,
            semantic_ratio: 0.0,
            also_read: None,
        };
        let dims = graded_dimensions(&aud);
        let s = explain(&aud, &dims, &a, &ctx, (1.0, 2.0), None, 0.0);
        let sum: f64 = s.reasons.iter().map(|r| r.contribution).sum();
        assert_eq!(s.score, sum);
        let factors: Vec<Factor> = s.reasons.iter().map(|r| r.factor).collect();
        assert_eq!(
            factors,
            vec![
                Factor::Stage,
                Factor::Role,
                Factor::Industry,
                Factor::Language,
                Factor::Text,
                Factor::Concern,
                Factor::Freshness,
                Factor::Popularity
            ]
        );
        for r in &s.reasons {
            assert!((0.0..=1.0).contains(&r.value), "{r:?}");
            assert_eq!(r.contribution, r.weight * r.value);
        }
        assert_eq!(s.reasons[2].detail, "related industry to retail");
    }
}
