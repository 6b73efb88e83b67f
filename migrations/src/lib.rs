//! Database schema of stagefit, as sea-orm migrations.
//!
//! This crate imports nothing from the server: a migration describes the tables as they were
//! when it was written, so later code changes cannot rewrite history. Only portable column
//! types and statements are used; the same migrations run on SQLite and PostgreSQL, except
//! where a database has something the other lacks (PostgreSQL's partitioned tables, in
//! migration 18).

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_library;
mod m20261123_000002_accounts;
mod m20261201_000003_access;
mod m20261201_000004_audit;
mod m20261201_000005_key_limits;
mod m20261201_000006_operations;
mod m20261202_000007_feedback;
mod m20261206_000008_hardening;
mod m20261206_000009_tag_evidence;
mod m20261206_000010_synonyms;
mod m20261206_000011_embeddings;
mod m20261206_000012_links;
mod m20261207_000013_image_url;
mod m20261207_000014_share_links;
mod m20261207_000015_webhooks;
mod m20261207_000016_crm_stages;
mod m20261207_000017_engagement_counters;
mod m20261208_000018_raw_event_retention;
mod m20261208_000019_weekly_rollups;
mod m20261208_000020_four_week_rollups;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_library::Migration),
            Box::new(m20261123_000002_accounts::Migration),
            Box::new(m20261201_000003_access::Migration),
            Box::new(m20261201_000004_audit::Migration),
            Box::new(m20261201_000005_key_limits::Migration),
            Box::new(m20261201_000006_operations::Migration),
            Box::new(m20261202_000007_feedback::Migration),
            Box::new(m20261206_000008_hardening::Migration),
            Box::new(m20261206_000009_tag_evidence::Migration),
            Box::new(m20261206_000010_synonyms::Migration),
            Box::new(m20261206_000011_embeddings::Migration),
            Box::new(m20261206_000012_links::Migration),
            Box::new(m20261207_000013_image_url::Migration),
            Box::new(m20261207_000014_share_links::Migration),
            Box::new(m20261207_000015_webhooks::Migration),
            Box::new(m20261207_000016_crm_stages::Migration),
            Box::new(m20261207_000017_engagement_counters::Migration),
            Box::new(m20261208_000018_raw_event_retention::Migration),
            Box::new(m20261208_000019_weekly_rollups::Migration),
            Box::new(m20261208_000020_four_week_rollups::Migration),
        ]
    }
}
