//! Fanout of messages between Teleportal server nodes.
//!
//! This crate will hold the `PubSub` trait, an in-memory implementation and its conformance
//! suite (see the server issue). Frames between nodes are [`PubSubFrame`]s: the publishing
//! node's id and the raw message, so a node can drop its own messages when they come back.
//!
//! ```
//! use bytes::Bytes;
//! use teleportal_pubsub::PubSubFrame;
//!
//! let frame = PubSubFrame { source_id: "node-a".into(), message: Bytes::from_static(b"YJSping") };
//! assert_eq!(PubSubFrame::decode(frame.to_bytes()).unwrap(), frame);
//! ```
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

pub use teleportal_core::PubSubFrame;
