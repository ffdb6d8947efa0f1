//! A real WebSocket round trip: tokio-tungstenite client and server over local TCP.
#![cfg(feature = "tungstenite")]

mod support;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use teleportal_core::y_protocols::SyncMessage;
use teleportal_core::{Frame, YMessage};
use teleportal_transport::ws::{FrameStream, YMessageStream};
use teleportal_transport::{
    Layer, MaxMessageSizeLayer, MeteredLayer, TransportError, TransportMetrics,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{WebSocketStream, accept_async, client_async};

use support::update;

async fn connect() -> (WebSocketStream<TcpStream>, WebSocketStream<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = async {
        let (tcp, _) = listener.accept().await.unwrap();
        accept_async(tcp).await.unwrap()
    };
    let client = async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        client_async(format!("ws://{addr}/doc?token=t"), tcp)
            .await
            .unwrap()
            .0
    };
    tokio::join!(server, client)
}

#[tokio::test]
async fn frames_round_trip_through_tungstenite_with_pong_answers() {
    let (server_ws, client_ws) = connect().await;
    let metrics = TransportMetrics::new();
    // Server: size limit on raw payloads, metrics on frames; echoes messages, answers pings.
    let server = tokio::spawn({
        let metrics = metrics.clone();
        async move {
            let framed: FrameStream<_, WsMessage> =
                FrameStream::new(MaxMessageSizeLayer::new(4096).layer(server_ws));
            let mut conn = MeteredLayer::new(metrics).layer(framed);
            let mut too_large = 0;
            while let Some(frame) = conn.next().await {
                match frame {
                    Ok(Frame::Ping) => conn.send(Frame::Pong).await.unwrap(),
                    Ok(frame) => conn.send(frame).await.unwrap(),
                    Err(TransportError::MessageTooLarge { max: 4096, .. }) => too_large += 1,
                    Err(e) => panic!("server: {e}"),
                }
            }
            too_large
        }
    });

    let mut client: FrameStream<_, WsMessage> = FrameStream::new(client_ws);
    client.send(Frame::Ping).await.unwrap();
    assert_eq!(client.next().await.unwrap().unwrap(), Frame::Pong);
    let frames: Vec<Frame> = (0..50)
        .map(|i| Frame::Message(update("doc", i * 37, 1)))
        .collect();
    for f in &frames {
        client.feed(f.clone()).await.unwrap();
    }
    client.flush().await.unwrap();
    for f in &frames {
        assert_eq!(client.next().await.unwrap().unwrap(), *f);
    }
    client
        .send(Frame::Message(update("doc", 5000, 0)))
        .await
        .unwrap();
    // A close frame ends the server's stream; tungstenite completes the close handshake.
    client.close().await.unwrap();

    assert_eq!(server.await.unwrap(), 1);
    let s = metrics.snapshot();
    assert_eq!((s.messages_in, s.messages_out, s.errors_in), (51, 51, 1));
}

#[tokio::test]
async fn text_frames_are_rejected_and_y_messages_round_trip() {
    let (server_ws, mut client_ws) = connect().await;
    let server = tokio::spawn(async move {
        let mut conn: YMessageStream<_, WsMessage> = YMessageStream::new(server_ws);
        let mut texts = 0;
        while let Some(msg) = conn.next().await {
            match msg {
                Ok(msg) => conn.send(msg).await.unwrap(),
                Err(TransportError::TextFrame { len: 5 }) => texts += 1,
                Err(e) => panic!("server: {e}"),
            }
        }
        texts
    });
    let msg = YMessage::Sync(SyncMessage::Step1(Bytes::from_static(&[0])));
    client_ws.send(WsMessage::text("hello")).await.unwrap();
    client_ws
        .send(WsMessage::Binary(msg.to_bytes()))
        .await
        .unwrap();
    let mut client: YMessageStream<_, WsMessage> = YMessageStream::new(client_ws);
    assert_eq!(client.next().await.unwrap().unwrap(), msg);
    client.close().await.unwrap();
    assert_eq!(server.await.unwrap(), 1);
}
