//! The one error type of this crate.

use crate::DocumentId;

/// A boxed error from another library: the family's one [`teleportal_core::BoxError`].
pub use teleportal_core::BoxError;

/// Why a storage operation failed.
///
/// The message describes this layer only; the backend's own error is the
/// [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The document would grow past its hard size limit; nothing was stored.
    #[error("document {doc} would grow to {size} bytes, past its limit of {limit} bytes")]
    DocumentTooLarge {
        /// The document the append was for.
        doc: DocumentId,
        /// The size the document would have had, in stored bytes.
        size: u64,
        /// The configured hard limit.
        limit: u64,
    },
    /// The bytes are not a Yjs update in the store's encoding; nothing was stored.
    #[error("invalid Yjs update for document {doc}")]
    InvalidUpdate {
        /// The document the update was for.
        doc: DocumentId,
        /// What yrs reported.
        #[source]
        source: BoxError,
    },
    /// A stored record could not be read back: corrupt, tampered with, or encrypted under a key
    /// the [`KeyProvider`](crate::encryption::KeyProvider) does not have.
    #[error("stored record is unreadable: {reason}")]
    Corrupt {
        /// What was wrong, for logs.
        reason: &'static str,
        /// The underlying cause, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The named file, milestone or upload does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// What was looked up: `"file"`, `"milestone"`, `"upload"`, `"chunk"`.
        kind: &'static str,
        /// Its id as text.
        id: String,
    },
    /// The request contradicts what is stored (a chunk index out of range, a second upload with
    /// different metadata).
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What was wrong.
        reason: String,
    },
    /// A layer was shut down and takes no more writes.
    #[error("storage is shut down")]
    ShutDown,
    /// The backend failed (I/O, connection, database error). Whether the operation took effect
    /// is unknown unless the operation's docs say otherwise.
    #[error("{backend} backend failed")]
    Backend {
        /// The backend's name: `"sqlite"`, `"postgres"`, ….
        backend: &'static str,
        /// The backend's own error.
        #[source]
        source: BoxError,
    },
}

impl StorageError {
    /// A [`StorageError::Backend`] from any error of a backend's client library.
    pub fn backend(backend: &'static str, source: impl Into<BoxError>) -> Self {
        StorageError::Backend {
            backend,
            source: source.into(),
        }
    }

    /// A [`StorageError::Corrupt`] without an underlying cause.
    pub fn corrupt(reason: &'static str) -> Self {
        StorageError::Corrupt {
            reason,
            source: None,
        }
    }
}
