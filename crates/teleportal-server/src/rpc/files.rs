//! The file protocol (spec §11.5, §12.4–12.5) over a [`FileStorage`] and a
//! [`TemporaryUploadStorage`].

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use teleportal_core::merkle::{
    DEFAULT_CHUNK_SIZE, MAX_FILE_SIZE, MerkleTree, Sha256Hasher, parse_file_id,
    plaintext_chunk_size, total_chunks,
};
use teleportal_core::rpc::{
    FILE_DOWNLOAD, FILE_UPLOAD, FileDownloadRequest, FileDownloadResponse, FilePartStream,
    FileUploadRequest, FileUploadResponse,
};
use teleportal_storage::{FileId, FileMetadata, FileStorage, StorageError, TemporaryUploadStorage};

use super::{RpcError, RpcHandler, RpcRequest, RpcResponse};

/// Answers `fileUpload` (request and chunk stream) and `fileDownload`.
///
/// - **Upload**: the request opens (or resumes: ids are content-derived) an upload session in
///   the [`TemporaryUploadStorage`] and answers with the chunks already there; each chunk part
///   is checked (index, declared total, size) and stored durably before its ACK; once every
///   chunk is in, the chunks' SHA-256 Merkle root must equal the file id, and the file moves
///   to the [`FileStorage`] under the request's document. A mismatching root drops the upload.
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
/// Finishing an upload currently reads its chunks into memory to move them (the storage
/// traits take whole files); downloads stream.
///
/// ```
/// use std::sync::Arc;
///
/// use teleportal_server::Server;
/// use teleportal_server::rpc::FileRpc;
/// use teleportal_storage::{DocumentStore, MemoryStorage};
///
/// let storage = Arc::new(MemoryStorage::new());
/// let server = Server::new(DocumentStore::new(storage.clone()))
///     .with_rpc(FileRpc::new(storage.clone(), storage).with_max_size(64 << 20));
/// // Serve connections with `teleportal_server::serve`, or mount `teleportal-axum`.
/// # drop(server);
/// ```
#[derive(Debug)]
pub struct FileRpc<F, U> {
    files: Arc<F>,
    uploads: Arc<U>,
    chunk_size: u32,
    max_size: u64,
}

impl<F: FileStorage, U: TemporaryUploadStorage> FileRpc<F, U> {
    /// Finished files in `files`, uploads in progress in `uploads`.
    pub fn new(files: F, uploads: U) -> Self {
        FileRpc {
            files: Arc::new(files),
            uploads: Arc::new(uploads),
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
        self.uploads.put_chunk(&id, index, chunk.chunk_data).await?;
        let now_complete = !progress.received.contains(&index)
            && progress.received.len() + 1 == meta.chunk_count as usize;
        if now_complete {
            self.finish(&id).await?;
        }
        Ok(())
    }

    /// Moves a complete upload into file storage if its chunks hash to its id.
    async fn finish(&self, id: &FileId) -> Result<(), RpcError> {
        let (metadata, chunks) = match self.uploads.take(id).await {
            Ok(taken) => taken,
            // Not complete after all (a concurrent retransmission): the last part finishes it.
            Err(StorageError::InvalidRequest { .. } | StorageError::NotFound { .. }) => {
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let root = MerkleTree::from_chunks(&Sha256Hasher, &chunks).map(|tree| tree.root());
        if root != Some(*id.as_bytes()) {
            return Err(RpcError::bad_request(
                "upload rejected: the chunks do not hash to the file id",
            ));
        }
        self.files.put_file(metadata, chunks).await?;
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
        // Proofs need the whole tree: one pass over the chunks for their hashes (32 bytes
        // each), then the chunks again as the parts go out.
        let mut leaves = Vec::with_capacity(metadata.chunk_count as usize);
        for index in 0..metadata.chunk_count {
            let chunk = self.files.chunk(&id, index).await?;
            leaves.push(teleportal_core::merkle::MerkleHasher::leaf(
                &Sha256Hasher,
                &chunk,
            ));
        }
        let tree = MerkleTree::from_leaves(&Sha256Hasher, leaves)
            .ok_or_else(|| RpcError::internal("stored file has no chunks"))?;
        if tree.root() != *id.as_bytes() {
            return Err(RpcError::internal("stored file does not match its id"));
        }
        let files = Arc::clone(&self.files);
        let tree = Arc::new(tree);
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
