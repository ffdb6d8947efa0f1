//! [`RateLimited`]: the transport layer that applies a [`RateLimiter`] per message.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures::{Sink, Stream};
use pin_project_lite::pin_project;
use teleportal_core::{AckMessage, Body, Frame, Message};

use super::{DebugFuture, RateLimitCheck, RateLimiter};

/// A connection exceeded its rate limit more often than allowed and is being disconnected.
///
/// [`RateLimited`] yields it (converted into the transport's error type) as its last item;
/// the `Display` text is meant as the close reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate limit exceeded {violations} times")]
pub struct RateLimitExceeded {
    /// How many messages were refused on this connection.
    pub violations: u32,
}

pin_project! {
    /// Counts every incoming message but acks (ACKs, pings and pongs are free) against a
    /// shared [`RateLimiter`] ([`MemoryRateLimiter`](super::MemoryRateLimiter) or, with the
    /// `redis` feature, `RedisRateLimiter`); a message over the limit is dropped and answered on the
    /// same transport with the spec's NACK carrying `retryAfter` in milliseconds (§7), and
    /// the violation that goes past `max_violations` yields [`RateLimitExceeded`] instead, so
    /// the server ends the connection with that reason. Other connections are untouched:
    /// only their shared keys (user, document) share a budget.
    ///
    /// The wrapped value is both the incoming `Stream` of frames and the outgoing `Sink`, so
    /// the NACK goes out in order with the server's own answers; split it
    /// (`futures::StreamExt::split`) to hand the halves to the engine. While a NACK waits for
    /// the sink, no further message is read: a flooding client is slowed to the pace at which
    /// it reads its NACKs.
    ///
    /// A server applies it to every connection through `RateLimitLayer` (feature `server`);
    /// by hand:
    ///
    /// ```
    /// use std::sync::Arc;
    /// use teleportal_auth::{MemoryRateLimiter, RateLimitRule, RateLimited};
    ///
    /// let limiter = Arc::new(MemoryRateLimiter::new(vec![RateLimitRule::per_user_per_second(50)]));
    /// # fn transport() -> futures::channel::mpsc::UnboundedSender<teleportal_core::Frame> {
    /// #     futures::channel::mpsc::unbounded().0
    /// # }
    /// // Who the connection is, a connection number, and 10 violations before disconnecting.
    /// let limited = RateLimited::new(transport(), limiter, "alice", 1, 10);
    /// assert_eq!(limited.violations(), 0);
    /// ```
    #[derive(Debug)]
    pub struct RateLimited<T> {
        #[pin]
        inner: T,
        limiter: Arc<dyn RateLimiter>,
        user: Arc<str>,
        connection: u64,
        max_violations: u32,
        violations: u32,
        // A message whose decision is being awaited (remote limiters).
        checking: Option<(Message, DebugFuture)>,
        // A NACK waiting for the sink.
        pending: Option<Frame>,
        // A NACK was sent and not flushed yet.
        flushing: bool,
        on_violation: OnViolation,
    }
}

/// Called at each message over the limit with its wait and whether the connection goes on
/// (`false` for the violation that ends it): how [`RateLimitLayer`](crate::RateLimitLayer)
/// counts violations in its metrics.
#[derive(Clone, Default)]
pub(crate) struct OnViolation(Option<Arc<dyn Fn(std::time::Duration, bool) + Send + Sync>>);

impl std::fmt::Debug for OnViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "OnViolation(set)"
        } else {
            "OnViolation(none)"
        })
    }
}

impl OnViolation {
    #[cfg(feature = "server")]
    pub(crate) fn new(hook: impl Fn(std::time::Duration, bool) + Send + Sync + 'static) -> Self {
        OnViolation(Some(Arc::new(hook)))
    }

    pub(crate) fn call(&self, wait: std::time::Duration, goes_on: bool) {
        if let Some(hook) = &self.0 {
            hook(wait, goes_on);
        }
    }
}

impl<T> RateLimited<T> {
    /// Wraps `inner`, the transport of connection `connection` of `user`, counting against
    /// `limiter` and disconnecting at the violation after `max_violations`.
    pub fn new(
        inner: T,
        limiter: Arc<dyn RateLimiter>,
        user: impl Into<Arc<str>>,
        connection: u64,
        max_violations: u32,
    ) -> Self {
        Self {
            inner,
            limiter,
            user: user.into(),
            connection,
            max_violations,
            violations: 0,
            checking: None,
            pending: None,
            flushing: false,
            on_violation: OnViolation::default(),
        }
    }

    /// Calls `hook` at each refused message.
    #[cfg(feature = "server")]
    pub(crate) fn on_violation(mut self, hook: OnViolation) -> Self {
        self.on_violation = hook;
        self
    }

    /// Messages refused so far on this connection.
    pub fn violations(&self) -> u32 {
        self.violations
    }

    /// The wrapped transport.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped transport, mutably; messages read through it are not counted.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Unwraps the transport (a NACK not yet sent is dropped).
    pub fn into_inner(self) -> T {
        self.inner
    }
}

// Forward everything, so a method added to the trait cannot fall through to a default.
#[deny(clippy::missing_trait_methods)]
impl<T, E> Stream for RateLimited<T>
where
    T: Stream<Item = Result<Frame, E>> + Sink<Frame>,
    E: From<RateLimitExceeded>,
{
    type Item = Result<Frame, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            if let Some(nack) = this.pending.take() {
                match this.inner.as_mut().poll_ready(cx) {
                    Poll::Ready(Ok(())) => {
                        // A failing sink is the engine's to find on its next send.
                        *this.flushing = this.inner.as_mut().start_send(nack).is_ok();
                    }
                    // Same: the NACK is lost with the sink.
                    Poll::Ready(Err(_)) => {}
                    Poll::Pending => {
                        *this.pending = Some(nack);
                        return Poll::Pending;
                    }
                }
            }
            if *this.flushing && this.inner.as_mut().poll_flush(cx).is_ready() {
                *this.flushing = false;
            }
            let (message, decision) = match this.checking.take() {
                Some((message, mut pending)) => match pending.0.as_mut().poll(cx) {
                    Poll::Ready(decision) => (message, decision),
                    Poll::Pending => {
                        *this.checking = Some((message, pending));
                        return Poll::Pending;
                    }
                },
                None => {
                    let message = match ready!(this.inner.as_mut().poll_next(cx)) {
                        Some(Ok(Frame::Message(message)))
                            if !matches!(message.body, Body::Ack(_)) =>
                        {
                            message
                        }
                        other => return Poll::Ready(other),
                    };
                    let check = this
                        .limiter
                        .take(this.user, *this.connection, &message.document);
                    match check {
                        RateLimitCheck::Done(decision) => (message, decision),
                        RateLimitCheck::Pending(pending) => {
                            *this.checking = Some((message, pending));
                            continue;
                        }
                    }
                }
            };
            let Err(wait) = decision else {
                return Poll::Ready(Some(Ok(Frame::Message(message))));
            };
            *this.violations = this.violations.saturating_add(1);
            let goes_on = *this.violations <= *this.max_violations;
            this.on_violation.call(wait, goes_on);
            if !goes_on {
                return Poll::Ready(Some(Err(E::from(RateLimitExceeded {
                    violations: *this.violations,
                }))));
            }
            // At least 1 ms: `retryAfter: 0` would invite an immediate retry.
            let retry_after = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
            *this.pending = Some(Frame::Message(Message::ack(AckMessage::retry_after(
                message.id(),
                retry_after,
            ))));
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Refused messages are dropped, so nothing is promised.
        (0, self.inner.size_hint().1)
    }
}

// Forward everything, so a method added to the trait cannot fall through to a default.
#[deny(clippy::missing_trait_methods)]
impl<T, I> Sink<I> for RateLimited<T>
where
    T: Sink<I>,
{
    type Error = T::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.project().inner.poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: I) -> Result<(), Self::Error> {
        self.project().inner.start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.project().inner.poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use futures::channel::mpsc;
    use futures::{SinkExt, StreamExt};
    use teleportal_core::DocMessage;

    use super::*;
    use crate::{MemoryRateLimiter, RateLimitRule};

    #[derive(Debug, PartialEq)]
    struct Failed(RateLimitExceeded);

    impl From<RateLimitExceeded> for Failed {
        fn from(e: RateLimitExceeded) -> Self {
            Failed(e)
        }
    }

    pin_project! {
        /// A stream and a sink as one transport.
        struct Joined<S, K> {
            #[pin]
            stream: S,
            #[pin]
            sink: K,
        }
    }

    impl<S: Stream, K> Stream for Joined<S, K> {
        type Item = S::Item;
        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
            self.project().stream.poll_next(cx)
        }
    }

    impl<S, K: Sink<Frame>> Sink<Frame> for Joined<S, K> {
        type Error = K::Error;
        fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), K::Error>> {
            self.project().sink.poll_ready(cx)
        }
        fn start_send(self: Pin<&mut Self>, item: Frame) -> Result<(), K::Error> {
            self.project().sink.start_send(item)
        }
        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), K::Error>> {
            self.project().sink.poll_flush(cx)
        }
        fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), K::Error>> {
            self.project().sink.poll_close(cx)
        }
    }

    fn sync_done(document: &str) -> Frame {
        Frame::Message(Message::doc(document, DocMessage::SyncDone))
    }

    #[test]
    fn over_the_limit_is_nacked_with_retry_after_then_disconnected() {
        futures::executor::block_on(async {
            let limiter = Arc::new(MemoryRateLimiter::new(vec![
                RateLimitRule::per_user_per_second(1),
            ]));
            let (mut client_tx, server_rx) = mpsc::unbounded::<Frame>();
            let (server_tx, mut client_rx) = mpsc::unbounded::<Frame>();
            let transport = Joined {
                stream: server_rx.map(Ok::<_, Failed>),
                sink: server_tx,
            };
            let mut limited = RateLimited::new(transport, limiter, "alice", 1, 1);
            for _ in 0..3 {
                client_tx.send(sync_done("d")).await.unwrap();
            }
            assert_eq!(limited.next().await, Some(Ok(sync_done("d"))));
            // The second is refused (violation 1 of 1 allowed), the third disconnects.
            assert_eq!(
                limited.next().await,
                Some(Err(Failed(RateLimitExceeded { violations: 2 })))
            );
            let Some(Frame::Message(nack)) = client_rx.next().await else {
                panic!("expected a NACK");
            };
            let Body::Ack(ack) = nack.body else {
                panic!("expected an ack, got {nack:?}");
            };
            assert_eq!(
                ack.message_id,
                Message::doc("d", DocMessage::SyncDone).id().to_string()
            );
            let retry = ack.retry_after.expect("retryAfter");
            assert!((1..=1000).contains(&retry), "{retry}");
            assert_eq!(ack.error, None);
        });
    }

    /// A remote-like limiter: every decision is a future; every second message is refused.
    #[derive(Debug, Default)]
    struct Alternating(std::sync::atomic::AtomicU32);

    impl RateLimiter for Alternating {
        fn take(&self, _user: &str, _connection: u64, _document: &str) -> RateLimitCheck {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let decision = if n.is_multiple_of(2) {
                Ok(())
            } else {
                Err(std::time::Duration::from_millis(250))
            };
            RateLimitCheck::Pending(DebugFuture(Box::pin(async move {
                // Yield once so the layer really sees Pending first.
                let mut yielded = false;
                futures::future::poll_fn(|cx| {
                    if yielded {
                        Poll::Ready(())
                    } else {
                        yielded = true;
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                })
                .await;
                decision
            })))
        }
    }

    #[test]
    fn pending_decisions_are_awaited_in_order() {
        futures::executor::block_on(async {
            let (mut client_tx, server_rx) = mpsc::unbounded::<Frame>();
            let (server_tx, mut client_rx) = mpsc::unbounded::<Frame>();
            let transport = Joined {
                stream: server_rx.map(Ok::<_, Failed>),
                sink: server_tx,
            };
            let limiter = Arc::new(Alternating::default());
            let mut limited = RateLimited::new(transport, limiter, "alice", 1, 10);
            client_tx.send(sync_done("a")).await.unwrap();
            client_tx.send(sync_done("b")).await.unwrap();
            client_tx.send(sync_done("c")).await.unwrap();
            assert_eq!(limited.next().await, Some(Ok(sync_done("a"))));
            // "b" is refused with a NACK, "c" passes.
            assert_eq!(limited.next().await, Some(Ok(sync_done("c"))));
            assert_eq!(limited.violations(), 1);
            let Some(Frame::Message(nack)) = client_rx.next().await else {
                panic!("expected a NACK");
            };
            assert!(matches!(nack.body, Body::Ack(ack) if ack.retry_after == Some(250)));
        });
    }

    #[test]
    fn acks_and_pings_are_free() {
        futures::executor::block_on(async {
            let limiter = Arc::new(MemoryRateLimiter::new(vec![
                RateLimitRule::per_user_per_second(1),
            ]));
            let (mut client_tx, server_rx) = mpsc::unbounded::<Frame>();
            let (server_tx, _client_rx) = mpsc::unbounded::<Frame>();
            let transport = Joined {
                stream: server_rx.map(Ok::<_, Failed>),
                sink: server_tx,
            };
            let mut limited = RateLimited::new(transport, limiter, "alice", 1, 0);
            let ack = Frame::Message(Message::ack(AckMessage::retry_after(
                Message::doc("d", DocMessage::SyncDone).id(),
                1,
            )));
            for _ in 0..5 {
                client_tx.send(ack.clone()).await.unwrap();
                client_tx.send(Frame::Ping).await.unwrap();
            }
            for _ in 0..5 {
                assert_eq!(limited.next().await, Some(Ok(ack.clone())));
                assert_eq!(limited.next().await, Some(Ok(Frame::Ping)));
            }
        });
    }
}
