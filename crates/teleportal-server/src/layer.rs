//! Connection layers: wrappers built once and applied to every connection a transport serves.
//!
//! A transport (the axum router, a TCP accept loop) turns each client into one value that is
//! both the `Stream` of what arrives and the `Sink` of what is sent, a [`Connection`]. Before
//! the engine drives it, every [`ConnectionLayer`] of a [`ConnectionLayers`] stack may wrap it,
//! knowing who the connection is from its [`ClientContext`]: rate limits, metrics, size limits,
//! taps. One layer value serves both protocols, through one method each.
//!
//! A layer ends a connection on purpose by yielding
//! [`TransportError::Refused`] with a close code and reason: the engine stops serving it and
//! returns [`CloseReason::Other`] with them, for the transport to pass on.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;

use futures::{Sink, Stream, StreamExt};
use teleportal_core::{Frame, YMessage};
pub use teleportal_transport::TransportError;
use teleportal_transport::{MaxMessageSizeLayer, MeteredLayer};

use crate::{ClientContext, CloseReason, Server, ServerError};

/// A connection as layers see it: a `Stream` of `Result<T, TransportError>` and a `Sink<T>`
/// with the same error. Implemented for every such type.
pub trait Connection<T>:
    Stream<Item = Result<T, TransportError>> + Sink<T, Error = TransportError> + Send
{
}

impl<C, T> Connection<T> for C where
    C: Stream<Item = Result<T, TransportError>> + Sink<T, Error = TransportError> + Send + ?Sized
{
}

/// A boxed [`Connection`], which may borrow from the transport for `'a` (the socket's writing
/// half, kept to send the close frame once the engine is done).
pub type BoxConnection<'a, T> = Pin<Box<dyn Connection<T> + 'a>>;

/// Wraps each connection before the engine serves it.
///
/// Both methods pass the connection through unchanged by default, so a layer for one
/// protocol overrides one method. Layers are shared by every connection: keep per-connection
/// state in the wrapper a method returns, not in `self`.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use futures::StreamExt;
/// use teleportal_server::layer::{BoxConnection, ConnectionLayer, ConnectionLayers};
/// use teleportal_server::{ClientContext, Frame};
///
/// /// Counts the Teleportal connections each user opened.
/// #[derive(Default)]
/// struct CountConnections(AtomicU64);
///
/// impl ConnectionLayer for CountConnections {
///     fn teleportal<'a>(
///         &self,
///         _client: &ClientContext,
///         connection: BoxConnection<'a, Frame>,
///     ) -> BoxConnection<'a, Frame> {
///         self.0.fetch_add(1, Ordering::Relaxed);
///         connection
///     }
/// }
///
/// let counter = Arc::new(CountConnections::default());
/// let layers = ConnectionLayers::new().with(Arc::clone(&counter));
/// # let (tx, rx) = futures::channel::mpsc::unbounded::<Frame>();
/// # let conn = teleportal_transport::Duplex::new(rx.map(Ok), tx.sink_map_err(Into::into));
/// # use futures::SinkExt;
/// let _wrapped = layers.teleportal(&ClientContext::new("alice"), Box::pin(conn));
/// assert_eq!(counter.0.load(Ordering::Relaxed), 1);
/// ```
pub trait ConnectionLayer: Send + Sync + 'static {
    /// Wraps a Teleportal connection of `client`.
    fn teleportal<'a>(
        &self,
        client: &ClientContext,
        connection: BoxConnection<'a, Frame>,
    ) -> BoxConnection<'a, Frame> {
        let _ = client;
        connection
    }

    /// Wraps a y-websocket connection of `client` to `document`.
    fn y_websocket<'a>(
        &self,
        client: &ClientContext,
        document: &str,
        connection: BoxConnection<'a, YMessage>,
    ) -> BoxConnection<'a, YMessage> {
        let _ = (client, document);
        connection
    }
}

impl<L: ConnectionLayer + ?Sized> ConnectionLayer for Arc<L> {
    fn teleportal<'a>(
        &self,
        client: &ClientContext,
        connection: BoxConnection<'a, Frame>,
    ) -> BoxConnection<'a, Frame> {
        (**self).teleportal(client, connection)
    }

    fn y_websocket<'a>(
        &self,
        client: &ClientContext,
        document: &str,
        connection: BoxConnection<'a, YMessage>,
    ) -> BoxConnection<'a, YMessage> {
        (**self).y_websocket(client, document, connection)
    }
}

/// A `ConnectionLayer` for a tower layer of teleportal-transport that wraps both protocols
/// alike.
macro_rules! transport_layer {
    ($(#[$doc:meta])* $layer:ty) => {
        $(#[$doc])*
        impl ConnectionLayer for $layer {
            fn teleportal<'a>(
                &self,
                _: &ClientContext,
                connection: BoxConnection<'a, Frame>,
            ) -> BoxConnection<'a, Frame> {
                Box::pin(teleportal_transport::Layer::layer(self, connection))
            }

            fn y_websocket<'a>(
                &self,
                _: &ClientContext,
                _: &str,
                connection: BoxConnection<'a, YMessage>,
            ) -> BoxConnection<'a, YMessage> {
                Box::pin(teleportal_transport::Layer::layer(self, connection))
            }
        }
    };
}

transport_layer!(
    /// Refuses incoming messages above the size, for both protocols (see
    /// [`MaxMessageSize`](teleportal_transport::MaxMessageSize)).
    MaxMessageSizeLayer
);
transport_layer!(
    /// Counts every connection's messages and bytes into the layer's shared
    /// [`TransportMetrics`](teleportal_transport::TransportMetrics), for both protocols.
    MeteredLayer
);

/// A stack of [`ConnectionLayer`]s, cheap to clone.
///
/// Layers apply in the order they were added, each wrapping the one before: the first sits
/// next to the socket and sees everything, a later one sees what earlier ones let through,
/// and the engine sees the last.
#[derive(Clone, Default)]
pub struct ConnectionLayers {
    layers: Vec<Arc<dyn ConnectionLayer>>,
}

impl fmt::Debug for ConnectionLayers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionLayers")
            .field("layers", &self.layers.len())
            .finish()
    }
}

impl ConnectionLayers {
    /// An empty stack: connections reach the engine as the transport made them.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `layer` on top of the stack.
    pub fn push(&mut self, layer: impl ConnectionLayer) {
        self.layers.push(Arc::new(layer));
    }

    /// The stack with `layer` on top.
    #[must_use]
    pub fn with(mut self, layer: impl ConnectionLayer) -> Self {
        self.push(layer);
        self
    }

    /// How many layers the stack holds.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// True when the stack holds no layer.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// `connection` wrapped by every layer, for a Teleportal client.
    pub fn teleportal<'a>(
        &self,
        client: &ClientContext,
        connection: BoxConnection<'a, Frame>,
    ) -> BoxConnection<'a, Frame> {
        self.layers
            .iter()
            .fold(connection, |conn, layer| layer.teleportal(client, conn))
    }

    /// `connection` wrapped by every layer, for a y-websocket client of `document`.
    pub fn y_websocket<'a>(
        &self,
        client: &ClientContext,
        document: &str,
        connection: BoxConnection<'a, YMessage>,
    ) -> BoxConnection<'a, YMessage> {
        self.layers.iter().fold(connection, |conn, layer| {
            layer.y_websocket(client, document, conn)
        })
    }

    /// Wraps `connection` in the stack and serves it as a Teleportal connection
    /// ([`serve`](crate::serve)): what a transport does with each client.
    ///
    /// # Errors
    /// As [`serve`](crate::serve).
    pub async fn serve_teleportal<'a>(
        &self,
        server: &Server,
        client: ClientContext,
        connection: impl Connection<Frame> + 'a,
    ) -> Result<Option<CloseReason>, ServerError> {
        let connection = self.teleportal(&client, Box::pin(connection));
        let (outgoing, incoming) = connection.split();
        crate::serve(server, client, incoming, outgoing).await
    }

    /// Wraps `connection` in the stack and serves it as a y-websocket connection to
    /// `document` ([`serve_y_protocols`](crate::serve_y_protocols)).
    ///
    /// # Errors
    /// As [`serve_y_protocols`](crate::serve_y_protocols).
    pub async fn serve_y_websocket<'a>(
        &self,
        server: &Server,
        client: ClientContext,
        document: &str,
        connection: impl Connection<YMessage> + 'a,
    ) -> Result<Option<CloseReason>, ServerError> {
        let connection = self.y_websocket(&client, document, Box::pin(connection));
        let (outgoing, incoming) = connection.split();
        crate::serve_y_protocols(server, client, document, incoming, outgoing).await
    }
}
