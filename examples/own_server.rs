//! A server of your own: `cargo run --example own_server -- 127.0.0.1:1234 ./data SECRET`.
//! Token from `Authorization: Bearer` or `?token=`; token grants plus our rule; appends counted.
use std::{sync::Arc, sync::atomic::AtomicU64, sync::atomic::Ordering::Relaxed, time::Duration};
use teleportal::auth::{MemoryRateLimiter, RateLimitLayer, RateLimitRule, TokenConfig};
use teleportal::axum::{ConnectRequest, RouterBuilder, verify_token};
use teleportal::server::{Access, ClientContext, PermissionChecker, Server, async_trait};
use teleportal::storage::{AppendOptions, AppendReceipt, DelegateStorage, DocumentStorage};
use teleportal::storage::{DocumentId as Id, DocumentStore, StorageError as E};
use {bytes::Bytes, futures::FutureExt, teleportal::sqlite::SqliteStorage};
/// A storage decorator: counts appends, forwards everything else.
struct Counted(SqliteStorage, AtomicU64);
#[async_trait]
impl DelegateStorage for Counted {
    type Inner = SqliteStorage;
    fn inner(&self) -> &SqliteStorage {
        &self.0
    }
    async fn append(&self, d: &Id, u: Bytes, o: AppendOptions) -> Result<AppendReceipt, E> {
        self.1.fetch_add(1, Relaxed);
        self.0.append(d, u, o).await
    }
}
/// Our rule, asked beside the token's grants: nothing under `archive/` is written.
struct NoArchiveWrites;
#[async_trait]
impl PermissionChecker for NoArchiveWrites {
    async fn check(&self, _: &ClientContext, doc: &str, access: Access) -> bool {
        access == Access::Read || !doc.starts_with("archive/")
    }
}
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, data, secret] = &args[..] else {
        return Err("usage: LISTEN DATA SECRET".into());
    };
    let storage = Counted(SqliteStorage::open(data)?, AtomicU64::new(0));
    let server = Server::builder(DocumentStore::new(storage))
        .permissions(NoArchiveWrites)
        .build();
    let tokens = Arc::new(TokenConfig::new(secret));
    let limiter = MemoryRateLimiter::new(vec![RateLimitRule::per_user_per_second(200)]);
    let app = RouterBuilder::new(server.clone())
        .authenticate(move |r: ConnectRequest| {
            let header = r.headers.get("authorization").and_then(|h| h.to_str().ok());
            let bearer = header.and_then(|h| h.strip_prefix("Bearer "));
            let token = bearer.or(r.query.get("token").map(String::as_str));
            let client = verify_token(&tokens, token, r.document.as_deref());
            std::future::ready(client.map_err(axum::response::IntoResponse::into_response))
        })
        .layer(RateLimitLayer::new(Arc::new(limiter), 20))
        .build();
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on ws://{}", listener.local_addr()?);
    let ctrl_c = tokio::signal::ctrl_c().map(drop);
    axum::serve(listener, app)
        .with_graceful_shutdown(ctrl_c)
        .await?;
    Ok(server.shutdown(Duration::from_secs(8)).await?)
}
