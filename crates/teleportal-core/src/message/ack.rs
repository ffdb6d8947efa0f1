use bytes::BufMut;

use crate::lib0::{Reader, write_var_string, write_var_uint};
use crate::{DecodeError, MessageId};

const RETRY_AFTER: u8 = 0b01;
const ERROR: u8 = 0b10;

/// An `ack` (type 2): confirms, or with `retry_after`/`error` refuses, another message.
///
/// ```
/// use teleportal_core::{AckMessage, MessageId};
///
/// let ack = AckMessage::positive(MessageId::of(b"some message"));
/// assert!(ack.is_positive());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckMessage {
    /// The id of the acknowledged message (16 lowercase hex characters, spec §9).
    pub message_id: String,
    /// Rate limited: retransmit after this many milliseconds.
    pub retry_after: Option<u64>,
    /// Permanent failure: do not retransmit.
    pub error: Option<String>,
}

impl AckMessage {
    /// A positive acknowledgement of `id`.
    pub fn positive(id: MessageId) -> Self {
        Self {
            message_id: id.to_string(),
            retry_after: None,
            error: None,
        }
    }

    /// A refusal of `id` with a permanent error.
    pub fn error(id: MessageId, error: impl Into<String>) -> Self {
        Self {
            message_id: id.to_string(),
            retry_after: None,
            error: Some(error.into()),
        }
    }

    /// A refusal of `id` asking to retry after `retry_after_ms`.
    pub fn retry_after(id: MessageId, retry_after_ms: u64) -> Self {
        Self {
            message_id: id.to_string(),
            retry_after: Some(retry_after_ms),
            error: None,
        }
    }

    /// Whether this confirms the message (no retry, no error).
    pub fn is_positive(&self) -> bool {
        self.retry_after.is_none() && self.error.is_none()
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let message_id = r.read_var_string("acked message id")?;
        // Unknown flag bits are ignored, as in the reference.
        let flags = r.read_u8("ack flags")?;
        let retry_after = if flags & RETRY_AFTER != 0 {
            Some(r.read_var_uint("retry after")?)
        } else {
            None
        };
        let error = if flags & ERROR != 0 {
            Some(r.read_var_string("ack error")?)
        } else {
            None
        };
        Ok(Self {
            message_id,
            retry_after,
            error,
        })
    }

    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        write_var_string(buf, &self.message_id);
        let mut flags = 0;
        if self.retry_after.is_some() {
            flags |= RETRY_AFTER;
        }
        if self.error.is_some() {
            flags |= ERROR;
        }
        buf.put_u8(flags);
        if let Some(ms) = self.retry_after {
            write_var_uint(buf, ms);
        }
        if let Some(e) = &self.error {
            write_var_string(buf, e);
        }
    }
}
