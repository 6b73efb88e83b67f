//! The cost of meaning's scan: `Vectors::nearest` over 10k, 100k and 1M assets (two int8
//! vectors of 384 dimensions each), with random unit vectors (the scan's cost does not
//! depend on what the vectors say), beside the whole exact scan. No model is needed.
//!
//!     cargo bench --bench vectors
//!     STAGEFIT_BENCH_SIZES=100000 cargo bench --bench vectors
//!
//! What the sketch misses does depend on the vectors: with STAGEFIT_BENCH_VECTORS=FILE
//! (f32 little-endian, per asset its whole-text then its title vector, as
//! `benches/export_vectors.py` writes them from a server's database) it prints, for the
//! library in FILE, the share of the exact 10 and 100 nearest that the sketch finds when
//! it rescores 1%, 2% or 5% of the library (at least 8 per asset asked for, as the server), asking with 200 of the assets' own vectors.

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
        vectors.prepare();
        group.bench_with_input(BenchmarkId::new("whole_scan_50", size), &size, |b, _| {
            b.iter(|| vectors.nearest_by_sketch(&query, 50, size, |_| true))
        });
    }
    group.finish();
    criterion.final_summary();
    if let Ok(file) = std::env::var("STAGEFIT_BENCH_VECTORS") {
        recall(&file);
    }
}

/// What the sketch finds of the exact nearest, on real vectors.
fn recall(file: &str) {
    let bytes = std::fs::read(file).expect("reading STAGEFIT_BENCH_VECTORS");
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let rows: Vec<&[f32]> = values.chunks_exact(DIMS).collect();
    let mut vectors = Vectors::new(DIMS);
    for (i, pair) in rows.chunks_exact(2).enumerate() {
        vectors.insert(&format!("asset-{i}"), "h", 0, pair[0], pair[1]);
    }
    let n = vectors.len();
    let queries: Vec<&[f32]> = rows
        .iter()
        .step_by(2)
        .step_by((n / 200).max(1))
        .copied()
        .collect();
    for k in [10, 100] {
        for percent in [1, 2, 5] {
            let rescore = (n * percent / 100).max(8 * k);
            let (mut found, mut wanted) = (0usize, 0usize);
            for q in &queries {
                let exact = vectors.nearest_by_sketch(q, k, n, |_| true);
                let sketched = vectors.nearest_by_sketch(q, k, rescore, |_| true);
                wanted += exact.len();
                found += exact.iter().filter(|e| sketched.contains(e)).count();
            }
            println!(
                "recall@{k}, {n} assets, {percent}% rescored ({rescore}): {:.3}",
                found as f64 / wanted.max(1) as f64
            );
        }
    }
}
