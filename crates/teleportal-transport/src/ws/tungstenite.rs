//! [`WsMessage`] for tokio-tungstenite (feature `tungstenite`).

use bytes::Bytes;
use tokio_tungstenite::tungstenite::{Error, Message};

use super::{WsKind, WsMessage};
use crate::TransportError;

impl WsMessage for Message {
    fn from_binary(payload: Bytes) -> Self {
        Message::Binary(payload)
    }

    fn into_kind(self) -> WsKind {
        match self {
            Message::Binary(b) => WsKind::Binary(b),
            Message::Text(t) => WsKind::Text(t.len()),
            Message::Close(_) => WsKind::Close,
            // Raw frames only appear when writing; pings are answered by tungstenite.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => WsKind::Control,
        }
    }

    fn payload_len(&self) -> usize {
        self.len()
    }
}

impl From<Error> for TransportError {
    fn from(err: Error) -> Self {
        TransportError::WebSocket {
            source: Box::new(err),
        }
    }
}
