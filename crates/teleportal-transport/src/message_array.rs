//! MessageArray framing (spec §17.1) over any `AsyncRead + AsyncWrite`.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::{Sink, Stream};
use pin_project_lite::pin_project;
use teleportal_core::Message;
use teleportal_core::codec::MessageArrayCodec;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

use crate::TransportError;

pin_project! {
    /// [`Message`]s over a byte stream, each a `varUint8Array` MessageArray element: the
    /// framing of HTTP bodies (spec §17.1), usable on any pipe, socket or TLS stream.
    ///
    /// A thin wrapper over tokio-util's [`Framed`] with [`MessageArrayCodec`], giving the
    /// crate's [`TransportError`] so it stacks under the other layers. A declared length
    /// above the maximum is a [`TransportError::MessageTooLarge`] before anything is buffered;
    /// since framing is then lost, close the transport after any error item.
    ///
    /// ```
    /// use futures::{SinkExt, StreamExt};
    /// use teleportal_core::{DocMessage, Message};
    /// use teleportal_transport::{MessageArrayTransport, TransportError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), TransportError> {
    /// let (a, b) = tokio::io::duplex(64);
    /// let mut a = MessageArrayTransport::new(a, 1024);
    /// let mut b = MessageArrayTransport::new(b, 1024);
    /// a.send(Message::doc("d", DocMessage::SyncDone)).await?;
    /// assert_eq!(b.next().await.transpose()?, Some(Message::doc("d", DocMessage::SyncDone)));
    /// # Ok(()) }
    /// ```
    #[derive(Debug)]
    pub struct MessageArrayTransport<T> {
        #[pin]
        inner: Framed<T, MessageArrayCodec>,
    }
}

impl<T: AsyncRead + AsyncWrite> MessageArrayTransport<T> {
    /// Frames `io`, accepting messages of at most `max_message_size` encoded bytes either way.
    pub fn new(io: T, max_message_size: usize) -> Self {
        Self {
            inner: Framed::new(
                io,
                MessageArrayCodec::with_max_message_size(max_message_size),
            ),
        }
    }
}

impl<T> MessageArrayTransport<T> {
    /// The largest encoded message accepted.
    pub fn max_message_size(&self) -> usize {
        self.inner.codec().max_message_size()
    }

    /// The byte stream.
    pub fn get_ref(&self) -> &T {
        self.inner.get_ref()
    }

    /// The byte stream, mutably; reading or writing through it breaks the framing.
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }

    /// The byte stream, pinned.
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Pin<&mut T> {
        self.project().inner.get_pin_mut()
    }

    /// Unwraps the byte stream; buffered bytes not yet decoded or written are lost.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T: AsyncRead> Stream for MessageArrayTransport<T> {
    type Item = Result<Message, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = ready!(self.project().inner.poll_next(cx));
        Poll::Ready(item.map(|res| res.map_err(Into::into)))
    }
}

impl<T: AsyncWrite> Sink<Message> for MessageArrayTransport<T> {
    type Error = TransportError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Sink::<Message>::poll_ready(self.project().inner, cx).map_err(Into::into)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        self.project().inner.start_send(item).map_err(Into::into)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Sink::<Message>::poll_flush(self.project().inner, cx).map_err(Into::into)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Sink::<Message>::poll_close(self.project().inner, cx).map_err(Into::into)
    }
}
