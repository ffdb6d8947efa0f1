//! [`VirtualStorage`]: a write-batching layer over any [`DocumentStorage`].
//!
//! Appends are buffered per document in memory and written to the inner store by a *flush*:
//! when a document's buffer reaches [`BatchConfig::max_updates`] or [`BatchConfig::max_bytes`],
//! at most [`BatchConfig::interval`] after an update was buffered, on [`VirtualStorage::flush`],
//! and on [`VirtualStorage::shutdown`]. Reads see buffered updates (read-your-writes).
//!
//! ```
//! use bytes::Bytes;
//! use teleportal_storage::batching::{AckMode, BatchConfig, VirtualStorage};
//! use teleportal_storage::{AppendOptions, DocumentId, DocumentStorage, MemoryStorage};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let config = BatchConfig::default().with_ack(AckMode::Buffered);
//! let storage = VirtualStorage::with_config(MemoryStorage::new(), config);
//! let doc = DocumentId::from("notes");
//! storage.append(&doc, Bytes::from_static(&[0, 0]), AppendOptions::default()).await?;
//! assert_eq!(storage.load(&doc).await?.tail.len(), 1); // read-your-writes
//! storage.shutdown().await?; // everything buffered is now in the inner store
//! assert_eq!(storage.get_ref().load(&doc).await?.tail.len(), 1);
//! # Ok::<(), teleportal_storage::StorageError>(())
//! # }).unwrap();
//! ```
//!
//! # Durability
//! [`AckMode::Durable`] (the default) keeps the [`DocumentStorage`] contract: an append resolves
//! only after the flush that wrote it to the inner store succeeded, with the inner store's own
//! receipt (its real [`Seq`] and sizes). Batching is then group commit at this
//! layer. If a flush fails, the update the inner store refused and every later update of that
//! flush fail with the error (their appenders were never acknowledged, so a client resends);
//! the updates before it were stored and acknowledged. Nothing acknowledged is lost and nothing
//! that failed was acknowledged. An update the inner store rejects as too large fails alone, as
//! it would without this layer.
//!
//! [`AckMode::Buffered`] **weakens the contract**: an append resolves as soon as the update is
//! buffered, before it is durable. A crash, or dropping the layer without
//! [`shutdown`](VirtualStorage::shutdown), loses every buffered update. In exchange:
//! - A failed flush keeps its updates buffered, in order, readable, and retried on the next
//!   interval. The error is returned from [`flush`](VirtualStorage::flush) and from every append
//!   to that document until a flush of it succeeds, so writers see the failure and buffers stop
//!   growing while the inner store is down.
//! - `flush().await` returning `Ok` means every update appended before the call is durable: the
//!   only durability statement in this mode. Nothing it reported durable is lost.
//! - The receipt's `seq` is *provisional*: the position the update has in this layer's reads
//!   (the inner store's last seq plus its place in the buffer), and the seq the inner store
//!   assigns when, as the stores of this crate do, it numbers appends consecutively and nothing
//!   else writes to the document. Sizes in the receipt count buffered bytes.
//!
//! # What batching buys, and what it does not
//! This layer never parses updates, so it cannot merge them: a flush still makes one inner
//! append per update, in append order within a document (one inner append in flight per
//! document), up to [`BatchConfig::flush_concurrency`] documents at once. Hence:
//! - In `Buffered` mode the gain is latency: writers wait for memory, not storage; a slow or
//!   briefly failing store does not slow them, and it receives bursts instead of a trickle.
//! - In `Durable` mode over a store that already group-commits concurrent appends (the embedded
//!   SQLite store), the layer saves **no** commits. Across documents, one flush's appends still
//!   share the store's commits; within one document they are now written one after another, so
//!   a hot document whose concurrent appends would have shared a commit pays one commit each.
//!   What it does buy: a backend never sees two concurrent appends to one document (useful
//!   where those contend on a row lock or retry on conflict), `shutdown` drains writes, and the
//!   mode can be switched by configuration. Use it for those, or leave it out.
//! - The real saving needs the inner store to take a whole batch in one commit (an
//!   `append_many` on the trait); a flush already hands over each document's batch at once, so
//!   that would be the only change here.
//!
//! # Consistency rules
//! - Reads ([`load`](DocumentStorage::load), [`metadata`](DocumentStorage::metadata)) return
//!   the inner store's state with the document's buffered updates after it, numbered on from
//!   the inner's last seq. A read waits while a flush of the same document is writing. In
//!   `Durable` mode that includes updates whose append has not resolved yet and may still
//!   fail; a reader that saw one holds content its writer will resend, which Yjs merges as a
//!   no-op.
//! - [`compact`](DocumentStorage::compact) and [`delete`](DocumentStorage::delete) flush the
//!   document first, so the inner store holds every seq a caller can have seen, and a delete
//!   never lets a buffered update outlive it or reuse a seq. If that flush fails they fail and
//!   change nothing.
//! - [`AppendOptions::max_size`] counts buffered bytes. In `Durable` mode the inner store checks
//!   it atomically at flush, in order, after the updates buffered before. In `Buffered` mode
//!   this layer checks it when the update is buffered (when the appender can still be told) and
//!   the flush writes without a limit, so an inner document written behind this layer's back
//!   can exceed the limit by at most what was buffered.
//! - The inner store must only be written through this layer: its view of sizes and seqs, and
//!   the seqs it shows for buffered updates, assume so.

mod shared;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::Notify;

use crate::{
    AppendOptions, AppendReceipt, DocumentId, DocumentMetadata, DocumentStorage, Seq, StorageError,
    StoredDocument,
};
use shared::Shared;

/// When an append through [`VirtualStorage`] resolves (see the [module docs](self#durability)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AckMode {
    /// After the flush that wrote the update to the inner store succeeded; the receipt is the
    /// inner store's. Keeps the [`DocumentStorage`] contract.
    #[default]
    Durable,
    /// As soon as the update is buffered. A crash loses buffered updates; the receipt's seq is
    /// provisional.
    Buffered,
}

/// When [`VirtualStorage`] flushes, and how it acknowledges.
///
/// A document is flushed when its buffer holds `max_updates` updates or `max_bytes` bytes, and
/// otherwise at most `interval` after an update was buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchConfig {
    /// When appends resolve.
    pub ack: AckMode,
    /// Flush a document once this many updates are buffered for it.
    pub max_updates: usize,
    /// Flush a document once this many bytes are buffered for it.
    pub max_bytes: u64,
    /// The longest an update waits before a flush starts (at least 1 ms). In `Durable` mode
    /// this is the latency batching adds to a quiet document's appends.
    pub interval: Duration,
    /// How many documents one flush writes at once.
    pub flush_concurrency: usize,
}

impl Default for BatchConfig {
    /// `Durable`, 64 updates or 256 KiB per document, every 10 ms, 32 documents at once.
    fn default() -> Self {
        BatchConfig {
            ack: AckMode::Durable,
            max_updates: 64,
            max_bytes: 256 * 1024,
            interval: Duration::from_millis(10),
            flush_concurrency: 32,
        }
    }
}

impl BatchConfig {
    /// Sets when appends resolve.
    pub fn with_ack(mut self, ack: AckMode) -> Self {
        self.ack = ack;
        self
    }

    /// Sets the per-document update count that triggers a flush.
    pub fn with_max_updates(mut self, max_updates: usize) -> Self {
        self.max_updates = max_updates;
        self
    }

    /// Sets the per-document byte count that triggers a flush.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Sets the longest an update waits before a flush starts.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets how many documents one flush writes at once.
    pub fn with_flush_concurrency(mut self, flush_concurrency: usize) -> Self {
        self.flush_concurrency = flush_concurrency;
        self
    }
}

/// Buffers appends in memory and writes them to the inner store in batches (see the
/// [module docs](self) for durability and what batching buys).
///
/// Share it as `Arc<VirtualStorage<S>>`; flushes run in tasks of the tokio runtime it was
/// created in. There is no `get_mut`: those tasks share the inner store.
pub struct VirtualStorage<S> {
    shared: Arc<Shared<S>>,
    /// Wakes the interval task; it holds only a weak reference to `shared`, so dropping the
    /// layer drops the inner store.
    work: Arc<Notify>,
}

impl<S: DocumentStorage> VirtualStorage<S> {
    /// A layer over `inner` with [`BatchConfig::default`] (durable acknowledgements).
    ///
    /// # Panics
    /// Outside a tokio runtime, as [`tokio::spawn`] does: the interval flush runs as a task.
    pub fn new(inner: S) -> Self {
        Self::with_config(inner, BatchConfig::default())
    }

    /// A layer over `inner` with `config`.
    ///
    /// # Panics
    /// Outside a tokio runtime, as [`tokio::spawn`] does: the interval flush runs as a task.
    pub fn with_config(inner: S, config: BatchConfig) -> Self {
        let work = Arc::new(Notify::new());
        let shared = Arc::new(Shared::new(inner, config, Arc::clone(&work)));
        shared.tasks().spawn(shared::run_interval(
            Arc::downgrade(&shared),
            Arc::clone(&work),
            config.interval.max(Duration::from_millis(1)),
        ));
        VirtualStorage { shared, work }
    }

    /// Writes every buffered update to the inner store.
    ///
    /// On `Ok`, every update appended before the call is in the inner store, or (in `Durable`
    /// mode) its appender was given an error.
    ///
    /// # Errors
    /// The first error of the documents whose flush failed. In `Buffered` mode their updates
    /// stay buffered for the next flush; in `Durable` mode their appenders got the error.
    ///
    /// # Cancel safety
    /// Cancel safe: the writes run in their own tasks and complete even if this future is
    /// dropped.
    pub async fn flush(&self) -> Result<(), StorageError> {
        self.shared.flush_all().await
    }

    /// Rejects further appends with [`StorageError::ShutDown`], then flushes everything.
    ///
    /// Reads, compactions and deletes still work. If the flush fails (in `Buffered` mode) the
    /// updates stay buffered and [`flush`](Self::flush) can be called again.
    ///
    /// # Errors
    /// As [`flush`](Self::flush).
    ///
    /// # Cancel safety
    /// As [`flush`](Self::flush); the layer is shut down either way.
    pub async fn shutdown(&self) -> Result<(), StorageError> {
        self.shared.shut_down();
        self.flush().await
    }

    /// Shuts down, flushes, and returns the inner store.
    ///
    /// # Errors
    /// If the final flush fails, the layer (shut down, updates still buffered) and the error.
    pub async fn into_inner(self) -> Result<S, (Self, StorageError)> {
        if let Err(error) = self.shutdown().await {
            return Err((self, error));
        }
        let shared = Arc::clone(&self.shared);
        let tasks = shared.tasks().clone();
        // Dropping the layer wakes the interval task; shut down and empty, it ends after its
        // round. Flushes already spawned finish at once: nothing is buffered.
        drop(self);
        tasks.close();
        tasks.wait().await;
        match Arc::try_unwrap(shared) {
            Ok(shared) => Ok(shared.into_inner()),
            // Every task holding the state has ended, so only a bug gets here.
            Err(shared) => {
                let work = Arc::clone(shared.work());
                Err((
                    VirtualStorage { shared, work },
                    StorageError::backend(shared::BACKEND, StillShared),
                ))
            }
        }
    }
}

/// `into_inner` found the layer's state still in use after its tasks ended.
#[derive(Debug, thiserror::Error)]
#[error("the batching layer's state is still shared")]
struct StillShared;

impl<S> VirtualStorage<S> {
    /// The inner store. Reading it directly shows only flushed updates.
    pub fn get_ref(&self) -> &S {
        self.shared.inner()
    }

    /// The configuration.
    pub fn config(&self) -> &BatchConfig {
        self.shared.config()
    }

    /// How many updates are buffered (not yet in the inner store), over all documents.
    pub fn buffered_updates(&self) -> usize {
        self.shared.buffered_updates()
    }
}

impl<S> Drop for VirtualStorage<S> {
    fn drop(&mut self) {
        // Lets the interval task notice that the layer is gone and end.
        self.work.notify_one();
        let buffered = self.shared.buffered_updates();
        if buffered > 0 && self.shared.config().ack == AckMode::Buffered {
            tracing::warn!(
                buffered,
                "batching layer dropped with buffered updates, which may be lost; \
                 call shutdown() first"
            );
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for VirtualStorage<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualStorage")
            .field("inner", self.shared.inner())
            .field("config", self.shared.config())
            .field("buffered_updates", &self.shared.buffered_updates())
            .finish()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: DocumentStorage> DocumentStorage for VirtualStorage<S> {
    /// Buffers the update; resolves per the [`AckMode`].
    async fn append(
        &self,
        doc: &DocumentId,
        update: Bytes,
        options: AppendOptions,
    ) -> Result<AppendReceipt, StorageError> {
        match self.shared.config().ack {
            AckMode::Durable => self.shared.append_durable(doc, update, options).await,
            AckMode::Buffered => self.shared.append_buffered(doc, update, options).await,
        }
    }

    async fn load(&self, doc: &DocumentId) -> Result<StoredDocument, StorageError> {
        self.shared.load(doc).await
    }

    async fn metadata(&self, doc: &DocumentId) -> Result<Option<DocumentMetadata>, StorageError> {
        self.shared.metadata(doc).await
    }

    /// Flushes the document, then compacts the inner store.
    async fn compact(
        &self,
        doc: &DocumentId,
        upto: Seq,
        snapshot: Bytes,
    ) -> Result<(), StorageError> {
        self.shared.compact(doc, upto, snapshot).await
    }

    /// Flushes the document, then deletes it from the inner store.
    async fn delete(&self, doc: &DocumentId) -> Result<(), StorageError> {
        self.shared.delete(doc).await
    }

    /// [`shutdown`](VirtualStorage::shutdown) (refuse new appends, flush the buffer), then
    /// closes the inner store. A failed flush leaves the inner store open and the updates
    /// buffered, so a retry can still write them.
    async fn close(&self) -> Result<(), StorageError> {
        self.shutdown().await?;
        self.shared.inner().close().await
    }
}
