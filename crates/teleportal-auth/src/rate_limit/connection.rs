//! [`RateLimitLayer`]: one rate limit for every connection of a server, both protocols.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use futures::{Sink, Stream};
use pin_project_lite::pin_project;
use teleportal_core::{Frame, YMessage};
use teleportal_server::ClientContext;
use teleportal_server::layer::{BoxConnection, ConnectionLayer, TransportError};
use teleportal_server::prometheus_client::metrics::counter::Counter;
use teleportal_server::prometheus_client::registry::Registry;

use super::layer::OnViolation;
use super::{DebugFuture, RateLimitCheck, RateLimitExceeded, RateLimited, RateLimiter};

/// RFC 6455 "policy violation": the client broke a rule and should not simply reconnect and
/// repeat.
const POLICY_VIOLATION: u16 = 1008;

impl From<RateLimitExceeded> for TransportError {
    fn from(exceeded: RateLimitExceeded) -> Self {
        TransportError::Refused {
            code: POLICY_VIOLATION,
            reason: exceeded.to_string(),
        }
    }
}

/// Rate limits every connection it is applied to, against one shared [`RateLimiter`]
/// ([`MemoryRateLimiter`](super::MemoryRateLimiter), or Redis for several nodes), keyed by the
/// connection's user (its client id when anonymous), a connection number and the document.
///
/// - **Teleportal** connections: a message over a limit gets a NACK with `retryAfter` and
///   never reaches the engine ([`RateLimited`]; acks and pings are free).
/// - **y-websocket** connections: y-protocols has no acks to NACK with, and dropping an update
///   would leave the client diverged until it reconnects, so a message over a limit is held
///   back for its `retryAfter` (nothing more is read meanwhile, so TCP slows the sender),
///   then counted again and handled ([`HeldBack`]).
///
/// For both, the violation after `max_violations` ends the connection with close code 1008
/// ("policy violation") and the reason, as [`TransportError::Refused`].
///
/// ```
/// use std::sync::Arc;
/// use teleportal_auth::{MemoryRateLimiter, RateLimitLayer, RateLimitRule};
/// use teleportal_server::layer::ConnectionLayers;
///
/// let limiter = MemoryRateLimiter::new(vec![RateLimitRule::per_user_per_second(20)]);
/// let layers = ConnectionLayers::new().with(RateLimitLayer::new(Arc::new(limiter), 50));
/// assert_eq!(layers.len(), 1);
/// ```
#[derive(Debug)]
pub struct RateLimitLayer {
    limiter: Arc<dyn RateLimiter>,
    max_violations: u32,
    /// Numbers connections, for rules keyed by connection.
    connections: AtomicU64,
    metrics: Option<RateLimitMetrics>,
}

/// The layer's counters, with the reference's names.
#[derive(Debug, Clone, Default)]
struct RateLimitMetrics {
    exceeded: Counter,
    delayed: Counter,
    delay_ms: Counter,
}

impl RateLimitLayer {
    /// Counts against `limiter`, disconnecting at the violation after `max_violations`.
    pub fn new(limiter: Arc<dyn RateLimiter>, max_violations: u32) -> Self {
        Self {
            limiter,
            max_violations,
            connections: AtomicU64::new(0),
            metrics: None,
        }
    }

    /// Counts in `registry` (prefix `teleportal_`): `rate_limit_exceeded_total`, messages
    /// over the limit (NACKed or held back); `rate_limit_delayed_total`, y-websocket messages
    /// held back; `rate_limit_delay_ms_total`, how long they were held, in milliseconds.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use teleportal_auth::{MemoryRateLimiter, RateLimitLayer, RateLimitRule};
    /// use teleportal_server::prometheus_client::registry::Registry;
    ///
    /// let mut registry = Registry::default();
    /// let limiter = MemoryRateLimiter::new(vec![RateLimitRule::per_user_per_second(20)]);
    /// let layer = RateLimitLayer::new(Arc::new(limiter), 50).with_metrics(&mut registry);
    /// let mut text = String::new();
    /// teleportal_server::prometheus_client::encoding::text::encode(&mut text, &registry)?;
    /// assert!(text.contains("teleportal_rate_limit_exceeded_total 0"));
    /// # drop(layer);
    /// # Ok::<(), std::fmt::Error>(())
    /// ```
    #[must_use]
    pub fn with_metrics(mut self, registry: &mut Registry) -> Self {
        let metrics = RateLimitMetrics::default();
        let registry = registry.sub_registry_with_prefix("teleportal");
        registry.register(
            "rate_limit_exceeded",
            "Messages over the rate limit (NACKed, or held back for y-websocket)",
            metrics.exceeded.clone(),
        );
        registry.register(
            "rate_limit_delayed",
            "y-websocket messages held back by the rate limit",
            metrics.delayed.clone(),
        );
        registry.register(
            "rate_limit_delay_ms",
            "Milliseconds y-websocket messages were held back by the rate limit",
            metrics.delay_ms.clone(),
        );
        self.metrics = Some(metrics);
        self
    }

    /// What a Teleportal connection counts at each refusal.
    fn nack_hook(&self) -> OnViolation {
        match &self.metrics {
            Some(metrics) => {
                let exceeded = metrics.exceeded.clone();
                OnViolation::new(move |_, _| {
                    exceeded.inc();
                })
            }
            None => OnViolation::default(),
        }
    }

    /// What a y-websocket connection counts at each hold.
    fn hold_hook(&self) -> OnViolation {
        match &self.metrics {
            Some(metrics) => {
                let metrics = metrics.clone();
                OnViolation::new(move |wait, held| {
                    metrics.exceeded.inc();
                    if held {
                        metrics.delayed.inc();
                        metrics
                            .delay_ms
                            .inc_by(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
                    }
                })
            }
            None => OnViolation::default(),
        }
    }

    fn user(client: &ClientContext) -> Arc<str> {
        Arc::from(client.user.as_deref().unwrap_or(&client.client_id))
    }

    fn next_connection(&self) -> u64 {
        self.connections.fetch_add(1, Ordering::Relaxed)
    }
}

impl ConnectionLayer for RateLimitLayer {
    fn teleportal<'a>(
        &self,
        client: &ClientContext,
        connection: BoxConnection<'a, Frame>,
    ) -> BoxConnection<'a, Frame> {
        Box::pin(
            RateLimited::new(
                connection,
                Arc::clone(&self.limiter),
                Self::user(client),
                self.next_connection(),
                self.max_violations,
            )
            .on_violation(self.nack_hook()),
        )
    }

    fn y_websocket<'a>(
        &self,
        client: &ClientContext,
        document: &str,
        connection: BoxConnection<'a, YMessage>,
    ) -> BoxConnection<'a, YMessage> {
        Box::pin(
            HeldBack::new(
                connection,
                Arc::clone(&self.limiter),
                Self::user(client),
                self.next_connection(),
                document,
                self.max_violations,
            )
            .on_violation(self.hold_hook()),
        )
    }
}

/// Where a held message is.
enum Hold {
    /// Nothing held: read the next message.
    Idle,
    /// Waiting for a remote limiter's decision.
    Checking(YMessage, DebugFuture),
    /// Over the limit: waiting out its `retryAfter`.
    Waiting(YMessage, Pin<Box<tokio::time::Sleep>>),
}

pin_project! {
    /// The y-websocket half of [`RateLimitLayer`]: counts every incoming message of one
    /// connection to one document, holds a message over the limit back for its `retryAfter`
    /// and counts it again, and yields [`RateLimitExceeded`] (as
    /// [`TransportError::Refused`]) at the violation after `max_violations`. Outgoing
    /// messages pass through. Needs a tokio runtime with time enabled.
    pub struct HeldBack<T> {
        #[pin]
        inner: T,
        limiter: Arc<dyn RateLimiter>,
        user: Arc<str>,
        connection: u64,
        document: String,
        max_violations: u32,
        violations: u32,
        hold: Hold,
        on_violation: OnViolation,
    }
}

impl<T> std::fmt::Debug for HeldBack<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldBack")
            .field("user", &self.user)
            .field("document", &self.document)
            .field("violations", &self.violations)
            .finish_non_exhaustive()
    }
}

impl<T> HeldBack<T> {
    /// Wraps `inner`, connection `connection` of `user` to `document`.
    pub fn new(
        inner: T,
        limiter: Arc<dyn RateLimiter>,
        user: impl Into<Arc<str>>,
        connection: u64,
        document: impl Into<String>,
        max_violations: u32,
    ) -> Self {
        Self {
            inner,
            limiter,
            user: user.into(),
            connection,
            document: document.into(),
            max_violations,
            violations: 0,
            hold: Hold::Idle,
            on_violation: OnViolation::default(),
        }
    }

    /// Calls `hook` at each message over the limit, with how long it is held.
    pub(crate) fn on_violation(mut self, hook: OnViolation) -> Self {
        self.on_violation = hook;
        self
    }

    /// Messages over the limit so far on this connection.
    pub fn violations(&self) -> u32 {
        self.violations
    }
}

// Forward everything, so a method added to the trait cannot fall through to a default.
#[deny(clippy::missing_trait_methods)]
impl<T> Stream for HeldBack<T>
where
    T: Stream<Item = Result<YMessage, TransportError>>,
{
    type Item = Result<YMessage, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            let (message, decision) = match std::mem::replace(this.hold, Hold::Idle) {
                Hold::Idle => {
                    let message = match ready!(this.inner.as_mut().poll_next(cx)) {
                        Some(Ok(message)) => message,
                        other => return Poll::Ready(other),
                    };
                    match this
                        .limiter
                        .take(this.user, *this.connection, this.document)
                    {
                        RateLimitCheck::Done(decision) => (message, decision),
                        RateLimitCheck::Pending(pending) => {
                            *this.hold = Hold::Checking(message, pending);
                            continue;
                        }
                    }
                }
                Hold::Checking(message, mut pending) => match pending.0.as_mut().poll(cx) {
                    Poll::Ready(decision) => (message, decision),
                    Poll::Pending => {
                        *this.hold = Hold::Checking(message, pending);
                        return Poll::Pending;
                    }
                },
                Hold::Waiting(message, mut sleep) => {
                    if sleep.as_mut().poll(cx).is_pending() {
                        *this.hold = Hold::Waiting(message, sleep);
                        return Poll::Pending;
                    }
                    // A held message spends its budget like any other.
                    match this
                        .limiter
                        .take(this.user, *this.connection, this.document)
                    {
                        RateLimitCheck::Done(decision) => (message, decision),
                        RateLimitCheck::Pending(pending) => {
                            *this.hold = Hold::Checking(message, pending);
                            continue;
                        }
                    }
                }
            };
            let Err(wait) = decision else {
                return Poll::Ready(Some(Ok(message)));
            };
            *this.violations = this.violations.saturating_add(1);
            let goes_on = *this.violations <= *this.max_violations;
            this.on_violation.call(wait, goes_on);
            if !goes_on {
                let exceeded = RateLimitExceeded {
                    violations: *this.violations,
                };
                return Poll::Ready(Some(Err(exceeded.into())));
            }
            *this.hold = Hold::Waiting(message, Box::pin(tokio::time::sleep(wait)));
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let held = usize::from(!matches!(self.hold, Hold::Idle));
        let (low, high) = self.inner.size_hint();
        (low, high.and_then(|h| h.checked_add(held)))
    }
}

// Forward everything, so a method added to the trait cannot fall through to a default.
#[deny(clippy::missing_trait_methods)]
impl<T, I> Sink<I> for HeldBack<T>
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
    use std::time::Duration;

    use bytes::Bytes;
    use futures::{StreamExt, channel::mpsc};
    use teleportal_core::YMessage;

    use super::*;
    use crate::{MemoryRateLimiter, RateLimitRule};

    fn update() -> YMessage {
        YMessage::decode(Bytes::from_static(&[0, 2, 2, 0, 0])).expect("a y-protocols update")
    }

    // Real time: the memory limiter reads the system clock, not tokio's.
    #[tokio::test]
    async fn over_the_limit_is_held_back_then_handled_then_refused() {
        let limiter = Arc::new(MemoryRateLimiter::new(vec![
            RateLimitRule::per_user_per_second(1),
        ]));
        let (tx, rx) = mpsc::unbounded::<Result<YMessage, TransportError>>();
        let mut held = HeldBack::new(rx, limiter, "alice", 1, "doc", 1);
        for _ in 0..3 {
            tx.unbounded_send(Ok(update())).unwrap();
        }
        let start = tokio::time::Instant::now();
        assert_eq!(held.next().await.transpose().unwrap(), Some(update()));
        // The second waits out its retryAfter instead of being dropped.
        assert_eq!(held.next().await.transpose().unwrap(), Some(update()));
        assert!(start.elapsed() >= Duration::from_millis(900));
        assert_eq!(held.violations(), 1);
        // The third's violation is one too many.
        let refused = held.next().await.unwrap().unwrap_err();
        let TransportError::Refused { code, reason } = refused else {
            panic!("not refused: {refused:?}");
        };
        assert_eq!(code, 1008);
        assert_eq!(reason, "rate limit exceeded 2 times");
    }

    #[tokio::test]
    async fn errors_and_the_end_pass_through() {
        let limiter = Arc::new(MemoryRateLimiter::new(vec![
            RateLimitRule::per_user_per_second(1),
        ]));
        let (tx, rx) = mpsc::unbounded::<Result<YMessage, TransportError>>();
        let mut held = HeldBack::new(rx, limiter, "alice", 1, "doc", 0);
        tx.unbounded_send(Err(TransportError::Closed)).unwrap();
        drop(tx);
        assert!(matches!(
            held.next().await,
            Some(Err(TransportError::Closed))
        ));
        assert!(held.next().await.is_none());
    }
}
