//! Fanout between Teleportal server nodes.
//!
//! Every node publishes what its clients send on the document's topic (`document/<id>`, see
//! [`document_topic`]) and applies what other nodes publish. Frames are the spec's pub/sub
//! frame (§17.2): the publishing node's id and the encoded message. [`NodePubSub`] stamps
//! this node's id on what it publishes and drops frames carrying it, so a node never
//! re-applies its own messages.
//!
//! ```
//! use bytes::Bytes;
//! use futures::StreamExt;
//! use teleportal_pubsub::{MemoryPubSub, NodePubSub, document_topic};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let bus = MemoryPubSub::new();
//! let a = NodePubSub::new("node-a", bus.clone());
//! let b = NodePubSub::new("node-b", bus);
//! let topic = document_topic("room/notes");
//! let mut at_a = a.subscribe(&topic).await?;
//! let mut at_b = b.subscribe(&topic).await?;
//!
//! a.publish(&topic, Bytes::from_static(b"YJS...")).await?;
//! let frame = at_b.next().await.unwrap()?;
//! assert_eq!(frame.source_id, "node-a");
//! // Node a does not see its own frame come back.
//! b.publish(&topic, Bytes::from_static(b"from b")).await?;
//! assert_eq!(at_a.next().await.unwrap()?.message, Bytes::from_static(b"from b"));
//! # Ok::<(), teleportal_pubsub::PubSubError>(())
//! # }).unwrap();
//! ```
//!
//! # Features
//! - `test-util`: `conformance`, the suite every backend runs
//!   (`conformance::run_pubsub_suite`).
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

#[cfg(feature = "test-util")]
pub mod conformance;
mod memory;
mod node;

use std::pin::Pin;
use std::sync::Arc;

/// The attribute [`PubSub`] is implemented with, so an adapter needs no dependency of its own.
pub use async_trait::async_trait;
use futures::Stream;
pub use memory::{DEFAULT_CAPACITY, MemoryPubSub};
pub use node::NodePubSub;
pub use teleportal_core::PubSubFrame;

/// The topic a document's messages travel on between nodes.
pub fn document_topic(document: &str) -> String {
    format!("document/{document}")
}

/// A boxed error from another library: the family's one [`teleportal_core::BoxError`].
pub use teleportal_core::BoxError;

/// Why a pub/sub operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PubSubError {
    /// This subscriber fell behind and `missed` frames were dropped; the subscription goes on.
    /// A server should resynchronise the topic's documents from storage.
    ///
    /// Backends also yield it when frames may have been lost without a count, such as after
    /// their connection to the broker dropped and came back: then `missed` is 0.
    #[error("subscriber fell behind; {missed} frames were dropped (0: an unknown number)")]
    Lagged {
        /// How many frames were lost; 0 when the backend cannot tell.
        missed: u64,
    },
    /// A frame on the bus did not decode as a pub/sub frame.
    #[error("malformed pub/sub frame")]
    Decode(#[from] teleportal_core::DecodeError),
    /// The backend failed.
    #[error("{backend} pub/sub backend failed")]
    Backend {
        /// The backend's name: `"redis"`, `"nats"`, ….
        backend: &'static str,
        /// The backend's own error.
        #[source]
        source: BoxError,
    },
}

/// The frames of one topic, in publication order per publisher. Dropping it unsubscribes.
pub type Subscription = Pin<Box<dyn Stream<Item = Result<PubSubFrame, PubSubError>> + Send>>;

/// A message bus between server nodes.
///
/// # Contract
/// - A frame published on a topic reaches every subscription to that topic that existed when
///   `publish` was called, including the publisher's own (echo suppression is
///   [`NodePubSub`]'s job, not the backend's).
/// - Frames from one publisher on one topic arrive in the order they were published.
/// - A subscriber that cannot keep up gets [`PubSubError::Lagged`] rather than silently
///   losing frames.
#[async_trait]
pub trait PubSub: Send + Sync + 'static {
    /// Publishes a frame on a topic.
    ///
    /// # Errors
    /// A backend error; the frame may not have been delivered.
    async fn publish(&self, topic: &str, frame: PubSubFrame) -> Result<(), PubSubError>;

    /// Subscribes to a topic.
    ///
    /// # Errors
    /// A backend error.
    async fn subscribe(&self, topic: &str) -> Result<Subscription, PubSubError>;
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<P: PubSub + ?Sized> PubSub for Arc<P> {
    async fn publish(&self, topic: &str, frame: PubSubFrame) -> Result<(), PubSubError> {
        (**self).publish(topic, frame).await
    }
    async fn subscribe(&self, topic: &str) -> Result<Subscription, PubSubError> {
        (**self).subscribe(topic).await
    }
}
