use bytes::{BufMut, Bytes};

use crate::DecodeError;
use crate::lib0::{Reader, write_var_bytes};

/// `awareness` message bodies (type 1).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AwarenessMessage {
    /// Sub-type 0: a y-protocols awareness update (or, when the envelope is encrypted, one
    /// AES-GCM blob of it). The server relays it without looking inside.
    Update(Bytes),
    /// Sub-type 1: asks peers to send their current awareness states.
    Request,
}

impl AwarenessMessage {
    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(match r.read_u8("awareness sub-type")? {
            0 => AwarenessMessage::Update(r.read_var_bytes("awareness update")?),
            1 => AwarenessMessage::Request,
            sub_type => {
                return Err(DecodeError::UnknownSubType {
                    message: "awareness",
                    sub_type: sub_type.into(),
                });
            }
        })
    }

    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        match self {
            AwarenessMessage::Update(u) => {
                buf.put_u8(0);
                write_var_bytes(buf, u);
            }
            AwarenessMessage::Request => buf.put_u8(1),
        }
    }
}
