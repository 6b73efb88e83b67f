//! Reading the index: filtered listings, full-text search with highlights and facets.

use std::collections::HashMap;
use std::sync::Arc;

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use tantivy::collector::{Collector, SegmentCollector, TopDocs};
use tantivy::index::SegmentId;
use tantivy::query::{
    BooleanQuery, BoostQuery, EnableScoring, Occur, PhraseQuery, Query, QueryParser, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::{DocAddress, DocId, Order, Searcher, TantivyDocument, Term};

use super::SearchIndex;
use super::facets::FacetCollector;
use super::filter::{Bits, FilterPlan};
use super::schema::{Analyzer, Fields, cut_alike_by_jieba_and_plain};
use crate::domain::{
    Asset, AssetDraft, AssetFilter, FacetCount, FacetField, Highlight, MAX_QUERY_NESTING,
    MAX_QUERY_TERMS, SearchHit, SearchPage, SearchRequest, SortOrder, is_one_word, is_stop_word,
    query_nesting,
};
use crate::error::{AppError, AppResult};

const SNIPPET_CHARS: usize = 180;
/// Results a hybrid search orders: the text matches and assets near in meaning it fuses,
/// the same however deep the page (so pages never drift), and where its pages end.
pub const HYBRID_WINDOW: usize = 100;

/// What meaning adds to a text search: the assets nearest the query's vector with their
/// cosines, any asset's cosine, and meaning's share of the fused score.
pub struct Hybrid<'a> {
    pub near: Vec<(String, f32)>,
    pub cosine: &'a (dyn Fn(&str) -> Option<f32> + Sync),
    /// 0: words alone; 1: meaning alone.
    pub ratio: f64,
    /// A cosine from which the best hit counts as a good match even when its words
    /// hold little of the query.
    pub good_from: f32,
}
/// How much of a field highlights read: matches further in are found but not shown.
pub const HIGHLIGHT_CHARS: usize = 20_000;

impl SearchIndex {
    /// Runs a search; blocking, call it off the async runtime.
    ///
    /// The filter is evaluated as bits (see `filter`). Text relevance without a count or
    /// facets is block-max pruned: only documents that can still reach the page are
    /// scored. Anything else walks every match once.
    pub fn search(&self, request: &SearchRequest) -> AppResult<SearchPage> {
        self.search_with(request, None)
    }

    /// A search whose relevance order fuses the words' BM25 (scaled by the best hit's)
    /// with meaning (`hybrid`), when there is text and the order is by relevance.
    pub fn search_with(
        &self,
        request: &SearchRequest,
        hybrid: Option<&Hybrid<'_>>,
    ) -> AppResult<SearchPage> {
        let fields = &self.inner.fields;
        let searcher = self.inner.reader.searcher();
        let text_query = request
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| self.text_query(t, &request.synonyms));
        let plan = FilterPlan::new(fields, &request.filter, true);
        let sort = match (request.sort, &text_query) {
            (SortOrder::Relevance, None) => SortOrder::Newest,
            (sort, _) => sort,
        };
        // One more than the page tells whether another page follows.
        let wanted = request.offset + request.limit + 1;
        // Meaning orders plain queries' first results only: an operator (-word, NOT, a
        // phrase) is the searcher's own rule, which meaning cannot keep.
        let hybrid = hybrid.filter(|h| {
            text_query.is_some()
                && sort == SortOrder::Relevance
                && h.ratio > 0.0
                && is_plain(text_of(request))
                && request.offset < HYBRID_WINDOW
        });
        let exhaustive = text_query.is_none()
            || request.count
            || !request.facets.is_empty()
            || sort != SortOrder::Relevance;

        let scoring = EnableScoring::enabled_from_searcher(&searcher);
        let query = text_query.as_ref().map(TextQuery::query);
        let weight = match &query {
            Some(query) => Some(query.weight(scoring)?),
            None => None,
        };
        let (words, phrases): (&[(Term, f32)], &[Phrase]) = match &text_query {
            Some(TextQuery::Words { words, phrases }) => (words, phrases),
            _ => (&[], &[]),
        };
        // Each word's and phrase's own weight, for scoring only the documents the filter
        // lets through.
        let word_weights = words
            .iter()
            .map(|(term, boost)| word_query(term, *boost).weight(scoring))
            .chain(
                phrases
                    .iter()
                    .map(|phrase| phrase_query(phrase).weight(scoring)),
            )
            .collect::<tantivy::Result<Vec<_>>>()?;
        let mut best = TopScores::new(if hybrid.is_some() {
            HYBRID_WINDOW + 1
        } else {
            wanted
        });
        let mut matched: Vec<Bits> = Vec::new();
        for (ord, reader) in searcher.segment_readers().iter().enumerate() {
            let allowed = self.filter_bits(reader, &plan)?;
            let ord = ord as u32;
            let Some(weight) = &weight else {
                matched.push(allowed);
                continue;
            };
            // Walking the filter's documents and seeking each word to them reads no more
            // than the words' postings; it wins when the filter is narrower than the text.
            let by_filter = !word_weights.is_empty()
                && (exhaustive
                    || allowed.len().saturating_mul(FILTER_DRIVEN_RATIO)
                        < postings(reader, words)?);
            if by_filter {
                let hits = score_allowed(reader, &word_weights, &allowed, &mut |doc, score| {
                    best.offer(score, DocAddress::new(ord, doc))
                })?;
                matched.push(hits);
            } else if exhaustive {
                let mut hits = allowed.none_like();
                weight.for_each(reader, &mut |doc, score| {
                    if allowed.contains(doc) {
                        hits.insert(doc);
                        best.offer(score, DocAddress::new(ord, doc));
                    }
                })?;
                matched.push(hits);
            } else {
                weight.for_each_pruning(best.threshold(), reader, &mut |doc, score| {
                    if allowed.contains(doc) {
                        best.offer(score, DocAddress::new(ord, doc));
                    }
                    best.threshold()
                })?;
            }
        }
        let total = exhaustive.then(|| matched.iter().map(Bits::len).sum::<u64>());
        let facets = if request.facets.is_empty() {
            Vec::new()
        } else {
            drive(
                &searcher,
                &matched,
                &FacetCollector::new(request.facets.clone()),
            )?
        };
        let top = TopDocs::with_limit(wanted - request.offset).and_offset(request.offset);
        let mut best_cosine: f32 = 0.0;
        let mut addresses: Vec<(f32, DocAddress)> = match (sort, hybrid) {
            (SortOrder::Relevance, Some(hybrid)) => {
                let fused = self.fuse(&searcher, &request.filter, best.into_sorted(), hybrid)?;
                best_cosine = fused.best_cosine;
                let mut hits: Vec<(f32, DocAddress)> = fused.hits;
                // The window's end is the list's end.
                hits.truncate(HYBRID_WINDOW);
                hits.into_iter()
                    .skip(request.offset)
                    .take(wanted - request.offset)
                    .collect()
            }
            (SortOrder::Relevance, None) => best
                .into_sorted()
                .into_iter()
                .skip(request.offset)
                .collect(),
            (SortOrder::Newest, _) => drive(
                &searcher,
                &matched,
                &top.order_by_fast_field::<i64>("published_ts", Order::Desc),
            )?
            .into_iter()
            .map(|(_, a)| (0.0, a))
            .collect(),
            (SortOrder::Id, _) => by_id(&searcher, &matched, wanted)?
                .into_iter()
                .skip(request.offset)
                .map(|a| (0.0, a))
                .collect(),
        };
        // When even the best matches hold only a small part of what the query asks (its
        // words weighted by how rare they are; a word no asset has weighs most), the
        // answer says so instead of listing passing mentions.
        let mut no_good_match = false;
        if sort == SortOrder::Relevance
            && request.offset == 0
            && is_plain(text_of(request))
            && !addresses.is_empty()
        {
            // The best of the first hits: the top score may go to many mentions of one
            // word while the next hit holds the whole query.
            let mut coverage: f64 = 0.0;
            for (_, address) in addresses.iter().take(COVERAGE_HITS) {
                let asset = self.load_asset(&searcher, *address)?;
                coverage = coverage.max(self.coverage(
                    &searcher,
                    text_of(request),
                    &request.synonyms,
                    &asset,
                )?);
            }
            // Meaning can vouch for hits whose words say little ("pair programming" for
            // a page on sharing a workspace).
            let meant = hybrid.is_some_and(|h| best_cosine >= h.good_from);
            if coverage < COVERAGE_FLOOR && !meant {
                no_good_match = true;
                addresses.clear();
            }
        }
        let has_more = addresses.len() > request.limit;
        addresses.truncate(request.limit);

        let mut snippets = Snippets::default();
        let mut hits = Vec::with_capacity(addresses.len());
        for (score, address) in addresses {
            let asset = self.load_asset(&searcher, address)?;
            let highlights = match (&query, request.highlights) {
                (Some(q), true) => snippets.highlight(&searcher, fields, q.as_ref(), &asset)?,
                _ => Vec::new(),
            };
            hits.push(SearchHit {
                asset,
                score,
                highlights,
            });
        }
        Ok(SearchPage {
            total,
            has_more,
            hits,
            facets,
            no_good_match,
        })
    }

    /// The text matches (BM25, best first) and the assets nearest in meaning that the
    /// filter lets through, each scored `(1 - ratio) * bm25 / best bm25 + ratio *
    /// meaning_value(cosine)`, best first.
    fn fuse(
        &self,
        searcher: &Searcher,
        filter: &AssetFilter,
        lexical: Vec<(f32, DocAddress)>,
        hybrid: &Hybrid<'_>,
    ) -> AppResult<Fused> {
        let top_bm25 = lexical.first().map_or(0.0, |(s, _)| *s);
        let ratio = hybrid.ratio.clamp(0.0, 1.0);
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        // (fused, bm25, address)
        let mut scored: Vec<(f64, f32, DocAddress)> = Vec::with_capacity(lexical.len());
        let mut best_cosine: f32 = 0.0;
        for (bm25, address) in lexical {
            let asset = self.load_asset(searcher, address)?;
            let words = if top_bm25 > 0.0 {
                f64::from(bm25 / top_bm25)
            } else {
                0.0
            };
            // An asset without vectors yet (being embedded, or a draft) is ranked by its
            // words alone, as `explain` does.
            let fused = match (hybrid.cosine)(asset.id.as_str()) {
                Some(cosine) => {
                    best_cosine = best_cosine.max(cosine);
                    (1.0 - ratio) * words + ratio * crate::ranking::meaning_value(cosine)
                }
                None => words,
            };
            scored.push((fused, bm25, address));
            seen.insert(asset.id.to_string());
        }
        let unseen: Vec<&(String, f32)> = hybrid
            .near
            .iter()
            // Assets meaning alone would score nothing are not looked up.
            .filter(|(id, c)| !seen.contains(id) && crate::ranking::meaning_value(*c) > 0.0)
            .collect();
        if !unseen.is_empty() {
            let ids: Vec<String> = unseen.iter().map(|(id, _)| id.clone()).collect();
            let cosines: HashMap<&str, f32> =
                unseen.iter().map(|(id, c)| (id.as_str(), *c)).collect();
            for address in self.admitted_addresses(searcher, &ids, filter)? {
                let asset = self.load_asset(searcher, address)?;
                let cosine = cosines.get(asset.id.as_str()).copied().unwrap_or(0.0);
                best_cosine = best_cosine.max(cosine);
                scored.push((ratio * crate::ranking::meaning_value(cosine), 0.0, address));
            }
        }
        scored.retain(|(s, bm25, _)| *s > 0.0 || *bm25 > 0.0);
        scored.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| b.1.total_cmp(&a.1))
                .then_with(|| a.2.cmp(&b.2))
        });
        Ok(Fused {
            hits: scored
                .into_iter()
                .map(|(s, _, address)| (s as f32, address))
                .collect(),
            best_cosine,
        })
    }

    /// Value counts over the assets a filter matches.
    pub fn facet_counts(
        &self,
        filter: &AssetFilter,
        fields: Vec<FacetField>,
    ) -> AppResult<Vec<FacetCount>> {
        let searcher = self.inner.reader.searcher();
        let plan = FilterPlan::new(&self.inner.fields, filter, true);
        let matched = searcher
            .segment_readers()
            .iter()
            .map(|reader| self.filter_bits(reader, &plan))
            .collect::<AppResult<Vec<_>>>()?;
        Ok(drive(&searcher, &matched, &FacetCollector::new(fields))?)
    }

    /// How many documents the index holds, whatever their status.
    pub fn num_docs(&self) -> u64 {
        self.inner.reader.searcher().num_docs()
    }

    /// How much of a query an asset holds: the query's distinct words, each weighted by its
    /// inverse document frequency (a word no asset has weighs most), and the share of that
    /// weight whose words the asset's title (with its address words), summary or opening
    /// ([`COVERAGE_BODY_CHARS`]) holds. A synonym of the query found in the asset counts as
    /// the query's rarest word found.
    fn coverage(
        &self,
        searcher: &Searcher,
        text: &str,
        synonyms: &[String],
        asset: &Asset,
    ) -> AppResult<f64> {
        let analyzer = Analyzer::for_language(asset.language.primary());
        let fields = self.inner.fields.text_for(analyzer);
        let terms = |t: &str| -> std::collections::HashSet<String> {
            self.cut(t, analyzer).into_iter().map(|w| w.term).collect()
        };
        let held: std::collections::HashSet<String> = [
            &asset.title[..],
            &asset.slug_words().join(" "),
            &asset.summary,
            crate::domain::opening(&asset.body, COVERAGE_BODY_CHARS),
        ]
        .into_iter()
        .flat_map(terms)
        .collect();
        let words: std::collections::HashSet<String> =
            without_function_words(self.cut(text, analyzer)).collect();
        if words.is_empty() {
            return Ok(1.0);
        }
        let total = searcher.num_docs().max(1) as f64;
        let mut weights: Vec<(f64, bool)> = Vec::with_capacity(words.len());
        for word in &words {
            let df = searcher
                .doc_freq(&Term::from_field_text(fields.body, word))?
                .max(searcher.doc_freq(&Term::from_field_text(fields.title, word))?);
            weights.push((
                (total / (df as f64 + 0.5)).ln().max(0.05),
                held.contains(word),
            ));
        }
        let synonym_found = synonyms.iter().any(|s| {
            let words = terms(s);
            !words.is_empty() && words.iter().all(|t| held.contains(t))
        });
        if synonym_found
            && let Some(rarest_missing) = weights
                .iter_mut()
                .filter(|(_, found)| !found)
                .max_by(|a, b| a.0.total_cmp(&b.0))
        {
            rarest_missing.1 = true;
        }
        let all: f64 = weights.iter().map(|(w, _)| w).sum();
        let found: f64 = weights.iter().filter(|(_, f)| *f).map(|(w, _)| w).sum();
        Ok(if all > 0.0 { found / all } else { 1.0 })
    }

    /// What a visitor typed, as a query. Plain words (the usual case) become a bag of
    /// (field, word) terms with the fields' boosts, which block-max pruning can skip
    /// through and a filter can drive; text with query syntax (quotes, `+`, `-`, `field:`,
    /// ...) goes through tantivy's parser, leniently: whatever is typed is a search, never a
    /// syntax error.
    fn text_query(&self, text: &str, synonyms: &[String]) -> TextQuery {
        // Syntax nested deeper than a caller may send (a title in a `nextContent` subject)
        // is read as words: the parser recurses once per level.
        if is_plain(text) && crate::domain::is_identifier(text) {
            // One identifier (`v2.4.1`, `createShareLink`): its parts together, and nothing
            // else (no synonyms: it names one thing).
            let (phrases, one_word) = self.phrase_terms(&[text.trim().to_owned()]);
            return TextQuery::Words {
                words: self.text_terms(&one_word.join(" ")),
                phrases,
            };
        }
        if is_plain(text) || query_nesting(text) > MAX_QUERY_NESTING {
            // A hyphenated word of the query counts its words and, again, their being
            // together; a synonym of several words (`case study`, `self-hosted`) counts
            // only together, or "case" would find SQL's CASE.
            let (single, several): (Vec<String>, Vec<String>) =
                synonyms.iter().cloned().partition(|t| is_one_word(t));
            let mut phrases: Vec<String> = text
                .split_whitespace()
                .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
                .filter(|w| w.contains('-'))
                .map(str::to_owned)
                .collect();
            phrases.extend(several);
            let (phrases, one_word) = self.phrase_terms(&phrases);
            let mut text = with_synonyms(text, &single);
            for word in one_word {
                text.push(' ');
                text.push_str(&word);
            }
            return TextQuery::Words {
                words: self.text_terms(&text),
                phrases,
            };
        }
        let fields = &self.inner.fields;
        let boosted: Vec<(Field, f32)> = Analyzer::ALL
            .iter()
            .flat_map(|a| fields.text_for(*a).boosted())
            .collect();
        let fields_searched = boosted.iter().map(|(f, _)| *f).collect();
        // Words that jieba cuts as the plain analyzer does are cut by it for the Chinese
        // fields too, as `text_terms` does: no dictionary load for English syntax.
        let mut parser = if cut_alike_by_jieba_and_plain(text) {
            QueryParser::new(
                self.inner.index.schema(),
                fields_searched,
                self.inner.ascii_tokenizers.clone(),
            )
        } else {
            QueryParser::for_index(&self.inner.index, fields_searched)
        };
        for (field, boost) in boosted {
            parser.set_field_boost(field, boost);
        }
        TextQuery::Parsed(parser.parse_query_lenient(text).0)
    }

    /// The text as one boosted term per field and word, for every analyzer, with the
    /// fields' boosts: a bag of words.
    /// Each analyzer cuts the text once; its first [`MAX_QUERY_TERMS`] distinct words count,
    /// function words left out (`domain::is_stop_word`) unless nothing else is left.
    pub(super) fn text_terms(&self, text: &str) -> Vec<(Term, f32)> {
        let fields = &self.inner.fields;
        let mut out: Vec<(Term, f32)> = Vec::new();
        for analyzer in Analyzer::ALL {
            let mut words: Vec<String> = Vec::new();
            for word in without_function_words(self.cut(text, analyzer)) {
                if !words.contains(&word) {
                    words.push(word);
                    if words.len() == MAX_QUERY_TERMS {
                        break;
                    }
                }
            }
            let preference = language_preference(text, analyzer);
            for (field, boost) in fields.text_for(analyzer).boosted() {
                for word in &words {
                    out.push((Term::from_field_text(field, word), boost * preference));
                }
            }
        }
        out
    }

    /// A text's words with their positions, as an analyzer's fields hold them. Words that
    /// jieba cuts as the plain analyzer does are cut by it for the Chinese fields too: no
    /// dictionary load for English.
    fn cut(&self, text: &str, analyzer: Analyzer) -> Vec<CutWord> {
        let cut_as = match analyzer {
            Analyzer::Chinese if cut_alike_by_jieba_and_plain(text) => Analyzer::Plain,
            other => other,
        };
        let fields = &self.inner.fields;
        let Ok(mut tokenizer) = self
            .inner
            .index
            .tokenizer_for_field(fields.text_for(cut_as).title)
        else {
            return Vec::new();
        };
        let mut cut = Vec::new();
        let mut stream = tokenizer.token_stream(text);
        while let Some(token) = stream.next() {
            let surface = text
                .get(token.offset_from..token.offset_to)
                .unwrap_or_default();
            cut.push(CutWord {
                at: token.position,
                term: token.text.clone(),
                stop: is_stop_word(surface),
            });
        }
        cut
    }
}

/// A word as an analyzer cut it: its position, its term, and whether it is a function word.
struct CutWord {
    at: usize,
    term: String,
    stop: bool,
}

/// The terms of a cut text without its function words, unless it has nothing else: what a
/// query or a subject asks for, in search, recommendations and the coverage alike.
fn without_function_words(cut: Vec<CutWord>) -> impl Iterator<Item = String> {
    let telling = cut.iter().any(|w| !w.stop);
    cut.into_iter()
        .filter(move |w| !(telling && w.stop))
        .map(|w| w.term)
}

/// Words that must stand together, as each field's analyzer cuts them: (position, term)
/// pairs with the field's boost.
pub(super) type Phrase = (Vec<(usize, Term)>, f32);

/// Most phrases one search looks for (the query's hyphenated words first, then its
/// synonyms of several words). A query with a phrase is not block-max pruned: sixteen
/// hyphenated pairs of the library's commonest words cost 145 ms at 100k assets with every
/// pair a phrase, 96 ms with two (the same as the parser's reading of them before, which
/// made every pair a phrase), against 60 ms for the same words plain.
const MAX_PHRASES: usize = 2;

impl SearchIndex {
    /// Each text as a phrase for every analyzer's fields (with the fields' boosts and the
    /// searcher's language preferred, as `text_terms`); the texts an analyzer cuts into
    /// a single word come back apart, to be searched as words.
    fn phrase_terms(&self, texts: &[String]) -> (Vec<Phrase>, Vec<String>) {
        let fields = &self.inner.fields;
        let mut phrases = Vec::new();
        let mut one_word = Vec::new();
        let mut distinct: Vec<&String> = Vec::new();
        for text in texts {
            if distinct.len() < MAX_PHRASES && !distinct.contains(&text) {
                distinct.push(text);
            }
        }
        for text in distinct {
            for analyzer in Analyzer::ALL {
                let cut = self.cut(text, analyzer);
                if cut.len() < 2 {
                    if analyzer == Analyzer::English && !one_word.contains(text) {
                        one_word.push(text.clone());
                    }
                    continue;
                }
                let preference = language_preference(text, analyzer);
                for (field, boost) in fields.text_for(analyzer).boosted() {
                    let terms = cut
                        .iter()
                        .map(|w| (w.at, Term::from_field_text(field, &w.term)))
                        .collect();
                    phrases.push((terms, boost * preference));
                }
            }
        }
        (phrases, one_word)
    }
}

/// A query's words and the terms its synonym groups add, as one text.
fn with_synonyms(text: &str, synonyms: &[String]) -> String {
    if synonyms.is_empty() {
        return text.to_owned();
    }
    format!("{text} {}", synonyms.join(" "))
}

/// How much an analyzer's fields count for a text: the searcher's own language first. A
/// text without Chinese characters finds Chinese assets (which often quote English product
/// names) at half weight; a Chinese text finds English ones at half weight.
fn language_preference(text: &str, analyzer: Analyzer) -> f32 {
    let chinese = text.chars().any(is_han);
    match (analyzer, chinese) {
        (Analyzer::Chinese, false) | (Analyzer::English, true) => 0.5,
        _ => 1.0,
    }
}

fn is_han(c: char) -> bool {
    matches!(c, '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}' | '\u{f900}'..='\u{faff}')
}

/// Words and the punctuation of prose only: nothing tantivy's query syntax gives a meaning.
/// A hyphen inside a word (`out-of-order`, `on-premise`) is prose; one that starts a word
/// (`-docker`) excludes it.
fn is_plain(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    chars.iter().enumerate().all(|(i, &c)| {
        c.is_alphanumeric()
            || c.is_whitespace()
            || matches!(c, '.' | ',' | ';' | '?' | '\'')
            || (c == '-'
                && i > 0
                && chars[i - 1].is_alphanumeric()
                && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric()))
    }) && !text
        .split_whitespace()
        .any(|w| matches!(w, "AND" | "OR" | "NOT" | "IN"))
}

/// The share of a query the best hit must hold (see `SearchIndex::coverage`); below it the
/// query's words are only mentioned in passing.
pub const COVERAGE_FLOOR: f64 = 0.35;
/// How many of the first hits are read for the coverage.
const COVERAGE_HITS: usize = 5;
/// How much of each hit's body the coverage reads: its opening says what it is about, and
/// a bound keeps a search of 2 MB pages as cheap as one of short ones.
pub const COVERAGE_BODY_CHARS: usize = 6_000;

/// The request's text, or nothing.
/// A hybrid search's order, and the best cosine among the assets near the query.
struct Fused {
    hits: Vec<(f32, DocAddress)>,
    best_cosine: f32,
}

fn text_of(request: &SearchRequest) -> &str {
    request.text.as_deref().unwrap_or_default()
}

/// When the filter's documents number less than the words' postings divided by this, the
/// filter drives the scoring instead of the words.
const FILTER_DRIVEN_RATIO: u64 = 4;

enum TextQuery {
    /// Any of these (term, boost) pairs and phrases; the score is the sum of the matching
    /// ones' BM25.
    Words {
        words: Vec<(Term, f32)>,
        phrases: Vec<Phrase>,
    },
    Parsed(Box<dyn Query>),
}

impl TextQuery {
    fn query(&self) -> Box<dyn Query> {
        match self {
            TextQuery::Words { words, phrases } => Box::new(BooleanQuery::new(
                words
                    .iter()
                    .map(|(term, boost)| (Occur::Should, word_query(term, *boost)))
                    .chain(phrases.iter().map(|p| (Occur::Should, phrase_query(p))))
                    .collect(),
            )),
            TextQuery::Parsed(query) => query.box_clone(),
        }
    }
}

fn phrase_query((terms, boost): &Phrase) -> Box<dyn Query> {
    Box::new(BoostQuery::new(
        Box::new(PhraseQuery::new_with_offset(terms.clone())),
        *boost,
    ))
}

fn word_query(term: &Term, boost: f32) -> Box<dyn Query> {
    Box::new(BoostQuery::new(
        Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs)),
        boost,
    ))
}

/// How many postings the words have in a segment, all fields together.
fn postings(reader: &tantivy::SegmentReader, words: &[(Term, f32)]) -> tantivy::Result<u64> {
    let mut total = 0;
    for (term, _) in words {
        total += u64::from(reader.inverted_index(term.field())?.doc_freq(term)?);
    }
    Ok(total)
}

/// Scores the documents in `allowed` that contain any of the words, summing each word's
/// score, and hands each one with its score to `found`; returns the documents found. Each
/// word's postings are sought to the next allowed document and the allowed documents
/// skipped to the next posting, so the cost is that of the shorter side.
fn score_allowed(
    reader: &tantivy::SegmentReader,
    words: &[Box<dyn tantivy::query::Weight>],
    allowed: &Bits,
    found: &mut dyn FnMut(DocId, f32),
) -> tantivy::Result<Bits> {
    use tantivy::{DocSet, TERMINATED};
    let candidates: Vec<DocId> = allowed.iter().collect();
    let mut scores = vec![0.0f32; candidates.len()];
    let mut hits = allowed.none_like();
    for weight in words {
        let mut scorer = weight.scorer(reader, 1.0)?;
        let mut doc = scorer.doc();
        let mut i = 0;
        while i < candidates.len() && doc != TERMINATED {
            let candidate = candidates[i];
            if doc < candidate {
                doc = scorer.seek(candidate);
            } else if doc > candidate {
                i += candidates[i..].partition_point(|c| *c < doc);
            } else {
                scores[i] += scorer.score();
                hits.insert(doc);
                i += 1;
                doc = scorer.advance();
            }
        }
    }
    for (doc, score) in candidates.iter().zip(scores) {
        if hits.contains(*doc) {
            found(*doc, score);
        }
    }
    Ok(hits)
}

/// The first `wanted` documents of `matched` in id order. Each segment keeps its `wanted`
/// smallest id ordinals (integers, in the ids' order), then reads their ids from the
/// dictionary in one sorted pass; the segments' ids are merged. tantivy's own string
/// ordering reads each id alone, decompressing a dictionary block each time: about 0.1 ms
/// a row, so a page 10,000 rows deep took a second.
fn by_id(searcher: &Searcher, matched: &[Bits], wanted: usize) -> tantivy::Result<Vec<DocAddress>> {
    let mut all: Vec<(String, DocAddress)> = Vec::new();
    for (ord, (reader, bits)) in searcher.segment_readers().iter().zip(matched).enumerate() {
        let Some(column) = reader.fast_fields().str("id")? else {
            continue;
        };
        let mut best =
            std::collections::BinaryHeap::with_capacity(wanted.min(bits.len() as usize) + 1);
        for doc in bits.iter() {
            if let Some(term) = column.term_ords(doc).next() {
                super::push_bounded(&mut best, (term, doc), wanted);
            }
        }
        let best = best.into_sorted_vec();
        let ords: Vec<u64> = best.iter().map(|(term, _)| *term).collect();
        let mut ids = Vec::with_capacity(ords.len());
        column.dictionary().sorted_ords_to_term_cb(&ords, |bytes| {
            ids.push(String::from_utf8_lossy(bytes).into_owned())
        })?;
        all.extend(
            ids.into_iter()
                .zip(best)
                .map(|(id, (_, doc))| (id, DocAddress::new(ord as u32, doc))),
        );
    }
    all.sort_unstable();
    all.truncate(wanted);
    Ok(all.into_iter().map(|(_, address)| address).collect())
}

/// Feeds the documents in `matched` (one entry per segment, in segment order) to a
/// collector, as if a query had matched exactly them.
fn drive<C: Collector>(
    searcher: &Searcher,
    matched: &[Bits],
    collector: &C,
) -> tantivy::Result<C::Fruit> {
    let mut fruits = Vec::with_capacity(matched.len());
    for (ord, (reader, bits)) in searcher.segment_readers().iter().zip(matched).enumerate() {
        let mut segment = collector.for_segment(ord as u32, reader)?;
        for doc in bits.iter() {
            segment.collect(doc, 0.0);
        }
        fruits.push(segment.harvest());
    }
    collector.merge_fruits(fruits)
}

/// The best `limit` (score, address) pairs offered, ties to the earlier address as
/// tantivy's `TopDocs` breaks them.
struct TopScores {
    limit: usize,
    /// The worst kept entry on top.
    heap: std::collections::BinaryHeap<Ranked>,
}

#[derive(Clone, Copy)]
struct Ranked(f32, DocAddress);

impl Ranked {
    /// Greater is worse: a lower score, or an equal score at a later address.
    fn worse(&self, other: &Self) -> std::cmp::Ordering {
        other
            .0
            .total_cmp(&self.0)
            .then_with(|| self.1.cmp(&other.1))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.worse(other).is_eq()
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.worse(other)
    }
}

impl TopScores {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            heap: std::collections::BinaryHeap::with_capacity(limit + 1),
        }
    }

    /// Only scores above this can still enter.
    fn threshold(&self) -> f32 {
        match self.heap.peek() {
            Some(worst) if self.heap.len() >= self.limit => worst.0,
            _ => f32::NEG_INFINITY,
        }
    }

    fn offer(&mut self, score: f32, address: DocAddress) {
        super::push_bounded(&mut self.heap, Ranked(score, address), self.limit);
    }

    /// Best first.
    fn into_sorted(self) -> Vec<(f32, DocAddress)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|Ranked(s, a)| (s, a))
            .collect()
    }
}

/// Parsed assets by where they sit in the index. A segment's documents never change, so an
/// entry never goes stale; those of merged-away segments age out. Reading a hit otherwise
/// costs a block decompression, a JSON parse and a validation: an eighth of a text
/// recommendation when measured.
pub(super) struct AssetCache(Cache<(SegmentId, DocId), Arc<Asset>, AssetBytes>);

#[derive(Clone)]
pub(super) struct AssetBytes;

impl Weighter<(SegmentId, DocId), Arc<Asset>> for AssetBytes {
    fn weight(&self, _: &(SegmentId, DocId), asset: &Arc<Asset>) -> u64 {
        (asset.title.len() + asset.summary.len() + asset.body.len() + 512) as u64
    }
}

impl AssetCache {
    pub(super) fn new(bytes: u64) -> Self {
        // quick_cache wants an estimate of the number of entries: assets of about 2 KiB.
        let items = (bytes / 2048).max(16) as usize;
        Self(Cache::with_weighter(items, bytes.max(1), AssetBytes))
    }
}

impl SearchIndex {
    /// The asset at a hit's address, from the cache of parsed assets when it is there.
    pub(super) fn load_asset(
        &self,
        searcher: &Searcher,
        address: DocAddress,
    ) -> AppResult<Arc<Asset>> {
        let key = (
            searcher.segment_reader(address.segment_ord).segment_id(),
            address.doc_id,
        );
        if let Some(asset) = self.inner.assets.0.get(&key) {
            return Ok(asset);
        }
        let asset = Arc::new(read_asset(searcher, &self.inner.fields, address)?);
        self.inner.assets.0.insert(key, asset.clone());
        Ok(asset)
    }
}

impl SearchIndex {
    /// Every document of the index as (id, fingerprint of the asset it holds), in no
    /// particular order: what `verify-index` compares with the database. Blocking.
    pub fn fingerprints(&self) -> AppResult<Vec<(String, String)>> {
        let searcher = self.inner.reader.searcher();
        let mut out = Vec::with_capacity(searcher.num_docs() as usize);
        for (segment_ord, segment) in searcher.segment_readers().iter().enumerate() {
            for doc_id in segment.doc_ids_alive() {
                let address = DocAddress::new(segment_ord as u32, doc_id);
                let asset = read_asset(&searcher, &self.inner.fields, address)?;
                out.push((asset.id.to_string(), asset.fingerprint()));
            }
        }
        Ok(out)
    }
}

fn read_asset(searcher: &Searcher, fields: &Fields, address: DocAddress) -> AppResult<Asset> {
    let doc: TantivyDocument = searcher.doc(address)?;
    let source = doc
        .get_first(fields.source)
        .and_then(|v| v.as_str())
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("index document without source")))?;
    let draft: AssetDraft = serde_json::from_str(source)
        .map_err(|e| AppError::internal(anyhow::Error::new(e).context("index document source")))?;
    draft.validate().map_err(|errors| {
        AppError::internal(anyhow::anyhow!(
            "index document {:?} no longer validates: {}",
            draft.id,
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })
}

/// Snippet generators built on first use, one per text field, for one request.
#[derive(Default)]
struct Snippets {
    generators: HashMap<Field, SnippetGenerator>,
}

impl Snippets {
    fn highlight(
        &mut self,
        searcher: &Searcher,
        fields: &Fields,
        query: &dyn Query,
        asset: &Asset,
    ) -> AppResult<Vec<Highlight>> {
        let text = fields.text_for(Analyzer::for_language(asset.language.primary()));
        let mut out = Vec::new();
        for (name, field, value) in [
            ("title", text.title, &asset.title),
            ("summary", text.summary, &asset.summary),
            ("body", text.body, &asset.body),
        ] {
            let generator = match self.generators.entry(field) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let mut g = SnippetGenerator::create(searcher, query, field)?;
                    g.set_max_num_chars(if name == "title" { 500 } else { SNIPPET_CHARS });
                    e.insert(g)
                }
            };
            // A page's opening holds its best fragments; a bound keeps a page of 2 MB as
            // cheap to highlight as a short one (six aliased searches of such pages took
            // 1.2 to 1.9 s from a publishable key).
            let snippet = generator.snippet(crate::domain::opening(value, HIGHLIGHT_CHARS));
            if !snippet.highlighted().is_empty() {
                out.push(Highlight {
                    field: name,
                    fragment: snippet.fragment().to_owned(),
                    html: snippet.to_html(),
                });
            }
        }
        Ok(out)
    }
}
