//! GraphiQL, served entirely by stagefit: its JavaScript and CSS are vendored in
//! `assets/graphiql` (see `scripts/vendor-graphiql.sh`) and embedded in the binary, so the
//! page works with no internet access.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("graphiql.html");

struct Embedded {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const FILES: &[Embedded] = &[
    Embedded {
        name: "graphiql.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/graphiql/graphiql.min.js"),
    },
    Embedded {
        name: "graphiql.min.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/graphiql/graphiql.min.css"),
    },
    Embedded {
        name: "react.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/graphiql/react.production.min.js"),
    },
    Embedded {
        name: "react-dom.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
    },
    Embedded {
        name: "LICENSES.txt",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("../../assets/graphiql/LICENSES.txt"),
    },
];

pub async fn page() -> Response {
    super::page(PAGE)
}

pub async fn asset(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|f| f.name == file) {
        Some(f) => (
            [
                (header::CONTENT_TYPE, f.content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            f.bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
