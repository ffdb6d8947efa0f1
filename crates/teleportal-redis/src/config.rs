//! [`RedisPubSubConfig`]: where Redis is and how the adapter behaves.

use std::time::Duration;

use teleportal_pubsub::DEFAULT_CAPACITY;

/// How to connect a [`RedisPubSub`](crate::RedisPubSub).
///
/// ```
/// use std::time::Duration;
/// use teleportal_redis::RedisPubSubConfig;
///
/// let config = RedisPubSubConfig::new("redis://127.0.0.1:6379")
///     .channel_prefix("myapp:")
///     .reconnect_interval(Duration::from_millis(200));
/// assert_eq!(config.url(), "redis://127.0.0.1:6379");
/// ```
#[derive(Debug, Clone)]
pub struct RedisPubSubConfig {
    pub(crate) url: String,
    pub(crate) channel_prefix: String,
    pub(crate) capacity: usize,
    pub(crate) reconnect_interval: Duration,
}

impl RedisPubSubConfig {
    /// The default channel prefix: a topic `document/x` is the channel `teleportal:document/x`.
    pub const DEFAULT_CHANNEL_PREFIX: &'static str = "teleportal:";
    /// How often a disconnected adapter retries by default.
    pub const DEFAULT_RECONNECT_INTERVAL: Duration = Duration::from_millis(500);

    /// Redis at `url` (`redis://[user:password@]host:port[/db]`), with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        RedisPubSubConfig {
            url: url.into(),
            channel_prefix: Self::DEFAULT_CHANNEL_PREFIX.to_owned(),
            capacity: DEFAULT_CAPACITY,
            reconnect_interval: Self::DEFAULT_RECONNECT_INTERVAL,
        }
    }

    /// The Redis URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Puts every channel under `prefix`, so several applications can share one Redis. Every
    /// node of one cluster must use the same prefix.
    pub fn channel_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.channel_prefix = prefix.into();
        self
    }

    /// How many frames a subscription may fall behind before it gets
    /// [`PubSubError::Lagged`](teleportal_pubsub::PubSubError::Lagged) (at least 1).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// How often the adapter retries while Redis is unreachable. The connection manager also
    /// retries on its own, with backoff, right after the connection drops; this interval keeps
    /// trying after that gives up, so subscriptions come back however long Redis was away.
    pub fn reconnect_interval(mut self, interval: Duration) -> Self {
        self.reconnect_interval = interval;
        self
    }
}
