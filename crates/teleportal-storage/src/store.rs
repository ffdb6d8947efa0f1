//! [`DocumentStore`]: what a server talks to. It merges, diffs, enforces size limits and
//! decides when to compact, over any [`DocumentStorage`] backend.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::{
    AppendOptions, AppendReceipt, DocumentId, DocumentMetadata, DocumentStorage, StorageError,
    StoredDocument, UpdateEncoding,
};

/// When the tail is folded into the snapshot.
///
/// After an append leaves more than `max_tail_updates` updates or `max_tail_bytes` bytes in the
/// tail, a compaction runs in the background (writers never wait for it). Reads merge at most
/// the snapshot plus this much tail, so cold sync stays flat as history grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactionPolicy {
    /// Compact once the tail holds more updates than this.
    pub max_tail_updates: u64,
    /// Compact once the tail holds more bytes than this.
    pub max_tail_bytes: u64,
}

impl Default for CompactionPolicy {
    /// 500 updates (one merge batch) or 1 MiB.
    fn default() -> Self {
        CompactionPolicy {
            max_tail_updates: 500,
            max_tail_bytes: 1024 * 1024,
        }
    }
}

impl CompactionPolicy {
    /// A policy with the given thresholds.
    pub fn new(max_tail_updates: u64, max_tail_bytes: u64) -> Self {
        CompactionPolicy {
            max_tail_updates,
            max_tail_bytes,
        }
    }

    fn is_due(&self, tail_updates: u64, tail_bytes: u64) -> bool {
        tail_updates > self.max_tail_updates || tail_bytes > self.max_tail_bytes
    }
}

/// Per-document size limits, in stored bytes (snapshot plus tail).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SizeLimits {
    /// Call the size-warning hook when an append takes a document to this size or past it.
    pub warn_at: Option<u64>,
    /// Reject appends that would take a document past this size
    /// ([`StorageError::DocumentTooLarge`]); the document is unchanged.
    pub max_size: Option<u64>,
}

impl SizeLimits {
    /// Limits with a warning size and a hard limit.
    pub fn new(warn_at: Option<u64>, max_size: Option<u64>) -> Self {
        SizeLimits { warn_at, max_size }
    }
}

/// A document's size crossed [`SizeLimits::warn_at`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SizeWarning {
    /// The document.
    pub doc: DocumentId,
    /// Its stored size after the append.
    pub size: u64,
    /// The configured warning size.
    pub warn_at: u64,
}

type SizeWarningHook = Arc<dyn Fn(&SizeWarning) + Send + Sync>;

/// A document's whole state: one merged update and its state vector.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DocumentState {
    /// Everything the document holds, as one update in the store's encoding.
    pub update: Bytes,
    /// The state vector of `update` (V1 encoding, as sync-step-1 carries it).
    pub state_vector: Bytes,
}

/// Compactions in flight, so [`DocumentStore::idle`] can wait for them and a document is
/// never compacted by two tasks of this store at once.
#[derive(Default)]
struct Compactions {
    /// Documents being compacted, each with "an append found the compaction due again after
    /// this pass had loaded": the running task then makes another pass.
    running: Mutex<HashMap<DocumentId, bool>>,
    count: AtomicUsize,
    done: Notify,
    /// Set by [`DocumentStore::close`]: no new compaction starts.
    closed: AtomicBool,
}

/// Merges, diffs and compacts documents over any [`DocumentStorage`]; cheap to clone.
///
/// **Store or storage?** A backend *implements* [`DocumentStorage`] (bytes in, bytes out);
/// an application *uses* a `DocumentStore` over one (`DocumentStore::new(storage)`) and hands
/// it to the server. The store is the one place that reads updates, so every backend behaves
/// the same under it.
///
/// ```
/// use bytes::Bytes;
/// use teleportal_storage::{DocumentId, DocumentStore, MemoryStorage};
/// use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact};
/// use yrs::updates::{decoder::Decode, encoder::Encode};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = DocumentStore::new(MemoryStorage::new());
/// let doc = DocumentId::from("notes");
///
/// // A client writes; the store keeps the encoded update.
/// let client = Doc::new();
/// let text = client.get_or_insert_text("content");
/// text.insert(&mut client.transact_mut(), 0, "hello");
/// let update = client.transact().encode_state_as_update_v1(&StateVector::default());
/// store.append(&doc, Bytes::from(update)).await?;
///
/// // A new client syncs from an empty state vector.
/// let reply = store.diff(&doc, &StateVector::default().encode_v1()).await?;
/// let fresh = Doc::new();
/// fresh.transact_mut().apply_update(yrs::Update::decode_v1(&reply)?)?;
/// assert_eq!(fresh.get_or_insert_text("content").get_string(&fresh.transact()), "hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct DocumentStore {
    storage: Arc<dyn DocumentStorage>,
    encoding: UpdateEncoding,
    compaction: CompactionPolicy,
    limits: SizeLimits,
    on_size_warning: Option<SizeWarningHook>,
    compactions: Arc<Compactions>,
}

impl fmt::Debug for DocumentStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DocumentStore")
            .field("encoding", &self.encoding)
            .field("compaction", &self.compaction)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl DocumentStore {
    /// A store over `storage` with V1 updates, the default compaction policy and no limits.
    pub fn new(storage: impl DocumentStorage) -> Self {
        Self::from_arc(Arc::new(storage))
    }

    /// A store over shared storage.
    pub fn from_arc(storage: Arc<dyn DocumentStorage>) -> Self {
        DocumentStore {
            storage,
            encoding: UpdateEncoding::default(),
            compaction: CompactionPolicy::default(),
            limits: SizeLimits::default(),
            on_size_warning: None,
            compactions: Arc::default(),
        }
    }

    /// Wraps the backend in a decorator, keeping every setting: how a server adds its storage
    /// metrics to a store it was given. Call it before the store is cloned: clones made
    /// earlier keep the backend unwrapped.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use teleportal_storage::{DocumentStore, MemoryStorage, SizeLimits};
    ///
    /// let store = DocumentStore::new(MemoryStorage::new())
    ///     .with_size_limits(SizeLimits::new(None, Some(1 << 20)))
    ///     .map_storage(|backend| Arc::new(backend)); // a decorator would wrap it here
    /// assert_eq!(store.size_limits().max_size, Some(1 << 20));
    /// ```
    pub fn map_storage(
        mut self,
        layer: impl FnOnce(Arc<dyn DocumentStorage>) -> Arc<dyn DocumentStorage>,
    ) -> Self {
        self.storage = layer(self.storage);
        self
    }

    /// Sets the update encoding every update of this store uses.
    pub fn with_encoding(mut self, encoding: UpdateEncoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Sets when the tail is folded into the snapshot.
    pub fn with_compaction(mut self, policy: CompactionPolicy) -> Self {
        self.compaction = policy;
        self
    }

    /// Sets per-document size limits.
    pub fn with_size_limits(mut self, limits: SizeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Calls `hook` whenever an append takes a document across [`SizeLimits::warn_at`].
    pub fn on_size_warning(mut self, hook: impl Fn(&SizeWarning) + Send + Sync + 'static) -> Self {
        self.on_size_warning = Some(Arc::new(hook));
        self
    }

    /// The backend.
    pub fn storage(&self) -> &Arc<dyn DocumentStorage> {
        &self.storage
    }

    /// The per-document size limits of this store.
    pub fn size_limits(&self) -> SizeLimits {
        self.limits
    }

    /// The update encoding of this store.
    pub fn encoding(&self) -> UpdateEncoding {
        self.encoding
    }

    /// Validates and appends one update; resolves once the backend reports it durable.
    ///
    /// May start a background compaction of the document (never waited for here).
    ///
    /// # Errors
    /// [`StorageError::InvalidUpdate`] for bytes that are not an update,
    /// [`StorageError::DocumentTooLarge`] past the hard limit (nothing stored in either case),
    /// or the backend's error.
    ///
    /// # Cancel safety
    /// As [`DocumentStorage::append`]: if dropped, the update may or may not be stored.
    pub async fn append(
        &self,
        doc: &DocumentId,
        update: Bytes,
    ) -> Result<AppendReceipt, StorageError> {
        self.encoding
            .validate(&update)
            .map_err(|source| StorageError::InvalidUpdate {
                doc: doc.clone(),
                source,
            })?;
        let len = update.len() as u64;
        let options = AppendOptions {
            max_size: self.limits.max_size,
        };
        let receipt = self.storage.append(doc, update, options).await?;
        if let (Some(warn_at), Some(hook)) = (self.limits.warn_at, &self.on_size_warning)
            && receipt.size >= warn_at
            && receipt.size.saturating_sub(len) < warn_at
        {
            hook(&SizeWarning {
                doc: doc.clone(),
                size: receipt.size,
                warn_at,
            });
        }
        if self
            .compaction
            .is_due(receipt.tail_updates, receipt.tail_bytes)
        {
            self.spawn_compaction(doc);
        }
        Ok(receipt)
    }

    /// The whole document as one update plus its state vector. An unknown document reads as
    /// the empty update.
    ///
    /// # Errors
    /// The backend's error, or [`StorageError::Corrupt`] if stored updates do not merge.
    pub async fn read(&self, doc: &DocumentId) -> Result<DocumentState, StorageError> {
        let stored = self.storage.load(doc).await?;
        let update = self.merge_stored(&stored).await?;
        let state_vector = self
            .encoding
            .state_vector(&update)
            .map_err(|e| corrupt("stored update has no state vector", e))?;
        Ok(DocumentState {
            update,
            state_vector,
        })
    }

    /// What a peer with `state_vector` is missing: the sync-step-2 answer to its sync-step-1.
    ///
    /// # Errors
    /// [`StorageError::InvalidRequest`] for a state vector that does not decode; the backend's
    /// error.
    pub async fn diff(&self, doc: &DocumentId, state_vector: &[u8]) -> Result<Bytes, StorageError> {
        let state = self.read(doc).await?;
        self.encoding
            .diff(&state.update, state_vector)
            .map_err(|e| StorageError::InvalidRequest {
                reason: format!("bad state vector: {e}"),
            })
    }

    /// Folds the whole tail into the snapshot now. Returns false if there was nothing to fold.
    ///
    /// Safe to run while other tasks append: updates appended after the load stay in the tail.
    ///
    /// # Errors
    /// The backend's error; the document is then unchanged.
    pub async fn compact(&self, doc: &DocumentId) -> Result<bool, StorageError> {
        let stored = self.storage.load(doc).await?;
        if stored.tail.is_empty() {
            return Ok(false);
        }
        let upto = stored.last_seq();
        let merged = self.merge_stored(&stored).await?;
        self.storage.compact(doc, upto, merged).await?;
        Ok(true)
    }

    /// Sizes and positions of a document, or `None` if nothing is stored.
    ///
    /// # Errors
    /// The backend's error.
    pub async fn metadata(
        &self,
        doc: &DocumentId,
    ) -> Result<Option<DocumentMetadata>, StorageError> {
        self.storage.metadata(doc).await
    }

    /// Removes a document.
    ///
    /// # Errors
    /// The backend's error.
    pub async fn delete(&self, doc: &DocumentId) -> Result<(), StorageError> {
        self.storage.delete(doc).await
    }

    /// Closes the store at shutdown: no new background compaction starts, the running ones
    /// finish, then the storage closes ([`DocumentStorage::close`]: SQLite finishes its queued
    /// writes, a pool disconnects). Call it once nothing appends any more; the storage may
    /// refuse later appends with [`StorageError::ShutDown`]. Closing twice is `Ok`.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use teleportal_storage::{DocumentId, DocumentStore, MemoryStorage};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = DocumentStore::new(MemoryStorage::new());
    /// store.append(&DocumentId::from("notes"), Bytes::from_static(&[0, 0])).await?;
    /// store.close().await?;
    /// # Ok::<(), teleportal_storage::StorageError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// The storage's error from closing; acknowledged appends stay durable regardless.
    ///
    /// # Cancel safety
    /// Dropping the future after the compactions finished may leave the storage open.
    pub async fn close(&self) -> Result<(), StorageError> {
        self.compactions.closed.store(true, Ordering::SeqCst);
        self.idle().await;
        self.storage.close().await
    }

    /// Waits until no background compaction of this store (or its clones) is running.
    pub async fn idle(&self) {
        loop {
            let notified = self.compactions.done.notified();
            if self.compactions.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    async fn merge_stored(&self, stored: &StoredDocument) -> Result<Bytes, StorageError> {
        let updates = stored.updates();
        let encoding = self.encoding;
        // Small merges are cheaper than a thread hop; large ones must not stall the runtime.
        let merged = if updates.len() <= 64 {
            encoding.merge(&updates)
        } else {
            tokio::task::spawn_blocking(move || encoding.merge(&updates))
                .await
                .map_err(|e| StorageError::backend("merge", e))?
        };
        merged.map_err(|e| corrupt("stored updates do not merge", e))
    }

    fn spawn_compaction(&self, doc: &DocumentId) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // No runtime: reads still work, the tail just grows until `compact`.
        };
        {
            let mut running = lock(&self.compactions.running);
            if let Some(again) = running.get_mut(doc) {
                // The running compaction may have loaded before this append. Dropping the
                // trigger left a tail past the policy until the next append (the conformance
                // check `cold_read_after_long_history_is_compacted` caught it on a
                // multi-thread runtime); ask the running task for another pass instead.
                *again = true;
                return;
            }
            running.insert(doc.clone(), false);
        }
        self.compactions.count.fetch_add(1, Ordering::SeqCst);
        // Counted before looking, so `close` either sees this compaction or it sees `closed`.
        if self.compactions.closed.load(Ordering::SeqCst) {
            lock(&self.compactions.running).remove(doc);
            self.compactions.count.fetch_sub(1, Ordering::SeqCst);
            self.compactions.done.notify_waiters();
            return; // Closing: the tail waits for the next start.
        }
        let store = self.clone();
        let doc = doc.clone();
        runtime.spawn(async move {
            loop {
                if let Err(error) = store.compact(&doc).await {
                    // Nothing is lost: the tail stays and the next append retries.
                    tracing::warn!(%doc, error = %teleportal_core::ErrorChain::new(&error), "background compaction failed; will retry");
                    lock(&store.compactions.running).remove(&doc);
                    break;
                }
                // Deciding and leaving happen under one lock, so an append either sees this
                // task running (and sets `again`) or sees it gone (and starts a new one).
                let mut running = lock(&store.compactions.running);
                match running.get_mut(&doc) {
                    Some(again) if *again => *again = false,
                    _ => {
                        running.remove(&doc);
                        break;
                    }
                }
            }
            store.compactions.count.fetch_sub(1, Ordering::AcqRel);
            store.compactions.done.notify_waiters();
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The map stays valid even if a holder panicked: each update of it is a single operation.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn corrupt(reason: &'static str, source: crate::error::BoxError) -> StorageError {
    StorageError::Corrupt {
        reason,
        source: Some(source),
    }
}
