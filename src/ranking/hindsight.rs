//! What a ranking says after the fact: the factors that hold an asset below a list's last
//! item (`explainRank`), and the audience a logged list was ranked for (the replay).

use super::{Audience, ScoreReason, Scored};
use crate::domain::{
    Asset, Concern, Factor, IndustrySlug, Language, ListContext, Role, Stage, TaxonomyValue,
};

/// A logged context as the audience it was ranked for.
pub fn replay_audience(ctx: &ListContext) -> Result<Audience, String> {
    let bad = |what: &str| format!("a logged list's {what} cannot be read");
    Ok(Audience {
        stage: Stage::parse(&ctx.stage).map_err(|_| bad("stage"))?,
        role: ctx
            .role
            .as_deref()
            .map(Role::parse)
            .transpose()
            .map_err(|_| bad("role"))?,
        industry: ctx
            .industry
            .as_deref()
            .map(IndustrySlug::parse)
            .transpose()
            .map_err(|_| bad("industry"))?,
        language: Language::parse(&ctx.language).map_err(|_| bad("language"))?,
        concerns: ctx
            .concerns
            .iter()
            .filter_map(|c| Concern::parse(c).ok())
            .collect(),
    })
}

/// The factors where the asset gets less than the cutoff item, largest gap first.
pub fn holding_back(
    asset: &Asset,
    audience: &Audience,
    scored: &Scored,
    cutoff: &Scored,
    first: usize,
) -> Vec<String> {
    let mut gaps: Vec<(f64, String)> = Factor::ALL
        .into_iter()
        .filter_map(|f| {
            let mine = reason_for(scored, f);
            let theirs = reason_for(cutoff, f).map_or(0.0, |r| r.contribution);
            let contribution = mine.map_or(0.0, |r| r.contribution);
            let gap = theirs - contribution;
            (gap > 1e-9).then(|| {
                let (weight, detail) = mine.map_or((0.0, ""), |r| (r.weight, r.detail.as_str()));
                let gap_words = Gap {
                    factor: f,
                    detail,
                    mine: contribution,
                    weight,
                    theirs,
                    first,
                };
                (gap, gap_words.words(asset, audience))
            })
        })
        .collect();
    gaps.sort_by(|a, b| b.0.total_cmp(&a.0));
    gaps.into_iter().map(|(_, words)| words).collect()
}

fn reason_for(scored: &Scored, factor: Factor) -> Option<&ScoreReason> {
    scored.reasons.iter().find(|r| r.factor == factor)
}

/// One factor where the asset gets less than the item at the cutoff.
struct Gap<'a> {
    factor: Factor,
    detail: &'a str,
    /// The asset's contribution, of `weight`.
    mine: f64,
    weight: f64,
    /// The cutoff item's contribution.
    theirs: f64,
    /// The position of the cutoff item.
    first: usize,
}

impl Gap<'_> {
    /// The gap in an editor's words: what the asset and the audience are, and the numbers.
    fn words(&self, asset: &Asset, a: &Audience) -> String {
        let Gap {
            factor: f,
            detail,
            mine,
            weight,
            theirs,
            first,
        } = *self;
        let names = |v: Vec<&str>, none: &str| {
            if v.is_empty() {
                none.to_owned()
            } else {
                v.join(", ")
            }
        };
        let what = match f {
            Factor::Stage => format!(
                "stage {}, audience {}",
                names(asset.stages.iter().map(|s| s.name()).collect(), "none"),
                a.stage.name()
            ),
            Factor::Language => format!(
                "written in {}, the audience reads {}",
                asset.language.as_str(),
                a.language.as_str()
            ),
            Factor::Role => format!(
                "written for {}, audience {}",
                names(asset.roles.iter().map(|r| r.name()).collect(), "every role"),
                a.role.map_or("unknown", |r| r.name())
            ),
            Factor::Industry => format!(
                "for {}, audience {}",
                names(
                    asset.industries.iter().map(|i| i.as_str()).collect(),
                    "every industry"
                ),
                a.industry.as_ref().map_or("unknown", |i| i.as_str())
            ),
            _ => format!("{}: {detail}", f.name().to_lowercase()),
        };
        format!("{what}: {mine:.2} of {weight:.2} (the item at {first} gets {theirs:.2})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(parts: &[(Factor, f64, f64)]) -> Scored {
        Scored {
            score: parts.iter().map(|p| p.2).sum(),
            reasons: parts
                .iter()
                .map(|&(factor, weight, contribution)| ScoreReason {
                    factor,
                    value: if weight > 0.0 {
                        contribution / weight
                    } else {
                        0.0
                    },
                    weight,
                    contribution,
                    detail: String::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_largest_gap_to_the_cutoff_comes_first_and_ties_or_leads_are_left_out() {
        let ctx = ListContext {
            stage: "DECISION".into(),
            role: Some("TECHNICAL".into()),
            language: "en".into(),
            ..Default::default()
        };
        let audience = replay_audience(&ctx).unwrap();
        let asset = crate::domain::AssetDraft {
            id: Some("a".into()),
            title: Some("A".into()),
            content_type: Some("EBOOK".into()),
            stages: vec!["AWARENESS".into()],
            ..Default::default()
        }
        .validate()
        .unwrap();
        let mine = scored(&[
            (Factor::Stage, 3.0, 1.0),
            (Factor::Role, 2.0, 1.5),
            (Factor::Freshness, 1.0, 0.9),
        ]);
        let cutoff = scored(&[
            (Factor::Stage, 3.0, 3.0),
            (Factor::Role, 2.0, 2.0),
            (Factor::Freshness, 1.0, 0.2),
        ]);
        let words = holding_back(&asset, &audience, &mine, &cutoff, 5);
        assert_eq!(words.len(), 2, "{words:?}");
        assert!(
            words[0].starts_with("stage AWARENESS, audience DECISION: 1.00 of 3.00"),
            "{words:?}"
        );
        assert!(words[0].ends_with("(the item at 5 gets 3.00)"), "{words:?}");
        assert!(words[1].contains("audience TECHNICAL"), "{words:?}");
    }

    #[test]
    fn a_logged_context_that_cannot_be_read_is_named() {
        let ctx = ListContext {
            stage: "NOT-A-STAGE".into(),
            language: "en".into(),
            ..Default::default()
        };
        assert_eq!(
            replay_audience(&ctx).unwrap_err(),
            "a logged list's stage cannot be read"
        );
    }
}
