//! [`NatsPubSub`]: the [`PubSub`] implementation over core NATS or JetStream.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};
use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use teleportal_pubsub::{BoxError, PubSub, PubSubError, PubSubFrame, Subscription};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::BroadcastStream;

use crate::error::NatsError;
use crate::jetstream::JetStreamBus;
use crate::subject::{is_valid_prefix, topic_subject};
use crate::{JetStreamConfig, NatsPubSubConfig};

/// A [`PubSub`] over NATS. Cheap to clone; clones share the connection.
///
/// # Core NATS (the default)
/// Each subscription is a NATS subscription on the topic's subject (see
/// [`topic_subject`](crate::topic_subject)); NATS itself multiplexes them over the one
/// connection, so no local fanout is needed. Delivery is at most once: the client reconnects
/// and resubscribes on its own, but frames published while this node was disconnected are
/// lost for it. Each subscription is told: once the connection is back and its subscriptions
/// are re-registered, the stream yields [`PubSubError::Lagged`] with `missed: 0` (NATS cannot
/// count them), then frames again; the server resynchronises from storage on `Lagged`.
/// Streams never end because of a disconnection. A subscriber too slow for the client's
/// buffer loses frames without a signal from NATS; the server's own buffers are the bound.
///
/// # JetStream ([`NatsPubSub::jetstream`])
/// Frames are stored in a stream covering `<prefix>.>`, and `publish` returns once the
/// stream has them. This node reads each topic through a durable pull consumer named after
/// its node id and the topic, created on first subscription with "deliver new" and resumed
/// afterwards: while the node has no subscription to a topic (it was restarted, or the
/// document was closed) the consumer keeps its place, and the next subscription replays what
/// was published meanwhile, in order, before new frames. How far back is bounded by the
/// stream's [`max_age`](JetStreamConfig::max_age); consumers unused for
/// [`inactive_threshold`](JetStreamConfig::inactive_threshold) are removed by the server.
/// Local subscriptions to one topic share the consumer and are fanned out in process, since
/// two readers of one consumer would split its frames.
///
/// # Background tasks
/// Connecting spawns a task on the current tokio runtime that turns reconnections into the
/// `Lagged` signal (and, in JetStream mode, one task per subscribed topic reading its
/// consumer); they end when the last clone and the last subscription are dropped.
#[derive(Clone)]
pub struct NatsPubSub {
    inner: Arc<Inner>,
}

impl fmt::Debug for NatsPubSub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsPubSub")
            .field("subject_prefix", &self.inner.prefix)
            .field("jetstream", &self.inner.jetstream)
            .finish_non_exhaustive()
    }
}

struct Inner {
    client: Client,
    prefix: String,
    /// Fires once the connection is back after a disconnection and the client's
    /// subscriptions are registered again.
    reconnected: broadcast::Sender<()>,
    jetstream: Option<JetStreamBus>,
    /// Held only to be dropped: dropping aborts the reconnection watcher.
    _watcher: AbortOnDrop,
}

impl NatsPubSub {
    /// Connects to core NATS at `url` with the defaults.
    ///
    /// # Errors
    /// [`PubSubError::Backend`] when NATS cannot be reached.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub async fn connect(url: &str) -> Result<Self, PubSubError> {
        Self::connect_with(NatsPubSubConfig::new(url)).await
    }

    /// Connects to NATS at `url` in JetStream mode as the node `node_id`, creating the
    /// default stream if it is missing. See [`JetStreamConfig::new`] for what the node id
    /// must be.
    ///
    /// # Errors
    /// [`PubSubError::Backend`] when NATS cannot be reached or has no JetStream.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub async fn jetstream(url: &str, node_id: &str) -> Result<Self, PubSubError> {
        Self::connect_with(NatsPubSubConfig::new(url).jetstream(JetStreamConfig::new(node_id)))
            .await
    }

    /// Connects with `config`.
    ///
    /// # Errors
    /// As [`NatsPubSub::connect`] and [`NatsPubSub::jetstream`]; also an invalid subject
    /// prefix.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub async fn connect_with(config: NatsPubSubConfig) -> Result<Self, PubSubError> {
        if !is_valid_prefix(&config.subject_prefix) {
            return Err(NatsError::Prefix {
                prefix: config.subject_prefix,
            }
            .into());
        }
        let (events_tx, events) = mpsc::unbounded_channel();
        let client = ConnectOptions::new()
            .event_callback(move |event| {
                // The watcher may be gone with the adapter; nothing to tell then.
                let _ = events_tx.send(event);
                async {}
            })
            .connect(config.url.as_str())
            .await
            .map_err(|e| NatsError::Connect(NatsError::boxed(e)))?;
        let jetstream = match config.jetstream {
            Some(js) => Some(
                JetStreamBus::open(client.clone(), &config.subject_prefix, js, config.capacity)
                    .await?,
            ),
            None => None,
        };
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| Inner {
            client,
            prefix: config.subject_prefix,
            reconnected: broadcast::channel(1).0,
            jetstream,
            _watcher: AbortOnDrop(tokio::spawn(watch_reconnections(weak.clone(), events))),
        });
        Ok(NatsPubSub { inner })
    }

    /// The subject `topic` travels on: see [`topic_subject`](crate::topic_subject).
    pub fn subject(&self, topic: &str) -> String {
        topic_subject(&self.inner.prefix, topic)
    }

    /// The underlying NATS client.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl PubSub for NatsPubSub {
    /// Publishes the encoded frame (§17.2) on the topic's subject. In JetStream mode it
    /// returns once the stream stored the frame.
    ///
    /// # Errors
    /// [`PubSubError::Backend`] when the client cannot take the frame (it is too large for
    /// the server's `max_payload`, or the connection is closed for good) or, in JetStream
    /// mode, when the stream did not acknowledge it.
    ///
    /// # Cancel safety
    /// Cancelling may or may not publish the frame.
    async fn publish(&self, topic: &str, frame: PubSubFrame) -> Result<(), PubSubError> {
        let subject = self.subject(topic);
        let payload = frame.to_bytes();
        let result = match &self.inner.jetstream {
            Some(js) => js.publish(subject.clone(), payload).await,
            None => self
                .inner
                .client
                .publish(subject.clone(), payload)
                .await
                .map_err(NatsError::boxed),
        };
        result.map_err(|source| NatsError::Publish { subject, source }.into())
    }

    /// Subscribes to the topic; frames published once this returns reach the stream (in
    /// JetStream mode, preceded by those this node missed since its last subscription).
    ///
    /// The stream yields frames, [`PubSubError::Decode`] for a message that is not a pub/sub
    /// frame, and [`PubSubError::Lagged`] (see [`NatsPubSub`]). Dropping it unsubscribes.
    ///
    /// # Errors
    /// [`PubSubError::Backend`] when NATS refuses the subscription or, in JetStream mode,
    /// the consumer.
    ///
    /// # Cancel safety
    /// Cancel safe: a cancelled call leaves no subscription behind.
    async fn subscribe(&self, topic: &str) -> Result<Subscription, PubSubError> {
        let subject = self.subject(topic);
        if let Some(js) = &self.inner.jetstream {
            return js.subscribe(topic, subject).await;
        }
        let subscribe = async {
            let client = &self.inner.client;
            let messages = client
                .subscribe(subject.clone())
                .await
                .map_err(NatsError::boxed)?;
            round_trip(client).await?;
            Ok(messages)
        };
        let messages = subscribe
            .await
            .map_err(|source| NatsError::Subscribe { subject, source })?;
        Ok(Box::pin(CoreSubscription {
            reconnected: BroadcastStream::new(self.inner.reconnected.subscribe()),
            messages,
            _bus: Arc::clone(&self.inner),
        }))
    }
}

/// Returns once the server has processed everything this client sent before the call.
///
/// A NATS server handles one connection's protocol in order, so once a message published now
/// to a fresh inbox comes back, earlier `SUB`s are registered: frames published from then on
/// reach them. (The client's `flush` only empties the socket buffer, which is not enough.)
async fn round_trip(client: &Client) -> Result<(), BoxError> {
    const PATIENCE: Duration = Duration::from_secs(10);
    let inbox = client.new_inbox();
    let mut probe = client
        .subscribe(inbox.clone())
        .await
        .map_err(NatsError::boxed)?;
    client
        .publish(inbox, Bytes::new())
        .await
        .map_err(NatsError::boxed)?;
    match tokio::time::timeout(PATIENCE, probe.next()).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err("the connection closed during the round trip".into()),
        Err(_) => Err(format!("no round trip within {PATIENCE:?}").into()),
    }
}

/// Turns "disconnected, then connected" into the `reconnected` signal, after making sure the
/// resubscriptions the client queued on reconnecting have reached the server.
async fn watch_reconnections(inner: Weak<Inner>, mut events: mpsc::UnboundedReceiver<Event>) {
    let mut disconnected = false;
    while let Some(event) = events.recv().await {
        match event {
            Event::Disconnected => disconnected = true,
            Event::Connected if disconnected => {
                disconnected = false;
                let Some(inner) = inner.upgrade() else { return };
                if let Err(error) = round_trip(&inner.client).await {
                    tracing::debug!(error = %teleportal_core::ErrorChain::new(&*error), "round trip after reconnecting failed");
                }
                let _ = inner.reconnected.send(());
            }
            _ => {}
        }
    }
}

/// A core NATS subscription with the reconnection signal merged in.
struct CoreSubscription {
    reconnected: BroadcastStream<()>,
    messages: async_nats::Subscriber,
    /// Keeps the client and the watcher alive while the subscription is.
    _bus: Arc<Inner>,
}

impl Stream for CoreSubscription {
    type Item = Result<PubSubFrame, PubSubError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // A reconnection first: whatever follows it was published after the gap.
        if let Poll::Ready(Some(_)) = self.reconnected.poll_next_unpin(cx) {
            return Poll::Ready(Some(Err(PubSubError::Lagged { missed: 0 })));
        }
        self.messages.poll_next_unpin(cx).map(|message| {
            message.map(|message| PubSubFrame::decode(message.payload).map_err(Into::into))
        })
    }
}

/// Aborts a background task when its owner goes away.
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
