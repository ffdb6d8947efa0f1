//! A Teleportal sync server with durable storage, for Teleportal and y-websocket clients.
//!
//! ```sh
//! cargo run --release --example server -- --listen 127.0.0.1:1234 --data ./data
//! ```
//!
//! Teleportal clients connect to `ws://ADDR/` (one binary frame per message), `y-websocket`
//! clients to `ws://ADDR/<document>`, for example
//! `new WebsocketProvider('ws://127.0.0.1:1234', 'my-document', doc)`. Documents live in a
//! SQLite database in the `--data` directory, created if missing.
//!
//! Without `--jwt-secret` every client may read and write every document and gets an
//! anonymous id. With `--jwt-secret SECRET` both kinds of client must pass an HS256 token
//! signed with `SECRET` as `?token=` (issuer and audience `teleportal`): a missing or invalid
//! token is refused with HTTP 401, a y-websocket connection whose token does not grant the
//! path's document with 403, and every message is checked against the token's
//! `documentAccess`.
//!
//! `--rate-limit N` allows each user (each connection when anonymous) N messages a second,
//! in bursts of up to N (acks and pings are free): a message over the limit gets a NACK with
//! `retryAfter` and changes nothing, and after 50 such refusals the connection is closed
//! with code 1008 and the reason. y-websocket connections have no NACK: their messages over
//! the limit are held back until allowed, and count as refusals all the same.
//!
//! With `--pubsub URL` several servers sharing one storage form a cluster: each publishes
//! what its clients write on the bus and relays what the others publish. `redis://…` uses
//! Redis pub/sub (feature `redis`), `nats://…` core NATS and `nats+jetstream://…` NATS with
//! JetStream replay (feature `nats`); `--node-id NAME` names this node on the bus (default:
//! host name and process id), and must differ between nodes.
//!
//! `--storage postgres://user@host:port/db` keeps documents, milestones and files in
//! PostgreSQL instead (feature `postgres`; `--schema NAME` picks the schema, default
//! `teleportal`), which is what several nodes share. `--storage s3://BUCKET[/PREFIX]?endpoint=…`
//! keeps documents in an S3-compatible store (feature `s3`; milestones and uploads in progress
//! stay in `--data`), and `--files s3://…` keeps finished files there; see `teleportal_s3`'s
//! `S3Config` for the URL, credentials come from the `AWS_*` environment variables.
//!
//! Milestones (spec §11.4: list, get, create, rename, delete, restore) are kept with the
//! documents, files (§12: upload by verified chunks, resumable; download with proofs; up to
//! 1 GiB) as plain files under `--data/files` (or in PostgreSQL with `--storage postgres://…`);
//! other RPC methods are answered `501 Unknown RPC method`. Uploads left unfinished for a day
//! are removed (checked hourly).
//!
//! Once it accepts connections it prints exactly one line to stdout, `listening on
//! ws://<addr>`, with the real port (`--listen 127.0.0.1:0` picks a free one). On Ctrl-C or
//! SIGTERM it stops accepting connections, closes every client with a reason, and closes the
//! database after its queued writes.

mod backends;

use axum::serve::ListenerExt as _;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

type Error = Box<dyn std::error::Error>;

const USAGE: &str =
    "usage: server [--listen ADDR] [--data DIR] [--jwt-secret SECRET] [--rate-limit N]
              [--storage postgres://…|s3://… [--schema NAME]] [--files s3://…]
              [--pubsub redis://…|nats://…|nats+jetstream://…] [--node-id NAME]
    (defaults 127.0.0.1:1234, ./data, no authentication, no rate limit, a single node)";

/// Refused messages a connection may send before `--rate-limit` disconnects it.
const MAX_VIOLATIONS: u32 = 50;

struct Args {
    listen: SocketAddr,
    data: PathBuf,
    jwt_secret: Option<String>,
    rate_limit: Option<u32>,
    storage: Option<String>,
    schema: Option<String>,
    files: Option<String>,
    pubsub: Option<backends::PubSubUrl>,
    node_id: Option<String>,
}

fn parse_args() -> Result<Args, Error> {
    let mut listen: SocketAddr = "127.0.0.1:1234".parse()?;
    let mut data = PathBuf::from("./data");
    let mut jwt_secret = None;
    let mut rate_limit = None;
    let mut storage = None;
    let mut schema = None;
    let mut files = None;
    let mut pubsub = None;
    let mut node_id = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                let addr = args.next().ok_or("--listen needs an address")?;
                listen = addr
                    .parse()
                    .map_err(|e| format!("--listen {addr:?}: {e}"))?;
            }
            "--data" => data = args.next().ok_or("--data needs a directory")?.into(),
            "--jwt-secret" => {
                let secret = args.next().ok_or("--jwt-secret needs a secret")?;
                if secret.is_empty() {
                    return Err("--jwt-secret must not be empty".into());
                }
                jwt_secret = Some(secret);
            }
            "--rate-limit" => {
                let n = args.next().ok_or("--rate-limit needs a number")?;
                let n: u32 = n
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--rate-limit {n:?}: not a positive number"))?;
                rate_limit = Some(n);
            }
            "--storage" => storage = Some(args.next().ok_or("--storage needs a URL")?),
            "--schema" => schema = Some(args.next().ok_or("--schema needs a name")?),
            "--files" => files = Some(args.next().ok_or("--files needs a URL")?),
            "--pubsub" => {
                let url = args.next().ok_or("--pubsub needs a URL")?;
                pubsub = Some(backends::PubSubUrl::parse(&url)?);
            }
            "--node-id" => {
                let id = args.next().ok_or("--node-id needs a name")?;
                if id.is_empty() {
                    return Err("--node-id must not be empty".into());
                }
                node_id = Some(id);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unexpected argument {other:?}\n{USAGE}").into()),
        }
    }
    Ok(Args {
        listen,
        data,
        jwt_secret,
        rate_limit,
        storage,
        schema,
        files,
        pubsub,
        node_id,
    })
}

// The library leaves the allocator to the binary. glibc's malloc kept what 2,000 connections
// had freed in its per-thread arenas (idle RSS stayed at the ~65 MB peak until `malloc_trim`);
// jemalloc's background threads hand freed pages back to the OS, so an idle server shrinks to
// ~19 MB (docs/benchmarks.md, W4).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How long a graceful shutdown may take: within the 10 s most process managers (systemd,
/// Docker, Kubernetes' default grace period is 30 s) wait before SIGKILL.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(8);

async fn run() -> Result<(), Error> {
    let args = parse_args()?;
    let stores = backends::open_stores(
        args.storage.as_deref(),
        args.schema.as_deref(),
        args.files.as_deref(),
        &args.data,
    )
    .await?;
    let pubsub = match &args.pubsub {
        Some(url) => {
            let node_id = args
                .node_id
                .clone()
                .unwrap_or_else(backends::default_node_id);
            let pubsub = backends::connect_pubsub(url, &node_id).await?;
            eprintln!("server: node {node_id} on {url:?}");
            Some(pubsub)
        }
        None => None,
    };
    // The server holds the stores from here on, and closes them when it shuts down.
    let server = backends::server(stores, pubsub);

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on ws://{addr}")?;
    stdout.flush()?;
    drop(stdout);

    // Upgraded WebSockets outlive axum's graceful shutdown, which only waits for HTTP
    // connections: the engine's shutdown is what closes them.
    let mut app = teleportal::axum::RouterBuilder::new(server.clone());
    if let Some(secret) = &args.jwt_secret {
        app = app.with_auth(teleportal::auth::TokenConfig::new(secret));
    }
    if let Some(n) = args.rate_limit {
        let rule = teleportal::auth::RateLimitRule::per_user_per_second(n);
        let limiter = teleportal::auth::MemoryRateLimiter::new(vec![rule]);
        app = app.layer(teleportal::auth::RateLimitLayer::new(
            Arc::new(limiter),
            MAX_VIOLATIONS,
        ));
    }
    let app = app.build();
    // Small frames go out at once: with Nagle's algorithm a relay could wait for the client's
    // delayed ACK (40 ms on Linux).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            eprintln!("server: cannot set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    eprintln!("server: shutting down");
    // Finishes the updates being stored (and ACKs them), closes every connection with a
    // reason, ends background work, then closes the stores (SQLite finishes its queue).
    server.shutdown(SHUTDOWN_DEADLINE).await?;
    Ok(())
}

/// Resolves on Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            eprintln!("server: cannot listen for Ctrl-C: {e}");
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
            Err(e) => {
                eprintln!("server: cannot listen for SIGTERM: {e}");
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
