//! The cost of the model in the process: one visitor's query; sixteen queries one after
//! the other and in one run (what the server does when they arrive together); one asset's
//! text cut to the model's 128 tokens, and 32 of them (a batch of the library's background
//! embedding). Needs the model (`scripts/fetch-model.sh`); without it the
//! bench says so and measures nothing.
//!
//!     cargo bench --bench embed
//!     STAGEFIT_BENCH_MODEL=DIR cargo bench --bench embed

use std::path::PathBuf;
use std::time::Duration;

use criterion::Criterion;
use stagefit::meaning::LocalModel;

/// Queries of one to eight words, as visitors type them.
const QUERIES: [&str; 16] = [
    "reduce churn",
    "single sign-on with okta",
    "how to save column widths in tables",
    "pricing",
    "kubernetes deployment guide",
    "roi calculator for finance teams",
    "what is change data capture",
    "case study healthcare",
    "api rate limits",
    "migrate from postgres",
    "time series compression ratio",
    "procurement security questionnaire",
    "onboarding checklist",
    "reconcile payments automatically",
    "latency dashboard",
    "compare plans",
];

fn main() {
    let dir = PathBuf::from(
        std::env::var("STAGEFIT_BENCH_MODEL").unwrap_or_else(|_| "models/all-minilm-l6-v2".into()),
    );
    if !dir.join("model.safetensors").exists() {
        eprintln!(
            "no model in {} (scripts/fetch-model.sh): nothing measured",
            dir.display()
        );
        return;
    }
    let model = LocalModel::load(&dir).expect("the model loads");
    let document = "Reconciliation matches every payout to the bank line it settles. ".repeat(20);
    let documents = vec![document.as_str(); 32];
    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    // Under `cargo test` (an unoptimised build, run without `--bench`): one query, as a
    // smoke test.
    let testing = !std::env::args().any(|a| a == "--bench");
    let mut group = criterion.benchmark_group("embed");
    let mut next = 0;
    group.bench_function("query_1", |b| {
        b.iter(|| {
            next = (next + 1) % QUERIES.len();
            model.embed(&[QUERIES[next]]).expect("the model embeds")
        })
    });
    if testing {
        group.finish();
        return;
    }
    group.bench_function("queries_16_one_at_a_time", |b| {
        b.iter(|| {
            for query in QUERIES {
                model.embed(&[query]).expect("the model embeds");
            }
        })
    });
    group.bench_function("queries_16_one_run", |b| {
        b.iter(|| model.embed(&QUERIES).expect("the model embeds"))
    });
    group.bench_function("document_128_tokens", |b| {
        b.iter(|| model.embed(&[document.as_str()]).expect("the model embeds"))
    });
    group.bench_function("documents_32_one_run", |b| {
        b.iter(|| model.embed(&documents).expect("the model embeds"))
    });
    group.finish();
    criterion.final_summary();
}
