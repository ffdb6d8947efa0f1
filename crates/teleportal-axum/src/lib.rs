//! An axum [`Router`] that mounts a Teleportal [`Server`] for WebSocket clients.
//!
//! ```no_run
//! use teleportal_server::Server;
//! use teleportal_storage::{DocumentStore, SqliteStorage};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = DocumentStore::new(SqliteStorage::open("./data")?);
//! let app = teleportal_axum::router(Server::new(store));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:1234").await?;
//! // Teleportal clients connect to ws://127.0.0.1:1234/?token=…,
//! // y-websocket clients to ws://127.0.0.1:1234/<document>.
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! # Routes
//! - `GET /` upgrades to a **Teleportal** WebSocket: one binary message per [`Frame`]
//!   (an envelope message, `YJSping` or `YJSpong`), any number of documents per connection.
//! - `GET /{*document}` upgrades to a **y-protocols** WebSocket, as unmodified `y-websocket`
//!   clients speak it: their provider connects to `<serverUrl>/<roomname>`, so the path (percent
//!   decoded, slashes kept) names the one document of the connection.
//!
//! The path alone decides the protocol, so a connection never has to be sniffed.
//!
//! # Identity
//! The `?token=` query parameter, when present, is passed to the engine as the connection's
//! client id ([`ClientContext::new`]); without one the connection gets a fresh
//! `anonymous-<n>` id. **The token is not verified yet**: this router does no authentication,
//! so mount it only where every client may read and write every document, until token
//! verification (wire protocol §15.1) lands. The client id is also what presence messages
//! show other clients as `clientId`, so until then do not put a real secret in `?token=`.
//!
//! # Limits
//! [`ServerConfig::max_message_size`](teleportal_server::ServerConfig::max_message_size) also
//! bounds each WebSocket message and frame, so an oversized message ends the connection while
//! it arrives rather than after it was buffered.
//!
//! # Closing
//! When the engine ends a connection with a [`CloseReason`]
//! (for example during [`Server::shutdown`]), the client gets a close frame with code 1001
//! ("going away") and the reason, cut to the 123 bytes a close frame can carry. y-websocket
//! reconnects after such a close.
//!
//! # Why this shape
//! The engine is transport-agnostic: it drives any `Stream` of decoded frames and `Sink` of
//! frames. This crate only adapts axum's `WebSocket` to that shape, so everything it does is
//! routing, and the same server can be mounted beside an application's own routes with
//! [`Router::merge`] or [`Router::nest`].
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

mod socket;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use futures::SinkExt;
use teleportal_core::{Frame, YMessage};
use teleportal_server::{ClientContext, CloseReason, Server, ServerError};

pub use teleportal_core::frame::{PING, PONG};

/// Routes for Teleportal (`GET /`) and y-websocket (`GET /{*document}`) WebSocket clients.
///
/// Keep a clone of `server` to call [`Server::shutdown`]. The returned router has its state
/// applied, so it can be served directly or merged into an application's router. Connections
/// run until the client leaves or the engine closes them.
pub fn router(server: Server) -> Router {
    let state = Shared {
        server,
        anonymous: Arc::new(AtomicU64::new(0)),
    };
    Router::new()
        .route("/", get(teleportal_upgrade))
        .route("/{*document}", get(y_protocols_upgrade))
        .with_state(state)
}

/// Each connection's WebSocket read buffer. The default (128 KiB, allocated up front) made
/// 2,000 idle connections cost 256 MB; Yjs messages are mostly tiny, and larger ones are still
/// read whole, in more reads.
const READ_BUFFER: usize = 8 * 1024;

/// What every connection handler shares.
#[derive(Clone)]
struct Shared {
    server: Server,
    /// Numbers connections that came without a token, so their ids never collide.
    anonymous: Arc<AtomicU64>,
}

impl Shared {
    fn client(&self, query: &HashMap<String, String>) -> ClientContext {
        let id = match query.get("token") {
            Some(token) if !token.is_empty() => token.clone(),
            _ => format!(
                "anonymous-{}",
                self.anonymous.fetch_add(1, Ordering::Relaxed)
            ),
        };
        ClientContext::new(id)
    }

    /// Applies the engine's message size limit to the WebSocket itself, so an oversized
    /// message is refused while it arrives instead of after it was buffered whole, and keeps
    /// each connection's read buffer small.
    fn limit(&self, upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
        let max = self.server.config().max_message_size;
        upgrade
            .max_message_size(max)
            .max_frame_size(max)
            .read_buffer_size(READ_BUFFER)
    }
}

async fn teleportal_upgrade(
    State(shared): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let client = shared.client(&query);
    shared
        .limit(upgrade)
        .on_upgrade(move |socket| teleportal_connection(shared, client, socket))
}

async fn y_protocols_upgrade(
    State(shared): State<Shared>,
    Path(document): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let client = shared.client(&query);
    shared
        .limit(upgrade)
        .on_upgrade(move |socket| y_protocols_connection(shared, client, document, socket))
}

async fn teleportal_connection(shared: Shared, client: ClientContext, socket: WebSocket) {
    let (mut sink, incoming) = socket::split(socket, Frame::decode);
    let outgoing = socket::outgoing(&mut sink, Frame::to_bytes);
    let ended = teleportal_server::serve(&shared.server, client, incoming, outgoing).await;
    finish(sink, ended).await;
}

async fn y_protocols_connection(
    shared: Shared,
    client: ClientContext,
    document: String,
    socket: WebSocket,
) {
    let (mut sink, incoming) = socket::split(socket, YMessage::decode);
    let outgoing = socket::outgoing(&mut sink, YMessage::to_bytes);
    let ended =
        teleportal_server::serve_y_protocols(&shared.server, client, &document, incoming, outgoing)
            .await;
    finish(sink, ended).await;
}

/// Tells the client why the engine ended its connection, then closes the socket.
async fn finish(mut sink: socket::SocketSink, ended: Result<Option<CloseReason>, ServerError>) {
    match ended {
        Ok(Some(CloseReason(reason))) => {
            // The client may be gone already; the connection is over either way.
            let _ = sink.send(socket::close_frame(&reason)).await;
        }
        Ok(None) => {}
        Err(error) => tracing::debug!(
            error = &error as &dyn std::error::Error,
            "connection failed"
        ),
    }
    let _ = sink.close().await;
}
