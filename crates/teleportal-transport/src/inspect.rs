//! A tap that shows every message passing through a transport to a callback.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures::{Sink, Stream};
use pin_project_lite::pin_project;
use tower_layer::Layer;

use crate::TransportError;

/// Which way a message travels, seen from this side of the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received from the peer.
    Incoming,
    /// Sent to the peer.
    Outgoing,
}

/// One message seen by an [`Inspect`] tap.
#[derive(Debug)]
#[non_exhaustive]
pub struct Inspection<'a, I> {
    /// Which way the message travels.
    pub direction: Direction,
    /// The connection's client id, as given to the layer.
    pub client_id: &'a str,
    /// The message.
    pub message: &'a I,
}

pin_project! {
    /// Calls `F` with an [`Inspection`] for every message received (when the stream yields it)
    /// and every message sent (when the sink accepts it). Errors are not messages and are not
    /// shown; stack [`Metered`](crate::Metered) to count them.
    ///
    /// The callback runs inline on the connection's task: keep it short (log, count, forward to
    /// a channel).
    ///
    /// ```
    /// use futures::{StreamExt, stream};
    /// use teleportal_core::Frame;
    /// use teleportal_transport::{Direction, Inspect, TransportError};
    ///
    /// # futures::executor::block_on(async {
    /// let incoming = stream::iter([Ok::<_, TransportError>(Frame::Ping)]);
    /// let mut tapped = Inspect::new(incoming, "client-1", |seen: &teleportal_transport::Inspection<'_, Frame>| {
    ///     assert_eq!((seen.direction, seen.client_id), (Direction::Incoming, "client-1"));
    /// });
    /// assert!(tapped.next().await.is_some());
    /// # });
    /// ```
    pub struct Inspect<T, F> {
        #[pin]
        inner: T,
        client_id: Arc<str>,
        inspect: Arc<F>,
    }
}

impl<T, F> Inspect<T, F> {
    /// Wraps `inner`, showing its messages to `inspect` as those of `client_id`.
    pub fn new(inner: T, client_id: impl Into<Arc<str>>, inspect: F) -> Self {
        Self::with_shared(inner, client_id.into(), Arc::new(inspect))
    }

    fn with_shared(inner: T, client_id: Arc<str>, inspect: Arc<F>) -> Self {
        Self {
            inner,
            client_id,
            inspect,
        }
    }

    /// The client id given to the callback.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The wrapped transport.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped transport, mutably; messages passing through it are not shown.
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

impl<T: fmt::Debug, F> fmt::Debug for Inspect<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inspect")
            .field("inner", &self.inner)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

// Forward everything, so a method added to the trait cannot fall through to a default.
#[deny(clippy::missing_trait_methods)]
impl<T, I, E, F> Stream for Inspect<T, F>
where
    T: Stream<Item = Result<I, E>>,
    E: Into<TransportError>,
    F: Fn(&Inspection<'_, I>),
{
    type Item = Result<I, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let item = ready!(this.inner.poll_next(cx));
        Poll::Ready(item.map(|res| {
            let message = res.map_err(Into::into)?;
            (this.inspect)(&Inspection {
                direction: Direction::Incoming,
                client_id: this.client_id,
                message: &message,
            });
            Ok(message)
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

// Forward everything, so a method added to the trait cannot fall through to a default.
#[deny(clippy::missing_trait_methods)]
impl<T, I, F> Sink<I> for Inspect<T, F>
where
    T: Sink<I>,
    T::Error: Into<TransportError>,
    F: Fn(&Inspection<'_, I>),
{
    type Error = TransportError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.project().inner.poll_ready(cx).map_err(Into::into)
    }

    fn start_send(self: Pin<&mut Self>, item: I) -> Result<(), Self::Error> {
        let this = self.project();
        // Shown before handing over, since the inner sink takes ownership; a message the
        // inner sink then refuses was still offered on the wire's behalf.
        (this.inspect)(&Inspection {
            direction: Direction::Outgoing,
            client_id: this.client_id,
            message: &item,
        });
        this.inner.start_send(item).map_err(Into::into)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.project().inner.poll_flush(cx).map_err(Into::into)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.project().inner.poll_close(cx).map_err(Into::into)
    }
}

/// Applies [`Inspect`] to a transport; the callback is shared by every transport it wraps.
pub struct InspectLayer<F> {
    client_id: Arc<str>,
    inspect: Arc<F>,
}

impl<F> InspectLayer<F> {
    /// A layer showing messages to `inspect` as those of `client_id`.
    pub fn new(client_id: impl Into<Arc<str>>, inspect: F) -> Self {
        Self {
            client_id: client_id.into(),
            inspect: Arc::new(inspect),
        }
    }
}

// Manual impls: the callback need not be `Clone` or `Debug`.
impl<F> Clone for InspectLayer<F> {
    fn clone(&self) -> Self {
        Self {
            client_id: Arc::clone(&self.client_id),
            inspect: Arc::clone(&self.inspect),
        }
    }
}

impl<F> fmt::Debug for InspectLayer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InspectLayer")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl<T, F> Layer<T> for InspectLayer<F> {
    type Service = Inspect<T, F>;

    fn layer(&self, inner: T) -> Inspect<T, F> {
        Inspect::with_shared(
            inner,
            Arc::clone(&self.client_id),
            Arc::clone(&self.inspect),
        )
    }
}
