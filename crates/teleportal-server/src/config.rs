//! Server settings.

use std::time::Duration;

/// How a [`Server`](crate::Server) behaves. Every field has a sensible default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// A document's session is dropped this long after its last client left (default 60 s).
    pub idle_timeout: Duration,
    /// Messages queued for one client before it counts as not reading (default 1024). A
    /// client whose queue is full is disconnected with a reason; the others are unaffected.
    pub send_queue: usize,
    /// Largest accepted message in bytes (default 16 MiB, the codec's default).
    pub max_message_size: usize,
    /// How many recent message ids each document remembers, so a retransmitted message is
    /// acknowledged but applied once (default 1024).
    pub dedup_window: usize,
    /// When an update reaches the document's other clients and nodes: before or after the
    /// store reports it durable (default [`RelayMode::BeforeDurable`]). The sender's ACK always
    /// waits for durability.
    pub relay: RelayMode,
    /// With pub/sub, how often each open document compares the updates it saw with the
    /// storage's sequence numbers (default 5 s), to catch an update another node stored but
    /// never published (it died in between, or lost the bus): three short checks in a row
    /// and the document's clients get the whole stored document. `None` turns it off.
    pub missed_update_check: Option<Duration>,
    /// Uploads (see [`ServerBuilder::files`](crate::ServerBuilder::files)) untouched this long
    /// are removed in the background (default 24 h); `None` keeps them until they finish.
    pub upload_max_age: Option<Duration>,
    /// How often abandoned uploads are looked for (default 1 h).
    pub upload_expiry_check: Duration,
}

/// When an incoming update is relayed to the document's other local clients, relative to its
/// durable append (publishing on pub/sub for other nodes always follows the append). In both
/// modes the sender's ACK is sent only after the append returned `Ok` (an ACK always means
/// durable), relays go out in the order the connection sent the updates, and a retransmitted
/// message (same id) is relayed at most once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayMode {
    /// Relay to the document's other local clients as soon as the update is valid (it decodes
    /// and was converted) and the write permission check passed, then store it; the ACK and
    /// the pub/sub publication wait for the append. Until the append ends, sync answers of the
    /// session include the update, so a client joining in between does not miss it; other
    /// nodes only see stored updates, hence publishing after the append.
    ///
    /// If the append then fails, the sender gets a NACK as in
    /// [`AfterDurable`](Self::AfterDurable), but the other clients may already hold the
    /// update. No acknowledged data can be lost: the sender keeps unacknowledged updates and
    /// retransmits them, and the CRDT merge makes a later successful store converge with what
    /// the others already applied.
    ///
    /// The one failure that a retransmission cannot fix is a document past the store's hard
    /// size limit ([`SizeLimits::max_size`](teleportal_storage::SizeLimits)). So when the
    /// store has one, an update is relayed early only if the document's last known size (the
    /// previous append's receipt, or the stored metadata once) plus the sizes of this node's
    /// appends still in flight plus this update stays below the limit; otherwise it
    /// is stored first and relayed only once stored, and a rejected update is never relayed.
    /// Appends by other nodes to shared storage are seen only with the next receipt, so with
    /// several nodes writing one document close to its limit, keep headroom or use
    /// [`AfterDurable`](Self::AfterDurable).
    #[default]
    BeforeDurable,
    /// Store first; relay and publish only once the append returned `Ok`. A failed append is
    /// never relayed. Delivery to other clients then waits for the store's fsync.
    AfterDurable,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            idle_timeout: Duration::from_secs(60),
            send_queue: 1024,
            max_message_size: teleportal_core::codec::DEFAULT_MAX_MESSAGE_SIZE,
            dedup_window: 1024,
            relay: RelayMode::default(),
            missed_update_check: Some(Duration::from_secs(5)),
            upload_max_age: Some(Duration::from_secs(24 * 60 * 60)),
            upload_expiry_check: Duration::from_secs(60 * 60),
        }
    }
}

impl ServerConfig {
    /// Sets the idle time after which a document without clients is unloaded.
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// Sets the per-client send queue bound.
    pub fn with_send_queue(mut self, send_queue: usize) -> Self {
        self.send_queue = send_queue.max(1);
        self
    }

    /// Sets the largest accepted message.
    pub fn with_max_message_size(mut self, max_message_size: usize) -> Self {
        self.max_message_size = max_message_size;
        self
    }

    /// Sets how many recent message ids each document remembers for deduplication.
    pub fn with_dedup_window(mut self, dedup_window: usize) -> Self {
        self.dedup_window = dedup_window.max(1);
        self
    }

    /// Sets when updates are relayed relative to their durable append.
    pub fn with_relay(mut self, relay: RelayMode) -> Self {
        self.relay = relay;
        self
    }

    /// Sets how old an untouched upload must be to be removed, and how often to look.
    pub fn with_upload_expiry(mut self, max_age: Option<Duration>, check_every: Duration) -> Self {
        self.upload_max_age = max_age;
        self.upload_expiry_check = check_every;
        self
    }

    /// Sets [`missed_update_check`](Self::missed_update_check).
    pub fn with_missed_update_check(mut self, interval: Option<Duration>) -> Self {
        self.missed_update_check = interval;
        self
    }
}
