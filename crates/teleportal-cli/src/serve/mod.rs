//! `teleportal serve`: the sync server, both protocols, every backend by URL.

mod args;
mod keys;
mod pubsub;
mod stores;

use std::io::Write;
use std::sync::Arc;

use axum::serve::ListenerExt as _;
use teleportal_auth::{MemoryRateLimiter, RateLimitLayer, RateLimitRule};
use teleportal_core::ErrorChain;
use teleportal_server::prometheus_client::registry::Registry;
use teleportal_server::{RelayMode, Server, ServerConfig};
use teleportal_storage::SizeLimits;

use args::Relay;
pub(crate) use args::ServeArgs;

use crate::{Failure, context, logging, units};

/// Runs the server until Ctrl-C or SIGTERM, then shuts it down gracefully.
pub(crate) fn main(args: ServeArgs) -> Result<(), Failure> {
    logging::init(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(context("cannot start the async runtime"))?;
    let result = runtime.block_on(run(args));
    if let Err(Failure::Run(error) | Failure::Usage(error)) = &result {
        // For log collectors; the person at the terminal gets the same line from `main`.
        tracing::error!(error = %ErrorChain::new(&**error), "the server stopped");
    }
    result
}

async fn run(args: ServeArgs) -> Result<(), Failure> {
    let tokens = args.jwt.config(args.jwt_leeway)?;
    let stores = stores::open(&args.storage).await?;
    let pubsub = match &args.cluster.pubsub {
        Some(url) => {
            let node_id = args
                .cluster
                .node_id
                .clone()
                .unwrap_or_else(pubsub::default_node_id);
            let bus = pubsub::connect(url, &node_id).await?;
            tracing::info!(node = %node_id, bus = %url, "joined the cluster");
            Some(bus)
        }
        None => None,
    };

    let limits = &args.limits;
    let documents = stores
        .document_store()
        .with_size_limits(SizeLimits::new(
            limits.document_size_warning.0,
            limits.document_size_limit.0,
        ))
        .on_size_warning(|warning| {
            tracing::warn!(
                document = %warning.doc,
                size = %units::show_bytes(warning.size),
                warn_at = %units::show_bytes(warning.warn_at),
                "a document grew past the size warning"
            );
        });
    let sessions = &args.sessions;
    let config = ServerConfig::default()
        .with_idle_timeout(sessions.idle_timeout)
        .with_send_queue(sessions.send_queue as usize)
        .with_max_message_size(limits.max_message_size)
        .with_dedup_window(sessions.dedup_window as usize)
        .with_relay(match sessions.relay {
            Relay::BeforeDurable => RelayMode::BeforeDurable,
            Relay::AfterDurable => RelayMode::AfterDurable,
        })
        .with_missed_update_check(sessions.missed_update_check.0)
        .with_upload_expiry(
            sessions.upload_max_age.0,
            ServerConfig::default().upload_expiry_check,
        );
    let mut registry = Registry::default();
    let builder = Server::builder(documents)
        .config(config)
        .stores(stores)
        .metrics(&mut registry);
    // The server holds the stores from here on, and closes them when it shuts down.
    let server = match pubsub {
        Some(bus) => builder.pubsub(bus),
        None => builder,
    }
    .build();

    // Upgraded WebSockets outlive axum's graceful shutdown, which only waits for HTTP
    // connections: the engine's shutdown is what closes them.
    let mut app = teleportal_axum::RouterBuilder::new(server.clone());
    match tokens {
        Some(tokens) => {
            tracing::info!(algorithm = ?tokens.algorithm(), "tokens required (?token=)");
            app = app.with_auth(tokens);
        }
        None => tracing::warn!(
            "no --jwt-secret or --jwt-public-key: every client may read and write every document"
        ),
    }
    if let Some(n) = limits.rate_limit {
        let limiter = MemoryRateLimiter::new(vec![RateLimitRule::per_user_per_second(n)]);
        app = app.layer(
            RateLimitLayer::new(Arc::new(limiter), limits.rate_limit_violations)
                .with_metrics(&mut registry),
        );
        tracing::info!(per_second = n, "rate limit on");
    }
    let app = app.build();

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(context(format!("cannot listen on {}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(context("cannot read the listening address"))?;
    announce(&format!("listening on ws://{addr}"))?;
    tracing::info!(%addr, "listening");
    let admin = match args.admin_listen {
        Some(admin_addr) => Some(serve_admin(&server, registry, admin_addr).await?),
        None => None,
    };
    // Small frames go out at once: with Nagle's algorithm a relay could wait for the client's
    // delayed ACK (40 ms on Linux).
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(context("the listener failed"))?;
    tracing::info!("shutting down");
    // Finishes the updates being stored (and ACKs them), closes every connection with a
    // reason, ends background work, then closes the stores (SQLite finishes its queue).
    server
        .shutdown(args.shutdown_timeout)
        .await
        .map_err(context("the shutdown did not finish"))?;
    if let Some(admin) = admin {
        admin.stop().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The admin endpoints on their own listener, serving until [`Admin::stop`]: through the
/// drain, so `/ready` answers 503 while connections close.
struct Admin {
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Admin {
    async fn stop(self) {
        let _ = self.stop.send(());
        match self.serving.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "the admin listener failed"),
            Err(error) => tracing::warn!(%error, "the admin listener panicked"),
        }
    }
}

async fn serve_admin(
    server: &Server,
    registry: Registry,
    addr: std::net::SocketAddr,
) -> Result<Admin, Failure> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(context(format!("cannot listen on {addr} (--admin-listen)")))?;
    let addr = listener
        .local_addr()
        .map_err(context("cannot read the admin address"))?;
    announce(&format!("admin on http://{addr}"))?;
    tracing::info!(%addr, "admin endpoints: /health, /ready, /status, /metrics");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = teleportal_axum::admin_router(server.clone())
        .merge(teleportal_axum::metrics_router(Arc::new(registry)));
    let serving = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .into_future(),
    );
    Ok(Admin { stop, serving })
}

/// A line on stdout, for scripts and tests: `listening on ws://ADDR` first, then (with
/// `--admin-listen`) `admin on http://ADDR`.
fn announce(line: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(context("cannot write to stdout"))
}

/// Resolves on Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// `url` with its password replaced by `***`, for logs and errors.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// A backend this binary was built without.
fn missing_feature(feature: &str) -> Failure {
    Failure::usage(format!(
        "this teleportal was built without the `{feature}` feature; build it with \
         `cargo install --path crates/teleportal-cli --features {feature}`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(redact("postgres://app@db/app"), "postgres://app@db/app");
        assert_eq!(
            redact("s3://bucket/p?endpoint=http://x"),
            "s3://bucket/p?endpoint=http://x"
        );
        assert_eq!(redact("not a url"), "not a url");
    }
}
