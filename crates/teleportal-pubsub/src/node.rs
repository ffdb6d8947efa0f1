//! [`NodePubSub`]: one node's view of the bus, with echo suppression by node id.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

use crate::{PubSub, PubSubError, PubSubFrame, Subscription};

/// A node's handle on a [`PubSub`]: publishes with this node's id and never yields frames
/// this node published.
#[derive(Clone)]
pub struct NodePubSub {
    node_id: Arc<str>,
    bus: Arc<dyn PubSub>,
}

impl fmt::Debug for NodePubSub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodePubSub")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl NodePubSub {
    /// This node's handle on `bus`. Node ids must be unique among the nodes sharing a bus.
    pub fn new(node_id: impl AsRef<str>, bus: impl PubSub) -> Self {
        Self::from_arc(node_id, Arc::new(bus))
    }

    /// As [`NodePubSub::new`], for a shared bus.
    pub fn from_arc(node_id: impl AsRef<str>, bus: Arc<dyn PubSub>) -> Self {
        NodePubSub {
            node_id: Arc::from(node_id.as_ref()),
            bus,
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Publishes an encoded message on `topic`, stamped with this node's id.
    ///
    /// # Errors
    /// The bus's error.
    pub async fn publish(&self, topic: &str, message: Bytes) -> Result<(), PubSubError> {
        let frame = PubSubFrame {
            source_id: self.node_id.to_string(),
            message,
        };
        self.bus.publish(topic, frame).await
    }

    /// Frames on `topic` from other nodes (and errors, such as lag).
    ///
    /// # Errors
    /// The bus's error.
    pub async fn subscribe(&self, topic: &str) -> Result<Subscription, PubSubError> {
        let own = Arc::clone(&self.node_id);
        let frames = self.bus.subscribe(topic).await?;
        Ok(Box::pin(frames.filter(move |item| {
            let echo = matches!(item, Ok(frame) if *frame.source_id == *own);
            std::future::ready(!echo)
        })))
    }
}
