//! axum's `WebSocket` as the `Stream`/`Sink` pairs the server engine drives.
//!
//! One binary WebSocket message carries exactly one value: a Teleportal [`Frame`] (an envelope
//! message, `YJSping` or `YJSpong`) or one y-protocols [`YMessage`]. WebSocket-level pings,
//! pongs and the close handshake are axum's business and never reach the engine.

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures::future::{Ready, ready};
use futures::stream::{SplitSink, SplitStream};
use futures::{Sink, SinkExt, Stream, StreamExt};
use teleportal_core::DecodeError;

/// Why a connection's incoming side failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectionError {
    /// The WebSocket itself failed (reset, protocol violation).
    #[error("websocket failed")]
    Socket(#[source] axum::Error),
    /// A binary message was not a valid frame for this protocol.
    #[error("malformed message")]
    Decode(#[source] DecodeError),
    /// Both protocols are binary-only; a text message is a client bug.
    #[error("text message on a binary protocol")]
    Text,
    /// The client went over its rate limit too often; the close reason says so.
    #[cfg(feature = "auth")]
    #[error(transparent)]
    RateLimited(#[from] teleportal_auth::RateLimitExceeded),
}

/// WebSocket close codes are 16 bits and the reason at most 123 bytes of UTF-8 (RFC 6455 §5.5).
const MAX_CLOSE_REASON: usize = 123;

/// The sending half of a connection, kept by the handler so it can send the close frame
/// after the engine, which took a borrowing adapter over it, is done.
pub(crate) type SocketSink = SplitSink<WebSocket, WsMessage>;

/// Splits `socket` into its sending half and a stream of decoded values.
///
/// The stream is `Unpin` (every adapter future is `Ready`), as the engine requires.
pub(crate) fn split<T, D>(
    socket: WebSocket,
    decode: D,
) -> (
    SocketSink,
    impl Stream<Item = Result<T, ConnectionError>> + Send + Unpin,
)
where
    T: Send + 'static,
    D: Fn(Bytes) -> Result<T, DecodeError> + Send + 'static,
{
    let (sink, stream): (SocketSink, SplitStream<WebSocket>) = socket.split();
    let incoming = stream.filter_map(move |message| ready(incoming_value(message, &decode)));
    (sink, incoming)
}

/// A sink of values over `sink`, one binary message each; it borrows `sink`, so the handler
/// can still close the socket once the engine dropped this adapter.
pub(crate) fn outgoing<T>(
    sink: &mut SocketSink,
    encode: fn(&T) -> Bytes,
) -> impl Sink<T, Error = axum::Error> + Send + Unpin + '_
where
    T: Send + 'static,
{
    sink.with(move |value: T| -> Ready<Result<WsMessage, axum::Error>> {
        ready(Ok(WsMessage::Binary(encode(&value))))
    })
}

fn incoming_value<T>(
    message: Result<WsMessage, axum::Error>,
    decode: &impl Fn(Bytes) -> Result<T, DecodeError>,
) -> Option<Result<T, ConnectionError>> {
    match message {
        Ok(WsMessage::Binary(bytes)) => Some(decode(bytes).map_err(ConnectionError::Decode)),
        Ok(WsMessage::Text(_)) => Some(Err(ConnectionError::Text)),
        // axum answers pings itself; a close frame is followed by the end of the stream.
        Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Close(_)) => None,
        Err(e) => Some(Err(ConnectionError::Socket(e))),
    }
}

/// RFC 6455 "policy violation": the client broke a rule (its rate limit) and should not
/// simply reconnect and repeat.
#[cfg(feature = "auth")]
pub(crate) const POLICY_VIOLATION: u16 = 1008;

/// A close frame with `code` and `reason` (cut to what a close frame carries).
pub(crate) fn close_frame_with(code: u16, reason: &str) -> WsMessage {
    WsMessage::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(truncate_utf8(reason, MAX_CLOSE_REASON)),
    }))
}

/// A `Stream` and a `Sink` as one transport, for layers that read and answer on one value
/// (rate limiting answers refused messages itself).
#[cfg(feature = "auth")]
#[derive(Debug)]
pub(crate) struct Joined<S, K> {
    pub(crate) stream: S,
    pub(crate) sink: K,
}

#[cfg(feature = "auth")]
impl<S: Stream + Unpin, K: Unpin> Stream for Joined<S, K> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<S::Item>> {
        std::pin::Pin::new(&mut self.stream).poll_next(cx)
    }
}

#[cfg(feature = "auth")]
impl<S: Unpin, K: Sink<T> + Unpin, T> Sink<T> for Joined<S, K> {
    type Error = K::Error;

    fn poll_ready(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), K::Error>> {
        std::pin::Pin::new(&mut self.sink).poll_ready(cx)
    }

    fn start_send(mut self: std::pin::Pin<&mut Self>, item: T) -> Result<(), K::Error> {
        std::pin::Pin::new(&mut self.sink).start_send(item)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), K::Error>> {
        std::pin::Pin::new(&mut self.sink).poll_flush(cx)
    }

    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), K::Error>> {
        std::pin::Pin::new(&mut self.sink).poll_close(cx)
    }
}

/// The longest prefix of `s` within `max` bytes that ends on a character boundary.
fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use teleportal_core::Frame;

    fn decode(message: WsMessage) -> Option<Result<Frame, ConnectionError>> {
        incoming_value(Ok(message), &Frame::decode)
    }

    #[test]
    fn binary_message_decodes_to_one_frame() {
        let ping = decode(WsMessage::Binary(Bytes::from_static(b"YJSping")));
        assert!(matches!(ping, Some(Ok(Frame::Ping))));
    }

    #[test]
    fn binary_message_that_is_no_frame_is_a_decode_error() {
        let garbage = decode(WsMessage::Binary(Bytes::from_static(b"hello")));
        assert!(matches!(garbage, Some(Err(ConnectionError::Decode(_)))));
    }

    #[test]
    fn text_message_is_an_error() {
        let text = decode(WsMessage::Text(Utf8Bytes::from_static("YJSping")));
        assert!(matches!(text, Some(Err(ConnectionError::Text))));
    }

    #[test]
    fn websocket_control_messages_never_reach_the_engine() {
        assert!(decode(WsMessage::Ping(Bytes::new())).is_none());
        assert!(decode(WsMessage::Pong(Bytes::new())).is_none());
        assert!(decode(WsMessage::Close(None)).is_none());
    }

    #[test]
    fn close_frame_says_going_away_with_the_reason() {
        let reason = teleportal_server::CloseReason::ShuttingDown;
        let WsMessage::Close(Some(close)) = close_frame_with(reason.code(), &reason.to_string())
        else {
            panic!("not a close frame");
        };
        assert_eq!(close.code, 1001);
        assert_eq!(close.reason.as_str(), "server is shutting down");
    }

    #[test]
    fn close_reason_is_cut_on_a_character_boundary() {
        let reason = "é".repeat(100);
        let cut = truncate_utf8(&reason, 123);
        assert_eq!(cut.len(), 122);
        assert!(cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn short_close_reason_is_kept_whole() {
        assert_eq!(
            truncate_utf8("server shutting down", 123),
            "server shutting down"
        );
    }
}
