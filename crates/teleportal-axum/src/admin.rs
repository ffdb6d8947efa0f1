//! The operator's endpoints: liveness, readiness and status, on a router of their own so they
//! can listen on another address than the clients (or be merged into the clients' router).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use teleportal_server::Server;
use teleportal_server::prometheus_client::{self, registry::Registry};

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
///   open documents, whether it is shutting down, messages received by type.
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
            "messages": status
                .messages
                .iter()
                .map(|&(kind, n)| (kind.to_owned(), n.into()))
                .collect::<serde_json::Map<_, _>>(),
        }),
    )
}

/// A router serving `GET /metrics`: everything in `registry` (the engine's metrics, with
/// [`ServerBuilder::metrics`](teleportal_server::ServerBuilder::metrics), and the
/// application's own): in the OpenMetrics text format when the scraper asks for it (as
/// Prometheus does), else in the classic text format (`promtool check metrics` reads that).
///
/// ```
/// use std::sync::Arc;
///
/// use teleportal_server::Server;
/// use teleportal_server::prometheus_client::registry::Registry;
/// use teleportal_storage::{DocumentStore, MemoryStorage};
///
/// let mut registry = Registry::default();
/// let server = Server::builder(DocumentStore::new(MemoryStorage::new()))
///     .metrics(&mut registry)
///     .build();
/// let admin = teleportal_axum::admin_router(server)
///     .merge(teleportal_axum::metrics_router(Arc::new(registry)));
/// # drop(admin);
/// ```
pub fn metrics_router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(registry)
}

async fn metrics(State(registry): State<Arc<Registry>>, headers: HeaderMap) -> Response {
    let mut text = String::new();
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        tracing::warn!(%error, "cannot encode the metrics");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    // Prometheus asks for OpenMetrics; older tools (promtool, some agents) read only the
    // classic text format.
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let (content_type, body) = if openmetrics {
        (
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            text,
        )
    } else {
        (
            "text/plain; version=0.0.4; charset=utf-8",
            classic_text(&text),
        )
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// OpenMetrics text as the classic Prometheus text format (0.0.4): a counter's `HELP` and
/// `TYPE` name its `_total` series, and there is no `UNIT` line and no `# EOF`.
fn classic_text(openmetrics: &str) -> String {
    let lines: Vec<&str> = openmetrics.lines().collect();
    let mut out = String::with_capacity(openmetrics.len());
    let mut counters = std::collections::HashSet::new();
    for line in &lines {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some((name, "counter")) = rest.split_once(' ')
        {
            counters.insert(name);
        }
    }
    for line in lines {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].into_iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(line) => out.push_str(&line),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::classic_text;

    #[test]
    fn counters_are_named_by_their_series_in_the_classic_format() {
        let openmetrics = "# HELP a_messages Messages.\n# TYPE a_messages counter\n\
            a_messages_total{type=\"doc\"} 3\n# HELP a_open Open.\n# TYPE a_open gauge\n\
            a_open 1\n# EOF\n";
        assert_eq!(
            classic_text(openmetrics),
            "# HELP a_messages_total Messages.\n# TYPE a_messages_total counter\n\
             a_messages_total{type=\"doc\"} 3\n# HELP a_open Open.\n# TYPE a_open gauge\n\
             a_open 1\n"
        );
    }
}
