// Tests use yrs documents as stand-in clients.
#![allow(clippy::disallowed_types)]
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::time::Instant;

use super::{AckMode, BatchConfig, VirtualStorage};
use crate::{
    AppendOptions, AppendReceipt, DocumentId, DocumentMetadata, DocumentStorage, DocumentStore,
    MemoryStorage, Seq, StorageError, StoredDocument,
};

/// A [`MemoryStorage`] whose appends fail on demand.
#[derive(Debug)]
struct Flaky {
    inner: MemoryStorage,
    /// Appends that may still succeed; negative means no limit.
    budget: AtomicI64,
}

impl Flaky {
    fn new() -> Self {
        Flaky {
            inner: MemoryStorage::new(),
            budget: AtomicI64::new(-1),
        }
    }

    /// Lets `n` more appends succeed, then fails every append.
    fn fail_after(&self, n: i64) {
        self.budget.store(n, Ordering::SeqCst);
    }

    fn heal(&self) {
        self.budget.store(-1, Ordering::SeqCst);
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl DocumentStorage for Flaky {
    async fn append(
        &self,
        doc: &DocumentId,
        update: Bytes,
        options: AppendOptions,
    ) -> Result<AppendReceipt, StorageError> {
        let allowed = self
            .budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| match b {
                b if b < 0 => Some(b),
                0 => None,
                b => Some(b - 1),
            })
            .is_ok();
        if !allowed {
            return Err(StorageError::backend("flaky", "injected failure"));
        }
        self.inner.append(doc, update, options).await
    }
    async fn load(&self, doc: &DocumentId) -> Result<StoredDocument, StorageError> {
        self.inner.load(doc).await
    }
    async fn metadata(&self, doc: &DocumentId) -> Result<Option<DocumentMetadata>, StorageError> {
        self.inner.metadata(doc).await
    }
    async fn compact(
        &self,
        doc: &DocumentId,
        upto: Seq,
        snapshot: Bytes,
    ) -> Result<(), StorageError> {
        self.inner.compact(doc, upto, snapshot).await
    }
    async fn delete(&self, doc: &DocumentId) -> Result<(), StorageError> {
        self.inner.delete(doc).await
    }
    async fn close(&self) -> Result<(), StorageError> {
        Ok(()) // Nothing queued: every acknowledged write is already in place.
    }
}

const HOUR: Duration = Duration::from_secs(3600);

fn buffered() -> BatchConfig {
    BatchConfig::default()
        .with_ack(AckMode::Buffered)
        .with_interval(HOUR)
}

fn durable() -> BatchConfig {
    BatchConfig::default()
        .with_ack(AckMode::Durable)
        .with_interval(HOUR)
}

fn doc() -> DocumentId {
    DocumentId::from("room/doc")
}

fn bytes(b: &'static [u8]) -> Bytes {
    Bytes::from_static(b)
}

async fn append<S: DocumentStorage>(
    storage: &S,
    update: &'static [u8],
) -> Result<AppendReceipt, StorageError> {
    storage
        .append(&doc(), bytes(update), AppendOptions::default())
        .await
}

async fn tail(storage: &impl DocumentStorage) -> Vec<(Seq, Bytes)> {
    let stored = storage.load(&doc()).await.unwrap();
    stored.tail.into_iter().map(|u| (u.seq, u.update)).collect()
}

/// Lets spawned flush tasks run without reaching the interval.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

fn is_injected(error: &StorageError) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = source {
        if e.to_string() == "injected failure" {
            return true;
        }
        source = e.source();
    }
    false
}

#[tokio::test(start_paused = true)]
async fn buffered_updates_are_read_back_before_any_flush() {
    let inner = MemoryStorage::new();
    append(&inner, b"first").await.unwrap();
    let storage = VirtualStorage::with_config(inner, buffered());

    let receipt = append(&storage, b"second").await.unwrap();
    assert_eq!(
        receipt.seq, 2,
        "numbered on from the inner store's last seq"
    );
    assert_eq!(receipt.size, 11);
    assert_eq!(receipt.tail_updates, 2);
    append(&storage, b"third").await.unwrap();

    assert_eq!(
        tail(storage.get_ref()).await.len(),
        1,
        "nothing flushed yet"
    );
    assert_eq!(
        tail(&storage).await,
        vec![
            (1, bytes(b"first")),
            (2, bytes(b"second")),
            (3, bytes(b"third"))
        ]
    );
    let meta = storage.metadata(&doc()).await.unwrap().unwrap();
    assert_eq!((meta.last_seq, meta.tail_updates, meta.size), (3, 3, 16));
}

#[tokio::test(start_paused = true)]
async fn buffered_update_of_an_empty_document_has_metadata() {
    let storage = VirtualStorage::with_config(MemoryStorage::new(), buffered());
    append(&storage, b"abc").await.unwrap();
    let meta = storage.metadata(&doc()).await.unwrap().unwrap();
    assert_eq!((meta.last_seq, meta.size, meta.snapshot_seq), (1, 3, 0));
}

#[tokio::test(start_paused = true)]
async fn durable_append_resolves_after_the_flush_with_the_inner_seq() {
    let inner = MemoryStorage::new();
    append(&inner, b"first").await.unwrap();
    let interval = Duration::from_millis(50);
    let storage = VirtualStorage::with_config(inner, durable().with_interval(interval));

    let start = Instant::now();
    let receipt = append(&storage, b"second").await.unwrap();
    assert!(start.elapsed() >= interval, "waited for the interval flush");
    assert_eq!(receipt.seq, 2);
    assert_eq!(
        tail(storage.get_ref()).await.len(),
        2,
        "durable when acknowledged"
    );
    assert_eq!(storage.buffered_updates(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_full_buffer_flushes_without_waiting_for_the_interval() {
    let storage = VirtualStorage::with_config(MemoryStorage::new(), buffered().with_max_updates(3));
    append(&storage, b"a").await.unwrap();
    append(&storage, b"b").await.unwrap();
    settle().await;
    assert!(
        tail(storage.get_ref()).await.is_empty(),
        "below the threshold"
    );
    append(&storage, b"c").await.unwrap();
    settle().await;
    assert_eq!(tail(storage.get_ref()).await.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_buffer_past_max_bytes_flushes() {
    let storage = VirtualStorage::with_config(MemoryStorage::new(), buffered().with_max_bytes(10));
    append(&storage, b"123456").await.unwrap();
    settle().await;
    assert!(tail(storage.get_ref()).await.is_empty());
    append(&storage, b"123456").await.unwrap();
    settle().await;
    assert_eq!(tail(storage.get_ref()).await.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn durable_appends_filling_a_batch_resolve_together() {
    let storage = VirtualStorage::with_config(MemoryStorage::new(), durable().with_max_updates(2));
    let start = Instant::now();
    let (a, b) = tokio::join!(append(&storage, b"a"), append(&storage, b"b"));
    assert!(
        start.elapsed() < HOUR,
        "flushed on size, not on the interval"
    );
    let mut seqs = [a.unwrap().seq, b.unwrap().seq];
    seqs.sort_unstable();
    assert_eq!(seqs, [1, 2]);
    assert_eq!(tail(storage.get_ref()).await.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_interval_flushes_buffered_updates() {
    let interval = Duration::from_millis(50);
    let storage =
        VirtualStorage::with_config(MemoryStorage::new(), buffered().with_interval(interval));
    append(&storage, b"a").await.unwrap();
    tokio::time::sleep(Duration::from_millis(40)).await;
    assert!(tail(storage.get_ref()).await.is_empty(), "not yet");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(tail(storage.get_ref()).await, vec![(1, bytes(b"a"))]);
    assert_eq!(storage.buffered_updates(), 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_flushes_then_rejects_appends() {
    let storage = VirtualStorage::with_config(MemoryStorage::new(), buffered());
    append(&storage, b"a").await.unwrap();
    append(&storage, b"b").await.unwrap();
    storage.shutdown().await.unwrap();
    assert_eq!(tail(storage.get_ref()).await.len(), 2);
    assert!(matches!(
        append(&storage, b"c").await,
        Err(StorageError::ShutDown)
    ));
    assert_eq!(tail(&storage).await.len(), 2, "reads still work");
}

#[tokio::test(start_paused = true)]
async fn into_inner_returns_the_flushed_store() {
    let storage = VirtualStorage::with_config(MemoryStorage::new(), buffered());
    append(&storage, b"a").await.unwrap();
    let inner = storage.into_inner().await.unwrap();
    assert_eq!(tail(&inner).await, vec![(1, bytes(b"a"))]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_buffered_flush_keeps_the_updates_and_reports_the_error() {
    let storage = VirtualStorage::with_config(Flaky::new(), buffered());
    storage.get_ref().fail_after(0);
    append(&storage, b"a").await.unwrap();
    append(&storage, b"b").await.unwrap();

    let error = storage.flush().await.unwrap_err();
    assert!(matches!(
        error,
        StorageError::Backend {
            backend: "batching",
            ..
        }
    ));
    assert!(is_injected(&error), "the cause is reachable: {error:?}");
    assert_eq!(storage.buffered_updates(), 2, "kept for retry");
    assert_eq!(tail(&storage).await.len(), 2, "still readable");
    let refused = append(&storage, b"c").await.unwrap_err();
    assert!(
        is_injected(&refused),
        "appends see the failure until a flush succeeds"
    );

    storage.get_ref().heal();
    storage.flush().await.unwrap();
    assert_eq!(
        tail(storage.get_ref()).await,
        vec![(1, bytes(b"a")), (2, bytes(b"b"))]
    );
    assert_eq!(append(&storage, b"c").await.unwrap().seq, 3);
}

#[tokio::test(start_paused = true)]
async fn the_interval_retries_a_failed_buffered_flush() {
    let interval = Duration::from_millis(50);
    let storage = VirtualStorage::with_config(Flaky::new(), buffered().with_interval(interval));
    storage.get_ref().fail_after(0);
    append(&storage, b"a").await.unwrap();
    tokio::time::sleep(interval * 2).await;
    assert!(tail(storage.get_ref()).await.is_empty());
    storage.get_ref().heal();
    tokio::time::sleep(interval * 2).await;
    assert_eq!(tail(storage.get_ref()).await, vec![(1, bytes(b"a"))]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_durable_flush_fails_every_waiter_and_keeps_what_was_acknowledged() {
    let storage = VirtualStorage::with_config(Flaky::new(), durable().with_max_updates(3));
    storage.get_ref().fail_after(1);
    let start = Instant::now();
    let (a, b, c) = tokio::join!(
        append(&storage, b"a"),
        append(&storage, b"b"),
        append(&storage, b"c")
    );
    assert_eq!(a.unwrap().seq, 1, "written before the failure");
    assert!(is_injected(&b.unwrap_err()));
    assert!(is_injected(&c.unwrap_err()));
    assert!(
        start.elapsed() < HOUR,
        "all failed by the one flush, none retried"
    );
    assert_eq!(tail(storage.get_ref()).await, vec![(1, bytes(b"a"))]);
    assert_eq!(tail(&storage).await.len(), 1, "failed updates are not kept");
    assert_eq!(storage.buffered_updates(), 0);

    storage.get_ref().heal();
    assert_eq!(append(&storage, b"d").await.unwrap().seq, 2);
}

#[tokio::test(start_paused = true)]
async fn the_size_limit_counts_buffered_bytes() {
    let storage = VirtualStorage::with_config(MemoryStorage::new(), buffered());
    let limit = AppendOptions::with_max_size(15);
    let ten = bytes(b"0123456789");
    storage.append(&doc(), ten.clone(), limit).await.unwrap();
    let error = storage.append(&doc(), ten, limit).await.unwrap_err();
    assert!(matches!(
        error,
        StorageError::DocumentTooLarge {
            size: 20,
            limit: 15,
            ..
        }
    ));
    assert_eq!(
        storage.buffered_updates(),
        1,
        "the rejected update is not buffered"
    );
}

#[tokio::test(start_paused = true)]
async fn a_durable_batch_past_the_size_limit_refuses_only_the_update_too_large() {
    let storage = VirtualStorage::with_config(MemoryStorage::new(), durable().with_max_updates(3));
    let limit = AppendOptions::with_max_size(15);
    let doc = doc();
    let (a, b, c) = tokio::join!(
        storage.append(&doc, bytes(b"0123456789"), limit),
        storage.append(&doc, bytes(b"0123456789"), limit),
        storage.append(&doc, bytes(b"01234"), limit),
    );
    assert_eq!(a.unwrap().size, 10);
    assert!(matches!(
        b,
        Err(StorageError::DocumentTooLarge { size: 20, .. })
    ));
    assert_eq!(c.unwrap().size, 15, "a smaller update still fits");
}

#[tokio::test(start_paused = true)]
async fn compaction_through_the_layer_folds_buffered_updates() {
    use yrs::{Doc, GetString, ReadTxn, Text, Transact};

    let storage = Arc::new(VirtualStorage::with_config(
        MemoryStorage::new(),
        buffered(),
    ));
    let store = DocumentStore::from_arc(storage.clone());
    let client = Doc::new();
    let text = client.get_or_insert_text("t");
    for word in ["one ", "two ", "three"] {
        let before = client.transact().state_vector();
        let len = text.get_string(&client.transact()).len();
        let len = u32::try_from(len).unwrap();
        text.insert(&mut client.transact_mut(), len, word);
        let update = client.transact().encode_state_as_update_v1(&before);
        store.append(&doc(), Bytes::from(update)).await.unwrap();
    }
    assert!(store.compact(&doc()).await.unwrap());

    let inner = storage.get_ref().load(&doc()).await.unwrap();
    assert_eq!(
        inner.snapshot_seq, 3,
        "the buffered updates were flushed and folded"
    );
    assert!(inner.tail.is_empty());
    let state = store.read(&doc()).await.unwrap();
    let replica = Doc::new();
    let update = yrs::updates::decoder::Decode::decode_v1(&state.update).unwrap();
    replica.transact_mut().apply_update(update).unwrap();
    let replica_text = replica.get_or_insert_text("t");
    assert_eq!(
        replica_text.get_string(&replica.transact()),
        "one two three"
    );
}

#[tokio::test(start_paused = true)]
async fn delete_flushes_first_and_never_reuses_a_seq() {
    let storage = VirtualStorage::with_config(MemoryStorage::new(), buffered());
    append(&storage, b"a").await.unwrap();
    append(&storage, b"b").await.unwrap();
    storage.delete(&doc()).await.unwrap();
    assert!(storage.load(&doc()).await.unwrap().is_empty());
    assert_eq!(storage.metadata(&doc()).await.unwrap(), None);

    assert_eq!(append(&storage, b"c").await.unwrap().seq, 3);
    assert_eq!(tail(&storage).await, vec![(3, bytes(b"c"))]);
    storage.flush().await.unwrap();
    assert_eq!(tail(storage.get_ref()).await, vec![(3, bytes(b"c"))]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_flush_before_delete_leaves_the_document() {
    let storage = VirtualStorage::with_config(Flaky::new(), buffered());
    storage.get_ref().fail_after(0);
    append(&storage, b"a").await.unwrap();
    assert!(storage.delete(&doc()).await.is_err());
    assert_eq!(tail(&storage).await, vec![(1, bytes(b"a"))]);
}

#[tokio::test(start_paused = true)]
async fn documents_are_flushed_independently() {
    let storage = VirtualStorage::with_config(MemoryStorage::new(), buffered());
    let other = DocumentId::from("room/other");
    append(&storage, b"a").await.unwrap();
    storage
        .append(&other, bytes(b"x"), AppendOptions::default())
        .await
        .unwrap();
    storage.flush().await.unwrap();
    assert_eq!(tail(storage.get_ref()).await, vec![(1, bytes(b"a"))]);
    let stored = storage.get_ref().load(&other).await.unwrap();
    assert_eq!(stored.tail.len(), 1);
    assert_eq!(stored.tail[0].update, bytes(b"x"));
}
