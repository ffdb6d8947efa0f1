//! WebSocket binary framing: one message per binary frame (spec §2, §21).
//!
//! [`WsMessage`] abstracts a WebSocket library's message type; [`WsFramed`] turns a stream of
//! such messages into decoded [`Frame`]s or [`YMessage`]s and a sink of them into binary
//! messages. The library keeps the handshake, masking and control frames.
//!
//! Reading, [`WsFramed`]:
//! - a binary message decodes as one unit ([`WsPayload::decode_binary`]); a decode error is an
//!   error item, after which the spec closes the connection;
//! - a text message is a [`TransportError::TextFrame`];
//! - WebSocket ping and pong are skipped: the libraries answer pings themselves;
//! - a close message ends the stream.
//!
//! Teleportal's own heartbeat (`YJSping`, spec §10) travels inside a binary frame and comes
//! out as [`Frame::Ping`]; answering it with [`Frame::Pong`] is the caller's job, since a
//! reader must not write behind the caller's back.

#[cfg(feature = "axum")]
mod axum;
#[cfg(feature = "tungstenite")]
mod tungstenite;

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::{Sink, Stream};
use pin_project_lite::pin_project;
use teleportal_core::{DecodeError, Frame, YMessage};

use crate::TransportError;

/// What a WebSocket message is, as far as binary framing cares.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsKind {
    /// A binary message and its payload.
    Binary(Bytes),
    /// A text message of this many bytes.
    Text(usize),
    /// A ping, a pong or another control frame the library handles itself.
    Control,
    /// The peer is closing the connection.
    Close,
}

/// A WebSocket library's message type.
///
/// Implemented for `axum::extract::ws::Message` (feature `axum`) and
/// `tokio_tungstenite::tungstenite::Message` (feature `tungstenite`).
///
/// # Contract
/// `from_binary(b).into_kind() == WsKind::Binary(b)`, and `payload_len` is the length of the
/// payload `into_kind` would return (the text length for text messages).
pub trait WsMessage: Sized {
    /// A binary message carrying `payload`.
    fn from_binary(payload: Bytes) -> Self;
    /// What the message is, consuming it.
    fn into_kind(self) -> WsKind;
    /// The payload length in bytes.
    fn payload_len(&self) -> usize;
}

/// A value carried as one binary WebSocket frame.
///
/// Implemented for [`Frame`] (Teleportal clients) and [`YMessage`] (`y-websocket` clients).
pub trait WsPayload: Sized {
    /// Decodes one frame's payload.
    ///
    /// # Errors
    /// Malformed bytes, as a [`DecodeError`].
    fn decode_binary(payload: Bytes) -> Result<Self, DecodeError>;
    /// The payload of the frame that carries `self`.
    fn to_binary(&self) -> Bytes;
}

impl WsPayload for Frame {
    fn decode_binary(payload: Bytes) -> Result<Self, DecodeError> {
        Frame::decode(payload)
    }
    fn to_binary(&self) -> Bytes {
        self.to_bytes()
    }
}

impl WsPayload for YMessage {
    fn decode_binary(payload: Bytes) -> Result<Self, DecodeError> {
        YMessage::decode(payload)
    }
    fn to_binary(&self) -> Bytes {
        self.to_bytes()
    }
}

pin_project! {
    /// A WebSocket carrying one `T` per binary frame.
    ///
    /// `S` is the WebSocket (or a half of it) with messages of type `W`. As a [`Stream`] it
    /// yields `Result<T, TransportError>` when `S` yields `Result<W, E>`; as a [`Sink<T>`] it
    /// sends binary messages to `S: Sink<W>`. Both need `E: Into<TransportError>`.
    ///
    /// ```
    /// use futures::{SinkExt, StreamExt, channel::mpsc};
    /// use teleportal_core::Frame;
    /// use teleportal_transport::{TransportError, ws::{FrameStream, WsMessage, WsKind}};
    /// # use bytes::Bytes;
    /// # #[derive(Debug)] struct Msg(Bytes);
    /// # impl WsMessage for Msg {
    /// #     fn from_binary(b: Bytes) -> Self { Msg(b) }
    /// #     fn into_kind(self) -> WsKind { WsKind::Binary(self.0) }
    /// #     fn payload_len(&self) -> usize { self.0.len() }
    /// # }
    /// # futures::executor::block_on(async {
    /// // Any `Sink<W>` works, here a channel of a library's message type `Msg`.
    /// let (tx, mut rx) = mpsc::unbounded::<Msg>();
    /// let mut out: FrameStream<_, Msg> = FrameStream::new(tx);
    /// out.send(Frame::Ping).await?;
    /// let mut back: FrameStream<_, Msg> =
    ///     FrameStream::new(rx.by_ref().map(Ok::<_, TransportError>));
    /// assert_eq!(back.next().await.transpose()?, Some(Frame::Ping));
    /// # Ok::<(), TransportError>(()) }).unwrap();
    /// ```
    pub struct WsFramed<S, W, T = Frame> {
        #[pin]
        inner: S,
        done: bool,
        _marker: PhantomData<fn(W) -> T>,
    }
}

/// Teleportal [`Frame`]s over a WebSocket.
pub type FrameStream<S, W> = WsFramed<S, W, Frame>;
/// y-protocols [`YMessage`]s over a WebSocket (what `y-websocket` clients speak).
pub type YMessageStream<S, W> = WsFramed<S, W, YMessage>;

impl<S, W, T> WsFramed<S, W, T> {
    /// Wraps a WebSocket (or one half of it).
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            done: false,
            _marker: PhantomData,
        }
    }

    /// The wrapped WebSocket.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped WebSocket, mutably; reading or writing through it bypasses the framing.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped WebSocket, pinned.
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Pin<&mut S> {
        self.project().inner
    }

    /// Unwraps the WebSocket.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug, W, T> fmt::Debug for WsFramed<S, W, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsFramed")
            .field("inner", &self.inner)
            .field("done", &self.done)
            .finish()
    }
}

impl<S, W, E, T> Stream for WsFramed<S, W, T>
where
    S: Stream<Item = Result<W, E>>,
    E: Into<TransportError>,
    W: WsMessage,
    T: WsPayload,
{
    type Item = Result<T, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        // After a close message the peer sends nothing more: stay ended even if the library
        // would go on yielding.
        if *this.done {
            return Poll::Ready(None);
        }
        loop {
            let msg = match ready!(this.inner.as_mut().poll_next(cx)) {
                None => {
                    *this.done = true;
                    return Poll::Ready(None);
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                Some(Ok(msg)) => msg,
            };
            return Poll::Ready(Some(match msg.into_kind() {
                WsKind::Binary(payload) => T::decode_binary(payload).map_err(Into::into),
                WsKind::Text(len) => Err(TransportError::TextFrame { len }),
                WsKind::Control => continue,
                WsKind::Close => {
                    *this.done = true;
                    return Poll::Ready(None);
                }
            }));
        }
    }
}

impl<S, W, T> Sink<T> for WsFramed<S, W, T>
where
    S: Sink<W>,
    S::Error: Into<TransportError>,
    W: WsMessage,
    T: WsPayload,
{
    type Error = TransportError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.project().inner.poll_ready(cx).map_err(Into::into)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Self::Error> {
        self.project()
            .inner
            .start_send(W::from_binary(item.to_binary()))
            .map_err(Into::into)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.project().inner.poll_flush(cx).map_err(Into::into)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.project().inner.poll_close(cx).map_err(Into::into)
    }
}
