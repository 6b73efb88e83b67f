//! The GraphQL schema. Resolvers translate between GraphQL types and domain types and call
//! the services; they never touch the database or the index directly.
//!
//! Queries answered from the index carry `cache_control(max_age = 60)`: the HTTP layer may
//! answer them again from its response cache until the index changes or a minute passes
//! (freshness moves with the clock). Reads from the database and every mutation carry
//! `no_cache`. A field without either leaves the decision to the others in the request.

mod access;
mod accounts;
mod activity;
mod audit;
mod crm;
mod feedback;
mod keys;
mod library;
pub mod limits;
mod operation;
mod recommend;
mod share;
mod types;
mod webhooks;

use async_graphql::{EmptySubscription, ErrorExtensions, MergedObject, Schema};

use crate::error::AppError;
use std::sync::Arc;

use crate::services::{Access, Library};

pub use access::{RULES, Rule, Who, check as check_access, sees_drafts};
pub use operation::{audited_mutation, operation_label, running_operation, runs_mutation};
pub use types::{AssetFilterInput, AssetObject};

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    library::LibraryQuery,
    recommend::RecommendQuery,
    accounts::AccountQuery,
    audit::AuditQuery,
    keys::KeysQuery,
    feedback::FeedbackQuery,
    share::ShareQuery,
    webhooks::WebhookQuery,
    crm::CrmQuery,
    activity::ActivityQuery,
);

#[derive(MergedObject, Default)]
pub struct MutationRoot(
    library::LibraryMutation,
    accounts::AccountMutation,
    keys::KeysMutation,
    feedback::FeedbackMutation,
    share::ShareMutation,
    webhooks::WebhookMutation,
    crm::CrmMutation,
);

pub type AppSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Deepest selection a request may make; GraphiQL's introspection query needs 13.
pub const MAX_DEPTH: usize = 16;
/// Upper bound on a request's cost (see [`cost`]), checked with validation, before
/// anything runs: over it, `QUERY_TOO_COMPLEX`.
pub const MAX_COMPLEXITY: usize = 5_000;

/// The cost model behind `MAX_COMPLEXITY`. A field costs 1 and a list field multiplies what
/// it selects by the page it asks for, so `first: 100` costs a hundred times its
/// selection. A ranking or a search also costs [`cost::RANKING`] for the work before the
/// first item. One `recommendations(first: 100)` with the usual fields costs about 1,200;
/// 300 aliases of it are refused before any of them runs.
pub mod cost {
    /// What a recommendation list, a search or an audit costs besides its items. What
    /// the cost cannot see (counting every match, facets) `limits::MAX_WORK` bounds.
    pub const RANKING: usize = 50;

    /// A ranked or searched page: its fixed work plus each item's selection.
    pub fn page(first: Option<i32>, default: i32, child_complexity: usize) -> usize {
        let items = usize::try_from(first.unwrap_or(default))
            .unwrap_or(0)
            .min(1_000);
        RANKING.saturating_add(items.saturating_mul(child_complexity))
    }
}

pub fn build_schema(library: Option<Library>, access: Option<Arc<Access>>) -> AppSchema {
    let mut builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
    .limit_directives(limits::MAX_DIRECTIVES);
    if let Some(library) = library {
        builder = builder.data(library);
    }
    if let Some(access) = access {
        builder = builder.data(access);
    }
    builder.finish()
}

/// The SDL that `schema.graphql` holds.
/// Whether `text` is an executable GraphQL document with at least one operation: what the
/// safelist accepts.
pub fn check_document(text: &str) -> Result<(), String> {
    let parsed = async_graphql::parser::parse_query(text)
        .map_err(|e| format!("not a GraphQL document: {e}"))?;
    if parsed.operations.iter().next().is_none() {
        return Err("the document holds no operation".to_owned());
    }
    Ok(())
}

pub fn sdl() -> String {
    build_schema(None, None).sdl()
}

/// The error type of every resolver. It deliberately has no `Display`, so async-graphql's
/// blanket conversion from displayable errors (which would drop `extensions.code`) can
/// never apply: each `AppError` goes through the code table below.
#[derive(Clone, Debug)]
pub struct ApiError(async_graphql::Error);

pub type ApiResult<T> = Result<T, ApiError>;

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        err.0
    }
}

impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        ApiError(to_graphql_error(err))
    }
}

fn to_graphql_error(err: AppError) -> async_graphql::Error {
    let code = err.code().as_str();
    match err {
        AppError::Internal(source) => {
            tracing::error!(error = %format!("{source:#}"), "internal error");
            async_graphql::Error::new("internal error").extend_with(|_, e| e.set("code", code))
        }
        AppError::Unavailable(source) => {
            tracing::warn!(error = %format!("{source:#}"), "the database is unavailable");
            async_graphql::Error::new("the database is unavailable; retry shortly")
                .extend_with(|_, e| e.set("code", code))
        }
        AppError::BadUserInput { message, problems } => async_graphql::Error::new(message)
            .extend_with(|_, e| {
                e.set("code", code);
                if !problems.is_empty() {
                    let list: Vec<async_graphql::Value> = problems
                        .iter()
                        .map(|p| {
                            let mut m = async_graphql::indexmap::IndexMap::new();
                            m.insert(
                                async_graphql::Name::new("index"),
                                async_graphql::Value::from(p.position),
                            );
                            if let Some(id) = &p.id {
                                m.insert(
                                    async_graphql::Name::new("id"),
                                    async_graphql::Value::from(id.as_str()),
                                );
                            }
                            if let Some(field) = &p.field {
                                m.insert(
                                    async_graphql::Name::new("field"),
                                    async_graphql::Value::from(field.as_str()),
                                );
                            }
                            m.insert(
                                async_graphql::Name::new("message"),
                                async_graphql::Value::from(p.message.as_str()),
                            );
                            async_graphql::Value::Object(m)
                        })
                        .collect();
                    e.set("problems", async_graphql::Value::List(list));
                }
            }),
        other => {
            async_graphql::Error::new(other.to_string()).extend_with(|_, e| e.set("code", code))
        }
    }
}
