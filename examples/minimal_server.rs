//! The smallest durable sync server: both protocols, documents in SQLite, graceful shutdown.
//!
//! ```sh
//! cargo run --example minimal_server -- 127.0.0.1:1234 ./data
//! ```
//!
//! Teleportal clients connect to `ws://127.0.0.1:1234/`, y-websocket clients to
//! `ws://127.0.0.1:1234/<document>`. The `teleportal serve` command is this plus flags for
//! every backend and setting; `own_server` adds tokens, a policy and a storage decorator.
use std::time::Duration;

use futures::FutureExt;
use teleportal::server::Server;
use teleportal::sqlite::SqliteStorage;
use teleportal::storage::DocumentStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:1234".into());
    let data = args.next().unwrap_or_else(|| "./data".into());

    let server = Server::builder(DocumentStore::new(SqliteStorage::open(&data)?)).build();
    let app = teleportal::axum::router(server.clone());

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on ws://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(tokio::signal::ctrl_c().map(drop))
        .await?;
    // Stores and acknowledges what clients sent, closes them with a reason, closes SQLite.
    Ok(server.shutdown(Duration::from_secs(8)).await?)
}
