//! In-process cost of the recommendation and search paths at 10k, 100k and 1M assets.
//!
//!     cargo bench --bench recommend                      # all sizes
//!     STAGEFIT_BENCH_SIZES=100000 cargo bench --bench recommend
//!
//! Each size's library comes from `stagefit generate` (seed 7) and is indexed once into
//! `target/bench-data/`, then reused. The measured call is `Library::recommend` /
//! `Library::search`, the same service call a GraphQL resolver makes (blocking-pool hop,
//! index retrieval, explanation, diversity), without HTTP. Under `cargo test` each
//! benchmark runs once on a small library, as a smoke test.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use stagefit::config::Config;
use stagefit::domain::{
    AssetFilter, IndustrySlug, Language, Role, SearchRequest, SortOrder, Stage, TaxonomyValue,
};
use stagefit::domain::{WeightOverrides, Weights};
use stagefit::generate::Generator;
use stagefit::ranking::{Audience, RankContext, graded_dimensions};
use stagefit::search::{self, IndexLock, IndexOp, RecommendRequest};
use stagefit::services::{AudienceRequest, IndexFollower, Library, RecommendationQuery};
use stagefit::store::Store;

const SEED: u64 = 7;

struct Fixture {
    library: Library,
    index: search::SearchIndex,
    _follower: IndexFollower,
}

fn data_dir(size: u64) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("target/bench-data/{size}-{SEED}"))
}

async fn fixture(size: u64) -> Fixture {
    let dir = data_dir(size);
    let complete = dir.join("COMPLETE");
    if complete.exists() && !index_is_complete(&dir, size) {
        // Built by another schema version: it would open empty.
        let _ = std::fs::remove_file(&complete);
    }
    if !complete.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("bench dir");
        let started = std::time::Instant::now();
        let lock = IndexLock::acquire(&dir.join("index")).expect("lock");
        let (_, mut writer) = search::open(&lock, 256 * 1024 * 1024).expect("open index");
        let mut generator = Generator::new(SEED);
        let mut batch = Vec::with_capacity(10_000);
        for i in 0..size {
            let asset = generator
                .asset(i)
                .validate()
                .expect("generated assets are valid");
            batch.push(IndexOp::Upsert(Box::new(asset)));
            if batch.len() == 10_000 {
                writer.stage(std::mem::take(&mut batch)).expect("stage");
            }
        }
        writer.stage(batch).expect("stage");
        writer.commit(1).expect("commit");
        writer.finish().expect("merge");
        drop(lock);
        std::fs::write(&complete, b"").expect("marker");
        eprintln!(
            "indexed {size} generated assets in {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
    let mut config = Config::in_dir(&dir);
    config.database_url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    let store = Store::connect(&config.database_url).await.expect("store");
    let lock = IndexLock::acquire(&config.index_dir).expect("lock");
    let (index, writer) = search::open(&lock, config.index_writer_memory).expect("open index");
    // The lock stays held by the follower's directory for the process's life.
    std::mem::forget(lock);
    let follower = IndexFollower::start(store.clone(), writer, 1000, Duration::from_secs(3600))
        .await
        .expect("follower");
    let library = Library::new(
        store,
        index.clone(),
        follower.handle(),
        &config,
        stagefit::meaning::Meaning::none(),
    );
    // Every list gets a signed id, as a server's do.
    library
        .load_list_signer()
        .await
        .expect("the list id secret");
    Fixture {
        library,
        index,
        _follower: follower,
    }
}

fn index_is_complete(dir: &std::path::Path, size: u64) -> bool {
    let Ok(lock) = IndexLock::acquire(&dir.join("index")) else {
        return false;
    };
    match search::open(&lock, 16 * 1024 * 1024) {
        Ok((index, _writer)) => index.num_docs() == size,
        Err(_) => false,
    }
}

fn explicit() -> AudienceRequest {
    AudienceRequest {
        stage: Some(Stage::Decision),
        role: Some(Role::TechnicalIntegrator),
        industry: IndustrySlug::parse("financial-services/payments").ok(),
        language: Language::parse("en").ok(),
        ..AudienceRequest::default()
    }
}

fn query(audience: AudienceRequest, text: Option<&str>) -> RecommendationQuery {
    RecommendationQuery {
        audience,
        first: 10,
        text: text.map(str::to_owned),
        filter: AssetFilter::default(),
        weights: WeightOverrides::default(),
        diversify: true,
        profile: None,
        placement: None,
    }
}

/// The peer's query in DESIGN.md: published, DECISION, for technical integrators or
/// everyone, payments or cross-industry, English, newest first, 10 hits.
fn peer_filter() -> AssetFilter {
    AssetFilter {
        stages: vec![Stage::Decision],
        roles: vec![Role::TechnicalIntegrator],
        industries: IndustrySlug::parse("financial-services/payments")
            .into_iter()
            .collect(),
        languages: Language::parse("en").into_iter().collect(),
        ..AssetFilter::default()
    }
}

/// The audience of the text cases: CONSIDERATION, DECISION_MAKER, nothing else known.
fn text_audience() -> AudienceRequest {
    AudienceRequest {
        stage: Some(Stage::Consideration),
        role: Some(Role::DecisionMaker),
        ..AudienceRequest::default()
    }
}

/// 64 searches of one to three words, drawn like the library's text (`Generator::query`).
fn text_mix() -> Vec<String> {
    let mut generator = Generator::new(SEED + 1);
    (0..64).map(|_| generator.query()).collect()
}

/// Per-request latency of recommendations over the text mix: each query 20 times, in
/// rounds, so the distribution is over queries as a server would see them.
fn report_latency(
    size: u64,
    runtime: &tokio::runtime::Runtime,
    library: &Library,
    queries: &[String],
) {
    let mut times: Vec<Duration> = Vec::with_capacity(queries.len() * 20);
    for round in 0..21 {
        for text in queries {
            let started = std::time::Instant::now();
            runtime
                .block_on(library.recommend(query(text_audience(), Some(text))))
                .expect("ok");
            // The first round warms the caches and is not counted.
            if round > 0 {
                times.push(started.elapsed());
            }
        }
    }
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    eprintln!(
        "latency at {size}: recommend/text-mix ({} queries x 20): p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        queries.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
}

/// How much of the index each kind of request touches, to show how cost grows.
fn report_work(size: u64, index: &search::SearchIndex) {
    let weights = Weights::default();
    let now = chrono::Utc::now().timestamp();
    let cases: [(&str, Audience, Option<&str>); 3] = [
        (
            "explicit",
            Audience {
                stage: Stage::Decision,
                role: Some(Role::TechnicalIntegrator),
                industry: IndustrySlug::parse("financial-services/payments").ok(),
                language: Language::english(),
                concerns: vec![],
            },
            None,
        ),
        (
            "anonymous",
            Audience {
                stage: Stage::Awareness,
                role: None,
                industry: None,
                language: Language::english(),
                concerns: vec![],
            },
            None,
        ),
        (
            "text",
            Audience {
                stage: Stage::Consideration,
                role: Some(Role::DecisionMaker),
                industry: None,
                language: Language::english(),
                concerns: vec![],
            },
            Some("reconciliation api"),
        ),
    ];
    for (name, audience, text) in cases {
        let dims = graded_dimensions(&audience);
        let found = index
            .recommend(&RecommendRequest {
                rank: &RankContext {
                    weights,
                    now: chrono::DateTime::from_timestamp(now, 0).expect("a time"),
                    half_life_days: 365.0,
                    query: text.map(str::to_owned),
                    synonyms: Vec::new(),
                    sequels: Vec::new(),
                    linked: Vec::new(),
                    similar_to: None,
                    semantic_ratio: 0.0,
                    also_read: None,
                },
                dimensions: &dims,
                filter: &AssetFilter::default(),
                exclude_ids: &[],
                popular_ids: &[],
                concerns: TaxonomyValue::mask(&audience.concerns),
                window: 30,
                slice_tiers_above: search::DEFAULT_SLICE_TIERS_ABOVE,
                text_first: false,
                audience: (audience.stage, audience.role),
            })
            .expect("recommend");
        eprintln!(
            "work at {size}: recommend/{name}: {} tiers searched, {} documents scored",
            found.tiers_searched, found.docs_scored
        );
    }
}

/// What signing a list's id costs when it is ranked, and checking one when it is reported:
/// ten items, a context with a query.
fn list_ids(criterion: &mut Criterion) {
    use stagefit::domain::{ListContext, ListSigner};
    let signer = ListSigner::new(b"0123456789abcdef0123456789abcdef01234567");
    let context = ListContext {
        at: 1_765_000_000,
        account: Some("acme-payments".into()),
        profile: "default".into(),
        experiment: Some("homepage-freshness".into()),
        variant: Some("fresh".into()),
        placement: Some("home".into()),
        stage: "DECISION".into(),
        role: Some("TECHNICAL_INTEGRATOR".into()),
        industry: Some("financial-services/payments".into()),
        language: "en".into(),
        query: Some("reconciliation api".into()),
        ..Default::default()
    };
    let items: Vec<String> = (0..10)
        .map(|i| format!("case-study-payments-{i}"))
        .collect();
    let id = signer.issue(
        &context,
        items.iter().map(String::as_str),
        "0123456789abcdef",
    );
    let mut group = criterion.benchmark_group("list-id");
    group.bench_function("issue", |b| {
        b.iter(|| {
            signer.issue(
                &context,
                items.iter().map(String::as_str),
                "0123456789abcdef",
            )
        })
    });
    group.bench_function("open", |b| b.iter(|| signer.open(&id).expect("opens")));
    group.bench_function("renew", |b| {
        b.iter(|| signer.renew(&id, "fedcba9876543210").expect("renews"))
    });
    group.finish();
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<u64> = if bench_mode {
        std::env::var("STAGEFIT_BENCH_SIZES")
            .unwrap_or_else(|_| "10000,100000,1000000".to_owned())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect()
    } else {
        vec![2_000]
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut criterion = Criterion::default()
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    list_ids(&mut criterion);
    for size in sizes {
        let fixture = runtime.block_on(fixture(size));
        report_work(size, &fixture.index);
        let library = &fixture.library;
        let mut group = criterion.benchmark_group("recommend");
        group.bench_function(BenchmarkId::new("explicit", size), |b| {
            b.iter(|| {
                runtime
                    .block_on(library.recommend(query(explicit(), None)))
                    .expect("ok")
            })
        });
        group.bench_function(BenchmarkId::new("anonymous", size), |b| {
            b.iter(|| {
                runtime
                    .block_on(library.recommend(query(AudienceRequest::default(), None)))
                    .expect("ok")
            })
        });
        let queries = text_mix();
        report_latency(size, &runtime, library, &queries);
        let mut next = queries.iter().cycle();
        group.bench_function(BenchmarkId::new("text-mix", size), |b| {
            b.iter(|| {
                let text = next.next().map(String::as_str);
                runtime
                    .block_on(library.recommend(query(text_audience(), text)))
                    .expect("ok")
            })
        });
        group.bench_function(BenchmarkId::new("text", size), |b| {
            b.iter(|| {
                let audience = AudienceRequest {
                    stage: Some(Stage::Consideration),
                    role: Some(Role::DecisionMaker),
                    ..AudienceRequest::default()
                };
                runtime
                    .block_on(library.recommend(query(audience, Some("reconciliation api"))))
                    .expect("ok")
            })
        });
        group.finish();
        let mut group = criterion.benchmark_group("search");
        group.bench_function(BenchmarkId::new("peer-filter", size), |b| {
            b.iter(|| {
                runtime
                    .block_on(library.search(SearchRequest {
                        text: None,
                        filter: peer_filter(),
                        limit: 10,
                        offset: 0,
                        sort: SortOrder::Newest,
                        facets: Vec::new(),
                        highlights: false,
                        count: true,
                        synonyms: Vec::new(),
                        semantic_ratio: None,
                    }))
                    .expect("ok")
            })
        });
        group.bench_function(BenchmarkId::new("text", size), |b| {
            b.iter(|| {
                runtime
                    .block_on(library.search(SearchRequest {
                        text: Some("payment settlement".to_owned()),
                        filter: AssetFilter::default(),
                        limit: 10,
                        offset: 0,
                        sort: SortOrder::Relevance,
                        facets: Vec::new(),
                        highlights: true,
                        count: false,
                        synonyms: Vec::new(),
                        semantic_ratio: None,
                    }))
                    .expect("ok")
            })
        });
        group.finish();
    }
    criterion.final_summary();
}
