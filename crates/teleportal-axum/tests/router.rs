//! The router over real sockets: which path speaks which protocol, and how connections end.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use teleportal_core::y_protocols::SyncMessage;
use teleportal_core::{Body, ContentEnvelope, DocMessage, Frame, Message, Update, YMessage};
use teleportal_server::{Access, ClientContext, PermissionChecker, Server, ServerConfig};
use teleportal_storage::{DocumentStore, MemoryStorage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, StateVector, Text, Transact};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn start() -> (SocketAddr, Server) {
    serve_app(Server::new(DocumentStore::new(MemoryStorage::new()))).await
}

async fn serve_app(server: Server) -> (SocketAddr, Server) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let app = teleportal_axum::router(server.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, server)
}

async fn connect(addr: SocketAddr, path: &str) -> Socket {
    let (socket, _) = connect_async(format!("ws://{addr}{path}"))
        .await
        .expect("websocket handshake");
    socket
}

/// The next binary message, within a few seconds.
async fn next_binary(socket: &mut Socket) -> Bytes {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await.expect("socket open").expect("read") {
                WsMessage::Binary(bytes) => return bytes,
                WsMessage::Close(close) => panic!("closed: {close:?}"),
                _ => {}
            }
        }
    })
    .await
    .expect("a message within 5 s")
}

#[tokio::test]
async fn ping_on_the_teleportal_route_is_answered_with_pong() {
    let (addr, _server) = start().await;
    let mut socket = connect(addr, "/").await;
    socket
        .send(WsMessage::Binary(Frame::Ping.to_bytes()))
        .await
        .expect("send ping");
    assert_eq!(&next_binary(&mut socket).await[..], &teleportal_axum::PONG);
}

/// Waits for the server to end the connection (a close frame or the stream's end); what it
/// sent before (the y-protocols greeting) is skipped.
async fn closed_by_server(socket: &mut Socket) {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await {
                None | Some(Ok(WsMessage::Close(_)) | Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .expect("the server ends the connection within 5 s");
}

#[tokio::test]
async fn bytes_that_are_no_frame_end_the_teleportal_connection() {
    let (addr, _server) = start().await;
    let mut socket = connect(addr, "/").await;
    socket
        .send(WsMessage::Binary(Bytes::from_static(b"hello")))
        .await
        .expect("send garbage");
    closed_by_server(&mut socket).await;
}

#[tokio::test]
async fn text_message_ends_the_teleportal_connection() {
    let (addr, _server) = start().await;
    let mut socket = connect(addr, "/").await;
    socket
        .send(WsMessage::Text("YJSping".into()))
        .await
        .expect("send text");
    closed_by_server(&mut socket).await;
}

#[tokio::test]
async fn message_over_the_size_limit_ends_the_connection() {
    let server = Server::builder(DocumentStore::new(MemoryStorage::new()))
        .config(ServerConfig::default().with_max_message_size(1024))
        .build();
    let (addr, _server) = serve_app(server).await;
    let mut socket = connect(addr, "/notes").await;
    let update = YMessage::Sync(SyncMessage::Update(Bytes::from(vec![0; 4096])));
    socket
        .send(WsMessage::Binary(update.to_bytes()))
        .await
        .expect("send a large message");
    closed_by_server(&mut socket).await;
}

#[tokio::test]
async fn plain_http_request_is_not_upgraded() {
    let (addr, _server) = start().await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /notes HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("send request");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("read response");
    let status = String::from_utf8_lossy(&response);
    let status = status.lines().next().unwrap_or_default();
    assert!(
        status.starts_with("HTTP/1.1 4"),
        "a non-WebSocket request is a client error, got {status:?}"
    );
}

/// A document written by a Teleportal client reaches a y-websocket client whose path names
/// it, percent-decoded and with its slashes.
#[tokio::test]
async fn path_names_the_y_protocols_document() {
    let (addr, _server) = start().await;
    let writer = Doc::new();
    let update = {
        let text = writer.get_or_insert_text("content");
        let mut txn = writer.transact_mut();
        text.insert(&mut txn, 0, "hello");
        txn.encode_update_v2()
    };
    let mut teleportal = connect(addr, "/?token=writer").await;
    let message = Message::doc(
        "team/notes 1",
        DocMessage::Update(Update {
            version: 2,
            data: ContentEnvelope::plain(Bytes::from(update)).to_bytes(),
        }),
    );
    teleportal
        .send(WsMessage::Binary(message.to_bytes()))
        .await
        .expect("send update");
    // The ACK says the update is stored.
    loop {
        let frame = Frame::decode(next_binary(&mut teleportal).await).expect("a frame");
        if matches!(&frame, Frame::Message(m) if matches!(m.body, Body::Ack(_))) {
            break;
        }
    }

    let mut y = connect(addr, "/team/notes%201").await;
    let step1 = YMessage::Sync(SyncMessage::Step1(Bytes::from(
        StateVector::default().encode_v1(),
    )));
    y.send(WsMessage::Binary(step1.to_bytes()))
        .await
        .expect("send sync step 1");
    let reader = Doc::new();
    loop {
        if let YMessage::Sync(SyncMessage::Step2(update)) =
            YMessage::decode(next_binary(&mut y).await).expect("a y-protocols message")
        {
            let update = yrs::Update::decode_v1(&update).expect("a V1 update");
            reader.transact_mut().apply_update(update).expect("apply");
            break;
        }
    }
    let text = reader.get_or_insert_text("content");
    assert_eq!(text.get_string(&reader.transact()), "hello");
}

/// Records who asked for what.
#[derive(Default)]
struct Recorder(Mutex<Vec<(String, String)>>);

#[async_trait]
impl PermissionChecker for Recorder {
    async fn check(&self, client: &ClientContext, document: &str, _access: Access) -> bool {
        let mut seen = self.0.lock().expect("not poisoned");
        seen.push((client.client_id.clone(), document.to_owned()));
        true
    }
}

/// Without a verifier a token proves nothing, so it must never become the client id: the id
/// is shown to other clients in presence, and the token would leak with it.
#[tokio::test]
async fn unverified_token_is_never_the_client_id_and_clients_get_distinct_ids() {
    let recorder = Arc::new(Recorder::default());
    let server = Server::builder(DocumentStore::new(MemoryStorage::new()))
        .permissions(recorder.clone())
        .build();
    let (addr, _server) = serve_app(server).await;
    for path in ["/notes?token=secret-token", "/notes", "/notes"] {
        let mut socket = connect(addr, path).await;
        let step1 = YMessage::Sync(SyncMessage::Step1(Bytes::from_static(&[0])));
        socket
            .send(WsMessage::Binary(step1.to_bytes()))
            .await
            .expect("send sync step 1");
        // An answer means the permission hook ran for this client.
        next_binary(&mut socket).await;
    }
    let mut clients: Vec<String> = recorder
        .0
        .lock()
        .expect("not poisoned")
        .iter()
        .map(|(client, document)| {
            assert_eq!(document, "notes");
            client.clone()
        })
        .collect();
    clients.sort();
    clients.dedup();
    assert_eq!(clients.len(), 3, "{clients:?}");
    assert!(
        clients.iter().all(|c| c.starts_with("anonymous-")),
        "{clients:?}"
    );
}

#[tokio::test]
async fn shutdown_closes_clients_with_going_away_and_a_reason() {
    let (addr, server) = start().await;
    let mut socket = connect(addr, "/notes").await;
    // Wait for the connection to be served before shutting down.
    let step1 = YMessage::Sync(SyncMessage::Step1(Bytes::from_static(&[0])));
    socket
        .send(WsMessage::Binary(step1.to_bytes()))
        .await
        .expect("send sync step 1");
    next_binary(&mut socket).await;
    server
        .shutdown(Duration::from_secs(5))
        .await
        .expect("clean shutdown");
    let close = close_frame(&mut socket).await;
    assert_eq!(close.code, CloseCode::Away);
    assert!(!close.reason.is_empty(), "the close frame says why");
}

/// Lets nobody read `secret/…`.
struct NoSecrets;

#[teleportal_server::async_trait]
impl teleportal_server::PermissionChecker for NoSecrets {
    async fn check(
        &self,
        _: &teleportal_server::ClientContext,
        document: &str,
        _: teleportal_server::Access,
    ) -> bool {
        !document.starts_with("secret/")
    }
}

#[tokio::test]
async fn a_denied_y_websocket_document_closes_with_policy_violation_and_the_reason() {
    let server = Server::builder(DocumentStore::new(MemoryStorage::new()))
        .permissions(NoSecrets)
        .build();
    let (addr, _server) = serve_app(server).await;
    let mut socket = connect(addr, "/secret/plans").await;
    let close = close_frame(&mut socket).await;
    assert_eq!(close.code, CloseCode::Policy);
    assert_eq!(
        close.reason.as_str(),
        "Insufficient permissions to access document secret/plans"
    );
}

/// The close frame the server ends `socket` with, skipping what comes before it.
async fn close_frame(socket: &mut Socket) -> tokio_tungstenite::tungstenite::protocol::CloseFrame {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await {
                Some(Ok(WsMessage::Close(close))) => return close,
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("closed within 5 s")
    .expect("a close frame with a code")
}
