//! The content team's audit: the coverage matrix with its gaps, and stale assets.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};

use super::Library;
use crate::domain::{
    Asset, AssetFilter, AssetStatus, CoverageCell, CoverageDimension, CoverageUniverse, FacetField,
    Language, coverage_matrix,
};
use crate::error::{AppError, AppResult};

/// Engagement counted per cell looks this far back.
pub const ENGAGEMENT_WINDOW_DAYS: i64 = 90;

pub struct CoverageReport {
    pub cells: Vec<CoverageReportCell>,
    /// The assets the cells index into.
    pub rows: Vec<crate::domain::CoverageRow>,
    /// Published assets the filter let through.
    pub assets: u64,
    /// Of them, those naming no concern and no topic, by id.
    pub undescribed: Vec<String>,
    /// Of them, those that declare no stage, role or industry.
    pub untagged: u64,
    /// Of them, those with neither a publication nor a review date (and not evergreen).
    pub undated: u64,
}

/// What a coverage report computes beyond counts, each only when asked: both cost time.
#[derive(Clone, Copy, Debug, Default)]
pub struct CoverageExtras {
    /// Engagement events per cell in the last 90 days (a grouped query over the events).
    pub engagement: bool,
    /// The assets written for each cell, and so its written gaps (a second pass).
    pub written: bool,
}

pub struct CoverageReportCell {
    pub cell: CoverageCell,
    /// Engagement events with the cell's assets in the last 90 days.
    pub engagements: u64,
}

pub struct StaleAsset {
    pub asset: Asset,
    pub dated_at: Option<DateTime<Utc>>,
    pub age_days: Option<i64>,
}

fn published_only(filter: &AssetFilter) -> AppResult<()> {
    if filter.statuses.iter().any(|s| *s != AssetStatus::Published) {
        return Err(AppError::bad_input(
            "filter.statuses: the audit counts published assets only",
        ));
    }
    Ok(())
}

impl Library {
    /// Days after which an asset not reviewed is stale, unless a request says otherwise.
    pub fn stale_after_days(&self) -> u32 {
        self.stale_after_days
    }

    fn stale_before(&self, days: Option<u32>) -> i64 {
        let days = days.unwrap_or(self.stale_after_days);
        (Utc::now() - chrono::Duration::days(i64::from(days))).timestamp()
    }

    /// Every cell of the cross product of `dimensions` over the published assets the
    /// filter lets through, computed from the index's columns; with each cell's engagement
    /// of the last 90 days and the assets written for it when `extras` asks.
    pub async fn coverage(
        &self,
        dimensions: Vec<CoverageDimension>,
        filter: AssetFilter,
        stale_after_days: Option<u32>,
        extras: CoverageExtras,
    ) -> AppResult<CoverageReport> {
        published_only(&filter)?;
        if dimensions.is_empty() {
            return Err(AppError::bad_input("by: name at least one dimension"));
        }
        let stale_before = self.stale_before(stale_after_days);
        // The library's languages and industries only when the matrix ranges over them.
        let by_language = dimensions.contains(&CoverageDimension::Language);
        let (rows, languages) = self
            .read_index(move |index| {
                let rows = index.audit_rows(&filter, stale_before)?;
                let languages = if by_language {
                    index.facet_counts(&AssetFilter::default(), vec![FacetField::Language])?
                } else {
                    Vec::new()
                };
                Ok((rows, languages))
            })
            .await?;
        let mut languages: Vec<Language> = languages
            .into_iter()
            .flat_map(|f| f.values)
            .filter_map(|(l, _)| Language::parse(&l).ok())
            .collect();
        languages.sort();
        let industries = if dimensions.contains(&CoverageDimension::Industry) {
            self.store
                .industries()
                .await?
                .into_iter()
                .map(|i| i.slug)
                .collect()
        } else {
            Vec::new()
        };
        let universe = CoverageUniverse {
            industries,
            languages,
        };
        let undescribed = rows
            .iter()
            .filter(|r| !r.described)
            .map(|r| r.coverage.id.clone())
            .collect();
        let coverage_rows: Vec<_> = rows.into_iter().map(|r| r.coverage).collect();
        let assets = coverage_rows.len() as u64;
        let untagged = coverage_rows
            .iter()
            .filter(|r| r.sources.untagged())
            .count() as u64;
        let undated = coverage_rows.iter().filter(|r| r.undated).count() as u64;
        let cells = coverage_matrix(&coverage_rows, &dimensions, &universe, extras.written);
        // The window's whole days (UTC), today included, from the engagement rollups:
        // skipped when nobody asked.
        let since_day = Utc::now().timestamp().div_euclid(86_400) - (ENGAGEMENT_WINDOW_DAYS - 1);
        let engaged: HashMap<String, u64> = if extras.engagement {
            self.store.engagement_by_asset(since_day).await?
        } else {
            HashMap::new()
        };
        Ok(CoverageReport {
            cells: cells
                .into_iter()
                .map(|cell| CoverageReportCell {
                    engagements: cell
                        .ids(&coverage_rows)
                        .filter_map(|id| engaged.get(id))
                        .sum(),
                    cell,
                })
                .collect(),
            assets,
            undescribed,
            untagged,
            undated,
            rows: coverage_rows,
        })
    }

    /// Published assets last reviewed (else published) more than `older_than_days` ago,
    /// oldest first; evergreen ones only when asked. Undated assets are not stale (nothing
    /// says how old they are): the coverage report counts them apart.
    pub async fn stale_assets(
        &self,
        older_than_days: Option<u32>,
        filter: AssetFilter,
        include_evergreen: bool,
        first: usize,
    ) -> AppResult<Vec<StaleAsset>> {
        published_only(&filter)?;
        let cutoff = self.stale_before(older_than_days);
        let rows = self
            .read_index(move |index| index.audit_rows(&filter, cutoff))
            .await?;
        let mut stale: Vec<_> = rows
            .into_iter()
            .filter(|r| {
                if r.evergreen {
                    include_evergreen && r.dated_at.is_none_or(|t| t < cutoff)
                } else {
                    r.coverage.stale
                }
            })
            .collect();
        // Undated first (they have never been reviewed), then oldest.
        stale.sort_by(|a, b| {
            a.dated_at
                .cmp(&b.dated_at)
                .then_with(|| a.coverage.id.cmp(&b.coverage.id))
        });
        stale.truncate(first);
        let ids: Vec<String> = stale.iter().map(|r| r.coverage.id.clone()).collect();
        let mut assets: HashMap<String, Asset> = self
            .store
            .load_assets(&ids)
            .await?
            .into_iter()
            .map(|a| (a.id.to_string(), a))
            .collect();
        let now = Utc::now();
        Ok(stale
            .into_iter()
            .filter_map(|r| {
                let asset = assets.remove(&r.coverage.id)?;
                let dated_at = r.dated_at.and_then(|t| Utc.timestamp_opt(t, 0).single());
                Some(StaleAsset {
                    asset,
                    age_days: dated_at.map(|t| (now - t).num_days()),
                    dated_at,
                })
            })
            .collect())
    }
}

/// Neighbours that vote on a tag suggestion.
pub const TAG_NEIGHBOURS: usize = 10;

/// What tags are suggested for.
pub enum TagSubject {
    /// An asset of the library (any status), compared with the others.
    Asset(String),
    /// A new text, in a language, maybe with its format known.
    Text {
        text: String,
        language: Language,
        content_type: Option<crate::domain::ContentType>,
    },
}

/// The words and tags a suggestion compares, owned.
struct TagText {
    title: String,
    summary: String,
    body: String,
    url: String,
    language: Language,
    content_type: Option<crate::domain::ContentType>,
    concerns: Vec<crate::domain::Concern>,
    topics: Vec<String>,
}

impl TagText {
    fn of(asset: Asset) -> Self {
        Self {
            title: asset.title,
            summary: asset.summary,
            body: asset.body,
            url: asset.url,
            language: asset.language,
            content_type: Some(asset.content_type),
            concerns: if asset.evidence.concerns.source == crate::domain::TagSource::Declared {
                asset.concerns
            } else {
                Vec::new()
            },
            topics: asset.topics,
        }
    }

    fn similar_to(&self) -> crate::search::SimilarTo<'_> {
        crate::search::SimilarTo {
            title: &self.title,
            summary: &self.summary,
            body: &self.body,
            language: &self.language,
            concerns: &self.concerns,
            topics: &self.topics,
        }
    }
}

/// Declared assets (summed over stages) at which what they teach weighs as much as the
/// text's own cues.
const LABELS_TO_TRUST_EQUALLY: f64 = 200.0;
/// Neighbours with declared roles at which their vote weighs as much as the text's cues.
const NEIGHBOURS_TO_TRUST_EQUALLY: f64 = 6.0;

/// Assets near in meaning read for tagged neighbours: the declared ones among them vote.
const TAG_MEANING_WINDOW: usize = 100;

/// The `TAG_NEIGHBOURS` published assets nearest `target` in meaning among those with a
/// declared stage or role (never `exclude`), with their cosines (above 0), nearest first.
fn tagged_nearest(
    index: &crate::search::SearchIndex,
    vectors: &crate::meaning::Vectors,
    target: &[f32],
    exclude: &[String],
) -> AppResult<Vec<(Asset, f32)>> {
    let near = vectors.nearest(target, TAG_MEANING_WINDOW, |id| {
        !exclude.iter().any(|e| e == id)
    });
    let cosines: std::collections::HashMap<&str, f32> =
        near.iter().map(|(id, c)| (id.as_str(), *c)).collect();
    let ids: Vec<String> = near.iter().map(|(id, _)| id.clone()).collect();
    let mut tagged: Vec<(Asset, f32)> = index
        .admitted(&ids, &AssetFilter::default())?
        .into_iter()
        .filter(|a| {
            use crate::domain::TagSource::Declared;
            (a.evidence.stages.source == Declared && !a.stages.is_empty())
                || (a.evidence.roles.source == Declared && !a.roles.is_empty())
        })
        .filter_map(|a| {
            let cosine = cosines.get(a.id.as_str()).copied()?;
            (cosine > 0.0).then(|| ((*a).clone(), cosine))
        })
        .collect();
    tagged.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.id.cmp(&b.0.id)));
    tagged.truncate(TAG_NEIGHBOURS);
    Ok(tagged)
}

/// An asset with only its declared tags (the others cleared).
fn declared_only(asset: &Asset) -> Asset {
    use crate::domain::TagSource::Declared;
    let e = asset.evidence;
    let mut a = asset.clone();
    if e.stages.source != Declared {
        a.stages.clear();
    }
    if e.roles.source != Declared {
        a.roles.clear();
    }
    if e.industries.source != Declared {
        a.industries.clear();
    }
    if e.concerns.source != Declared {
        a.concerns.clear();
    }
    a
}

/// `(1 - share) * a + share * b`, value by value, best first; either alone when the other
/// says nothing.
fn blend<T: Copy + PartialEq>(a: &[(T, f64)], b: &[(T, f64)], share: f64) -> Vec<(T, f64)> {
    if b.is_empty() {
        return a.to_vec();
    }
    if a.is_empty() {
        return b.to_vec();
    }
    let mut out: Vec<(T, f64)> = Vec::new();
    for (v, c) in a
        .iter()
        .map(|(v, c)| (v, c * (1.0 - share)))
        .chain(b.iter().map(|(v, c)| (v, c * share)))
    {
        match out.iter_mut().find(|(o, _)| o == v) {
            Some((_, total)) => *total += c,
            None => out.push((*v, c)),
        }
    }
    out.retain(|(_, c)| *c >= crate::ranking::MIN_CONFIDENCE);
    out.sort_by(|x, y| y.1.total_cmp(&x.1));
    out
}

pub struct TagReport {
    pub suggestions: crate::ranking::TagSuggestions,
    /// The tagged assets that voted, most similar first.
    pub neighbours: Vec<(Asset, f32)>,
}

impl Library {
    /// Stages, roles, concerns and content types for an asset or a text, from its nearest
    /// tagged neighbours among published assets (never itself, nor `ignore`).
    pub async fn suggest_tags(
        &self,
        subject: TagSubject,
        ignore: Vec<String>,
    ) -> AppResult<TagReport> {
        let (text, mut exclude, target) = match subject {
            TagSubject::Asset(id) => {
                let asset = self
                    .asset(&id)
                    .await?
                    .ok_or_else(|| AppError::NotFound(format!("no asset with id {id:?}")))?;
                let target = self.asset_vector(&asset).await?;
                (TagText::of(asset), vec![id], target)
            }
            TagSubject::Text {
                text,
                language,
                content_type,
            } => {
                if text.trim().is_empty() {
                    return Err(AppError::bad_input("text: give some words to compare"));
                }
                let text = TagText {
                    title: String::new(),
                    summary: String::new(),
                    body: text,
                    url: String::new(),
                    language,
                    content_type,
                    concerns: Vec::new(),
                    topics: Vec::new(),
                };
                let target = self.query_vector(&text.body).await?;
                (text, Vec::new(), target)
            }
        };
        exclude.extend(ignore);
        let content_type = text.content_type;
        let inferred = crate::domain::infer_tags(&crate::domain::InferenceInput {
            title: &text.title,
            summary: &text.summary,
            body: &text.body,
            url: &text.url,
            content_type,
        });
        let vectors = self.meaning.vectors();
        let (neighbours, by_stage) = self
            .read_index(move |index| {
                let similar_to = text.similar_to();
                // With vectors, the nearest assets in meaning that carry declared tags;
                // else (or when none near does) the words' nearest.
                let by_meaning = match &target {
                    Some(target) => tagged_nearest(index, &vectors, target, &exclude)?,
                    None => Vec::new(),
                };
                let neighbours = if by_meaning.is_empty() {
                    index.similar(
                        &similar_to,
                        &AssetFilter::default(),
                        TAG_NEIGHBOURS,
                        &exclude,
                    )?
                } else {
                    by_meaning
                };
                let by_stage = index.stage_word_counts(&similar_to, &exclude)?;
                Ok((neighbours, by_stage))
            })
            .await?;
        // Only declared tags vote: a neighbour's default stage or inferred role is not a
        // label to learn from.
        let declared: Vec<Asset> = neighbours.iter().map(|(a, _)| declared_only(a)).collect();
        let votes: Vec<(&Asset, f64)> = declared
            .iter()
            .zip(&neighbours)
            .map(|(a, (_, s))| (a, f64::from(*s)))
            .collect();
        let mut suggestions = crate::ranking::suggest_tags(&votes, content_type);
        let learned_stages = crate::ranking::stage_naive_bayes(
            &by_stage.assets,
            &by_stage.words,
            &by_stage.tags,
            content_type,
        );
        // What the text says on its own, blended with what declared assets teach in
        // proportion to how many there are (none: the text alone).
        let labelled: u64 = by_stage.assets.iter().sum();
        let share = labelled as f64 / (labelled as f64 + LABELS_TO_TRUST_EQUALLY);
        let read = &inferred;
        suggestions.stages = blend(&read.stages, &learned_stages, share);
        let role_votes: f64 = declared.iter().filter(|a| !a.roles.is_empty()).count() as f64;
        let role_share = role_votes / (role_votes + NEIGHBOURS_TO_TRUST_EQUALLY);
        suggestions.roles = blend(&read.roles, &suggestions.roles, role_share);
        suggestions.concerns = blend(&read.concerns, &suggestions.concerns, role_share);
        Ok(TagReport {
            suggestions,
            neighbours,
        })
    }
}

/// The coverage views whose gaps an import reports: those of the coverage page.
pub const GAP_VIEWS: [[CoverageDimension; 2]; 3] = [
    [CoverageDimension::Stage, CoverageDimension::Role],
    [CoverageDimension::Stage, CoverageDimension::Industry],
    [CoverageDimension::Stage, CoverageDimension::ContentType],
];

/// How one coverage view would change.
pub struct GapChange {
    pub view: [CoverageDimension; 2],
    /// Cells empty now that the incoming assets would fill.
    pub closed: Vec<crate::domain::CoverageKey>,
    /// Cells filled now that would be empty (assets retired or retagged).
    pub opened: Vec<crate::domain::CoverageKey>,
}

/// Which gaps of the published library would close or open if `incoming` replaced the
/// stored assets with the same ids. Reads the library from the database (no index needed),
/// or starts from an empty library when there is no database yet.
pub async fn gap_changes(
    store: Option<&crate::store::Store>,
    incoming: &[Asset],
) -> AppResult<Vec<GapChange>> {
    use crate::domain::{CoverageRow, IndustrySlug};
    let mut before: Vec<CoverageRow> = Vec::new();
    let mut after_by_id: std::collections::BTreeMap<String, CoverageRow> = Default::default();
    let mut after_id: Option<String> = None;
    while let Some(store) = store {
        let page = store.assets_after(after_id.as_deref(), 1_000).await?;
        let Some(last) = page.last() else { break };
        after_id = Some(last.id.to_string());
        for asset in page.iter().filter(|a| a.status == AssetStatus::Published) {
            let row = CoverageRow::from_asset(asset);
            after_by_id.insert(row.id.clone(), row.clone());
            before.push(row);
        }
    }
    for asset in incoming {
        if asset.status == AssetStatus::Published {
            after_by_id.insert(asset.id.to_string(), CoverageRow::from_asset(asset));
        } else {
            after_by_id.remove(asset.id.as_str());
        }
    }
    let after: Vec<CoverageRow> = after_by_id.into_values().collect();
    let mut industries: std::collections::BTreeSet<IndustrySlug> = match store {
        Some(store) => store
            .industries()
            .await?
            .into_iter()
            .map(|i| i.slug)
            .collect(),
        None => Default::default(),
    };
    for asset in incoming {
        industries.extend(
            asset
                .industries
                .iter()
                .flat_map(IndustrySlug::self_and_ancestors),
        );
    }
    let universe = CoverageUniverse {
        industries: industries.into_iter().collect(),
        languages: Vec::new(),
    };
    Ok(GAP_VIEWS
        .iter()
        .map(|view| {
            let now = coverage_matrix(&before, view, &universe, false);
            let then = coverage_matrix(&after, view, &universe, false);
            let mut closed = Vec::new();
            let mut opened = Vec::new();
            for (a, b) in now.iter().zip(&then) {
                match (a.is_gap(), b.is_gap()) {
                    (true, false) => closed.push(b.key.clone()),
                    (false, true) => opened.push(b.key.clone()),
                    _ => {}
                }
            }
            GapChange {
                view: *view,
                closed,
                opened,
            }
        })
        .collect())
}
