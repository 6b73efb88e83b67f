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
                if term.contains('|') {
                    problems.push(format!(
                        "group {i}: {term:?} contains '|', the list separator"
                    ));
                } else if term.chars().count() > MAX_TERM_CHARS {
                    problems.push(format!(
                        "group {i}: {term:?} is longer than {MAX_TERM_CHARS} characters"
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
            Ok(Self { groups: out })
        } else {
            Err(problems)
        }
    }

    pub fn defaults() -> Self {
        Self {
            groups: DEFAULT_GROUPS
                .iter()
                .map(|g| g.iter().map(|t| (*t).to_owned()).collect())
                .collect(),
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
        let mut out: Vec<String> = Vec::new();
        for group in &self.groups {
            if !group.iter().any(|t| holds(&text, t)) {
                continue;
            }
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

/// A text as lowercase words separated by single spaces (punctuation but `-` dropped).
fn words_of(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
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
    }
}
