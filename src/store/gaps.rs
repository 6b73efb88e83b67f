//! Coverage gaps a library write opens, announced as `COVERAGE_GAP_OPENED` in the write's
//! own transaction. A gap opens when a stage x role x industry cell that a published asset
//! served before the write is served by none after it (the counting rules of
//! `domain::coverage`). Only declared tags count here: the tags read from an untagged
//! asset's text move with every import and would open and close gaps at random.
//!
//! The work is done only while a webhook listens for gaps: the write remembers the
//! declared tags of every published asset it touches as they were, and at commit reads the
//! published assets of the stages involved to see which of those cells are still served.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect};

use super::entity::{asset, asset_tag, industry};
use crate::domain::{
    AssetStatus, GapCell, IndustryCell, IndustrySlug, OutboxEvent, Role, Stage, TaxonomyValue,
    WebhookEvent, cells_served,
};
use crate::error::AppResult;

/// Declared stages, roles and industries of one asset.
#[derive(Default)]
struct Tags {
    stages: Vec<Stage>,
    roles: Vec<Role>,
    industries: Vec<IndustrySlug>,
}

/// Most gap events one write announces (a cell each); more is a library emptied at once,
/// which the coverage report says better.
const MAX_GAPS: usize = 1_000;

/// What a library write remembers while a webhook listens for gaps.
pub(super) struct GapWatch {
    hooks: Vec<String>,
    before: BTreeMap<String, Tags>,
}

/// A watch, when some webhook listens for gaps.
pub(super) async fn watch(conn: &DatabaseTransaction) -> AppResult<Option<GapWatch>> {
    let hooks = super::webhooks::listeners(conn, WebhookEvent::CoverageGapOpened).await?;
    Ok((!hooks.is_empty()).then(|| GapWatch {
        hooks,
        before: BTreeMap::new(),
    }))
}

fn published() -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(asset::Column::Id)
        .from(asset::Entity)
        .and_where(asset::Column::Status.eq(AssetStatus::Published.name().to_lowercase()))
        .to_owned()
}

/// The declared tags of the published assets a filter on `asset_tag` picks.
async fn published_tags(
    conn: &DatabaseTransaction,
    pick: sea_orm::Condition,
) -> AppResult<BTreeMap<String, Tags>> {
    let rows: Vec<(String, String, String)> = asset_tag::Entity::find()
        .select_only()
        .column(asset_tag::Column::AssetId)
        .column(asset_tag::Column::Kind)
        .column(asset_tag::Column::Value)
        .filter(asset_tag::Column::Kind.is_in(["stage", "role", "industry"]))
        .filter(asset_tag::Column::AssetId.in_subquery(published()))
        .filter(pick)
        .into_tuple()
        .all(conn)
        .await?;
    let mut out: BTreeMap<String, Tags> = BTreeMap::new();
    for (id, kind, value) in rows {
        let tags = out.entry(id).or_default();
        // A value this build cannot read is skipped: gaps are a notice, not a check.
        match kind.as_str() {
            "stage" => tags.stages.extend(Stage::parse(&value).ok()),
            "role" => tags.roles.extend(Role::parse(&value).ok()),
            _ => tags.industries.extend(IndustrySlug::parse(&value).ok()),
        }
    }
    Ok(out)
}

impl GapWatch {
    /// Remembers the published assets among `ids` as they are now, before the write
    /// changes them (the first version seen of each stands).
    pub(super) async fn remember(
        &mut self,
        conn: &DatabaseTransaction,
        ids: &[String],
    ) -> AppResult<()> {
        let fresh: Vec<String> = ids
            .iter()
            .filter(|id| !self.before.contains_key(*id))
            .cloned()
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        for chunk in fresh.chunks(super::ROWS_PER_STATEMENT) {
            let pick =
                sea_orm::Condition::all().add(asset_tag::Column::AssetId.is_in(chunk.to_vec()));
            self.before.extend(published_tags(conn, pick).await?);
        }
        Ok(())
    }

    /// Announces every cell the remembered assets served that no published asset serves
    /// now, with the assets that served it.
    pub(super) async fn announce(self, conn: &DatabaseTransaction) -> AppResult<()> {
        if self.before.is_empty() {
            return Ok(());
        }
        let known: Vec<IndustrySlug> = industry::Entity::find()
            .select_only()
            .column(industry::Column::Slug)
            .into_tuple::<String>()
            .all(conn)
            .await?
            .iter()
            .filter_map(|s| IndustrySlug::parse(s).ok())
            .collect();
        let mut open: BTreeMap<GapCell, Vec<String>> = BTreeMap::new();
        for (id, t) in &self.before {
            for cell in cells_served(&t.stages, &t.roles, &t.industries, &known) {
                open.entry(cell).or_default().push(id.clone());
            }
        }
        let stages: BTreeSet<&'static str> = open.keys().map(|(s, _, _)| s.name()).collect();
        let pick = sea_orm::Condition::all().add(
            asset_tag::Column::AssetId.in_subquery(
                Query::select()
                    .column(asset_tag::Column::AssetId)
                    .from(asset_tag::Entity)
                    .and_where(asset_tag::Column::Kind.eq("stage"))
                    .and_where(asset_tag::Column::Value.is_in(stages))
                    .to_owned(),
            ),
        );
        for t in published_tags(conn, pick).await?.values() {
            for cell in cells_served(&t.stages, &t.roles, &t.industries, &known) {
                open.remove(&cell);
            }
            if open.is_empty() {
                return Ok(());
            }
        }
        let now = chrono::Utc::now();
        let mut events = Vec::new();
        for ((stage, role, industry), assets) in open.into_iter().take(MAX_GAPS) {
            let industry = match industry {
                IndustryCell::Industry(slug) => Some(slug.to_string()),
                IndustryCell::CrossIndustry => None,
            };
            events.push(OutboxEvent::new(
                super::webhooks::new_event_id()?,
                WebhookEvent::CoverageGapOpened,
                None,
                now,
                serde_json::json!({
                    "stage": stage.name(),
                    "role": role.name(),
                    "industry": industry,
                    "lastAssetIds": assets,
                }),
            ));
        }
        super::webhooks::enqueue(conn, &self.hooks, &events).await
    }
}
