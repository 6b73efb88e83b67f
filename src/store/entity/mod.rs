//! sea-orm entities, one per table of `migrations/`.

pub mod account;
pub mod api_key;
pub mod asset;
pub mod asset_embedding;
pub mod asset_popularity;
pub mod asset_tag;
pub mod audit_event;
pub mod change_log;
pub mod contact;
pub mod dismissal;
pub mod engagement;
pub mod experiment;
pub mod feedback_daily;
pub mod feedback_total;
pub mod impression;
pub mod industry;
pub mod ranking_profile;
pub mod safelisted_operation;
pub mod served_list;
pub mod server_secret;
pub mod share_link;
pub mod stage_change;
pub mod synonym_group;
pub mod webhook;
pub mod webhook_attempt;
pub mod webhook_delivery;
