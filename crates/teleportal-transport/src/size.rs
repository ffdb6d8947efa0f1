//! How many bytes a message occupies on the wire.

use bytes::Bytes;
use teleportal_core::{Frame, Message, YMessage};

use crate::ws::WsMessage;

/// The encoded size of a value as the peer sent (or will receive) it.
///
/// Used by [`MaxMessageSize`](crate::MaxMessageSize) and [`Metered`](crate::Metered). For raw
/// WebSocket messages and [`Bytes`] the size is known for free; decoded [`Frame`]s,
/// [`Message`]s and [`YMessage`]s are encoded again to measure them, so place size-aware
/// layers below the decoder where the cost matters.
pub trait EncodedLen {
    /// The encoded size in bytes.
    fn encoded_len(&self) -> usize;
}

impl EncodedLen for Bytes {
    fn encoded_len(&self) -> usize {
        self.len()
    }
}

impl EncodedLen for Frame {
    fn encoded_len(&self) -> usize {
        match self {
            Frame::Ping => teleportal_core::frame::PING.len(),
            Frame::Pong => teleportal_core::frame::PONG.len(),
            Frame::Message(m) => m.encoded_len(),
        }
    }
}

impl EncodedLen for Message {
    fn encoded_len(&self) -> usize {
        self.to_bytes().len()
    }
}

impl EncodedLen for YMessage {
    fn encoded_len(&self) -> usize {
        self.to_bytes().len()
    }
}

/// A WebSocket message counts its payload: the bytes a binary frame carries.
impl<W: WsMessage> EncodedLen for W {
    fn encoded_len(&self) -> usize {
        self.payload_len()
    }
}
