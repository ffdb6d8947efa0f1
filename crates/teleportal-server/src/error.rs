//! The one error type of this crate.

use teleportal_core::DecodeError;
use teleportal_pubsub::PubSubError;
use teleportal_storage::StorageError;

/// A boxed error from another library: the family's one [`teleportal_core::BoxError`].
pub use teleportal_core::BoxError;

/// Why serving a connection, or handling one of its messages, failed.
///
/// Errors about one message (a bad update, a storage failure) are answered to the client as a
/// NACK whose text is this error and its sources; only transport failures end [`serve`](crate::serve)
/// with an `Err`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The incoming stream reported an error (a decode error, a broken socket).
    #[error("the transport failed")]
    Transport(#[source] BoxError),
    /// The outgoing sink refused a frame: the connection is gone.
    #[error("could not send to the client: the transport is closed")]
    Send,
    /// The document store failed.
    #[error("storage failed for document {document}")]
    Storage {
        /// The document.
        document: String,
        /// What the store reported.
        #[source]
        source: StorageError,
    },
    /// The pub/sub bus failed.
    #[error("pub/sub failed for document {document}")]
    PubSub {
        /// The document.
        document: String,
        /// What the bus reported.
        #[source]
        source: PubSubError,
    },
    /// A content envelope (spec §5) did not decode.
    #[error("invalid content envelope for document {document}")]
    InvalidEnvelope {
        /// The document.
        document: String,
        /// What the decoder reported.
        #[source]
        source: DecodeError,
    },
    /// Bytes that should be a Yjs update are not one.
    #[error("invalid Yjs update for document {document}")]
    InvalidUpdate {
        /// The document.
        document: String,
        /// What yrs reported.
        #[source]
        source: BoxError,
    },
    /// A sync-step-1's state vector did not decode.
    #[error("invalid state vector for document {document}")]
    InvalidStateVector {
        /// The document.
        document: String,
        /// What yrs reported.
        #[source]
        source: BoxError,
    },
    /// An unencrypted awareness update did not decode.
    #[error("invalid awareness update for document {document}")]
    InvalidAwareness {
        /// The document.
        document: String,
        /// What the decoder reported.
        #[source]
        source: DecodeError,
    },
}

impl ServerError {
    /// This error and its sources, joined by `": "`: the text of a NACK.
    pub(crate) fn chain(&self) -> String {
        teleportal_core::ErrorChain::new(self).to_string()
    }
}

/// Why [`Server::shutdown`](crate::Server::shutdown) did not end cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShutdownError {
    /// The deadline passed with work still running; the stores were closed anyway.
    #[error(
        "shutdown deadline passed with {connections} connection(s) and {tasks} background \
         task(s) still running"
    )]
    DeadlineExceeded {
        /// Connections that had not ended.
        connections: usize,
        /// Background tasks that had not ended.
        tasks: usize,
    },
    /// A store failed to close.
    #[error("closing the {store} store failed")]
    Close {
        /// Which store: `document`, `milestone`, `file` or `upload`.
        store: &'static str,
        /// What the store reported.
        #[source]
        source: StorageError,
    },
}
