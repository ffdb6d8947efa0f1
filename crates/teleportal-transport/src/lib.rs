//! Composable `Stream`/`Sink` layers that carry Teleportal messages over any byte transport.
//!
//! This crate will hold WebSocket framing, limits, inspection and metrics taps and rate
//! limits as tower-style layers (see the server and auth issues). MessageArray framing over
//! `AsyncRead`/`AsyncWrite` already exists as [`MessageArrayCodec`].
//!
//! ```
//! use teleportal_transport::MessageArrayCodec;
//! assert_eq!(MessageArrayCodec::with_max_message_size(1024).max_message_size(), 1024);
//! ```
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

pub use teleportal_core::codec::MessageArrayCodec;
