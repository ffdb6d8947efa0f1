//! MessageArray (spec §17.1): messages batched into one body for HTTP transports.
//!
//! A concatenation of `varUint8Array(encoded message)` with no count; the empty array is zero
//! bytes. Each element must be a complete envelope message.
//!
//! ```
//! use teleportal_core::{DocMessage, Message, message_array};
//!
//! let messages = vec![Message::doc("a", DocMessage::SyncDone), Message::doc("b", DocMessage::SyncDone)];
//! let bytes = message_array::encode(&messages);
//! assert_eq!(message_array::decode(bytes)?, messages);
//! # Ok::<(), teleportal_core::DecodeError>(())
//! ```

use bytes::{BufMut, Bytes};

use crate::lib0::{Reader, write_var_bytes};
use crate::{DecodeError, Message};

/// Encodes `messages` as a MessageArray.
pub fn encode(messages: &[Message]) -> Bytes {
    let mut buf = Vec::new();
    for m in messages {
        encode_one(&mut buf, m);
    }
    Bytes::from(buf)
}

/// Appends one element (length prefix + message) to `buf`.
pub fn encode_one(buf: &mut impl BufMut, message: &Message) {
    write_var_bytes(buf, &message.to_bytes());
}

/// Decodes a whole MessageArray. Each element is decoded from its own slice, so an inner
/// length can never read into the next element (spec §19.13).
///
/// # Errors
/// A malformed length or element.
pub fn decode(bytes: Bytes) -> Result<Vec<Message>, DecodeError> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while !r.is_empty() {
        let element = r.read_var_bytes("message array element")?;
        out.push(Message::decode(element)?);
    }
    Ok(out)
}
