//! The HTTP surface: GraphiQL at `/`, GraphQL at `/graphql` (POST and GET), the coverage
//! page at `/coverage`, content analytics at `/insights`, the web widget at `/widget.js`,
//! `/healthz`.
//! Handlers only translate HTTP to calls on the schema or the services.

mod app_state;
mod cache;
mod graphiql;
mod graphql;
mod limits;
mod serve;
mod share;

pub use app_state::AppState;
pub use cache::ResponseCache;
pub use graphql::ParsedDocuments;
pub use limits::RateLimits;
pub use serve::{ConnectionLimits, serve_router};

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;

/// Largest request body: enough for a 1,000-asset `upsertAssets` with long bodies.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let cors = cors(&state.cors_origins);
    let router = Router::new()
        .route("/", get(graphiql::page))
        .route("/graphiql/{file}", get(graphiql::asset))
        .route(
            "/graphql",
            get(graphql::get)
                .post(graphql::post)
                .fallback(graphql::other_method),
        )
        .route("/coverage", get(coverage_page))
        .route("/insights", get(insights_page))
        .route("/widget.js", get(widget_script))
        .route("/pages.js", get(pages_script))
        .route("/l/{token}", get(share::open))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // No response is to be read as another type than it says.
        .layer(SetResponseHeaderLayer::if_not_present(
            axum::http::header::X_CONTENT_TYPE_OPTIONS,
            axum::http::HeaderValue::from_static("nosniff"),
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            log_request,
        ))
        // Every request gets an id (or keeps the x-request-id it came with), answered in
        // x-request-id, logged, and carried by INTERNAL errors.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state);
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// Browsers on the listed origins (exact matches, never a wildcard) may call `/graphql`
/// with a key in `Authorization`. With no origin listed, no cross-origin call is allowed.
fn cors(origins: &[axum::http::HeaderValue]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// The credential of `Authorization: Bearer CREDENTIAL`: `None` without the header, `Err`
/// for a header of another shape.
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Result<Option<&str>, ()> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    match value.to_str().unwrap_or_default().trim().split_once(' ') {
        Some((scheme, credential)) if scheme.eq_ignore_ascii_case("bearer") => {
            Ok(Some(credential.trim()))
        }
        _ => Err(()),
    }
}

/// The client's address: the connection's peer, or, when the peer is a trusted proxy
/// (`--trusted-proxy`), the last address of `X-Forwarded-For` that is not one of the
/// trusted proxies (earlier entries are whatever the client chose to send).
pub(crate) fn client_address(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    peer: Option<std::net::IpAddr>,
) -> Option<std::net::IpAddr> {
    let peer = peer?;
    let trusted = |ip: &std::net::IpAddr| state.trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return Some(peer);
    }
    let mut client = peer;
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(text) = value.to_str() else {
            return Some(client);
        };
        for hop in text.split(',').rev() {
            match hop.trim().parse::<std::net::IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !trusted(&ip) {
                        return Some(client);
                    }
                }
                // An entry that is not an address ends what can be believed.
                Err(_) => return Some(client),
            }
        }
    }
    Some(client)
}

/// What the audit trail records of a mutation or a refused request: who (key id,
/// address), what (operation), and how it ended; `None` for anything else.
fn audit_event(
    path: &str,
    client: Option<std::net::IpAddr>,
    response: &Response,
) -> Option<crate::domain::AuditEvent> {
    let status = response.status();
    let refused = match status {
        StatusCode::UNAUTHORIZED => Some("UNAUTHENTICATED"),
        StatusCode::FORBIDDEN => Some("FORBIDDEN"),
        StatusCode::PAYLOAD_TOO_LARGE => Some("PAYLOAD_TOO_LARGE"),
        StatusCode::TOO_MANY_REQUESTS => Some("RATE_LIMITED"),
        _ => None,
    };
    let audited = response.extensions().get::<graphql::Audited>();
    if refused.is_none() && !audited.is_some_and(|a| a.mutation) {
        return None;
    }
    let operation = response
        .extensions()
        .get::<RequestOperation>()
        .map_or_else(|| path.to_owned(), |o| o.0.clone());
    Some(crate::domain::AuditEvent {
        at: chrono::Utc::now(),
        key_id: audited.and_then(|a| a.key_id.clone()),
        operation,
        // Written out only for the requests that are recorded.
        client: client.map(|ip| ip.to_string()),
        status: status.as_u16(),
        outcome: match (refused, audited) {
            (Some(code), _) => code.to_owned(),
            (None, Some(a)) => a.outcome.clone(),
            (None, None) => "ok".to_owned(),
        },
        count: 1,
    })
}

/// The request's id, as `SetRequestIdLayer` set it (or the client sent it).
fn request_id(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The GraphQL operation a response answered, for the request log.
#[derive(Clone)]
struct RequestOperation(String);

/// One line per request at `info`: method, path, status, milliseconds, and for GraphQL
/// the operation and whether the response cache answered. `STAGEFIT_LOG=warn` silences it.
/// A request's path as logs and metrics show it: a share link's token is a credential of
/// sorts (whoever holds it opens the link as its contact), so it is never written down.
fn logged_path(path: &str) -> String {
    match path.strip_prefix("/l/") {
        Some(_) => "/l/TOKEN".to_owned(),
        None => path.to_owned(),
    }
}

async fn log_request(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = logged_path(request.uri().path());
    let request_id = request_id(request.headers()).to_owned();
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client = client_address(&state, request.headers(), peer);
    // Every line logged while the request runs carries its id.
    let span = tracing::info_span!("request", request_id = %request_id);
    let response = next.run(request).instrument(span.clone()).await;
    // Queued before the answer goes out: an acknowledged mutation is in the trail.
    if let Some(event) = audit_event(&path, client, &response) {
        state.audit.record(event).instrument(span.clone()).await;
    }
    let _entered = span.enter();
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    // The GraphQL operation, if one ran; metrics and the slow line fall back to the path.
    let operation = response
        .extensions()
        .get::<RequestOperation>()
        .map(|o| o.0.as_str());
    let label = crate::metrics::operation_label(operation.unwrap_or(&path));
    metrics::counter!(
        crate::metrics::HTTP_REQUESTS,
        "operation" => label.clone(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(crate::metrics::HTTP_DURATION, "operation" => label)
        .record(elapsed.as_secs_f64());
    let ms = elapsed.as_secs_f64() * 1000.0;
    if tracing::enabled!(tracing::Level::INFO) {
        let cache = response
            .headers()
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info!(
            %method,
            path,
            status,
            ms = %format_args!("{ms:.3}"),
            operation = operation.unwrap_or(""),
            cache,
            request_id,
            "request"
        );
    }
    if elapsed >= state.slow_request {
        let execute = response
            .extensions()
            .get::<graphql::Audited>()
            .map_or(0.0, |a| a.execute.as_secs_f64() * 1000.0);
        tracing::warn!(
            %method,
            path,
            status,
            operation = operation.unwrap_or(&path),
            ms = %format_args!("{ms:.3}"),
            execute_ms = %format_args!("{execute:.3}"),
            threshold_ms = state.slow_request.as_millis() as u64,
            "slow request"
        );
    }
    response
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.connections;
    serve_router(router(state), listener, limits, shutdown).await
}

/// The coverage heatmap: one self-contained page (no external script, style or font) that
/// asks `/graphql` for `coverage` and draws it.
async fn coverage_page() -> Response {
    page(include_str!("coverage.html"))
}

/// Content analytics: one self-contained page like `/coverage` that asks `/graphql` for
/// `cellPerformance`, `assetPerformance` and `experiments` and draws them.
async fn insights_page() -> Response {
    page(include_str!("insights.html"))
}

/// One of the server's pages, which keep a key in session storage: it may run its own
/// scripts only (its files, and its inline scripts by hash), talk to this server only, and
/// never be framed.
pub(crate) fn page(html: &'static str) -> Response {
    use axum::http::header;
    let policy = content_security_policy(html);
    let mut response = axum::response::Html(html).into_response();
    let headers = response.headers_mut();
    if let Ok(policy) = axum::http::HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(
        header::X_FRAME_OPTIONS,
        axum::http::HeaderValue::from_static("DENY"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        axum::http::HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The policy of a page: scripts from this server, and the page's inline scripts by their
/// SHA-256; styles may be inline (GraphiQL sets them); nothing framed, no form posts.
fn content_security_policy(html: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let mut scripts = String::new();
    let mut rest = html;
    while let Some(open) = rest.find("<script>") {
        let body = &rest[open + "<script>".len()..];
        let Some(close) = body.find("</script>") else {
            break;
        };
        let digest = sha2::Sha256::digest(&body.as_bytes()[..close]);
        scripts.push_str(&format!(
            " 'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        ));
        rest = &body[close..];
    }
    format!(
        "default-src 'self'; script-src 'self'{scripts}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// The drop-in web widget (`<stagefit-recommendations>`): plain JavaScript, nothing to
/// build, served from here so a page needs no CDN. Pages on any origin load it with a
/// script tag; its GraphQL calls are what CORS governs.
async fn widget_script() -> Response {
    script(WIDGET)
}

/// The widget as served: the pages' shared script glued in front of it when the server is
/// built, both inside one function so a customer's page gains no global name.
const WIDGET: &str = concat!(
    "(() => {\n",
    include_str!("pages.js"),
    include_str!("widget.js"),
    "})();\n"
);

/// What the server's own pages share (GraphQL calls with the tab's key, the taxonomy's
/// lists): a script of this server, which their policy admits.
async fn pages_script() -> Response {
    script(include_str!("pages.js"))
}

/// A script of this server's, cached for five minutes.
fn script(body: &'static str) -> Response {
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/javascript; charset=utf-8",
            ),
            (axum::http::header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Liveness: the process answers. Nothing about the data or the database; that is
/// `/readyz`'s and `/metrics`' business.
async fn healthz() -> Response {
    Json(serde_json::json!({ "status": "ok" })).into_response()
}

/// How long `/readyz` waits for the database.
const READY_DATABASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Readiness: 200 when the database answers (within 2 s) and this server's index is at most
/// `--ready-max-lag` changes behind it; else 503, with the reason.
async fn readyz(State(state): State<AppState>) -> Response {
    let not_ready = |reason: &str, lag: Option<i64>| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "not ready", "reason": reason, "indexLag": lag })),
        )
            .into_response()
    };
    match tokio::time::timeout(READY_DATABASE_TIMEOUT, state.library.health()).await {
        Err(_) => not_ready("the database does not answer", None),
        Ok(Err(err)) => {
            tracing::warn!(error = %format!("{:#}", err.unmasked()), "readiness: the database fails");
            not_ready("the database fails", None)
        }
        Ok(Ok(h)) => {
            let lag = (h.database_seq - h.index_seq).max(0);
            if lag > state.ready_max_lag {
                not_ready("the index is catching up", Some(lag))
            } else {
                // Embedding runs behind a ready server: words answer until it is done.
                let embeddings = state.library.meaning().status().map(|s| {
                    serde_json::json!({
                        "model": s.model,
                        "embedded": s.embedded,
                        "pending": s.pending,
                        "refused": s.refused,
                        "complete": s.complete,
                        "computed": s.computed,
                        "queriesEmbedded": s.queries_embedded,
                        "queryRuns": s.query_runs,
                    })
                });
                let mut body = serde_json::json!({ "status": "ready", "indexLag": lag });
                if let Some(embeddings) = embeddings {
                    body["embeddings"] = embeddings;
                }
                Json(body).into_response()
            }
        }
    }
}

/// Prometheus text, for an admin key (or anyone while no key exists). A loopback peer gets
/// no exemption: behind a reverse proxy on the same host every visitor is one. Keyless
/// scraping is what `--metrics-addr` is for.
async fn metrics(
    State(state): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<SocketAddr>>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let address = client_address(&state, &headers, peer.map(|p| p.0.0.ip()));
    let bearer = bearer(&headers).ok().flatten();
    if state.limits.failing(address).is_some() && state.access.needs_lookup(bearer) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed credentials from this address\n",
        )
            .into_response();
    }
    let credential = state.access.authenticate(bearer).await.ok();
    if credential.is_none() {
        state.limits.note_failure(address);
    }
    match credential {
        Some(credential) if credential.scope() >= crate::domain::Scope::Admin => {
            render_metrics(&state).await
        }
        _ => (
            StatusCode::UNAUTHORIZED,
            [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
            "metrics need an admin key here, or no key on the --metrics-addr listener\n",
        )
            .into_response(),
    }
}

/// Sets this server's gauges, then renders every metric of the process.
pub(crate) async fn render_metrics(state: &AppState) -> Response {
    if let Ok(health) = state.library.health().await {
        metrics::gauge!(crate::metrics::INDEX_LAG)
            .set((health.database_seq - health.index_seq).max(0) as f64);
        metrics::gauge!(crate::metrics::INDEX_DOCUMENTS).set(health.indexed_docs as f64);
    }
    metrics::gauge!(crate::metrics::QUEUED, "queue" => "audit").set(state.audit.queued() as f64);
    metrics::gauge!(crate::metrics::QUEUED, "queue" => "impressions")
        .set(state.library.impressions_queued() as f64);
    let (in_use, open) = state.library.pool_connections();
    metrics::gauge!(crate::metrics::DB_CONNECTIONS_IN_USE).set(in_use as f64);
    metrics::gauge!(crate::metrics::DB_CONNECTIONS).set(open as f64);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::handle().render(),
    )
        .into_response()
}

/// The router of `--metrics-addr`: `/metrics` alone, without a key.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(state): State<AppState>| async move { render_metrics(&state).await }),
        )
        .with_state(state)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({
            "error": "not found; GraphiQL is at /, the API at /graphql"
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_link_tokens_are_never_logged() {
        assert_eq!(logged_path("/l/Xq3abcDEF0123456789abc"), "/l/TOKEN");
        assert_eq!(logged_path("/graphql"), "/graphql");
        assert_eq!(logged_path("/lx"), "/lx");
    }
}
