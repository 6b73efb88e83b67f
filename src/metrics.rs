//! Metrics in Prometheus text format, served at `/metrics`: the `metrics` facade, recorded
//! where things happen, and `metrics-exporter-prometheus` rendering them. The recorder is
//! process-wide (one per process, however many servers the process runs, as in the tests).
//! Gauges that describe one server's state (index lag and size, database connections) are
//! set from that server just before it renders.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "stagefit_http_requests_total";
pub const HTTP_DURATION: &str = "stagefit_http_request_duration_seconds";
pub const INDEX_LAG: &str = "stagefit_index_lag";
pub const INDEX_DOCUMENTS: &str = "stagefit_index_documents";
pub const CACHE_HITS: &str = "stagefit_response_cache_hits_total";
pub const CACHE_MISSES: &str = "stagefit_response_cache_misses_total";
pub const DOCUMENTS_SCORED: &str = "stagefit_recommendation_documents_scored";
pub const POPULARITY_REFRESH: &str = "stagefit_popularity_refresh_duration_seconds";
pub const DB_CONNECTIONS_IN_USE: &str = "stagefit_db_pool_connections_in_use";
pub const DB_CONNECTIONS: &str = "stagefit_db_pool_connections";
pub const IMPRESSIONS: &str = "stagefit_impressions_recorded_total";
pub const WEBHOOK_ATTEMPTS: &str = "stagefit_webhook_attempts_total";
pub const IMPRESSION_WRITE: &str = "stagefit_impression_write_duration_seconds";
pub const BACKGROUND_RESTARTS: &str = "stagefit_background_restarts_total";
pub const QUEUED: &str = "stagefit_background_queue_items";
pub const KEY_LOOKUPS: &str = "stagefit_key_lookups_total";
pub const AUDIT_POOLED: &str = "stagefit_audit_refusals_pooled_total";
/// Published assets with a vector of the embedding model.
pub const EMBEDDED_ASSETS: &str = "stagefit_embedded_assets";
/// Queries one run of a model in the process embedded together.
pub const QUERY_BATCH: &str = "stagefit_query_embedding_batch_size";

const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const DOCUMENTS: &[f64] = &[
    10.0,
    100.0,
    1_000.0,
    10_000.0,
    100_000.0,
    1_000_000.0,
    10_000_000.0,
];

const BATCH: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0];

/// Distinct operation labels kept; past this, new ones count as `other`, so clients naming
/// operations at random cannot grow the metrics without bound.
const MAX_OPERATIONS: usize = 200;

/// The process's recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(DOCUMENTS_SCORED.to_owned()), DOCUMENTS)
            })
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(QUERY_BATCH.to_owned()), BATCH));
        let recorder = match builder {
            Ok(builder) => builder.build_recorder(),
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        describe();
        handle
    })
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by GraphQL operation (or path) and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request time by operation"
    );
    describe_gauge!(
        INDEX_LAG,
        "Changes in the database not yet in this server's index"
    );
    describe_gauge!(INDEX_DOCUMENTS, "Documents in this server's index");
    describe_gauge!(
        EMBEDDED_ASSETS,
        "Published assets with a vector of the embedding model"
    );
    describe_histogram!(
        QUERY_BATCH,
        "Visitors' queries embedded together in one run of the model"
    );
    describe_counter!(CACHE_HITS, "Requests answered from the response cache");
    describe_counter!(
        CACHE_MISSES,
        "Cacheable requests the response cache could not answer"
    );
    describe_histogram!(
        DOCUMENTS_SCORED,
        "Index documents scored per recommendation list"
    );
    describe_histogram!(POPULARITY_REFRESH, Unit::Seconds, "Popularity refresh time");
    describe_gauge!(DB_CONNECTIONS_IN_USE, "Database pool connections in use");
    describe_gauge!(DB_CONNECTIONS, "Database pool connections open");
    describe_counter!(
        IMPRESSIONS,
        "Impressions recorded (each list and asset once)"
    );
    describe_counter!(
        WEBHOOK_ATTEMPTS,
        "Webhook delivery attempts, by outcome (delivered, retry, failed)"
    );
    describe_counter!(
        BACKGROUND_RESTARTS,
        "Background writers (audit trail, impressions) started again after a panic"
    );
    describe_gauge!(QUEUED, "Items queued for a background writer, by queue");
    describe_counter!(
        KEY_LOOKUPS,
        "API keys looked up in the database (the rest come from the 4 s cache)"
    );
    describe_counter!(
        AUDIT_POOLED,
        "Refusals counted into the catch-all bucket of their minute because too many keys and addresses were refused at once"
    );
    describe_histogram!(
        IMPRESSION_WRITE,
        Unit::Seconds,
        "Time to write one group of queued impression lists"
    );
}

/// The label for an operation: itself while fewer than [`MAX_OPERATIONS`] were seen and it
/// is short and plain, else `other`.
pub fn operation_label(operation: &str) -> String {
    static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let plain = operation.len() <= 100
        && operation
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ' ' | ',' | '/' | '-' | '.'));
    if !plain {
        return "other".to_owned();
    }
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    let seen = seen.get_or_insert_with(HashSet::new);
    if seen.contains(operation) {
        return operation.to_owned();
    }
    if seen.len() < MAX_OPERATIONS {
        seen.insert(operation.to_owned());
        return operation.to_owned();
    }
    "other".to_owned()
}

/// Drains histogram samples into their buckets every few seconds, so that memory stays
/// bounded when nobody scrapes. One per running server; stopped with it.
pub fn spawn_upkeep() -> tokio::task::JoinHandle<()> {
    let handle = handle();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            every.tick().await;
            handle.run_upkeep();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_labels_are_plain_and_bounded() {
        assert_eq!(
            operation_label("query search,taxonomy"),
            "query search,taxonomy"
        );
        assert_eq!(operation_label("weird\"name{}"), "other");
        assert_eq!(operation_label(&"x".repeat(101)), "other");
        for i in 0..MAX_OPERATIONS + 10 {
            operation_label(&format!("Op{i}"));
        }
        assert_eq!(operation_label("OneMoreAfterTheCap"), "other");
        // Names seen before the cap keep their label.
        assert_eq!(
            operation_label("query search,taxonomy"),
            "query search,taxonomy"
        );
    }
}
