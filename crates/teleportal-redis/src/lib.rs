//! Redis pub/sub between Teleportal server nodes.
//!
//! [`RedisPubSub`] implements [`teleportal_pubsub::PubSub`] over Redis `PUBLISH`/`SUBSCRIBE`.
//! Frames travel as the spec's pub/sub frame (§17.2, [`PubSubFrame`]) on the channel
//! `<prefix><topic>` (prefix `teleportal:` by default).
//!
//! ```no_run
//! use bytes::Bytes;
//! use futures::StreamExt;
//! use teleportal_pubsub::{NodePubSub, document_topic};
//! use teleportal_redis::RedisPubSub;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), teleportal_pubsub::PubSubError> {
//!     let bus = RedisPubSub::connect("redis://127.0.0.1:6379").await?;
//!     let node = NodePubSub::new("node-a", bus);
//!     let mut frames = node.subscribe(&document_topic("room/notes")).await?;
//!     node.publish(&document_topic("room/notes"), Bytes::from_static(b"YJS...")).await?;
//!     // Frames from other nodes; this node's own are filtered out by NodePubSub.
//!     while let Some(frame) = frames.next().await {
//!         println!("{:?}", frame?.source_id);
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # Why this shape
//! One RESP3 connection, kept by redis's `ConnectionManager`, carries both the publishes and
//! every subscription: RESP3 lets a subscribed connection run other commands, so a node needs
//! one socket to Redis however many documents it has open. Each topic is `SUBSCRIBE`d once per
//! [`RedisPubSub`] and fanned out locally to its subscriptions, so a hundred sessions on one
//! document cost Redis one subscription. The manager reconnects after Redis restarts and
//! re-issues the `SUBSCRIBE`s; see [`RedisPubSub`] for what subscribers see meanwhile.
//!
//! [`PubSubFrame`]: teleportal_pubsub::PubSubFrame
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

mod config;
mod error;
mod pubsub;

pub use config::RedisPubSubConfig;
pub use pubsub::RedisPubSub;
