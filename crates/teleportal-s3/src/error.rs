//! The adapter's own failures, mapped into [`StorageError`] with backend `"s3"`.

use teleportal_storage::StorageError;

/// The backend name every [`StorageError::Backend`] of this crate carries.
pub(crate) const BACKEND: &str = "s3";

/// What went wrong talking to the object store. Private: callers see it as the `source` of
/// [`StorageError::Backend`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum S3Error {
    #[error("invalid S3 configuration: {reason}")]
    Config { reason: String },
    #[error("building the S3 client failed")]
    Build(#[source] object_store::Error),
    #[error("{operation} {path} failed")]
    Request {
        operation: &'static str,
        path: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{operation} on document {doc} gave up after {attempts} conflicting attempts")]
    Contended {
        operation: &'static str,
        doc: String,
        attempts: u32,
    },
}

impl S3Error {
    /// A failed request on `path`.
    pub(crate) fn request(
        operation: &'static str,
        path: &object_store::path::Path,
        source: object_store::Error,
    ) -> Self {
        S3Error::Request {
            operation,
            path: path.to_string(),
            source,
        }
    }
}

impl From<S3Error> for StorageError {
    fn from(error: S3Error) -> Self {
        StorageError::backend(BACKEND, error)
    }
}

/// A record of ours that does not parse: someone else wrote the key, or a newer version did.
pub(crate) fn corrupt(reason: &'static str, source: serde_json::Error) -> StorageError {
    StorageError::Corrupt {
        reason,
        source: Some(Box::new(source)),
    }
}
