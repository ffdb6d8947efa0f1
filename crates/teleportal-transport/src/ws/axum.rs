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

#[cfg(test)]
mod tests {
    use axum::extract::ws::{CloseFrame, Message};
    use bytes::Bytes;

    use crate::ws::{WsKind, WsMessage};

    #[test]
    fn binary_messages_carry_their_payload() {
        let msg = Message::from_binary(Bytes::from_static(b"YJSping"));
        assert_eq!(msg.payload_len(), 7);
        assert_eq!(
            msg.into_kind(),
            WsKind::Binary(Bytes::from_static(b"YJSping"))
        );
    }

    #[test]
    fn text_ping_and_close_are_classified() {
        assert_eq!(Message::text("abc").into_kind(), WsKind::Text(3));
        assert_eq!(Message::Ping(Bytes::new()).into_kind(), WsKind::Control);
        assert_eq!(Message::Pong(Bytes::new()).into_kind(), WsKind::Control);
        let close = Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "bye".into(),
        }));
        assert_eq!(close.payload_len(), 3);
        assert_eq!(close.into_kind(), WsKind::Close);
    }
}
