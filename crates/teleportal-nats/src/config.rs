//! [`NatsPubSubConfig`] and [`JetStreamConfig`]: where NATS is and which mode to use.

use std::time::Duration;

use teleportal_pubsub::DEFAULT_CAPACITY;

/// How to connect a [`NatsPubSub`](crate::NatsPubSub).
///
/// ```
/// use teleportal_nats::{JetStreamConfig, NatsPubSubConfig};
///
/// let core = NatsPubSubConfig::new("nats://127.0.0.1:4222").subject_prefix("myapp.bus");
/// let durable = NatsPubSubConfig::new("nats://127.0.0.1:4222")
///     .jetstream(JetStreamConfig::new("node-1").stream_name("MYAPP_BUS"));
/// assert!(core.jetstream_config().is_none());
/// assert_eq!(durable.jetstream_config().unwrap().node_id(), "node-1");
/// ```
#[derive(Debug, Clone)]
pub struct NatsPubSubConfig {
    pub(crate) url: String,
    pub(crate) subject_prefix: String,
    pub(crate) capacity: usize,
    pub(crate) jetstream: Option<JetStreamConfig>,
}

impl NatsPubSubConfig {
    /// The default subject prefix (see [`topic_subject`](crate::topic_subject)).
    pub const DEFAULT_SUBJECT_PREFIX: &'static str = "teleportal";

    /// Core NATS at `url` (`nats://host:port`, several separated by commas), with the
    /// defaults.
    pub fn new(url: impl Into<String>) -> Self {
        NatsPubSubConfig {
            url: url.into(),
            subject_prefix: Self::DEFAULT_SUBJECT_PREFIX.to_owned(),
            capacity: DEFAULT_CAPACITY,
            jetstream: None,
        }
    }

    /// The NATS URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Puts every subject under `prefix` (a literal subject such as `myapp.bus`), so several
    /// applications can share one NATS. Every node of one cluster must use the same prefix.
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.subject_prefix = prefix.into();
        self
    }

    /// How many frames a JetStream subscription may fall behind before it gets
    /// [`PubSubError::Lagged`](teleportal_pubsub::PubSubError::Lagged) (at least 1). Core
    /// subscriptions are bounded by the NATS client instead.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Uses JetStream (durable, replaying) instead of core NATS.
    pub fn jetstream(mut self, config: JetStreamConfig) -> Self {
        self.jetstream = Some(config);
        self
    }

    /// The JetStream settings, when in JetStream mode.
    pub fn jetstream_config(&self) -> Option<&JetStreamConfig> {
        self.jetstream.as_ref()
    }
}

/// JetStream mode: frames are stored in a stream, and each node reads each topic through a
/// durable consumer named after its node id, so a node that restarts gets what it missed.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    pub(crate) node_id: String,
    pub(crate) stream_name: String,
    pub(crate) max_age: Duration,
    pub(crate) inactive_threshold: Duration,
    pub(crate) memory_storage: bool,
}

impl JetStreamConfig {
    /// The default stream name.
    pub const DEFAULT_STREAM_NAME: &'static str = "TELEPORTAL";
    /// How long the stream keeps frames by default: a node down longer misses the older ones.
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60 * 60);
    /// How long a node's consumer outlives its last subscription by default.
    pub const DEFAULT_INACTIVE_THRESHOLD: Duration = Duration::from_secs(24 * 60 * 60);

    /// JetStream for the node `node_id`. The id must be stable across the node's restarts
    /// (that is what finds its consumers again) and unique among the nodes: two running
    /// nodes with one id would split the frames between them. Use the same id as the
    /// node's [`NodePubSub`](teleportal_pubsub::NodePubSub).
    pub fn new(node_id: impl Into<String>) -> Self {
        JetStreamConfig {
            node_id: node_id.into(),
            stream_name: Self::DEFAULT_STREAM_NAME.to_owned(),
            max_age: Self::DEFAULT_MAX_AGE,
            inactive_threshold: Self::DEFAULT_INACTIVE_THRESHOLD,
            memory_storage: false,
        }
    }

    /// The node id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The stream's name (created if missing, covering `<prefix>.>`).
    pub fn stream_name(mut self, name: impl Into<String>) -> Self {
        self.stream_name = name.into();
        self
    }

    /// How long the stream keeps frames, which bounds how long a node may be away and
    /// still replay everything.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// How long the server keeps a consumer nobody reads, so the consumers of nodes that
    /// never come back (or of documents nobody opens again) are removed.
    pub fn inactive_threshold(mut self, threshold: Duration) -> Self {
        self.inactive_threshold = threshold;
        self
    }

    /// Keeps the stream in memory instead of on disk: faster, but lost when NATS restarts.
    pub fn memory_storage(mut self, memory: bool) -> Self {
        self.memory_storage = memory;
        self
    }
}
