//! GraphQL over HTTP, following the GraphQL-over-HTTP specification:
//!
//! - a request that is not well-formed (a body that is not JSON, a missing or mistyped
//!   `query`, `operationName`, `variables` or `extensions`) gets 400 whatever the media type;
//! - `Accept: application/graphql-response+json` gets that media type, and a document that
//!   does not parse or validate, or variables that do not coerce, get 400 with no `data`
//!   entry;
//! - `Accept: application/json`, `*/*` or no Accept header gets `application/json`, and the
//!   same document errors get 200 with the problem in `errors`;
//! - an Accept header naming neither gets 406; a POST that is not JSON gets 415;
//! - GET runs queries only: a mutation over GET gets 405.
//!
//! Every error carries `extensions.code`. Repeated queries may be answered from the
//! response cache (`cache.rs`); the `x-cache` header says whether one was.

use std::collections::HashMap;
use std::time::Duration;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ErrorExtensionValues, ServerError, Variables};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tracing::Instrument;

use super::AppState;
use super::cache::{CacheKey, Method, Outcome};
use crate::domain::Scope;
use crate::error::{AppError, ErrorCode};
use crate::graphql::{Who, audited_mutation, check_access, limits, operation_label, runs_mutation};
use crate::services::Credential;
use quick_cache::Weighter;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MediaType {
    GraphqlResponseJson,
    Json,
}

impl MediaType {
    fn content_type(self) -> &'static str {
        match self {
            MediaType::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
            MediaType::Json => "application/json; charset=utf-8",
        }
    }

    /// Status for a document that does not parse or validate, or variables that do not
    /// coerce.
    fn document_error_status(self) -> StatusCode {
        match self {
            MediaType::GraphqlResponseJson => StatusCode::BAD_REQUEST,
            MediaType::Json => StatusCode::OK,
        }
    }
}

/// Picks the response media type from the Accept header, by quality, preferring the
/// GraphQL media type on ties; `None` when the client accepts neither.
fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(MediaType::Json);
    };
    if accept.trim().is_empty() {
        return Some(MediaType::Json);
    }
    let mut best: Option<(f32, MediaType)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for param in parts {
            if let Some(v) = param.trim().strip_prefix("q=") {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        let candidate = match media.as_str() {
            GRAPHQL_RESPONSE_JSON => MediaType::GraphqlResponseJson,
            "application/json" | "application/*" | "*/*" => MediaType::Json,
            _ => continue,
        };
        if q <= 0.0 {
            continue;
        }
        let better = match best {
            None => true,
            Some((bq, bm)) => {
                q > bq
                    || (q == bq && candidate == MediaType::GraphqlResponseJson && bm != candidate)
            }
        };
        if better {
            best = Some((q, candidate));
        }
    }
    best.map(|(_, m)| m)
}

/// Every answer is `no-store` unless a resolver said `private, no-store` (the same): it may
/// hold a key, a token or an account's reading.
fn respond(media: MediaType, status: StatusCode, body: impl Into<Bytes>) -> Response {
    let body: Bytes = body.into();
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.content_type()),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A response holding one error and no `data` entry.
fn error_response(
    media: MediaType,
    status: StatusCode,
    code: ErrorCode,
    message: &str,
) -> Response {
    let body = json!({
        "errors": [{ "message": message, "extensions": { "code": code.as_str() } }]
    });
    respond(media, status, body.to_string().into_bytes())
}

/// A request that is not a well-formed GraphQL-over-HTTP request: 400.
fn malformed_request(media: MediaType, message: &str) -> Response {
    error_response(
        media,
        StatusCode::BAD_REQUEST,
        ErrorCode::BadUserInput,
        message,
    )
}

fn not_acceptable() -> Response {
    error_response(
        MediaType::Json,
        StatusCode::NOT_ACCEPTABLE,
        ErrorCode::BadUserInput,
        "the Accept header allows neither application/graphql-response+json nor application/json",
    )
}

/// The parameters of one GraphQL request, checked for shape.
struct Params {
    /// The document's text; `None` when only a safelisted document's hash was sent.
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<Map<String, Value>>,
    /// `extensions.persistedQuery.sha256Hash`: a safelisted document, by hash.
    persisted: Option<String>,
}

/// `persistedQuery.sha256Hash` of an `extensions` object.
fn persisted_hash(extensions: &Map<String, Value>) -> Result<Option<String>, String> {
    match extensions.get("persistedQuery") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(persisted)) => match persisted.get("sha256Hash") {
            Some(Value::String(hash)) => Ok(Some(hash.trim().to_ascii_lowercase())),
            _ => Err("extensions.persistedQuery needs a sha256Hash string".to_owned()),
        },
        Some(_) => Err("extensions.persistedQuery must be an object".to_owned()),
    }
}

fn params_from_json(body: &[u8]) -> Result<Params, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("the request body is empty; send {\"query\": \"...\"}".to_owned());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the request body is not valid JSON: {e}"))?;
    let Value::Object(mut object) = value else {
        return Err(
            "the request body must be a JSON object; batched requests are not supported".to_owned(),
        );
    };
    let query = match object.remove("query") {
        Some(Value::String(q)) => Some(q),
        None | Some(Value::Null) => None,
        Some(_) => return Err("the \"query\" parameter must be a string".to_owned()),
    };
    let operation_name = match object.remove("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err("the \"operationName\" parameter must be a string".to_owned()),
    };
    let variables = match object.remove("variables") {
        None | Some(Value::Null) => None,
        Some(Value::Object(v)) => Some(v),
        Some(_) => return Err("the \"variables\" parameter must be an object".to_owned()),
    };
    let persisted = match object.remove("extensions") {
        None | Some(Value::Null) => None,
        Some(Value::Object(extensions)) => persisted_hash(&extensions)?,
        Some(_) => return Err("the \"extensions\" parameter must be an object".to_owned()),
    };
    if query.is_none() && persisted.is_none() {
        return Err("the request has no \"query\" parameter".to_owned());
    }
    Ok(Params {
        query,
        operation_name,
        variables,
        persisted,
    })
}

fn params_from_query_string(params: &HashMap<String, String>) -> Result<Params, String> {
    let query = params.get("query").cloned();
    let variables = match params.get("variables").map(String::as_str) {
        None | Some("") | Some("null") => None,
        Some(text) => match serde_json::from_str(text) {
            Ok(Value::Object(v)) => Some(v),
            _ => return Err("the \"variables\" parameter must be a JSON object".to_owned()),
        },
    };
    let persisted = match params
        .get("extensions")
        .filter(|t| !t.is_empty() && *t != "null")
    {
        None => None,
        Some(text) => match serde_json::from_str(text) {
            Ok(Value::Object(extensions)) => persisted_hash(&extensions)?,
            _ => return Err("the \"extensions\" parameter must be a JSON object".to_owned()),
        },
    };
    if query.is_none() && persisted.is_none() {
        return Err("the request has no \"query\" parameter".to_owned());
    }
    Ok(Params {
        query,
        persisted,
        operation_name: params
            .get("operationName")
            .cloned()
            .filter(|s| !s.is_empty()),
        variables,
    })
}

fn is_json_content_type(headers: &HeaderMap) -> Option<bool> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    Some(media == "application/json" || media == "application/graphql+json")
}

/// The `x-cache` header of a response.
fn with_cache_outcome(mut response: Response, outcome: Outcome) -> Response {
    response.headers_mut().insert(
        HeaderName::from_static("x-cache"),
        HeaderValue::from_static(outcome.header_value()),
    );
    response
}

/// Passes on a `Cache-Control` a resolver set (responses built from an account's history
/// are `private, no-store`).
fn with_cache_control(mut response: Response, control: Option<HeaderValue>) -> Response {
    if let Some(control) = control {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, control);
    }
    response
}

/// A stored response to exactly this request at the index's current position, if any.
fn cached(state: &AppState, key: &CacheKey, media: MediaType) -> Option<Response> {
    let Some((body, operation)) = state
        .cache
        .as_ref()?
        .get_with_operation(key, state.library.data_version())
    else {
        metrics::counter!(crate::metrics::CACHE_MISSES).increment(1);
        return None;
    };
    metrics::counter!(crate::metrics::CACHE_HITS).increment(1);
    let body =
        super::cache::with_fresh_recommendation_ids(body, |id| state.library.renew_list_id(id));
    let mut response = with_cache_outcome(respond(media, StatusCode::OK, body), Outcome::Hit);
    response
        .extensions_mut()
        .insert(super::RequestOperation(operation.to_string()));
    Some(response)
}

/// Most errors one answer carries; past them, one more says how many were left out.
const MAX_ERRORS: usize = 100;

/// Largest body a request may send: publishable and server credentials send queries and
/// small batches; editors and admins may upsert a thousand assets at once.
const MAX_BODY_BYTES: usize = 1024 * 1024;
const MAX_BODY_BYTES_FOR_WRITERS: usize = 32 * 1024 * 1024;

/// Who is calling, from `Authorization: Bearer KEY`; a 401 when the credential is
/// missing (while keys exist), malformed, unknown or revoked.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    media: MediaType,
) -> Result<Credential, Response> {
    let Ok(bearer) = super::bearer(headers) else {
        return Err(unauthenticated(
            media,
            "send the API key as Authorization: Bearer KEY",
        ));
    };
    match state.access.authenticate(bearer).await {
        Ok(credential) => Ok(credential),
        Err(AppError::Unauthenticated(message)) => Err(unauthenticated(media, &message)),
        Err(AppError::Unavailable(err)) => {
            tracing::warn!(error = %format!("{err:#}"), "cannot check a credential: the database is unavailable");
            Err(unavailable(media))
        }
        Err(err) => {
            tracing::error!(error = %format!("{:#}", err.unmasked()), "cannot check a credential");
            Err(error_response(
                media,
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "internal error",
            ))
        }
    }
}

/// 503 `UNAVAILABLE`: the database cannot be reached; try again in a second.
fn unavailable(media: MediaType) -> Response {
    let mut response = error_response(
        media,
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unavailable,
        "the database is unavailable; retry shortly",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn unauthenticated(media: MediaType, message: &str) -> Response {
    let mut response = error_response(
        media,
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthenticated,
        message,
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The client's address, when the server was started with connection info.
type Client = Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>;

/// 429 `RATE_LIMITED` with `Retry-After`.
fn too_many(media: MediaType, wait: Duration, message: &str) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = error_response(
        media,
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        &format!("{message}; retry in {} s", seconds.max(1)),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// Authenticates, then spends from the caller's rate limits: the credential, or the
/// response that refuses the request (401, 429). An address that presented too many
/// failed credentials gets 429 before anything of its next one is looked up.
async fn admit(
    state: &AppState,
    headers: &HeaderMap,
    media: MediaType,
    client: Client,
) -> Result<Credential, Response> {
    let address = super::client_address(state, headers, client.map(|c| c.0.0.ip()));
    if let Some(wait) = state.limits.failing(address)
        && state
            .access
            .needs_lookup(super::bearer(headers).ok().flatten())
    {
        return Err(too_many(
            media,
            wait,
            "too many failed credentials from this address",
        ));
    }
    let credential = match authenticate(state, headers, media).await {
        Ok(credential) => credential,
        Err(response) => {
            if response.status() == StatusCode::UNAUTHORIZED {
                state.limits.note_failure(address);
            }
            return Err(response);
        }
    };
    if let Some(wait) = state.limits.check(&credential, address) {
        let mut response = too_many(media, wait, "too many requests for this key");
        // The audit trail names the key that was limited.
        response.extensions_mut().insert(Audited {
            key_id: credential.key_id().map(str::to_owned),
            outcome: ErrorCode::RateLimited.as_str().to_owned(),
            ..Default::default()
        });
        return Err(response);
    }
    Ok(credential)
}

pub async fn post(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let Some(media) = negotiate(&headers) else {
        return not_acceptable();
    };
    let credential = match admit(&state, &headers, media, client).await {
        Ok(credential) => credential,
        Err(response) => return response,
    };
    let limit = if credential.scope() >= Scope::Editor {
        MAX_BODY_BYTES_FOR_WRITERS
    } else {
        MAX_BODY_BYTES
    };
    let body =
        match tokio::time::timeout(state.body_timeout, axum::body::to_bytes(body, limit)).await {
            Ok(Ok(body)) => body,
            Err(_) => {
                return error_response(
                    media,
                    StatusCode::REQUEST_TIMEOUT,
                    ErrorCode::Timeout,
                    &format!(
                        "the request body took longer than {} s to arrive",
                        state.body_timeout.as_secs()
                    ),
                );
            }
            Ok(Err(_)) => {
                return error_response(
                    media,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::PayloadTooLarge,
                    &format!(
                        "the request body is larger than {} MiB, the most a {} credential may send",
                        limit / (1024 * 1024),
                        credential.scope()
                    ),
                );
            }
        };
    match is_json_content_type(&headers) {
        Some(true) => {}
        Some(false) | None => {
            return error_response(
                media,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::BadUserInput,
                "POST /graphql needs Content-Type: application/json",
            );
        }
    }
    let key = CacheKey::new(Method::Post, &credential, body.clone());
    if let Some(response) = cached(&state, &key, media) {
        return response;
    }
    match params_from_json(&body) {
        Ok(params) => {
            let caller = Caller {
                credential: &credential,
                request_id: super::request_id(&headers),
                get: false,
            };
            execute(&state, params, media, key, caller).await
        }
        Err(message) => malformed_request(media, &message),
    }
}

/// Any method but GET and POST: 405 with the methods allowed, and a code like every error.
pub async fn other_method(headers: HeaderMap) -> Response {
    let media = negotiate(&headers).unwrap_or(MediaType::Json);
    let mut response = error_response(
        media,
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::BadUserInput,
        "/graphql takes GET (queries) and POST",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    response
}

pub async fn get(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Some(media) = negotiate(&headers) else {
        return not_acceptable();
    };
    let credential = match admit(&state, &headers, media, client).await {
        Ok(credential) => credential,
        Err(response) => return response,
    };
    let raw = uri.query().unwrap_or_default();
    let key = CacheKey::new(
        Method::Get,
        &credential,
        Bytes::copy_from_slice(raw.as_bytes()),
    );
    if let Some(response) = cached(&state, &key, media) {
        return response;
    }
    // Decoded only on a miss: a hit needs nothing but the raw query string.
    let query: HashMap<String, String> = match Query::try_from_uri(&uri) {
        Ok(Query(query)) => query,
        Err(err) => return malformed_request(media, &format!("the query string: {err}")),
    };
    let params = match params_from_query_string(&query) {
        Ok(params) => params,
        Err(message) => return malformed_request(media, &message),
    };
    let caller = Caller {
        credential: &credential,
        request_id: super::request_id(&headers),
        get: true,
    };
    execute(&state, params, media, key, caller).await
}

/// What the audit trail needs of an executed request.
#[derive(Clone, Debug, Default)]
pub(super) struct Audited {
    /// The operation's name, or its type and root fields.
    pub operation: String,
    /// How long the engine ran it (for the slow-request line).
    pub execute: Duration,
    pub key_id: Option<String>,
    pub mutation: bool,
    /// `ok`, or the first error's code.
    pub outcome: String,
}

/// Who is asking, for execution: the credential and the request's id.
#[derive(Clone, Copy)]
struct Caller<'a> {
    credential: &'a Credential,
    request_id: &'a str,
    /// Whether the request came as a GET (which runs no mutation).
    get: bool,
}

/// The document to run: the text sent, or the safelisted one its hash names, and for a GET
/// its parse (done here to refuse a mutation). With `--publishable-safelist`, a publishable
/// key or visitor token runs safelisted documents only.
async fn document_text(
    state: &AppState,
    params: &Params,
    credential: &Credential,
    media: MediaType,
    get: bool,
) -> Result<(String, Option<ExecutableDocument>), Box<(ErrorCode, Response)>> {
    let refuse = |status, code: ErrorCode, message: &str| {
        Err(Box::new((
            code,
            error_response(media, status, code, message),
        )))
    };
    let internal = |err: AppError| {
        tracing::error!(error = %format!("{:#}", err.unmasked()), "cannot read the safelist");
        Box::new((
            ErrorCode::Internal,
            error_response(
                media,
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "internal error",
            ),
        ))
    };
    let text = match (&params.query, &params.persisted) {
        (Some(query), Some(hash)) => {
            if crate::services::document_hash(query) != *hash {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadUserInput,
                    "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query sent",
                );
            }
            query.clone()
        }
        (Some(query), None) => query.clone(),
        (None, Some(hash)) => match state.safelist.document(hash).await {
            Ok(Some(document)) => document.to_string(),
            Ok(None) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadUserInput,
                    &format!(
                        "no safelisted operation has sha256Hash {hash:?}; register it with `stagefit operations add`"
                    ),
                );
            }
            Err(err) => return Err(internal(err)),
        },
        (None, None) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                "the request has no \"query\" parameter",
            );
        }
    };
    // Length and nesting before any parse: the parser recurses once per bracket.
    let max_bytes = if credential.scope() >= Scope::Editor {
        MAX_BODY_BYTES_FOR_WRITERS
    } else {
        limits::MAX_DOCUMENT_BYTES
    };
    if let Err(refusal) = limits::check_text(&text, max_bytes) {
        let (code, status) = refusal_status(media, &refusal);
        return refuse(status, code, refusal.message());
    }
    // GET runs queries only. The parse is kept for execution; a document that does not
    // parse is left for execution to report.
    let mut parsed = None;
    if get && let Some(document) = state.documents.parse(&text) {
        if runs_mutation(&document, params.operation_name.as_deref()) {
            let mut response = error_response(
                media,
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::BadUserInput,
                "mutations must be sent with POST",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return Err(Box::new((ErrorCode::BadUserInput, response)));
        }
        parsed = Some(document);
    }
    if state.publishable_safelist && credential.scope() == Scope::Publishable {
        // Registered by its text, whether it came as text or by hash: a hash sent along
        // with a text only proves the hash is the text's, not that anyone registered it.
        let listed = match (&params.query, &params.persisted) {
            (None, Some(_)) => true,
            _ => state.safelist.contains(&text).await.map_err(internal)?,
        };
        if !listed {
            return refuse(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "this server runs only safelisted operations for publishable keys and visitor tokens; send a registered document or its extensions.persistedQuery.sha256Hash",
            );
        }
    }
    Ok((text, parsed))
}

/// Parsed documents by their text. Front-ends send the same few documents with other
/// variables, and parsing one took a tenth of the server's time on a computed
/// recommendation; a clone of the parse costs less. Documents that do not parse are not
/// kept (execution reports them).
pub struct ParsedDocuments(
    quick_cache::sync::Cache<String, std::sync::Arc<ExecutableDocument>, TextBytes>,
);

#[derive(Clone)]
pub struct TextBytes;

impl Weighter<String, std::sync::Arc<ExecutableDocument>> for TextBytes {
    fn weight(&self, text: &String, _: &std::sync::Arc<ExecutableDocument>) -> u64 {
        // A parse takes some ten times the bytes of its text.
        text.len() as u64 * 10 + 256
    }
}

impl ParsedDocuments {
    pub fn new(bytes: u64) -> Self {
        Self(quick_cache::sync::Cache::with_weighter(
            (bytes / 4096).max(16) as usize,
            bytes.max(1),
            TextBytes,
        ))
    }

    /// The document `text` parses to, from the cache when it was parsed before.
    pub fn parse(&self, text: &str) -> Option<ExecutableDocument> {
        if let Some(document) = self.0.get(text) {
            return Some(ExecutableDocument::clone(&document));
        }
        let document = async_graphql::parser::parse_query(text).ok()?;
        self.0
            .insert(text.to_owned(), std::sync::Arc::new(document.clone()));
        Some(document)
    }
}

/// Executes, and tells the request log which operation ran: its name, else its type and
/// root fields.
async fn execute(
    state: &AppState,
    params: Params,
    media: MediaType,
    key: CacheKey,
    caller: Caller<'_>,
) -> Response {
    // A name that is not a GraphQL name names no operation; refused before it reaches the
    // log or the audit trail.
    let refused = params
        .operation_name
        .as_deref()
        .map(limits::check_operation_name)
        .and_then(Result::err)
        .or_else(|| {
            params
                .variables
                .as_ref()
                .and_then(|v| limits::check_variables(v).err())
        });
    // The name, else what the parsed document runs (`run` sets it once parsed).
    let operation = match (&params.operation_name, &params.query) {
        (Some(name), _) if refused.is_none() => name.clone(),
        (_, None) => "persisted query".to_owned(),
        _ => String::new(),
    };
    let mut audited = Audited {
        operation,
        key_id: caller.credential.key_id().map(str::to_owned),
        ..Default::default()
    };
    let mut response = match refused {
        Some(refusal) => refuse_before_parse(media, &refusal, &mut audited),
        None => run(state, params, media, key, caller, &mut audited).await,
    };
    response
        .extensions_mut()
        .insert(super::RequestOperation(audited.operation.clone()));
    response.extensions_mut().insert(audited);
    response
}

async fn run(
    state: &AppState,
    params: Params,
    media: MediaType,
    key: CacheKey,
    caller: Caller<'_>,
    audited: &mut Audited,
) -> Response {
    let Caller {
        credential,
        request_id,
        ..
    } = caller;
    let operation = params.operation_name.clone().unwrap_or_default();
    let span = tracing::info_span!("graphql", operation = %operation, request_id = %request_id);
    let (query, parsed) = match document_text(state, &params, credential, media, caller.get).await {
        Ok(resolved) => resolved,
        Err(refused) => {
            let (code, response) = *refused;
            audited.outcome = code.as_str().to_owned();
            return response;
        }
    };
    let parsed = parsed.or_else(|| state.documents.parse(&query));
    if let Some(document) = &parsed
        && params.operation_name.is_none()
    {
        audited.operation = operation_label(document, None);
    }
    if let Some(document) = &parsed
        && let Err(refusal) = limits::check_document(
            document,
            params.operation_name.as_deref(),
            params.variables.as_ref(),
            if credential.scope() < Scope::Server {
                limits::WorkBudget::Bounded
            } else {
                limits::WorkBudget::Unbounded
            },
        )
    {
        return refuse_before_parse(media, &refusal, audited);
    }
    let mut request = async_graphql::Request::new(query);
    if let Some(document) = parsed {
        request.set_parsed_query(document);
    }
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = params.variables {
        request = request.variables(Variables::from_json(Value::Object(variables)));
    }
    // The rule table decides on the parsed document before anything runs; the engine
    // reuses the parse. A document that does not parse is left for the engine to report.
    let operation_name = request.operation_name.clone();
    let variables = request.variables.clone();
    if let Ok(document) = request.parsed_query() {
        audited.mutation = audited_mutation(document, operation_name.as_deref());
        let who = Who {
            scope: credential.scope(),
            visitor: credential
                .visitor()
                .map(|v| (v.account_id.as_str(), v.contact_id.as_deref())),
        };
        if let Err(AppError::Forbidden(message)) =
            check_access(document, operation_name.as_deref(), &variables, who)
        {
            audited.outcome = ErrorCode::Forbidden.as_str().to_owned();
            return error_response(media, StatusCode::FORBIDDEN, ErrorCode::Forbidden, &message);
        }
    }
    // Resolvers that act for the caller (a visitor token's account, the key that signs a
    // token) find it here.
    let request = request.data(credential.clone());
    let started = std::time::Instant::now();
    // Read before executing: a write applied meanwhile makes the stored entry a miss.
    let seq = state.library.data_version();
    let execution = state.schema.execute(request).instrument(span);
    let executed = tokio::time::timeout(state.request_timeout, execution).await;
    audited.execute = started.elapsed();
    let mut response = match executed {
        Ok(response) => response,
        Err(_) => {
            audited.outcome = ErrorCode::Timeout.as_str().to_owned();
            // A search already handed to the blocking pool finishes there; its answer is
            // dropped. Mutations commit or roll back as a whole, so none is half-written.
            return error_response(
                media,
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Timeout,
                &format!(
                    "the request took longer than {} ms and was stopped",
                    state.request_timeout.as_millis()
                ),
            );
        }
    };
    let request_failed = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    // An answer is not a place for thousands of errors: the first ones tell what is wrong.
    if response.errors.len() > MAX_ERRORS {
        let more = response.errors.len() - MAX_ERRORS;
        response.errors.truncate(MAX_ERRORS);
        let mut last = ServerError::new(format!("{more} more errors left out"), None);
        last.extensions = None;
        response.errors.push(last);
    }
    for error in &mut response.errors {
        ensure_code(error);
        // An internal error says nothing of its cause to the client; its request id finds
        // the cause in the log.
        let extensions = error
            .extensions
            .get_or_insert_with(ErrorExtensionValues::default);
        if extensions.get("code") == Some(&async_graphql::Value::from(ErrorCode::Internal.as_str()))
        {
            extensions.set("requestId", request_id);
        }
    }
    audited.outcome = response
        .errors
        .first()
        .and_then(|e| e.extensions.as_ref())
        .and_then(|x| match x.get("code") {
            Some(async_graphql::Value::String(code)) => Some(code.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "ok".to_owned());
    tracing::debug!(operation = %operation, micros = started.elapsed().as_micros() as u64, errors = response.errors.len(), "graphql request");
    // The database could not be reached for some field: the whole answer is a 503, so
    // clients and load balancers retry instead of taking partial data for an answer.
    let database_down = response.errors.iter().any(|e| {
        e.extensions.as_ref().and_then(|x| x.get("code"))
            == Some(&async_graphql::Value::from(ErrorCode::Unavailable.as_str()))
    });
    if database_down {
        let body = json!({ "data": response.data, "errors": response.errors });
        let mut answer = respond(
            media,
            StatusCode::SERVICE_UNAVAILABLE,
            body.to_string().into_bytes(),
        );
        answer
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return answer;
    }
    if request_failed {
        let body = json!({ "errors": response.errors });
        return respond(
            media,
            media.document_error_status(),
            body.to_string().into_bytes(),
        );
    }
    match serde_json::to_vec(&response) {
        Ok(body) => {
            let body = Bytes::from(body);
            let private = response.http_headers.get(header::CACHE_CONTROL).cloned();
            let Some(cache) = &state.cache else {
                return with_cache_control(respond(media, StatusCode::OK, body), private);
            };
            let control = response.cache_control;
            let stored = private.is_none()
                && response.errors.is_empty()
                && control.public
                && control.max_age > 0
                && cache.put(
                    key,
                    seq,
                    Duration::from_secs(control.max_age.unsigned_abs().into()),
                    body.clone(),
                    &audited.operation,
                );
            let outcome = if stored {
                Outcome::Miss
            } else {
                Outcome::Bypass
            };
            with_cache_control(
                with_cache_outcome(respond(media, StatusCode::OK, body), outcome),
                private,
            )
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot serialise a GraphQL response");
            error_response(
                media,
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "internal error",
            )
        }
    }
}

/// The code and status of a request refused by the limits before it ran: the status of a
/// document the engine would refuse.
fn refusal_status(media: MediaType, refusal: &limits::Refusal) -> (ErrorCode, StatusCode) {
    let code = match refusal {
        limits::Refusal::TooComplex(_) => ErrorCode::QueryTooComplex,
        limits::Refusal::Invalid(_) => ErrorCode::BadUserInput,
    };
    (code, media.document_error_status())
}

/// The answer to a request the limits refused.
fn refuse_before_parse(
    media: MediaType,
    refusal: &limits::Refusal,
    audited: &mut Audited,
) -> Response {
    let (code, status) = refusal_status(media, refusal);
    audited.outcome = code.as_str().to_owned();
    error_response(media, status, code, refusal.message())
}

/// Errors raised by the GraphQL engine itself (parsing, validation, input coercion,
/// limits) are the client's: they get `BAD_USER_INPUT`.
fn ensure_code(error: &mut ServerError) {
    let extensions = error
        .extensions
        .get_or_insert_with(ErrorExtensionValues::default);
    if extensions.get("code").is_none() {
        // The cost and depth limits are the engine's own validation errors.
        let code = if error.message.starts_with("Query is too complex")
            || error.message.starts_with("Query is nested too deep")
        {
            ErrorCode::QueryTooComplex
        } else {
            ErrorCode::BadUserInput
        };
        extensions.set("code", code.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsed_documents_come_back_equal_and_bad_ones_are_not_kept() {
        let documents = ParsedDocuments::new(1 << 20);
        let text = "query($n: Int) { recommendations(first: $n) { items { score } } }";
        let first = documents.parse(text).expect("parses");
        assert_eq!(documents.0.len(), 1);
        let again = documents.parse(text).expect("from the cache");
        assert_eq!(format!("{first:?}"), format!("{again:?}"));
        assert!(documents.parse("{ recommendations(").is_none());
        assert_eq!(documents.0.len(), 1);
        let other = documents.parse("{ __typename }").expect("parses");
        assert_ne!(format!("{first:?}"), format!("{other:?}"));
    }

    fn accept(value: &str) -> Option<MediaType> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        negotiate(&headers)
    }

    #[test]
    fn accept_negotiation() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(MediaType::Json));
        assert_eq!(accept("*/*"), Some(MediaType::Json));
        assert_eq!(accept("application/json"), Some(MediaType::Json));
        assert_eq!(
            accept(GRAPHQL_RESPONSE_JSON),
            Some(MediaType::GraphqlResponseJson)
        );
        assert_eq!(
            accept("application/json;q=0.9, application/graphql-response+json"),
            Some(MediaType::GraphqlResponseJson)
        );
        assert_eq!(
            accept("application/graphql-response+json;q=0.5, application/json"),
            Some(MediaType::Json)
        );
        assert_eq!(accept("text/html"), None);
        assert_eq!(accept("application/json;q=0"), None);
    }

    #[test]
    fn parameters_are_checked_for_shape() {
        assert!(
            params_from_json(br#"{"query":"{ __typename }","variables":null,"extensions":{}}"#)
                .is_ok()
        );
        for bad in [
            &br#"{"notquery":"x"}"#[..],
            br#"{"query":0}"#,
            br#"{"query":"x","operationName":false}"#,
            br#"{"query":"x","variables":"string"}"#,
            br#"{"query":"x","extensions":[1]}"#,
            br#"[{"query":"x"}]"#,
            br#"{ "not a JSON"#,
            b"",
        ] {
            assert!(
                params_from_json(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
