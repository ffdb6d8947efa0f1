//! Encryption at rest: [`EncryptedStorage`] encrypts what a backend stores with AES-256-GCM.
//!
//! It wraps any backend and implements the same traits: [`DocumentStorage`] (each tail update
//! and the snapshot), [`FileStorage`] (each chunk), [`MilestoneStorage`] (the snapshot) and
//! [`TemporaryUploadStorage`] (each chunk). Keys come from a [`KeyProvider`]; [`StaticKeys`]
//! holds them in memory and rotates.
//!
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use teleportal_storage::encryption::{EncryptedStorage, KeyId, StaticKeys};
//! use teleportal_storage::{DocumentId, DocumentStore, MemoryStorage};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let keys = Arc::new(StaticKeys::generate(KeyId::new("2025-01")?)?);
//! let store = DocumentStore::new(EncryptedStorage::new(MemoryStorage::new(), keys));
//! let doc = DocumentId::from("room/notes");
//! store.append(&doc, Bytes::from_static(&[0, 0])).await?;
//! assert_eq!(store.read(&doc).await?.state_vector.as_ref(), &[0]);
//! # Ok::<(), teleportal_storage::StorageError>(())
//! # }).unwrap();
//! ```
//!
//! # What is encrypted
//! Update, snapshot and chunk bytes. Not encrypted: document ids, file and milestone metadata
//! (file names, MIME types, milestone names), sequence numbers and sizes — backends index and
//! list by them.
//!
//! # Record format
//! Every encrypted value is one self-describing record (format version 1):
//!
//! ```text
//! version (1 byte) = 1
//! key id length (1 byte, 1..=255) ‖ key id (UTF-8)
//! nonce (12 bytes, random, fresh for every record)
//! ciphertext (as long as the plaintext) ‖ GCM tag (16 bytes)
//! ```
//!
//! The associated data is the header (version, key id length, key id) followed by the
//! record's place: a kind byte (1 document update, 2 document snapshot, 3 file chunk, finished
//! or being uploaded, 5 milestone snapshot; 4 is retired) and its fields — document id, milestone id (each as a
//! u64 big-endian length and the UTF-8 bytes), file id (32 bytes) and chunk index (u32
//! big-endian). A record copied to another document, file, chunk index, milestone or kind
//! fails authentication. Within one document's tail, updates are not bound to their seq (the
//! inner store assigns it after encryption): a record moved or replayed within the tail
//! decrypts, and since Yjs updates are idempotent and commutative that changes nothing.
//!
//! A record is `30 + key id length` bytes longer than its plaintext. Nonces are random, so
//! rotate a key well before it has encrypted 2³² records.
//!
//! # Errors and sizes
//! - A record that is truncated, altered, moved, of an unknown version or under a key the
//!   provider does not have reads as [`StorageError::Corrupt`], never as other bytes.
//! - Sizes are the inner store's, in ciphertext bytes: [`DocumentMetadata`] and
//!   [`AppendReceipt`] sizes, and the [`AppendOptions::max_size`] limit,
//!   which the inner store checks on the ciphertext (each update counts its overhead).
//!   [`FileMetadata::size`] stays the plaintext size the client declared.
//!
//! The format is also described in `docs/storage.md`, "Encryption at rest".

mod key;
mod record;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;

pub use key::{EncryptionKey, KeyId, KeyProvider, MAX_KEY_ID_LEN, StaticKeys};
use record::Place;

use crate::{
    AppendOptions, AppendReceipt, ChunkStream, DocumentId, DocumentMetadata, DocumentStorage,
    FileId, FileMetadata, FileStorage, FinishUpload, Milestone, MilestoneMeta, MilestoneStorage,
    Seq, StorageError, StoredDocument, StoredUpdate, TemporaryUploadStorage, UploadProgress,
};

/// Encrypts what the inner store keeps; implements each storage trait the inner store does.
///
/// See the [module docs](self) for the record format, what stays in clear, and sizes.
pub struct EncryptedStorage<S> {
    inner: S,
    keys: Arc<dyn KeyProvider>,
}

impl<S> EncryptedStorage<S> {
    /// Encrypts into `inner` with keys from `keys`. Keep a clone of `keys` to rotate.
    pub fn new(inner: S, keys: Arc<dyn KeyProvider>) -> Self {
        EncryptedStorage { inner, keys }
    }

    /// The key provider.
    pub fn keys(&self) -> &Arc<dyn KeyProvider> {
        &self.keys
    }

    /// The inner store; it holds records, not plaintext.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner store, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner store.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn seal(&self, place: Place<'_>, plaintext: &[u8]) -> Result<Bytes, StorageError> {
        record::seal(&self.keys.current_key()?, place, plaintext)
    }

    fn open(&self, place: Place<'_>, record: &[u8]) -> Result<Bytes, StorageError> {
        record::open(&*self.keys, place, record)
    }
}

impl<S: fmt::Debug> fmt::Debug for EncryptedStorage<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.keys.current_key().ok().map(|k| k.id().clone());
        f.debug_struct("EncryptedStorage")
            .field("inner", &self.inner)
            .field("current_key", &current)
            .finish()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: DocumentStorage> DocumentStorage for EncryptedStorage<S> {
    /// Encrypts the update; the inner store checks `options.max_size` on the record.
    async fn append(
        &self,
        doc: &DocumentId,
        update: Bytes,
        options: AppendOptions,
    ) -> Result<AppendReceipt, StorageError> {
        let record = self.seal(Place::Update(doc), &update)?;
        self.inner.append(doc, record, options).await
    }

    async fn load(&self, doc: &DocumentId) -> Result<StoredDocument, StorageError> {
        let stored = self.inner.load(doc).await?;
        let snapshot = stored
            .snapshot
            .map(|s| self.open(Place::Snapshot(doc), &s))
            .transpose()?;
        let tail = stored
            .tail
            .into_iter()
            .map(|u| {
                Ok(StoredUpdate {
                    seq: u.seq,
                    update: self.open(Place::Update(doc), &u.update)?,
                })
            })
            .collect::<Result<_, StorageError>>()?;
        Ok(StoredDocument {
            snapshot,
            snapshot_seq: stored.snapshot_seq,
            tail,
        })
    }

    /// The inner store's metadata: sizes count ciphertext.
    async fn metadata(&self, doc: &DocumentId) -> Result<Option<DocumentMetadata>, StorageError> {
        self.inner.metadata(doc).await
    }

    async fn compact(
        &self,
        doc: &DocumentId,
        upto: Seq,
        snapshot: Bytes,
    ) -> Result<(), StorageError> {
        let record = self.seal(Place::Snapshot(doc), &snapshot)?;
        self.inner.compact(doc, upto, record).await
    }

    async fn delete(&self, doc: &DocumentId) -> Result<(), StorageError> {
        self.inner.delete(doc).await
    }
    async fn close(&self) -> Result<(), StorageError> {
        DocumentStorage::close(&self.inner).await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: FileStorage> FileStorage for EncryptedStorage<S> {
    /// Encrypts each chunk, bound to the file id and its index; the metadata stays in clear.
    async fn put_file(
        &self,
        metadata: FileMetadata,
        chunks: Vec<Bytes>,
    ) -> Result<(), StorageError> {
        let records = chunks
            .iter()
            .enumerate()
            .map(|(index, chunk)| {
                let index = chunk_index(index)?;
                self.seal(Place::FileChunk(&metadata.id, index), chunk)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.inner.put_file(metadata, records).await
    }

    /// Seals each chunk as it passes, so the inner store's streaming (if any) is kept.
    async fn put_file_stream(
        &self,
        metadata: FileMetadata,
        chunks: ChunkStream,
    ) -> Result<(), StorageError> {
        let (id, keys) = (metadata.id, Arc::clone(&self.keys));
        let mut index = 0u32;
        let records = chunks.map(move |chunk| {
            let place = Place::FileChunk(&id, index);
            let sealed = chunk.and_then(|chunk| record::seal(&keys.current_key()?, place, &chunk));
            index = index.saturating_add(1);
            sealed
        });
        self.inner.put_file_stream(metadata, records.boxed()).await
    }

    async fn file_metadata(&self, id: &FileId) -> Result<Option<FileMetadata>, StorageError> {
        self.inner.file_metadata(id).await
    }

    async fn chunk(&self, id: &FileId, index: u32) -> Result<Bytes, StorageError> {
        let record = self.inner.chunk(id, index).await?;
        self.open(Place::FileChunk(id, index), &record)
    }

    async fn files_of_document(&self, doc: &DocumentId) -> Result<Vec<FileMetadata>, StorageError> {
        self.inner.files_of_document(doc).await
    }

    async fn delete_file(&self, id: &FileId) -> Result<(), StorageError> {
        self.inner.delete_file(id).await
    }
    async fn close(&self) -> Result<(), StorageError> {
        FileStorage::close(&self.inner).await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: MilestoneStorage> MilestoneStorage for EncryptedStorage<S> {
    /// Encrypts the snapshot, bound to the document and milestone id.
    async fn create_milestone(&self, milestone: Milestone) -> Result<(), StorageError> {
        let doc = DocumentId::from(milestone.meta.document_id.as_str());
        let snapshot = self.seal(
            Place::Milestone(&doc, &milestone.meta.id),
            &milestone.snapshot,
        )?;
        self.inner
            .create_milestone(Milestone {
                meta: milestone.meta,
                snapshot,
            })
            .await
    }

    async fn milestones(
        &self,
        doc: &DocumentId,
        include_deleted: bool,
    ) -> Result<Vec<MilestoneMeta>, StorageError> {
        self.inner.milestones(doc, include_deleted).await
    }

    async fn milestone(
        &self,
        doc: &DocumentId,
        id: &str,
    ) -> Result<Option<Milestone>, StorageError> {
        let Some(milestone) = self.inner.milestone(doc, id).await? else {
            return Ok(None);
        };
        let snapshot = self.open(Place::Milestone(doc, id), &milestone.snapshot)?;
        Ok(Some(Milestone {
            meta: milestone.meta,
            snapshot,
        }))
    }

    async fn update_milestone(&self, meta: MilestoneMeta) -> Result<(), StorageError> {
        self.inner.update_milestone(meta).await
    }

    async fn delete_milestone(&self, doc: &DocumentId, id: &str) -> Result<(), StorageError> {
        self.inner.delete_milestone(doc, id).await
    }
    async fn close(&self) -> Result<(), StorageError> {
        MilestoneStorage::close(&self.inner).await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: TemporaryUploadStorage> TemporaryUploadStorage for EncryptedStorage<S> {
    async fn begin(&self, metadata: FileMetadata) -> Result<UploadProgress, StorageError> {
        self.inner.begin(metadata).await
    }

    /// Encrypts the chunk, bound to the file id and the index exactly as a finished file's
    /// chunk is, so [`FinishUpload`] can move the record as it is.
    async fn put_chunk(&self, id: &FileId, index: u32, chunk: Bytes) -> Result<(), StorageError> {
        let record = self.seal(Place::FileChunk(id, index), &chunk)?;
        self.inner.put_chunk(id, index, record).await
    }

    async fn received_chunk(&self, id: &FileId, index: u32) -> Result<Bytes, StorageError> {
        let record = self.inner.received_chunk(id, index).await?;
        self.open(Place::FileChunk(id, index), &record)
    }

    async fn progress(&self, id: &FileId) -> Result<Option<UploadProgress>, StorageError> {
        self.inner.progress(id).await
    }

    /// Decrypts every chunk. The session is gone even if a chunk fails to decrypt (the inner
    /// store removed it), as it would be for any other error after `take`.
    async fn take(&self, id: &FileId) -> Result<(FileMetadata, Vec<Bytes>), StorageError> {
        let (metadata, records) = self.inner.take(id).await?;
        let chunks = records
            .iter()
            .enumerate()
            .map(|(index, record)| self.open(Place::FileChunk(id, chunk_index(index)?), record))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((metadata, chunks))
    }

    async fn abort(&self, id: &FileId) -> Result<(), StorageError> {
        self.inner.abort(id).await
    }

    async fn expire(&self, before: SystemTime) -> Result<usize, StorageError> {
        self.inner.expire(before).await
    }
    async fn close(&self) -> Result<(), StorageError> {
        TemporaryUploadStorage::close(&self.inner).await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: FinishUpload> FinishUpload for EncryptedStorage<S> {
    /// Moves the sealed records: upload and file chunks are sealed alike.
    async fn finish_upload(&self, id: &FileId) -> Result<FileMetadata, StorageError> {
        self.inner.finish_upload(id).await
    }
}

/// Chunk indexes are `u32` on the wire and in the traits.
fn chunk_index(index: usize) -> Result<u32, StorageError> {
    u32::try_from(index).map_err(|_| StorageError::InvalidRequest {
        reason: format!("chunk index {index} does not fit in u32"),
    })
}
