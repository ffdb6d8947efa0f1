//! [`WsMessage`] for axum's WebSocket extractor (feature `axum`).

use axum::extract::ws::Message;
use bytes::Bytes;

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
            // axum answers pings itself.
            Message::Ping(_) | Message::Pong(_) => WsKind::Control,
        }
    }

    fn payload_len(&self) -> usize {
        match self {
            Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b.len(),
            Message::Text(t) => t.len(),
            Message::Close(c) => c.as_ref().map_or(0, |c| c.reason.len()),
        }
    }
}

impl From<axum::Error> for TransportError {
    fn from(err: axum::Error) -> Self {
        TransportError::WebSocket {
            source: Box::new(err),
        }
    }
}
