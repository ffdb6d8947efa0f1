//! Acknowledged durable appends per second through `DocumentStore::append` over
//! `SqliteStorage`: each append resolves only after its group's commit was fsync'd.
//!
//! One writer is the baseline (one fsync per append: no group to share); the other cases show
//! what group commit makes of concurrency. Updates are small real Yjs updates (one typed
//! character each) made with yrs before timing starts.
//!
//! Run with `cargo bench -p teleportal-sqlite --bench append`; figures go to
//! `docs/storage.md`.
// The bench's clients are yrs documents; the store under test never builds one.
#![allow(clippy::disallowed_types)]
// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use teleportal_sqlite::SqliteStorage;
use teleportal_storage::{DocumentId, DocumentStore};
use yrs::{Doc, ReadTxn, Text, Transact};

/// One Yjs update per typed character, as an editor sends them (V1, ~20-30 bytes each).
fn typed_updates(count: usize) -> Arc<Vec<Bytes>> {
    let doc = Doc::with_client_id(42);
    let text = doc.get_or_insert_text("content");
    let mut updates = Vec::with_capacity(count);
    for i in 0..count {
        let before = doc.transact().state_vector();
        let mut txn = doc.transact_mut();
        let len = text.len(&txn);
        let ch = char::from(b'a' + u8::try_from(i % 26).expect("below 26"));
        text.insert(&mut txn, len, &ch.to_string());
        drop(txn);
        updates.push(Bytes::from(
            doc.transact().encode_state_as_update_v1(&before),
        ));
    }
    Arc::new(updates)
}

/// Runs `iters` appends spread over `writers` tasks, writer `w` on document `w % documents`,
/// and returns the wall time.
async fn appends(
    store: &DocumentStore,
    updates: &Arc<Vec<Bytes>>,
    iters: u64,
    writers: u64,
    documents: u64,
) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let share = iters / writers + u64::from(w < iters % writers);
            let (store, updates) = (store.clone(), Arc::clone(updates));
            let doc = DocumentId::from(format!("bench/doc-{}", w % documents));
            tokio::spawn(async move {
                for i in 0..share {
                    let i = usize::try_from(i).expect("fits") % updates.len();
                    store
                        .append(&doc, updates[i].clone())
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer task");
    }
    start.elapsed()
}

fn append(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let updates = typed_updates(4096);
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = SqliteStorage::open(dir.path()).expect("store");
    let store = DocumentStore::new(storage);

    let mut group = c.benchmark_group("sqlite-append");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    // (label, writers, documents)
    let cases = [
        ("1-doc/1-writer", 1, 1),
        ("1-doc/64-writers", 64, 1),
        ("1-doc/512-writers", 512, 1),
        ("100-docs/100-writers", 100, 100),
        ("100-docs/1000-writers", 1000, 100),
    ];
    for (label, writers, documents) in cases {
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.to_async(&runtime).iter_custom(|iters| {
                let (store, updates) = (store.clone(), Arc::clone(&updates));
                async move { appends(&store, &updates, iters, writers, documents).await }
            });
        });
    }
    group.finish();
    runtime.block_on(store.idle());
}

criterion_group!(benches, append);
criterion_main!(benches);
