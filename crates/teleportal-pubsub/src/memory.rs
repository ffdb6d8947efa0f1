//! [`MemoryPubSub`]: a bus inside one process, for tests and for several servers in one
//! process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::{PubSub, PubSubError, PubSubFrame, Subscription};

/// How many frames a subscriber may fall behind before it gets [`PubSubError::Lagged`].
pub const DEFAULT_CAPACITY: usize = 4096;

/// An in-process bus: one broadcast channel per topic. Cheap to clone; clones share the bus.
#[derive(Debug, Clone)]
pub struct MemoryPubSub {
    topics: Arc<Mutex<HashMap<String, broadcast::Sender<PubSubFrame>>>>,
    capacity: usize,
}

impl Default for MemoryPubSub {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryPubSub {
    /// A bus whose subscribers may fall [`DEFAULT_CAPACITY`] frames behind.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A bus whose subscribers may fall `capacity` frames behind (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        MemoryPubSub {
            topics: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    fn sender(&self, topic: &str) -> broadcast::Sender<PubSubFrame> {
        // Entries are inserted whole; a panic elsewhere cannot leave the map inconsistent.
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        // Forget topics nobody listens to any more, so the map tracks live subscriptions.
        topics.retain(|_, tx| tx.receiver_count() > 0);
        topics
            .entry(topic.to_owned())
            .or_insert_with(|| broadcast::channel(self.capacity).0)
            .clone()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl PubSub for MemoryPubSub {
    async fn publish(&self, topic: &str, frame: PubSubFrame) -> Result<(), PubSubError> {
        // No subscriber is not an error: nobody on any node has the document open.
        let _ = self.sender(topic).send(frame);
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription, PubSubError> {
        let stream = BroadcastStream::new(self.sender(topic).subscribe()).map(|item| {
            item.map_err(|BroadcastStreamRecvError::Lagged(missed)| PubSubError::Lagged { missed })
        });
        Ok(Box::pin(stream))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn frame(n: u8) -> PubSubFrame {
        PubSubFrame {
            source_id: "n".into(),
            message: Bytes::from(vec![n]),
        }
    }

    #[tokio::test]
    async fn topics_are_separate_and_ordered() {
        let bus = MemoryPubSub::new();
        let mut a = bus.subscribe("a").await.unwrap();
        let mut b = bus.subscribe("b").await.unwrap();
        for n in 0..3 {
            bus.publish("a", frame(n)).await.unwrap();
        }
        bus.publish("b", frame(9)).await.unwrap();
        for n in 0..3 {
            assert_eq!(a.next().await.unwrap().unwrap(), frame(n));
        }
        assert_eq!(b.next().await.unwrap().unwrap(), frame(9));
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_it_lagged() {
        let bus = MemoryPubSub::with_capacity(2);
        let mut sub = bus.subscribe("t").await.unwrap();
        for n in 0..5 {
            bus.publish("t", frame(n)).await.unwrap();
        }
        assert!(matches!(
            sub.next().await,
            Some(Err(PubSubError::Lagged { missed: 3 }))
        ));
        assert_eq!(sub.next().await.unwrap().unwrap(), frame(3));
    }
}
