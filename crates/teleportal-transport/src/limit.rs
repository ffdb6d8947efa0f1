//! Rejects incoming messages above a size limit.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::{Sink, Stream};
use pin_project_lite::pin_project;
use tower_layer::Layer;

use crate::{EncodedLen, TransportError};

pin_project! {
    /// Turns each incoming item whose [encoded size](EncodedLen) exceeds `max` bytes into a
    /// [`TransportError::MessageTooLarge`]; the stream goes on with the next item. Outgoing
    /// items pass through unchecked: what this side sends is its own business.
    ///
    /// Below a WebSocket decoder ([`WsFramed`](crate::ws::WsFramed)) it checks the received
    /// payload before any decoding; above it, it re-encodes each message to measure it.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use futures::{StreamExt, stream};
    /// use teleportal_transport::{MaxMessageSize, TransportError};
    ///
    /// # futures::executor::block_on(async {
    /// let items = stream::iter([Bytes::from_static(b"ok"), Bytes::from_static(b"too long")]);
    /// let mut limited = MaxMessageSize::new(items.map(Ok::<_, TransportError>), 4);
    /// assert_eq!(limited.next().await.transpose()?, Some(Bytes::from_static(b"ok")));
    /// let err = limited.next().await.unwrap().unwrap_err();
    /// assert_eq!(err.to_string(), "message-too-large: 8 > 4 bytes");
    /// # Ok::<(), TransportError>(()) }).unwrap();
    /// ```
    #[derive(Debug, Clone)]
    pub struct MaxMessageSize<T> {
        #[pin]
        inner: T,
        max: usize,
    }
}

impl<T> MaxMessageSize<T> {
    /// Wraps `inner`, accepting incoming items of at most `max` bytes.
    pub fn new(inner: T, max: usize) -> Self {
        Self { inner, max }
    }

    /// The largest accepted encoded size.
    pub fn max(&self) -> usize {
        self.max
    }

    /// The wrapped transport.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped transport, mutably; items read through it are not checked.
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
impl<T, I, E> Stream for MaxMessageSize<T>
where
    T: Stream<Item = Result<I, E>>,
    E: Into<TransportError>,
    I: EncodedLen,
{
    type Item = Result<I, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let item = ready!(this.inner.poll_next(cx));
        Poll::Ready(item.map(|res| {
            let item = res.map_err(Into::into)?;
            let size = item.encoded_len();
            if size > *this.max {
                return Err(TransportError::MessageTooLarge {
                    size: size as u64,
                    max: *this.max,
                });
            }
            Ok(item)
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

// Forward everything, so a method added to the trait cannot fall through to a default.
#[deny(clippy::missing_trait_methods)]
impl<T, I> Sink<I> for MaxMessageSize<T>
where
    T: Sink<I>,
    T::Error: Into<TransportError>,
{
    type Error = TransportError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.project().inner.poll_ready(cx).map_err(Into::into)
    }

    fn start_send(self: Pin<&mut Self>, item: I) -> Result<(), Self::Error> {
        self.project().inner.start_send(item).map_err(Into::into)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.project().inner.poll_flush(cx).map_err(Into::into)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.project().inner.poll_close(cx).map_err(Into::into)
    }
}

/// Applies [`MaxMessageSize`] to a transport.
#[derive(Debug, Clone, Copy)]
pub struct MaxMessageSizeLayer {
    max: usize,
}

impl MaxMessageSizeLayer {
    /// A layer accepting incoming items of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Self { max }
    }
}

impl<T> Layer<T> for MaxMessageSizeLayer {
    type Service = MaxMessageSize<T>;

    fn layer(&self, inner: T) -> MaxMessageSize<T> {
        MaxMessageSize::new(inner, self.max)
    }
}
