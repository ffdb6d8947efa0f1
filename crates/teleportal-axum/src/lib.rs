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
//! # Identity and authentication
//! [`router`] does no authentication: every connection gets a fresh `anonymous-<n>` client id
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
//!   [`TokenPermissionChecker`](teleportal_auth::TokenPermissionChecker), which the router
//!   installs on its copy of the server, to check every message;
//! - a token with a `room` puts the connection's documents in that room's namespace
//!   ([`room_prefix`](teleportal_auth::room_prefix), `<len>:<room>/`): clients keep using plain
//!   names, and two rooms never share a document whatever the names.
//!
//! # Rate limits
//! [`RouterBuilder::with_rate_limit`] (feature `auth`) puts a shared
//! [`RateLimiter`](teleportal_auth::RateLimiter) (in memory, or Redis for several nodes) in
//! front of every Teleportal
//! connection: a message over a limit gets a NACK with `retryAfter` and never reaches the
//! engine; past the allowed number of violations the connection is closed with code 1008
//! ("policy violation") and the reason. y-websocket connections are counted alike, but
//! y-protocols has no acks to NACK with, and dropping an update would leave the client
//! diverged until it reconnects: their message over a limit is held back for its `retryAfter`
//! (nothing more is read meanwhile, so TCP slows the sender), then handled; the violation after
//! the allowed number closes the connection with 1008 as well.
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
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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
    routes(Shared {
        server,
        anonymous: Arc::new(AtomicU64::new(0)),
        #[cfg(feature = "auth")]
        tokens: None,
        #[cfg(feature = "auth")]
        rate_limit: None,
    })
}

/// Like [`router`], but every connection must carry a `?token=` that `tokens` verifies (see
/// the crate docs for the answers), and the server checks every message against the token's
/// `documentAccess`.
///
/// `server`'s permission checker is replaced with
/// [`TokenPermissionChecker`](teleportal_auth::TokenPermissionChecker) in the router's copy;
/// clones share everything else, so [`Server::shutdown`] on the caller's clone still works.
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

/// Builds a router with optional token authentication and rate limits (feature `auth`).
///
/// ```
/// use std::sync::Arc;
/// use teleportal_auth::{MemoryRateLimiter, RateLimitRule, TokenConfig};
/// use teleportal_server::Server;
/// use teleportal_storage::{DocumentStore, MemoryStorage};
///
/// let server = Server::new(DocumentStore::new(MemoryStorage::new()));
/// let limiter = MemoryRateLimiter::new(vec![RateLimitRule::per_user_per_second(20)]);
/// let app = teleportal_axum::RouterBuilder::new(server)
///     .with_auth(TokenConfig::new("shared-secret"))
///     .with_rate_limit(Arc::new(limiter), 50)
///     .build();
/// # drop(app);
/// ```
#[cfg(feature = "auth")]
#[derive(Debug)]
pub struct RouterBuilder {
    server: Server,
    tokens: Option<teleportal_auth::TokenConfig>,
    rate_limit: Option<RateLimit>,
}

#[cfg(feature = "auth")]
impl RouterBuilder {
    /// A builder for a router mounting `server`, with no authentication and no limits.
    pub fn new(server: Server) -> Self {
        Self {
            server,
            tokens: None,
            rate_limit: None,
        }
    }

    /// Requires a `?token=` that `tokens` verifies; see [`router_with_auth`].
    #[must_use]
    pub fn with_auth(mut self, tokens: teleportal_auth::TokenConfig) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Counts every incoming Teleportal message but acks and pings against `limiter`,
    /// keyed by the connection's user (its client id when anonymous) and a connection
    /// number: a message over a limit gets a NACK with `retryAfter` (spec §7) and changes
    /// nothing, and the violation after `max_violations` closes the connection with code 1008
    /// and the reason. y-websocket connections count the same way, but have no NACK: their
    /// message over a limit is held back for its `retryAfter` instead (see the crate docs).
    #[must_use]
    pub fn with_rate_limit(
        mut self,
        limiter: Arc<dyn teleportal_auth::RateLimiter>,
        max_violations: u32,
    ) -> Self {
        self.rate_limit = Some(RateLimit {
            limiter,
            max_violations,
        });
        self
    }

    /// The router. With [`with_auth`](Self::with_auth), each connection's token grants are
    /// checked beside the server's own permission checker: a message passes only if both
    /// allow it.
    pub fn build(self) -> Router {
        routes(Shared {
            server: self.server,
            anonymous: Arc::new(AtomicU64::new(0)),
            tokens: self.tokens.map(Arc::new),
            rate_limit: self.rate_limit,
        })
    }
}

/// The limiter connections share, and how many violations a connection may commit.
#[cfg(feature = "auth")]
#[derive(Debug, Clone)]
struct RateLimit {
    limiter: Arc<dyn teleportal_auth::RateLimiter>,
    max_violations: u32,
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
type Refused = (StatusCode, &'static str);

/// What every connection handler shares.
#[derive(Clone)]
struct Shared {
    server: Server,
    /// Numbers connections that came without a token, so their ids never collide.
    anonymous: Arc<AtomicU64>,
    /// The verifier, when connections must authenticate.
    #[cfg(feature = "auth")]
    tokens: Option<Arc<teleportal_auth::TokenConfig>>,
    #[cfg(feature = "auth")]
    rate_limit: Option<RateLimit>,
}

impl Shared {
    /// The connection's identity, or the HTTP answer refusing it before the upgrade.
    // Without `auth` nothing is refused and the document is not looked at.
    #[cfg_attr(not(feature = "auth"), allow(unused_variables))]
    fn client(
        &self,
        query: &HashMap<String, String>,
        document: Option<&str>,
    ) -> Result<ClientContext, Refused> {
        #[cfg(feature = "auth")]
        if let Some(tokens) = &self.tokens {
            return authenticate(tokens, query, document);
        }
        Ok(ClientContext::new(format!(
            "anonymous-{}",
            self.anonymous.fetch_add(1, Ordering::Relaxed)
        )))
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
    let client = match shared.client(&query, None) {
        Ok(client) => client,
        Err((status, reason)) => return (status, reason).into_response(),
    };
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
    let client = match shared.client(&query, Some(&document)) {
        Ok(client) => client,
        Err((status, reason)) => return (status, reason).into_response(),
    };
    shared
        .limit(upgrade)
        .on_upgrade(move |socket| y_protocols_connection(shared, client, document, socket))
}

/// Verifies `?token=` and, for a one-document connection, read access to the document.
#[cfg(feature = "auth")]
fn authenticate(
    tokens: &teleportal_auth::TokenConfig,
    query: &HashMap<String, String>,
    document: Option<&str>,
) -> Result<ClientContext, Refused> {
    use teleportal_auth::TokenPermissionChecker;
    use teleportal_server::Access;

    let Some(token) = query.get("token").filter(|t| !t.is_empty()) else {
        return Err((StatusCode::UNAUTHORIZED, "missing token"));
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = tokens.verify(token, now).map_err(|error| {
        // The reason is for the operator's logs; the client learns only that it failed, as
        // in the reference.
        tracing::debug!(error = &error as &dyn std::error::Error, "token refused");
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
        return Err((StatusCode::FORBIDDEN, "token does not grant this document"));
    }
    Ok(client)
}

async fn teleportal_connection(shared: Shared, client: ClientContext, socket: WebSocket) {
    let (mut sink, incoming) = socket::split(socket, Frame::decode);
    let outgoing = socket::outgoing(&mut sink, Frame::to_bytes);
    #[cfg(feature = "auth")]
    if let Some(limit) = &shared.rate_limit {
        use futures::StreamExt;
        use teleportal_auth::RateLimited;

        let user = client
            .user
            .clone()
            .unwrap_or_else(|| client.client_id.clone());
        let connection = shared.anonymous.fetch_add(1, Ordering::Relaxed);
        let joined = socket::Joined {
            stream: incoming,
            sink: outgoing,
        };
        let limited = RateLimited::new(
            joined,
            Arc::clone(&limit.limiter),
            user,
            connection,
            limit.max_violations,
        );
        // One value reads and answers (the NACKs); the engine wants the halves.
        let (outgoing, incoming) = limited.split();
        let ended = teleportal_server::serve(&shared.server, client, incoming, outgoing).await;
        finish(sink, ended).await;
        return;
    }
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
    #[cfg(feature = "auth")]
    if let Some(limit) = &shared.rate_limit {
        let user = client
            .user
            .clone()
            .unwrap_or_else(|| client.client_id.clone());
        let connection = shared.anonymous.fetch_add(1, Ordering::Relaxed);
        let incoming = y_rate_limited(incoming, limit.clone(), user, connection, document.clone());
        let ended = teleportal_server::serve_y_protocols(
            &shared.server,
            client,
            &document,
            incoming,
            outgoing,
        )
        .await;
        finish(sink, ended).await;
        return;
    }
    let ended =
        teleportal_server::serve_y_protocols(&shared.server, client, &document, incoming, outgoing)
            .await;
    finish(sink, ended).await;
}

/// Rate limits a y-websocket connection. y-protocols has no acks, so there is no NACK to
/// send and a dropped update would leave the client diverged until it reconnects: a message
/// over the limit is instead held back for its `retryAfter` (the connection reads nothing
/// meanwhile, so TCP slows the sender) and taken again; the violation after
/// `max_violations` ends the connection with the reason.
#[cfg(feature = "auth")]
fn y_rate_limited(
    incoming: impl futures::Stream<Item = Result<YMessage, socket::ConnectionError>>
    + Send
    + Unpin
    + 'static,
    limit: RateLimit,
    user: String,
    connection: u64,
    document: String,
) -> impl futures::Stream<Item = Result<YMessage, socket::ConnectionError>> + Send + Unpin {
    use futures::StreamExt;
    use std::sync::atomic::AtomicU32;
    use teleportal_auth::{RateLimitCheck, RateLimitExceeded};

    let violations = Arc::new(AtomicU32::new(0));
    let shared = Arc::new((limit, user, document));
    Box::pin(incoming.then(move |item| {
        let violations = Arc::clone(&violations);
        let shared = Arc::clone(&shared);
        async move {
            let message = item?;
            let (limit, user, document) = &*shared;
            // Taken again after each wait: a held message spends its budget like any other.
            loop {
                let decision = match limit.limiter.take(user, connection, document) {
                    RateLimitCheck::Done(decision) => decision,
                    RateLimitCheck::Pending(pending) => pending.0.await,
                };
                let Err(wait) = decision else {
                    return Ok(message);
                };
                let count = violations.fetch_add(1, Ordering::Relaxed) + 1;
                if count > limit.max_violations {
                    return Err(RateLimitExceeded { violations: count }.into());
                }
                tokio::time::sleep(wait).await;
            }
        }
    }))
}

/// Tells the client why the engine ended its connection, then closes the socket.
async fn finish(mut sink: socket::SocketSink, ended: Result<Option<CloseReason>, ServerError>) {
    match ended {
        Ok(Some(CloseReason(reason))) => {
            // The client may be gone already; the connection is over either way.
            let _ = sink.send(socket::close_frame(&reason)).await;
        }
        Ok(None) => {}
        #[cfg(feature = "auth")]
        Err(ServerError::Transport(source))
            if matches!(
                source.downcast_ref::<socket::ConnectionError>(),
                Some(socket::ConnectionError::RateLimited(_))
            ) =>
        {
            let reason = source.to_string();
            tracing::debug!(reason, "closing a rate-limited connection");
            let _ = sink
                .send(socket::close_frame_with(socket::POLICY_VIOLATION, &reason))
                .await;
        }
        Err(error) => tracing::debug!(
            error = &error as &dyn std::error::Error,
            "connection failed"
        ),
    }
    let _ = sink.close().await;
}
