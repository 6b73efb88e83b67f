//! Tag evidence: `asset_tag` now holds only the tags a content team declared. Stages read
//! from the text or defaulted from the content type are worked out again on every load.
//!
//! Before, an asset given no stages was stored with its content type's default stages, as
//! if declared. An asset that declares nothing else (no role, industry or concern) and whose
//! stored stages are exactly its type's defaults was almost surely one of those: its stage
//! rows are removed, so its stages are read from its text from now on. (A content team that
//! declared exactly the default stages and nothing else sees them inferred; declaring any
//! other tag, or a stage, restores them.) The change log tells every index to read those
//! assets again.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Each content type's default stages when this migration was written.
const DEFAULTS: &[(&str, &[&str])] = &[
    ("EBOOK", &["AWARENESS"]),
    ("BLOG_POST", &["AWARENESS"]),
    ("RESEARCH_REPORT", &["AWARENESS"]),
    ("INFOGRAPHIC", &["AWARENESS"]),
    ("VIDEO", &["AWARENESS"]),
    ("NEWSLETTER", &["AWARENESS"]),
    ("WHITEPAPER", &["AWARENESS", "CONSIDERATION"]),
    ("WEBINAR", &["AWARENESS", "CONSIDERATION"]),
    ("BUYER_GUIDE", &["CONSIDERATION"]),
    ("COMPARISON_GUIDE", &["CONSIDERATION"]),
    ("ROI_CALCULATOR", &["CONSIDERATION"]),
    ("ANALYST_REPORT", &["CONSIDERATION"]),
    ("SECURITY_WHITEPAPER", &["CONSIDERATION", "DECISION"]),
    ("CASE_STUDY", &["CONSIDERATION", "DECISION"]),
    ("DEMO", &["DECISION"]),
    ("FREE_TRIAL", &["DECISION"]),
    ("PRICING_SHEET", &["DECISION"]),
    ("IMPLEMENTATION_GUIDE", &["DECISION", "ADOPTION"]),
    ("API_DOCS", &["ADOPTION"]),
    ("TRAINING", &["ADOPTION"]),
];

/// The assets of one content type that look defaulted, as a subquery of ids.
fn defaulted(content_type: &str, stages: &[&str]) -> String {
    let list = stages
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let n = stages.len();
    format!(
        "SELECT a.id FROM asset a WHERE a.content_type = '{content_type}' \
         AND NOT EXISTS (SELECT 1 FROM asset_tag t WHERE t.asset_id = a.id \
             AND t.kind IN ('role', 'industry', 'concern')) \
         AND (SELECT COUNT(*) FROM asset_tag t WHERE t.asset_id = a.id AND t.kind = 'stage') = {n} \
         AND (SELECT COUNT(*) FROM asset_tag t WHERE t.asset_id = a.id AND t.kind = 'stage' \
             AND t.value IN ({list})) = {n}"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (content_type, stages) in DEFAULTS {
            let ids = defaulted(content_type, stages);
            db.execute_unprepared(&format!(
                "INSERT INTO change_log (entity, entity_id, op, recorded_at) \
                 SELECT 'asset', id, 'upsert', CURRENT_TIMESTAMP FROM ({ids}) d"
            ))
            .await?;
            db.execute_unprepared(&format!(
                "DELETE FROM asset_tag WHERE kind = 'stage' AND asset_id IN ({ids})"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // The default stages come back from the content type on load either way.
        Ok(())
    }
}
