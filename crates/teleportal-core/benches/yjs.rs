//! Our Yjs update functions against yrs's on recorded editing sessions: merging a whole
//! history, compacting it, diffing it for a peer that has half, its state vector, and
//! V1 → V2 conversion.
//!
//! ```text
//! cargo bench -p teleportal-core --bench yjs
//! node tests/js/make-history.mjs 100000 target/yjs-history-100k.bin   # adds the 100k session
//! ```
//!
//! Figures go to `docs/benchmarks.md`.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use teleportal_core::yjs;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;

fn read_history(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 4 {
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        out.push(rest[4..4 + len].to_vec());
        rest = &rest[4 + len..];
    }
    out
}

fn histories() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let mut out = vec![(
        "10k",
        read_history(include_bytes!("../fixtures/yjs-history-10k.bin")),
    )];
    let big = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/yjs-history-100k.bin");
    match std::fs::read(&big) {
        Ok(bytes) => out.push(("100k", read_history(&bytes))),
        Err(_) => eprintln!(
            "no {}: make it with `node tests/js/make-history.mjs 100000 target/yjs-history-100k.bin`",
            big.display()
        ),
    }
    out
}

fn bench(c: &mut Criterion) {
    for (name, updates) in histories() {
        let refs: Vec<&[u8]> = updates.iter().map(Vec::as_slice).collect();
        let bytes: u64 = updates.iter().map(|u| u.len() as u64).sum();
        let merged = yjs::merge_updates_v1(&refs).expect("history merges");
        let half = yjs::merge_updates_v1(&refs[..refs.len() / 2]).expect("half merges");
        let half_sv = yjs::encode_state_vector_from_update_v1(&half).expect("sv");
        let v2 = yjs::convert_update_v1_to_v2(&merged).expect("converts");
        eprintln!(
            "{name}: {} updates, {bytes} bytes; merged {} B, compacted {} B, yrs merged {} B",
            updates.len(),
            merged.len(),
            yjs::compact_updates_v1(&refs).expect("compacts").len(),
            yrs::merge_updates_v1(refs.iter().copied())
                .expect("yrs merges")
                .len(),
        );

        let mut g = c.benchmark_group(format!("yjs/{name}"));
        g.sample_size(10);
        g.throughput(Throughput::Bytes(bytes));
        g.bench_function(BenchmarkId::new("merge_all", "ours"), |b| {
            b.iter(|| yjs::merge_updates_v1(black_box(&refs)).expect("merge"));
        });
        if updates.len() <= 10_000 {
            g.bench_function(BenchmarkId::new("merge_all", "yrs"), |b| {
                b.iter(|| yrs::merge_updates_v1(black_box(refs.iter().copied())).expect("merge"));
            });
        } else {
            // yrs's merge grows superlinearly: about 90 s for 100k updates here, too long for
            // ten samples. One timed run instead.
            let started = std::time::Instant::now();
            black_box(yrs::merge_updates_v1(refs.iter().copied()).expect("merge"));
            eprintln!(
                "yjs/{name}/merge_all/yrs: one run {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        g.bench_function(BenchmarkId::new("compact_all", "ours"), |b| {
            b.iter(|| yjs::compact_updates_v1(black_box(&refs)).expect("compact"));
        });
        g.throughput(Throughput::Bytes(merged.len() as u64));
        g.bench_function(BenchmarkId::new("diff_half", "ours"), |b| {
            b.iter(|| yjs::diff_update_v1(black_box(&merged), &half_sv).expect("diff"));
        });
        g.bench_function(BenchmarkId::new("diff_half", "yrs"), |b| {
            b.iter(|| yrs::diff_updates_v1(black_box(&merged), &half_sv).expect("diff"));
        });
        g.bench_function(BenchmarkId::new("state_vector", "ours"), |b| {
            b.iter(|| yjs::encode_state_vector_from_update_v1(black_box(&merged)).expect("sv"));
        });
        g.bench_function(BenchmarkId::new("state_vector", "yrs"), |b| {
            b.iter(|| yrs::encode_state_vector_from_update_v1(black_box(&merged)).expect("sv"));
        });
        g.bench_function(BenchmarkId::new("v1_to_v2", "ours"), |b| {
            b.iter(|| yjs::convert_update_v1_to_v2(black_box(&merged)).expect("convert"));
        });
        g.bench_function(BenchmarkId::new("v1_to_v2", "yrs"), |b| {
            b.iter(|| {
                yrs::Update::decode_v1(black_box(&merged))
                    .expect("decode")
                    .encode_v2()
            });
        });
        g.bench_function(BenchmarkId::new("v2_to_v1", "ours"), |b| {
            b.iter(|| yjs::convert_update_v2_to_v1(black_box(&v2)).expect("convert"));
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
