//! Merkle tree building and proof verification over whole files (issue 7's benchmark):
//! `cargo bench -p teleportal-core --features blake3 --bench merkle`.
//!
//! For each hasher (SHA-256 as the reference's file ids, BLAKE3), file size (10 MiB, 100 MiB)
//! and chunk size (1 MiB, 64 KiB): build the tree from the file's chunks, and verify every
//! chunk of the file against the root with its proof, as a downloader does. Throughput is
//! file bytes per second.
// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::num::NonZeroUsize;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use teleportal_core::merkle::{
    Blake3Hasher, MerkleHasher, MerkleTree, Sha256Hasher, chunks, verify_proof,
};

const MIB: usize = 1 << 20;

fn file(len: usize) -> Vec<u8> {
    // Not all zeros, so no hasher can shortcut anything.
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0])
        .collect()
}

fn bench_hasher<H: MerkleHasher>(c: &mut Criterion, name: &str, hasher: &H) {
    let mut group = c.benchmark_group(format!("merkle/{name}"));
    group.sample_size(10);
    for file_mib in [10usize, 100] {
        let data = file(file_mib * MIB);
        for (chunk_label, chunk) in [("1MiB", MIB), ("64KiB", 64 << 10)] {
            let size = NonZeroUsize::new(chunk).expect("non-zero");
            group.throughput(Throughput::Bytes(data.len() as u64));
            let id = format!("{file_mib}MiB/{chunk_label}");
            group.bench_function(BenchmarkId::new("build", &id), |b| {
                b.iter(|| MerkleTree::from_chunks(hasher, chunks(black_box(&data), size)))
            });
            let tree = MerkleTree::from_chunks(hasher, chunks(&data, size)).expect("tree");
            let proofs: Vec<_> = (0..tree.leaf_count())
                .map(|i| tree.proof(i).expect("proof"))
                .collect();
            let (root, leaves) = (tree.root(), u64::from(tree.leaf_count()));
            group.bench_function(BenchmarkId::new("verify", &id), |b| {
                b.iter(|| {
                    for ((index, chunk), proof) in chunks(&data, size).enumerate().zip(&proofs) {
                        let ok = verify_proof(hasher, chunk, proof, &root, index as u64, leaves);
                        assert!(ok);
                    }
                })
            });
        }
    }
    group.finish();
}

fn merkle(c: &mut Criterion) {
    bench_hasher(c, "sha256", &Sha256Hasher);
    bench_hasher(c, "blake3", &Blake3Hasher);
}

criterion_group!(benches, merkle);
criterion_main!(benches);
