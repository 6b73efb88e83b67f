//! Recommendations: resolve whom they are for, retrieve the best candidates from the
//! index, explain each with the ranking functions, and mix formats at the top.

use std::sync::Arc;

use chrono::Utc;

use super::Library;
use crate::domain::{
    Asset, AssetFilter, AssetStatus, Concern, IndustrySlug, Language, ListContext, Role, Stage,
    TaxonomyValue, WeightOverrides, audience_leaning,
};
use crate::domain::{Choice, cohort_key};
use crate::error::{AppError, AppResult};
use crate::ranking::{
    Audience, DiversityItem, RankContext, Scored, diversify, explain, graded_dimensions,
};
use crate::search::{DEFAULT_SLICE_TIERS_ABOVE, RecommendRequest};

/// Candidates retrieved per recommendation shown when diversifying: room to swap near-ties.
const DIVERSITY_WINDOW_FACTOR: usize = 2;
const MIN_DIVERSITY_WINDOW: usize = 20;
/// How many times its usual weight text has in `nextContent` after a seed whose stage
/// was read from its text or defaulted: the seed's subject then leads.
const UNTAGGED_SEED_TEXT_FACTOR: f64 = 12.0;
/// Assets nearest in meaning that join a ranking's candidates (at least; twice `first`
/// when more are asked for).
const MEANING_CANDIDATES: usize = 50;

/// Where a resolved audience field came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudienceSource {
    Request,
    Account,
    Contact,
    Inferred,
    Default,
}

/// Whom a request says it is for; every field optional. Fields given explicitly override
/// what the account and contact say.
#[derive(Clone, Debug, Default)]
pub struct AudienceRequest {
    pub account_id: Option<String>,
    pub contact_id: Option<String>,
    /// Also recommend what the account already engaged with.
    pub include_consumed: bool,
    pub stage: Option<Stage>,
    pub role: Option<Role>,
    pub industry: Option<IndustrySlug>,
    pub language: Option<Language>,
    pub concerns: Vec<Concern>,
    pub exclude_asset_ids: Vec<String>,
    /// An anonymous visitor's own id (a first-party cookie): whom an experiment assigns
    /// when no contact or account is named. It ranks nothing by itself.
    pub visitor_id: Option<String>,
}

/// The audience actually used, and where each part came from.
#[derive(Clone, Debug)]
pub struct ResolvedAudience {
    pub audience: Audience,
    pub stage_source: AudienceSource,
    pub role_source: AudienceSource,
    pub industry_source: AudienceSource,
    pub language_source: AudienceSource,
}

pub struct RecommendationQuery {
    pub audience: AudienceRequest,
    pub first: usize,
    pub text: Option<String>,
    pub filter: AssetFilter,
    pub weights: WeightOverrides,
    pub diversify: bool,
    /// A ranking profile by name; `None` lets `placement` pick (an experiment's variant)
    /// or leaves the default.
    pub profile: Option<String>,
    /// Where the list is shown (`homepage`): experiments run per placement.
    pub placement: Option<String>,
}

#[derive(Clone)]
pub struct Recommendation {
    pub asset: Arc<Asset>,
    pub scored: Scored,
}

pub struct RecommendationList {
    pub items: Vec<Recommendation>,
    pub audience: ResolvedAudience,
    /// How it was ranked (profile, experiment, audience), as its id carries it.
    pub context: ListContext,
    /// The opaque `recommendationId`: the context and a nonce, unique per answer.
    pub id: String,
}

/// An audience resolved for ranking, with what else the account says.
pub(super) struct Resolution {
    pub(super) resolved: ResolvedAudience,
    /// The request's exclusions plus what the account dismissed and, unless asked
    /// otherwise, what it read.
    pub(super) exclude: Vec<String>,
    /// The account asking or asked about (also when only a contact was named).
    pub(super) account_id: Option<String>,
    /// The account's latest reads, newest first (the ALSO_READ factor's seeds).
    pub(super) recent_reads: Vec<String>,
}

/// What the ranking of one request needs besides the audience.
pub(super) struct Ranking<'a> {
    pub(super) text: Option<&'a str>,
    pub(super) similar_to: Option<&'a str>,
    pub(super) filter: &'a AssetFilter,
    pub(super) exclude: Vec<String>,
    pub(super) weights: WeightOverrides,
    pub(super) first: usize,
    pub(super) diversify: bool,
    /// Ids that continue a `nextContent` seed: its next part, and the pages it links to.
    pub(super) sequels: Vec<String>,
    pub(super) linked: Vec<String>,
    /// The text is meant to outweigh the graded factors (an untagged seed's subject):
    /// candidates come from the best text matches (`RecommendRequest::text_first`).
    pub(super) text_first: bool,
    /// A `nextContent` seed's vector: what the candidates' meaning is compared with. For
    /// other lists with text, the query's vector is used (when there is a model).
    pub(super) seed_vector: Option<Arc<Vec<f32>>>,
    /// Seeds of the ALSO_READ factor: a `nextContent` seed, an account's latest reads.
    pub(super) also_read_after: Vec<String>,
}

/// The context a list remembers (see [`ListContext`]).
fn list_context(
    a: &Audience,
    account: Option<String>,
    choice: &Choice,
    placement: Option<&str>,
    after: Option<&str>,
    query: Option<&str>,
) -> ListContext {
    ListContext {
        at: Utc::now().timestamp(),
        account,
        profile: choice.profile.clone(),
        experiment: choice.experiment.clone(),
        variant: choice.variant.clone(),
        placement: placement.map(str::to_owned),
        after: after.map(str::to_owned),
        stage: a.stage.name().to_owned(),
        role: a.role.map(|r| r.name().to_owned()),
        industry: a.industry.as_ref().map(ToString::to_string),
        language: a.language.to_string(),
        concerns: a.concerns.iter().map(|c| c.name().to_owned()).collect(),
        query: query.map(str::to_owned),
    }
}

impl Library {
    /// Request fields first, then the contact (role) and the account (stage from the CRM or
    /// its reading, industry, language), then the configured defaults.
    pub(super) async fn resolve(&self, request: &AudienceRequest) -> AppResult<Resolution> {
        let defaults = &self.ranking;
        // With the account given, its contacts are in its (cached) profile; a contact
        // alone is looked up to find its account.
        let mut profile = match &request.account_id {
            Some(id) => Some(self.require_account(id).await?),
            None => None,
        };
        let contact = match (&request.contact_id, &profile) {
            (None, _) => None,
            (Some(id), Some(p)) => match p.contact(id) {
                Some(c) => Some(c.clone()),
                None => match self.store.get_contact(id).await? {
                    Some(c) => {
                        return Err(AppError::bad_input(format!(
                            "audience.contactId: contact {:?} belongs to account {:?}, not {:?}",
                            c.id.as_str(),
                            c.account_id.as_str(),
                            p.account.id.as_str()
                        )));
                    }
                    None => {
                        return Err(AppError::NotFound(format!("no contact with id {id:?}")));
                    }
                },
            },
            (Some(id), None) => {
                let c = self
                    .store
                    .get_contact(id)
                    .await?
                    .ok_or_else(|| AppError::NotFound(format!("no contact with id {id:?}")))?;
                profile = Some(self.require_account(c.account_id.as_str()).await?);
                Some(c)
            }
        };
        let account = profile.as_ref().map(|p| &p.account);
        let (stage, stage_source) = match (request.stage, profile.as_ref().and_then(|p| p.journey))
        {
            (Some(s), _) => (s, AudienceSource::Request),
            (None, Some((s, true))) => (s, AudienceSource::Inferred),
            (None, Some((s, false))) => (s, AudienceSource::Account),
            (None, None) => (defaults.default_stage, AudienceSource::Default),
        };
        let (role, role_source) = match (request.role, contact.as_ref().and_then(|c| c.role)) {
            (Some(r), _) => (Some(r), AudienceSource::Request),
            (None, Some(r)) => (Some(r), AudienceSource::Contact),
            (None, None) => (None, AudienceSource::Default),
        };
        let (industry, industry_source) =
            match (&request.industry, account.and_then(|a| a.industry.as_ref())) {
                (Some(i), _) => (Some(i.clone()), AudienceSource::Request),
                (None, Some(i)) => (Some(i.clone()), AudienceSource::Account),
                (None, None) => (None, AudienceSource::Default),
            };
        let (language, language_source) =
            match (&request.language, account.and_then(|a| a.language.as_ref())) {
                (Some(l), _) => (l.clone(), AudienceSource::Request),
                (None, Some(l)) => (l.clone(), AudienceSource::Account),
                (None, None) => (defaults.default_language.clone(), AudienceSource::Default),
            };
        let mut exclude = request.exclude_asset_ids.clone();
        if let Some(p) = &profile {
            exclude.extend(p.dismissed.iter().cloned());
            if !request.include_consumed {
                exclude.extend(p.consumed.iter().cloned());
            }
        }
        let account_id = profile.as_ref().map(|p| p.account.id.to_string());
        let mut recent_reads: Vec<String> = Vec::new();
        for e in profile.iter().flat_map(|p| &p.recent) {
            let id = e.engagement.asset_id.as_str();
            if recent_reads.len() < super::also_read::ACCOUNT_SEEDS
                && !recent_reads.iter().any(|r| r == id)
            {
                recent_reads.push(id.to_owned());
            }
        }
        Ok(Resolution {
            resolved: ResolvedAudience {
                audience: Audience {
                    stage,
                    role,
                    industry,
                    language,
                    concerns: request.concerns.clone(),
                },
                stage_source,
                role_source,
                industry_source,
                language_source,
            },
            exclude,
            account_id,
            recent_reads,
        })
    }

    /// The best assets for an audience, each with the reasons for its score.
    pub async fn recommend(&self, query: RecommendationQuery) -> AppResult<RecommendationList> {
        if query
            .filter
            .statuses
            .iter()
            .any(|s| *s != AssetStatus::Published)
        {
            return Err(AppError::bad_input(
                "filter.statuses: recommendations only ever show published assets",
            ));
        }
        if let Some(text) = &query.text {
            crate::domain::check_query_text("query", text).map_err(AppError::bad_input)?;
        }
        let resolution = self.resolve(&query.audience).await?;
        let choice = self.choose(
            query.profile.as_deref(),
            query.placement.as_deref(),
            subject(&query.audience, &resolution),
        )?;
        let context = list_context(
            &resolution.resolved.audience,
            resolution.account_id.clone(),
            &choice,
            query.placement.as_deref(),
            None,
            query.text.as_deref(),
        );
        let Resolution {
            resolved,
            exclude,
            recent_reads,
            ..
        } = resolution;
        let items = self
            .rank(
                &resolved.audience,
                Ranking {
                    text: query.text.as_deref(),
                    similar_to: None,
                    filter: &query.filter,
                    exclude,
                    weights: choice.overrides.under(&query.weights),
                    first: query.first,
                    diversify: query.diversify,
                    sequels: Vec::new(),
                    linked: Vec::new(),
                    text_first: false,
                    seed_vector: None,
                    also_read_after: recent_reads,
                },
            )
            .await?;
        Ok(RecommendationList {
            id: self.issue_list_id(&context, items.iter().map(|r| r.asset.id.as_str()))?,
            items,
            audience: resolved,
            context,
        })
    }

    /// What to read after an asset: the same subject, one stage further, in the reader's
    /// language and for the reader's role and industry when the asset says which. Never
    /// the asset itself.
    pub async fn next_content(
        &self,
        asset: Asset,
        request: AudienceRequest,
        first: usize,
        profile: Option<&str>,
        placement: Option<&str>,
    ) -> AppResult<RecommendationList> {
        let resolution = self.resolve(&request).await?;
        let choice = self.choose(profile, placement, subject(&request, &resolution))?;
        let Resolution {
            mut resolved,
            mut exclude,
            account_id,
            ..
        } = resolution;
        if request.stage.is_none() {
            let furthest = asset
                .stages
                .iter()
                .copied()
                .max()
                .unwrap_or(Stage::Awareness);
            // One step forward while buying; a customer (adoption, advocacy) stays where it
            // is: after a documentation page comes more of it, not advocacy.
            resolved.audience.stage = if furthest < Stage::Decision {
                Stage::from_ordinal(furthest.ordinal() + 1).unwrap_or(furthest)
            } else {
                furthest
            };
            resolved.stage_source = AudienceSource::Inferred;
        }
        if request.role.is_none()
            && let [role] = asset.roles.as_slice()
        {
            resolved.audience.role = Some(*role);
            resolved.role_source = AudienceSource::Inferred;
        }
        if request.industry.is_none()
            && let [industry] = asset.industries.as_slice()
        {
            resolved.audience.industry = Some(industry.clone());
            resolved.industry_source = AudienceSource::Inferred;
        }
        if request.language.is_none() {
            resolved.audience.language = asset.language.clone();
            resolved.language_source = AudienceSource::Inferred;
        }
        exclude.push(asset.id.to_string());
        // A seed whose stage nobody declared says little by its stage: its subject leads.
        let mut overrides = choice.overrides;
        let untagged_seed = asset.evidence.stages.source != crate::domain::TagSource::Declared
            && overrides.text.is_none();
        if untagged_seed {
            overrides.text = Some(self.ranking.weights.text * UNTAGGED_SEED_TEXT_FACTOR);
        }
        // The subject: the title, the topics, the words of its address the title lacks, and
        // the words that say most about the seed (a title alone is often two or three
        // words, sometimes a metaphor, and an untagged library has no topics).
        let mut subject = asset.title.clone();
        for word in asset.topics.iter().cloned().chain(asset.slug_words()) {
            subject.push(' ');
            subject.push_str(&word);
        }
        // With them, in the same read, the pages the seed links to that are in the library:
        // where it sends its reader.
        let (telling, linked) = {
            let asset = asset.clone();
            self.read_index(move |index| {
                Ok((
                    index.telling_words(&asset, crate::search::TELLING_WORDS)?,
                    index.linked_ids(&asset.link_keys())?,
                ))
            })
            .await?
        };
        for word in telling {
            subject.push(' ');
            subject.push_str(&word);
        }
        let seed_vector = self.asset_vector(&asset).await?;
        let items = self
            .rank(
                &resolved.audience,
                Ranking {
                    text: Some(&subject),
                    similar_to: Some(&asset.title),
                    filter: &AssetFilter::default(),
                    exclude,
                    weights: overrides,
                    first,
                    diversify: true,
                    sequels: asset.sequel_ids(),
                    linked,
                    text_first: untagged_seed,
                    seed_vector,
                    also_read_after: vec![asset.id.to_string()],
                },
            )
            .await?;
        let context = list_context(
            &resolved.audience,
            account_id,
            &choice,
            placement,
            Some(asset.id.as_str()),
            None,
        );
        Ok(RecommendationList {
            id: self.issue_list_id(&context, items.iter().map(|r| r.asset.id.as_str()))?,
            items,
            audience: resolved,
            context,
        })
    }

    pub(super) async fn rank(
        &self,
        audience: &Audience,
        r: Ranking<'_>,
    ) -> AppResult<Vec<Recommendation>> {
        if r.first == 0 {
            return Ok(Vec::new());
        }
        let weights = self
            .ranking
            .weights
            .with(&r.weights)
            .map_err(AppError::bad_input)?;
        let dimensions = graded_dimensions(audience);
        // Meaning: the seed's vector, else the query's; the assets nearest to it join the
        // candidates, and every candidate's cosine joins its TEXT value.
        let target = match (&r.seed_vector, r.text) {
            _ if self.ranking.semantic_ratio <= 0.0 || weights.text <= 0.0 => None,
            (Some(v), _) => Some(v.clone()),
            // An identifier is matched by its words alone (`domain::is_identifier`).
            (None, Some(text)) if r.similar_to.is_none() && !crate::domain::is_identifier(text) => {
                self.query_vector(text).await?
            }
            _ => None,
        };
        // The target with the vectors it is compared with, read once.
        let meaning = target.map(|t| (t, self.meaning.vectors()));
        let near_count = MEANING_CANDIDATES.max(r.first * 2);
        // What readers of the seeds read next; looked up like popular assets.
        let also_read = if weights.also_read > 0.0 {
            self.also_read(&r.also_read_after, r.similar_to, audience.industry.as_ref())
                .await?
        } else {
            None
        };
        // One context for retrieval and explanation alike.
        let ctx = Arc::new(RankContext {
            weights,
            now: Utc::now(),
            half_life_days: self.ranking.half_life_days,
            query: r.text.map(str::to_owned),
            // A visitor's query gains its synonyms; a seed's subject is taken as written.
            synonyms: if r.similar_to.is_none() {
                self.expansions(r.text).await?
            } else {
                Vec::new()
            },
            similar_to: r.similar_to.map(str::to_owned),
            sequels: r.sequels.clone(),
            linked: r.linked.clone(),
            // Without a vector no cosine reaches `explain`, which then counts words alone.
            semantic_ratio: self.ranking.semantic_ratio,
            also_read,
        });
        let window = if r.diversify {
            (r.first * DIVERSITY_WINDOW_FACTOR).max(MIN_DIVERSITY_WINDOW)
        } else {
            r.first
        };
        let (filter, exclude) = (r.filter.clone(), r.exclude);
        let concerns = TaxonomyValue::mask(&audience.concerns);
        let dims = dimensions.clone();
        // Popularity among accounts like this audience; nothing to look up when it cannot
        // count.
        let popular = (weights.popularity > 0.0)
            .then(|| {
                self.popularity
                    .snapshot()
                    .cohort(&cohort_key(audience.industry.as_ref(), audience.stage))
            })
            .flatten();
        // Excluded ones among them are skipped by retrieval, with the rest of the exclusions.
        let mut popular_ids: Vec<String> =
            popular.as_ref().map(|p| p.ids.clone()).unwrap_or_default();
        // A seed's sequels and the pages it links to are looked up like popular assets,
        // whatever their tier.
        popular_ids.extend(r.sequels.iter().chain(&r.linked).cloned());
        if let Some(a) = &ctx.also_read {
            popular_ids.extend(a.hits.keys().cloned());
        }
        let retrieval = ctx.clone();
        let text_first = r.text_first;
        let leaning_for = (audience.stage, audience.role);
        let near_of = meaning.clone();
        let candidates = self
            .read_index(move |index| {
                // So are the assets nearest in meaning, which the words may not reach (the
                // scan is CPU work: here, on the blocking pool).
                if let Some((target, vectors)) = near_of {
                    let excluded: std::collections::HashSet<&str> =
                        exclude.iter().map(String::as_str).collect();
                    popular_ids.extend(
                        vectors
                            .nearest(&target, near_count, |id| !excluded.contains(id))
                            .into_iter()
                            .map(|(id, _)| id),
                    );
                }
                index.recommend(&RecommendRequest {
                    rank: &retrieval,
                    dimensions: &dims,
                    filter: &filter,
                    exclude_ids: &exclude,
                    popular_ids: &popular_ids,
                    concerns,
                    window,
                    slice_tiers_above: DEFAULT_SLICE_TIERS_ABOVE,
                    text_first,
                    audience: leaning_for,
                })
            })
            .await?;
        metrics::histogram!(crate::metrics::DOCUMENTS_SCORED).record(candidates.docs_scored as f64);

        let scored: Vec<Recommendation> = candidates
            .items
            .into_iter()
            .map(|c| Recommendation {
                scored: explain(
                    audience,
                    &dimensions,
                    &c.asset,
                    &ctx,
                    (c.bm25, candidates.text_scale),
                    meaning
                        .as_ref()
                        .and_then(|(t, v)| v.cosine(c.asset.id.as_str(), t)),
                    popular
                        .as_ref()
                        .and_then(|p| p.values.get(c.asset.id.as_str()))
                        .copied()
                        .unwrap_or(0.0),
                ),
                asset: c.asset,
            })
            .collect();
        // The explanation is the authority on the score; retrieval only found the window.
        // Between equal scores, the asset that speaks more surely to the audience, then the
        // more prominent one. Prominence reads the asset's url, title and body: once per
        // candidate, not per comparison.
        let mut ranked: Vec<((u32, u64), Recommendation)> = scored
            .into_iter()
            .map(|r| {
                let leaning = audience_leaning(r.asset.leanings(), audience.stage, audience.role);
                ((leaning, r.asset.prominence()), r)
            })
            .collect();
        ranked.sort_by(|(pa, a), (pb, b)| {
            b.scored
                .score
                .total_cmp(&a.scored.score)
                .then_with(|| pb.cmp(pa))
                .then_with(|| a.asset.id.cmp(&b.asset.id))
        });
        let mut scored: Vec<Recommendation> = ranked.into_iter().map(|(_, r)| r).collect();
        if !r.diversify {
            scored.truncate(r.first);
            return Ok(scored);
        }
        let order = {
            let items: Vec<DiversityItem<'_>> = scored
                .iter()
                .map(|s| DiversityItem {
                    score: s.scored.score,
                    content_type: s.asset.content_type,
                    topics: &s.asset.topics,
                    // With text (a query, a seed's subject), an item fits when the text
                    // finds it on the subject.
                    fits: s
                        .scored
                        .reasons
                        .iter()
                        .find(|x| x.factor == crate::domain::Factor::Text)
                        .is_none_or(|x| x.value >= crate::ranking::SAME_SUBJECT_FROM),
                })
                .collect();
            diversify(&items, r.first)
        };
        let mut slots: Vec<Option<Recommendation>> = scored.into_iter().map(Some).collect();
        Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
    }
}

impl Library {
    /// A query's vector when a model and the library's vectors are there (a model run on
    /// the blocking pool unless the query was seen lately).
    pub(super) async fn query_vector(&self, text: &str) -> AppResult<Option<Arc<Vec<f32>>>> {
        if !self.meaning.ready() || text.trim().is_empty() {
            return Ok(None);
        }
        if let Some(v) = self.meaning.cached_query_vector(text) {
            return Ok(Some(v));
        }
        if self.meaning.queues_queries() {
            let outcome = self.meaning.queue_query(text).await;
            return Ok(outcome.and_then(|o| model_answer("a query", o)));
        }
        let meaning = self.meaning.clone();
        let text = text.to_owned();
        Ok(self
            .run_model("a query", move || meaning.query_vector(&text))
            .await?
            .flatten())
    }

    /// An asset's vector: the stored one, else computed from its text now.
    pub(super) async fn asset_vector(&self, asset: &Asset) -> AppResult<Option<Arc<Vec<f32>>>> {
        if !self.meaning.ready() {
            return Ok(None);
        }
        if let Some(v) = self.meaning.vectors().get(asset.id.as_str()) {
            return Ok(Some(Arc::new(v)));
        }
        let text = crate::meaning::asset_text(asset);
        if let Some(v) = self.meaning.cached_text_vector(&text) {
            return Ok(Some(v));
        }
        let meaning = self.meaning.clone();
        Ok(self
            .run_model("a seed", move || meaning.text_vector(&text))
            .await?
            .flatten())
    }

    /// Runs the model on the blocking pool, taking a turn among index reads (both are CPU
    /// work). A call to an embeddings service waits on the network instead: it takes one
    /// of `REMOTE_CALLS` permits, or none is made. A model that fails (or a service that
    /// does not answer within `remote::QUERY_TIMEOUT`) is logged and gives `None`: the
    /// words answer alone.
    async fn run_model<T: Send + 'static>(
        &self,
        what: &str,
        run: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> AppResult<Option<T>> {
        let remote = self.meaning.model().is_some_and(|m| m.is_remote());
        let outcome = if remote {
            // A few calls at a time: a slow service never holds the blocking pool, and
            // past them the words answer alone.
            let Ok(permit) = self.remote_calls.clone().try_acquire_owned() else {
                tracing::debug!("the embeddings service is busy with other requests: words alone");
                return Ok(None);
            };
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                run()
            })
            .await
            .map_err(AppError::internal)?
        } else {
            self.cpu_turn(run).await?
        };
        Ok(model_answer(what, outcome))
    }
}

/// A model's answer, or `None` (logged) when it failed: the words answer alone.
fn model_answer<T>(what: &str, outcome: anyhow::Result<T>) -> Option<T> {
    outcome
        .inspect_err(|e| {
            tracing::warn!(error = %format!("{e:#}"), "the embedding model failed on {what}");
        })
        .ok()
}

/// Whom an experiment assigns: the contact when named, else the account, else the
/// anonymous visitor's id.
fn subject<'a>(request: &'a AudienceRequest, resolution: &'a Resolution) -> Option<&'a str> {
    request
        .contact_id
        .as_deref()
        .or(resolution.account_id.as_deref())
        .or(request.visitor_id.as_deref())
}
