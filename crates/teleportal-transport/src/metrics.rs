//! A tap that counts messages, bytes and errors in each direction.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use futures::{Sink, Stream};
use pin_project_lite::pin_project;
use tower_layer::Layer;

use crate::{EncodedLen, TransportError};

#[derive(Debug, Default)]
struct Counters {
    messages_in: AtomicU64,
    bytes_in: AtomicU64,
    errors_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_out: AtomicU64,
    errors_out: AtomicU64,
}

/// Shared counters of one or many transports; cloning shares them.
///
/// Updates are relaxed atomic additions, cheap enough for every message. Read them with
/// [`snapshot`](Self::snapshot) and export them to whatever metrics system the server uses.
#[derive(Debug, Clone, Default)]
pub struct TransportMetrics {
    counters: Arc<Counters>,
}

/// The counters of a [`TransportMetrics`] at one moment.
///
/// Each field is read on its own, so a snapshot taken while messages flow may be off by the
/// messages in between.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Messages received.
    pub messages_in: u64,
    /// Encoded bytes of the messages received.
    pub bytes_in: u64,
    /// Errors while receiving, including messages rejected by an inner layer.
    pub errors_in: u64,
    /// Messages accepted for sending.
    pub messages_out: u64,
    /// Encoded bytes of the messages accepted for sending.
    pub bytes_out: u64,
    /// Errors while sending.
    pub errors_out: u64,
}

impl TransportMetrics {
    /// Fresh counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current counts.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let c = &self.counters;
        MetricsSnapshot {
            messages_in: c.messages_in.load(Ordering::Relaxed),
            bytes_in: c.bytes_in.load(Ordering::Relaxed),
            errors_in: c.errors_in.load(Ordering::Relaxed),
            messages_out: c.messages_out.load(Ordering::Relaxed),
            bytes_out: c.bytes_out.load(Ordering::Relaxed),
            errors_out: c.errors_out.load(Ordering::Relaxed),
        }
    }

    fn record_in(&self, len: usize) {
        self.counters.messages_in.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_in
            .fetch_add(len as u64, Ordering::Relaxed);
    }

    fn record_out(&self, len: usize) {
        self.counters.messages_out.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_out
            .fetch_add(len as u64, Ordering::Relaxed);
    }

    fn error_in(&self) {
        self.counters.errors_in.fetch_add(1, Ordering::Relaxed);
    }

    fn error_out(&self) {
        self.counters.errors_out.fetch_add(1, Ordering::Relaxed);
    }

    fn count_out<V>(&self, res: Result<V, TransportError>) -> Result<V, TransportError> {
        if res.is_err() {
            self.error_out();
        }
        res
    }
}

pin_project! {
    /// Counts what passes through a transport into a [`TransportMetrics`]: messages when the
    /// stream yields them or the sink accepts them, their [encoded size](EncodedLen), and
    /// errors either way.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use futures::{StreamExt, stream};
    /// use teleportal_transport::{Metered, TransportError, TransportMetrics};
    ///
    /// # futures::executor::block_on(async {
    /// let metrics = TransportMetrics::new();
    /// let incoming = stream::iter([Ok::<_, TransportError>(Bytes::from_static(b"abc"))]);
    /// let mut metered = Metered::new(incoming, metrics.clone());
    /// while metered.next().await.is_some() {}
    /// assert_eq!((metrics.snapshot().messages_in, metrics.snapshot().bytes_in), (1, 3));
    /// # });
    /// ```
    #[derive(Debug, Clone)]
    pub struct Metered<T> {
        #[pin]
        inner: T,
        metrics: TransportMetrics,
    }
}

impl<T> Metered<T> {
    /// Wraps `inner`, counting into `metrics`.
    pub fn new(inner: T, metrics: TransportMetrics) -> Self {
        Self { inner, metrics }
    }

    /// The counters this transport adds to.
    pub fn metrics(&self) -> &TransportMetrics {
        &self.metrics
    }

    /// The wrapped transport.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped transport, mutably; messages passing through it are not counted.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// The wrapped transport, pinned.
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Pin<&mut T> {
        self.project().inner
    }

    /// Unwraps the transport.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

// Forward everything, so a method added to the trait cannot fall through to a default.
#[deny(clippy::missing_trait_methods)]
impl<T, I, E> Stream for Metered<T>
where
    T: Stream<Item = Result<I, E>>,
    E: Into<TransportError>,
    I: EncodedLen,
{
    type Item = Result<I, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let item = ready!(this.inner.poll_next(cx));
        Poll::Ready(item.map(|res| match res {
            Ok(message) => {
                this.metrics.record_in(message.encoded_len());
                Ok(message)
            }
            Err(e) => {
                this.metrics.error_in();
                Err(e.into())
            }
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

// Forward everything, so a method added to the trait cannot fall through to a default.
#[deny(clippy::missing_trait_methods)]
impl<T, I> Sink<I> for Metered<T>
where
    T: Sink<I>,
    T::Error: Into<TransportError>,
    I: EncodedLen,
{
    type Error = TransportError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.project();
        let res = ready!(this.inner.poll_ready(cx)).map_err(Into::into);
        Poll::Ready(this.metrics.count_out(res))
    }

    fn start_send(self: Pin<&mut Self>, item: I) -> Result<(), Self::Error> {
        let this = self.project();
        let len = item.encoded_len();
        let res = this.inner.start_send(item).map_err(Into::into);
        if res.is_ok() {
            this.metrics.record_out(len);
        }
        this.metrics.count_out(res)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.project();
        let res = ready!(this.inner.poll_flush(cx)).map_err(Into::into);
        Poll::Ready(this.metrics.count_out(res))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.project();
        let res = ready!(this.inner.poll_close(cx)).map_err(Into::into);
        Poll::Ready(this.metrics.count_out(res))
    }
}

/// Applies [`Metered`] to a transport; every transport it wraps adds to the same counters.
#[derive(Debug, Clone, Default)]
pub struct MeteredLayer {
    metrics: TransportMetrics,
}

impl MeteredLayer {
    /// A layer counting into `metrics`.
    pub fn new(metrics: TransportMetrics) -> Self {
        Self { metrics }
    }
}

impl<T> Layer<T> for MeteredLayer {
    type Service = Metered<T>;

    fn layer(&self, inner: T) -> Metered<T> {
        Metered::new(inner, self.metrics.clone())
    }
}
