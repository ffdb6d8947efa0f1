//! One connection as sessions see it: a bounded queue of broadcasts and a way to close it.

use std::sync::{Arc, Mutex, PoisonError};

use futures::{Sink, SinkExt};
use teleportal_core::{Frame, YMessage};
use tokio::sync::{Notify, mpsc};

use crate::CloseReason;

/// Something a session sends to many connections, in the form each protocol needs.
#[derive(Debug)]
pub(crate) struct Broadcast {
    /// For Teleportal connections.
    pub(crate) frame: Option<Frame>,
    /// For y-protocols connections (absent for what they cannot represent, e.g. presence).
    pub(crate) y: Option<YMessage>,
}

/// Asks a connection's driver to stop, with a reason. The first reason wins.
#[derive(Debug, Default)]
pub(crate) struct Closer {
    reason: Mutex<Option<CloseReason>>,
    notify: Notify,
}

impl Closer {
    pub(crate) fn close(&self, reason: CloseReason) {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(reason);
        // `notify_one` keeps a permit when nobody waits, and `closed` checks the reason
        // before waiting, so a close is never missed.
        self.notify.notify_one();
    }

    fn reason(&self) -> Option<CloseReason> {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Resolves once the connection is asked to close.
    ///
    /// # Cancel safety
    /// Cancel safe: the reason stays set, so the next call resolves at once.
    pub(crate) async fn closed(&self) -> CloseReason {
        loop {
            let notified = self.notify.notified();
            if let Some(reason) = self.reason() {
                return reason;
            }
            notified.await;
        }
    }
}

/// A session's handle on one connection.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) id: u64,
    queue: mpsc::Sender<Arc<Broadcast>>,
    closer: Arc<Closer>,
}

impl Peer {
    pub(crate) fn new(id: u64, queue: mpsc::Sender<Arc<Broadcast>>, closer: Arc<Closer>) -> Self {
        Peer { id, queue, closer }
    }

    /// Queues a broadcast without waiting. A full queue means the client is not reading: it
    /// is closed rather than letting it slow the session down or grow memory.
    pub(crate) fn offer(&self, broadcast: &Arc<Broadcast>) {
        match self.queue.try_send(Arc::clone(broadcast)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.closer.close(CloseReason::send_queue_full());
            }
            // The driver is gone; its cleanup removes this peer.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// Why a driver stopped while sending.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The server closed the connection.
    Closed(CloseReason),
    /// The sink refused the frame.
    SinkFailed,
    /// The incoming stream failed.
    Transport(crate::error::BoxError),
}

/// Sends one item, giving up as soon as the connection is closed: a client that stops reading
/// blocks only its own driver, and only until the server closes it.
pub(crate) async fn send<K, T>(sink: &mut K, item: T, closer: &Closer) -> Result<(), Stop>
where
    K: Sink<T> + Unpin,
{
    tokio::select! {
        biased;
        reason = closer.closed() => Err(Stop::Closed(reason)),
        sent = sink.send(item) => sent.map_err(|_| Stop::SinkFailed),
    }
}
