//! [`RedisPubSub`]: the [`PubSub`] implementation over one managed RESP3 connection.

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value};
use teleportal_core::DecodeError;
use teleportal_pubsub::{PubSub, PubSubError, PubSubFrame, Subscription};
use tokio::sync::{Notify, broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::RedisPubSubConfig;
use crate::error::RedisError;

/// A [`PubSub`] over Redis. Cheap to clone; clones share the connection and subscriptions.
///
/// One RESP3 connection, kept by redis's `ConnectionManager`, carries the `PUBLISH`es and the
/// `SUBSCRIBE`s. Each topic is subscribed in Redis once however many local subscriptions it
/// has, and unsubscribed when the last of them is dropped.
///
/// # Redis restarts and lost frames
/// Redis pub/sub delivers at most once and keeps nothing: frames published while this node's
/// connection is down (or while Redis itself is down) are lost for this node. What the
/// adapter guarantees instead:
///
/// - Subscriptions survive. When the connection drops, the manager reconnects (with backoff,
///   then every [`reconnect_interval`](RedisPubSubConfig::reconnect_interval) for as long as it
///   takes) and re-issues every `SUBSCRIBE` on the new connection. Subscription streams never
///   end because of a disconnection.
/// - Each subscription is told: once its topic is subscribed again, the stream yields
///   [`PubSubError::Lagged`] with `missed: 0` (Redis cannot say how many frames were lost),
///   then frames published from then on. A server resynchronises the topic's documents from
///   storage on `Lagged`, which covers whatever was lost, since storage, not the bus, is the
///   source of truth.
/// - While disconnected, [`publish`](PubSub::publish) fails with
///   [`PubSubError::Backend`] after the manager's retries (a few seconds), and
///   [`subscribe`](PubSub::subscribe) likewise; both work again once Redis is back.
///
/// # Background tasks
/// Creating a `RedisPubSub` spawns two small tasks on the current tokio runtime (one
/// unsubscribes topics whose subscriptions were dropped, one keeps reconnecting while Redis
/// is away); they end when the last clone and the last subscription are dropped.
#[derive(Clone)]
pub struct RedisPubSub {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisPubSub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisPubSub")
            .field("channel_prefix", &self.inner.channel_prefix)
            .field("topics", &lock(&self.inner.channels).len())
            .finish_non_exhaustive()
    }
}

struct Inner {
    conn: ConnectionManager,
    /// The topics subscribed in Redis, by channel name. Shared with the push handler, which
    /// runs inside redis's connection tasks and must never block on anything but this lock.
    channels: Arc<Mutex<HashMap<Vec<u8>, Channel>>>,
    /// Held across each `SUBSCRIBE`/`UNSUBSCRIBE`, so that a clean-up racing a new
    /// subscription to the same topic cannot unsubscribe it in Redis after it was subscribed.
    control: tokio::sync::Mutex<()>,
    /// Channels whose last local subscription was dropped, for the clean-up task.
    dropped: mpsc::UnboundedSender<Vec<u8>>,
    channel_prefix: String,
    capacity: usize,
    /// Held only to be dropped: dropping aborts the background tasks.
    _tasks: [AbortOnDrop; 2],
}

/// One subscribed channel's local fanout.
struct Channel {
    tx: broadcast::Sender<Event>,
    /// Redis confirmed the `SUBSCRIBE`. False until then, so that a subscriber finding the
    /// entry of a failed or cancelled attempt subscribes itself.
    subscribed: bool,
    /// The connection dropped since this channel was last confirmed subscribed.
    interrupted: bool,
}

#[derive(Debug, Clone)]
enum Event {
    Frame(Result<PubSubFrame, DecodeError>),
    /// The channel is subscribed again after a disconnection; frames may have been lost.
    Resubscribed,
}

impl RedisPubSub {
    /// Connects to Redis at `url` with the default [`RedisPubSubConfig`].
    ///
    /// # Errors
    /// [`PubSubError::Backend`] when the URL is invalid or Redis cannot be reached (after the
    /// connection manager's retries).
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub async fn connect(url: &str) -> Result<Self, PubSubError> {
        Self::connect_with(RedisPubSubConfig::new(url)).await
    }

    /// Connects with `config`.
    ///
    /// # Errors
    /// As [`RedisPubSub::connect`].
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub async fn connect_with(config: RedisPubSubConfig) -> Result<Self, PubSubError> {
        let info = config
            .url
            .as_str()
            .into_connection_info()
            .map_err(RedisError::Url)?;
        // Pushes (messages, subscribe confirmations, disconnections) need RESP3, and RESP3 is
        // what lets publishes share the subscribed connection.
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client =
            redis::Client::open(info.set_redis_settings(settings)).map_err(RedisError::Url)?;

        let channels: Arc<Mutex<HashMap<Vec<u8>, Channel>>> = Arc::default();
        let reconnect = Arc::new(Notify::new());
        let on_push = {
            let channels = Arc::clone(&channels);
            let reconnect = Arc::clone(&reconnect);
            move |push: PushInfo| {
                route_push(&channels, &reconnect, push);
                Ok::<(), std::convert::Infallible>(())
            }
        };
        let manager_config = ConnectionManagerConfig::new()
            .set_push_sender(on_push)
            .set_automatic_resubscription()
            .set_max_delay(Duration::from_secs(1))
            // The default (500 ms) is short for a 1 MB frame on a busy machine.
            .set_response_timeout(Some(Duration::from_secs(5)));
        let conn = ConnectionManager::new_with_config(client, manager_config)
            .await
            .map_err(RedisError::Connect)?;

        let (dropped, dropped_rx) = mpsc::unbounded_channel();
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| Inner {
            conn,
            channels,
            control: tokio::sync::Mutex::new(()),
            dropped,
            channel_prefix: config.channel_prefix,
            capacity: config.capacity,
            _tasks: [
                AbortOnDrop(tokio::spawn(unsubscribe_dropped(weak.clone(), dropped_rx))),
                AbortOnDrop(tokio::spawn(keep_reconnecting(
                    weak.clone(),
                    reconnect,
                    config.reconnect_interval,
                ))),
            ],
        });
        Ok(RedisPubSub { inner })
    }

    /// The Redis channel a topic travels on: the prefix, then the topic's bytes. Redis
    /// channels are binary-safe and `SUBSCRIBE` matches them exactly (patterns are
    /// `PSUBSCRIBE`'s, which this adapter does not use), so no escaping is needed and distinct
    /// topics never share a channel.
    pub fn channel(&self, topic: &str) -> String {
        format!("{}{topic}", self.inner.channel_prefix)
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl PubSub for RedisPubSub {
    /// `PUBLISH`es the encoded frame (§17.2) on the topic's channel.
    ///
    /// # Errors
    /// [`PubSubError::Backend`] when Redis is unreachable (after the connection manager's
    /// retries); the frame was not published.
    ///
    /// # Cancel safety
    /// Cancelling may or may not publish the frame.
    async fn publish(&self, topic: &str, frame: PubSubFrame) -> Result<(), PubSubError> {
        let channel = self.channel(topic);
        let mut conn = self.inner.conn.clone();
        redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(frame.to_bytes().as_ref())
            .query_async::<i64>(&mut conn)
            .await
            .map_err(|source| RedisError::Publish { channel, source })?;
        Ok(())
    }

    /// Subscribes to the topic; frames published once this returns reach the stream.
    ///
    /// The stream yields frames, [`PubSubError::Decode`] for a message on the channel that is
    /// not a pub/sub frame, and [`PubSubError::Lagged`] when it fell behind (with the count)
    /// or after a reconnection (with `missed: 0`; see [`RedisPubSub`]). It does not end while
    /// held; dropping it unsubscribes.
    ///
    /// # Errors
    /// [`PubSubError::Backend`] when Redis is unreachable.
    ///
    /// # Cancel safety
    /// Cancel safe: a cancelled call leaves no local subscription behind (a Redis subscription
    /// it already made is dropped with the next clean-up or kept for the next subscriber).
    async fn subscribe(&self, topic: &str) -> Result<Subscription, PubSubError> {
        let channel = self.channel(topic).into_bytes();
        let _control = self.inner.control.lock().await;
        let (rx, subscribed) = {
            let mut channels = lock(&self.inner.channels);
            let entry = channels.entry(channel.clone()).or_insert_with(|| Channel {
                tx: broadcast::channel(self.inner.capacity).0,
                subscribed: false,
                interrupted: false,
            });
            (entry.tx.subscribe(), entry.subscribed)
        };
        // Owns the receiver's share of the channel from here on: if SUBSCRIBE fails or this
        // future is cancelled, dropping it queues the clean-up.
        let guard = Guard {
            inner: Arc::clone(&self.inner),
            channel: channel.clone(),
        };
        if !subscribed {
            // The receiver exists before SUBSCRIBE is sent, so nothing confirmed is missed.
            let mut conn = self.inner.conn.clone();
            if let Err(source) = conn.subscribe(channel.as_slice()).await {
                let channel = String::from_utf8_lossy(&channel).into_owned();
                return Err(RedisError::Subscribe { channel, source }.into());
            }
            // Still there: removing it takes the control lock, which this call holds.
            if let Some(entry) = lock(&self.inner.channels).get_mut(&channel) {
                entry.subscribed = true;
            }
        }
        Ok(Box::pin(RedisSubscription {
            frames: BroadcastStream::new(rx),
            _guard: guard,
        }))
    }
}

/// Handles one push from Redis: routes messages to their channel's subscriptions and marks
/// channels across disconnections.
fn route_push(channels: &Mutex<HashMap<Vec<u8>, Channel>>, reconnect: &Notify, push: PushInfo) {
    match push.kind {
        PushKind::Message => {
            let [Value::BulkString(channel), Value::BulkString(payload)] = push.data.as_slice()
            else {
                tracing::warn!(data = ?push.data, "unexpected shape of a Redis pub/sub message");
                return;
            };
            let channels = lock(channels);
            if let Some(entry) = channels.get(channel) {
                let frame = PubSubFrame::decode(Bytes::copy_from_slice(payload));
                // No receiver left is fine: the clean-up task is about to unsubscribe.
                let _ = entry.tx.send(Event::Frame(frame));
            }
        }
        PushKind::Disconnection => {
            for entry in lock(channels).values_mut() {
                entry.interrupted = true;
            }
            reconnect.notify_one();
        }
        PushKind::Subscribe => {
            let Some(Value::BulkString(channel)) = push.data.first() else {
                return;
            };
            if let Some(entry) = lock(channels).get_mut(channel)
                && std::mem::take(&mut entry.interrupted)
            {
                let _ = entry.tx.send(Event::Resubscribed);
            }
        }
        _ => {}
    }
}

/// Unsubscribes, in Redis, channels whose last local subscription was dropped.
async fn unsubscribe_dropped(inner: Weak<Inner>, mut dropped: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(channel) = dropped.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        let _control = inner.control.lock().await;
        let unused = {
            let mut channels = lock(&inner.channels);
            // A subscription made since the drop reuses the channel: keep it.
            let unused = channels
                .get(&channel)
                .is_some_and(|entry| entry.tx.receiver_count() == 0);
            if unused {
                channels.remove(&channel);
            }
            unused
        };
        if unused {
            let mut conn = inner.conn.clone();
            if let Err(error) = conn.unsubscribe(channel.as_slice()).await {
                // The connection dropped: the new one is not subscribed to this channel any
                // more unless the resubscription raced us, in which case messages for it
                // are ignored (no entry) until the next clean-up or restart.
                tracing::warn!(error = %teleportal_core::ErrorChain::new(&error), "Redis UNSUBSCRIBE failed");
            }
        }
    }
}

/// After each disconnection, pings until Redis answers. The connection manager retries with
/// backoff on its own but gives up after a few attempts; a command that finds it given up
/// starts it again, so pinging keeps the reconnection (and the resubscription) going.
async fn keep_reconnecting(inner: Weak<Inner>, reconnect: Arc<Notify>, interval: Duration) {
    loop {
        reconnect.notified().await;
        loop {
            let Some(inner) = inner.upgrade() else { return };
            let mut conn = inner.conn.clone();
            drop(inner);
            match redis::cmd("PING").query_async::<String>(&mut conn).await {
                Ok(_) => break,
                Err(error) => {
                    tracing::debug!(error = %teleportal_core::ErrorChain::new(&error), "Redis still unreachable");
                    tokio::time::sleep(interval).await;
                }
            }
        }
    }
}

/// A subscription's stream; dropping it releases its share of the channel.
struct RedisSubscription {
    frames: BroadcastStream<Event>,
    _guard: Guard,
}

impl Stream for RedisSubscription {
    type Item = Result<PubSubFrame, PubSubError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.frames).poll_next(cx).map(|item| {
            item.map(|event| match event {
                Ok(Event::Frame(frame)) => frame.map_err(PubSubError::Decode),
                Ok(Event::Resubscribed) => Err(PubSubError::Lagged { missed: 0 }),
                Err(BroadcastStreamRecvError::Lagged(missed)) => {
                    Err(PubSubError::Lagged { missed })
                }
            })
        })
    }
}

/// Queues a clean-up of its channel when dropped; holds the adapter alive meanwhile.
struct Guard {
    inner: Arc<Inner>,
    channel: Vec<u8>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // The task checks the receiver count itself, once this guard's receiver is gone too.
        let _ = self.inner.dropped.send(std::mem::take(&mut self.channel));
    }
}

/// Aborts a background task when the adapter goes away.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section leaves the map whole (single inserts, removes and flag
    // writes), so a panic elsewhere cannot leave it inconsistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
