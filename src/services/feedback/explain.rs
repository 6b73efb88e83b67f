//! Why an asset ranks where it does (`explainRank`), and the offline replay of logged lists
//! with another profile.

use std::collections::{HashMap, HashSet};

use super::super::Library;
use super::super::recommend::{AudienceRequest, Ranking, Resolution, ResolvedAudience};
use crate::domain::{Asset, AssetFilter, AssetStatus, Choice, ideal_dcg5, list_measures};
use crate::error::{AppError, AppResult};
use crate::ranking::{Scored, holding_back, replay_audience};

/// How deep `explainRank` looks past the shown list.
pub const EXPLAIN_DEPTH: usize = 500;
/// Lists ranked per replayed context.
const REPLAY_DEPTH: usize = 10;

/// `explainRank`'s question: an asset, and a request like `recommendations`.
pub struct ExplainQuery {
    pub asset_id: String,
    pub request: AudienceRequest,
    pub text: Option<String>,
    pub filter: AssetFilter,
    pub profile: Option<String>,
    pub first: usize,
    pub diversify: bool,
}

/// Where an asset ranks for an audience, and why not higher.
#[derive(Clone, Debug)]
pub struct RankExplanation {
    pub asset: Asset,
    pub audience: ResolvedAudience,
    pub profile: String,
    pub first: usize,
    /// Why it can never be shown to this audience; empty when it can.
    pub ineligible: Vec<String>,
    /// 1 for the first; `None` when ineligible or deeper than [`EXPLAIN_DEPTH`].
    pub rank: Option<usize>,
    pub scored: Option<Scored>,
    /// The last item a list of `first` shows.
    pub cutoff: Option<Scored>,
    /// What keeps it below the cutoff, largest gap first, in an editor's words.
    pub holding_back: Vec<String>,
}

/// The measures of one profile over the replayed lists.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplayMeasures {
    pub profile: String,
    pub mrr: f64,
    pub ndcg5: f64,
    pub recall10: f64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplayReport {
    pub lists: usize,
    pub candidate: ReplayMeasures,
    /// Each list re-ranked with the profile that ranked it when it was shown.
    pub logged: ReplayMeasures,
}

impl Library {
    /// Where an asset ranks for a request like `recommendations`, and what holds it back.
    pub async fn explain_rank(&self, q: ExplainQuery) -> AppResult<RankExplanation> {
        let ExplainQuery {
            asset_id,
            request,
            text,
            filter,
            profile,
            first,
            diversify,
        } = q;
        let asset_id = asset_id.as_str();
        if let Some(text) = &text {
            crate::domain::check_query_text("query", text).map_err(AppError::bad_input)?;
        }
        let asset = self
            .asset(asset_id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no asset with id {asset_id:?}")))?;
        let Resolution {
            resolved,
            exclude,
            account_id,
            recent_reads,
        } = self.resolve(&request).await?;
        let choice = self.choose(profile.as_deref(), None, None)?;
        let mut ineligible = Vec::new();
        match asset.status {
            AssetStatus::Draft => {
                ineligible.push("a draft: only published assets are recommended".to_owned())
            }
            AssetStatus::Retired => {
                ineligible.push("retired: only published assets are recommended".to_owned())
            }
            AssetStatus::Published => {}
        }
        if !filter.admits(&Asset {
            status: AssetStatus::Published,
            ..asset.clone()
        }) {
            ineligible.push("the request's filter leaves it out".to_owned());
        }
        if request.exclude_asset_ids.iter().any(|e| e == asset_id) {
            ineligible.push("the request excludes it (excludeAssetIds)".to_owned());
        }
        if let Some(account) = &account_id {
            let profile = self.require_account(account).await?;
            if profile.dismissed.iter().any(|d| d == asset_id) {
                ineligible.push(format!("account {account:?} dismissed it"));
            } else if !request.include_consumed && profile.consumed.iter().any(|c| c == asset_id) {
                ineligible.push(format!(
                    "account {account:?} already engaged with it (includeConsumed brings it back)"
                ));
            }
        }
        let mut explanation = RankExplanation {
            asset,
            audience: resolved.clone(),
            profile: choice.profile.clone(),
            first,
            ineligible,
            rank: None,
            scored: None,
            cutoff: None,
            holding_back: Vec::new(),
        };
        let ranking = |first: usize, diversify: bool, exclude: Vec<String>| Ranking {
            text: text.as_deref(),
            similar_to: None,
            filter: &filter,
            exclude,
            weights: choice.overrides,
            first,
            diversify,
            sequels: Vec::new(),
            linked: Vec::new(),
            text_first: false,
            seed_vector: None,
            also_read_after: recent_reads.clone(),
        };
        let shown = self
            .rank(
                &resolved.audience,
                ranking(first, diversify, exclude.clone()),
            )
            .await?;
        explanation.cutoff = (shown.len() == first)
            .then(|| shown.last().map(|r| r.scored.clone()))
            .flatten();
        if !explanation.ineligible.is_empty() {
            return Ok(explanation);
        }
        if let Some(i) = shown.iter().position(|r| r.asset.id.as_str() == asset_id) {
            explanation.rank = Some(i + 1);
            explanation.scored = Some(shown[i].scored.clone());
            return Ok(explanation);
        }
        // Past the shown list, the order is the score's (diversity only reorders the head).
        let mut deeper_exclude = exclude;
        deeper_exclude.extend(shown.iter().map(|r| r.asset.id.to_string()));
        let deeper = self
            .rank(
                &resolved.audience,
                ranking(EXPLAIN_DEPTH, false, deeper_exclude),
            )
            .await?;
        if let Some(i) = deeper.iter().position(|r| r.asset.id.as_str() == asset_id) {
            explanation.rank = Some(shown.len() + i + 1);
            let scored = deeper[i].scored.clone();
            if let Some(cutoff) = &explanation.cutoff {
                explanation.holding_back = holding_back(
                    &explanation.asset,
                    &resolved.audience,
                    &scored,
                    cutoff,
                    first,
                );
            }
            explanation.scored = Some(scored);
        }
        Ok(explanation)
    }

    /// Ranks the logged contexts of past lists (since `since`, Unix seconds) again with
    /// `profile`, and with the profile that ranked each, and says where the assets that
    /// were clicked (grade 1) or completed (grade 2) land.
    pub async fn replay(&self, profile: &str, since: i64) -> AppResult<ReplayReport> {
        let candidate = self.choose(Some(profile), None, None)?;
        let lists = self.store.logged_lists(since).await?;
        let mut report = ReplayReport {
            lists: 0,
            candidate: ReplayMeasures {
                profile: profile.to_owned(),
                ..Default::default()
            },
            logged: ReplayMeasures {
                profile: "as logged".to_owned(),
                ..Default::default()
            },
        };
        let mut logged_names = HashSet::new();
        for list in lists {
            let grades: HashMap<&str, f64> = list
                .items
                .iter()
                .filter(|i| i.2 || i.3)
                .map(|i| (i.0.as_str(), if i.3 { 2.0 } else { 1.0 }))
                .collect();
            if grades.is_empty() {
                continue;
            }
            let ctx = &list.context;
            let audience =
                replay_audience(ctx).map_err(|e| AppError::internal(anyhow::anyhow!(e)))?;
            // A profile deleted since ranks as the default.
            let logged = self
                .choose(Some(&ctx.profile), None, None)
                .unwrap_or_else(|_| Choice::default_profile());
            logged_names.insert(logged.profile.clone());
            let ideal = ideal_dcg5(grades.values().copied().collect());
            for (overrides, into) in [
                (candidate.overrides, &mut report.candidate),
                (logged.overrides, &mut report.logged),
            ] {
                let ranked = self
                    .rank(
                        &audience,
                        Ranking {
                            text: ctx.query.as_deref(),
                            similar_to: None,
                            filter: &AssetFilter::default(),
                            exclude: ctx.after.iter().cloned().collect(),
                            weights: overrides,
                            first: REPLAY_DEPTH,
                            diversify: true,
                            sequels: Vec::new(),
                            linked: Vec::new(),
                            text_first: false,
                            seed_vector: None,
                            // A next-content list's seed; an account's reads at the time
                            // are not logged.
                            also_read_after: ctx.after.iter().cloned().collect(),
                        },
                    )
                    .await?;
                let ids: Vec<String> = ranked.iter().map(|r| r.asset.id.to_string()).collect();
                let m = list_measures(&ids, |id| grades.get(id).copied().unwrap_or(0.0));
                into.mrr += m.reciprocal_rank;
                into.ndcg5 += if ideal > 0.0 { m.dcg5 / ideal } else { 0.0 };
                into.recall10 += m.found_in_10 as f64 / grades.len() as f64;
            }
            report.lists += 1;
        }
        if report.lists > 0 {
            let n = report.lists as f64;
            for m in [&mut report.candidate, &mut report.logged] {
                m.mrr /= n;
                m.ndcg5 /= n;
                m.recall10 /= n;
            }
        }
        let mut names: Vec<String> = logged_names.into_iter().collect();
        names.sort();
        if !names.is_empty() {
            report.logged.profile = names.join(", ");
        }
        Ok(report)
    }
}
