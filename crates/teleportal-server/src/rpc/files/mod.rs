//! The file protocol (spec §11.5, §12.4–12.5) over a [`FileStorage`] and a
//! [`TemporaryUploadStorage`].

mod cache;

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use teleportal_core::merkle::{
    DEFAULT_CHUNK_SIZE, Hash, MAX_FILE_SIZE, MerkleHasher, MerkleTree, Sha256Hasher, parse_file_id,
    plaintext_chunk_size, total_chunks, verify_leaf_proof,
};
use teleportal_core::rpc::{
    FILE_DOWNLOAD, FILE_UPLOAD, FileDownloadRequest, FileDownloadResponse, FilePartStream,
    FileUploadRequest, FileUploadResponse,
};
use teleportal_storage::{
    ChunkStream, FileId, FileMetadata, FileStorage, FinishUpload, StorageError,
    TemporaryUploadStorage,
};

use self::cache::Cache;
use super::{RpcError, RpcHandler, RpcRequest, RpcResponse};

/// Chunks at least this long are hashed on a blocking thread, alongside their write.
const HASH_OFF_THREAD: usize = 64 * 1024;

/// Answers `fileUpload` (request and chunk stream) and `fileDownload`.
///
/// - **Upload**: the request opens (or resumes: ids are content-derived) an upload session in
///   the [`TemporaryUploadStorage`] and answers with the chunks already there. Each chunk part
///   is checked (index, declared total, size); a part carrying a Merkle proof is verified
///   against the file id before it is stored, and a failing one is NACKed (reference clients
///   send no proof: their chunks are hashed while they are written). Once every chunk is in,
///   the leaf hashes must give the file id as root, and the upload becomes a file under the
///   request's document; a mismatching root drops the upload.
/// - **Download**: only a file of the request's document; parts carry each chunk with its
///   proof, read one chunk at a time, then the response with the metadata. Missing files (or
///   another document's) are `allowed: false` with status 404, as the reference answers.
/// - Limits: files up to [`FileRpc::with_max_size`] bytes (default 1 GiB), cut into chunks
///   of [`FileRpc::with_chunk_size`] bytes (default 1 MiB); a client asking for another
///   chunk size is told the server's (`chunkSizeMismatch`).
///
/// Permission is checked before the handler: uploads need write access to the document,
/// downloads read access.
///
/// # Memory
/// Leaf hashes (32 bytes per chunk) of uploads in progress and the trees of recent files are
/// kept, so neither finishing nor the first download part waits for a file to be re-read.
/// With [`FileRpc::in_store`] (a [`FinishUpload`] store), no file passes through memory.
/// [`FileRpc::new`] with two different stores moves a finished upload chunk by chunk (each
/// checked again against its leaf) with [`put_file_stream`](FileStorage::put_file_stream):
/// bounded where the file store streams (S3), whole where it uses the default.
///
/// ```
/// use std::sync::Arc;
///
/// use teleportal_server::Server;
/// use teleportal_server::rpc::FileRpc;
/// use teleportal_storage::{DocumentStore, MemoryStorage};
///
/// let storage = Arc::new(MemoryStorage::new());
/// let server = Server::builder(DocumentStore::new(storage.clone()))
///     .files(FileRpc::in_store(storage).with_max_size(64 << 20))
///     .build();
/// // Serve connections with `teleportal_server::serve`, or mount `teleportal-axum`.
/// # drop(server);
/// ```
pub struct FileRpc<F, U> {
    files: Arc<F>,
    uploads: Arc<U>,
    /// Set when uploads and files share a store that finishes uploads in place.
    in_place: Option<Arc<dyn FinishUpload>>,
    cache: Cache,
    chunk_size: u32,
    max_size: u64,
}

impl<F, U> fmt::Debug for FileRpc<F, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileRpc")
            .field("in_place", &self.in_place.is_some())
            .field("chunk_size", &self.chunk_size)
            .field("max_size", &self.max_size)
            .finish_non_exhaustive()
    }
}

impl<S: FinishUpload> FileRpc<S, S> {
    /// Uploads in progress and finished files in one store, which turns a complete upload
    /// into a file where it lies (see [`FinishUpload`]).
    pub fn in_store(store: S) -> Self {
        let store = Arc::new(store);
        let mut rpc = FileRpc::from_arcs(Arc::clone(&store), Arc::clone(&store));
        rpc.in_place = Some(store);
        rpc
    }
}

impl<F: FileStorage, U: TemporaryUploadStorage> FileRpc<F, U> {
    /// Finished files in `files`, uploads in progress in `uploads`; a finished upload is
    /// streamed across (see the type's docs, and [`FileRpc::in_store`]).
    pub fn new(files: F, uploads: U) -> Self {
        FileRpc::from_arcs(Arc::new(files), Arc::new(uploads))
    }

    /// The file and upload stores, for the server to expire uploads and close them.
    pub(crate) fn stores(&self) -> (Arc<dyn FileStorage>, Arc<dyn TemporaryUploadStorage>) {
        (
            Arc::clone(&self.files) as Arc<dyn FileStorage>,
            Arc::clone(&self.uploads) as Arc<dyn TemporaryUploadStorage>,
        )
    }

    fn from_arcs(files: Arc<F>, uploads: Arc<U>) -> Self {
        FileRpc {
            files,
            uploads,
            in_place: None,
            cache: Cache::default(),
            chunk_size: u32::try_from(DEFAULT_CHUNK_SIZE).unwrap_or(u32::MAX),
            max_size: MAX_FILE_SIZE,
        }
    }

    /// Sets the wire chunk size clients must use (at least 29 bytes, room for an encrypted
    /// chunk's IV and tag).
    #[must_use]
    pub fn with_chunk_size(mut self, chunk_size: u32) -> Self {
        self.chunk_size = chunk_size.max(29);
        self
    }

    /// Sets the largest file accepted, in plaintext bytes.
    #[must_use]
    pub fn with_max_size(mut self, max_size: u64) -> Self {
        self.max_size = max_size;
        self
    }

    async fn upload(&self, request: &RpcRequest) -> Result<RpcResponse, RpcError> {
        let upload = FileUploadRequest::from_any(&request.payload)?;
        let file_id = upload.file_id.clone();
        let server_chunk = u64::from(self.chunk_size);
        let answer = |response: FileUploadResponse| Ok(RpcResponse::new(response.to_any()));
        if upload.size > self.max_size {
            return answer(FileUploadResponse::Denied {
                file_id,
                reason: Some(format!(
                    "File too large: {} > {} bytes",
                    upload.size, self.max_size
                )),
                status_code: 413,
            });
        }
        if upload.chunk_size.is_some_and(|size| size != server_chunk) {
            return answer(FileUploadResponse::ChunkSizeMismatch {
                file_id,
                chunk_size: server_chunk,
            });
        }
        let id = parse_id(&file_id)?;
        if self.files.file_metadata(&id).await?.is_some() {
            return answer(FileUploadResponse::AlreadyExists {
                file_id,
                chunk_size: server_chunk,
            });
        }
        let plain = plaintext_chunk_size(self.chunk_size as usize, upload.encrypted)
            .ok_or_else(|| RpcError::internal("chunk size leaves no room for data"))?;
        let chunk_count = u32::try_from(total_chunks(upload.size, plain))
            .map_err(|_| RpcError::bad_request("too many chunks"))?;
        let metadata = FileMetadata::new(
            id,
            upload.filename,
            upload.size,
            upload.mime_type,
            self.chunk_size,
            chunk_count,
        )
        .with_encrypted(upload.encrypted)
        .with_last_modified(js_time(upload.last_modified))
        .with_document(teleportal_storage::DocumentId::new(&request.document_key));
        let progress = match self.uploads.begin(metadata).await {
            Ok(progress) => progress,
            // The same bytes declared differently (another name, document…): refuse.
            Err(StorageError::InvalidRequest { .. }) => {
                return answer(FileUploadResponse::Denied {
                    file_id,
                    reason: Some(
                        "an upload of this file with other metadata is in progress".into(),
                    ),
                    status_code: 409,
                });
            }
            Err(e) => return Err(e.into()),
        };
        if progress.is_complete() {
            // Every chunk arrived before, but the upload was never finished (the server
            // stopped in between): finish it now instead of waiting for a chunk that will
            // not come.
            self.finish(&progress.metadata).await?;
            if self.files.file_metadata(&id).await?.is_some() {
                return answer(FileUploadResponse::AlreadyExists {
                    file_id,
                    chunk_size: server_chunk,
                });
            }
        }
        let existing = progress
            .received
            .iter()
            .map(|&i| u64::from(i))
            .collect::<Vec<_>>();
        answer(FileUploadResponse::Accepted {
            file_id,
            existing_chunks: (!existing.is_empty()).then_some(existing),
            chunk_size: Some(server_chunk),
        })
    }

    async fn upload_chunk(&self, part: &RpcRequest) -> Result<(), RpcError> {
        let chunk = FilePartStream::from_any(&part.payload)?;
        let id = parse_id(&chunk.file_id)?;
        let progress = self.uploads.progress(&id).await?.ok_or_else(|| {
            RpcError::new(
                404,
                format!("No upload in progress for file {}", chunk.file_id),
            )
        })?;
        let meta = &progress.metadata;
        if meta.document.as_ref().map(|d| d.as_str()) != Some(part.document_key.as_str()) {
            return Err(RpcError::new(403, "The upload belongs to another document"));
        }
        let index = u32::try_from(chunk.chunk_index)
            .ok()
            .filter(|&i| i < meta.chunk_count)
            .ok_or_else(|| {
                RpcError::bad_request(format!("chunk index {} out of range", chunk.chunk_index))
            })?;
        if chunk.total_chunks != u64::from(meta.chunk_count) {
            return Err(RpcError::bad_request(format!(
                "totalChunks {} does not match the declared size ({} chunks)",
                chunk.total_chunks, meta.chunk_count
            )));
        }
        if chunk.chunk_data.len() > self.chunk_size as usize {
            return Err(RpcError::bad_request(format!(
                "chunk of {} bytes exceeds the chunk size {}",
                chunk.chunk_data.len(),
                self.chunk_size
            )));
        }
        let proof = chunk
            .merkle_proof
            .iter()
            .map(|hash| Hash::try_from(hash.as_ref()))
            .collect::<Result<Vec<Hash>, _>>()
            .map_err(|_| RpcError::bad_request("Merkle proof hashes must be 32 bytes"))?;
        let data = chunk.chunk_data;
        let leaf = if proof.is_empty() {
            // No proof (as reference clients send): hash while the chunk is written.
            let (leaf, stored) = tokio::join!(
                leaf_hash(data.clone()),
                self.uploads.put_chunk(&id, index, data)
            );
            stored?;
            leaf?
        } else {
            let leaf = leaf_hash(data.clone()).await?;
            let (position, count) = (u64::from(index), u64::from(meta.chunk_count));
            if !verify_leaf_proof(&Sha256Hasher, &leaf, &proof, id.as_bytes(), position, count) {
                return Err(RpcError::bad_request(format!(
                    "chunk {index} fails its Merkle proof against file {}",
                    chunk.file_id
                )));
            }
            self.uploads.put_chunk(&id, index, data).await?;
            leaf
        };
        self.cache.record_leaf(&id, meta.chunk_count, index, leaf);
        // Asked after storing: of two last chunks handled at once, both may see the upload
        // complete (one finishes it, see `finish`), never neither.
        let complete = self
            .uploads
            .progress(&id)
            .await?
            .is_some_and(|now| now.is_complete());
        if complete {
            self.finish(meta).await?;
        }
        Ok(())
    }

    /// Makes a complete upload a file if its chunks hash to its id; drops it if they do not.
    /// If another part of the upload is finishing it already, returns at once: a connection
    /// ACKs parts in order, so the last ACK still follows the file's commit.
    async fn finish(&self, metadata: &FileMetadata) -> Result<(), RpcError> {
        let id = &metadata.id;
        let Some(_finishing) = self.cache.start_finishing(id) else {
            return Ok(());
        };
        let mut leaves = self.cache.take_leaves(id, metadata.chunk_count);
        for (index, leaf) in (0u32..).zip(leaves.iter_mut()) {
            if leaf.is_none() {
                // Not seen by this process (sent before a restart, or by another node).
                let chunk = match self.uploads.received_chunk(id, index).await {
                    Ok(chunk) => chunk,
                    // Not complete after all (a concurrent retransmission): the last part
                    // finishes it.
                    Err(StorageError::NotFound { .. }) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                *leaf = Some(leaf_hash(chunk).await?);
            }
        }
        let tree = MerkleTree::from_leaves(&Sha256Hasher, leaves.into_iter().flatten().collect())
            .ok_or_else(|| RpcError::internal("an upload without chunks"))?;
        if tree.root() != *id.as_bytes() {
            self.uploads.abort(id).await?;
            return Err(RpcError::bad_request(
                "upload rejected: the chunks do not hash to the file id",
            ));
        }
        let tree = Arc::new(tree);
        match &self.in_place {
            Some(store) => match store.finish_upload(id).await {
                Ok(_) => {}
                // Finished by a concurrent retransmission of the last part.
                Err(StorageError::InvalidRequest { .. } | StorageError::NotFound { .. }) => {
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            },
            None => {
                let chunks = verified_chunks(Arc::clone(&self.uploads), *id, Arc::clone(&tree));
                match self.files.put_file_stream(metadata.clone(), chunks).await {
                    Ok(()) => self.uploads.abort(id).await?,
                    // The upload went away meanwhile because it was finished elsewhere.
                    Err(_) if self.files.file_metadata(id).await?.is_some() => return Ok(()),
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.cache.keep_tree(*id, tree);
        Ok(())
    }

    async fn download(&self, request: &RpcRequest) -> Result<RpcResponse, RpcError> {
        let FileDownloadRequest { file_id } = FileDownloadRequest::from_any(&request.payload)?;
        let not_found = |file_id: String| {
            Ok(RpcResponse::new(
                FileDownloadResponse::Denied {
                    file_id,
                    reason: Some("File not found".into()),
                    status_code: 404,
                }
                .to_any(),
            ))
        };
        let Some(id) = parse_file_id(&file_id).map(FileId::new) else {
            return not_found(file_id);
        };
        let metadata = match self.files.file_metadata(&id).await? {
            Some(m)
                if m.document.as_ref().map(|d| d.as_str())
                    == Some(request.document_key.as_str()) =>
            {
                m
            }
            _ => return not_found(file_id),
        };
        let tree = match self.cache.tree(&id) {
            Some(tree) => tree,
            None => {
                let tree = Arc::new(self.stored_tree(&id, metadata.chunk_count).await?);
                self.cache.keep_tree(id, Arc::clone(&tree));
                tree
            }
        };
        let files = Arc::clone(&self.files);
        let (part_id, encrypted, count) =
            (file_id.clone(), metadata.encrypted, metadata.chunk_count);
        let parts = stream::unfold((0u32, 0u64), move |(index, sent)| {
            let (files, tree, file_id) = (Arc::clone(&files), Arc::clone(&tree), part_id.clone());
            async move {
                if index >= count {
                    return None;
                }
                let part = async {
                    let chunk_data = files.chunk(&id, index).await?;
                    let sent = sent + chunk_data.len() as u64;
                    let proof = tree.proof(index).unwrap_or_default();
                    let part = FilePartStream {
                        file_id,
                        chunk_index: u64::from(index),
                        chunk_data,
                        merkle_proof: proof.iter().map(|h| Bytes::copy_from_slice(h)).collect(),
                        total_chunks: u64::from(count),
                        bytes_uploaded: sent,
                        encrypted,
                    };
                    Ok::<_, RpcError>((part.to_any(), sent))
                }
                .await;
                Some(match part {
                    Ok((any, sent)) => (Ok(any), (index + 1, sent)),
                    // The error ends the answer; nothing is pulled after it.
                    Err(e) => (Err(e), (count, sent)),
                })
            }
        });
        let response = FileDownloadResponse::Allowed {
            file_id,
            filename: metadata.filename,
            size: metadata.size,
            mime_type: metadata.mime_type,
            last_modified: metadata.last_modified as f64,
            encrypted,
            total_chunks: Some(u64::from(count)),
        };
        Ok(RpcResponse::new(response.to_any()).with_part_stream(parts.boxed()))
    }
}

impl<F: FileStorage, U: TemporaryUploadStorage> FileRpc<F, U> {
    /// A stored file's tree, from one pass over its chunks (32 bytes kept per chunk).
    async fn stored_tree(&self, id: &FileId, count: u32) -> Result<MerkleTree, RpcError> {
        let mut leaves = Vec::with_capacity(count as usize);
        for index in 0..count {
            leaves.push(leaf_hash(self.files.chunk(id, index).await?).await?);
        }
        let tree = MerkleTree::from_leaves(&Sha256Hasher, leaves)
            .ok_or_else(|| RpcError::internal("stored file has no chunks"))?;
        if tree.root() != *id.as_bytes() {
            return Err(RpcError::internal("stored file does not match its id"));
        }
        Ok(tree)
    }
}

/// An upload's chunks read one at a time, each checked against the leaf it was verified
/// with (a chunk replaced since fails the stream, so nothing is stored).
fn verified_chunks<U: TemporaryUploadStorage>(
    uploads: Arc<U>,
    id: FileId,
    tree: Arc<MerkleTree>,
) -> ChunkStream {
    stream::iter(0..tree.leaf_count())
        .then(move |index| {
            let (uploads, tree) = (Arc::clone(&uploads), Arc::clone(&tree));
            async move {
                let chunk = uploads.received_chunk(&id, index).await?;
                let leaf = leaf_hash(chunk.clone())
                    .await
                    .map_err(|e| StorageError::backend("file-rpc", e.details))?;
                if tree.leaf_hash(index) == Some(&leaf) {
                    Ok(chunk)
                } else {
                    Err(StorageError::InvalidRequest {
                        reason: format!("chunk {index} of upload {id} changed while finishing"),
                    })
                }
            }
        })
        .boxed()
}

/// A chunk's SHA-256 leaf hash; a large chunk's on a blocking thread, so the runtime's
/// workers keep moving other connections' messages.
async fn leaf_hash(chunk: Bytes) -> Result<Hash, RpcError> {
    if chunk.len() < HASH_OFF_THREAD {
        return Ok(Sha256Hasher.leaf(&chunk));
    }
    tokio::task::spawn_blocking(move || Sha256Hasher.leaf(&chunk))
        .await
        .map_err(|e| RpcError::internal(format!("hashing a chunk failed: {e}")))
}

#[async_trait::async_trait]
impl<F: FileStorage, U: TemporaryUploadStorage> RpcHandler for FileRpc<F, U> {
    fn methods(&self) -> &[&'static str] {
        &[FILE_UPLOAD, FILE_DOWNLOAD]
    }

    async fn handle(&self, request: RpcRequest) -> Result<RpcResponse, RpcError> {
        match request.method.as_str() {
            FILE_UPLOAD => self.upload(&request).await,
            FILE_DOWNLOAD => self.download(&request).await,
            other => Err(RpcError::new(501, format!("Unknown RPC method: {other}"))),
        }
    }

    async fn handle_stream(&self, part: RpcRequest) -> Result<(), RpcError> {
        match part.method.as_str() {
            FILE_UPLOAD => self.upload_chunk(&part).await,
            other => Err(RpcError::new(
                501,
                format!("RPC streams are not supported for {other}"),
            )),
        }
    }
}

fn parse_id(file_id: &str) -> Result<FileId, RpcError> {
    parse_file_id(file_id)
        .map(FileId::new)
        .ok_or_else(|| RpcError::bad_request(format!("invalid file id {file_id:?}")))
}

/// A JavaScript time (ms, a double) as whole milliseconds; out-of-range values clamp.
fn js_time(ms: f64) -> u64 {
    if ms.is_finite() && ms > 0.0 {
        // Positive and finite: the float-to-int conversion saturates past u64::MAX.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let ms = ms as u64;
        ms
    } else {
        0
    }
}
