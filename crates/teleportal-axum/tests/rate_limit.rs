//! Rate limits through real WebSockets: one client floods while others edit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use teleportal_auth::{MemoryRateLimiter, RateLimitLayer, RateLimitRule};
use teleportal_core::y_protocols::SyncMessage;
use teleportal_core::{Body, ContentEnvelope, DocMessage, Frame, Message, Update, YMessage};
use teleportal_server::Server;
use teleportal_server::prometheus_client::registry::Registry;
use teleportal_storage::{DocumentStore, MemoryStorage};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use yrs::updates::encoder::Encode;
use yrs::{Doc, StateVector, Text, Transact};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Per user (here: per anonymous connection) 5 messages a second; 20 refusals disconnect.
/// Returns the address and the registry the layer counts in.
async fn start() -> (SocketAddr, Arc<Registry>) {
    let server = Server::new(DocumentStore::new(MemoryStorage::new()));
    let limiter = Arc::new(MemoryRateLimiter::new(vec![
        RateLimitRule::per_user_per_second(5),
    ]));
    let mut registry = Registry::default();
    let layer = RateLimitLayer::new(limiter, 20).with_metrics(&mut registry);
    let app = teleportal_axum::RouterBuilder::new(server)
        .layer(layer)
        .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, Arc::new(registry))
}

/// The value of `name` (a metric without labels) in `registry`.
fn metric(registry: &Registry, name: &str) -> u64 {
    let mut text = String::new();
    teleportal_server::prometheus_client::encoding::text::encode(&mut text, registry)
        .expect("encode");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
}

async fn connect(addr: SocketAddr) -> Socket {
    connect_async(format!("ws://{addr}/"))
        .await
        .expect("websocket handshake")
        .0
}

/// An update inserting `text` from a fresh client.
fn update(text: &str) -> Message {
    let doc = Doc::new();
    let bytes = {
        let t = doc.get_or_insert_text("content");
        let mut txn = doc.transact_mut();
        t.insert(&mut txn, 0, text);
        txn.encode_update_v2()
    };
    Message::doc(
        "shared",
        DocMessage::Update(Update {
            version: 2,
            data: ContentEnvelope::plain(Bytes::from(bytes)).to_bytes(),
        }),
    )
}

async fn send(socket: &mut Socket, message: &Message) {
    socket
        .send(WsMessage::Binary(message.to_bytes()))
        .await
        .expect("send");
}

/// The next message frame within 5 s, or `None` once the server closed with `code`.
async fn next_message(socket: &mut Socket) -> Result<Message, Option<u16>> {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await {
                Some(Ok(WsMessage::Binary(bytes))) => {
                    if let Frame::Message(m) = Frame::decode(bytes).expect("a frame") {
                        return Ok(m);
                    }
                }
                Some(Ok(WsMessage::Close(close))) => {
                    return Err(close.map(|c| u16::from(c.code)));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Err(None),
            }
        }
    })
    .await
    .expect("a message or a close within 5 s")
}

#[tokio::test]
async fn flooder_is_limited_and_others_updates_still_arrive() {
    let (addr, registry) = start().await;

    // A reader joins the document.
    let mut reader = connect(addr).await;
    let step1 = Message::doc(
        "shared",
        DocMessage::SyncStep1 {
            state_vector: Bytes::from(StateVector::default().encode_v1()),
        },
    );
    send(&mut reader, &step1).await;
    // Its sync answers (sync-step-2, sync-step-1, ack) arrive; wait for the ACK.
    loop {
        let m = next_message(&mut reader).await.expect("open");
        if matches!(m.body, Body::Ack(_)) {
            break;
        }
    }

    // The flooder sends 100 updates without waiting.
    let mut flooder = connect(addr).await;
    for i in 0..100 {
        send(&mut flooder, &update(&format!("flood {i}"))).await;
    }

    // Meanwhile a well-behaved writer's update is accepted and reaches the reader.
    let mut writer = connect(addr).await;
    let edit = update("hello from the writer");
    send(&mut writer, &edit).await;
    let ack = next_message(&mut writer).await.expect("open");
    let Body::Ack(ack) = ack.body else {
        panic!("expected an ack, got {ack:?}");
    };
    assert!(ack.is_positive(), "{ack:?}");
    let mut got_writer_update = false;
    for _ in 0..200 {
        let m = next_message(&mut reader).await.expect("reader stays open");
        if m.body == edit.body {
            got_writer_update = true;
            break;
        }
    }
    assert!(got_writer_update, "the writer's update reached the reader");

    // The flooder got positive ACKs for its burst, then retryAfter NACKs, then was closed
    // with "policy violation".
    let (mut positive, mut retry) = (0, 0);
    let code = loop {
        match next_message(&mut flooder).await {
            Ok(m) => match m.body {
                Body::Ack(ack) if ack.is_positive() => positive += 1,
                Body::Ack(ack) => {
                    assert!(ack.retry_after.is_some_and(|ms| ms > 0), "{ack:?}");
                    retry += 1;
                }
                _ => {}
            },
            Err(code) => break code,
        }
    };
    // At most the burst of 5 plus what refilled meanwhile on a slow machine was admitted. Not
    // all of those need be acked: the close after the last tolerated violation can overtake
    // ACKs still waiting for their durable write, and the client retransmits those later.
    assert!(positive <= 20, "{positive} accepted");
    assert_eq!(retry, 20, "one NACK per tolerated violation");
    assert_eq!(code, Some(1008));
    // The 20 NACKed and the one that closed the connection; nothing was held back.
    assert_eq!(
        metric(&registry, "teleportal_rate_limit_exceeded_total"),
        21
    );
    assert_eq!(metric(&registry, "teleportal_rate_limit_delayed_total"), 0);
}

/// y-protocols has no NACK: over the limit the server holds messages back, and past the
/// allowed violations closes with 1008.
#[tokio::test]
async fn y_websocket_flooder_is_slowed_then_closed() {
    let (addr, registry) = start().await;
    let (mut socket, _) = connect_async(format!("ws://{addr}/shared"))
        .await
        .expect("websocket handshake");
    let started = std::time::Instant::now();
    for i in 0..40 {
        let doc = Doc::new();
        let bytes = {
            let t = doc.get_or_insert_text("content");
            let mut txn = doc.transact_mut();
            t.insert(&mut txn, 0, &format!("flood {i}"));
            txn.encode_update_v1()
        };
        let message = YMessage::Sync(SyncMessage::Update(Bytes::from(bytes)));
        if socket
            .send(WsMessage::Binary(message.to_bytes()))
            .await
            .is_err()
        {
            break;
        }
    }
    let code = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                Some(Ok(WsMessage::Close(close))) => return close.map(|c| u16::from(c.code)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
    .expect("closed within 10 s");
    assert_eq!(code, Some(1008));
    // 5 messages pass at once; each of the 20 tolerated violations waits ~200 ms before it
    // is handled, so the close cannot come sooner than a few seconds.
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // 20 held back (each ~200 ms at 5 a second), and the one that closed the connection.
    assert_eq!(
        metric(&registry, "teleportal_rate_limit_exceeded_total"),
        21
    );
    assert_eq!(metric(&registry, "teleportal_rate_limit_delayed_total"), 20);
    let delay = metric(&registry, "teleportal_rate_limit_delay_ms_total");
    assert!((2_000..=10_000).contains(&delay), "{delay} ms held in all");
}
