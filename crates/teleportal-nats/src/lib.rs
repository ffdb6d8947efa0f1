//! NATS pub/sub between Teleportal server nodes.
//!
//! [`NatsPubSub`] implements [`teleportal_pubsub::PubSub`] over core NATS (at most once, like
//! Redis) or over JetStream, where a node that was away replays what it missed. Frames travel
//! as the spec's pub/sub frame (§17.2, [`PubSubFrame`]); topics map to subjects by a
//! reversible encoding ([`topic_subject`]) because topic names hold `/`, `.` and any other
//! character.
//!
//! ```no_run
//! use bytes::Bytes;
//! use futures::StreamExt;
//! use teleportal_nats::NatsPubSub;
//! use teleportal_pubsub::{NodePubSub, document_topic};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), teleportal_pubsub::PubSubError> {
//!     // Core NATS; `NatsPubSub::jetstream(url, "node-a")` replays after restarts instead.
//!     let bus = NatsPubSub::connect("nats://127.0.0.1:4222").await?;
//!     let node = NodePubSub::new("node-a", bus);
//!     let topic = document_topic("room/notes");
//!     let mut frames = node.subscribe(&topic).await?;
//!     node.publish(&topic, Bytes::from_static(b"YJS...")).await?;
//!     // Frames from other nodes; this node's own are filtered out by NodePubSub.
//!     while let Some(frame) = frames.next().await {
//!         println!("{:?}", frame?.source_id);
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # Why this shape
//! Core NATS already multiplexes any number of subscriptions over one connection and
//! resubscribes after reconnecting, so core mode maps one subscription to one NATS
//! subscription and adds only the encoding and the reconnection signal. JetStream mode adds
//! what core NATS cannot: a durable consumer per node and topic, keyed by the node id the
//! caller configures, so a restarted node resumes where it stopped; see [`NatsPubSub`].
//!
//! [`PubSubFrame`]: teleportal_pubsub::PubSubFrame
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

mod config;
mod error;
mod jetstream;
mod pubsub;
mod subject;

pub use config::{JetStreamConfig, NatsPubSubConfig};
pub use pubsub::NatsPubSub;
pub use subject::{subject_topic, topic_subject};
