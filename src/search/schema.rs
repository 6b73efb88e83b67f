//! The tantivy schema: how an asset becomes a document, and the text analyzers.

use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer, Token, TokenFilter,
    TokenStream, Tokenizer,
};
use tantivy::{Index, TantivyDocument};
use tantivy_jieba::JiebaTokenizer;

use crate::domain::{Asset, AssetStatus, IndustrySlug, TaxonomyValue, Trust};
use crate::ranking::ranking_trust;

/// Bumped whenever the schema or an analyzer changes; an index built by another version is
/// rebuilt from the database on start.
pub const SCHEMA_VERSION: u32 = 10;

/// The token written for "no value": an asset for every role, a cross-industry asset.
pub const ANY: &str = "ANY";

/// The token written for "some value": an asset for named roles, an industry-specific
/// asset. It only appears in `tier_key`.
pub const SPECIFIC: &str = "SPECIFIC";

/// Text analysis per language family. Each asset's text goes into the fields of its own
/// analyzer; queries search all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Analyzer {
    /// English, stemmed (`payments` finds `payment`).
    English,
    /// Chinese, segmented into words by jieba.
    Chinese,
    /// Every other language: split on non-alphanumerics and lowercased.
    Plain,
}

impl Analyzer {
    pub const ALL: [Analyzer; 3] = [Analyzer::English, Analyzer::Chinese, Analyzer::Plain];

    fn tokenizer_name(self) -> &'static str {
        match self {
            Analyzer::English => "stagefit_en",
            Analyzer::Chinese => "stagefit_zh",
            Analyzer::Plain => "stagefit_plain",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Analyzer::English => "en",
            Analyzer::Chinese => "zh",
            Analyzer::Plain => "plain",
        }
    }

    pub fn for_language(primary: &str) -> Self {
        match primary {
            "en" => Analyzer::English,
            "zh" => Analyzer::Chinese,
            _ => Analyzer::Plain,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The three text fields of one analyzer.
#[derive(Clone, Copy, Debug)]
pub struct TextFields {
    pub title: Field,
    pub summary: Field,
    pub body: Field,
}

#[derive(Clone, Debug)]
pub struct Fields {
    pub id: Field,
    /// The asset as its interchange record (JSON), so hits need no database read.
    pub source: Field,
    pub text: [TextFields; 3],
    pub stage: Field,
    pub role: Field,
    pub industry: Field,
    /// Each industry with all its ancestors, for subtree filters and counts.
    pub industry_tree: Field,
    pub concern: Field,
    pub topic: Field,
    pub content_type: Field,
    pub language: Field,
    /// Full tag and language subtag, so a `zh` filter matches `zh-CN`.
    pub language_match: Field,
    pub status: Field,
    pub stage_mask: Field,
    pub role_mask: Field,
    pub concern_mask: Field,
    pub content_type_ord: Field,
    pub published_ts: Field,
    pub reviewed_ts: Field,
    pub evergreen: Field,
    /// What freshness is computed from, in one column: see `freshness_ts`.
    pub freshness_ts: Field,
    /// One term per combination of a published asset's stage, role, language and
    /// industry: see `tier_keys`.
    pub tier_key: Field,
    /// Stages, roles and industries as ranking reads them: each value with the prefix of
    /// how far it is trusted (`ranked`), so a level of a graded factor can tell a declared
    /// stage from one read from the text or defaulted.
    pub stage_rank: Field,
    /// `Asset::prominence`: what decides between equal scores.
    pub prominence: Field,
    /// `Asset::leanings`: how surely the asset speaks to each stage and role, what decides
    /// between equal scores for an audience before prominence.
    pub leanings: Field,
    /// `TagSources::pack`: where the stages, roles and industries come from (the audit).
    pub tag_sources: Field,
    pub role_rank: Field,
    pub industry_rank: Field,
    pub industry_tree_rank: Field,
    /// `Asset::url_key`: how links on other pages reach this one.
    pub url_key: Field,
}

impl TextFields {
    /// Each text field with its weight in text relevance: a match in the title counts
    /// three times a match in the body, one in the summary one and a half times. Search
    /// and recommendations both score text with these.
    pub fn boosted(&self) -> [(Field, f32); 3] {
        [(self.title, 3.0), (self.summary, 1.5), (self.body, 1.0)]
    }
}

impl Fields {
    pub fn text_for(&self, analyzer: Analyzer) -> TextFields {
        self.text[analyzer.index()]
    }
}

pub fn build_schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let tag = STRING | FAST;
    let text_fields = Analyzer::ALL.map(|analyzer| {
        let options = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(analyzer.tokenizer_name())
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let suffix = analyzer.suffix();
        TextFields {
            title: b.add_text_field(&format!("title_{suffix}"), options.clone()),
            summary: b.add_text_field(&format!("summary_{suffix}"), options.clone()),
            body: b.add_text_field(&format!("body_{suffix}"), options),
        }
    });
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED | FAST),
        // Stored as text, not bytes: tantivy reads a stored bytes value element by element
        // (measured at a tenth of a recommendation), a text value in one copy.
        source: b.add_text_field("source", STORED),
        text: text_fields,
        stage: b.add_text_field("stage", tag.clone()),
        role: b.add_text_field("role", tag.clone()),
        industry: b.add_text_field("industry", tag.clone()),
        industry_tree: b.add_text_field("industry_tree", tag.clone()),
        concern: b.add_text_field("concern", tag.clone()),
        topic: b.add_text_field("topic", tag.clone()),
        content_type: b.add_text_field("content_type", tag.clone()),
        language: b.add_text_field("language", tag.clone()),
        language_match: b.add_text_field("language_match", STRING),
        status: b.add_text_field("status", tag),
        stage_mask: b.add_u64_field("stage_mask", FAST),
        role_mask: b.add_u64_field("role_mask", FAST),
        concern_mask: b.add_u64_field("concern_mask", FAST),
        content_type_ord: b.add_u64_field("content_type_ord", FAST),
        published_ts: b.add_i64_field("published_ts", FAST | INDEXED),
        reviewed_ts: b.add_i64_field("reviewed_ts", FAST | INDEXED),
        evergreen: b.add_bool_field("evergreen", FAST),
        freshness_ts: b.add_i64_field("freshness_ts", FAST),
        tier_key: b.add_text_field("tier_key", STRING),
        stage_rank: b.add_text_field("stage_rank", STRING),
        prominence: b.add_u64_field("prominence", FAST),
        leanings: b.add_u64_field("leanings", FAST),
        tag_sources: b.add_u64_field("tag_sources", FAST),
        role_rank: b.add_text_field("role_rank", STRING),
        industry_rank: b.add_text_field("industry_rank", STRING),
        industry_tree_rank: b.add_text_field("industry_tree_rank", STRING),
        url_key: b.add_text_field("url_key", STRING),
    };
    (b.build(), fields)
}

pub fn register_analyzers(index: &Index) {
    let manager = index.tokenizers();
    for analyzer in Analyzer::ALL {
        manager.register(analyzer.tokenizer_name(), text_analyzer(analyzer));
    }
}

fn text_analyzer(analyzer: Analyzer) -> TextAnalyzer {
    match analyzer {
        Analyzer::English => TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(40))
            .filter(LowerCaser)
            .filter(Stemmer::new(tantivy::tokenizer::Language::English))
            .build(),
        Analyzer::Chinese => TextAnalyzer::builder(JiebaTokenizer::new())
            .filter(WordsOnly)
            .filter(RemoveLongFilter::limit(40))
            .filter(LowerCaser)
            .build(),
        Analyzer::Plain => TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(40))
            .filter(LowerCaser)
            .build(),
    }
}

/// The analyzers for a query parser reading text that [`cut_alike_by_jieba_and_plain`]
/// passes: the Chinese fields' cut by the plain analyzer, which cuts such text as jieba
/// does, so query syntax in English does not load jieba's dictionary either (its first
/// load took 110 ms of one request).
pub fn ascii_query_tokenizers() -> tantivy::tokenizer::TokenizerManager {
    let manager = tantivy::tokenizer::TokenizerManager::default();
    for analyzer in Analyzer::ALL {
        let cut_as = match analyzer {
            Analyzer::Chinese => Analyzer::Plain,
            other => other,
        };
        manager.register(analyzer.tokenizer_name(), text_analyzer(cut_as));
    }
    manager
}

pub fn build_document(fields: &Fields, asset: &Asset) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_text(fields.id, asset.id.as_str());
    let source = serde_json::to_string(&asset.to_draft()).unwrap_or_default();
    doc.add_text(fields.source, &source);

    let text = fields.text_for(Analyzer::for_language(asset.language.primary()));
    doc.add_text(text.title, &asset.title);
    // The address's words a title lacks count as title words: a page is found by its slug
    // ("prebuilds", "postgres wire") whatever its title says.
    let slug = asset.slug_words();
    if !slug.is_empty() {
        doc.add_text(text.title, slug.join(" "));
    }
    doc.add_text(text.summary, &asset.summary);
    doc.add_text(text.body, &asset.body);

    for stage in &asset.stages {
        doc.add_text(fields.stage, stage.name());
    }
    for role in &asset.roles {
        doc.add_text(fields.role, role.name());
    }
    if asset.roles.is_empty() {
        doc.add_text(fields.role, ANY);
    }
    for industry in &asset.industries {
        doc.add_text(fields.industry, industry.as_str());
    }
    let mut tree: Vec<String> = asset
        .industries
        .iter()
        .flat_map(|i| i.self_and_ancestors())
        .map(|i| i.to_string())
        .collect();
    tree.sort();
    tree.dedup();
    for slug in &tree {
        doc.add_text(fields.industry_tree, slug);
    }
    if asset.industries.is_empty() {
        doc.add_text(fields.industry, ANY);
        doc.add_text(fields.industry_tree, ANY);
    }
    for concern in &asset.concerns {
        doc.add_text(fields.concern, concern.name());
    }
    for topic in &asset.topics {
        doc.add_text(fields.topic, topic);
    }
    doc.add_text(fields.content_type, asset.content_type.name());
    doc.add_text(fields.language, asset.language.as_str());
    doc.add_text(fields.language_match, asset.language.as_str());
    if asset.language.primary() != asset.language.as_str() {
        doc.add_text(fields.language_match, asset.language.primary());
    }
    doc.add_text(fields.status, asset.status.name());
    if let Some(key) = asset.url_key() {
        doc.add_text(fields.url_key, &key);
    }
    doc.add_u64(fields.stage_mask, TaxonomyValue::mask(&asset.stages));
    doc.add_u64(fields.role_mask, TaxonomyValue::mask(&asset.roles));
    doc.add_u64(fields.concern_mask, TaxonomyValue::mask(&asset.concerns));
    doc.add_u64(fields.content_type_ord, asset.content_type.ordinal() as u64);
    if let Some(t) = asset.published_at {
        doc.add_i64(fields.published_ts, t.timestamp());
    }
    if let Some(t) = asset.reviewed_at {
        doc.add_i64(fields.reviewed_ts, t.timestamp());
    }
    doc.add_bool(fields.evergreen, asset.evergreen);
    doc.add_i64(fields.freshness_ts, freshness_ts(asset));
    doc.add_u64(fields.prominence, asset.prominence());
    doc.add_u64(fields.leanings, asset.leanings());
    doc.add_u64(
        fields.tag_sources,
        crate::domain::TagSources::from_asset(asset).pack(),
    );
    let trust = ranking_trust(asset);
    for stage in &asset.stages {
        doc.add_text(fields.stage_rank, ranked(trust.stages, stage.name()));
    }
    for role in ranked_values(trust.roles, asset.roles.iter().map(|r| r.name())) {
        doc.add_text(fields.role_rank, role);
    }
    for industry in ranked_values(
        trust.industries,
        asset.industries.iter().map(IndustrySlug::as_str),
    ) {
        doc.add_text(fields.industry_rank, industry);
    }
    if asset.industries.is_empty() {
        doc.add_text(fields.industry_tree_rank, ranked(trust.industries, ANY));
    }
    for slug in &tree {
        doc.add_text(fields.industry_tree_rank, ranked(trust.industries, slug));
    }
    // Recommendations only ever show published assets: only they are reachable by key.
    if asset.status == AssetStatus::Published {
        for key in tier_keys(asset) {
            doc.add_text(fields.tier_key, &key);
        }
    }
    doc
}

/// The `tier_key` term for one stage, role, language subtag and industry.
///
/// The industry comes last so that every key of an industry's subtree shares a prefix.
pub fn tier_key(stage: &str, role: &str, language: &str, industry: &str) -> String {
    format!("{stage}|{role}|{language}|{industry}")
}

/// Every combination of the asset's stages, roles (`ANY` when it names none, else each
/// role and `SPECIFIC`), language subtag and industries (`ANY`, else each industry and
/// `SPECIFIC`). A recommendation tier (one level per graded factor) is then a handful of
/// these terms instead of an intersection of four long posting lists; see
/// `recommend::tier_key_terms`. Typically four to ten terms per asset.
pub fn tier_keys(asset: &Asset) -> Vec<String> {
    let trust = ranking_trust(asset);
    let roles = ranked_values(trust.roles, asset.roles.iter().map(|r| r.name()));
    let industries = ranked_values(
        trust.industries,
        asset.industries.iter().map(IndustrySlug::as_str),
    );
    let language = asset.language.primary();
    let mut keys = Vec::with_capacity(asset.stages.len() * roles.len() * industries.len());
    for stage in &asset.stages {
        let stage = ranked(trust.stages, stage.name());
        for role in &roles {
            for industry in &industries {
                keys.push(tier_key(&stage, role, language, industry));
            }
        }
    }
    keys
}

/// A tag value as ranking indexes it: declared values as they are, others behind their
/// trust's prefix (`s~DECISION`).
pub fn ranked(trust: Trust, value: &str) -> String {
    format!("{}{value}", trust.prefix())
}

/// A kind's values as ranking indexes them: `ANY` when there are none, else each value and
/// `SPECIFIC` ("names some value"), every one behind the trust's prefix.
fn ranked_values<'a>(trust: Trust, values: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = values.map(|v| ranked(trust, v)).collect();
    out.push(ranked(trust, if out.is_empty() { ANY } else { SPECIFIC }));
    out
}

/// An evergreen asset never ages.
pub const EVERGREEN_TS: i64 = i64::MAX;
/// An asset with neither a review nor a publication date.
pub const UNDATED_TS: i64 = i64::MIN;

/// The date freshness counts from (the last review, else publication), with evergreen
/// assets newest of all and undated ones oldest, so a range of this column bounds
/// freshness.
pub fn freshness_ts(asset: &Asset) -> i64 {
    if asset.evergreen {
        return EVERGREEN_TS;
    }
    asset
        .reviewed_at
        .or(asset.published_at)
        .map_or(UNDATED_TS, |t| t.timestamp())
}

/// Whether jieba would cut `text` exactly as the plain analyzer does: ASCII letters and
/// digits with whitespace and punctuation that only separates words (a test holds the two
/// to it). Such text is cut by the plain analyzer for the Chinese fields too, so a query
/// in English never loads jieba's dictionary, some 25 MB of heap.
pub fn cut_alike_by_jieba_and_plain(text: &str) -> bool {
    text.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || c.is_whitespace()
            || matches!(
                c,
                ',' | ';' | ':' | '!' | '?' | '\'' | '"' | '(' | ')' | '/'
            )
    })
}

/// Drops the whitespace and punctuation tokens that jieba emits between words; left in, a
/// query such as `支付 结算` would also search for the space between the words.
#[derive(Clone)]
struct WordsOnly;

impl TokenFilter for WordsOnly {
    type Tokenizer<T: Tokenizer> = WordsOnlyTokenizer<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> WordsOnlyTokenizer<T> {
        WordsOnlyTokenizer(tokenizer)
    }
}

#[derive(Clone)]
struct WordsOnlyTokenizer<T>(T);

impl<T: Tokenizer> Tokenizer for WordsOnlyTokenizer<T> {
    type TokenStream<'a> = WordsOnlyStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        WordsOnlyStream(self.0.token_stream(text))
    }
}

struct WordsOnlyStream<S>(S);

impl<S: TokenStream> TokenStream for WordsOnlyStream<S> {
    fn advance(&mut self) -> bool {
        while self.0.advance() {
            if self.0.token().text.chars().any(char::is_alphanumeric) {
                return true;
            }
        }
        false
    }

    fn token(&self) -> &Token {
        self.0.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.0.token_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(index: &Index, analyzer: Analyzer, text: &str) -> Vec<String> {
        let mut a = index
            .tokenizers()
            .get(analyzer.tokenizer_name())
            .expect("registered");
        let mut stream = a.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    #[test]
    fn chinese_is_segmented_into_words_without_punctuation() {
        let index = Index::create_in_ram(build_schema().0);
        register_analyzers(&index);
        let words = tokens(&index, Analyzer::Chinese, "跨境支付的结算与对账，API 接入");
        assert!(words.contains(&"结算".to_owned()), "{words:?}");
        assert!(words.contains(&"对账".to_owned()), "{words:?}");
        assert!(words.contains(&"api".to_owned()), "{words:?}");
        assert!(
            words.iter().all(|w| w.chars().any(char::is_alphanumeric)),
            "{words:?}"
        );
    }

    #[test]
    fn english_is_stemmed() {
        let index = Index::create_in_ram(build_schema().0);
        register_analyzers(&index);
        assert_eq!(
            tokens(&index, Analyzer::English, "Reconciling Payments"),
            vec!["reconcil", "payment"]
        );
    }

    #[test]
    fn jieba_cuts_what_passes_the_check_as_the_plain_analyzer_does() {
        let index = Index::create_in_ram(build_schema().0);
        register_analyzers(&index);
        let alike = [
            "signature security",
            "Signature SECURITY api 2026",
            "don't stop, it's fine!",
            "a/b testing (more): yes? \"quoted\"; no",
            "ROI calculator 3x faster",
        ];
        // Each of these jieba cuts differently (joined forms, symbols, accents).
        let unlike = [
            "follow-up",
            "v2.1",
            "user_id",
            "c++",
            "c#",
            "50%",
            "foo@bar.com",
            "café",
        ];
        for text in alike {
            assert!(cut_alike_by_jieba_and_plain(text), "{text}");
            assert_eq!(
                tokens(&index, Analyzer::Chinese, text),
                tokens(&index, Analyzer::Plain, text),
                "{text}"
            );
        }
        for text in unlike {
            assert!(!cut_alike_by_jieba_and_plain(text), "{text}");
            assert_ne!(
                tokens(&index, Analyzer::Chinese, text),
                tokens(&index, Analyzer::Plain, text),
                "{text}"
            );
        }
    }
}
