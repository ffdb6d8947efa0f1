//! The Teleportal envelope (spec §3) and its five message types.
//!
//! ```text
//! "YJS" 01 | varString document | u8 encrypted | u8 type | body
//! ```
//!
//! Decoding follows the reference's rules exactly where they are permissive (the encrypted flag
//! is true only for 1, trailing bytes after a complete message are ignored) and is strict where
//! it is strict (magic, version, types, sub-types). It is stricter than the reference in one
//! place: a single-byte field that is missing at the end of the input is an error, where the
//! reference silently reads it as 0 (spec §19.12).
//!
//! ```
//! use teleportal_core::{DocMessage, Message};
//!
//! let msg = Message::doc("my-doc", DocMessage::SyncDone);
//! let bytes = msg.to_bytes();
//! assert_eq!(hex::encode(&bytes), "594a5301066d792d646f63000003");
//! assert_eq!(Message::decode(bytes.clone())?, msg);
//! assert_eq!(teleportal_core::MessageId::of(&bytes).to_string(), "83bbe232e47c36c0");
//! # Ok::<(), teleportal_core::DecodeError>(())
//! ```

mod ack;
mod awareness;
mod doc;
mod presence;
mod rpc;

pub use ack::AckMessage;
pub use awareness::AwarenessMessage;
pub use doc::{DocMessage, Update};
pub use presence::{PresenceEntry, PresenceMessage};
pub use rpc::{RpcKind, RpcMessage, RpcPayload};

use bytes::{BufMut, Bytes};

use crate::lib0::{Reader, write_var_string};
use crate::{DecodeError, MessageId};

/// The three bytes every envelope (and ping/pong) starts with.
pub const MAGIC: [u8; 3] = *b"YJS";
/// The envelope's wire version.
pub const WIRE_VERSION: u8 = 1;

/// One envelope message: a document name, the encrypted flag and a typed body.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The client-visible document name (`""` for acks).
    pub document: String,
    /// Whether the payload is end-to-end encrypted (the flag changes no framing).
    pub encrypted: bool,
    /// What the message says.
    pub body: Body,
}

/// The body of an envelope message, by message type.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Body {
    /// Type 0: document sync.
    Doc(DocMessage),
    /// Type 1: awareness.
    Awareness(AwarenessMessage),
    /// Type 2: acknowledgement of another message.
    Ack(AckMessage),
    /// Type 3: presence.
    Presence(PresenceMessage),
    /// Type 4: remote procedure call.
    Rpc(RpcMessage),
}

impl Body {
    /// The type byte on the wire.
    pub fn message_type(&self) -> u8 {
        match self {
            Body::Doc(_) => 0,
            Body::Awareness(_) => 1,
            Body::Ack(_) => 2,
            Body::Presence(_) => 3,
            Body::Rpc(_) => 4,
        }
    }
}

impl Message {
    /// An unencrypted `doc` message.
    pub fn doc(document: impl Into<String>, msg: DocMessage) -> Self {
        Self::new(document, false, Body::Doc(msg))
    }

    /// An unencrypted `awareness` message.
    pub fn awareness(document: impl Into<String>, msg: AwarenessMessage) -> Self {
        Self::new(document, false, Body::Awareness(msg))
    }

    /// An `ack` (document `""`, not encrypted, as the reference always sends them).
    pub fn ack(ack: AckMessage) -> Self {
        Self::new("", false, Body::Ack(ack))
    }

    /// A `presence` message (never encrypted).
    pub fn presence(document: impl Into<String>, msg: PresenceMessage) -> Self {
        Self::new(document, false, Body::Presence(msg))
    }

    /// An unencrypted `rpc` message.
    pub fn rpc(document: impl Into<String>, msg: RpcMessage) -> Self {
        Self::new(document, false, Body::Rpc(msg))
    }

    /// A message with every field given.
    pub fn new(document: impl Into<String>, encrypted: bool, body: Body) -> Self {
        Self {
            document: document.into(),
            encrypted,
            body,
        }
    }

    /// Decodes one envelope from the front of `bytes`; trailing bytes are ignored, as the
    /// reference ignores them. Payloads are slices of `bytes`, not copies.
    ///
    /// # Errors
    /// Any malformed input, as a [`DecodeError`]; never panics.
    pub fn decode(bytes: Bytes) -> Result<Message, DecodeError> {
        let mut r = Reader::new(bytes);
        Self::read(&mut r)
    }

    /// Reads one envelope from `r`.
    ///
    /// # Errors
    /// Any malformed input, as a [`DecodeError`].
    pub fn read(r: &mut Reader) -> Result<Message, DecodeError> {
        let magic = r
            .read_array::<3>("magic")
            .map_err(|_| DecodeError::BadMagic)?;
        if magic != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let version = r.read_u8("version")?;
        if version != WIRE_VERSION {
            return Err(DecodeError::UnsupportedVersion { version });
        }
        let document = r.read_var_string("document name")?;
        // Only 1 means encrypted; the reference reads any other byte as false.
        let encrypted = r.read_u8("encrypted flag")? == 1;
        let body = match r.read_u8("message type")? {
            0 => Body::Doc(DocMessage::read(r)?),
            1 => Body::Awareness(AwarenessMessage::read(r)?),
            2 => Body::Ack(AckMessage::read(r)?),
            3 => Body::Presence(PresenceMessage::read(r)?),
            4 => Body::Rpc(RpcMessage::read(r)?),
            message_type => return Err(DecodeError::UnknownMessageType { message_type }),
        };
        Ok(Message {
            document,
            encrypted,
            body,
        })
    }

    /// Appends the encoding to `buf`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_slice(&MAGIC);
        buf.put_u8(WIRE_VERSION);
        write_var_string(buf, &self.document);
        buf.put_u8(u8::from(self.encrypted));
        buf.put_u8(self.body.message_type());
        match &self.body {
            Body::Doc(m) => m.encode(buf),
            Body::Awareness(m) => m.encode(buf),
            Body::Ack(m) => m.encode(buf),
            Body::Presence(m) => m.encode(buf),
            Body::Rpc(m) => m.encode(buf),
        }
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = Vec::with_capacity(64);
        self.encode(&mut buf);
        Bytes::from(buf)
    }

    /// The id of this message's canonical encoding (spec §9). For a received message, prefer
    /// [`MessageId::of`] over the received bytes: a non-canonical encoding has another id.
    pub fn id(&self) -> MessageId {
        MessageId::of(&self.to_bytes())
    }
}
