//! The operator's endpoints: liveness, readiness and status, on a router of their own so they
//! can listen on another address than the clients (or be merged into the clients' router).

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use teleportal_server::Server;

/// How long `/ready` waits for the storage probe before it answers "not ready".
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// A router with the operator's endpoints of `server`:
///
/// - `GET /health`: liveness, `200 {"status":"ok"}` while the process serves HTTP;
/// - `GET /ready`: readiness ([`Server::readiness`]): `200` when the storage answers a cheap
///   read within [`READY_TIMEOUT`] and the server is not shutting down, else `503`; the body
///   says which (`{"ready":false,"shuttingDown":true,"storage":"…"}`), so a load balancer
///   stops sending new connections as soon as a drain starts;
/// - `GET /status`: JSON for a person or a dashboard: version, node id, uptime, connections,
///   open documents, whether it is shutting down.
///
/// Serve it on an address of its own (documents named `health`, `ready` or `status` stay
/// reachable for y-websocket clients then), or [`merge`](Router::merge) it into
/// [`router`](crate::router)'s.
///
/// ```
/// use teleportal_server::Server;
/// use teleportal_storage::{DocumentStore, MemoryStorage};
///
/// let server = Server::new(DocumentStore::new(MemoryStorage::new()));
/// let clients = teleportal_axum::router(server.clone());
/// let admin = teleportal_axum::admin_router(server);
/// // Serve `admin` on its own listener, or `clients.merge(admin)` on one.
/// # drop((clients, admin));
/// ```
pub fn admin_router(server: Server) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/status", get(status))
        .with_state(server)
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn health() -> Response {
    json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

async fn ready(State(server): State<Server>) -> Response {
    let readiness = server.readiness(READY_TIMEOUT).await;
    let code = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(
        code,
        &json!({
            "ready": readiness.ready,
            "shuttingDown": readiness.shutting_down,
            "storage": readiness.storage_error.as_deref().unwrap_or("ok"),
        }),
    )
}

async fn status(State(server): State<Server>) -> Response {
    let status = server.status();
    json_response(
        StatusCode::OK,
        &json!({
            "version": env!("CARGO_PKG_VERSION"),
            "nodeId": status.node_id,
            "uptimeSeconds": status.uptime.as_secs(),
            "connections": status.connections,
            "openDocuments": status.open_documents,
            "shuttingDown": status.shutting_down,
        }),
    )
}
