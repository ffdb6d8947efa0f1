//! The state behind [`VirtualStorage`](super::VirtualStorage): per-document buffers, flushes and
//! the interval task.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use super::{AckMode, BatchConfig};
use crate::{
    AppendOptions, AppendReceipt, DocumentId, DocumentMetadata, DocumentStorage, Seq, StorageError,
    StoredDocument, StoredUpdate,
};

pub(super) const BACKEND: &str = "batching";

type Waiter = oneshot::Sender<Result<AppendReceipt, StorageError>>;

/// One buffered update.
struct Pending {
    update: Bytes,
    options: AppendOptions,
    /// The appender waiting for the flush (`Durable` mode only).
    waiter: Option<Waiter>,
}

/// The inner store's view of a document as this layer last saw it (`Buffered` mode receipts
/// and size checks are computed from it plus the buffer).
#[derive(Debug, Clone, Copy, Default)]
struct Base {
    last_seq: Seq,
    size: u64,
    tail_updates: u64,
    tail_bytes: u64,
}

impl From<AppendReceipt> for Base {
    fn from(r: AppendReceipt) -> Self {
        Base {
            last_seq: r.seq,
            size: r.size,
            tail_updates: r.tail_updates,
            tail_bytes: r.tail_bytes,
        }
    }
}

#[derive(Default)]
struct Doc {
    /// Serialises this document's I/O on the inner store (flushes, reads, compactions, deletes,
    /// fetching `base`), so a read never sees an update both in the inner store and in the
    /// buffer, and the buffer's front is always the next update to write. Appends do not take
    /// it: they only push to the buffer.
    io: Arc<tokio::sync::Mutex<()>>,
    /// Updates not yet in the inner store, oldest first. An update leaves only once the inner
    /// store has it (or, in `Durable` mode, once its appender was told it failed).
    pending: VecDeque<Pending>,
    pending_bytes: u64,
    base: Option<Base>,
    /// `Buffered` mode: the error of the last flush, until a flush of this document succeeds.
    failure: Option<Arc<StorageError>>,
    /// A size-triggered flush task is spawned and has not taken its batch yet.
    flush_scheduled: bool,
}

impl Doc {
    fn push(&mut self, pending: Pending) {
        self.pending_bytes += pending.update.len() as u64;
        self.pending.push_back(pending);
    }

    fn pop(&mut self) -> Option<Pending> {
        let pending = self.pending.pop_front()?;
        self.pending_bytes = self
            .pending_bytes
            .saturating_sub(pending.update.len() as u64);
        Some(pending)
    }

    /// True once, when the buffer crosses a threshold and no flush is scheduled yet.
    fn take_flush_trigger(&mut self, config: &BatchConfig) -> bool {
        let full =
            self.pending.len() >= config.max_updates || self.pending_bytes >= config.max_bytes;
        let trigger = full && !self.flush_scheduled;
        self.flush_scheduled |= trigger;
        trigger
    }

    /// Nothing here that the next access could not rebuild.
    fn is_idle(&self) -> bool {
        self.pending.is_empty()
            && self.failure.is_none()
            && !self.flush_scheduled
            && Arc::strong_count(&self.io) == 1
    }
}

#[derive(Default)]
struct State {
    docs: HashMap<DocumentId, Doc>,
    shut_down: bool,
}

pub(super) struct Shared<S> {
    inner: S,
    config: BatchConfig,
    state: Mutex<State>,
    /// Wakes the interval task when something is buffered.
    work: Arc<Notify>,
    /// The interval task and every flush, so `into_inner` can wait for them to end.
    tasks: TaskTracker,
}

impl<S> Shared<S> {
    pub(super) fn new(inner: S, config: BatchConfig, work: Arc<Notify>) -> Self {
        Shared {
            inner,
            config,
            state: Mutex::default(),
            work,
            tasks: TaskTracker::new(),
        }
    }

    pub(super) fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    pub(super) fn work(&self) -> &Arc<Notify> {
        &self.work
    }

    pub(super) fn inner(&self) -> &S {
        &self.inner
    }

    pub(super) fn into_inner(self) -> S {
        self.inner
    }

    pub(super) fn config(&self) -> &BatchConfig {
        &self.config
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every critical section below only moves entries between plain collections and cannot
        // panic half-way, so a poisoned lock still guards consistent data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn buffered_updates(&self) -> usize {
        self.state().docs.values().map(|d| d.pending.len()).sum()
    }

    pub(super) fn shut_down(&self) {
        self.state().shut_down = true;
    }

    fn durable(&self) -> bool {
        self.config.ack == AckMode::Durable
    }

    /// The document's I/O lock, if the document has an entry.
    fn io_of(&self, doc: &DocumentId) -> Option<Arc<tokio::sync::Mutex<()>>> {
        self.state().docs.get(doc).map(|d| Arc::clone(&d.io))
    }

    fn io_or_insert(&self, doc: &DocumentId) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(&self.state().docs.entry(doc.clone()).or_default().io)
    }

    /// Forgets `base` after the inner store changed in a way this layer did not observe
    /// (compaction, delete); the next buffered append fetches it again. Caller holds `io`.
    fn forget_base(&self, doc: &DocumentId) {
        if let Some(d) = self.state().docs.get_mut(doc) {
            d.base = None;
        }
        // Lets the interval task evict the entry if nothing else uses it.
        self.work.notify_one();
    }

    /// Drops entries that hold nothing; ends the interval task's round. Returns true when the
    /// layer is shut down and empty, so the task can end.
    fn finish_round(&self) -> bool {
        let mut state = self.state();
        state.docs.retain(|_, d| !d.is_idle());
        if state.docs.values().any(|d| !d.pending.is_empty()) {
            // Left over from a failed flush, or buffered while it ran: another round.
            self.work.notify_one();
        }
        state.shut_down && state.docs.is_empty()
    }
}

impl<S: DocumentStorage> Shared<S> {
    pub(super) async fn append_durable(
        self: &Arc<Self>,
        doc: &DocumentId,
        update: Bytes,
        options: AppendOptions,
    ) -> Result<AppendReceipt, StorageError> {
        let (tx, rx) = oneshot::channel();
        let flush_now = {
            let mut state = self.state();
            if state.shut_down {
                return Err(StorageError::ShutDown);
            }
            let d = state.docs.entry(doc.clone()).or_default();
            d.push(Pending {
                update,
                options,
                waiter: Some(tx),
            });
            d.take_flush_trigger(&self.config)
        };
        self.work.notify_one();
        if flush_now {
            drop(self.spawn_flush(doc.clone()));
        }
        // If this future is dropped the update stays buffered and is written by a later flush:
        // "stored or not, treat as not acknowledged", as the trait's cancel safety says.
        rx.await.unwrap_or_else(|_| {
            Err(StorageError::backend(
                BACKEND,
                "the buffered update was dropped before it was flushed",
            ))
        })
    }

    pub(super) async fn append_buffered(
        self: &Arc<Self>,
        doc: &DocumentId,
        update: Bytes,
        options: AppendOptions,
    ) -> Result<AppendReceipt, StorageError> {
        let len = update.len() as u64;
        loop {
            if self.state().shut_down {
                return Err(StorageError::ShutDown);
            }
            self.ensure_base(doc).await?;
            let mut state = self.state();
            if state.shut_down {
                return Err(StorageError::ShutDown);
            }
            // The entry can be evicted between `ensure_base` and here (it held nothing yet):
            // fetch again.
            let Some(d) = state.docs.get_mut(doc) else {
                continue;
            };
            if let Some(failure) = &d.failure {
                return Err(replicate(failure));
            }
            let Some(base) = d.base else {
                continue; // Forgotten by a compaction or delete meanwhile.
            };
            let size = base.size + d.pending_bytes + len;
            if let Some(limit) = options.max_size
                && size > limit
            {
                return Err(StorageError::DocumentTooLarge {
                    doc: doc.clone(),
                    size,
                    limit,
                });
            }
            d.push(Pending {
                update,
                options,
                waiter: None,
            });
            let buffered = d.pending.len() as u64;
            let receipt = AppendReceipt::new(
                base.last_seq + buffered,
                size,
                base.tail_updates + buffered,
                base.tail_bytes + d.pending_bytes,
            );
            let flush_now = d.take_flush_trigger(&self.config);
            drop(state);
            self.work.notify_one();
            if flush_now {
                drop(self.spawn_flush(doc.clone()));
            }
            return Ok(receipt);
        }
    }

    /// Makes sure the document's entry knows the inner store's sizes and last seq.
    async fn ensure_base(&self, doc: &DocumentId) -> Result<(), StorageError> {
        let io = {
            let mut state = self.state();
            let d = state.docs.entry(doc.clone()).or_default();
            if d.base.is_some() {
                return Ok(());
            }
            Arc::clone(&d.io)
        };
        // Under the I/O lock no flush of this document runs, so what the inner store reports
        // matches the buffer; holding a clone of the lock also keeps the entry from eviction.
        let _io = io.lock().await;
        if self.state().docs.get(doc).is_some_and(|d| d.base.is_some()) {
            return Ok(());
        }
        let base = match self.inner.metadata(doc).await? {
            Some(m) => Base {
                last_seq: m.last_seq,
                size: m.size,
                tail_updates: m.tail_updates,
                tail_bytes: m.tail_bytes,
            },
            // Empty, but a deleted document keeps its last seq as its snapshot seq.
            None => Base {
                last_seq: self.inner.load(doc).await?.last_seq(),
                ..Base::default()
            },
        };
        if let Some(d) = self.state().docs.get_mut(doc)
            && Arc::ptr_eq(&d.io, &io)
            && d.base.is_none()
        {
            d.base = Some(base);
        }
        Ok(())
    }

    pub(super) async fn load(&self, doc: &DocumentId) -> Result<StoredDocument, StorageError> {
        let Some(io) = self.io_of(doc) else {
            // Nothing buffered: the inner store alone is the whole answer.
            return self.inner.load(doc).await;
        };
        let _io = io.lock().await;
        let mut stored = self.inner.load(doc).await?;
        let state = self.state();
        if let Some(d) = state.docs.get(doc) {
            let mut seq = stored.last_seq();
            stored.tail.extend(d.pending.iter().map(|p| {
                seq += 1;
                StoredUpdate {
                    seq,
                    update: p.update.clone(),
                }
            }));
        }
        Ok(stored)
    }

    pub(super) async fn metadata(
        &self,
        doc: &DocumentId,
    ) -> Result<Option<DocumentMetadata>, StorageError> {
        let Some(io) = self.io_of(doc) else {
            return self.inner.metadata(doc).await;
        };
        let _io = io.lock().await;
        let meta = self.inner.metadata(doc).await?;
        let (count, bytes) = self
            .state()
            .docs
            .get(doc)
            .map_or((0, 0), |d| (d.pending.len() as u64, d.pending_bytes));
        if count == 0 {
            return Ok(meta);
        }
        Ok(Some(match meta {
            Some(m) => DocumentMetadata::new(
                m.size + bytes,
                m.last_seq + count,
                m.snapshot_seq,
                m.tail_updates + count,
                m.tail_bytes + bytes,
            ),
            None => {
                let snapshot_seq = self.inner.load(doc).await?.last_seq();
                DocumentMetadata::new(bytes, snapshot_seq + count, snapshot_seq, count, bytes)
            }
        }))
    }

    pub(super) async fn compact(
        self: &Arc<Self>,
        doc: &DocumentId,
        upto: Seq,
        snapshot: Bytes,
    ) -> Result<(), StorageError> {
        // `upto` can name buffered updates the caller loaded; the inner store must hold them.
        // Updates buffered after this flush came after the caller's load: their seqs are past
        // `upto` and they stay in the tail.
        joined(self.spawn_flush(doc.clone())).await?;
        let io = self.io_or_insert(doc);
        let _io = io.lock().await;
        self.inner.compact(doc, upto, snapshot).await?;
        self.forget_base(doc);
        Ok(())
    }

    pub(super) async fn delete(self: &Arc<Self>, doc: &DocumentId) -> Result<(), StorageError> {
        // Writing the buffer first consumes its seqs in the inner store, so they are never
        // reused, and nothing buffered before the delete survives it.
        joined(self.spawn_flush(doc.clone())).await?;
        let io = self.io_or_insert(doc);
        let _io = io.lock().await;
        self.inner.delete(doc).await?;
        self.forget_base(doc);
        Ok(())
    }

    /// Flushes every document with buffered updates, up to `flush_concurrency` at once.
    pub(super) async fn flush_all(self: &Arc<Self>) -> Result<(), StorageError> {
        let docs: Vec<DocumentId> = self
            .state()
            .docs
            .iter()
            .filter(|(_, d)| !d.pending.is_empty())
            .map(|(doc, _)| doc.clone())
            .collect();
        let results: Vec<Result<(), StorageError>> = futures::stream::iter(docs)
            .map(|doc| joined(self.spawn_flush(doc)))
            .buffer_unordered(self.config.flush_concurrency.max(1))
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Flushes one document in its own task, so a caller that stops waiting cannot cut a
    /// flush between an inner append and the buffer update that records it (which would write
    /// that update twice).
    fn spawn_flush(self: &Arc<Self>, doc: DocumentId) -> JoinHandle<Result<(), StorageError>> {
        let shared = Arc::clone(self);
        self.tasks.spawn(async move {
            let Some(io) = shared.io_of(&doc) else {
                return Ok(());
            };
            let _io = io.lock().await;
            shared.flush_locked(&doc).await
        })
    }

    /// Writes the document's buffer to the inner store, oldest first. Caller holds `io`.
    async fn flush_locked(&self, doc: &DocumentId) -> Result<(), StorageError> {
        let batch: Vec<(Bytes, AppendOptions)> = {
            let mut state = self.state();
            let Some(d) = state.docs.get_mut(doc) else {
                return Ok(());
            };
            d.flush_scheduled = false;
            d.pending
                .iter()
                .map(|p| (p.update.clone(), p.options))
                .collect()
        };
        let durable = self.durable();
        let total = batch.len();
        for (written, (update, options)) in batch.into_iter().enumerate() {
            // Buffered mode checked the limit when the appender could still be told.
            let options = if durable {
                options
            } else {
                AppendOptions::default()
            };
            let result = self.inner.append(doc, update, options).await;
            let mut state = self.state();
            // The caller's clone of `io` keeps the entry from eviction.
            let Some(d) = state.docs.get_mut(doc) else {
                return Ok(());
            };
            match result {
                Ok(receipt) => {
                    d.base = Some(Base::from(receipt));
                    if let Some(waiter) = d.pop().and_then(|p| p.waiter) {
                        // A dropped receiver is a cancelled appender; its update is stored,
                        // which the trait's cancel safety allows.
                        let _ = waiter.send(Ok(receipt));
                    }
                }
                Err(error @ StorageError::DocumentTooLarge { .. }) if durable => {
                    // Refused alone, as the inner store would without this layer.
                    if let Some(waiter) = d.pop().and_then(|p| p.waiter) {
                        let _ = waiter.send(Err(error));
                    }
                }
                Err(error) => {
                    tracing::warn!(%doc, error = %teleportal_core::ErrorChain::new(&error), "flushing buffered updates failed");
                    let error = Arc::new(error);
                    if durable {
                        // Unknown whether the failing one took effect, and the rest were not
                        // tried: none of them is acknowledged.
                        for _ in written..total {
                            if let Some(waiter) = d.pop().and_then(|p| p.waiter) {
                                let _ = waiter.send(Err(replicate(&error)));
                            }
                        }
                    } else {
                        // Kept, in order, for the next flush.
                        d.failure = Some(Arc::clone(&error));
                    }
                    return Err(replicate(&error));
                }
            }
        }
        if let Some(d) = self.state().docs.get_mut(doc) {
            d.failure = None;
        }
        Ok(())
    }
}

/// Flushes `interval` after something was buffered, until the layer is dropped (or shut down
/// with nothing left to write).
pub(super) async fn run_interval<S: DocumentStorage>(
    shared: Weak<Shared<S>>,
    work: Arc<Notify>,
    interval: Duration,
) {
    loop {
        // Idle layers sleep here and cost no wakeups.
        work.notified().await;
        if shared.strong_count() == 0 {
            return; // Woken by the layer's drop.
        }
        tokio::time::sleep(interval).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        // Errors reached the appenders (`Durable`) or are kept for the next append and flush
        // (`Buffered`), and were logged where they happened.
        let _ = shared.flush_all().await;
        if shared.finish_round() {
            return;
        }
    }
}

async fn joined(handle: JoinHandle<Result<(), StorageError>>) -> Result<(), StorageError> {
    handle
        .await
        .unwrap_or_else(|e| Err(StorageError::backend(BACKEND, e)))
}

/// One flush error, given to each appender it concerns. Size rejections keep their variant so
/// callers can act on them; anything else becomes a `Backend` error whose source is the
/// original.
fn replicate(error: &Arc<StorageError>) -> StorageError {
    match &**error {
        StorageError::ShutDown => StorageError::ShutDown,
        StorageError::DocumentTooLarge { doc, size, limit } => StorageError::DocumentTooLarge {
            doc: doc.clone(),
            size: *size,
            limit: *limit,
        },
        _ => StorageError::backend(BACKEND, FlushFailed(Arc::clone(error))),
    }
}

/// The shared cause of a failed flush.
#[derive(Debug)]
struct FlushFailed(Arc<StorageError>);

impl fmt::Display for FlushFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("writing buffered updates to the inner store failed")
    }
}

impl std::error::Error for FlushFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}
