//! [`FileStorage`]: finished files, as chunks keyed by their Merkle root.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, TryStreamExt};

use crate::{DocumentId, StorageError};

/// A file's id: the root of the Merkle tree over its (possibly encrypted) chunks (spec §12).
/// Content-derived, so the same bytes always get the same id.
///
/// ```
/// use teleportal_storage::FileId;
///
/// let id = FileId::new([7; 32]);
/// assert_eq!(id.to_string().len(), 64);
/// assert_eq!(id.as_bytes(), &[7; 32]);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId([u8; 32]);

impl FileId {
    /// An id from the 32 root bytes.
    pub const fn new(root: [u8; 32]) -> Self {
        FileId(root)
    }

    /// The 32 root bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for FileId {
    /// Lowercase hex (the wire uses base64; storage keys use hex, which is path-safe).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileId({self})")
    }
}

/// What is known about a file besides its bytes (the `fileUpload` request's fields).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileMetadata {
    /// The Merkle root of the chunks.
    pub id: FileId,
    /// The client's file name.
    pub filename: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// The MIME type the client declared.
    pub mime_type: String,
    /// The client's last-modified time, milliseconds since the Unix epoch.
    pub last_modified: u64,
    /// Whether the chunks are end-to-end encrypted.
    pub encrypted: bool,
    /// The chunk size the file was cut with (the last chunk may be shorter).
    pub chunk_size: u32,
    /// How many chunks the file has.
    pub chunk_count: u32,
    /// The document the file belongs to, if any.
    pub document: Option<DocumentId>,
}

impl FileMetadata {
    /// Metadata with the required fields; `last_modified` 0, unencrypted, no document.
    pub fn new(
        id: FileId,
        filename: impl Into<String>,
        size: u64,
        mime_type: impl Into<String>,
        chunk_size: u32,
        chunk_count: u32,
    ) -> Self {
        FileMetadata {
            id,
            filename: filename.into(),
            size,
            mime_type: mime_type.into(),
            last_modified: 0,
            encrypted: false,
            chunk_size,
            chunk_count,
            document: None,
        }
    }

    /// Sets the document the file belongs to.
    pub fn with_document(mut self, document: DocumentId) -> Self {
        self.document = Some(document);
        self
    }

    /// Sets whether the chunks are end-to-end encrypted.
    pub fn with_encrypted(mut self, encrypted: bool) -> Self {
        self.encrypted = encrypted;
        self
    }

    /// Sets the client's last-modified time (ms since the epoch).
    pub fn with_last_modified(mut self, last_modified: u64) -> Self {
        self.last_modified = last_modified;
        self
    }

    /// Checks that `chunks` chunks are what this file declares, as
    /// [`FileStorage::put_file`] requires of every backend.
    ///
    /// # Errors
    /// [`StorageError::InvalidRequest`] naming both counts.
    ///
    /// ```
    /// use teleportal_storage::{FileId, FileMetadata};
    ///
    /// let meta = FileMetadata::new(FileId::new([1; 32]), "a.txt", 10, "text/plain", 4, 3);
    /// assert!(meta.check_chunk_count(3).is_ok());
    /// assert!(meta.check_chunk_count(2).is_err());
    /// ```
    pub fn check_chunk_count(&self, chunks: usize) -> Result<(), StorageError> {
        if u32::try_from(chunks).ok() == Some(self.chunk_count) {
            Ok(())
        } else {
            Err(StorageError::InvalidRequest {
                reason: format!(
                    "file {} declares {} chunks but {chunks} were given",
                    self.id, self.chunk_count
                ),
            })
        }
    }
}

impl FileMetadata {
    /// Checks that `index` is one of this file's chunks, as
    /// [`TemporaryUploadStorage::put_chunk`](crate::TemporaryUploadStorage::put_chunk)
    /// requires of every backend.
    ///
    /// # Errors
    /// [`StorageError::InvalidRequest`] naming the index and the count.
    ///
    /// ```
    /// use teleportal_storage::{FileId, FileMetadata};
    ///
    /// let meta = FileMetadata::new(FileId::new([1; 32]), "a.txt", 10, "text/plain", 4, 3);
    /// assert!(meta.check_chunk_index(2).is_ok());
    /// assert!(meta.check_chunk_index(3).is_err());
    /// ```
    pub fn check_chunk_index(&self, index: u32) -> Result<(), StorageError> {
        if index < self.chunk_count {
            Ok(())
        } else {
            Err(StorageError::InvalidRequest {
                reason: format!(
                    "chunk {index} is past the end of file {} ({} chunks)",
                    self.id, self.chunk_count
                ),
            })
        }
    }
}

/// A file's chunks in index order, as they are read: what
/// [`FileStorage::put_file_stream`] stores without holding the file.
pub type ChunkStream = BoxStream<'static, Result<Bytes, StorageError>>;

/// Finished files: metadata plus chunks, keyed by [`FileId`].
///
/// Verifying chunks against the Merkle root is the caller's job (the server does it before
/// storing); storage keeps bytes.
///
/// # Contract
/// - `put_file` stores all chunks and the metadata, and resolves `Ok` once they are durable. A
///   reader never sees metadata without all its chunks. Storing an id that exists is a no-op
///   (content-addressed: same id, same bytes).
/// - `chunks.len()` must equal `metadata.chunk_count`, else [`StorageError::InvalidRequest`].
/// - `put_file_stream` is `put_file` with the chunks arriving one at a time; a stream that
///   fails, or yields another number of chunks, stores nothing and returns that error (or
///   [`StorageError::InvalidRequest`]).
/// - `chunk` past the end, or of an unknown file, is [`StorageError::NotFound`].
/// - `delete_file` of an unknown id is `Ok`.
#[async_trait]
pub trait FileStorage: Send + Sync + 'static {
    /// Stores a whole file.
    ///
    /// # Errors
    /// [`StorageError::InvalidRequest`] when the chunk count is wrong; a backend error.
    async fn put_file(
        &self,
        metadata: FileMetadata,
        chunks: Vec<Bytes>,
    ) -> Result<(), StorageError>;

    /// Stores a file whose chunks are read one at a time, such as an upload moving from one
    /// store to another.
    ///
    /// The default collects the chunks and calls [`put_file`](FileStorage::put_file), so it
    /// holds the whole file; backends that can write chunks as they come override it and hold
    /// a bounded amount (S3: a few multipart parts).
    ///
    /// # Errors
    /// The stream's first error; otherwise as [`put_file`](FileStorage::put_file).
    async fn put_file_stream(
        &self,
        metadata: FileMetadata,
        chunks: ChunkStream,
    ) -> Result<(), StorageError> {
        let chunks: Vec<Bytes> = chunks.try_collect().await?;
        self.put_file(metadata, chunks).await
    }

    /// The file's metadata, or `None`.
    ///
    /// # Errors
    /// A backend error.
    async fn file_metadata(&self, id: &FileId) -> Result<Option<FileMetadata>, StorageError>;

    /// One chunk of the file.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] for an unknown file or index; a backend error.
    async fn chunk(&self, id: &FileId, index: u32) -> Result<Bytes, StorageError>;

    /// The files that belong to a document.
    ///
    /// # Errors
    /// A backend error.
    async fn files_of_document(&self, doc: &DocumentId) -> Result<Vec<FileMetadata>, StorageError>;

    /// Removes a file and its chunks.
    ///
    /// # Errors
    /// A backend error.
    async fn delete_file(&self, id: &FileId) -> Result<(), StorageError>;

    /// Finishes what the backend still has queued and releases what it holds, at shutdown
    /// once nothing writes files any more; closing twice is `Ok`. The default does nothing
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
impl<S: FileStorage + ?Sized> FileStorage for Arc<S> {
    async fn put_file(
        &self,
        metadata: FileMetadata,
        chunks: Vec<Bytes>,
    ) -> Result<(), StorageError> {
        (**self).put_file(metadata, chunks).await
    }
    async fn put_file_stream(
        &self,
        metadata: FileMetadata,
        chunks: ChunkStream,
    ) -> Result<(), StorageError> {
        (**self).put_file_stream(metadata, chunks).await
    }
    async fn file_metadata(&self, id: &FileId) -> Result<Option<FileMetadata>, StorageError> {
        (**self).file_metadata(id).await
    }
    async fn chunk(&self, id: &FileId, index: u32) -> Result<Bytes, StorageError> {
        (**self).chunk(id, index).await
    }
    async fn files_of_document(&self, doc: &DocumentId) -> Result<Vec<FileMetadata>, StorageError> {
        (**self).files_of_document(doc).await
    }
    async fn delete_file(&self, id: &FileId) -> Result<(), StorageError> {
        (**self).delete_file(id).await
    }
    async fn close(&self) -> Result<(), StorageError> {
        (**self).close().await
    }
}
