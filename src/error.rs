//! The one table of stable error codes. Every layer maps its failures into `AppError`; the
//! GraphQL layer turns it into `extensions.code`. Internal errors are logged with their
//! context and reach the client only as "internal error".

use std::fmt;

/// A stable, client-facing error code (`extensions.code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    BadUserInput,
    NotFound,
    Unauthenticated,
    Forbidden,
    PayloadTooLarge,
    RateLimited,
    Timeout,
    QueryTooComplex,
    /// The database cannot be reached right now; retrying later may succeed.
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::QueryTooComplex => "QUERY_TOO_COMPLEX",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

/// One problem in a batch of input: which item (0-based position, or 1-based line of a
/// file), which field, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputProblem {
    /// 0-based index in a GraphQL list, or 1-based line number in a file.
    pub position: u64,
    pub id: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for InputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{message}")]
    BadUserInput {
        message: String,
        problems: Vec<InputProblem>,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    /// The database cannot be reached (down, restarting, unreachable, out of connections).
    #[error("the database is unavailable; retry shortly")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn bad_input(message: impl Into<String>) -> Self {
        AppError::BadUserInput {
            message: message.into(),
            problems: Vec::new(),
        }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(err.into())
    }

    /// The error as the command line shows it to its trusted local user: an internal
    /// error with its whole chain of causes instead of the masked "internal error" that
    /// GraphQL clients get.
    pub fn unmasked(self) -> anyhow::Error {
        match self {
            AppError::Internal(err) | AppError::Unavailable(err) => err,
            other => anyhow::Error::new(other),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::BadUserInput { .. } => ErrorCode::BadUserInput,
            AppError::NotFound(_) => ErrorCode::NotFound,
            AppError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            AppError::Forbidden(_) => ErrorCode::Forbidden,
            AppError::Unavailable(_) => ErrorCode::Unavailable,
            AppError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        if unreachable(&err) {
            AppError::Unavailable(anyhow::Error::new(err).context("database"))
        } else {
            AppError::Internal(anyhow::Error::new(err).context("database"))
        }
    }
}

/// Whether a database error says the database cannot be reached, rather than that a
/// statement failed: no connection to be had, a connection that broke, or a server
/// shutting down or starting up (SQLSTATE class 08, 57P01-57P03).
fn unreachable(err: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    let runtime = match err {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx) = runtime else {
        return matches!(err, DbErr::Conn(_));
    };
    use sea_orm::sqlx::Error;
    match sqlx.as_ref() {
        Error::Io(_) | Error::PoolTimedOut | Error::PoolClosed | Error::WorkerCrashed => true,
        Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
        }),
        Error::Protocol(_) | Error::Tls(_) => true,
        _ => matches!(err, DbErr::Conn(_)),
    }
}

impl From<tantivy::TantivyError> for AppError {
    fn from(err: tantivy::TantivyError) -> Self {
        AppError::Internal(anyhow::Error::new(err).context("search index"))
    }
}

impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        AppError::Internal(err)
    }
}

pub type AppResult<T> = Result<T, AppError>;
