//! stagefit: a self-hosted content-recommendation GraphQL API for B2B buying journeys.
//! See ARCHITECTURE.md for the map of these modules.

pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod generate;
pub mod graphql;
pub mod http;
pub mod import;
pub mod meaning;
pub mod metrics;
pub mod ranking;
pub mod search;
pub mod services;
pub mod state;
pub mod store;
