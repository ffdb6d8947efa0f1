use bytes::BufMut;

use crate::lib0::{Reader, write_var_bytes, write_var_string, write_var_uint};
use crate::{Any, DecodeError};

/// Whether an RPC message asks, streams a part, or answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcKind {
    /// Request type 0.
    Request,
    /// Request type 1: one part of a streamed request or response.
    Stream {
        /// The id of the request this part belongs to (for file uploads: the file id).
        original_request_id: String,
    },
    /// Request type 2: the answer.
    Response {
        /// The id of the request answered.
        original_request_id: String,
    },
}

/// The outcome carried by an RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum RpcPayload {
    /// Success: a lib0 `Any` value (length-prefixed on the wire).
    Success(Any),
    /// Failure with an HTTP-like status.
    Error {
        /// Status code (400, 403, 404, 500, 501 …).
        status_code: u64,
        /// Human-readable details.
        details: String,
        /// Optional structured detail. `null` and `undefined` are written as no payload, as the
        /// reference writes them.
        payload: Option<Any>,
    },
}

/// An `rpc` message (type 4). Milestones, files, attribution and the key registry are all RPC
/// methods; their payloads are lib0 `Any` values (see [`crate::rpc`] for typed forms).
#[derive(Debug, Clone, PartialEq)]
pub struct RpcMessage {
    /// The method name, e.g. `milestoneGet`.
    pub method: String,
    /// Request, stream part or response.
    pub kind: RpcKind,
    /// Success value or error.
    pub payload: RpcPayload,
}

impl RpcMessage {
    pub(crate) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let method = r.read_var_string("rpc method")?;
        let kind = match r.read_u8("rpc request type")? {
            0 => RpcKind::Request,
            1 => RpcKind::Stream {
                original_request_id: r.read_var_string("original request id")?,
            },
            2 => RpcKind::Response {
                original_request_id: r.read_var_string("original request id")?,
            },
            sub_type => {
                return Err(DecodeError::UnknownSubType {
                    message: "rpc request",
                    sub_type: sub_type.into(),
                });
            }
        };
        // Any non-zero byte means error, as in the reference.
        let payload = if r.read_u8("rpc is-error flag")? == 0 {
            // The Any is read from its own slice so it can never run past its length prefix.
            let bytes = r.read_var_bytes("rpc payload")?;
            RpcPayload::Success(Any::decode(bytes)?)
        } else {
            let status_code = r.read_var_uint("rpc status code")?;
            let details = r.read_var_string("rpc error details")?;
            // The reference encodes a null or undefined payload as "no payload", so they read
            // back as `None`: a decoded message then re-encodes to what it decodes from.
            let payload = if r.read_u8("rpc has-payload flag")? == 1 {
                Some(Any::read(r)?).filter(|p| !matches!(p, Any::Null | Any::Undefined))
            } else {
                None
            };
            RpcPayload::Error {
                status_code,
                details,
                payload,
            }
        };
        Ok(Self {
            method,
            kind,
            payload,
        })
    }

    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        write_var_string(buf, &self.method);
        match &self.kind {
            RpcKind::Request => buf.put_u8(0),
            RpcKind::Stream {
                original_request_id,
            } => {
                buf.put_u8(1);
                write_var_string(buf, original_request_id);
            }
            RpcKind::Response {
                original_request_id,
            } => {
                buf.put_u8(2);
                write_var_string(buf, original_request_id);
            }
        }
        match &self.payload {
            RpcPayload::Success(value) => {
                buf.put_u8(0);
                write_var_bytes(buf, &value.to_bytes());
            }
            RpcPayload::Error {
                status_code,
                details,
                payload,
            } => {
                buf.put_u8(1);
                write_var_uint(buf, *status_code);
                write_var_string(buf, details);
                // The reference writes no payload for undefined and null alike.
                match payload {
                    Some(Any::Undefined | Any::Null) | None => buf.put_u8(0),
                    Some(p) => {
                        buf.put_u8(1);
                        p.encode(buf);
                    }
                }
            }
        }
    }
}
