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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            idle_timeout: Duration::from_secs(60),
            send_queue: 1024,
            max_message_size: teleportal_core::codec::DEFAULT_MAX_MESSAGE_SIZE,
            dedup_window: 1024,
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
}
