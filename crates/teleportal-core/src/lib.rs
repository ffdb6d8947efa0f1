//! The Teleportal wire protocol: bytes in, values out. No async runtime.
//!
//! Byte-exact with the reference TypeScript implementation (npm `teleportal` 0.0.7) and with
//! the standard y-protocols that `y-websocket` clients speak. Every decoder is total: any byte
//! string gives a value or a [`DecodeError`], never a panic, and no allocation is sized by a
//! length the input merely declares. Decoding from [`bytes::Bytes`] is zero-copy: payloads
//! are slices of the input.
//!
//! ```
//! use bytes::Bytes;
//! use teleportal_core::{Body, DocMessage, Frame, Message, MessageId, Update};
//!
//! // What a client sends after an edit: a V2 update in a content envelope.
//! let update = Message::doc("my-doc", DocMessage::Update(Update { version: 2, data: Bytes::from_static(&[1, 0, 0, 0]) }));
//! let bytes = update.to_bytes();
//! let Frame::Message(decoded) = Frame::decode(bytes.clone())? else { unreachable!() };
//! assert!(matches!(decoded.body, Body::Doc(DocMessage::Update(_))));
//! let id = MessageId::of(&bytes); // what the ACK will name
//! assert_eq!(id.to_string().len(), 16);
//! # Ok::<(), teleportal_core::DecodeError>(())
//! ```
//!
//! # Why this shape
//! Decoding is a pure function over a bounded cursor ([`lib0::Reader`]); the tokio-util codec
//! ([`codec`]) is a thin adapter over it, so any transport that carries bytes can reuse the
//! same decoder. Messages are plain enums and structs that encode back to the exact bytes the
//! reference produces, because message ids are hashes of those bytes.
//!
//! # Features
//! - `codec` (default): tokio-util `Encoder`/`Decoder` for MessageArray streams.
//! - `json`: the shared test vectors' JSON shape, for debugging tools.
//! - `merkle`: Merkle trees over file chunks.
//! - `crypto`: the client-side content crypto of the Teleportal design.
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

pub mod any;
pub mod attribution;
#[cfg(feature = "codec")]
pub mod codec;
#[cfg(feature = "crypto")]
pub mod crypto;
pub mod envelope;
mod error;
pub mod frame;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "json")]
pub mod json;
pub mod lib0;
#[cfg(feature = "merkle")]
pub mod merkle;
pub mod message;
pub mod message_array;
mod message_id;
pub mod milestone;
pub mod pubsub;
pub mod rpc;
pub mod sidecar;
pub mod storage_format;
pub mod y_protocols;
pub mod yjs;

/// A boxed error from another library (a backend's client, a WebSocket library), kept as the
/// [`source`](std::error::Error::source) of this family's errors; every crate re-exports this
/// one type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

pub use any::Any;
pub use envelope::{Compaction, ContentEnvelope, SidecarRange};
pub use error::{DecodeError, ErrorChain};
pub use frame::Frame;
pub use message::{
    AckMessage, AwarenessMessage, Body, DocMessage, Message, PresenceEntry, PresenceMessage,
    RpcKind, RpcMessage, RpcPayload, Update,
};
pub use message_id::{MessageId, MessageIdHasher};
pub use pubsub::PubSubFrame;
pub use y_protocols::YMessage;
