//! File protocol payloads (spec §11.5, flow in §12). File ids are the standard base64 of the
//! file's Merkle root (44 characters).
//!
//! Denials and missing files are **success-typed** responses with `allowed: false`, not RPC
//! errors, so both response types are enums with one variant per shape the reference writes.

use bytes::Bytes;

use super::{
    FILE_DOWNLOAD, FILE_UPLOAD, Obj, ObjBuilder, Res, RpcPayloadError, array, boolean, bytes,
    number, string, typed_payload, uint, uint_any,
};
use crate::Any;

/// `fileUpload` request: `{method, fileId, filename, size, mimeType, lastModified, encrypted,
/// chunkSize}`; `chunkSize` is omitted when `None` (clients from before chunk-size
/// negotiation).
#[derive(Debug, Clone, PartialEq)]
pub struct FileUploadRequest {
    /// `fileId`: base64 Merkle root of the on-wire chunks.
    pub file_id: String,
    /// `filename`.
    pub filename: String,
    /// `size` in bytes.
    pub size: u64,
    /// `mimeType`.
    pub mime_type: String,
    /// `lastModified` (ms).
    pub last_modified: f64,
    /// `encrypted`.
    pub encrypted: bool,
    /// `chunkSize`: the wire chunk size the client chunked with.
    pub chunk_size: Option<u64>,
}

impl FileUploadRequest {
    /// The request object.
    pub fn to_any(&self) -> Any {
        ObjBuilder::request(FILE_UPLOAD)
            .put("fileId", self.file_id.as_str())
            .put("filename", self.filename.as_str())
            .put("size", uint_any(self.size))
            .put("mimeType", self.mime_type.as_str())
            .put("lastModified", self.last_modified)
            .put("encrypted", self.encrypted)
            .put_if_some("chunkSize", self.chunk_size.map(uint_any))
            .build()
    }

    /// Reads the request.
    ///
    /// # Errors
    /// A missing or mistyped field, or a wrong `method`.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::new(value)?;
        obj.check_method(FILE_UPLOAD)?;
        Ok(Self {
            file_id: obj.req("fileId", string)?,
            filename: obj.req("filename", string)?,
            size: obj.req("size", uint)?,
            mime_type: obj.req("mimeType", string)?,
            last_modified: obj.req("lastModified", number)?,
            encrypted: obj.req("encrypted", boolean)?,
            chunk_size: obj.opt("chunkSize", uint)?,
        })
    }
}

/// `fileUpload` response (§12.4), one variant per shape the reference server writes.
///
/// ```
/// use teleportal_core::rpc::FileUploadResponse;
/// use teleportal_core::Any;
///
/// // A fresh session: `existingChunks` is written as undefined.
/// let start = FileUploadResponse::Accepted {
///     file_id: "ECRr5K122OmmnlM2a+Dit+9xsXKSh/rX0CJVwuQ+UjE=".into(),
///     existing_chunks: None,
///     chunk_size: Some(1_048_576),
/// };
/// let any = start.to_any();
/// assert_eq!(any.get("allowed"), Some(&Any::Bool(true)));
/// assert_eq!(any.as_object().map(|o| o[2].clone()), Some(("existingChunks".into(), Any::Undefined)));
/// assert_eq!(FileUploadResponse::from_any(&any)?, start);
/// assert!(start.allowed());
/// # Ok::<(), teleportal_core::rpc::RpcPayloadError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileUploadResponse {
    /// `{fileId, allowed: false, reason, statusCode}`; `reason` is always written
    /// (`undefined` when `None`).
    Denied {
        /// `fileId`.
        file_id: String,
        /// `reason`.
        reason: Option<String>,
        /// `statusCode`: 403 from the reference (and when a peer omits it).
        status_code: u64,
    },
    /// `{fileId, allowed: true, chunkSize, chunkSizeMismatch: true}`: re-chunk with the
    /// server's size and retry once.
    ChunkSizeMismatch {
        /// `fileId`.
        file_id: String,
        /// `chunkSize`: the server's wire chunk size.
        chunk_size: u64,
    },
    /// `{fileId, allowed: true, alreadyExists: true, chunkSize}`: a dedup hit, nothing to send.
    AlreadyExists {
        /// `fileId`.
        file_id: String,
        /// `chunkSize`.
        chunk_size: u64,
    },
    /// `{fileId, allowed: true, existingChunks, chunkSize}`: a new or resumed session.
    /// `existingChunks` is always written (`undefined` when `None`; the reference sends
    /// `undefined` rather than `[]`); `chunkSize` is omitted when `None` (servers from before
    /// chunk-size negotiation).
    Accepted {
        /// `fileId`.
        file_id: String,
        /// `existingChunks`: indexes of chunks already stored.
        existing_chunks: Option<Vec<u64>>,
        /// `chunkSize`.
        chunk_size: Option<u64>,
    },
}

impl FileUploadResponse {
    /// The file id the response is about.
    pub fn file_id(&self) -> &str {
        match self {
            FileUploadResponse::Denied { file_id, .. }
            | FileUploadResponse::ChunkSizeMismatch { file_id, .. }
            | FileUploadResponse::AlreadyExists { file_id, .. }
            | FileUploadResponse::Accepted { file_id, .. } => file_id,
        }
    }

    /// The `allowed` key.
    pub fn allowed(&self) -> bool {
        !matches!(self, FileUploadResponse::Denied { .. })
    }

    /// The response object, keys in the order of its shape.
    pub fn to_any(&self) -> Any {
        let start = |file_id: &str, allowed: bool| {
            ObjBuilder::new()
                .put("fileId", file_id)
                .put("allowed", allowed)
        };
        match self {
            FileUploadResponse::Denied {
                file_id,
                reason,
                status_code,
            } => start(file_id, false)
                .put_or_undefined("reason", reason.as_deref())
                .put("statusCode", uint_any(*status_code)),
            FileUploadResponse::ChunkSizeMismatch {
                file_id,
                chunk_size,
            } => start(file_id, true)
                .put("chunkSize", uint_any(*chunk_size))
                .put("chunkSizeMismatch", true),
            FileUploadResponse::AlreadyExists {
                file_id,
                chunk_size,
            } => start(file_id, true)
                .put("alreadyExists", true)
                .put("chunkSize", uint_any(*chunk_size)),
            FileUploadResponse::Accepted {
                file_id,
                existing_chunks,
                chunk_size,
            } => start(file_id, true)
                .put_or_undefined(
                    "existingChunks",
                    existing_chunks
                        .as_ref()
                        .map(|c| c.iter().copied().map(uint_any).collect::<Vec<_>>()),
                )
                .put_if_some("chunkSize", chunk_size.map(uint_any)),
        }
        .build()
    }

    /// Reads the response: `allowed: false` is a denial; otherwise `chunkSizeMismatch: true`
    /// and `alreadyExists: true` pick their shapes and anything else is a session.
    ///
    /// # Errors
    /// A missing or mistyped field.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::new(value)?;
        let file_id = obj.req("fileId", string)?;
        if !obj.req("allowed", boolean)? {
            return Ok(FileUploadResponse::Denied {
                file_id,
                reason: obj.opt("reason", string)?,
                status_code: obj.opt("statusCode", uint)?.unwrap_or(403),
            });
        }
        if obj.opt("chunkSizeMismatch", boolean)? == Some(true) {
            return Ok(FileUploadResponse::ChunkSizeMismatch {
                file_id,
                chunk_size: obj.req("chunkSize", uint)?,
            });
        }
        if obj.opt("alreadyExists", boolean)? == Some(true) {
            return Ok(FileUploadResponse::AlreadyExists {
                file_id,
                chunk_size: obj.req("chunkSize", uint)?,
            });
        }
        Ok(FileUploadResponse::Accepted {
            file_id,
            existing_chunks: obj.opt("existingChunks", uints)?,
            chunk_size: obj.opt("chunkSize", uint)?,
        })
    }
}

fn uints(v: &Any, field: &'static str) -> Res<Vec<u64>> {
    array(v, field)?.iter().map(|n| uint(n, field)).collect()
}

/// `fileDownload` request: `{method, fileId}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDownloadRequest {
    /// `fileId`.
    pub file_id: String,
}

impl FileDownloadRequest {
    /// `{method, fileId}`.
    pub fn to_any(&self) -> Any {
        ObjBuilder::request(FILE_DOWNLOAD)
            .put("fileId", self.file_id.as_str())
            .build()
    }

    /// Reads the request.
    ///
    /// # Errors
    /// `fileId` missing or mistyped, or a wrong `method`.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::new(value)?;
        obj.check_method(FILE_DOWNLOAD)?;
        Ok(Self {
            file_id: obj.req("fileId", string)?,
        })
    }
}

/// `fileDownload` response, sent after the stream parts (§12.5).
///
/// ```
/// use teleportal_core::rpc::FileDownloadResponse;
///
/// let missing = FileDownloadResponse::Denied {
///     file_id: "veBMwZB86U0uEc8/mzUJun7iQsr1QTLQEBa4gyzmapg=".into(),
///     reason: Some("File not found".into()),
///     status_code: 404,
/// };
/// // The reference fills the metadata keys with empty values in a denial.
/// let any = missing.to_any();
/// assert_eq!(any.get("filename").and_then(|v| v.as_str()), Some(""));
/// assert_eq!(FileDownloadResponse::from_any(&any)?, missing);
/// # Ok::<(), teleportal_core::rpc::RpcPayloadError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum FileDownloadResponse {
    /// `{fileId, allowed: true, filename, size, mimeType, lastModified, encrypted,
    /// totalChunks}`; `totalChunks` is always written (`undefined` when `None`).
    Allowed {
        /// `fileId`.
        file_id: String,
        /// `filename`.
        filename: String,
        /// `size` in bytes.
        size: u64,
        /// `mimeType`.
        mime_type: String,
        /// `lastModified` (ms).
        last_modified: f64,
        /// `encrypted`.
        encrypted: bool,
        /// `totalChunks`.
        total_chunks: Option<u64>,
    },
    /// `{fileId, filename: "", size: 0, mimeType: "", lastModified: 0, encrypted: false,
    /// allowed: false, reason, statusCode}`; `reason` is always written. Both a permission
    /// denial and a missing file use 404 (§19.14).
    Denied {
        /// `fileId`.
        file_id: String,
        /// `reason`.
        reason: Option<String>,
        /// `statusCode`: 404 from the reference (and when a peer omits it).
        status_code: u64,
    },
}

impl FileDownloadResponse {
    /// The file id the response is about.
    pub fn file_id(&self) -> &str {
        match self {
            FileDownloadResponse::Allowed { file_id, .. }
            | FileDownloadResponse::Denied { file_id, .. } => file_id,
        }
    }

    /// The response object, keys in the order of its shape.
    pub fn to_any(&self) -> Any {
        match self {
            FileDownloadResponse::Allowed {
                file_id,
                filename,
                size,
                mime_type,
                last_modified,
                encrypted,
                total_chunks,
            } => ObjBuilder::new()
                .put("fileId", file_id.as_str())
                .put("allowed", true)
                .put("filename", filename.as_str())
                .put("size", uint_any(*size))
                .put("mimeType", mime_type.as_str())
                .put("lastModified", *last_modified)
                .put("encrypted", *encrypted)
                .put_or_undefined("totalChunks", total_chunks.map(uint_any)),
            FileDownloadResponse::Denied {
                file_id,
                reason,
                status_code,
            } => ObjBuilder::new()
                .put("fileId", file_id.as_str())
                .put("filename", "")
                .put("size", 0.0)
                .put("mimeType", "")
                .put("lastModified", 0.0)
                .put("encrypted", false)
                .put("allowed", false)
                .put_or_undefined("reason", reason.as_deref())
                .put("statusCode", uint_any(*status_code)),
        }
        .build()
    }

    /// Reads the response; `allowed: false` is a denial (its metadata keys are ignored).
    ///
    /// # Errors
    /// A missing or mistyped field.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::new(value)?;
        let file_id = obj.req("fileId", string)?;
        if !obj.req("allowed", boolean)? {
            return Ok(FileDownloadResponse::Denied {
                file_id,
                reason: obj.opt("reason", string)?,
                status_code: obj.opt("statusCode", uint)?.unwrap_or(404),
            });
        }
        Ok(FileDownloadResponse::Allowed {
            file_id,
            filename: obj.req("filename", string)?,
            size: obj.req("size", uint)?,
            mime_type: obj.req("mimeType", string)?,
            last_modified: obj.req("lastModified", number)?,
            encrypted: obj.req("encrypted", boolean)?,
            total_chunks: obj.opt("totalChunks", uint)?,
        })
    }
}

/// One chunk of a file, as a `stream` message of `fileUpload` (client to server, with
/// `merkleProof: []` and `bytesUploaded: 0`) or `fileDownload` (server to client, with a
/// proof and the cumulative byte count): `{fileId, chunkIndex, chunkData, merkleProof,
/// totalChunks, bytesUploaded, encrypted}`.
///
/// ```
/// use bytes::Bytes;
/// use teleportal_core::rpc::FilePartStream;
///
/// let part = FilePartStream {
///     file_id: "ECRr5K122OmmnlM2a+Dit+9xsXKSh/rX0CJVwuQ+UjE=".into(),
///     chunk_index: 0,
///     chunk_data: Bytes::from_static(b"hello teleportal file"),
///     merkle_proof: vec![],
///     total_chunks: 1,
///     bytes_uploaded: 0,
///     encrypted: false,
/// };
/// assert_eq!(FilePartStream::from_any(&part.to_any())?, part);
/// # Ok::<(), teleportal_core::rpc::RpcPayloadError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePartStream {
    /// `fileId`.
    pub file_id: String,
    /// `chunkIndex`.
    pub chunk_index: u64,
    /// `chunkData`: the on-wire chunk (ciphertext for encrypted files).
    pub chunk_data: Bytes,
    /// `merkleProof`: sibling hashes bottom-up (§12.3); empty on upload.
    pub merkle_proof: Vec<Bytes>,
    /// `totalChunks`.
    pub total_chunks: u64,
    /// `bytesUploaded`.
    pub bytes_uploaded: u64,
    /// `encrypted`.
    pub encrypted: bool,
}

impl FilePartStream {
    /// The part object.
    pub fn to_any(&self) -> Any {
        let proof = self
            .merkle_proof
            .iter()
            .cloned()
            .map(Any::Bytes)
            .collect::<Vec<_>>();
        ObjBuilder::new()
            .put("fileId", self.file_id.as_str())
            .put("chunkIndex", uint_any(self.chunk_index))
            .put("chunkData", self.chunk_data.clone())
            .put("merkleProof", proof)
            .put("totalChunks", uint_any(self.total_chunks))
            .put("bytesUploaded", uint_any(self.bytes_uploaded))
            .put("encrypted", self.encrypted)
            .build()
    }

    /// Reads a part.
    ///
    /// # Errors
    /// A missing or mistyped field.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::new(value)?;
        Ok(Self {
            file_id: obj.req("fileId", string)?,
            chunk_index: obj.req("chunkIndex", uint)?,
            chunk_data: obj.req("chunkData", bytes)?,
            merkle_proof: obj.req("merkleProof", |v, f| {
                array(v, f)?.iter().map(|h| bytes(h, f)).collect()
            })?,
            total_chunks: obj.req("totalChunks", uint)?,
            bytes_uploaded: obj.req("bytesUploaded", uint)?,
            encrypted: obj.req("encrypted", boolean)?,
        })
    }
}

typed_payload!(
    FileUploadRequest,
    FileUploadResponse,
    FileDownloadRequest,
    FileDownloadResponse,
    FilePartStream,
);

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "veBMwZB86U0uEc8/mzUJun7iQsr1QTLQEBa4gyzmapg=";

    #[test]
    fn allowed_download_writes_total_chunks_last() {
        let r = FileDownloadResponse::Allowed {
            file_id: ID.into(),
            filename: "a.txt".into(),
            size: 22,
            mime_type: "text/plain".into(),
            last_modified: 1_700_000_000_000.0,
            encrypted: false,
            total_chunks: Some(3),
        };
        let any = r.to_any();
        let keys: Vec<_> = any
            .as_object()
            .unwrap_or_default()
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "fileId",
                "allowed",
                "filename",
                "size",
                "mimeType",
                "lastModified",
                "encrypted",
                "totalChunks"
            ]
        );
        assert_eq!(FileDownloadResponse::from_any(&any), Ok(r));
    }

    #[test]
    fn download_request_round_trips() {
        let r = FileDownloadRequest { file_id: ID.into() };
        assert_eq!(
            r.to_any(),
            Any::object([
                ("method", Any::from("fileDownload")),
                ("fileId", Any::from(ID))
            ])
        );
        assert_eq!(FileDownloadRequest::from_any(&r.to_any()), Ok(r));
    }

    #[test]
    fn resumed_session_lists_existing_chunks() {
        let r = FileUploadResponse::Accepted {
            file_id: ID.into(),
            existing_chunks: Some(vec![0, 2]),
            chunk_size: Some(4),
        };
        assert_eq!(FileUploadResponse::from_any(&r.to_any()), Ok(r));
    }

    #[test]
    fn denial_without_status_code_reads_as_the_reference_status() {
        let any = Any::object([("fileId", Any::from(ID)), ("allowed", Any::from(false))]);
        assert_eq!(
            FileUploadResponse::from_any(&any),
            Ok(FileUploadResponse::Denied {
                file_id: ID.into(),
                reason: None,
                status_code: 403
            })
        );
    }

    #[test]
    fn negative_chunk_index_is_rejected() {
        let mut any = FilePartStream {
            file_id: ID.into(),
            chunk_index: 0,
            chunk_data: Bytes::new(),
            merkle_proof: vec![],
            total_chunks: 1,
            bytes_uploaded: 0,
            encrypted: false,
        }
        .to_any();
        if let Any::Object(pairs) = &mut any {
            pairs[1].1 = Any::Number(-1.0);
        }
        assert_eq!(
            FilePartStream::from_any(&any),
            Err(RpcPayloadError::Invalid {
                field: "chunkIndex",
                expected: "a non-negative integer below 2^53"
            })
        );
    }

    #[test]
    fn upload_request_without_chunk_size_omits_the_key() {
        let r = FileUploadRequest {
            file_id: ID.into(),
            filename: "f".into(),
            size: 1,
            mime_type: "application/octet-stream".into(),
            last_modified: 0.0,
            encrypted: true,
            chunk_size: None,
        };
        assert_eq!(r.to_any().get("chunkSize"), None);
        assert_eq!(r.to_any().as_object().map(<[_]>::len), Some(7));
        assert_eq!(FileUploadRequest::from_any(&r.to_any()), Ok(r));
    }
}
