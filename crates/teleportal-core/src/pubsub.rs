//! The pub/sub frame between server nodes (spec §17.2): `varString sourceId` + the raw
//! encoded message to the end.

use bytes::{BufMut, Bytes};

use crate::DecodeError;
use crate::lib0::{Reader, write_var_string};

/// A message published by one node to the others. The source id lets a node drop its own
/// messages when they come back.
///
/// ```
/// use bytes::Bytes;
/// use teleportal_core::PubSubFrame;
///
/// let frame = PubSubFrame { source_id: "node-1".into(), message: Bytes::from_static(b"YJS...") };
/// assert_eq!(PubSubFrame::decode(frame.to_bytes())?, frame);
/// # Ok::<(), teleportal_core::DecodeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubSubFrame {
    /// The publishing node.
    pub source_id: String,
    /// The encoded message (not decoded here: nodes forward it as is).
    pub message: Bytes,
}

impl PubSubFrame {
    /// Decodes a frame; the message is a slice of `bytes`.
    ///
    /// # Errors
    /// A malformed source id.
    pub fn decode(bytes: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let source_id = r.read_var_string("pub/sub source id")?;
        Ok(Self {
            source_id,
            message: r.read_rest(),
        })
    }

    /// Appends the encoding to `buf`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        write_var_string(buf, &self.source_id);
        buf.put_slice(&self.message);
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = Vec::with_capacity(self.source_id.len() + self.message.len() + 2);
        self.encode(&mut buf);
        Bytes::from(buf)
    }
}
