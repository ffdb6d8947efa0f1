//! Composable `Stream`/`Sink` layers that carry Teleportal messages over any transport.
//!
//! A connection is a value that is both a [`Stream`](futures::Stream) of
//! `Result<Item, TransportError>` and a [`Sink<Item>`](futures::Sink). Each layer wraps one and
//! is one again, so they nest in any order:
//!
//! - [`ws::WsFramed`] ([`ws::FrameStream`], [`ws::YMessageStream`]): one message per binary
//!   WebSocket frame (spec §2, §21) over any WebSocket library through [`ws::WsMessage`];
//! - [`MessageArrayTransport`]: MessageArray framing (spec §17.1) over any
//!   `AsyncRead + AsyncWrite`;
//! - [`MaxMessageSize`]: rejects incoming messages above a size, with the NACK text of §7;
//! - [`Inspect`]: shows every message in and out to a callback;
//! - [`Metered`]: counts messages, bytes and errors into shared [`TransportMetrics`];
//! - [`Duplex`]: a reading and a writing half as one transport.
//!
//! ```
//! use futures::{SinkExt, StreamExt, channel::mpsc};
//! use teleportal_core::{DocMessage, Frame, Message};
//! use teleportal_transport::ws::{FrameStream, WsKind, WsMessage};
//! use teleportal_transport::{
//!     InspectLayer, Inspection, Layer, MaxMessageSizeLayer, MeteredLayer, TransportError,
//!     TransportMetrics,
//! };
//!
//! // Stands in for a WebSocket library's message (axum and tungstenite are built in).
//! #[derive(Debug)]
//! struct WsMsg(bytes::Bytes);
//! impl WsMessage for WsMsg {
//!     fn from_binary(payload: bytes::Bytes) -> Self { WsMsg(payload) }
//!     fn into_kind(self) -> WsKind { WsKind::Binary(self.0) }
//!     fn payload_len(&self) -> usize { self.0.len() }
//! }
//!
//! # futures::executor::block_on(async {
//! let (tx, rx) = mpsc::unbounded::<WsMsg>();
//! let socket = rx.map(Ok::<_, TransportError>);
//!
//! // Sizes are checked on the raw payload, before decoding; metrics and the tap see frames.
//! let metrics = TransportMetrics::new();
//! let limited = MaxMessageSizeLayer::new(1024).layer(socket);
//! let frames: FrameStream<_, WsMsg> = FrameStream::new(limited);
//! let metered = MeteredLayer::new(metrics.clone()).layer(frames);
//! let mut conn = InspectLayer::new("client-1", |seen: &Inspection<'_, Frame>| {
//!     println!("{:?} {}: {:?}", seen.direction, seen.client_id, seen.message);
//! })
//! .layer(metered);
//!
//! let mut peer: FrameStream<_, WsMsg> = FrameStream::new(tx);
//! peer.send(Frame::Message(Message::doc("d", DocMessage::SyncDone))).await?;
//! let got = conn.next().await.transpose()?;
//! assert_eq!(got, Some(Frame::Message(Message::doc("d", DocMessage::SyncDone))));
//! assert_eq!(metrics.snapshot().messages_in, 1);
//! # Ok::<(), TransportError>(()) }).unwrap();
//! ```
//!
//! # Why this shape
//! Servers run on axum, bare tungstenite, HTTP bodies or in-process channels; the engine should
//! see one kind of connection whatever carries it. Stream and Sink are that kind, and tower's
//! [`Layer`] (re-exported from `tower-layer`) is the familiar way to wrap them, so limits and taps are
//! written once. Every layer forwards `poll_ready`, so a slow peer slows the sender
//! (backpressure) instead of filling a buffer, and every layer yields the one
//! [`TransportError`], so they stack without error conversions.
//!
//! # Features
//! - `axum`: [`ws::WsMessage`] for `axum::extract::ws::Message` (axum 0.8, its `ws` feature).
//! - `tungstenite`: [`ws::WsMessage`] for `tokio_tungstenite::tungstenite::Message` (0.29).
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

mod duplex;
mod error;
mod inspect;
mod limit;
mod message_array;
mod metrics;
mod size;
pub mod ws;

pub use duplex::Duplex;
pub use error::{BoxError, TransportError};
pub use inspect::{Direction, Inspect, InspectLayer, Inspection};
pub use limit::{MaxMessageSize, MaxMessageSizeLayer};
pub use message_array::MessageArrayTransport;
pub use metrics::{Metered, MeteredLayer, MetricsSnapshot, TransportMetrics};
pub use size::EncodedLen;
pub use teleportal_core::codec::MessageArrayCodec;
pub use tower_layer::Layer;
