//! The cost of meaning's brute-force scan: `Vectors::nearest` over 10k, 100k and 1M
//! assets (two int8 vectors of 384 dimensions each), with random unit vectors (the scan's
//! cost does not depend on what the vectors say). No model is needed.
//!
//!     cargo bench --bench vectors
//!     STAGEFIT_BENCH_SIZES=100000 cargo bench --bench vectors

use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use stagefit::meaning::Vectors;
use stagefit::meaning::model::normalize;

const DIMS: usize = 384;

/// A deterministic unit vector (xorshift).
fn vector(state: &mut u64) -> Vec<f32> {
    let mut v: Vec<f32> = (0..DIMS)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            (*state % 2_000) as f32 / 1_000.0 - 1.0
        })
        .collect();
    normalize(&mut v);
    v
}

fn main() {
    let sizes: Vec<usize> = std::env::var("STAGEFIT_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000]);
    // Under `cargo test`, one small size as a smoke test.
    let testing = std::env::args().any(|a| a == "--test");
    let sizes = if testing { vec![1_000] } else { sizes };
    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    let mut group = criterion.benchmark_group("vectors");
    for size in sizes {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut vectors = Vectors::new(DIMS);
        for i in 0..size {
            let (whole, title) = (vector(&mut state), vector(&mut state));
            vectors.insert(&format!("asset-{i}"), "h", 0, &whole, &title);
        }
        let query = vector(&mut state);
        group.bench_with_input(BenchmarkId::new("nearest_50", size), &size, |b, _| {
            b.iter(|| vectors.nearest(&query, 50, |_| true))
        });
    }
    group.finish();
    criterion.final_summary();
}
