//! The one error type of this crate.

use teleportal_core::DecodeError;
use teleportal_core::codec::CodecError;

/// A boxed error from another library: the family's one [`teleportal_core::BoxError`].
pub use teleportal_core::BoxError;

/// Why a transport could not carry a message.
///
/// Every layer of this crate yields it, so layers stack without converting errors: an inner
/// transport's error only needs `Into<TransportError>`. An error item on a stream does not end
/// the stream; whether to go on (after a [`MessageTooLarge`](Self::MessageTooLarge), say) or
/// close is the caller's choice.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// An incoming message is larger than the configured limit.
    ///
    /// The `Display` text is the NACK error of spec §7, so a server can send it as is.
    #[error("message-too-large: {size} > {max} bytes")]
    MessageTooLarge {
        /// The message's encoded size (or, on a byte stream, its declared length).
        size: u64,
        /// The configured maximum.
        max: usize,
    },
    /// A binary frame did not decode; on a WebSocket the spec closes the connection (§2).
    #[error("undecodable frame")]
    Decode(#[from] DecodeError),
    /// A WebSocket text frame arrived where only binary frames are allowed (spec §2).
    #[error("text WebSocket frame of {len} bytes where only binary frames are allowed")]
    TextFrame {
        /// The text's length in bytes.
        len: usize,
    },
    /// The underlying byte stream failed.
    #[error("i/o error on the transport")]
    Io(#[from] std::io::Error),
    /// The WebSocket library failed.
    #[error("WebSocket transport failed")]
    WebSocket {
        /// The library's error.
        #[source]
        source: BoxError,
    },
    /// The other end of an in-process channel is gone.
    #[error("transport channel closed")]
    Closed,
    /// A layer ends the connection on purpose (a rate limit, a policy): the engine stops
    /// serving it and passes `code` and `reason` on as the close frame (RFC 6455 §7.4).
    #[error("{reason}")]
    Refused {
        /// The WebSocket close code, e.g. 1008 "policy violation".
        code: u16,
        /// Why, for the client.
        reason: String,
    },
}

impl From<CodecError> for TransportError {
    fn from(err: CodecError) -> Self {
        match err {
            CodecError::Io(io) => TransportError::Io(io),
            CodecError::Decode(DecodeError::MessageTooLarge { size, max }) => {
                TransportError::MessageTooLarge { size, max }
            }
            CodecError::Decode(decode) => TransportError::Decode(decode),
            // CodecError is non_exhaustive: keep any future variant with its cause.
            other => TransportError::Io(std::io::Error::other(other)),
        }
    }
}

impl From<futures::channel::mpsc::SendError> for TransportError {
    fn from(_: futures::channel::mpsc::SendError) -> Self {
        TransportError::Closed
    }
}

impl From<std::convert::Infallible> for TransportError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}
