use bytes::BufMut;

use crate::lib0::{Reader, write_var_string, write_var_uint};
use crate::{Any, DecodeError};

/// One client in a presence roster.
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceEntry {
    /// The Yjs awareness client id.
    pub awareness_id: u64,
    /// The connection's client id.
    pub client_id: String,
    /// The authenticated user.
    pub user_id: String,
    /// Application data; always an object on the wire.
    pub data: Vec<(String, Any)>,
}

/// `presence` message bodies (type 3).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PresenceMessage {
    /// Sub-type 0 (client): announces the client's awareness id.
    Announce {
        /// The Yjs awareness client id.
        awareness_id: u64,
    },
    /// Sub-type 1 (server): a client joined.
    Join(PresenceEntry),
    /// Sub-type 2 (server): a client left.
    Leave(PresenceEntry),
    /// Sub-type 3 (between nodes): a node's local roster.
    Heartbeat(Vec<PresenceEntry>),
    /// Sub-type 4 (client): withdraws an announcement.
    Unannounce {
        /// The Yjs awareness client id.
        awareness_id: u64,
    },
}

impl PresenceMessage {
    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(match r.read_u8("presence sub-type")? {
            0 => PresenceMessage::Announce {
                awareness_id: r.read_var_uint("awareness id")?,
            },
            1 => PresenceMessage::Join(read_entry(r)?),
            2 => PresenceMessage::Leave(read_entry(r)?),
            3 => {
                let n = r.read_var_uint("presence client count")?;
                let mut entries = Vec::new();
                for _ in 0..n {
                    entries.push(read_entry(r)?);
                }
                PresenceMessage::Heartbeat(entries)
            }
            4 => PresenceMessage::Unannounce {
                awareness_id: r.read_var_uint("awareness id")?,
            },
            sub_type => {
                return Err(DecodeError::UnknownSubType {
                    message: "presence",
                    sub_type: sub_type.into(),
                });
            }
        })
    }

    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        match self {
            PresenceMessage::Announce { awareness_id } => {
                buf.put_u8(0);
                write_var_uint(buf, *awareness_id);
            }
            PresenceMessage::Join(e) => {
                buf.put_u8(1);
                write_entry(buf, e);
            }
            PresenceMessage::Leave(e) => {
                buf.put_u8(2);
                write_entry(buf, e);
            }
            PresenceMessage::Heartbeat(entries) => {
                buf.put_u8(3);
                write_var_uint(buf, entries.len() as u64);
                for e in entries {
                    write_entry(buf, e);
                }
            }
            PresenceMessage::Unannounce { awareness_id } => {
                buf.put_u8(4);
                write_var_uint(buf, *awareness_id);
            }
        }
    }
}

fn read_entry(r: &mut Reader) -> Result<PresenceEntry, DecodeError> {
    let awareness_id = r.read_var_uint("awareness id")?;
    let client_id = r.read_var_string("client id")?;
    let user_id = r.read_var_string("user id")?;
    let data = match Any::read(r)? {
        Any::Object(pairs) => pairs,
        _ => return Err(DecodeError::PresenceDataNotObject),
    };
    Ok(PresenceEntry {
        awareness_id,
        client_id,
        user_id,
        data,
    })
}

fn write_entry(buf: &mut impl BufMut, e: &PresenceEntry) {
    write_var_uint(buf, e.awareness_id);
    write_var_string(buf, &e.client_id);
    write_var_string(buf, &e.user_id);
    // Same bytes as Any::Object without cloning the pairs.
    buf.put_u8(118);
    write_var_uint(buf, e.data.len() as u64);
    for (k, v) in &e.data {
        write_var_string(buf, k);
        v.encode(buf);
    }
}
