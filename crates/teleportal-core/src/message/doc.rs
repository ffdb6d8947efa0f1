use bytes::{BufMut, Bytes};

use crate::DecodeError;
use crate::lib0::{Reader, write_var_bytes, write_var_string};

/// A Yjs update as carried by sync-step-2 and update messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The update version byte: 1 = Yjs V1, 2 = Yjs V2 (current Teleportal always sends 2 with
    /// a content envelope, see [`crate::ContentEnvelope`]). Not validated, as in the reference.
    pub version: u8,
    /// The update bytes (opaque to the codec).
    pub data: Bytes,
}

/// `doc` message bodies (type 0).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DocMessage {
    /// Sub-type 0: the sender's Yjs state vector.
    SyncStep1 {
        /// The encoded state vector.
        state_vector: Bytes,
    },
    /// Sub-type 1: what the receiver of a sync-step-1 is missing.
    SyncStep2(Update),
    /// Sub-type 2: an incremental update.
    Update(Update),
    /// Sub-type 3: sync finished.
    SyncDone,
    /// Sub-type 4: a permission answer (the server sends it with `allowed: false`).
    Auth {
        /// Permission byte: 0 is denied, anything else allowed.
        allowed: bool,
        /// Human-readable reason.
        reason: String,
    },
}

impl DocMessage {
    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(match r.read_u8("doc sub-type")? {
            0 => DocMessage::SyncStep1 {
                state_vector: r.read_var_bytes("state vector")?,
            },
            1 => DocMessage::SyncStep2(read_update(r)?),
            2 => DocMessage::Update(read_update(r)?),
            3 => DocMessage::SyncDone,
            4 => DocMessage::Auth {
                allowed: r.read_u8("permission")? != 0,
                reason: r.read_var_string("reason")?,
            },
            sub_type => {
                return Err(DecodeError::UnknownSubType {
                    message: "doc",
                    sub_type: sub_type.into(),
                });
            }
        })
    }

    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        match self {
            DocMessage::SyncStep1 { state_vector } => {
                buf.put_u8(0);
                write_var_bytes(buf, state_vector);
            }
            DocMessage::SyncStep2(u) => {
                buf.put_u8(1);
                write_update(buf, u);
            }
            DocMessage::Update(u) => {
                buf.put_u8(2);
                write_update(buf, u);
            }
            DocMessage::SyncDone => buf.put_u8(3),
            DocMessage::Auth { allowed, reason } => {
                buf.put_u8(4);
                buf.put_u8(u8::from(*allowed));
                write_var_string(buf, reason);
            }
        }
    }
}

fn read_update(r: &mut Reader) -> Result<Update, DecodeError> {
    Ok(Update {
        version: r.read_u8("update version")?,
        data: r.read_var_bytes("update")?,
    })
}

fn write_update(buf: &mut impl BufMut, u: &Update) {
    buf.put_u8(u.version);
    write_var_bytes(buf, &u.data);
}
