//! The coverage matrix: how many published assets serve each combination of stage, role,
//! industry, content type and language, and which combinations have none (gaps).
//!
//! Counting rules: an asset counts once in every cell its tags reach. An asset with no
//! roles serves every role, so it counts toward each; an asset with no industry counts
//! toward every industry and toward the cross-industry cell. Industries count where they
//! are named, not toward their parents.
//!
//! Each cell also lists the assets *written for* it, which answers "do we have decision
//! content for healthcare?" when cross-industry assets fill every industry's cell: an
//! asset naming the cell's role (role-less assets left out) and naming the cell's
//! industry or one of its sub-industries (cross-industry assets count only in the
//! cross-industry cell). Views over neither roles nor industries have no such difference.

use std::collections::{BTreeMap, BTreeSet};

use super::{ContentType, IndustrySlug, Language, Role, Stage, TagSource, TaxonomyValue};

/// A dimension of the coverage matrix: the one list the API, the CLI and the pages name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CoverageDimension {
    Stage,
    Role,
    Industry,
    ContentType,
    Language,
}

impl CoverageDimension {
    pub const ALL: [CoverageDimension; 5] = [
        CoverageDimension::Stage,
        CoverageDimension::Role,
        CoverageDimension::Industry,
        CoverageDimension::ContentType,
        CoverageDimension::Language,
    ];

    /// As the command line writes it (`content-type`).
    pub fn name(self) -> &'static str {
        match self {
            CoverageDimension::Stage => "stage",
            CoverageDimension::Role => "role",
            CoverageDimension::Industry => "industry",
            CoverageDimension::ContentType => "content-type",
            CoverageDimension::Language => "language",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        let wanted = raw.trim().to_ascii_lowercase().replace('_', "-");
        Self::ALL
            .into_iter()
            .find(|d| d.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|d| d.name()).collect();
                format!("{raw:?} is not a dimension; one of {}", names.join(", "))
            })
    }
}

/// What the index says of one published asset, as coverage needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct CoverageRow {
    pub id: String,
    pub stages: Vec<Stage>,
    pub roles: Vec<Role>,
    pub industries: Vec<IndustrySlug>,
    pub content_type: ContentType,
    pub language: Language,
    /// Dated and not reviewed (else published) within the threshold; never set for an
    /// undated asset, which is `undated` instead.
    pub stale: bool,
    pub undated: bool,
    /// Where the stages, roles and industries come from.
    pub sources: TagSources,
}

/// The source of a row's stages, roles and industries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagSources {
    pub stages: TagSource,
    pub roles: TagSource,
    pub industries: TagSource,
}

impl TagSources {
    pub const DECLARED: Self = Self {
        stages: TagSource::Declared,
        roles: TagSource::Declared,
        industries: TagSource::Declared,
    };

    /// As one number (two bits a kind), for an index column.
    pub fn pack(self) -> u64 {
        let bits = |s: TagSource| match s {
            TagSource::Declared => 0u64,
            TagSource::Inferred => 1,
            TagSource::Default => 2,
        };
        bits(self.stages) | bits(self.roles) << 2 | bits(self.industries) << 4
    }

    pub fn unpack(packed: u64) -> Self {
        let source = |b: u64| match b & 3 {
            1 => TagSource::Inferred,
            2 => TagSource::Default,
            _ => TagSource::Declared,
        };
        Self {
            stages: source(packed),
            roles: source(packed >> 2),
            industries: source(packed >> 4),
        }
    }

    /// Whether nothing of the asset was declared.
    pub fn untagged(self) -> bool {
        self.stages != TagSource::Declared
            && self.roles != TagSource::Declared
            && self.industries != TagSource::Declared
    }

    /// The weakest source among the tag dimensions of a view (declared when it has none).
    fn weakest(self, dims: &BTreeSet<CoverageDimension>) -> TagSource {
        let rank = |s: TagSource| match s {
            TagSource::Declared => 0,
            TagSource::Inferred => 1,
            TagSource::Default => 2,
        };
        dims.iter()
            .filter_map(|d| match d {
                CoverageDimension::Stage => Some(self.stages),
                CoverageDimension::Role => Some(self.roles),
                CoverageDimension::Industry => Some(self.industries),
                _ => None,
            })
            .max_by_key(|s| rank(*s))
            .unwrap_or(TagSource::Declared)
    }
}

impl TagSources {
    pub fn from_asset(asset: &super::Asset) -> Self {
        let e = &asset.evidence;
        Self {
            stages: e.stages.source,
            roles: e.roles.source,
            industries: e.industries.source,
        }
    }
}

impl CoverageRow {
    /// An asset as coverage counts it (not stale: the caller knows the threshold).
    pub fn from_asset(asset: &super::Asset) -> Self {
        Self {
            id: asset.id.to_string(),
            stages: asset.stages.clone(),
            roles: asset.roles.clone(),
            industries: asset.industries.clone(),
            content_type: asset.content_type,
            language: asset.language.clone(),
            stale: false,
            undated: asset.last_reviewed().is_none() && !asset.evergreen,
            sources: TagSources::from_asset(asset),
        }
    }
}

/// An industry cell: a named industry, or the assets written for every industry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IndustryCell {
    Industry(IndustrySlug),
    CrossIndustry,
}

/// One combination; a dimension not asked for is `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CoverageKey {
    pub stage: Option<Stage>,
    pub role: Option<Role>,
    pub industry: Option<IndustryCell>,
    pub content_type: Option<ContentType>,
    pub language: Option<Language>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CoverageCell {
    pub key: CoverageKey,
    /// The cell's assets, as indexes of the rows given to [`coverage_matrix`], in id order.
    pub rows: Vec<u32>,
    /// The assets written for the cell (see the module doc), the same way; `None` unless
    /// the matrix was asked for them (they cost a second pass over the rows).
    pub specific_rows: Option<Vec<u32>>,
    pub stale_count: u64,
    pub undated_count: u64,
    /// Of `rows`, how many are in the cell by declared tags, by tags read from the text,
    /// and by defaults (the weakest source among the view's stage, role and industry).
    pub declared_count: u64,
    pub inferred_count: u64,
    pub default_count: u64,
}

impl CoverageCell {
    pub fn count(&self) -> usize {
        self.rows.len()
    }

    pub fn is_gap(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn specific_count(&self) -> Option<usize> {
        self.specific_rows.as_ref().map(Vec::len)
    }

    /// No asset is written for the cell, though general ones may serve it (`false` when
    /// the matrix was not asked for written assets).
    pub fn is_specific_gap(&self) -> bool {
        self.specific_rows.as_ref().is_some_and(Vec::is_empty)
    }

    /// The ids of the cell's assets, in order.
    pub fn ids<'a>(&'a self, rows: &'a [CoverageRow]) -> impl Iterator<Item = &'a str> + 'a {
        self.rows.iter().map(|i| rows[*i as usize].id.as_str())
    }

    /// The ids of the assets written for the cell, in order (none when not asked for).
    pub fn specific_ids<'a>(
        &'a self,
        rows: &'a [CoverageRow],
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.specific_rows
            .iter()
            .flatten()
            .map(|i| rows[*i as usize].id.as_str())
    }
}

/// The values each dimension ranges over: stages, roles and content types are fixed; the
/// industries and languages are the library's.
pub struct CoverageUniverse {
    pub industries: Vec<IndustrySlug>,
    pub languages: Vec<Language>,
}

/// Every cell of the cross product of `dimensions` (in the order given by
/// [`CoverageDimension`]), in key order, empty ones included; with the assets written for
/// each cell when `with_written`.
pub fn coverage_matrix(
    rows: &[CoverageRow],
    dimensions: &[CoverageDimension],
    universe: &CoverageUniverse,
    with_written: bool,
) -> Vec<CoverageCell> {
    let dims: BTreeSet<CoverageDimension> = dimensions.iter().copied().collect();
    let mut keys = vec![CoverageKey::default()];
    for dim in &dims {
        let mut next = Vec::new();
        for key in &keys {
            for value in universe_values(*dim, universe) {
                let mut k = key.clone();
                set(&mut k, value);
                next.push(k);
            }
        }
        keys = next;
    }
    // Rows by index: a cell holds 4 bytes per asset, not a copy of its id.
    let mut cells: BTreeMap<CoverageKey, Members> =
        keys.into_iter().map(|k| (k, Members::default())).collect();
    for (index, row) in rows.iter().enumerate() {
        for key in reached_keys(&dims, |dim| row_values(row, dim, universe)) {
            if let Some(members) = cells.get_mut(&key) {
                members.all.push(index as u32);
                members.stale += u64::from(row.stale);
                members.undated += u64::from(row.undated);
                match row.sources.weakest(&dims) {
                    TagSource::Declared => members.declared += 1,
                    TagSource::Inferred => members.inferred += 1,
                    TagSource::Default => members.defaulted += 1,
                }
            }
        }
        if !with_written {
            continue;
        }
        for key in reached_keys(&dims, |dim| specific_values(row, dim)) {
            if let Some(members) = cells.get_mut(&key) {
                members.specific.push(index as u32);
            }
        }
    }
    let by_id = |a: &u32, b: &u32| rows[*a as usize].id.cmp(&rows[*b as usize].id);
    cells
        .into_iter()
        .map(|(key, mut members)| {
            members.all.sort_by(by_id);
            members.specific.sort_by(by_id);
            CoverageCell {
                key,
                rows: members.all,
                specific_rows: with_written.then_some(members.specific),
                stale_count: members.stale,
                undated_count: members.undated,
                declared_count: members.declared,
                inferred_count: members.inferred,
                default_count: members.defaulted,
            }
        })
        .collect()
}

#[derive(Default)]
struct Members {
    all: Vec<u32>,
    specific: Vec<u32>,
    stale: u64,
    undated: u64,
    declared: u64,
    inferred: u64,
    defaulted: u64,
}

/// Every key of the cross product of one row's values per dimension, each once.
fn reached_keys(
    dims: &BTreeSet<CoverageDimension>,
    values_of: impl Fn(CoverageDimension) -> Vec<Value>,
) -> Vec<CoverageKey> {
    let mut reached = vec![CoverageKey::default()];
    for dim in dims {
        let values = values_of(*dim);
        let mut next = Vec::with_capacity(reached.len() * values.len());
        for key in &reached {
            for value in &values {
                let mut k = key.clone();
                set(&mut k, value.clone());
                next.push(k);
            }
        }
        reached = next;
    }
    reached.sort();
    reached.dedup();
    reached
}

#[derive(Clone)]
enum Value {
    Stage(Stage),
    Role(Role),
    Industry(IndustryCell),
    ContentType(ContentType),
    Language(Language),
}

fn set(key: &mut CoverageKey, value: Value) {
    match value {
        Value::Stage(s) => key.stage = Some(s),
        Value::Role(r) => key.role = Some(r),
        Value::Industry(i) => key.industry = Some(i),
        Value::ContentType(c) => key.content_type = Some(c),
        Value::Language(l) => key.language = Some(l),
    }
}

fn universe_values(dim: CoverageDimension, universe: &CoverageUniverse) -> Vec<Value> {
    match dim {
        CoverageDimension::Stage => Stage::ALL.iter().map(|s| Value::Stage(*s)).collect(),
        CoverageDimension::Role => Role::ALL.iter().map(|r| Value::Role(*r)).collect(),
        CoverageDimension::Industry => universe
            .industries
            .iter()
            .map(|i| Value::Industry(IndustryCell::Industry(i.clone())))
            .chain([Value::Industry(IndustryCell::CrossIndustry)])
            .collect(),
        CoverageDimension::ContentType => ContentType::ALL
            .iter()
            .map(|c| Value::ContentType(*c))
            .collect(),
        CoverageDimension::Language => universe
            .languages
            .iter()
            .map(|l| Value::Language(l.clone()))
            .collect(),
    }
}

/// The values of the cells a row counts in: those it is written for, plus every role for
/// a role-less row, and every industry for a cross-industry one. A named industry counts
/// where it is named only.
fn row_values(
    row: &CoverageRow,
    dim: CoverageDimension,
    universe: &CoverageUniverse,
) -> Vec<Value> {
    match dim {
        CoverageDimension::Role if row.roles.is_empty() => {
            Role::ALL.iter().map(|r| Value::Role(*r)).collect()
        }
        CoverageDimension::Industry if row.industries.is_empty() => {
            universe_values(CoverageDimension::Industry, universe)
        }
        CoverageDimension::Industry => row
            .industries
            .iter()
            .map(|i| Value::Industry(IndustryCell::Industry(i.clone())))
            .collect(),
        other => specific_values(row, other),
    }
}

/// The values of the cells a row is written for: the roles it names (none when it names
/// none), the industries it names and their ancestors (the cross-industry cell when it
/// names none); stages, content type and language as they are.
fn specific_values(row: &CoverageRow, dim: CoverageDimension) -> Vec<Value> {
    match dim {
        CoverageDimension::Role => row.roles.iter().map(|r| Value::Role(*r)).collect(),
        CoverageDimension::Industry if row.industries.is_empty() => {
            vec![Value::Industry(IndustryCell::CrossIndustry)]
        }
        CoverageDimension::Industry => row
            .industries
            .iter()
            .flat_map(IndustrySlug::self_and_ancestors)
            .map(|i| Value::Industry(IndustryCell::Industry(i)))
            .collect(),
        CoverageDimension::Stage => row.stages.iter().map(|s| Value::Stage(*s)).collect(),
        CoverageDimension::ContentType => vec![Value::ContentType(row.content_type)],
        CoverageDimension::Language => vec![Value::Language(row.language.clone())],
    }
}

/// A cell of the stage x role x industry matrix: what `COVERAGE_GAP_OPENED` reports.
pub type GapCell = (Stage, Role, IndustryCell);

/// The stage x role x industry cells an asset of these tags counts in, by the counting
/// rules above: no roles serve every role; no industry serves every industry of `known`
/// and the cross-industry cell. An asset without a stage is in no cell.
pub fn cells_served(
    stages: &[Stage],
    roles: &[Role],
    industries: &[IndustrySlug],
    known: &[IndustrySlug],
) -> BTreeSet<GapCell> {
    use super::TaxonomyValue;
    let roles: &[Role] = if roles.is_empty() { Role::ALL } else { roles };
    let industries: Vec<IndustryCell> = if industries.is_empty() {
        known
            .iter()
            .cloned()
            .map(IndustryCell::Industry)
            .chain([IndustryCell::CrossIndustry])
            .collect()
    } else {
        industries
            .iter()
            .cloned()
            .map(IndustryCell::Industry)
            .collect()
    };
    let mut cells = BTreeSet::new();
    for stage in stages {
        for role in roles {
            for industry in &industries {
                cells.insert((*stage, *role, industry.clone()));
            }
        }
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        id: &str,
        stages: &[Stage],
        roles: &[Role],
        industries: &[&str],
        stale: bool,
    ) -> CoverageRow {
        CoverageRow {
            id: id.to_owned(),
            stages: stages.to_vec(),
            roles: roles.to_vec(),
            industries: industries
                .iter()
                .map(|i| IndustrySlug::parse(i).unwrap())
                .collect(),
            content_type: ContentType::Ebook,
            language: Language::english(),
            stale,
            undated: false,
            sources: TagSources::DECLARED,
        }
    }

    #[test]
    fn role_less_and_industry_less_assets_count_everywhere_they_serve() {
        let rows = [
            row("a", &[Stage::Awareness], &[], &[], true),
            row(
                "b",
                &[Stage::Awareness, Stage::Decision],
                &[Role::Finance],
                &["retail"],
                false,
            ),
        ];
        let universe = CoverageUniverse {
            industries: vec![
                IndustrySlug::parse("retail").unwrap(),
                IndustrySlug::parse("saas").unwrap(),
            ],
            languages: vec![Language::english()],
        };
        let cells = coverage_matrix(
            &rows,
            &[CoverageDimension::Role, CoverageDimension::Stage],
            &universe,
            false,
        );
        assert_eq!(cells.len(), 25);
        let cell = |stage, role| {
            let c = cells
                .iter()
                .find(|c| c.key.stage == Some(stage) && c.key.role == Some(role))
                .unwrap();
            (c.ids(&rows).collect::<Vec<_>>(), c.stale_count)
        };
        assert_eq!(cell(Stage::Awareness, Role::Finance), (vec!["a", "b"], 1));
        assert_eq!(cell(Stage::Awareness, Role::Procurement), (vec!["a"], 1));
        assert_eq!(cell(Stage::Decision, Role::Finance), (vec!["b"], 0));
        assert!(cell(Stage::Decision, Role::Procurement).0.is_empty());
        let filled = cells.iter().filter(|c| !c.is_gap()).count();
        assert_eq!(filled, 6);

        let by_industry = coverage_matrix(&rows, &[CoverageDimension::Industry], &universe, false);
        let ids: Vec<(Option<IndustryCell>, Vec<String>)> = by_industry
            .iter()
            .map(|c| {
                (
                    c.key.industry.clone(),
                    c.ids(&rows).map(str::to_owned).collect(),
                )
            })
            .collect();
        assert_eq!(
            ids,
            [
                (
                    Some(IndustryCell::Industry(
                        IndustrySlug::parse("retail").unwrap()
                    )),
                    vec!["a".to_owned(), "b".to_owned()]
                ),
                (
                    Some(IndustryCell::Industry(IndustrySlug::parse("saas").unwrap())),
                    vec!["a".to_owned()]
                ),
                (Some(IndustryCell::CrossIndustry), vec!["a".to_owned()]),
            ]
        );
    }

    #[test]
    fn cells_tell_assets_written_for_them_from_general_ones() {
        let rows = [
            // For every role and industry: serves every cell, written for none but the
            // cross-industry one.
            row("general", &[Stage::Decision], &[], &[], false),
            row(
                "payments-cfo",
                &[Stage::Decision],
                &[Role::Finance],
                &["financial-services/payments"],
                false,
            ),
            row("retail-any", &[Stage::Decision], &[], &["retail"], false),
        ];
        let slug = |s: &str| IndustrySlug::parse(s).unwrap();
        let universe = CoverageUniverse {
            industries: vec![
                slug("financial-services"),
                slug("financial-services/payments"),
                slug("healthcare"),
                slug("retail"),
            ],
            languages: vec![Language::english()],
        };
        let cells = coverage_matrix(
            &rows,
            &[CoverageDimension::Stage, CoverageDimension::Industry],
            &universe,
            true,
        );
        let decision = |industry: Option<&str>| {
            let key = industry.map_or(IndustryCell::CrossIndustry, |i| {
                IndustryCell::Industry(slug(i))
            });
            let c = cells
                .iter()
                .find(|c| {
                    c.key.stage == Some(Stage::Decision) && c.key.industry == Some(key.clone())
                })
                .unwrap();
            (
                c.ids(&rows).collect::<Vec<_>>(),
                c.specific_ids(&rows).collect::<Vec<_>>(),
            )
        };
        // Healthcare is served, but nothing is written for it: a specific gap.
        assert_eq!(decision(Some("healthcare")), (vec!["general"], vec![]));
        // A sub-industry's asset is written for its parent too.
        assert_eq!(
            decision(Some("financial-services")),
            (vec!["general"], vec!["payments-cfo"])
        );
        assert_eq!(
            decision(Some("financial-services/payments")),
            (vec!["general", "payments-cfo"], vec!["payments-cfo"])
        );
        assert_eq!(decision(None), (vec!["general"], vec!["general"]));

        let by_role = coverage_matrix(
            &rows,
            &[CoverageDimension::Stage, CoverageDimension::Role],
            &universe,
            true,
        );
        let role = |r: Role| {
            let c = by_role
                .iter()
                .find(|c| c.key.stage == Some(Stage::Decision) && c.key.role == Some(r))
                .unwrap();
            (c.count(), c.specific_count().unwrap(), c.is_specific_gap())
        };
        assert_eq!(role(Role::Finance), (3, 1, false));
        assert_eq!(role(Role::Procurement), (2, 0, true));
        // Without roles or industries in the view, every asset is written for its cell.
        let by_stage = coverage_matrix(&rows, &[CoverageDimension::Stage], &universe, true);
        assert!(
            by_stage
                .iter()
                .all(|c| Some(&c.rows) == c.specific_rows.as_ref())
        );
        // Not asked for, they are not computed, and no cell claims a written gap.
        let plain = coverage_matrix(&rows, &[CoverageDimension::Role], &universe, false);
        assert!(
            plain
                .iter()
                .all(|c| c.specific_rows.is_none() && !c.is_specific_gap())
        );
    }

    #[test]
    fn an_asset_without_roles_or_industry_serves_every_cell_of_its_stages() {
        use crate::domain::TaxonomyValue;
        let health = IndustrySlug::parse("healthcare").unwrap();
        let retail = IndustrySlug::parse("retail").unwrap();
        let known = [health.clone(), retail.clone()];
        let open = cells_served(&[Stage::Decision], &[], &[], &known);
        assert_eq!(open.len(), Role::ALL.len() * 3);
        assert!(open.contains(&(Stage::Decision, Role::ALL[0], IndustryCell::CrossIndustry)));
        let named = cells_served(
            &[Stage::Decision, Stage::Adoption],
            &[Role::ALL[1]],
            std::slice::from_ref(&health),
            &known,
        );
        assert_eq!(
            named.into_iter().collect::<Vec<_>>(),
            [
                (
                    Stage::Decision,
                    Role::ALL[1],
                    IndustryCell::Industry(health.clone())
                ),
                (
                    Stage::Adoption,
                    Role::ALL[1],
                    IndustryCell::Industry(health)
                ),
            ]
        );
        assert!(cells_served(&[], &[], &[], &known).is_empty());
    }
}
