//! [`Duplex`]: a `Stream` and a `Sink` as one transport.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Sink, Stream};
use pin_project_lite::pin_project;

pin_project! {
    /// A reading half and a writing half as one value that is both, for layers that read and
    /// answer on one transport (a rate limit NACKs refused messages itself) when a library
    /// hands out the halves separately.
    ///
    /// ```
    /// use futures::{SinkExt, StreamExt, channel::mpsc};
    /// use teleportal_transport::Duplex;
    ///
    /// # futures::executor::block_on(async {
    /// let (to_peer, mut at_peer) = mpsc::unbounded::<u8>();
    /// let (_from_peer, incoming) = mpsc::unbounded::<u8>();
    /// let mut conn = Duplex::new(incoming, to_peer);
    /// conn.send(7).await.unwrap();
    /// assert_eq!(at_peer.next().await, Some(7));
    /// # });
    /// ```
    #[derive(Debug, Clone)]
    pub struct Duplex<S, K> {
        #[pin]
        stream: S,
        #[pin]
        sink: K,
    }
}

impl<S, K> Duplex<S, K> {
    /// Joins `stream` (what arrives) and `sink` (what is sent).
    pub fn new(stream: S, sink: K) -> Self {
        Self { stream, sink }
    }

    /// The halves again.
    pub fn into_inner(self) -> (S, K) {
        (self.stream, self.sink)
    }
}

// Forward everything, so a method added to the trait cannot fall through to a default.
#[deny(clippy::missing_trait_methods)]
impl<S: Stream, K> Stream for Duplex<S, K> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.project().stream.poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.stream.size_hint()
    }
}

// Forward everything, so a method added to the trait cannot fall through to a default.
#[deny(clippy::missing_trait_methods)]
impl<S, K: Sink<I>, I> Sink<I> for Duplex<S, K> {
    type Error = K::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), K::Error>> {
        self.project().sink.poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: I) -> Result<(), K::Error> {
        self.project().sink.start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), K::Error>> {
        self.project().sink.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), K::Error>> {
        self.project().sink.poll_close(cx)
    }
}
