//! A content asset, and the raw record (`AssetDraft`) that every input path (JSONL, CSV,
//! GraphQL) fills before it is validated into an `Asset`.

use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

use super::evidence::{
    ABSTAIN_BELOW, InferenceInput, InferredTags, KindEvidence, STAGE_ABSTAIN_BELOW, TagEvidence,
    TagSource, confidence_of, confident, infer_tags,
};
use super::taxonomy::{
    AssetStatus, Concern, ContentType, IndustrySlug, Language, Role, Stage, TaxonomyValue,
};

const MAX_ID_LEN: usize = 128;
const MAX_TITLE_LEN: usize = 500;
const MAX_SUMMARY_LEN: usize = 10_000;
const MAX_BODY_LEN: usize = 2_000_000;
const MAX_URL_LEN: usize = 2_048;
const MAX_TAGS: usize = 50;
const MAX_TOPIC_LEN: usize = 64;
/// Most links an asset lists (a long page's navigation is not what it points readers to).
pub const MAX_LINKS: usize = 100;

/// What is wrong with one field of one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A stable external id: letters, digits and `. _ : / -`, at most 128 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AssetId(String);

impl AssetId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let id = raw.trim();
        if id.is_empty() {
            return Err("is required".to_owned());
        }
        if id.len() > MAX_ID_LEN {
            return Err(format!("is longer than {MAX_ID_LEN} characters"));
        }
        if let Some(c) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '-')))
        {
            return Err(format!(
                "{id:?} has {c:?}; use letters, digits and . _ : / - only"
            ));
        }
        Ok(Self(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AssetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated asset of the content library.
#[derive(Clone, Debug, PartialEq)]
pub struct Asset {
    pub id: AssetId,
    pub title: String,
    pub summary: String,
    pub body: String,
    pub url: String,
    /// The pages this one links to, as written on it (absolute, site-relative or relative
    /// to `url`): what it sends its reader to next. See [`link_key`].
    pub links: Vec<String>,
    /// A picture for the asset's card (http(s) or site-relative); empty for none.
    pub image_url: String,
    pub content_type: ContentType,
    /// Never empty: the declared stages, else those read from the text, else the content
    /// type's defaults (`evidence.stages` says which).
    pub stages: Vec<Stage>,
    /// Empty means every role when declared so, and "not known" when nothing was declared
    /// or read (`evidence.roles`).
    pub roles: Vec<Role>,
    /// Empty means cross-industry.
    pub industries: Vec<IndustrySlug>,
    pub concerns: Vec<Concern>,
    /// Where each kind of tag above comes from.
    pub evidence: TagEvidence,
    /// Everything the text says, with confidences, whether used or not.
    pub inferred: InferredTags,
    pub topics: Vec<String>,
    pub language: Language,
    pub published_at: Option<DateTime<Utc>>,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub evergreen: bool,
    pub gated: bool,
    pub status: AssetStatus,
}

/// One record of the interchange format, as read and before validation. Field names are
/// those of the format (snake_case); lists are already split.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AssetDraft {
    pub id: Option<String>,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub body: Option<String>,
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    pub content_type: Option<String>,
    pub stages: Vec<String>,
    pub roles: Vec<String>,
    pub industries: Vec<String>,
    pub concerns: Vec<String>,
    pub topics: Vec<String>,
    pub language: Option<String>,
    pub published_at: Option<String>,
    pub reviewed_at: Option<String>,
    pub evergreen: Option<bool>,
    pub gated: Option<bool>,
    pub status: Option<String>,
    /// Written by exports only: where each tag came from (`stage DECISION inferred 0.78`).
    /// Read and ignored on import: what is not declared is read again from the text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag_evidence: Vec<String>,
}

impl AssetDraft {
    /// Every field name of the interchange format, in export order.
    pub const FIELDS: &'static [&'static str] = &[
        "id",
        "title",
        "summary",
        "body",
        "url",
        "links",
        "image_url",
        "content_type",
        "stages",
        "roles",
        "industries",
        "concerns",
        "topics",
        "language",
        "published_at",
        "reviewed_at",
        "evergreen",
        "gated",
        "status",
        "tag_evidence",
    ];

    /// Validates every field, reporting all problems at once rather than the first.
    pub fn validate(&self) -> Result<Asset, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut check = |field: &'static str, result: Result<(), String>| {
            if let Err(message) = result {
                errors.push(FieldError::new(field, message));
            }
        };

        let id = AssetId::parse(self.id.as_deref().unwrap_or_default());
        check("id", id.as_ref().map(drop).map_err(Clone::clone));
        let title = text(self.title.as_deref(), true, MAX_TITLE_LEN);
        check("title", title.as_ref().map(drop).map_err(Clone::clone));
        let summary = text(self.summary.as_deref(), false, MAX_SUMMARY_LEN);
        check("summary", summary.as_ref().map(drop).map_err(Clone::clone));
        let body = text(self.body.as_deref(), false, MAX_BODY_LEN);
        check("body", body.as_ref().map(drop).map_err(Clone::clone));
        let url = parse_url(self.url.as_deref().unwrap_or_default());
        check("url", url.as_ref().map(drop).map_err(Clone::clone));
        let links = parse_links(&self.links);
        check("links", links.as_ref().map(drop).map_err(Clone::clone));
        let image_url = parse_url(self.image_url.as_deref().unwrap_or_default());
        check(
            "image_url",
            image_url.as_ref().map(drop).map_err(Clone::clone),
        );
        let content_type = match self.content_type.as_deref().map(str::trim) {
            None | Some("") => ContentType::from_path(self.url.as_deref().unwrap_or_default())
                .ok_or_else(|| {
                    "is required (the url names no folder that tells it: see the README's folder table)"
                        .to_owned()
                }),
            Some(raw) => ContentType::parse(raw),
        };
        check(
            "content_type",
            content_type.as_ref().map(drop).map_err(Clone::clone),
        );
        let stages = bounded(&self.stages).and_then(Stage::parse_list);
        check("stages", stages.as_ref().map(drop).map_err(Clone::clone));
        let roles = bounded(&self.roles).and_then(Role::parse_list);
        check("roles", roles.as_ref().map(drop).map_err(Clone::clone));
        let concerns = bounded(&self.concerns).and_then(Concern::parse_list);
        check(
            "concerns",
            concerns.as_ref().map(drop).map_err(Clone::clone),
        );
        let industries = bounded(&self.industries).and_then(parse_industries);
        check(
            "industries",
            industries.as_ref().map(drop).map_err(Clone::clone),
        );
        let topics = bounded(&self.topics).and_then(parse_topics);
        check("topics", topics.as_ref().map(drop).map_err(Clone::clone));
        let language = match self.language.as_deref().map(str::trim) {
            None | Some("") => Ok(Language::english()),
            Some(raw) => Language::parse(raw),
        };
        check(
            "language",
            language.as_ref().map(drop).map_err(Clone::clone),
        );
        let published_at = optional_timestamp(self.published_at.as_deref());
        check(
            "published_at",
            published_at.as_ref().map(drop).map_err(Clone::clone),
        );
        let reviewed_at = optional_timestamp(self.reviewed_at.as_deref());
        check(
            "reviewed_at",
            reviewed_at.as_ref().map(drop).map_err(Clone::clone),
        );
        let status = match self.status.as_deref().map(str::trim) {
            None | Some("") => Ok(AssetStatus::Published),
            Some(raw) => AssetStatus::parse(raw),
        };
        check("status", status.as_ref().map(drop).map_err(Clone::clone));

        if !errors.is_empty() {
            return Err(errors);
        }
        // Every result is Ok here; `unwrap_or_default` keeps the function panic-free.
        let content_type = content_type.unwrap_or(ContentType::Ebook);
        let mut asset = Asset {
            id: id.unwrap_or_else(|_| AssetId(String::new())),
            title: title.unwrap_or_default(),
            summary: summary.unwrap_or_default(),
            body: body.unwrap_or_default(),
            url: url.unwrap_or_default(),
            links: links.unwrap_or_default(),
            image_url: image_url.unwrap_or_default(),
            content_type,
            stages: stages.unwrap_or_default(),
            roles: roles.unwrap_or_default(),
            industries: industries.unwrap_or_default(),
            concerns: concerns.unwrap_or_default(),
            topics: topics.unwrap_or_default(),
            language: language.unwrap_or_else(|_| Language::english()),
            published_at: published_at.unwrap_or_default(),
            reviewed_at: reviewed_at.unwrap_or_default(),
            evergreen: self.evergreen.unwrap_or(false),
            gated: self.gated.unwrap_or(false),
            status: status.unwrap_or(AssetStatus::Published),
            evidence: TagEvidence::DECLARED,
            inferred: InferredTags::default(),
        };
        asset.settle_tags();
        Ok(asset)
    }
}

impl Asset {
    /// Takes the tag lists the asset holds as what its content team declared, reads the
    /// text, and settles each kind: declared values stand; a kind left empty is read from
    /// the text when the inference is confident enough, else defaulted (stages: the content
    /// type's defaults; roles and concerns: not known; industries: none).
    ///
    /// An asset that declares any kind is taken to be tagged: its empty role and industry
    /// lists mean "every role" and "cross-industry", as they always did, and only its
    /// stages (never empty) may still be read from the text. A wholly untagged asset has
    /// every kind read.
    pub fn settle_tags(&mut self) {
        let tagged = !(self.stages.is_empty()
            && self.roles.is_empty()
            && self.industries.is_empty()
            && self.concerns.is_empty());
        // Everything declared: nothing to read (a fully tagged library pays nothing).
        if tagged && !self.stages.is_empty() {
            self.inferred = InferredTags::default();
            self.evidence = TagEvidence::DECLARED;
            return;
        }
        self.inferred = infer_tags(&InferenceInput {
            title: &self.title,
            summary: &self.summary,
            body: &self.body,
            url: &self.url,
            content_type: Some(self.content_type),
        });
        fn settle<T: Clone>(
            declared: &mut Vec<T>,
            inferred: &[(T, f64)],
            empty_is_declared: bool,
            multi: bool,
            floor: f64,
        ) -> KindEvidence {
            if !declared.is_empty() || empty_is_declared {
                return KindEvidence::DECLARED;
            }
            let (values, confidence) = confident(inferred, multi, floor);
            if values.is_empty() {
                return KindEvidence::DEFAULT;
            }
            *declared = values;
            KindEvidence {
                source: TagSource::Inferred,
                confidence,
            }
        }
        let inferred = &self.inferred;
        let mut evidence = TagEvidence {
            // A weak reading counts only when the text's words carry the best stage.
            stages: settle(
                &mut self.stages,
                &inferred.stages,
                false,
                false,
                if inferred.stage_named {
                    STAGE_ABSTAIN_BELOW
                } else {
                    ABSTAIN_BELOW
                },
            ),
            roles: settle(
                &mut self.roles,
                &inferred.roles,
                tagged,
                false,
                ABSTAIN_BELOW,
            ),
            industries: settle(
                &mut self.industries,
                &inferred.industries,
                tagged,
                false,
                ABSTAIN_BELOW,
            ),
            concerns: settle(
                &mut self.concerns,
                &inferred.concerns,
                tagged,
                true,
                ABSTAIN_BELOW,
            ),
        };
        if self.stages.is_empty() {
            self.stages = self.content_type.default_stages().to_vec();
            evidence.stages = KindEvidence::DEFAULT;
        }
        self.evidence = evidence;
    }

    /// The stages a content team declared (empty when they were read or defaulted).
    pub fn declared<'a, T>(&self, values: &'a [T], evidence: KindEvidence) -> &'a [T] {
        if evidence.source == TagSource::Declared {
            values
        } else {
            &[]
        }
    }

    /// The interchange record of this asset: declared tags only (what is read from the
    /// text is read again); validating it gives this asset back.
    pub fn to_draft(&self) -> AssetDraft {
        fn names<T: TaxonomyValue>(values: &[T]) -> Vec<String> {
            values.iter().map(|v| v.name().to_owned()).collect()
        }
        let e = self.evidence;
        AssetDraft {
            id: Some(self.id.to_string()),
            title: Some(self.title.clone()),
            summary: Some(self.summary.clone()),
            body: Some(self.body.clone()),
            url: Some(self.url.clone()),
            links: self.links.clone(),
            image_url: (!self.image_url.is_empty()).then(|| self.image_url.clone()),
            content_type: Some(self.content_type.name().to_owned()),
            stages: names(self.declared(&self.stages, e.stages)),
            roles: names(self.declared(&self.roles, e.roles)),
            industries: self
                .declared(&self.industries, e.industries)
                .iter()
                .map(ToString::to_string)
                .collect(),
            concerns: names(self.declared(&self.concerns, e.concerns)),
            topics: self.topics.clone(),
            language: Some(self.language.to_string()),
            published_at: self.published_at.map(format_timestamp),
            reviewed_at: self.reviewed_at.map(format_timestamp),
            evergreen: Some(self.evergreen),
            gated: Some(self.gated),
            status: Some(self.status.name().to_lowercase()),
            tag_evidence: Vec::new(),
        }
    }

    /// Every tag with where it comes from: one entry a value, in the order stages, roles,
    /// industries, concerns, and an entry without a value for an empty role or industry
    /// list ("every role", "not known", "cross-industry"). Confidence: 1 declared, the
    /// inference's for inferred, 0 for a default.
    pub fn tag_entries(&self) -> Vec<TagEntry> {
        fn kind<T: PartialEq>(
            out: &mut Vec<TagEntry>,
            field: TagField,
            values: &[T],
            inferred: &[(T, f64)],
            evidence: KindEvidence,
            name: impl Fn(&T) -> String,
        ) {
            for v in values {
                let confidence = match evidence.source {
                    TagSource::Declared => 1.0,
                    TagSource::Default => 0.0,
                    TagSource::Inferred => inferred
                        .iter()
                        .find(|(i, _)| i == v)
                        .map_or(evidence.confidence, |(_, c)| *c),
                };
                out.push(TagEntry {
                    field,
                    value: Some(name(v)),
                    source: evidence.source,
                    confidence,
                });
            }
            if values.is_empty() && field != TagField::Concern {
                out.push(TagEntry {
                    field,
                    value: None,
                    source: evidence.source,
                    confidence: evidence.confidence,
                });
            }
        }
        fn named<T: TaxonomyValue>(v: &T) -> String {
            v.name().to_owned()
        }
        let (e, i) = (self.evidence, &self.inferred);
        let mut out = Vec::new();
        kind(
            &mut out,
            TagField::Stage,
            &self.stages,
            &i.stages,
            e.stages,
            named,
        );
        kind(
            &mut out,
            TagField::Role,
            &self.roles,
            &i.roles,
            e.roles,
            named,
        );
        kind(
            &mut out,
            TagField::Industry,
            &self.industries,
            &i.industries,
            e.industries,
            ToString::to_string,
        );
        kind(
            &mut out,
            TagField::Concern,
            &self.concerns,
            &i.concerns,
            e.concerns,
            named,
        );
        out
    }

    /// Where each tag comes from, one line a value, for exports and review files:
    /// `stage DECISION inferred 0.78`, `role not known`, `industry healthcare declared`.
    pub fn evidence_lines(&self) -> Vec<String> {
        self.tag_entries()
            .into_iter()
            .map(|t| {
                let field = t.field.name();
                match (&t.value, t.source) {
                    (Some(v), TagSource::Declared) => format!("{field} {v} declared"),
                    (Some(v), TagSource::Default) => format!("{field} {v} default"),
                    (Some(v), TagSource::Inferred) => {
                        format!("{field} {v} inferred {:.2}", t.confidence)
                    }
                    (None, TagSource::Declared) if t.field == TagField::Role => {
                        format!("{field} every role (declared)")
                    }
                    (None, _) if t.field == TagField::Role => format!("{field} not known"),
                    (None, _) => format!("{field} cross-industry"),
                }
            })
            .collect()
    }

    /// A digest of everything the interchange format carries, to tell an unchanged
    /// re-import from an update.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_vec(&self.to_draft()).unwrap_or_default();
        let digest = Sha256::digest(&json);
        digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    /// What decides between assets that score the same (never their order in the index):
    /// overview pages before narrow ones (fewer folders in the URL path; a title that
    /// introduces or overviews), then pages of substance (longer bodies, up to 10,000
    /// characters), then how surely the text says what the page is for.
    pub fn prominence(&self) -> u64 {
        let depth = url_segments(&self.url).count() as u64;
        let title = self.title.to_lowercase();
        let overview = [
            "overview",
            "introduction",
            "getting started",
            "what is",
            "guide to",
        ]
        .iter()
        .any(|w| title.contains(w))
            || ["概述", "介绍", "入门", "什么是"]
                .iter()
                .any(|w| title.contains(w));
        let substance = (self.body.chars().take(10_000).count() as u64) / 500;
        let sureness = self
            .inferred
            .stages
            .first()
            .map_or(0, |(_, c)| (c * 9.0) as u64);
        (6u64.saturating_sub(depth.min(6))) * 10_000
            + u64::from(overview) * 5_000
            + substance * 100
            + sureness
    }

    /// How surely the asset speaks to each stage and each role, six bits a value (0 to
    /// 63), stages in their order then roles: a declared value is sure (63, and a declared
    /// "every role" is every role), an inferred one is its confidence, a default is 0.
    /// Read back by `audience_leaning`.
    pub fn leanings(&self) -> u64 {
        let six = |c: f64| (c.clamp(0.0, 1.0) * 63.0).round() as u64;
        let mut packed = 0u64;
        for (i, stage) in Stage::ALL.iter().enumerate() {
            let sure = match self.evidence.stages.source {
                TagSource::Declared => u64::from(self.stages.contains(stage)) * 63,
                TagSource::Inferred => six(confidence_of(&self.inferred.stages, *stage)),
                TagSource::Default => 0,
            };
            packed |= sure << (6 * i);
        }
        for (i, role) in Role::ALL.iter().enumerate() {
            let sure = match self.evidence.roles.source {
                TagSource::Declared => {
                    u64::from(self.roles.is_empty() || self.roles.contains(role)) * 63
                }
                TagSource::Inferred => six(confidence_of(&self.inferred.roles, *role)),
                TagSource::Default => 0,
            };
            packed |= sure << (6 * (Stage::ALL.len() + i));
        }
        packed
    }

    /// The words of the page's own address (the last segment of its url, else of its id)
    /// when its title says no more than half of them: editors write a slug as a page's
    /// subject in plain words (`/blog/prebuilds` for "Waiting for code to build is like
    /// watching paint dry"). Only the words the title lacks (compared by English stems:
    /// "deploy-cluster" is said by "Deploying clusters"); numbers, hex fragments of ids,
    /// words under three letters, joining words and words every site's addresses use
    /// (index, overview...) are left out; at most [`MAX_SLUG_WORDS`].
    pub fn slug_words(&self) -> Vec<String> {
        const SAY_NOTHING: [&str; 18] = [
            "the", "and", "for", "with", "your", "you", "our", "how", "why", "what", "from",
            "into", "index", "default", "home", "page", "overview", "html",
        ];
        let slug = url_segments(&self.url)
            .last()
            .or_else(|| self.id.as_str().rsplit('/').next())
            .unwrap_or_default();
        let slug = slug.rsplit_once('.').map_or(slug, |(stem, ext)| {
            if ["html", "htm", "md", "php", "aspx", "asp", "jsp"]
                .iter()
                .any(|e| ext.eq_ignore_ascii_case(e))
            {
                stem
            } else {
                slug
            }
        });
        let stems_of = |text: &str| -> Vec<String> {
            text.to_lowercase()
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(super::synonyms::stem)
                .collect()
        };
        let title_stems = stems_of(&self.title);
        let mut words: Vec<String> = Vec::new();
        for word in slug.to_lowercase().split(|c: char| !c.is_alphanumeric()) {
            let hex_fragment = word.chars().count() >= 4
                && word.chars().all(|c| c.is_ascii_hexdigit())
                && word.chars().any(|c| c.is_ascii_digit());
            if word.chars().count() >= 3
                && !word.chars().all(|c| c.is_ascii_digit())
                && !hex_fragment
                && !SAY_NOTHING.contains(&word)
                && !words.iter().any(|w| w == word)
                && words.len() < MAX_SLUG_WORDS
            {
                words.push(word.to_owned());
            }
        }
        let said = |w: &String| title_stems.contains(&super::synonyms::stem(w));
        // A title that already says most of what the address says needs nothing from it.
        if words.iter().filter(|w| said(w)).count() * 2 > words.len() {
            return Vec::new();
        }
        words.retain(|w| !said(w));
        words
    }

    /// The ids that would continue this asset, read from the last number in its id: the
    /// next part, chapter, step or month (`guide/part-1` -> `guide/part-2`,
    /// `changelog/2021-12` -> `changelog/2022-01`, `part-09` -> `part-10`). Empty when the
    /// id has no number.
    pub fn sequel_ids(&self) -> Vec<String> {
        let id = self.id.as_str();
        let Some(end) = id.rfind(|c: char| c.is_ascii_digit()).map(|i| i + 1) else {
            return Vec::new();
        };
        let start = id[..end]
            .rfind(|c: char| !c.is_ascii_digit())
            .map_or(0, |i| i + 1);
        let digits = &id[start..end];
        let Ok(n) = digits.parse::<u64>() else {
            return Vec::new();
        };
        let width = digits.len();
        let mut out = vec![format!("{}{:0width$}{}", &id[..start], n + 1, &id[end..])];
        // A month after a year (`2021-12`): the next is January of the next year.
        if n == 12 && width == 2 && start >= 5 && id[..start].ends_with('-') {
            let year_end = start - 1;
            let year_start = year_end - 4;
            if let Ok(year) = id[year_start..year_end].parse::<u64>() {
                out = vec![format!(
                    "{}{}-01{}",
                    &id[..year_start],
                    year + 1,
                    &id[end..]
                )];
            }
        }
        out.retain(|s| AssetId::parse(s).is_ok());
        out
    }

    /// What a link to this asset is, spelled as [`link_key`] spells links; `None`
    /// without an address.
    pub fn url_key(&self) -> Option<String> {
        link_key(&self.url, &self.url)
    }

    /// The keys of the pages this one links to, in order, itself left out.
    pub fn link_keys(&self) -> Vec<String> {
        let own = self.url_key();
        let mut keys: Vec<String> = Vec::new();
        for key in self.links.iter().filter_map(|l| link_key(l, &self.url)) {
            if own.as_ref() != Some(&key) && !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    }

    /// When the content was last vouched for: its review, else its publication.
    pub fn last_reviewed(&self) -> Option<DateTime<Utc>> {
        self.reviewed_at.or(self.published_at)
    }
}

fn text(raw: Option<&str>, required: bool, max: usize) -> Result<String, String> {
    let value = raw.unwrap_or_default().trim();
    if required && value.is_empty() {
        return Err("is required".to_owned());
    }
    if value.chars().count() > max {
        return Err(format!("is longer than {max} characters"));
    }
    Ok(value.to_owned())
}

/// Whether `url` is an absolute http(s) address (the scheme in any case) without
/// whitespace: what a redirect or a share link may lead to.
pub fn is_http_url(url: &str) -> bool {
    let scheme = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    (scheme.starts_with("https://") || scheme.starts_with("http://"))
        && !url.chars().any(char::is_whitespace)
}

fn parse_url(raw: &str) -> Result<String, String> {
    let url = raw.trim();
    if url.is_empty() {
        return Ok(String::new());
    }
    if url.len() > MAX_URL_LEN {
        return Err(format!("is longer than {MAX_URL_LEN} characters"));
    }
    // `//host/x` and `/\host/x` look site-relative, but browsers take them to another host.
    let site_relative = url.starts_with('/') && !url[1..].starts_with(['/', '\\']);
    if !(is_http_url(url) || site_relative) || url.chars().any(char::is_whitespace) {
        return Err(format!(
            "{url:?} is not an http(s) URL or a site-relative path (one that starts with a single /)"
        ));
    }
    Ok(url.to_owned())
}

fn bounded(values: &[String]) -> Result<&[String], String> {
    if values.len() > MAX_TAGS {
        return Err(format!("has more than {MAX_TAGS} values"));
    }
    Ok(values)
}

fn parse_industries(raw: &[String]) -> Result<Vec<IndustrySlug>, String> {
    let mut out: Vec<IndustrySlug> = Vec::new();
    for value in raw.iter().filter(|v| !v.trim().is_empty()) {
        let slug = IndustrySlug::parse(value)?;
        if !out.contains(&slug) {
            out.push(slug);
        }
    }
    Ok(out)
}

fn parse_links(raw: &[String]) -> Result<Vec<String>, String> {
    if raw.len() > MAX_LINKS {
        return Err(format!("has more than {MAX_LINKS} values"));
    }
    let mut out: Vec<String> = Vec::new();
    for value in raw.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
        if value.len() > MAX_URL_LEN {
            return Err(format!("a link is longer than {MAX_URL_LEN} bytes"));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "link {value:?} contains a space (write it as %20) or a control character"
            ));
        }
        if value.contains('|') {
            return Err(format!(
                "link {value:?} contains '|', the list separator (write it as %7C)"
            ));
        }
        // What a browser would run rather than open: a front end may render links as they
        // are. Other odd links (typos, `mailto:`) are kept and simply reach no asset.
        let lower = value.to_ascii_lowercase();
        if ["javascript:", "vbscript:", "data:"]
            .iter()
            .any(|scheme| lower.starts_with(scheme))
        {
            return Err(format!(
                "link {value:?} is a script or inline data, not a page (javascript:, vbscript: \
                 and data: links are refused)"
            ));
        }
        if !out.iter().any(|v| v == value) {
            out.push(value.to_owned());
        }
    }
    Ok(out)
}

fn parse_topics(raw: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for value in raw.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
        if value.contains('|') {
            return Err(format!("topic {value:?} contains '|', the list separator"));
        }
        if value.chars().count() > MAX_TOPIC_LEN {
            return Err(format!(
                "topic {value:?} is longer than {MAX_TOPIC_LEN} characters"
            ));
        }
        let topic = value.to_lowercase();
        if !out.contains(&topic) {
            out.push(topic);
        }
    }
    Ok(out)
}

fn optional_timestamp(raw: Option<&str>) -> Result<Option<DateTime<Utc>>, String> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(raw) => parse_timestamp(raw).map(Some),
    }
}

/// Accepts a calendar date (`2024-05-01`, taken as midnight UTC) or an RFC 3339 timestamp.
pub fn parse_timestamp(raw: &str) -> Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    if let Ok(date) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(date.and_time(NaiveTime::MIN).and_utc());
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{raw:?} is not a date (2024-05-01) or an RFC 3339 timestamp"))
}

/// Midnight UTC is written as a plain date, anything else as RFC 3339; both parse back to
/// the same instant.
fn format_timestamp(t: DateTime<Utc>) -> String {
    if t.time() == NaiveTime::MIN {
        t.format("%Y-%m-%d").to_string()
    } else {
        t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }
}

/// Which kind of tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagField {
    Stage,
    Role,
    Industry,
    Concern,
}

impl TagField {
    /// As exports write it: `stage`, `role`, `industry`, `concern`.
    pub fn name(self) -> &'static str {
        match self {
            TagField::Stage => "stage",
            TagField::Role => "role",
            TagField::Industry => "industry",
            TagField::Concern => "concern",
        }
    }
}

/// One tag of an asset and where it comes from (see [`Asset::tag_entries`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TagEntry {
    pub field: TagField,
    /// None for an empty role or industry list.
    pub value: Option<String>,
    pub source: TagSource,
    pub confidence: f64,
}

/// The first `chars` characters of a text (all of it when shorter): what reading an
/// asset's opening takes, whatever the length of its body.
pub fn opening(text: &str, chars: usize) -> &str {
    let end = text
        .char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i);
    &text[..end]
}

/// The folders and slug of a URL's path, without its scheme, host, query or fragment,
/// empty segments left out: `https://acme.example/docs/x?y` gives `docs`, `x`.
pub fn url_segments(url: &str) -> impl Iterator<Item = &str> {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    path.split('/')
        .skip(usize::from(!url.starts_with('/')))
        .filter(|s| !s.is_empty())
}

/// Where a link points, spelled one way however it was written: the host (lowercase;
/// empty for a site-relative address) and the path, without fragment, query, trailing
/// slash, a final `index` or a `.html`/`.htm`/`.md`/`.mdx` ending, `.` and `..` resolved.
/// A relative link is read against `base`, the address of the page it is on. `None` for
/// what cannot be a page (mail, telephone, scripts, protocol-relative or empty links).
/// An asset's own key is `link_key(url, url)`: a link reaches the asset whose key it has.
pub fn link_key(target: &str, base: &str) -> Option<String> {
    fn host_and_path(url: &str) -> Option<(&str, &str)> {
        let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
        let rest = if lower.starts_with("https://") {
            &url[8..]
        } else if lower.starts_with("http://") {
            &url[7..]
        } else {
            return None;
        };
        Some(
            rest.find('/')
                .map_or((rest, "/"), |i| (&rest[..i], &rest[i..])),
        )
    }
    let target = target.trim().split(['#', '?']).next().unwrap_or_default();
    let base = base.trim().split(['#', '?']).next().unwrap_or_default();
    if target.is_empty() || target.starts_with("//") {
        return None;
    }
    let (base_host, base_path) = host_and_path(base).unwrap_or(("", base));
    let (host, joined) = if let Some((host, path)) = host_and_path(target) {
        (host, path.to_owned())
    } else if target
        .split('/')
        .next()
        .is_some_and(|first| first.contains(':'))
    {
        return None; // mailto:, tel:, javascript: and the like
    } else if target.starts_with('/') {
        (base_host, target.to_owned())
    } else if base_path.is_empty() {
        return None; // relative to nothing: the page has no address
    } else {
        // Relative to the folder of the page it is on.
        let folder = base_path.rfind('/').map_or("", |i| &base_path[..=i]);
        (base_host, format!("{folder}{target}"))
    };
    let mut segments: Vec<&str> = Vec::new();
    for segment in joined.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    if let Some(last) = segments.last_mut() {
        let lower = last.to_ascii_lowercase();
        for ending in [".html", ".htm", ".mdx", ".md"] {
            if lower.ends_with(ending) {
                *last = &last[..last.len() - ending.len()];
                break;
            }
        }
    }
    if segments
        .last()
        .is_some_and(|s| s.eq_ignore_ascii_case("index") || s.is_empty())
    {
        segments.pop();
    }
    Some(format!(
        "{}/{}",
        host.to_ascii_lowercase(),
        segments.join("/")
    ))
}

/// Most words an address adds to its page ([`Asset::slug_words`]): a slug is a few words;
/// a crafted 2 KB address must not stuff a title.
pub const MAX_SLUG_WORDS: usize = 8;

/// Booleans as spreadsheets write them.
pub fn parse_bool(raw: &str) -> Result<Option<bool>, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "true" | "yes" | "y" | "1" => Ok(Some(true)),
        "false" | "no" | "n" | "0" => Ok(Some(false)),
        other => Err(format!("{other:?} is not a boolean (true/false)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_keyed_however_they_are_written() {
        let page = "/docs/install/kubernetes";
        let key = |target: &str| link_key(target, page);
        assert_eq!(key("./database").as_deref(), Some("/docs/install/database"));
        assert_eq!(
            key("database.md").as_deref(),
            Some("/docs/install/database")
        );
        assert_eq!(key("../guides/").as_deref(), Some("/docs/guides"));
        assert_eq!(
            key("/docs/api/rest/#auth").as_deref(),
            Some("/docs/api/rest")
        );
        assert_eq!(key("/blog/index.html?x=1").as_deref(), Some("/blog"));
        assert_eq!(
            key("HTTPS://Example.COM/Pricing").as_deref(),
            Some("example.com/Pricing")
        );
        assert_eq!(key("https://example.com").as_deref(), Some("example.com/"));
        assert_eq!(key("../../../../..").as_deref(), Some("/"));
        for nothing in [
            "mailto:a@b.c",
            "tel:123",
            "javascript:void(0)",
            "//cdn.x/y",
            "#top",
            " ",
        ] {
            assert_eq!(key(nothing), None, "{nothing}");
        }
        // Against an absolute address, site-relative links keep its host.
        assert_eq!(
            link_key("/pricing", "https://Example.com/docs/a").as_deref(),
            Some("example.com/pricing")
        );
        assert_eq!(
            link_key("b", "https://example.com/docs/a").as_deref(),
            Some("example.com/docs/b")
        );
        // A page without an address has no folder for relative links.
        assert_eq!(link_key("b", ""), None);
        assert_eq!(link_key("/b", "").as_deref(), Some("/b"));
        // A page's own key, with or without its trailing slash, is the key of links to it.
        assert_eq!(link_key("/docs/a/", "/docs/a/"), link_key("/docs/a", "/x"));
    }

    fn draft() -> AssetDraft {
        AssetDraft {
            id: Some("roi-guide".into()),
            title: Some("  The ROI guide ".into()),
            content_type: Some("buyer-guide".into()),
            stages: vec!["cost-awareness".into(), "interest".into()],
            roles: vec!["finance".into()],
            industries: vec!["Financial Services/Payments".into()],
            topics: vec!["ROI".into(), "roi".into(), "Payback".into()],
            published_at: Some("2024-03-01".into()),
            reviewed_at: Some("2025-01-02T10:30:00+02:00".into()),
            ..AssetDraft::default()
        }
    }

    #[test]
    fn a_draft_validates_into_canonical_values() {
        let asset = draft().validate().unwrap();
        assert_eq!(asset.title, "The ROI guide");
        assert_eq!(asset.stages, vec![Stage::Consideration, Stage::Decision]);
        assert_eq!(asset.roles, vec![Role::Finance]);
        assert_eq!(asset.industries[0].as_str(), "financial-services/payments");
        assert_eq!(asset.topics, vec!["roi", "payback"]);
        assert_eq!(asset.language.as_str(), "en");
        assert_eq!(asset.status, AssetStatus::Published);
        assert_eq!(
            asset.reviewed_at.unwrap().to_rfc3339(),
            "2025-01-02T08:30:00+00:00"
        );
    }

    #[test]
    fn missing_stages_come_from_the_content_type() {
        let mut d = draft();
        d.stages.clear();
        d.content_type = Some("API_DOCS".into());
        assert_eq!(d.validate().unwrap().stages, vec![Stage::Adoption]);
    }

    #[test]
    fn every_bad_field_is_reported() {
        let d = AssetDraft {
            id: Some("has space".into()),
            content_type: Some("podcast".into()),
            stages: vec!["closing".into()],
            language: Some("english".into()),
            published_at: Some("yesterday".into()),
            url: Some("ftp://x".into()),
            ..AssetDraft::default()
        };
        let fields: Vec<&str> = d.validate().unwrap_err().iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            vec![
                "id",
                "title",
                "url",
                "content_type",
                "stages",
                "language",
                "published_at"
            ]
        );
    }

    #[test]
    fn the_draft_of_an_asset_validates_back_to_it() {
        let asset = draft().validate().unwrap();
        let again = asset.to_draft().validate().unwrap();
        assert_eq!(asset, again);
        assert_eq!(asset.fingerprint(), again.fingerprint());
        assert_eq!(asset.to_draft().published_at.as_deref(), Some("2024-03-01"));
    }

    #[test]
    fn a_sequel_is_the_next_number_of_the_id() {
        let with_id = |id: &str| {
            AssetDraft {
                id: Some(id.into()),
                title: Some("t".into()),
                content_type: Some("EBOOK".into()),
                ..AssetDraft::default()
            }
            .validate()
            .unwrap()
        };
        assert_eq!(with_id("guide/part-1").sequel_ids(), ["guide/part-2"]);
        assert_eq!(with_id("step-09-setup").sequel_ids(), ["step-10-setup"]);
        assert_eq!(
            with_id("changelog/2021-06").sequel_ids(),
            ["changelog/2021-07"]
        );
        assert_eq!(
            with_id("changelog/2021-12").sequel_ids(),
            ["changelog/2022-01"]
        );
        assert!(with_id("pricing").sequel_ids().is_empty());
    }

    /// An untagged asset as a library would hold it.
    fn page(content_type: &str, url: &str, title: &str, body: &str) -> Asset {
        AssetDraft {
            id: Some("p".into()),
            title: Some(title.into()),
            url: Some(url.into()),
            body: Some(body.into()),
            content_type: Some(content_type.into()),
            ..AssetDraft::default()
        }
        .validate()
        .unwrap()
    }

    #[test]
    fn a_weak_stage_reading_counts_only_when_the_words_carry_it() {
        let read = |title: &str, body: &str| page("EBOOK", "", title, body);
        // One word for adoption; the ebook's prior for awareness wins, weakly: that is the
        // format's default, not a reading of the text.
        let prior = read("A", "See the example.");
        assert!(!prior.inferred.stage_named, "{:?}", prior.inferred);
        assert_eq!(prior.evidence.stages.source, TagSource::Default);
        // Words that carry the best stage, however weakly, are a reading.
        let words = read("A", "See the example. Why? A trend.");
        assert!(words.inferred.stage_named, "{:?}", words.inferred);
        assert_eq!(words.evidence.stages.source, TagSource::Inferred);
        assert_eq!(words.stages, [Stage::Awareness]);
    }

    #[test]
    fn the_address_adds_the_words_a_title_lacks() {
        let page = |url: &str, title: &str| page("BLOG_POST", url, title, "").slug_words();
        assert_eq!(
            page(
                "/blog/prebuilds",
                "Waiting for code to build is like watching paint dry"
            ),
            ["prebuilds"]
        );
        assert_eq!(
            page(
                "https://example.com/blog/2021/02/05/questdb-release-5-0-6-postgres-wire/",
                "QuestDB release January 2021"
            ),
            ["postgres", "wire"]
        );
        assert_eq!(
            page("/blog/open-vsx-in-gitpod.html", "Extensions in Gitpod"),
            ["open", "vsx"]
        );
        // A title that says most of the address needs nothing from it, inflected or not.
        assert!(page("/docs/install-on-kubernetes", "Install on Kubernetes").is_empty());
        assert!(
            page(
                "/docs/deploy-kubernetes-cluster",
                "Deploying Kubernetes clusters"
            )
            .is_empty()
        );
        assert_eq!(
            page("/docs/deploy-kubernetes-cluster", "Deploying at scale"),
            ["kubernetes", "cluster"]
        );
        // Words every site's addresses use, file types and id fragments say nothing.
        assert!(page("/docs/index.HTML", "Welcome").is_empty());
        assert!(page("/a/550e8400-e29b-41d4-a716-446655440000", "Welcome").is_empty());
        // A crafted address adds a few words, not a stuffed title.
        let long = format!(
            "/blog/{}",
            (0..200)
                .map(|i| format!("word{i:03}x"))
                .collect::<Vec<_>>()
                .join("-")
        );
        assert_eq!(page(&long, "Welcome").len(), MAX_SLUG_WORDS);
    }

    #[test]
    fn the_folder_names_the_type_when_the_record_does_not() {
        let typed = |url: &str| {
            AssetDraft {
                id: Some("x".into()),
                title: Some("x".into()),
                url: Some(url.into()),
                ..AssetDraft::default()
            }
            .validate()
            .map(|a| a.content_type)
        };
        assert_eq!(typed("/en/blog/x"), Ok(ContentType::BlogPost));
        assert_eq!(
            typed("https://acme.example/changelog/4-2"),
            Ok(ContentType::ReleaseNotes)
        );
        assert_eq!(typed("/docs/api/x"), Ok(ContentType::Documentation));
        assert_eq!(typed("/vs/globex"), Ok(ContentType::ComparisonGuide));
        let err = typed("/about/team").unwrap_err();
        assert_eq!(err[0].field, "content_type");
    }

    #[test]
    fn spreadsheet_booleans() {
        assert_eq!(parse_bool("Yes"), Ok(Some(true)));
        assert_eq!(parse_bool("0"), Ok(Some(false)));
        assert_eq!(parse_bool(" "), Ok(None));
        assert!(parse_bool("maybe").is_err());
    }
}
