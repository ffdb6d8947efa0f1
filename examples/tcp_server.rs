//! The engine over a plain TCP stream, no WebSocket: Teleportal messages framed as a
//! MessageArray (spec §17.1), one connection per client, documents in memory, no
//! authentication (every peer may read and write every document).
//!
//! ```sh
//! cargo run --example tcp_server -- 127.0.0.1:4000
//! ```
use std::time::Duration;

use futures::{SinkExt, StreamExt, TryStreamExt, stream};
use teleportal::core::Frame;
use teleportal::server::{ClientContext, Server, serve};
use teleportal::storage::{DocumentStore, MemoryStorage};
use teleportal::transport::MessageArrayTransport;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4000".into());
    let server = Server::new(DocumentStore::new(MemoryStorage::new()));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on tcp://{}", listener.local_addr()?);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = accepted?;
                let server = server.clone();
                tokio::spawn(async move {
                    let max = server.config().max_message_size;
                    let (sink, messages) = MessageArrayTransport::new(tcp, max).split();
                    // The engine speaks frames; a MessageArray carries messages only, so its
                    // pings and pongs (a WebSocket's keepalive) are not sent.
                    let incoming = messages.map_ok(Frame::Message);
                    let outgoing = sink.with_flat_map(|frame| match frame {
                        Frame::Message(message) => stream::iter(Some(Ok(message))),
                        _ => stream::iter(None),
                    });
                    let client = ClientContext::new(peer.to_string());
                    let outgoing = Box::pin(outgoing);
                    match serve(&server, client, incoming, outgoing).await {
                        Ok(reason) => eprintln!("{peer}: closed ({reason:?})"),
                        Err(error) => eprintln!("{peer}: {error}"),
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    server.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}
