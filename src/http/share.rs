//! `/l/TOKEN`: a tracked share link opened. A person's open records a view and the reader
//! is sent on (303) to the asset; a scanner's (a `HEAD`, no user agent, or a known mail
//! gateway or unfurler) is counted as a scan and sent on too. An unknown, expired or
//! revoked link gets a plain page, never an error trace.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::AppState;
use crate::services::{ShareOpen, is_scanner};

fn plain(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Link</title></head>\
         <body><p>{message}</p></body></html>"
    );
    let mut response = (status, Html(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(super) async fn open(
    State(state): State<AppState>,
    method: Method,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let scanner = is_scanner(method == Method::HEAD, agent);
    match state.library.open_share_link(&token, scanner).await {
        Ok(ShareOpen::Go(url)) => match HeaderValue::from_str(&url) {
            Ok(location) => {
                let mut response = StatusCode::SEE_OTHER.into_response();
                let h = response.headers_mut();
                h.insert(header::LOCATION, location);
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                h.insert(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                );
                response
            }
            Err(_) => plain(
                StatusCode::NOT_FOUND,
                "This link leads to an address that cannot be followed.",
            ),
        },
        Ok(ShareOpen::Gone) => plain(
            StatusCode::NOT_FOUND,
            "This link has expired or is no longer valid. Ask the sender for a new one.",
        ),
        Err(err) => {
            tracing::warn!(error = %format!("{:#}", err.unmasked()), "cannot open a share link");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "This link cannot be opened right now. Try again in a minute.",
            )
        }
    }
}
