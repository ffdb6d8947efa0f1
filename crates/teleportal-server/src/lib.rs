//! The engine that drives Teleportal sessions.
//!
//! This crate will hold the server: one session per open document, created on demand and
//! dropped when idle; sync as the protocol describes; ACKs only after storage reports an update
//! durable; permission hooks; pub/sub fanout; and y-websocket compatibility (see the server
//! issue). Today it names the wire types a server speaks.
//!
//! ```
//! use teleportal_server::Frame;
//! assert_eq!(Frame::decode(bytes::Bytes::from_static(b"YJSping")).unwrap(), Frame::Ping);
//! ```
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

pub use teleportal_core::{Frame, Message, YMessage};
