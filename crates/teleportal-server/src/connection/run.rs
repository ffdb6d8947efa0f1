//! The run loop: reads the client's frames, sends broadcasts and answers in arrival order.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::{Sink, SinkExt, Stream, StreamExt};
use teleportal_core::Frame;

use crate::CloseReason;
use crate::peer::{SEND_BATCH, Stop, drain_batch, send, send_batch};

use super::in_flight::{InFlight, Next};
use super::{Connection, PARTS_IN_FLIGHT, PIPELINE};

impl Connection {
    pub(super) async fn run<S, K, E>(
        &mut self,
        incoming: &mut S,
        outgoing: &mut K,
    ) -> Result<(), Stop>
    where
        S: Stream<Item = Result<Frame, E>> + Send + Unpin,
        K: Sink<Frame> + Send + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let closer = Arc::clone(&self.registration.closer);
        // Consecutive updates are stored concurrently (up to `PIPELINE`) but relayed and
        // acknowledged in the order they came, as if handled one by one; any other message
        // waits until the updates before it are done, so it sees them stored.
        let mut storing: FuturesOrdered<BoxFuture<'static, InFlight>> = FuturesOrdered::new();
        let mut batch = Vec::with_capacity(SEND_BATCH);
        loop {
            // Unbiased on purpose: a steady stream of broadcasts must not starve the client's
            // own messages, nor the other way round. A close is also seen by every `send`.
            tokio::select! {
                reason = closer.closed() => {
                    if reason == CloseReason::ShuttingDown {
                        self.finish_storing(&mut storing, outgoing).await;
                    }
                    return Err(Stop::Closed(reason));
                }
                broadcast = self.registration.queue.recv() => {
                    // The registration holds a sender, so the queue never ends while we run.
                    drain_batch(broadcast, &mut self.registration.queue, |b| b.frame.clone(), &mut batch);
                    send_batch(outgoing, &mut batch, &closer).await?;
                }
                Some(done) = storing.next(), if !storing.is_empty() => {
                    for reply in self.finish(done).await {
                        send(outgoing, reply, &closer).await?;
                    }
                }
                item = incoming.next(), if storing.len() < PIPELINE && self.parts < PARTS_IN_FLIGHT => match item {
                    None => {
                        while let Some(done) = storing.next().await {
                            for reply in self.finish(done).await {
                                send(outgoing, reply, &closer).await?;
                            }
                        }
                        return Ok(());
                    }
                    Some(Err(error)) => return Err(Stop::incoming(error)),
                    Some(Ok(frame)) => {
                        let replies = match self.start(frame).await {
                            Next::Storing(store) => {
                                storing.push_back(store);
                                Vec::new()
                            }
                            next => {
                                while let Some(done) = storing.next().await {
                                    for reply in self.finish(done).await {
                                        send(outgoing, reply, &closer).await?;
                                    }
                                }
                                match next {
                                    Next::Other(frame) => self.handle(frame).await,
                                    Next::Replies(replies) => replies,
                                    Next::Storing(_) => Vec::new(),
                                }
                            }
                        };
                        for reply in replies {
                            send(outgoing, reply, &closer).await?;
                        }
                        // A streamed answer goes out part by part: one part in memory at a
                        // time, and the sink's backpressure paces the handler.
                        let streaming = self
                            .streaming
                            .get_mut()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .take();
                        if let Some(mut frames) = streaming {
                            while let Some(frame) = frames.next().await {
                                send(outgoing, frame, &closer).await?;
                            }
                        }
                        // A client that writes without pause would otherwise keep this task
                        // busy (its stream is always ready), starving the drivers that relay its
                        // updates to others on the same worker.
                        tokio::task::coop::consume_budget().await;
                    }
                },
            }
        }
    }

    /// At shutdown: lets the updates being stored finish and sends their ACKs (or NACKs),
    /// so a client is told about every update the store took. Stops early when the server's
    /// shutdown deadline passes or the client stops reading.
    async fn finish_storing<K>(
        &mut self,
        storing: &mut FuturesOrdered<BoxFuture<'static, InFlight>>,
        outgoing: &mut K,
    ) where
        K: Sink<Frame> + Send + Unpin,
    {
        let stop = self.registration.server.stop_token().clone();
        loop {
            let done = tokio::select! {
                biased;
                () = stop.cancelled() => return,
                done = storing.next() => done,
            };
            let Some(done) = done else {
                return;
            };
            for reply in self.finish(done).await {
                let sent = tokio::select! {
                    biased;
                    () = stop.cancelled() => return,
                    sent = outgoing.send(reply) => sent,
                };
                if sent.is_err() {
                    return;
                }
            }
        }
    }
}
