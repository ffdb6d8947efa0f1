//! One connection as sessions see it: a bounded queue of broadcasts and a way to close it.

use std::sync::{Arc, Mutex, PoisonError};

use futures::{Sink, SinkExt};
use teleportal_core::{Frame, YMessage};
use tokio::sync::{Notify, mpsc};

use crate::metrics::{Ended, ServerMetrics};
use crate::{CloseReason, ServerError};

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
                self.closer.close(CloseReason::SendQueueFull);
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

impl Stop {
    /// What a connection's run ending with `ended` returns to the transport, counted in the
    /// connection metrics: `Ok(None)` when the client left, the reason when the server closed
    /// it, the error when the transport failed.
    pub(crate) fn outcome(
        ended: Result<(), Stop>,
        metrics: &ServerMetrics,
    ) -> Result<Option<CloseReason>, ServerError> {
        match ended {
            Ok(()) => {
                metrics.connection_ended(Ended::Client);
                Ok(None)
            }
            Err(Stop::Closed(reason)) => {
                metrics.connection_ended(Ended::Closed(&reason));
                Ok(Some(reason))
            }
            Err(Stop::SinkFailed) => {
                metrics.connection_ended(Ended::Failed);
                Err(ServerError::Send)
            }
            Err(Stop::Transport(error)) => {
                metrics.connection_ended(Ended::Failed);
                Err(ServerError::Transport(error))
            }
        }
    }

    /// What an error item of the incoming stream ends: a layer's deliberate
    /// [`TransportError::Refused`](teleportal_transport::TransportError::Refused) is a close
    /// with its code and reason, anything else a failed transport.
    pub(crate) fn incoming<E: std::error::Error + Send + Sync + 'static>(error: E) -> Stop {
        let error: crate::error::BoxError = Box::new(error);
        match error.downcast::<teleportal_transport::TransportError>() {
            Ok(refused) => match *refused {
                teleportal_transport::TransportError::Refused { code, reason } => {
                    Stop::Closed(CloseReason::Other { code, reason })
                }
                other => Stop::Transport(Box::new(other)),
            },
            Err(other) => Stop::Transport(other),
        }
    }
}

/// The most queued broadcasts a driver writes before one flush: under load a driver drains
/// what piled up while it was busy and pays one flush (one syscall on a socket, one wakeup of
/// the reader) for all of them; a lone broadcast is still flushed at once.
pub(crate) const SEND_BATCH: usize = 64;

/// Takes what is already waiting in `queue`, after `first`, up to [`SEND_BATCH`] items in all,
/// keeping those `pick` maps to something to send.
pub(crate) fn drain_batch<T>(
    first: Option<Arc<Broadcast>>,
    queue: &mut mpsc::Receiver<Arc<Broadcast>>,
    pick: impl Fn(&Broadcast) -> Option<T>,
    batch: &mut Vec<T>,
) {
    batch.extend(first.as_deref().and_then(&pick));
    for _ in 1..SEND_BATCH {
        match queue.try_recv() {
            Ok(broadcast) => batch.extend(pick(&broadcast)),
            Err(_) => break,
        }
    }
}

/// Sends a batch with a single flush, giving up as soon as the connection is closed.
pub(crate) async fn send_batch<K, T>(
    sink: &mut K,
    batch: &mut Vec<T>,
    closer: &Closer,
) -> Result<(), Stop>
where
    K: Sink<T> + Unpin,
{
    let write = async {
        for item in batch.drain(..) {
            sink.feed(item).await?;
        }
        sink.flush().await
    };
    tokio::select! {
        biased;
        reason = closer.closed() => Err(Stop::Closed(reason)),
        sent = write => sent.map_err(|_| Stop::SinkFailed),
    }
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

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use teleportal_core::y_protocols::SyncMessage;

    use super::*;

    /// Records what it is given and how often it is flushed.
    #[derive(Default)]
    struct Recorder {
        items: Vec<YMessage>,
        flushes: usize,
    }

    impl Sink<YMessage> for Recorder {
        type Error = std::convert::Infallible;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn start_send(mut self: Pin<&mut Self>, item: YMessage) -> Result<(), Self::Error> {
            self.items.push(item);
            Ok(())
        }
        fn poll_flush(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
    }

    fn update(n: u8) -> Arc<Broadcast> {
        Arc::new(Broadcast {
            frame: None,
            y: Some(YMessage::Sync(SyncMessage::Update(Bytes::from(vec![n])))),
        })
    }

    #[tokio::test]
    async fn queued_broadcasts_go_out_in_order_with_one_flush_per_batch() {
        let (tx, mut rx) = mpsc::channel(256);
        let total = SEND_BATCH + 6;
        for n in 0..total {
            tx.try_send(update(u8::try_from(n).unwrap())).unwrap();
        }
        let closer = Closer::default();
        let mut sink = Recorder::default();
        let mut batch = Vec::new();
        while sink.items.len() < total {
            let first = rx.recv().await;
            drain_batch(first, &mut rx, |b| b.y.clone(), &mut batch);
            send_batch(&mut sink, &mut batch, &closer).await.unwrap();
        }
        let expected: Vec<YMessage> = (0..total)
            .map(|n| update(u8::try_from(n).unwrap()).y.clone().unwrap())
            .collect();
        assert_eq!(sink.items, expected);
        // A full batch, then the rest.
        assert_eq!(sink.flushes, 2);
    }

    #[tokio::test]
    async fn a_closed_connection_stops_a_batch() {
        let closer = Closer::default();
        closer.close(CloseReason::SendQueueFull);
        let mut sink = Recorder::default();
        let mut batch = vec![update(1).y.clone().unwrap()];
        let stopped = send_batch(&mut sink, &mut batch, &closer).await;
        assert!(matches!(stopped, Err(Stop::Closed(_))));
    }
}
