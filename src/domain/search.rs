//! What a search asks and answers, free of how the index answers it.

use super::{Asset, AssetFilter};

/// Longest text a search or ranking takes, in characters.
pub const MAX_QUERY_CHARS: usize = 512;
/// Most whitespace-separated words in such a text.
pub const MAX_QUERY_WORDS: usize = 32;
/// Deepest parenthesis nesting of a text written in query syntax (`(a OR (b AND c))`).
pub const MAX_QUERY_NESTING: usize = 8;
/// Most distinct terms one analyzer makes of a text: text without spaces (Chinese) is cut
/// into words by the analyzer, past the word count above; the first terms count.
pub const MAX_QUERY_TERMS: usize = 64;

/// A search or ranking text a caller typed, checked before any work: its length, its
/// words, and how deep its query syntax nests (tantivy's query parser recurses once per
/// parenthesis, and a thousand of them overflowed a thread's stack).
pub fn check_query_text(what: &str, text: &str) -> Result<(), String> {
    let chars = text.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(format!(
            "{what}: {chars} characters, over the {MAX_QUERY_CHARS} a text may have"
        ));
    }
    let words = text.split_whitespace().count();
    if words > MAX_QUERY_WORDS {
        return Err(format!(
            "{what}: {words} words, over the {MAX_QUERY_WORDS} a text may have"
        ));
    }
    if query_nesting(text) > MAX_QUERY_NESTING {
        return Err(format!(
            "{what}: parentheses nest more than {MAX_QUERY_NESTING} deep"
        ));
    }
    Ok(())
}

/// Whether a query is one exact identifier rather than words: a single token of 3 to 100
/// characters, with letters, that joins its parts (`SAML_ASSERTION_EXPIRED`, `v2.4.1`,
/// `auth/callback`), mixes letters and two digits or more (`ISO27001`) or is written in
/// camel case (`createShareLink`). Such a query is looked up by its words alone: meaning
/// would only add pages about something near it.
pub fn is_identifier(text: &str) -> bool {
    let text = text.trim();
    let chars: Vec<char> = text.chars().collect();
    if !(3..=100).contains(&chars.len())
        || chars.iter().any(|c| c.is_whitespace())
        || !chars.iter().any(|c| c.is_ascii_alphabetic())
    {
        return false;
    }
    let joined = chars.windows(3).any(|w| {
        w[0].is_alphanumeric() && matches!(w[1], '_' | '.' | '/' | ':') && w[2].is_alphanumeric()
    });
    // Two digits at least: `k8s`, `b2b` or `mp4` are words people give synonyms to.
    let mixed = chars.iter().filter(|c| c.is_ascii_digit()).count() >= 2
        && chars.iter().filter(|c| c.is_ascii_alphabetic()).count() >= 2;
    let camel = chars
        .windows(2)
        .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase());
    joined || mixed || camel
}

/// An identifier's parts as words (`SAML_ASSERTION_EXPIRED` -> `SAML ASSERTION EXPIRED`,
/// `createShareLink` -> `create Share Link`): what is searched when the identifier
/// itself is found nowhere.
pub fn identifier_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut previous: Option<char> = None;
    for c in text.trim().chars() {
        if !c.is_alphanumeric() {
            out.push(' ');
        } else {
            if c.is_ascii_uppercase() && previous.is_some_and(|p| p.is_ascii_lowercase()) {
                out.push(' ');
            }
            out.push(c);
        }
        previous = Some(c);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// How deep a text's parentheses and `NOT`s nest, the way a query parser would descend.
pub fn query_nesting(text: &str) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    for c in text.chars() {
        match c {
            '(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let nots = text
        .split_whitespace()
        .filter(|w| w.trim_matches(['(', ')']) == "NOT")
        .count();
    deepest + nots
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortOrder {
    /// By text relevance; newest first when there is no text.
    Relevance,
    Newest,
    Id,
}

/// A tag field that can be counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FacetField {
    Stage,
    Role,
    Industry,
    /// Industries with their ancestors: a parent counts its whole subtree.
    IndustryTree,
    ContentType,
    Language,
    Topic,
    Status,
}

#[derive(Clone, Debug)]
pub struct SearchRequest {
    pub text: Option<String>,
    pub filter: AssetFilter,
    pub limit: usize,
    pub offset: usize,
    pub sort: SortOrder,
    pub facets: Vec<FacetField>,
    pub highlights: bool,
    /// Whether the answer must say how many assets match. Without text the count is free;
    /// with text it means scoring every match instead of only those that can reach the page.
    pub count: bool,
    /// Terms the text gains from the library's synonym groups, searched like its words.
    pub synonyms: Vec<String>,
    /// Meaning's share of the relevance order (0 to 1) when an embedding model is loaded;
    /// `None`: the server's default.
    pub semantic_ratio: Option<f64>,
}

/// Counts of one field's values, most frequent first.
#[derive(Clone, Debug, PartialEq)]
pub struct FacetCount {
    pub field: FacetField,
    pub values: Vec<(String, u64)>,
}

#[derive(Clone, Debug)]
pub struct Highlight {
    /// `title`, `summary` or `body`.
    pub field: &'static str,
    pub fragment: String,
    /// The fragment with matches in `<b>`, HTML-escaped.
    pub html: String,
}

#[derive(Clone, Debug)]
pub struct SearchHit {
    /// Shared with the index's cache of parsed assets.
    pub asset: std::sync::Arc<Asset>,
    pub score: f32,
    pub highlights: Vec<Highlight>,
}

#[derive(Clone, Debug)]
pub struct SearchPage {
    /// How many assets match: always without text, with text when the request asked.
    pub total: Option<u64>,
    /// Whether assets follow this page.
    pub has_more: bool,
    pub hits: Vec<SearchHit>,
    pub facets: Vec<FacetCount>,
    /// Set when the text matched only in passing: none of the first hits holds enough of
    /// the query (`query::COVERAGE_FLOOR`), and `hits` is empty.
    pub no_good_match: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_single_tokens_that_join_parts_mix_digits_or_are_camel_case() {
        for id in [
            "SAML_ASSERTION_EXPIRED",
            "v2.4.1",
            "auth/callback",
            "ISO27001",
            "createShareLink",
            "pg_stat_activity",
            " ERR_CERT_DATE_INVALID ",
        ] {
            assert!(is_identifier(id), "{id}");
        }
        for words in [
            "reduce churn",
            "GDPR",
            "prebuilds",
            "SOC 2",
            "42",
            "a_",
            "end.",
            "Kubernetes",
            "单点登录",
            "x1",
            "k8s",
            "b2b",
        ] {
            assert!(!is_identifier(words), "{words}");
        }
        assert_eq!(
            identifier_words("SAML_ASSERTION_EXPIRED"),
            "SAML ASSERTION EXPIRED"
        );
        assert_eq!(identifier_words("createShareLink"), "create Share Link");
        assert_eq!(identifier_words("v2.4.1"), "v2 4 1");
    }

    #[test]
    fn query_texts_are_bounded_in_length_words_and_nesting() {
        assert_eq!(
            check_query_text("query", "reduce churn (retention OR cohorts)"),
            Ok(())
        );
        assert!(check_query_text("query", &"a".repeat(MAX_QUERY_CHARS + 1)).is_err());
        assert_eq!(
            check_query_text("query", &"数".repeat(MAX_QUERY_CHARS)),
            Ok(())
        );
        let many: String = (0..=MAX_QUERY_WORDS).map(|i| format!("w{i} ")).collect();
        assert!(check_query_text("query", &many).is_err());
        let deep = format!("{}x{}", "(".repeat(9), ")".repeat(9));
        assert!(check_query_text("query", &deep).is_err());
        let shallow = format!("{}x{}", "(".repeat(8), ")".repeat(8));
        assert_eq!(check_query_text("query", &shallow), Ok(()));
        assert_eq!(query_nesting("NOT NOT (NOT x)"), 4);
    }
}

/// Words that say nothing of what a text is about (English and Chinese function words):
/// a query's or a subject's words leave them out when any other word remains, so "how
/// much does it cost" is searched as "cost", and a title's "in your" finds nothing.
pub fn is_stop_word(word: &str) -> bool {
    // An acronym in capitals ("IT budget", "US pricing") is a word of its own.
    if word.len() >= 2 && word.chars().all(|c| c.is_ascii_uppercase()) {
        return false;
    }
    if !word.is_ascii() {
        return CHINESE_STOP_WORDS.contains(&word);
    }
    // Lowercased on the stack: this runs for every word a search's coverage reads.
    let mut lower = [0u8; 8];
    let Some(buf) = lower.get_mut(..word.len()) else {
        return false;
    };
    buf.copy_from_slice(word.as_bytes());
    buf.make_ascii_lowercase();
    std::str::from_utf8(buf).is_ok_and(|w| ENGLISH_STOP_WORDS.binary_search(&w).is_ok())
}

/// Sorted, for a binary search. The pieces a contraction leaves ("it's" is cut as "it"
/// and "s") are here, as the analyzers cut them.
const ENGLISH_STOP_WORDS: [&str; 89] = [
    "a", "about", "all", "an", "and", "any", "are", "aren", "as", "at", "be", "been", "but", "by",
    "can", "could", "d", "did", "didn", "do", "does", "doesn", "don", "for", "from", "had", "has",
    "have", "he", "her", "here", "his", "how", "i", "if", "in", "into", "is", "isn", "it", "its",
    "ll", "m", "me", "much", "my", "of", "on", "or", "our", "re", "s", "she", "should", "so",
    "some", "t", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this",
    "those", "to", "too", "us", "ve", "very", "was", "wasn", "we", "were", "what", "when", "where",
    "which", "who", "why", "will", "with", "would", "you", "your", "yours",
];
const CHINESE_STOP_WORDS: [&str; 22] = [
    "的", "了", "是", "在", "和", "与", "及", "或", "也", "就", "都", "而", "被", "把", "对", "从",
    "如何", "怎么", "怎样", "什么", "我们", "你",
];

/// What `similarAssets` compared an asset with the others by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimilarityBasis {
    /// The embedding model's vectors: a cosine.
    Meaning,
    /// The asset's most telling words: no model, the library's vectors not yet there, or a
    /// filter naming statuses other than published (only published assets are embedded).
    Words,
}

/// The assets most like one asset, best first, each with its similarity.
#[derive(Clone, Debug)]
pub struct SimilarAssets {
    pub by: SimilarityBasis,
    pub items: Vec<(std::sync::Arc<Asset>, f64)>,
}

#[cfg(test)]
mod stop_word_tests {
    use super::*;

    #[test]
    fn function_words_are_known_in_both_languages() {
        assert!(ENGLISH_STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(ENGLISH_STOP_WORDS.iter().all(|w| w.len() <= 8));
        for word in ["The", "how", "does", "s", "doesn", "Your", "的", "如何"] {
            assert!(is_stop_word(word), "{word}");
        }
        for word in ["cost", "pricing", "why-not", "成本", "out", "IT", "US"] {
            assert!(!is_stop_word(word), "{word}");
        }
    }
}
