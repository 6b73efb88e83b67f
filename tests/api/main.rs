//! The integration suite: one binary that starts the real server on port 0 with a temporary
//! SQLite database and index directory and talks GraphQL over HTTP, plus the real CLI.

// A failed unwrap is a failed test, with its line: what a test crate wants.
#![allow(clippy::unwrap_used)]

mod support;

mod access;
mod accounts;
mod activity;
mod also_read;
mod architecture;
mod audit;
mod browser;
mod cache;
mod cli;
mod cli_errors;
mod concurrency;
mod crash;
mod crm;
mod embedder;
mod feedback;
mod fuzz;
mod hardening;
mod http_protocol;
mod judged;
mod library;
mod meaning;
mod observability;
mod outage;
mod recommend;
mod replicas;
mod restart;
mod retention;
mod schema;
mod share;
mod shutdown;
mod untagged;
mod webhooks;
