//! The [`DocumentStorage`] trait: where each document's updates live.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{DocumentId, StorageError};

/// A position in one document's update log: 1 for the first append, then increasing.
pub type Seq = u64;

/// Limits an append must respect, checked by the backend atomically with the write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppendOptions {
    /// Reject the append with [`StorageError::DocumentTooLarge`] if the document's stored size
    /// (snapshot plus tail) would exceed this many bytes.
    pub max_size: Option<u64>,
}

impl AppendOptions {
    /// Options with a hard size limit.
    pub fn with_max_size(max_size: u64) -> Self {
        AppendOptions {
            max_size: Some(max_size),
        }
    }
}

/// What an append did: where it went and how the document looks now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppendReceipt {
    /// The update's position in the document's log.
    pub seq: Seq,
    /// The document's stored size after the append, in bytes (snapshot plus tail).
    pub size: u64,
    /// How many updates the tail holds now (those not yet folded into the snapshot).
    pub tail_updates: u64,
    /// How many bytes the tail holds now.
    pub tail_bytes: u64,
}

impl AppendReceipt {
    /// A receipt; for backends outside this crate.
    pub fn new(seq: Seq, size: u64, tail_updates: u64, tail_bytes: u64) -> Self {
        AppendReceipt {
            seq,
            size,
            tail_updates,
            tail_bytes,
        }
    }
}

/// One update of a document's tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUpdate {
    /// Its position in the log.
    pub seq: Seq,
    /// The encoded Yjs update.
    pub update: Bytes,
}

/// A document as stored: a merged snapshot of everything up to `snapshot_seq`, then a tail of
/// newer updates in append order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredDocument {
    /// The merged update of every append up to and including `snapshot_seq`; `None` before the
    /// first compaction.
    pub snapshot: Option<Bytes>,
    /// The last sequence number folded into the snapshot (0 when there is none).
    pub snapshot_seq: Seq,
    /// Updates after `snapshot_seq`, oldest first.
    pub tail: Vec<StoredUpdate>,
}

impl StoredDocument {
    /// True when the document has no content at all (never written, or deleted).
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.tail.is_empty()
    }

    /// The snapshot (if any) followed by the tail's updates: what a merge takes.
    pub fn updates(&self) -> Vec<Bytes> {
        self.snapshot
            .iter()
            .cloned()
            .chain(self.tail.iter().map(|u| u.update.clone()))
            .collect()
    }

    /// The last sequence number stored (the snapshot's when the tail is empty).
    pub fn last_seq(&self) -> Seq {
        self.tail.last().map_or(self.snapshot_seq, |u| u.seq)
    }
}

/// Sizes and positions of a stored document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DocumentMetadata {
    /// Stored bytes: the snapshot plus every tail update.
    pub size: u64,
    /// The last sequence number appended.
    pub last_seq: Seq,
    /// The last sequence number folded into the snapshot (0 when there is none).
    pub snapshot_seq: Seq,
    /// Updates in the tail.
    pub tail_updates: u64,
    /// Bytes in the tail.
    pub tail_bytes: u64,
}

impl DocumentMetadata {
    /// Metadata; for backends outside this crate.
    pub fn new(
        size: u64,
        last_seq: Seq,
        snapshot_seq: Seq,
        tail_updates: u64,
        tail_bytes: u64,
    ) -> Self {
        DocumentMetadata {
            size,
            last_seq,
            snapshot_seq,
            tail_updates,
            tail_bytes,
        }
    }
}

/// Where each document's history lives, as encoded Yjs updates: one snapshot plus a tail.
///
/// This is the trait a backend implements; applications use a
/// [`DocumentStore`](crate::DocumentStore) over it. Backends store bytes; they never parse updates. Merging, diffing and deciding when to
/// compact happen above them, in [`DocumentStore`](crate::DocumentStore), so that every
/// backend behaves the same and layers (batching, encryption) compose.
///
/// # Contract
/// - `append` resolves `Ok` only once the update is durable (for this backend's meaning of
///   durable, which its docs state): a server ACKs after it, never before. It assigns the next
///   [`Seq`], and checks [`AppendOptions::max_size`] atomically with the write; when it fails
///   nothing is stored.
/// - `load` returns the snapshot and every update after it, oldest first. A document never
///   written (or deleted) loads empty ([`StoredDocument::is_empty`]).
/// - Sequence numbers of a document are never reused, not even after `delete`: a deleted
///   document keeps its last `Seq` as its `snapshot_seq`, so a compaction that loaded before
///   the delete cannot bring deleted content back.
/// - `compact(doc, upto, snapshot)` atomically replaces the snapshot and every tail update with
///   `seq <= upto` by `snapshot`, which must hold exactly those. Updates after `upto` — even ones
///   appended while the caller was merging — stay. If `upto` is not beyond the current
///   `snapshot_seq` (another compaction won) it changes nothing and returns `Ok`.
/// - `delete` removes the document's content; a later append starts it afresh (with a higher
///   `Seq`). `metadata` of a deleted document is `None`.
/// - Documents never see each other's data.
///
/// # Cancel safety
/// Dropping an `append` future before it resolves leaves the update either stored or not; the
/// caller must treat it as not acknowledged.
#[async_trait]
pub trait DocumentStorage: Send + Sync + 'static {
    /// Appends one encoded update to the document's tail.
    ///
    /// # Errors
    /// [`StorageError::DocumentTooLarge`] past `options.max_size`; a backend error otherwise.
    async fn append(
        &self,
        doc: &DocumentId,
        update: Bytes,
        options: AppendOptions,
    ) -> Result<AppendReceipt, StorageError>;

    /// The document's snapshot and tail.
    ///
    /// # Errors
    /// A backend error, or [`StorageError::Corrupt`] for a record that cannot be read back.
    async fn load(&self, doc: &DocumentId) -> Result<StoredDocument, StorageError>;

    /// Sizes and positions, or `None` for a document with nothing stored.
    ///
    /// # Errors
    /// A backend error.
    async fn metadata(&self, doc: &DocumentId) -> Result<Option<DocumentMetadata>, StorageError>;

    /// Folds the tail up to `upto` into a new snapshot (see the contract).
    ///
    /// # Errors
    /// A backend error; the document is then unchanged.
    async fn compact(
        &self,
        doc: &DocumentId,
        upto: Seq,
        snapshot: Bytes,
    ) -> Result<(), StorageError>;

    /// Removes the document and all its updates.
    ///
    /// # Errors
    /// A backend error.
    async fn delete(&self, doc: &DocumentId) -> Result<(), StorageError>;

    /// Finishes what the backend still has queued and releases what it holds (a writer
    /// thread, a connection pool), at shutdown once nothing appends any more. Appends after
    /// it may fail with [`StorageError::ShutDown`]; closing twice is `Ok`. A backend that
    /// holds several kinds of data closes all of them here (and in each trait's `close`).
    ///
    /// The default does nothing, for backends with nothing to finish: every write they
    /// acknowledged is already durable and dropping them releases the rest.
    ///
    /// # Errors
    /// A backend error while closing; acknowledged appends stay durable regardless.
    async fn close(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: DocumentStorage + ?Sized> DocumentStorage for Arc<S> {
    async fn append(
        &self,
        doc: &DocumentId,
        update: Bytes,
        options: AppendOptions,
    ) -> Result<AppendReceipt, StorageError> {
        (**self).append(doc, update, options).await
    }
    async fn load(&self, doc: &DocumentId) -> Result<StoredDocument, StorageError> {
        (**self).load(doc).await
    }
    async fn metadata(&self, doc: &DocumentId) -> Result<Option<DocumentMetadata>, StorageError> {
        (**self).metadata(doc).await
    }
    async fn compact(
        &self,
        doc: &DocumentId,
        upto: Seq,
        snapshot: Bytes,
    ) -> Result<(), StorageError> {
        (**self).compact(doc, upto, snapshot).await
    }
    async fn delete(&self, doc: &DocumentId) -> Result<(), StorageError> {
        (**self).delete(doc).await
    }
    async fn close(&self) -> Result<(), StorageError> {
        (**self).close().await
    }
}
