//! [`S3FileStorage`]: finished files, one data object each, read back a chunk at a time.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload, WriteMultipart};
use serde::{Deserialize, Serialize};
use teleportal_storage::{
    ChunkStream, DocumentId, FileId, FileMetadata, FileStorage, StorageError,
};

use crate::S3Config;
use crate::error::{S3Error, corrupt};
use crate::keys;

/// How many metadata objects `files_of_document` reads at once.
const LIST_CONCURRENCY: usize = 8;
/// How many multipart parts upload at once (and so how many are buffered).
const PART_CONCURRENCY: usize = 4;

/// Finished files in an S3-compatible bucket.
///
/// # Layout
/// Each file is **one data object** holding its chunks back to back, plus a small JSON
/// **metadata object** with the [`FileMetadata`] and where each chunk starts. A chunk read is
/// one ranged `GET` of the data object (after a `GET` of the metadata), so a download streams
/// chunk by chunk and nothing ever holds a whole file; [`chunks`](S3FileStorage::chunks) does
/// that for every chunk in order. One object per file rather than per chunk keeps a 1 GiB file
/// at two objects instead of thousands (S3 bills per request and per object), and lets a data
/// object of at least the [part size](S3Config::part_size) upload as a multipart upload.
///
/// A document's files are listed through an empty marker object per file under a prefix per
/// document (`file-index/<document>/<file id>`), so
/// [`files_of_document`](FileStorage::files_of_document) is one `LIST` plus a `GET` of each
/// file's metadata. The full key layout is in `docs/storage.md`.
///
/// # Consistency
/// `put_file` writes the data object, then the document's marker, then the metadata object
/// with `If-None-Match: *`: the metadata is the commit point, so a reader never sees metadata
/// without its data, and of two racing puts of one id the first to commit wins (content
/// addressing makes them equal anyway). A put that died half-way leaves a data object and
/// perhaps a marker but no metadata: the file does not exist, listing skips the marker, and
/// putting the file again completes it. `delete_file` removes the metadata first, then the
/// marker and the data.
///
/// ```no_run
/// use bytes::Bytes;
/// use teleportal_s3::{S3Config, S3FileStorage};
/// use teleportal_storage::{FileId, FileMetadata, FileStorage};
///
/// #[tokio::main]
/// async fn main() -> Result<(), teleportal_storage::StorageError> {
///     let config = S3Config::from_url("s3://files?endpoint=http://127.0.0.1:9000")?
///         .credentials("minioadmin", "minioadmin");
///     let files = S3FileStorage::new(&config)?;
///     let metadata = FileMetadata::new(FileId::new([1; 32]), "a.txt", 5, "text/plain", 4, 2);
///     files
///         .put_file(metadata, vec![Bytes::from_static(b"hell"), Bytes::from_static(b"o")])
///         .await?;
///     assert_eq!(files.chunk(&FileId::new([1; 32]), 1).await?, "o");
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct S3FileStorage {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    part_size: usize,
}

impl S3FileStorage {
    /// Files in the bucket `config` describes, under its prefix.
    ///
    /// # Errors
    /// [`StorageError::Backend`] when the client cannot be built from `config`.
    pub fn new(config: &S3Config) -> Result<Self, StorageError> {
        Ok(S3FileStorage {
            store: config.object_store()?,
            prefix: config.prefix_path(),
            part_size: config.multipart_part_size(),
        })
    }

    /// Files in any [`ObjectStore`] (for instance one client shared with an
    /// [`S3DocumentStorage`](crate::S3DocumentStorage)), under `prefix`, with the default part
    /// size. The store must support `PutMode::Create`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use teleportal_s3::S3FileStorage;
    ///
    /// let files = S3FileStorage::with_store(Arc::new(object_store::memory::InMemory::new()), "files");
    /// # let _ = files;
    /// ```
    pub fn with_store(store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        S3FileStorage {
            store,
            prefix: crate::config::prefix_path(prefix),
            part_size: S3Config::DEFAULT_PART_SIZE,
        }
    }

    /// Sets the multipart part size (see [`S3Config::part_size`]).
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.max(S3Config::MIN_PART_SIZE);
        self
    }

    /// Every chunk of the file in order, each fetched by its own ranged `GET` when the stream
    /// is polled: a download that never holds more than one chunk.
    ///
    /// ```no_run
    /// use futures::TryStreamExt;
    /// use teleportal_s3::{S3Config, S3FileStorage};
    /// use teleportal_storage::FileId;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), teleportal_storage::StorageError> {
    ///     let files = S3FileStorage::new(&S3Config::from_url("s3://files")?)?;
    ///     let mut chunks = files.chunks(&FileId::new([1; 32])).await?;
    ///     while let Some(chunk) = chunks.try_next().await? {
    ///         println!("{} bytes", chunk.len());
    ///     }
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// [`StorageError::NotFound`] for an unknown file; a backend error. An item is
    /// [`StorageError::NotFound`] if the file is deleted while it streams.
    ///
    /// # Cancel safety
    /// Reads only; dropping the future or the stream at any point is harmless.
    pub async fn chunks(
        &self,
        id: &FileId,
    ) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
        let record = self
            .record(id)
            .await?
            .ok_or_else(|| not_found("file", id))?;
        let store = Arc::clone(&self.store);
        let data = keys::file_data(&self.prefix, id);
        let id = *id;
        let count = record.metadata.chunk_count;
        Ok(stream::iter(0..count)
            .then(move |index| {
                let range = record.range(index);
                let store = Arc::clone(&store);
                let data = data.clone();
                async move { read_range(&*store, &data, &id, range).await }
            })
            .boxed())
    }

    async fn record(&self, id: &FileId) -> Result<Option<FileRecord>, StorageError> {
        read_record(&*self.store, &keys::file_meta(&self.prefix, id), id).await
    }

    /// Writes the chunks as one object as they come: one `PUT` if they end within the first
    /// part's worth, else a multipart upload holding at most a few parts. Returns each chunk's
    /// length; on an error nothing is left but what a lifecycle rule or a later put cleans up.
    async fn put_data(
        &self,
        location: &Path,
        mut chunks: ChunkStream,
    ) -> Result<Vec<u64>, StorageError> {
        let mut lens = Vec::new();
        let mut first = Vec::new();
        let mut buffered = 0usize;
        while buffered < self.part_size {
            match chunks.try_next().await? {
                Some(chunk) => {
                    lens.push(chunk.len() as u64);
                    buffered += chunk.len();
                    first.push(chunk);
                }
                None => {
                    let payload: PutPayload = first.into_iter().collect();
                    self.store
                        .put(location, payload)
                        .await
                        .map_err(|e| S3Error::request("PUT", location, e))?;
                    return Ok(lens);
                }
            }
        }
        let upload = self
            .store
            .put_multipart(location)
            .await
            .map_err(|e| S3Error::request("CreateMultipartUpload", location, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_size);
        // The buffered chunks go first, and are counted again as they do.
        lens.clear();
        let mut pending = stream::iter(first.into_iter().map(Ok)).chain(chunks);
        loop {
            let chunk = match pending.try_next().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    // Aborting frees the parts S3 would otherwise keep (and bill).
                    let _ = writer.abort().await;
                    return Err(e);
                }
            };
            if let Err(e) = writer.wait_for_capacity(PART_CONCURRENCY).await {
                let _ = writer.abort().await;
                return Err(S3Error::request("UploadPart", location, e).into());
            }
            lens.push(chunk.len() as u64);
            writer.put(chunk);
        }
        writer
            .finish()
            .await
            .map_err(|e| S3Error::request("CompleteMultipartUpload", location, e))?;
        Ok(lens)
    }

    async fn delete_quietly(&self, location: &Path) -> Result<(), StorageError> {
        match self.store.delete(location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(S3Error::request("DELETE", location, e).into()),
        }
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl FileStorage for S3FileStorage {
    /// Uploads the data object (multipart from the part size up), the document's marker, then
    /// the metadata with `If-None-Match: *`. An id whose metadata exists is left as it is.
    ///
    /// # Cancel safety
    /// Dropping the future leaves the file either stored or absent (perhaps with an
    /// unreferenced data object, which a later put of the id overwrites), and may leave an
    /// unfinished multipart upload for the bucket's lifecycle rule to abort.
    async fn put_file(
        &self,
        metadata: FileMetadata,
        chunks: Vec<Bytes>,
    ) -> Result<(), StorageError> {
        metadata.check_chunk_count(chunks.len())?;
        self.put_file_stream(metadata, stream::iter(chunks.into_iter().map(Ok)).boxed())
            .await
    }

    /// As [`put_file`](FileStorage::put_file), holding at most a few multipart parts of the
    /// file; a stream with another number of chunks stores no metadata (the data object it
    /// wrote is unreferenced, and overwritten by the next put of the id).
    async fn put_file_stream(
        &self,
        metadata: FileMetadata,
        chunks: ChunkStream,
    ) -> Result<(), StorageError> {
        let meta_key = keys::file_meta(&self.prefix, &metadata.id);
        match self.store.head(&meta_key).await {
            Ok(_) => return Ok(()), // Content-addressed: the stored file has these bytes.
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(S3Error::request("HEAD", &meta_key, e).into()),
        }
        let data = keys::file_data(&self.prefix, &metadata.id);
        let lens = self.put_data(&data, chunks).await?;
        if let Err(e) = metadata.check_chunk_count(lens.len()) {
            self.delete_quietly(&data).await?;
            return Err(e);
        }
        let record = FileRecord::from_lens(metadata, &lens);
        let body = serde_json::to_vec(&record)
            .map_err(|e| corrupt("file metadata does not serialize", e))?;
        if let Some(doc) = &record.metadata.document {
            let marker = keys::file_index(&self.prefix, doc, &record.metadata.id);
            self.store
                .put(&marker, PutPayload::new())
                .await
                .map_err(|e| S3Error::request("PUT", &marker, e))?;
        }
        match self
            .store
            .put_opts(&meta_key, body.into(), PutMode::Create.into())
            .await
        {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(S3Error::request("PUT", &meta_key, e).into()),
        }
    }

    async fn file_metadata(&self, id: &FileId) -> Result<Option<FileMetadata>, StorageError> {
        Ok(self.record(id).await?.map(|r| r.metadata))
    }

    /// A `GET` of the metadata, then a ranged `GET` of the chunk's bytes.
    async fn chunk(&self, id: &FileId, index: u32) -> Result<Bytes, StorageError> {
        let record = self
            .record(id)
            .await?
            .ok_or_else(|| not_found("file", id))?;
        if index >= record.metadata.chunk_count {
            return Err(not_found("chunk", format!("{id}/{index}")));
        }
        let data = keys::file_data(&self.prefix, id);
        read_range(&*self.store, &data, id, record.range(index)).await
    }

    /// One `LIST` of the document's markers, then a `GET` of each file's metadata.
    async fn files_of_document(&self, doc: &DocumentId) -> Result<Vec<FileMetadata>, StorageError> {
        let dir = keys::file_index_dir(&self.prefix, doc);
        let markers: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| S3Error::request("LIST", &dir, e))?;
        let ids: Vec<FileId> = markers
            .iter()
            .filter_map(|m| keys::file_id_of_index(&m.location))
            .collect();
        let mut files: Vec<FileMetadata> = stream::iter(ids)
            .map(|id| async move { self.record(&id).await })
            .buffer_unordered(LIST_CONCURRENCY)
            .try_filter_map(|record| async move {
                // A marker without metadata is a put that has not committed (or a delete that
                // has not finished); one naming another document lost a race for the id.
                Ok(record
                    .map(|r| r.metadata)
                    .filter(|m| m.document.as_ref() == Some(doc)))
            })
            .try_collect()
            .await?;
        files.sort_by_key(|m| m.id);
        Ok(files)
    }

    /// Deletes the metadata (the file is gone from then on), then the marker and the data.
    async fn delete_file(&self, id: &FileId) -> Result<(), StorageError> {
        let Some(record) = self.record(id).await? else {
            return Ok(());
        };
        self.delete_quietly(&keys::file_meta(&self.prefix, id))
            .await?;
        if let Some(doc) = &record.metadata.document {
            self.delete_quietly(&keys::file_index(&self.prefix, doc, id))
                .await?;
        }
        self.delete_quietly(&keys::file_data(&self.prefix, id))
            .await
    }
    async fn close(&self) -> Result<(), StorageError> {
        Ok(()) // Nothing queued: every acknowledged write is already in place.
    }
}

/// The metadata object: the file's [`FileMetadata`] and where its chunks lie in the data object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileRecord {
    metadata: FileMetadata,
    layout: ChunkLayout,
}

/// Where chunk `i` lies in the data object.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ChunkLayout {
    /// Every chunk but the last is `stride` bytes, the last at most that: `i * stride` up to
    /// `total`. The usual shape, and constant-size.
    Stride { stride: u64, total: u64 },
    /// Chunk `i` ends at `ends[i]` (encrypted chunks, or a client that cut unevenly).
    Ends(Vec<u64>),
}

impl FileRecord {
    fn from_lens(metadata: FileMetadata, lens: &[u64]) -> Self {
        let total = lens.iter().sum();
        let layout = match lens.split_last() {
            None => ChunkLayout::Stride { stride: 0, total },
            Some((last, rest)) => {
                let stride = rest.first().copied().unwrap_or(*last);
                if rest.iter().all(|l| *l == stride) && *last <= stride {
                    ChunkLayout::Stride { stride, total }
                } else {
                    ChunkLayout::Ends(
                        lens.iter()
                            .scan(0, |end, len| {
                                *end += len;
                                Some(*end)
                            })
                            .collect(),
                    )
                }
            }
        };
        FileRecord { metadata, layout }
    }

    /// The byte range of chunk `index` (below the chunk count; a corrupt record gives an empty
    /// or clamped range rather than a panic).
    fn range(&self, index: u32) -> std::ops::Range<u64> {
        match &self.layout {
            ChunkLayout::Stride { stride, total } => {
                let start = u64::from(index).saturating_mul(*stride).min(*total);
                start..start.saturating_add(*stride).min(*total)
            }
            ChunkLayout::Ends(ends) => {
                let i = usize::try_from(index).unwrap_or(usize::MAX);
                let end = ends.get(i).copied().unwrap_or(0);
                let start = i
                    .checked_sub(1)
                    .and_then(|p| ends.get(p))
                    .copied()
                    .unwrap_or(0);
                start.min(end)..end
            }
        }
    }
}

/// The metadata object's JSON (version 1).
#[derive(Serialize, Deserialize)]
struct FileRecordJson {
    version: u32,
    filename: String,
    size: u64,
    mime_type: String,
    last_modified: u64,
    encrypted: bool,
    chunk_size: u32,
    chunk_count: u32,
    document: Option<String>,
    /// Set for [`ChunkLayout::Stride`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stride: Option<u64>,
    /// The data object's length.
    total: u64,
    /// Set for [`ChunkLayout::Ends`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ends: Option<Vec<u64>>,
}

impl Serialize for FileRecord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let m = &self.metadata;
        let (stride, total, ends) = match &self.layout {
            ChunkLayout::Stride { stride, total } => (Some(*stride), *total, None),
            ChunkLayout::Ends(ends) => {
                (None, ends.last().copied().unwrap_or(0), Some(ends.clone()))
            }
        };
        FileRecordJson {
            version: 1,
            filename: m.filename.clone(),
            size: m.size,
            mime_type: m.mime_type.clone(),
            last_modified: m.last_modified,
            encrypted: m.encrypted,
            chunk_size: m.chunk_size,
            chunk_count: m.chunk_count,
            document: m.document.as_ref().map(|d| d.as_str().to_owned()),
            stride,
            total,
            ends,
        }
        .serialize(serializer)
    }
}

/// Reads and parses a metadata object; `None` when there is none.
async fn read_record(
    store: &dyn ObjectStore,
    location: &Path,
    id: &FileId,
) -> Result<Option<FileRecord>, StorageError> {
    let bytes = match store.get(location).await {
        Ok(result) => result
            .bytes()
            .await
            .map_err(|e| S3Error::request("GET", location, e))?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(S3Error::request("GET", location, e).into()),
    };
    let json: FileRecordJson =
        serde_json::from_slice(&bytes).map_err(|e| corrupt("unreadable file metadata", e))?;
    if json.version != 1 {
        return Err(StorageError::corrupt("file metadata of an unknown version"));
    }
    let layout = match (json.stride, json.ends) {
        (Some(stride), None) => ChunkLayout::Stride {
            stride,
            total: json.total,
        },
        (None, Some(ends)) if u32::try_from(ends.len()) == Ok(json.chunk_count) => {
            ChunkLayout::Ends(ends)
        }
        _ => {
            return Err(StorageError::corrupt(
                "file metadata without a chunk layout",
            ));
        }
    };
    let mut metadata = FileMetadata::new(
        *id,
        json.filename,
        json.size,
        json.mime_type,
        json.chunk_size,
        json.chunk_count,
    )
    .with_encrypted(json.encrypted)
    .with_last_modified(json.last_modified);
    if let Some(doc) = json.document {
        metadata = metadata.with_document(DocumentId::from(doc));
    }
    Ok(Some(FileRecord { metadata, layout }))
}

/// One ranged `GET` of a chunk; a vanished data object means the file was deleted meanwhile.
async fn read_range(
    store: &dyn ObjectStore,
    data: &Path,
    id: &FileId,
    range: std::ops::Range<u64>,
) -> Result<Bytes, StorageError> {
    if range.is_empty() {
        return Ok(Bytes::new()); // S3 cannot serve an empty range.
    }
    let expected = range.end - range.start;
    match store.get_range(data, range).await {
        Ok(bytes) if bytes.len() as u64 == expected => Ok(bytes),
        Ok(_) => Err(StorageError::corrupt(
            "a file's data object is shorter than its metadata says",
        )),
        Err(object_store::Error::NotFound { .. }) => Err(not_found("file", id)),
        Err(e) => Err(S3Error::request("GET", data, e).into()),
    }
}

fn not_found(kind: &'static str, id: impl std::fmt::Display) -> StorageError {
    StorageError::NotFound {
        kind,
        id: id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(lens: &[usize]) -> FileRecord {
        let lens: Vec<u64> = lens.iter().map(|l| *l as u64).collect();
        let count = u32::try_from(lens.len()).expect("few chunks");
        let metadata = FileMetadata::new(FileId::new([1; 32]), "f", 0, "x/y", 4, count);
        FileRecord::from_lens(metadata, &lens)
    }

    fn ranges(record: &FileRecord) -> Vec<std::ops::Range<u64>> {
        (0..record.metadata.chunk_count)
            .map(|i| record.range(i))
            .collect()
    }

    #[test]
    fn even_chunks_use_a_stride() {
        let r = record(&[4, 4, 3]);
        assert_eq!(
            r.layout,
            ChunkLayout::Stride {
                stride: 4,
                total: 11
            }
        );
        assert_eq!(ranges(&r), vec![0..4, 4..8, 8..11]);
        assert_eq!(ranges(&record(&[7])), vec![0..7]);
        assert_eq!(ranges(&record(&[])), vec![]);
    }

    #[test]
    fn uneven_chunks_record_their_ends() {
        let r = record(&[4, 6, 2]);
        assert_eq!(r.layout, ChunkLayout::Ends(vec![4, 10, 12]));
        assert_eq!(ranges(&r), vec![0..4, 4..10, 10..12]);
        // A last chunk longer than the others cannot use the stride.
        assert_eq!(ranges(&record(&[2, 2, 5])), vec![0..2, 2..4, 4..9]);
    }
}
