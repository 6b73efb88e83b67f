//! Words a library uses for the same thing: `churn` and `retention`, `telecom` and
//! `telecommunications`. A query naming one of a group also searches the others.

/// Most groups a library keeps, terms a group holds, and characters a term has.
pub const MAX_GROUPS: usize = 1_000;
pub const MAX_GROUP_TERMS: usize = 16;
pub const MAX_TERM_CHARS: usize = 64;
/// Most terms one query gains from its groups (each searched like a word of the query).
pub const MAX_EXPANSIONS: usize = 12;

/// The groups every new library starts with (editable like any other).
pub const DEFAULT_GROUPS: &[&[&str]] = &[
    &["churn", "retention", "attrition"],
    &["telecom", "telecommunications", "telco"],
    &["pricing", "price", "cost", "plans"],
    &[
        "case study",
        "customer story",
        "success story",
        "testimonial",
    ],
    &["rbac", "role-based access control", "permissions"],
    &["sso", "single sign-on", "saml"],
    &["self-host", "self-hosted", "on-premises", "on-prem"],
    &["roi", "return on investment", "payback"],
    &["fintech", "financial services", "banking", "payments"],
    &["流失", "留存"],
    &["电信", "运营商"],
    &["价格", "定价", "费用"],
    &["案例", "客户故事"],
];

/// A library's synonym groups, each term lowercase and trimmed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Synonyms {
    groups: Vec<Vec<String>>,
    /// The groups of each one-word ASCII term, so a query finds its groups by its words
    /// whatever the length of the list.
    by_word: std::collections::HashMap<String, Vec<usize>>,
    /// The other terms (several words, or Chinese): looked for in the query's text.
    phrases: Vec<(usize, String)>,
}

impl Synonyms {
    /// Checks and normalises groups: at least two distinct terms each, within the limits.
    /// Errors name the group (from 0) and the term.
    pub fn parse(groups: &[Vec<String>]) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        if groups.len() > MAX_GROUPS {
            problems.push(format!("at most {MAX_GROUPS} groups, got {}", groups.len()));
        }
        let mut out = Vec::new();
        for (i, group) in groups.iter().enumerate().take(MAX_GROUPS) {
            let mut terms: Vec<String> = Vec::new();
            for term in group {
                let term = term
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_lowercase();
                if term.is_empty() {
                    continue;
                }
                let shown: String = term.chars().take(MAX_TERM_CHARS).collect();
                if term.contains(['|', ',', '，']) {
                    problems.push(format!(
                        "group {i}: {shown:?} contains a separator (| or a comma)"
                    ));
                } else if term.chars().any(|c| c.is_control() || is_invisible(c)) {
                    problems.push(format!(
                        "group {i}: {shown:?} contains a control or invisible character"
                    ));
                } else if term.chars().count() > MAX_TERM_CHARS {
                    problems.push(format!(
                        "group {i}: {shown:?}... is longer than {MAX_TERM_CHARS} characters"
                    ));
                } else if !terms.contains(&term) {
                    terms.push(term);
                }
            }
            if terms.len() > MAX_GROUP_TERMS {
                problems.push(format!("group {i}: at most {MAX_GROUP_TERMS} terms"));
            } else if terms.len() < 2 {
                problems.push(format!("group {i}: a group needs two different terms"));
            } else {
                out.push(terms);
            }
        }
        if problems.is_empty() {
            Ok(Self::indexed(out))
        } else {
            Err(problems)
        }
    }

    pub fn defaults() -> Self {
        Self::indexed(
            DEFAULT_GROUPS
                .iter()
                .map(|g| g.iter().map(|t| (*t).to_owned()).collect())
                .collect(),
        )
    }

    fn indexed(groups: Vec<Vec<String>>) -> Self {
        let mut by_word: std::collections::HashMap<String, Vec<usize>> =
            std::collections::HashMap::new();
        let mut phrases = Vec::new();
        for (i, group) in groups.iter().enumerate() {
            for term in group {
                let words = words_of(term);
                if term.is_ascii() && !words.contains(' ') && !words.is_empty() {
                    let groups = by_word.entry(words).or_default();
                    if !groups.contains(&i) {
                        groups.push(i);
                    }
                } else {
                    phrases.push((i, term.clone()));
                }
            }
        }
        Self {
            groups,
            by_word,
            phrases,
        }
    }

    pub fn groups(&self) -> &[Vec<String>] {
        &self.groups
    }

    /// The terms a query gains: for every group one of whose terms the query holds (as
    /// whole words; anywhere for Chinese), the group's other terms, at most
    /// [`MAX_EXPANSIONS`], in group order.
    pub fn expand(&self, query: &str) -> Vec<String> {
        let text = format!(" {} ", words_of(query));
        let mut matched: Vec<usize> = text
            .split(' ')
            .filter_map(|w| self.by_word.get(w))
            .flatten()
            .copied()
            .chain(
                self.phrases
                    .iter()
                    .filter(|(_, t)| holds(&text, t))
                    .map(|(i, _)| *i),
            )
            .collect();
        matched.sort_unstable();
        matched.dedup();
        let mut out: Vec<String> = Vec::new();
        for group in matched.into_iter().filter_map(|i| self.groups.get(i)) {
            for term in group {
                if out.len() == MAX_EXPANSIONS {
                    return out;
                }
                if !holds(&text, term) && !out.contains(term) {
                    out.push(term.clone());
                }
            }
        }
        out
    }
}

/// Whether a synonym term is one word: searched as a word, where a term of several words
/// (`case study`, `self-hosted`) is searched only as a phrase, or not at all where phrases
/// are not looked for.
pub fn is_one_word(term: &str) -> bool {
    !term.contains([' ', '-'])
}

/// Characters that show nothing: zero-width spaces and joiners, the byte-order mark.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{2060}' | '\u{feff}')
}

/// A text as lowercase words separated by single spaces (punctuation but `-` dropped),
/// English words reduced to their stems as the index reduces them, so that "success
/// stories" holds "success story" and "on-premise" is "on-premises".
fn words_of(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .filter(|w| !w.is_empty())
        .map(stem)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A lowercase word's English stem (the Snowball stemmer tantivy's English analyzer uses);
/// a word with other letters as it is.
pub(super) fn stem(word: &str) -> String {
    static ENGLISH: std::sync::LazyLock<frostem::Stemmer> =
        std::sync::LazyLock::new(|| frostem::Stemmer::new(frostem::Algorithm::English));
    if word.is_ascii() {
        ENGLISH.stem(word).into_owned()
    } else {
        word.to_owned()
    }
}

fn holds(spaced: &str, term: &str) -> bool {
    if term.is_ascii() {
        spaced.contains(&format!(" {} ", words_of(term)))
    } else {
        spaced.contains(term)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_gains_its_groups_other_terms() {
        let s = Synonyms::defaults();
        assert_eq!(s.expand("reduce churn"), vec!["retention", "attrition"]);
        assert_eq!(
            s.expand("Telecom customers"),
            vec!["telecommunications", "telco"]
        );
        // Whole words only: "price" is not in "priceless".
        assert!(s.expand("priceless").is_empty());
        assert_eq!(
            s.expand("Role-based access control"),
            vec!["rbac", "permissions"]
        );
        assert_eq!(s.expand("降低流失"), vec!["留存"]);
        // Words are compared by their stems, as the index compares them.
        assert!(
            s.expand("customer success stories")
                .contains(&"case study".to_owned())
        );
        assert!(
            s.expand("on-premise installation")
                .contains(&"self-hosted".to_owned())
        );
        assert!(s.expand("Case Studies").contains(&"testimonial".to_owned()));
    }

    #[test]
    fn groups_are_checked() {
        let ok = Synonyms::parse(&[vec![" Churn ".into(), "retention".into()]]).unwrap();
        assert_eq!(
            ok.groups(),
            &[vec!["churn".to_owned(), "retention".to_owned()]]
        );
        let err = Synonyms::parse(&[
            vec!["a".into(), "A".into()],
            vec!["x".repeat(65), "y".into()],
        ])
        .unwrap_err();
        assert!(err[0].starts_with("group 0: a group needs two"), "{err:?}");
        assert!(err[1].starts_with("group 1: "), "{err:?}");
        for bad in ["a\u{0}b", "zero\u{200b}width", "a,b", "a|b"] {
            let err = Synonyms::parse(&[vec![bad.into(), "c".into()]]).unwrap_err();
            assert!(err[0].starts_with("group 0: "), "{bad:?}: {err:?}");
        }
    }
}
