//! What one WebSocket binary frame holds: an envelope message, or a bare ping/pong.

use bytes::{BufMut, Bytes};

use crate::{DecodeError, Message};

/// The 7-byte heartbeat a client sends.
pub const PING: [u8; 7] = *b"YJSping";
/// The 7-byte answer to [`PING`].
pub const PONG: [u8; 7] = *b"YJSpong";

/// One unit on a Teleportal WebSocket: a message or a heartbeat.
///
/// Heartbeats start with the envelope magic, so they are recognised before the envelope is
/// decoded (spec §10).
///
/// ```
/// use bytes::Bytes;
/// use teleportal_core::Frame;
///
/// assert_eq!(Frame::decode(Bytes::from_static(b"YJSping"))?, Frame::Ping);
/// # Ok::<(), teleportal_core::DecodeError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `YJSping`.
    Ping,
    /// `YJSpong`.
    Pong,
    /// An envelope message.
    Message(Message),
}

impl Frame {
    /// Decodes one frame.
    ///
    /// # Errors
    /// Any malformed input, as a [`DecodeError`].
    pub fn decode(bytes: Bytes) -> Result<Frame, DecodeError> {
        if bytes.as_ref() == PING {
            Ok(Frame::Ping)
        } else if bytes.as_ref() == PONG {
            Ok(Frame::Pong)
        } else {
            Message::decode(bytes).map(Frame::Message)
        }
    }

    /// Appends the encoding to `buf`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        match self {
            Frame::Ping => buf.put_slice(&PING),
            Frame::Pong => buf.put_slice(&PONG),
            Frame::Message(m) => m.encode(buf),
        }
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Frame::Ping => Bytes::from_static(&PING),
            Frame::Pong => Bytes::from_static(&PONG),
            Frame::Message(m) => m.to_bytes(),
        }
    }
}
