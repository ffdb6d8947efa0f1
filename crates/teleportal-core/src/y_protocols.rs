//! The standard y-protocols framing (spec §21) that unmodified `y-websocket` clients speak.
//!
//! One WebSocket binary frame holds one message; all integers are lib0 varUints. Updates here
//! are Yjs **V1**, unlike Teleportal's V2 content envelopes.
//!
//! ```
//! use bytes::Bytes;
//! use teleportal_core::y_protocols::{SyncMessage, YMessage};
//!
//! let msg = YMessage::Sync(SyncMessage::Step1(Bytes::from_static(&[0])));
//! assert_eq!(&msg.to_bytes()[..], &[0, 0, 1, 0]);
//! assert_eq!(YMessage::decode(msg.to_bytes())?, msg);
//! # Ok::<(), teleportal_core::DecodeError>(())
//! ```

use bytes::{BufMut, Bytes};

use crate::DecodeError;
use crate::lib0::{Reader, write_var_bytes, write_var_string, write_var_uint};

/// A y-protocols sync message (message type 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncMessage {
    /// Sync type 0: the sender's state vector.
    Step1(Bytes),
    /// Sync type 1: a V1 update with what the receiver is missing.
    Step2(Bytes),
    /// Sync type 2: an incremental V1 update.
    Update(Bytes),
}

/// A y-protocols auth message (message type 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMessage {
    /// Auth type 0.
    PermissionDenied {
        /// Why.
        reason: String,
    },
    /// Any other auth type; y-protocols reads nothing after it.
    Other(u64),
}

/// One y-protocols message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum YMessage {
    /// Message type 0.
    Sync(SyncMessage),
    /// Message type 1: an awareness update (validated: see [`AwarenessUpdate`]).
    Awareness(Bytes),
    /// Message type 2.
    Auth(AuthMessage),
    /// Message type 3: asks for every known awareness state.
    QueryAwareness,
}

impl YMessage {
    /// Decodes one message; trailing bytes are ignored, as y-protocols ignores them.
    /// Awareness updates are checked down to their JSON states, since y-protocols fails on
    /// them while applying.
    ///
    /// # Errors
    /// Empty input, an unknown message or sync type, a bad length, or awareness state that is
    /// not JSON.
    pub fn decode(bytes: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        Ok(match r.read_var_uint("y-protocols message type")? {
            0 => YMessage::Sync(match r.read_var_uint("y-protocols sync type")? {
                0 => SyncMessage::Step1(r.read_var_bytes("state vector")?),
                1 => SyncMessage::Step2(r.read_var_bytes("update")?),
                2 => SyncMessage::Update(r.read_var_bytes("update")?),
                sub_type => {
                    return Err(DecodeError::UnknownSubType {
                        message: "y-protocols sync",
                        sub_type,
                    });
                }
            }),
            1 => {
                let update = r.read_var_bytes("awareness update")?;
                AwarenessUpdate::decode(update.clone())?;
                YMessage::Awareness(update)
            }
            2 => YMessage::Auth(match r.read_var_uint("auth type")? {
                0 => AuthMessage::PermissionDenied {
                    reason: r.read_var_string("auth reason")?,
                },
                other => AuthMessage::Other(other),
            }),
            3 => YMessage::QueryAwareness,
            sub_type => {
                return Err(DecodeError::UnknownSubType {
                    message: "y-protocols",
                    sub_type,
                });
            }
        })
    }

    /// Appends the encoding to `buf`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        match self {
            YMessage::Sync(sync) => {
                write_var_uint(buf, 0);
                let (t, data) = match sync {
                    SyncMessage::Step1(d) => (0, d),
                    SyncMessage::Step2(d) => (1, d),
                    SyncMessage::Update(d) => (2, d),
                };
                write_var_uint(buf, t);
                write_var_bytes(buf, data);
            }
            YMessage::Awareness(update) => {
                write_var_uint(buf, 1);
                write_var_bytes(buf, update);
            }
            YMessage::Auth(AuthMessage::PermissionDenied { reason }) => {
                write_var_uint(buf, 2);
                write_var_uint(buf, 0);
                write_var_string(buf, reason);
            }
            YMessage::Auth(AuthMessage::Other(t)) => {
                write_var_uint(buf, 2);
                write_var_uint(buf, *t);
            }
            YMessage::QueryAwareness => write_var_uint(buf, 3),
        }
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = Vec::new();
        self.encode(&mut buf);
        Bytes::from(buf)
    }
}

/// One client's entry in an awareness update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwarenessEntry {
    /// The Yjs client id.
    pub client_id: u64,
    /// Increases with every change of this client's state.
    pub clock: u64,
    /// The state as JSON text; `"null"` means the client is gone.
    pub state: String,
}

/// A y-protocols awareness update: `varUint n`, then n × (client id, clock, JSON state).
///
/// ```
/// use teleportal_core::y_protocols::{AwarenessEntry, AwarenessUpdate};
///
/// let update = AwarenessUpdate { entries: vec![AwarenessEntry { client_id: 7, clock: 1, state: "null".into() }] };
/// assert_eq!(AwarenessUpdate::decode(update.to_bytes())?, update);
/// # Ok::<(), teleportal_core::DecodeError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwarenessUpdate {
    /// The entries in wire order.
    pub entries: Vec<AwarenessEntry>,
}

impl AwarenessUpdate {
    /// Decodes an update, checking that every state is JSON.
    ///
    /// # Errors
    /// A malformed field or a state that is not JSON.
    pub fn decode(bytes: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let n = r.read_var_uint("awareness entry count")?;
        let mut entries = Vec::new();
        for _ in 0..n {
            let client_id = r.read_var_uint("awareness client id")?;
            let clock = r.read_var_uint("awareness clock")?;
            let state = r.read_var_string("awareness state")?;
            if serde_json::from_str::<serde::de::IgnoredAny>(&state).is_err() {
                return Err(DecodeError::InvalidJson {
                    field: "awareness state",
                });
            }
            entries.push(AwarenessEntry {
                client_id,
                clock,
                state,
            });
        }
        Ok(Self { entries })
    }

    /// Appends the encoding to `buf`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        write_var_uint(buf, self.entries.len() as u64);
        for e in &self.entries {
            write_var_uint(buf, e.client_id);
            write_var_uint(buf, e.clock);
            write_var_string(buf, &e.state);
        }
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = Vec::new();
        self.encode(&mut buf);
        Bytes::from(buf)
    }
}
