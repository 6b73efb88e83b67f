//! Assets like a given text (tag suggestions, `similarAssets` without a model): tantivy's
//! more-like-this over the text fields of the text's language; the pages an asset links
//! to; which of some assets a filter lets through.

use tantivy::TantivyDocument;
use tantivy::Term;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, MoreLikeThisQuery, Occur, Query, TermQuery};
use tantivy::schema::{IndexRecordOption, OwnedValue, Value};

use super::SearchIndex;
use super::filter::{any_term, filter_query};
use super::schema::Analyzer;
use crate::domain::{Asset, AssetFilter, AssetStatus, Language, TaxonomyValue};
use crate::error::AppResult;

/// Most distinct terms of the text a similarity query uses.
const MAX_QUERY_TERMS: usize = 40;

/// The text to compare, field by field.
pub struct SimilarTo<'a> {
    pub title: &'a str,
    pub summary: &'a str,
    pub body: &'a str,
    pub language: &'a Language,
    /// The subject's own concerns and topics, when it has some: tags say as much as words.
    pub concerns: &'a [crate::domain::Concern],
    pub topics: &'a [String],
}

/// Most documents read per link by `linked_ids`.
pub const LINKED_PER_KEY: usize = 2;

impl SearchIndex {
    /// The ids of the published assets whose address has one of `keys`
    /// ([`crate::domain::link_key`]), in the keys' order, each once: the pages a page links
    /// to that are in the library. Each key reads at most `LINKED_PER_KEY` documents: many
    /// assets may share an address (a site's home page), and one such link must neither
    /// crowd out the others nor make a visitor's request read them all.
    pub fn linked_ids(&self, keys: &[String]) -> AppResult<Vec<String>> {
        let fields = &self.inner.fields;
        let searcher = self.inner.reader.searcher();
        // A plain term query: the filter plan of `filter_query` measured 0.3-0.5 ms slower
        // a request with ten links.
        let published: Box<dyn Query> = Box::new(TermQuery::new(
            Term::from_field_text(fields.status, AssetStatus::Published.name()),
            IndexRecordOption::Basic,
        ));
        let mut ids: Vec<String> = Vec::new();
        for key in keys.iter().take(crate::domain::MAX_LINKS) {
            let at_key: Box<dyn Query> = Box::new(TermQuery::new(
                Term::from_field_text(fields.url_key, key),
                IndexRecordOption::Basic,
            ));
            let query = BooleanQuery::new(vec![
                (Occur::Must, at_key),
                (Occur::Must, published.box_clone()),
            ]);
            let found = searcher.search(
                &query,
                &TopDocs::with_limit(LINKED_PER_KEY).order_by_score(),
            )?;
            for (_, address) in found {
                let doc: TantivyDocument = searcher.doc(address)?;
                if let Some(id) = doc.get_first(fields.id).and_then(|v| v.as_str())
                    && !ids.iter().any(|i| i == id)
                {
                    ids.push(id.to_owned());
                }
            }
        }
        Ok(ids)
    }

    /// The `k` published assets the filter lets through most like `text`, best first with
    /// their similarity (BM25 of the text's most telling terms), leaving out `exclude`.
    pub fn similar(
        &self,
        text: &SimilarTo<'_>,
        filter: &AssetFilter,
        k: usize,
        exclude: &[String],
    ) -> AppResult<Vec<(Asset, f32)>> {
        let fields = &self.inner.fields;
        let searcher = self.inner.reader.searcher();
        let analyzer = Analyzer::for_language(text.language.primary());
        let tf = fields.text_for(analyzer);
        let values = |s: &str| vec![OwnedValue::Str(s.to_owned())];
        let mlt = MoreLikeThisQuery::builder()
            .with_min_doc_frequency(1)
            .with_min_term_frequency(1)
            .with_min_word_length(2)
            .with_max_query_terms(MAX_QUERY_TERMS)
            .with_document_fields(vec![
                (tf.title, values(text.title)),
                (tf.summary, values(text.summary)),
                (tf.body, values(text.body)),
            ]);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
            (Occur::Must, Box::new(mlt)),
            (Occur::Must, filter_query(fields, filter)),
        ];
        if !exclude.is_empty() {
            let ids: Vec<Term> = exclude
                .iter()
                .map(|id| Term::from_field_text(fields.id, id))
                .collect();
            clauses.push((Occur::MustNot, any_term(&ids)));
        }
        let hits = searcher.search(
            &BooleanQuery::new(clauses),
            &TopDocs::with_limit(k.max(1)).order_by_score(),
        )?;
        hits.into_iter()
            .map(|(score, address)| {
                let asset = self.load_asset(&searcher, address)?;
                Ok((Asset::clone(&asset), score))
            })
            .collect()
    }
}

/// Words of an asset's body a `nextContent` subject takes at most.
pub const TELLING_WORDS: usize = 12;
/// Its most frequent words, of which the telling ones are chosen.
const CANDIDATE_WORDS: usize = 60;

impl SearchIndex {
    /// The words that say most about what an asset is about: those of its title, summary
    /// and opening (6,000 characters) that are frequent in it and rare in the library
    /// (tf-idf), held by at least one other asset (a word only it has finds nothing
    /// similar), as written in the text. At most `n`, best first.
    pub fn telling_words(&self, asset: &Asset, n: usize) -> AppResult<Vec<String>> {
        let fields = &self.inner.fields;
        let searcher = self.inner.reader.searcher();
        let total = searcher.num_docs().max(1) as f64;
        let tf = fields.text_for(Analyzer::for_language(asset.language.primary()));
        let Ok(mut tokenizer) = self.inner.index.tokenizer_for_field(tf.body) else {
            return Ok(Vec::new());
        };
        // Per analysed token: how often, and the first surface form.
        let mut counts: std::collections::HashMap<String, (u32, String)> =
            std::collections::HashMap::new();
        for (part, weight) in [
            (&asset.title[..], 3),
            (&asset.summary[..], 2),
            (crate::domain::opening(&asset.body, 6_000), 1),
        ] {
            let mut stream = tokenizer.token_stream(part);
            while let Some(token) = stream.next() {
                if token.text.chars().count() < 3 || token.text.chars().all(char::is_numeric) {
                    continue;
                }
                let surface = part
                    .get(token.offset_from..token.offset_to)
                    .unwrap_or(&token.text)
                    .to_owned();
                let entry = counts
                    .entry(token.text.clone())
                    .or_insert_with(|| (0, surface));
                entry.0 += weight;
            }
        }
        // Only the most frequent words are looked up in the index (two dictionary reads
        // each, per segment): a page's subject is what it repeats, and its title counts
        // three times.
        let mut counts: Vec<(String, (u32, String))> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
        counts.truncate(CANDIDATE_WORDS);
        // Deleted documents count in `doc_freq` until their segment merges: right after an
        // asset is rewritten, a word only it has would pass as held by another (its old
        // copy). Then a rare word's live documents are counted (none are deleted otherwise).
        let deleted: u64 = searcher
            .segment_readers()
            .iter()
            .map(|segment| u64::from(segment.num_deleted_docs()))
            .sum();
        let third = total / 3.0;
        let undecided = |df: u64| {
            (df >= 2 && df < deleted + 2)
                || (df as f64 > third && (df.saturating_sub(deleted) as f64) <= third)
        };
        let live = |term: &Term| -> tantivy::Result<u64> {
            let query = TermQuery::new(term.clone(), IndexRecordOption::Basic);
            Ok(searcher.search(&query, &tantivy::collector::Count)? as u64)
        };
        let mut scored: Vec<(f64, String)> = Vec::with_capacity(counts.len());
        for (token, (count, surface)) in counts {
            let terms = [
                Term::from_field_text(tf.body, &token),
                Term::from_field_text(tf.title, &token),
            ];
            let mut df = searcher
                .doc_freq(&terms[0])?
                .max(searcher.doc_freq(&terms[1])?);
            // Only where deleted copies could decide either bound below (held by one
            // document only; held by more than a third of the library).
            if undecided(df) {
                df = live(&terms[0])?.max(live(&terms[1])?);
            }
            // Its own document is one; a word in most of the library says nothing.
            if df < 2 || df as f64 > third {
                continue;
            }
            let idf = (total / df as f64).ln();
            scored.push(((1.0 + f64::from(count).ln()) * idf, surface));
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        Ok(scored.into_iter().take(n).map(|(_, w)| w).collect())
    }
}

/// How often each of a text's words occurs in the assets of each stage: the statistics a
/// naive Bayes classifier of stages needs, counted from the index.
pub struct StageWordCounts {
    /// Published assets per stage (the filter's, without `exclude`).
    pub assets: Vec<u64>,
    /// Per word of the text, per stage: assets of that stage holding the word.
    pub words: Vec<Vec<u64>>,
    /// The same for each of the subject's concerns and topics.
    pub tags: Vec<Vec<u64>>,
}

/// Words of a text the stage counts use at most: the rarest in the library first, as they
/// say most.
const MAX_STAGE_WORDS: usize = 60;

impl SearchIndex {
    /// For the text's most telling words, how many published assets of each stage hold
    /// them (in title, summary or body), leaving out `exclude`.
    pub fn stage_word_counts(
        &self,
        text: &SimilarTo<'_>,
        exclude: &[String],
    ) -> AppResult<StageWordCounts> {
        use tantivy::collector::Count;
        use tantivy::query::TermQuery;
        use tantivy::schema::IndexRecordOption;

        use crate::domain::{Stage, TaxonomyValue};

        let fields = &self.inner.fields;
        let searcher = self.inner.reader.searcher();
        let analyzer = Analyzer::for_language(text.language.primary());
        let tf = fields.text_for(analyzer);
        let mut tokens: Vec<String> = Vec::new();
        if let Ok(mut tokenizer) = self.inner.index.tokenizer_for_field(tf.body) {
            for part in [text.title, text.summary, text.body] {
                let mut stream = tokenizer.token_stream(part);
                while let Some(token) = stream.next() {
                    if !tokens.contains(&token.text) {
                        tokens.push(token.text.clone());
                    }
                }
            }
        }
        // Words in at least two assets, rarest first.
        let mut scored = Vec::new();
        for token in tokens {
            let df = searcher.doc_freq(&Term::from_field_text(tf.body, &token))?
                + searcher.doc_freq(&Term::from_field_text(tf.title, &token))?;
            if df >= 2 {
                scored.push((df, token));
            }
        }
        scored.sort();
        scored.truncate(MAX_STAGE_WORDS);
        // Published, not excluded, of one stage: built once, cloned per count.
        let mut base: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Must, filter_query(fields, &AssetFilter::default()))];
        if !exclude.is_empty() {
            let ids: Vec<Term> = exclude
                .iter()
                .map(|id| Term::from_field_text(fields.id, id))
                .collect();
            base.push((Occur::MustNot, any_term(&ids)));
        }
        let of_stage: Vec<Vec<(Occur, Box<dyn Query>)>> = Stage::ALL
            .iter()
            .map(|stage| {
                let mut q: Vec<(Occur, Box<dyn Query>)> =
                    base.iter().map(|(o, q)| (*o, q.box_clone())).collect();
                q.push((
                    Occur::Must,
                    Box::new(TermQuery::new(
                        // Declared stages only: a default or a guess is not a label.
                        Term::from_field_text(fields.stage_rank, stage.name()),
                        IndexRecordOption::Basic,
                    )),
                ));
                q
            })
            .collect();
        let count = |stage: usize, extra: Option<Box<dyn Query>>| -> AppResult<u64> {
            let mut q: Vec<(Occur, Box<dyn Query>)> = of_stage[stage]
                .iter()
                .map(|(o, q)| (*o, q.box_clone()))
                .collect();
            if let Some(extra) = extra {
                q.push((Occur::Must, extra));
            }
            Ok(searcher.search(&BooleanQuery::new(q), &Count)? as u64)
        };
        let assets = (0..Stage::ALL.len())
            .map(|stage| count(stage, None))
            .collect::<AppResult<Vec<u64>>>()?;
        let mut features: Vec<Vec<Term>> = scored
            .iter()
            .map(|(_, token)| {
                [tf.title, tf.summary, tf.body]
                    .iter()
                    .map(|f| Term::from_field_text(*f, token))
                    .collect()
            })
            .collect();
        let word_count = features.len();
        features.extend(
            text.concerns
                .iter()
                .map(|c| vec![Term::from_field_text(fields.concern, c.name())]),
        );
        features.extend(
            text.topics
                .iter()
                .map(|t| vec![Term::from_field_text(fields.topic, t)]),
        );
        let mut words = Vec::with_capacity(features.len());
        for word in &features {
            words.push(
                (0..Stage::ALL.len())
                    .map(|stage| count(stage, Some(any_term(word))))
                    .collect::<AppResult<Vec<u64>>>()?,
            );
        }
        let tags = words.split_off(word_count);
        Ok(StageWordCounts {
            assets,
            words,
            tags,
        })
    }
}

impl SearchIndex {
    /// The assets among `ids` that `filter` lets through (its statuses included), in no
    /// particular order.
    pub fn admitted(
        &self,
        ids: &[String],
        filter: &AssetFilter,
    ) -> AppResult<Vec<std::sync::Arc<Asset>>> {
        let searcher = self.inner.reader.searcher();
        self.admitted_addresses(&searcher, ids, filter)?
            .into_iter()
            .map(|address| self.load_asset(&searcher, address))
            .collect()
    }

    /// Where the assets among `ids` that `filter` lets through are, in address order.
    pub(super) fn admitted_addresses(
        &self,
        searcher: &tantivy::Searcher,
        ids: &[String],
        filter: &AssetFilter,
    ) -> AppResult<Vec<tantivy::DocAddress>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let fields = &self.inner.fields;
        let terms: Vec<Term> = ids
            .iter()
            .map(|id| Term::from_field_text(fields.id, id))
            .collect();
        let query = BooleanQuery::new(vec![
            (Occur::Must, any_term(&terms)),
            (Occur::Must, filter_query(fields, filter)),
        ]);
        let mut found: Vec<_> = searcher
            .search(&query, &tantivy::collector::DocSetCollector)?
            .into_iter()
            .collect();
        found.sort();
        Ok(found)
    }

    /// The id of every asset `filter` lets through, read from the ids' column (no
    /// document is loaded).
    pub fn admitted_ids(&self, filter: &AssetFilter) -> AppResult<Vec<String>> {
        let searcher = self.inner.reader.searcher();
        let found = searcher.search(
            &filter_query(&self.inner.fields, filter),
            &tantivy::collector::DocSetCollector,
        )?;
        let mut per_segment: Vec<Vec<tantivy::DocId>> =
            vec![Vec::new(); searcher.segment_readers().len()];
        for address in found {
            per_segment[address.segment_ord as usize].push(address.doc_id);
        }
        let mut ids = Vec::new();
        for (reader, docs) in searcher.segment_readers().iter().zip(per_segment) {
            let Some(column) = reader.fast_fields().str("id")? else {
                continue;
            };
            let mut ords: Vec<u64> = docs
                .into_iter()
                .filter_map(|doc| column.term_ords(doc).next())
                .collect();
            ords.sort_unstable();
            // One sorted pass over the dictionary, not a block decompressed per id.
            column
                .dictionary()
                .sorted_ords_to_term_cb(&ords, |bytes| {
                    ids.push(String::from_utf8_lossy(bytes).into_owned());
                })
                .map_err(tantivy::TantivyError::from)?;
        }
        Ok(ids)
    }
}
