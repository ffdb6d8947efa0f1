//! JetStream mode: a stream for the bus, a durable consumer per node and topic, and a local
//! fanout per topic.

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use async_nats::Client;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::stream::{self, StorageType};
use async_nats::jetstream::{self as js};
use bytes::Bytes;
use futures::future::{self, Either};
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use teleportal_core::DecodeError;
use teleportal_pubsub::{BoxError, PubSubError, PubSubFrame, Subscription};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::JetStreamConfig;
use crate::error::NatsError;

/// The JetStream side of a [`NatsPubSub`](crate::NatsPubSub).
pub(crate) struct JetStreamBus {
    context: js::Context,
    stream: stream::Stream,
    config: JetStreamConfig,
    capacity: usize,
    shared: Arc<Shared>,
}

impl fmt::Debug for JetStreamBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JetStream")
            .field("stream", &self.config.stream_name)
            .field("node_id", &self.config.node_id)
            .finish_non_exhaustive()
    }
}

struct Shared {
    /// The topics this node reads, each with its consumer's reader and local fanout.
    topics: Mutex<HashMap<String, Topic>>,
    /// Readers told to stop that may still be confirming an ack; a new subscription to the
    /// topic waits for them, so it resumes after the last frame they handed out.
    stopping: Mutex<HashMap<String, JoinHandle<()>>>,
    /// Held while a consumer is looked up or created, so concurrent first subscriptions to
    /// one topic start one reader.
    control: tokio::sync::Mutex<()>,
}

/// How long a new subscription waits for the topic's previous reader to confirm its last ack
/// before going ahead (a frame whose ack is unconfirmed is replayed: a duplicate, not a loss).
const STOPPING_READER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

struct Topic {
    tx: broadcast::Sender<Event>,
    /// Reads the consumer until `stop` is dropped; the consumer keeps its place.
    reader: JoinHandle<()>,
    stop: oneshot::Sender<()>,
}

#[derive(Debug, Clone)]
enum Event {
    Frame(Result<PubSubFrame, DecodeError>),
    /// The consumer's message stream ended (the consumer or stream was deleted).
    Ended(Arc<str>),
}

impl JetStreamBus {
    /// Creates the stream if missing (covering `<prefix>.>`).
    pub(crate) async fn open(
        client: Client,
        prefix: &str,
        config: JetStreamConfig,
        capacity: usize,
    ) -> Result<Self, PubSubError> {
        let context = js::new(client);
        let stream_config = stream::Config {
            name: config.stream_name.clone(),
            subjects: vec![format!("{prefix}.>")],
            max_age: config.max_age,
            storage: if config.memory_storage {
                StorageType::Memory
            } else {
                StorageType::File
            },
            description: Some("Teleportal pub/sub frames between server nodes".to_owned()),
            ..Default::default()
        };
        let stream = context
            .get_or_create_stream(stream_config)
            .await
            .map_err(|e| NatsError::Stream {
                stream: config.stream_name.clone(),
                source: NatsError::boxed(e),
            })?;
        Ok(JetStreamBus {
            context,
            stream,
            config,
            capacity,
            shared: Arc::new(Shared {
                topics: Mutex::default(),
                stopping: Mutex::default(),
                control: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Publishes and waits for the stream's acknowledgement.
    pub(crate) async fn publish(&self, subject: String, payload: Bytes) -> Result<(), BoxError> {
        let ack = self
            .context
            .publish(subject, payload)
            .await
            .map_err(NatsError::boxed)?;
        ack.await.map_err(NatsError::boxed)?;
        Ok(())
    }

    /// The durable consumer's name for this node and `topic`: a digest, because consumer
    /// names may not hold `.`, `*`, `>`, `/` or whitespace and are length-limited, while
    /// node ids and topics are arbitrary. The description names both for operators.
    fn consumer_name(&self, topic: &str) -> String {
        let mut digest = Sha256::new();
        for part in [self.config.node_id.as_bytes(), topic.as_bytes()] {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            digest.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
            digest.update(part);
        }
        format!("tp-{}", hex::encode(&digest.finalize()[..16]))
    }

    pub(crate) async fn subscribe(
        &self,
        topic: &str,
        subject: String,
    ) -> Result<Subscription, PubSubError> {
        if let Some(rx) = self.join(topic) {
            return Ok(self.subscription(topic, rx));
        }
        let _control = self.shared.control.lock().await;
        // Another subscription may have started the reader while this one waited.
        if let Some(rx) = self.join(topic) {
            return Ok(self.subscription(topic, rx));
        }
        let stopping = lock(&self.shared.stopping).remove(topic);
        if let Some(reader) = stopping {
            // Abandoned only if NATS does not answer its ack in time.
            let _ = tokio::time::timeout(STOPPING_READER_WAIT, reader).await;
        }
        let name = self.consumer_name(topic);
        let consumer_config = pull::Config {
            durable_name: Some(name.clone()),
            description: Some(format!(
                "teleportal node {:?}, topic {topic:?}",
                self.config.node_id
            )),
            // Only on creation: an existing consumer resumes where it stopped.
            deliver_policy: DeliverPolicy::New,
            ack_policy: AckPolicy::Explicit,
            filter_subject: subject.clone(),
            inactive_threshold: self.config.inactive_threshold,
            ..Default::default()
        };
        let start = async {
            let mut consumer: PullConsumer = self
                .stream
                .get_or_create_consumer(&name, consumer_config.clone())
                .await
                .map_err(NatsError::boxed)?;
            let info = consumer.info().await.map_err(NatsError::boxed)?;
            if info.num_ack_pending > 0 {
                // Frames were delivered but never acked: to a reader of ours that was stopped
                // (or died) with a pull request open. The server would redeliver them only
                // after the ack wait, behind newer frames. Recreating the consumer at the
                // first unacked frame replays them now, in order. (Before any ack the floor
                // is the stream's last sequence at creation, so nothing older comes back.)
                let start_sequence = info.ack_floor.stream_sequence + 1;
                self.stream
                    .delete_consumer(&name)
                    .await
                    .map_err(NatsError::boxed)?;
                let resume = pull::Config {
                    deliver_policy: DeliverPolicy::ByStartSequence { start_sequence },
                    ..consumer_config
                };
                consumer = self
                    .stream
                    .create_consumer(resume)
                    .await
                    .map_err(NatsError::boxed)?;
            }
            consumer.messages().await.map_err(NatsError::boxed)
        };
        let messages = start
            .await
            .map_err(|source| NatsError::Subscribe { subject, source })?;
        let (tx, rx) = broadcast::channel(self.capacity);
        let (stop, stopped) = oneshot::channel();
        let reader = tokio::spawn(read_consumer(messages, tx.clone(), name, stopped));
        let entry = Topic { tx, reader, stop };
        lock(&self.shared.topics).insert(topic.to_owned(), entry);
        Ok(self.subscription(topic, rx))
    }

    /// A receiver on the topic's running reader, if there is one. A reader whose consumer
    /// ended is forgotten, so the next subscription starts afresh.
    fn join(&self, topic: &str) -> Option<broadcast::Receiver<Event>> {
        let mut topics = lock(&self.shared.topics);
        match topics.get(topic) {
            Some(entry) if entry.reader.is_finished() => {
                topics.remove(topic);
                None
            }
            Some(entry) => Some(entry.tx.subscribe()),
            None => None,
        }
    }

    fn subscription(&self, topic: &str, rx: broadcast::Receiver<Event>) -> Subscription {
        Box::pin(JetStreamSubscription {
            frames: BroadcastStream::new(rx),
            ended: false,
            _guard: Guard {
                shared: Arc::clone(&self.shared),
                topic: topic.to_owned(),
            },
        })
    }
}

/// Reads a consumer in order, hands each frame to the local subscriptions, then acks it and
/// waits for the server to confirm the ack: the ack floor is then exact, which is what lets a
/// later subscription resume at the first frame this node has not seen (see `subscribe`).
/// The cost is one round trip to NATS per frame and topic.
///
/// `stopped` fires (or is dropped) when the last local subscription goes away; it is only
/// looked at between frames, so a frame that was handed out is always acked first and is not
/// replayed to this node later.
async fn read_consumer(
    mut messages: pull::Stream,
    tx: broadcast::Sender<Event>,
    name: String,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        let message = match future::select(&mut stopped, messages.next()).await {
            Either::Left(_) => return,
            Either::Right((None, _)) => break,
            Either::Right((Some(message), _)) => message,
        };
        match message {
            Ok(message) => {
                let frame = PubSubFrame::decode(message.payload.clone());
                let _ = tx.send(Event::Frame(frame));
                if let Err(error) = message.double_ack().await {
                    // Unacked frames come back after the ack wait or on the next resume: a
                    // duplicate is harmless (Yjs updates are idempotent), a loss would not be.
                    tracing::warn!(consumer = %name, error = %teleportal_core::ErrorChain::new(&*error), "JetStream ack failed");
                }
            }
            // Missed heartbeats and the like while NATS is away: the stream recovers.
            Err(error) => {
                tracing::warn!(consumer = %name, error = %teleportal_core::ErrorChain::new(&error), "JetStream consumer error")
            }
        }
    }
    let _ = tx.send(Event::Ended(Arc::from(name)));
}

/// One local subscription to a JetStream topic.
struct JetStreamSubscription {
    frames: BroadcastStream<Event>,
    ended: bool,
    _guard: Guard,
}

impl Stream for JetStreamSubscription {
    type Item = Result<PubSubFrame, PubSubError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let polled = self.frames.poll_next_unpin(cx);
        polled.map(|item| {
            item.map(|event| match event {
                Ok(Event::Frame(frame)) => frame.map_err(PubSubError::Decode),
                Ok(Event::Ended(consumer)) => {
                    self.ended = true;
                    let consumer = consumer.to_string();
                    Err(NatsError::ConsumerEnded { consumer }.into())
                }
                Err(BroadcastStreamRecvError::Lagged(missed)) => {
                    Err(PubSubError::Lagged { missed })
                }
            })
        })
    }
}

/// Stops the topic's reader once its last local subscription is dropped.
struct Guard {
    shared: Arc<Shared>,
    topic: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut topics = lock(&self.shared.topics);
        // This guard's receiver was dropped before it (field order), so zero means nobody
        // else reads the topic; checking and removing under one lock races no subscriber.
        if topics
            .get(&self.topic)
            .is_some_and(|entry| entry.tx.receiver_count() == 0)
            && let Some(entry) = topics.remove(&self.topic)
        {
            drop(entry.stop);
            let mut stopping = lock(&self.shared.stopping);
            // Readers of topics nobody subscribed to again are forgotten once finished.
            stopping.retain(|_, reader| !reader.is_finished());
            stopping.insert(self.topic.clone(), entry.reader);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section inserts or removes whole entries, so a panic elsewhere cannot
    // leave the map inconsistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
