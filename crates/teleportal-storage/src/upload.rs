//! [`TemporaryUploadStorage`]: upload sessions that survive a dropped connection.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{FileId, FileMetadata, FileStorage, StorageError};

/// An upload in progress: what the client declared and which chunks have arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadProgress {
    /// The declared file (its id is the upload's key: content-derived, so a client re-uploading
    /// the same bytes finds its earlier session).
    pub metadata: FileMetadata,
    /// Indexes of the chunks received so far, ascending.
    pub received: Vec<u32>,
    /// When the session was started.
    pub started_at: SystemTime,
}

impl UploadProgress {
    /// True when every chunk has arrived.
    pub fn is_complete(&self) -> bool {
        u32::try_from(self.received.len()).is_ok_and(|n| n == self.metadata.chunk_count)
    }

    /// A progress record; for backends outside this crate.
    pub fn new(metadata: FileMetadata, received: Vec<u32>, started_at: SystemTime) -> Self {
        UploadProgress {
            metadata,
            received,
            started_at,
        }
    }
}

/// Chunks of files still being uploaded, kept apart from finished files until the upload is
/// complete and verified.
///
/// # Contract
/// - `begin` starts a session for `metadata.id`, or returns the existing session's progress
///   unchanged when one exists with the same metadata (resume); a session with the same id
///   but different metadata is [`StorageError::InvalidRequest`].
/// - `put_chunk` stores one chunk before resolving; an index `>= chunk_count` is
///   [`StorageError::InvalidRequest`]; storing an index twice keeps the latest bytes. An unknown session is [`StorageError::NotFound`].
///   A backend may make chunks durable in groups: after a crash, a session lists (and
///   `received_chunk` returns) only chunks that were made durable, so a resuming client sends
///   the others again. Taking or finishing an upload makes all of it durable first.
/// - `received_chunk` returns a received chunk; a missing chunk or session is
///   [`StorageError::NotFound`].
/// - `take` returns all chunks in index order and removes the session, only when complete;
///   otherwise [`StorageError::InvalidRequest`] and the session stays.
/// - `expire(before)` removes sessions started before `before` and says how many.
#[async_trait]
pub trait TemporaryUploadStorage: Send + Sync + 'static {
    /// Starts or resumes an upload.
    ///
    /// # Errors
    /// See the contract; a backend error.
    async fn begin(&self, metadata: FileMetadata) -> Result<UploadProgress, StorageError>;

    /// Stores one chunk of an upload.
    ///
    /// # Errors
    /// See the contract; a backend error.
    async fn put_chunk(&self, id: &FileId, index: u32, chunk: Bytes) -> Result<(), StorageError>;

    /// One received chunk of an upload in progress.
    ///
    /// # Errors
    /// See the contract; a backend error.
    async fn received_chunk(&self, id: &FileId, index: u32) -> Result<Bytes, StorageError>;

    /// The session's progress, or `None`.
    ///
    /// # Errors
    /// A backend error.
    async fn progress(&self, id: &FileId) -> Result<Option<UploadProgress>, StorageError>;

    /// The finished upload's metadata and chunks; removes the session.
    ///
    /// # Errors
    /// See the contract; a backend error.
    async fn take(&self, id: &FileId) -> Result<(FileMetadata, Vec<Bytes>), StorageError>;

    /// Drops a session and its chunks; unknown ids are `Ok`.
    ///
    /// # Errors
    /// A backend error.
    async fn abort(&self, id: &FileId) -> Result<(), StorageError>;

    /// Removes sessions started before `before`.
    ///
    /// # Errors
    /// A backend error.
    async fn expire(&self, before: SystemTime) -> Result<usize, StorageError>;

    /// Finishes what the backend still has queued and releases what it holds, at shutdown
    /// once nothing writes uploads any more; closing twice is `Ok`. The default does nothing
    /// (see [`DocumentStorage::close`](crate::DocumentStorage::close)).
    ///
    /// # Errors
    /// A backend error while closing.
    async fn close(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: TemporaryUploadStorage + ?Sized> TemporaryUploadStorage for Arc<S> {
    async fn begin(&self, metadata: FileMetadata) -> Result<UploadProgress, StorageError> {
        (**self).begin(metadata).await
    }
    async fn put_chunk(&self, id: &FileId, index: u32, chunk: Bytes) -> Result<(), StorageError> {
        (**self).put_chunk(id, index, chunk).await
    }
    async fn received_chunk(&self, id: &FileId, index: u32) -> Result<Bytes, StorageError> {
        (**self).received_chunk(id, index).await
    }
    async fn progress(&self, id: &FileId) -> Result<Option<UploadProgress>, StorageError> {
        (**self).progress(id).await
    }
    async fn take(&self, id: &FileId) -> Result<(FileMetadata, Vec<Bytes>), StorageError> {
        (**self).take(id).await
    }
    async fn abort(&self, id: &FileId) -> Result<(), StorageError> {
        (**self).abort(id).await
    }
    async fn expire(&self, before: SystemTime) -> Result<usize, StorageError> {
        (**self).expire(before).await
    }
    async fn close(&self) -> Result<(), StorageError> {
        (**self).close().await
    }
}

/// A store that keeps uploads in progress and finished files side by side, and turns a
/// complete upload into a file where it lies: no chunk passes through memory, so finishing a
/// 1 GiB upload costs what renaming or re-labelling it costs.
///
/// [`take`](TemporaryUploadStorage::take) followed by [`put_file`](FileStorage::put_file)
/// moves an upload between two different stores, holding the whole file in memory.
///
/// # Contract
/// - `finish_upload` of a complete session stores the file (metadata and chunks, as
///   [`FileStorage::put_file`] would, durable when it resolves) and removes the session, in
///   that order: a crash in between leaves both, never neither. It returns the metadata.
/// - If the file exists already, the session is removed and the stored file is unchanged.
/// - An incomplete session is [`StorageError::InvalidRequest`] and stays; an unknown one is
///   [`StorageError::NotFound`].
///
/// Checking that the chunks hash to the file id is the caller's job, before finishing.
///
/// ```
/// use bytes::Bytes;
/// use teleportal_storage::{
///     FileId, FileMetadata, FileStorage, FinishUpload, MemoryStorage, TemporaryUploadStorage,
/// };
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = MemoryStorage::new();
/// let meta = FileMetadata::new(FileId::new([3; 32]), "a.txt", 5, "text/plain", 4, 2);
/// store.begin(meta.clone()).await?;
/// store.put_chunk(&meta.id, 0, Bytes::from_static(b"hell")).await?;
/// store.put_chunk(&meta.id, 1, Bytes::from_static(b"o")).await?;
/// assert_eq!(store.finish_upload(&meta.id).await?, meta);
/// assert_eq!(store.chunk(&meta.id, 1).await?, Bytes::from_static(b"o"));
/// assert!(store.progress(&meta.id).await?.is_none());
/// # Ok::<(), teleportal_storage::StorageError>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait FinishUpload: FileStorage + TemporaryUploadStorage {
    /// Turns the complete upload `id` into a file and ends its session.
    ///
    /// # Errors
    /// See the contract; a backend error.
    async fn finish_upload(&self, id: &FileId) -> Result<FileMetadata, StorageError>;
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: FinishUpload + ?Sized> FinishUpload for Arc<S> {
    async fn finish_upload(&self, id: &FileId) -> Result<FileMetadata, StorageError> {
        (**self).finish_upload(id).await
    }
}
