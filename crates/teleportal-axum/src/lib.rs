//! An axum [`Router`] that mounts a Teleportal [`Server`] for WebSocket clients.
//!
//! ```no_run
//! use teleportal_server::Server;
//! use teleportal_sqlite::SqliteStorage;
//! use teleportal_storage::DocumentStore;
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
//! # Identity and authentication
//! [`RouterBuilder::authenticate`] is the identity hook: an async function from the
//! [`ConnectRequest`] (headers, URI, query, document) to a [`ClientContext`], or to the HTTP
//! response that refuses the connection before the upgrade. Token authentication is one such
//! hook ([`RouterBuilder::with_auth`]).
//!
//! Without a hook ([`router`]) there is no authentication: every connection gets a fresh `anonymous-<n>` client id
//! and `?token=` is ignored (never used as an id: the client id is shown to other clients in
//! presence, and a token there would leak). Mount it only where every client may read and
//! write every document.
//!
//! [`router_with_auth`] (feature `auth`) verifies `?token=` with a
//! [`TokenConfig`](teleportal_auth::TokenConfig) before upgrading, for both protocols:
//! - no token, or a token that fails verification: HTTP **401**, no upgrade;
//! - a y-websocket connection whose token grants no `read` on the path's document: HTTP
//!   **403**, no upgrade (a y-websocket connection has exactly that one document);
//! - otherwise the connection's client id and user are the token's `userId` and its claims
//!   ride along ([`ClientContext::with_identity`]) for
//!   [`TokenPermissionChecker`](teleportal_auth::TokenPermissionChecker), attached as the
//!   connection's own checker ([`ClientContext::with_permissions`]): every message must pass
//!   it *and* the server's checker;
//! - a token with a `room` puts the connection's documents in that room's namespace
//!   ([`room_prefix`](teleportal_auth::room_prefix), `<len>:<room>/`): clients keep using plain
//!   names, and two rooms never share a document whatever the names.
//!
//! # Layers
//! [`RouterBuilder::layer`] adds a [`ConnectionLayer`] applied to every connection of both
//! protocols after the identity hook: each connection is the WebSocket framed by
//! `teleportal-transport` ([`FrameStream`] or [`YMessageStream`]) as one [`Duplex`]
//! transport, wrapped by every layer in the order added, then served by the engine.
//! `teleportal-transport`'s size and metrics layers are connection layers, and so is
//! `teleportal_auth::RateLimitLayer` (feature `server` of `teleportal-auth`): a shared
//! limiter (in memory, or Redis for several nodes) NACKs a Teleportal message over a limit
//! with `retryAfter` and holds a y-websocket message back for its `retryAfter` (y-protocols
//! has no NACK, and a dropped update would leave the client diverged); past the allowed
//! violations it closes the connection with 1008 ("policy violation") and the reason.
//!
//! # Limits
//! [`ServerConfig::max_message_size`](teleportal_server::ServerConfig::max_message_size) also
//! bounds each WebSocket message and frame, so an oversized message ends the connection while
//! it arrives rather than after it was buffered.
//!
//! # Closing
//! When the engine ends a connection with a [`CloseReason`], the client gets a close frame
//! with the reason's code ([`CloseReason::code`]: 1001 "going away" during
//! [`Server::shutdown`], 1009 for a message too big, 1008 for a denied document, ...) and its
//! text, cut to the 123 bytes a close frame can carry. y-websocket reconnects after such a
//! close.
//!
//! # Why this shape
//! The engine is transport-agnostic: it drives any `Stream` of decoded frames and `Sink` of
//! frames. This crate only adapts axum's `WebSocket` to that shape, so everything it does is
//! routing, and the same server can be mounted beside an application's own routes with
//! [`Router::merge`] or [`Router::nest`].
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

mod admin;
mod close;

pub use admin::{READY_TIMEOUT, admin_router, metrics_router};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
#[cfg(feature = "auth")]
use axum::http::StatusCode;
use axum::http::{HeaderMap, Uri};
#[cfg(feature = "auth")]
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use std::future::Future;

use futures::future::BoxFuture;
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use teleportal_server::layer::{ConnectionLayer, ConnectionLayers};
use teleportal_server::{ClientContext, CloseReason, Server, ServerError};
use teleportal_transport::Duplex;
use teleportal_transport::ws::{FrameStream, YMessageStream};

pub use teleportal_core::frame::{PING, PONG};

/// Routes for Teleportal (`GET /`) and y-websocket (`GET /{*document}`) WebSocket clients.
///
/// Keep a clone of `server` to call [`Server::shutdown`]. The returned router has its state
/// applied, so it can be served directly or merged into an application's router. Connections
/// run until the client leaves or the engine closes them.
pub fn router(server: Server) -> Router {
    RouterBuilder::new(server).build()
}

/// Like [`router`], but every connection must carry a `?token=` that `tokens` verifies (see
/// the crate docs for the answers), and the server checks every message against the token's
/// `documentAccess`.
///
/// Each connection carries [`TokenPermissionChecker`](teleportal_auth::TokenPermissionChecker)
/// as its own checker, asked beside `server`'s: both must allow a message.
///
/// ```no_run
/// use teleportal_auth::TokenConfig;
/// use teleportal_server::Server;
/// use teleportal_storage::{DocumentStore, MemoryStorage};
///
/// let server = Server::new(DocumentStore::new(MemoryStorage::new()));
/// let app = teleportal_axum::router_with_auth(server, TokenConfig::new("shared-secret"));
/// # drop(app);
/// ```
#[cfg(feature = "auth")]
pub fn router_with_auth(server: Server, tokens: teleportal_auth::TokenConfig) -> Router {
    RouterBuilder::new(server).with_auth(tokens).build()
}

/// What a connection asked for, given to the identity hook before the upgrade.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectRequest {
    /// The upgrade request's headers (cookies, `Authorization`, `Origin`, ...).
    pub headers: HeaderMap,
    /// The request URI.
    pub uri: Uri,
    /// The query string's parameters (`?token=…`, `?user=…`).
    pub query: HashMap<String, String>,
    /// The document of a y-websocket connection (its path); `None` for a Teleportal
    /// connection, which names documents per message.
    pub document: Option<String>,
}

/// The identity hook: who a connection is, or the response refusing it.
type Authenticate = Arc<
    dyn Fn(ConnectRequest) -> BoxFuture<'static, Result<ClientContext, Response>> + Send + Sync,
>;

/// Builds a router: an identity hook (feature `auth`: token authentication) and connection
/// layers.
///
/// ```
/// use axum::http::StatusCode;
/// use axum::response::IntoResponse;
/// use teleportal_server::{ClientContext, Server};
/// use teleportal_storage::{DocumentStore, MemoryStorage};
///
/// let server = Server::new(DocumentStore::new(MemoryStorage::new()));
/// // Who a connection is: here, `?user=` (trusting a proxy in front that checked it).
/// let app = teleportal_axum::RouterBuilder::new(server)
///     .authenticate(|request| async move {
///         match request.query.get("user") {
///             Some(user) => Ok(ClientContext::new(user.clone()).with_user(user.clone())),
///             None => Err((StatusCode::UNAUTHORIZED, "?user= is missing").into_response()),
///         }
///     })
///     .build();
/// # drop(app);
/// ```
///
/// With feature `auth`:
///
/// ```
/// # #[cfg(feature = "auth")] {
/// use std::sync::Arc;
/// use teleportal_auth::{MemoryRateLimiter, RateLimitLayer, RateLimitRule, TokenConfig};
/// use teleportal_server::Server;
/// use teleportal_storage::{DocumentStore, MemoryStorage};
///
/// let server = Server::new(DocumentStore::new(MemoryStorage::new()));
/// let limiter = MemoryRateLimiter::new(vec![RateLimitRule::per_user_per_second(20)]);
/// let app = teleportal_axum::RouterBuilder::new(server)
///     .with_auth(TokenConfig::new("shared-secret"))
///     .layer(RateLimitLayer::new(Arc::new(limiter), 50))
///     .build();
/// # drop(app);
/// # }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct RouterBuilder {
    server: Server,
    authenticate: Option<Authenticate>,
    layers: ConnectionLayers,
}

impl std::fmt::Debug for RouterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterBuilder")
            .field("server", &self.server)
            .field("authenticate", &self.authenticate.is_some())
            .field("layers", &self.layers)
            .finish()
    }
}

impl RouterBuilder {
    /// A builder for a router mounting `server`, with no authentication and no limits.
    pub fn new(server: Server) -> Self {
        Self {
            server,
            authenticate: None,
            layers: ConnectionLayers::new(),
        }
    }

    /// Sets the identity hook, run before each upgrade: `Ok(client)` upgrades with that
    /// context, `Err(response)` answers the request with it (say 401 or 403) and upgrades
    /// nothing. A later call replaces an earlier one (and [`with_auth`](Self::with_auth)).
    pub fn authenticate<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(ConnectRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ClientContext, Response>> + Send + 'static,
    {
        self.authenticate = Some(Arc::new(move |request| Box::pin(hook(request))));
        self
    }

    /// Requires a `?token=` that `tokens` verifies (see [`router_with_auth`]): the identity
    /// hook that verifies JWTs.
    #[cfg(feature = "auth")]
    pub fn with_auth(self, tokens: teleportal_auth::TokenConfig) -> Self {
        let tokens = Arc::new(tokens);
        self.authenticate(move |request: ConnectRequest| {
            let verified = authenticate(&tokens, &request.query, request.document.as_deref());
            std::future::ready(verified.map_err(IntoResponse::into_response))
        })
    }

    /// Adds a layer applied to every connection, Teleportal and y-websocket, after the
    /// identity hook: it wraps the WebSocket (already framed) and knows who the connection is
    /// from its [`ClientContext`]. Layers apply in the order added, the first next to the
    /// socket (see [`ConnectionLayers`]).
    ///
    /// A layer that ends a connection
    /// ([`TransportError::Refused`](teleportal_server::layer::TransportError::Refused)) gets
    /// its close code and reason sent to the client.
    pub fn layer(mut self, layer: impl ConnectionLayer) -> Self {
        self.layers.push(layer);
        self
    }

    /// The router.
    pub fn build(self) -> Router {
        routes(Shared {
            server: self.server,
            anonymous: Arc::new(AtomicU64::new(0)),
            authenticate: self.authenticate,
            layers: self.layers,
        })
    }
}

fn routes(state: Shared) -> Router {
    Router::new()
        .route("/", get(teleportal_upgrade))
        .route("/{*document}", get(y_protocols_upgrade))
        .with_state(state)
}

/// Each connection's WebSocket read buffer. The default (128 KiB, allocated up front) made
/// 2,000 idle connections cost 256 MB; Yjs messages are mostly tiny, and larger ones are still
/// read whole, in more reads.
const READ_BUFFER: usize = 8 * 1024;

/// An HTTP answer refusing a connection before the upgrade, with a short body.
#[cfg(feature = "auth")]
type Refused = (StatusCode, &'static str);

/// What every connection handler shares.
#[derive(Clone)]
struct Shared {
    server: Server,
    /// Numbers connections that came without a token, so their ids never collide.
    anonymous: Arc<AtomicU64>,
    /// The identity hook; `None`: every connection is anonymous.
    authenticate: Option<Authenticate>,
    layers: ConnectionLayers,
}

impl Shared {
    /// The connection's identity, or the HTTP answer refusing it before the upgrade.
    async fn client(
        &self,
        request: impl FnOnce() -> ConnectRequest,
    ) -> Result<ClientContext, Response> {
        match &self.authenticate {
            Some(hook) => hook(request()).await,
            None => Ok(self.anonymous()),
        }
    }

    fn anonymous(&self) -> ClientContext {
        ClientContext::new(format!(
            "anonymous-{}",
            self.anonymous.fetch_add(1, Ordering::Relaxed)
        ))
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
    headers: HeaderMap,
    uri: Uri,
    upgrade: WebSocketUpgrade,
) -> Response {
    let request = || ConnectRequest {
        headers,
        uri,
        query,
        document: None,
    };
    let client = match shared.client(request).await {
        Ok(client) => client,
        Err(refused) => return refused,
    };
    shared
        .limit(upgrade)
        .on_upgrade(move |socket| teleportal_connection(shared, client, socket))
}

async fn y_protocols_upgrade(
    State(shared): State<Shared>,
    Path(document): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    uri: Uri,
    upgrade: WebSocketUpgrade,
) -> Response {
    let request = || ConnectRequest {
        headers,
        uri,
        query,
        document: Some(document.clone()),
    };
    let client = match shared.client(request).await {
        Ok(client) => client,
        Err(refused) => return refused,
    };
    shared
        .limit(upgrade)
        .on_upgrade(move |socket| y_protocols_connection(shared, client, document, socket))
}

/// Serves one upgraded Teleportal WebSocket as `client`, for applications that route and
/// authenticate themselves: what the router's `GET /` does after its identity hook (with the
/// server's message size limit, without the router's layers). Apply the size limit to
/// the upgrade yourself ([`WebSocketUpgrade::max_message_size`]). Returns when the connection
/// ends, after the close frame with the engine's reason.
pub async fn serve_teleportal_socket(server: &Server, client: ClientContext, socket: WebSocket) {
    teleportal_connection(Shared::plain(server), client, socket).await;
}

/// Serves one upgraded y-websocket WebSocket for `document` as `client`; see
/// [`serve_teleportal_socket`].
pub async fn serve_y_websocket_socket(
    server: &Server,
    client: ClientContext,
    document: String,
    socket: WebSocket,
) {
    y_protocols_connection(Shared::plain(server), client, document, socket).await;
}

impl Shared {
    /// Shared state for one connection served outside the router: no hook, no limits.
    fn plain(server: &Server) -> Shared {
        Shared {
            server: server.clone(),
            anonymous: Arc::new(AtomicU64::new(0)),
            authenticate: None,
            layers: ConnectionLayers::new(),
        }
    }
}

/// Verifies `?token=` and, for a one-document connection, read access to the document.
#[cfg(feature = "auth")]
fn authenticate(
    tokens: &teleportal_auth::TokenConfig,
    query: &HashMap<String, String>,
    document: Option<&str>,
) -> Result<ClientContext, Refused> {
    verify_token(tokens, query.get("token").map(String::as_str), document)
}

/// What [`RouterBuilder::with_auth`] does with a connection's token, for identity hooks that
/// find the token elsewhere (a header, a cookie) or add to the context: verifies `token`
/// (401 when missing or invalid) and, for a y-websocket connection's `document`, read access
/// (403); the context has the token's user, room namespace and claims, and
/// [`TokenPermissionChecker`](teleportal_auth::TokenPermissionChecker) as its own checker.
///
/// ```
/// use teleportal_auth::{DocumentAccess, Permission, TokenConfig};
///
/// let tokens = TokenConfig::new("shared-secret");
/// let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
/// let access = vec![DocumentAccess::new("notes", &[Permission::Read])];
/// let token = tokens.mint(&tokens.claims("alice", "", Some(access), now.as_secs())).unwrap();
///
/// let client = teleportal_axum::verify_token(&tokens, Some(&token), Some("notes")).unwrap();
/// assert_eq!(client.user.as_deref(), Some("alice"));
/// let refused = teleportal_axum::verify_token(&tokens, Some(&token), Some("drafts"));
/// assert_eq!(refused.unwrap_err().0.as_u16(), 403);
/// assert_eq!(teleportal_axum::verify_token(&tokens, None, None).unwrap_err().0.as_u16(), 401);
/// ```
///
/// # Errors
/// The status and a short body to answer the upgrade request with.
#[cfg(feature = "auth")]
pub fn verify_token(
    tokens: &teleportal_auth::TokenConfig,
    token: Option<&str>,
    document: Option<&str>,
) -> Result<ClientContext, (StatusCode, &'static str)> {
    use teleportal_auth::TokenPermissionChecker;
    use teleportal_server::Access;

    let Some(token) = token.filter(|t| !t.is_empty()) else {
        tracing::info!(document, "refused a connection: missing token");
        return Err((StatusCode::UNAUTHORIZED, "missing token"));
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = tokens.verify(token, now).map_err(|error| {
        // The reason is for the operator's logs; the client learns only that it failed, as
        // in the reference.
        tracing::info!(
            document,
            reason = %teleportal_core::ErrorChain::new(&error),
            "refused a connection: invalid token"
        );
        (StatusCode::UNAUTHORIZED, "invalid token")
    })?;
    let user = claims.user_id.clone();
    // A room namespaces the connection's documents (spec §15.3) with a prefix no other room's
    // ids share, whatever the names.
    let namespace = if claims.room.is_empty() {
        String::new()
    } else {
        teleportal_auth::room_prefix(Some(&claims.room))
    };
    let client = ClientContext::new(user.clone())
        .with_user(user)
        .with_namespace(namespace)
        .with_identity(claims)
        .with_permissions(TokenPermissionChecker);
    if let Some(document) = document
        && !TokenPermissionChecker::allows(&client, document, Access::Read)
    {
        tracing::info!(
            document,
            user = %client.client_id,
            "refused a connection: the token does not grant this document"
        );
        return Err((StatusCode::FORBIDDEN, "token does not grant this document"));
    }
    Ok(client)
}

/// The axum WebSocket message type, as teleportal-transport frames it.
type WsMessage = axum::extract::ws::Message;

async fn teleportal_connection(shared: Shared, client: ClientContext, socket: WebSocket) {
    let client_id = client.client_id.clone();
    tracing::info!(client = %client_id, protocol = "teleportal", "connection opened");
    // The engine borrows the writing half, so the close frame can follow once it is done.
    let (mut sink, stream) = socket.split();
    let connection = Duplex::new(
        FrameStream::<_, WsMessage>::new(stream),
        FrameStream::<_, WsMessage>::new(&mut sink),
    );
    let ended = shared
        .layers
        .serve_teleportal(&shared.server, client, connection)
        .await;
    finish(sink, &client_id, ended).await;
}

async fn y_protocols_connection(
    shared: Shared,
    client: ClientContext,
    document: String,
    socket: WebSocket,
) {
    let client_id = client.client_id.clone();
    tracing::info!(
        client = %client_id,
        protocol = "y-websocket",
        %document,
        "connection opened"
    );
    let (mut sink, stream) = socket.split();
    let connection = Duplex::new(
        YMessageStream::<_, WsMessage>::new(stream),
        YMessageStream::<_, WsMessage>::new(&mut sink),
    );
    let ended = shared
        .layers
        .serve_y_websocket(&shared.server, client, &document, connection)
        .await;
    finish(sink, &client_id, ended).await;
}

/// Tells the client why the engine ended its connection, then closes the socket.
async fn finish(
    mut sink: SplitSink<WebSocket, WsMessage>,
    client: &str,
    ended: Result<Option<CloseReason>, ServerError>,
) {
    match ended {
        Ok(Some(reason)) => {
            tracing::info!(client = %client, %reason, code = reason.code(), "closing a connection");
            // The client may be gone already; the connection is over either way.
            let frame = close::close_frame_with(reason.code(), &reason.to_string());
            let _ = sink.send(frame).await;
        }
        Ok(None) => tracing::info!(client = %client, "connection closed by the client"),
        Err(error) => tracing::info!(
            client = %client,
            error = %teleportal_core::ErrorChain::new(&error),
            "connection failed"
        ),
    }
    let _ = sink.close().await;
}
