//! tokio-util [`Encoder`]/[`Decoder`] for MessageArray framing over byte streams.
//!
//! Each frame is `varUint8Array(encoded message)`, the MessageArray element (spec §17.1), so a
//! stream of frames is a MessageArray that never ends. The declared length is checked against
//! [`MessageArrayCodec::max_message_size`] before anything is buffered, and a decoded message's
//! payloads are slices of the read buffer, not copies.
//!
//! ```
//! use bytes::BytesMut;
//! use tokio_util::codec::{Decoder, Encoder};
//! use teleportal_core::{DocMessage, Message, codec::MessageArrayCodec};
//!
//! let mut codec = MessageArrayCodec::new();
//! let mut buf = BytesMut::new();
//! codec.encode(Message::doc("d", DocMessage::SyncDone), &mut buf)?;
//! let partial = buf.split_to(3);
//! let mut rx = BytesMut::from(&partial[..]);
//! assert_eq!(codec.decode(&mut rx)?, None); // incomplete: nothing consumed
//! rx.extend_from_slice(&buf);
//! assert_eq!(codec.decode(&mut rx)?, Some(Message::doc("d", DocMessage::SyncDone)));
//! # Ok::<(), teleportal_core::codec::CodecError>(())
//! ```

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::lib0::{MAX_VAR_INT_BYTES, var_uint_len, write_var_uint};
use crate::{DecodeError, Message};

/// The default largest message accepted: 16 MiB (a 1 MiB file chunk plus generous room).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// Errors of [`MessageArrayCodec`]: the stream failed, or a frame was bad.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The underlying stream failed.
    #[error("i/o error on the message stream")]
    Io(#[from] std::io::Error),
    /// A frame could not be decoded; the stream should be closed, since framing is lost.
    #[error("bad frame on the message stream")]
    Decode(#[from] DecodeError),
}

/// Frames [`Message`]s as MessageArray elements on a byte stream.
#[derive(Debug, Clone, Copy)]
pub struct MessageArrayCodec {
    max_message_size: usize,
}

impl Default for MessageArrayCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl MessageArrayCodec {
    /// A codec with [`DEFAULT_MAX_MESSAGE_SIZE`].
    pub fn new() -> Self {
        Self::with_max_message_size(DEFAULT_MAX_MESSAGE_SIZE)
    }

    /// A codec rejecting frames whose declared length exceeds `max`.
    pub fn with_max_message_size(max: usize) -> Self {
        Self {
            max_message_size: max,
        }
    }

    /// The largest encoded message accepted.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }
}

/// Reads a varUint from the front of `src` without consuming it: `Ok(None)` when more bytes
/// are needed, else the value and its encoded length.
fn peek_var_uint(src: &[u8]) -> Result<Option<(u64, usize)>, DecodeError> {
    let mut value: u64 = 0;
    for (i, &byte) in src.iter().take(MAX_VAR_INT_BYTES).enumerate() {
        let bits = u64::from(byte & 0x7f);
        let shift = 7 * i;
        if bits != 0 {
            if shift >= 53 {
                return Err(DecodeError::IntegerOverflow {
                    field: "frame length",
                });
            }
            value |= bits << shift;
            if value > crate::lib0::MAX_SAFE_INTEGER {
                return Err(DecodeError::IntegerOverflow {
                    field: "frame length",
                });
            }
        }
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    Ok(None)
}

impl Decoder for MessageArrayCodec {
    type Item = Message;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, CodecError> {
        let Some((len, header)) = peek_var_uint(src)? else {
            // The length prefix has not ended yet. It cannot be longer than lib0 allows, so a
            // peer sending endless continuation bytes is cut off instead of buffered forever.
            if src.len() >= MAX_VAR_INT_BYTES {
                return Err(DecodeError::IntegerOverflow {
                    field: "frame length",
                }
                .into());
            }
            return Ok(None);
        };
        if len > self.max_message_size as u64 {
            return Err(DecodeError::MessageTooLarge {
                size: len,
                max: self.max_message_size,
            }
            .into());
        }
        // len ≤ max_message_size, a usize.
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let Some(total) = header.checked_add(len) else {
            return Ok(None);
        };
        if src.len() < total {
            // No reservation for the declared length: memory follows bytes actually received.
            return Ok(None);
        }
        src.advance(header);
        let frame = src.split_to(len).freeze();
        Ok(Some(Message::decode(frame)?))
    }
}

impl Encoder<Message> for MessageArrayCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode(&item, dst)
    }
}

impl Encoder<&Message> for MessageArrayCodec {
    type Error = CodecError;

    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        let bytes = item.to_bytes();
        if bytes.len() > self.max_message_size {
            return Err(DecodeError::MessageTooLarge {
                size: bytes.len() as u64,
                max: self.max_message_size,
            }
            .into());
        }
        dst.reserve(var_uint_len(bytes.len() as u64) + bytes.len());
        write_var_uint(dst, bytes.len() as u64);
        dst.extend_from_slice(&bytes);
        Ok(())
    }
}
