//! `/ready` as a load balancer sees it: ready while PostgreSQL answers, 503 with the cause
//! once the database is unreachable (a proxy in front of the real server is cut), ready again
//! when it comes back, and 503 from the moment a shutdown starts. `/health` and `/status`
//! answer throughout.
#![cfg(all(feature = "postgres", feature = "axum"))]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{TestSchema, database_url, run_id};
use teleportal::postgres::{PostgresConfig, PostgresStorage};
use teleportal::server::Server;
use teleportal::storage::DocumentStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP proxy to PostgreSQL that can be cut (every connection dropped, new ones refused)
/// and restored on the same port.
struct Proxy {
    port: u16,
    target: String,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Proxy {
            port,
            target,
            tasks: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let target = self.target.clone();
        let tasks = Arc::clone(&self.tasks);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                let pipe = tokio::spawn(async move {
                    if let Ok(mut upstream) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
                tasks.lock().unwrap().push(pipe);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Drops every connection and stops listening.
    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Listens on the same port again.
    async fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }
}

/// `GET path` over a fresh connection: the status code and the body.
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let code = response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_follows_the_database_and_the_drain() {
    let Some(schema) = TestSchema::new(&format!("readiness_{}", run_id())) else {
        return;
    };
    let url = database_url();
    let (scheme_and_user, rest) = url.split_once('@').expect("postgres://user@host:port/db");
    let (host_port, database) = rest.split_once('/').unwrap_or((rest, ""));
    let proxy = Proxy::start(host_port.to_owned()).await;
    let through_proxy = format!("{scheme_and_user}@127.0.0.1:{}/{database}", proxy.port);
    let config = PostgresConfig::from_url(&through_proxy)
        .unwrap()
        .with_schema(&schema.name);
    let storage = PostgresStorage::connect(config).await.unwrap();
    let server = Server::new(DocumentStore::new(storage));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let admin = teleportal::axum::admin_router(server.clone());
    let serving = tokio::spawn(async move { axum::serve(listener, admin).await });

    let (code, body) = get(addr, "/ready").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""ready":true"#), "{body}");

    proxy.cut();
    let (code, body) = get(addr, "/ready").await;
    assert_eq!(code, 503, "the database is unreachable: {body}");
    assert!(body.contains(r#""ready":false"#), "{body}");
    assert!(body.contains("postgres"), "the cause is named: {body}");
    let (code, _) = get(addr, "/health").await;
    assert_eq!(code, 200, "alive all the same");

    proxy.restore().await;
    let mut ready_again = false;
    for _ in 0..50 {
        if get(addr, "/ready").await.0 == 200 {
            ready_again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready_again, "ready again once the database is back");

    server.shutdown(Duration::from_secs(5)).await.unwrap();
    let (code, body) = get(addr, "/ready").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains(r#""shuttingDown":true"#), "{body}");
    let (code, body) = get(addr, "/status").await;
    assert_eq!(code, 200);
    assert!(body.contains(r#""shuttingDown":true"#), "{body}");

    serving.abort();
    proxy.cut();
    drop(schema);
}
