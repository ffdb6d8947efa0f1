//! A Teleportal-protocol client (a yrs `Doc` over tokio-tungstenite) and an unmodified
//! y-websocket client on one document of `teleportal serve`: each sees the other's edit.
//!
//! Needs node and `npm ci` in `tests/js`; without them this test skips, or fails under `CI`.
#![cfg(unix)]

mod support;

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use support::{Client, ServerProcess, real_clients_available};
use teleportal_core::{Body, ContentEnvelope, DocMessage, Frame, Message, Update};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact};

const DOCUMENT: &str = "mixed";

/// What a Teleportal client sends for a local change: a V2 update in a plaintext envelope.
fn update_message(update_v2: Vec<u8>) -> Message {
    Message::doc(
        DOCUMENT,
        DocMessage::Update(Update {
            version: 2,
            data: ContentEnvelope::plain(Bytes::from(update_v2)).to_bytes(),
        }),
    )
}

fn binary(message: &Message) -> WsMessage {
    WsMessage::Binary(message.to_bytes())
}

/// Applies the Yjs update inside a sync-step-2 or update from the server.
fn apply(doc: &Doc, update: &Update) {
    let envelope = ContentEnvelope::decode(update.data.clone()).expect("server sent an envelope");
    assert_eq!(
        update.version, 2,
        "the server sends V2 updates to Teleportal clients"
    );
    if envelope.structure_update.is_empty() {
        return;
    }
    let update = yrs::Update::decode_v2(&envelope.structure_update).expect("a V2 update");
    doc.transact_mut()
        .apply_update(update)
        .expect("apply update");
}

#[tokio::test]
async fn teleportal_and_y_websocket_clients_see_each_others_edits() {
    if !real_clients_available() {
        return;
    }
    let data = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(data.path());

    let (mut socket, _) = tokio_tungstenite::connect_async(format!("{}/?token=rust", server.url))
        .await
        .expect("connect the Teleportal client");
    let doc = Doc::new();
    let text = doc.get_or_insert_text("content");
    let state_vector = doc.transact().state_vector().encode_v1();
    socket
        .send(binary(&Message::doc(
            DOCUMENT,
            DocMessage::SyncStep1 {
                state_vector: Bytes::from(state_vector),
            },
        )))
        .await
        .expect("send sync-step-1");
    let update = {
        let mut txn = doc.transact_mut();
        text.insert(&mut txn, 0, "[teleportal]");
        txn.encode_update_v2()
    };
    socket
        .send(binary(&update_message(update)))
        .await
        .expect("send update");

    let y_client = Client::spawn(
        &server.url,
        DOCUMENT,
        &[
            "wait:[teleportal]",
            "insert:[y-websocket]",
            "flush",
            "print",
        ],
    );

    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let frame = socket
                .next()
                .await
                .expect("connection open")
                .expect("read from server");
            let WsMessage::Binary(bytes) = frame else {
                continue;
            };
            match Frame::decode(bytes).expect("server sent a valid frame") {
                Frame::Ping => socket
                    .send(WsMessage::Binary(Frame::Pong.to_bytes()))
                    .await
                    .expect("pong"),
                Frame::Pong => {}
                Frame::Message(message) => match message.body {
                    Body::Doc(DocMessage::SyncStep2(update) | DocMessage::Update(update)) => {
                        apply(&doc, &update);
                    }
                    Body::Doc(DocMessage::SyncStep1 { state_vector }) => {
                        let sv = StateVector::decode_v1(&state_vector).expect("state vector");
                        let diff = doc.transact().encode_state_as_update_v2(&sv);
                        let reply = Message::doc(
                            DOCUMENT,
                            DocMessage::SyncStep2(Update {
                                version: 2,
                                data: ContentEnvelope::plain(Bytes::from(diff)).to_bytes(),
                            }),
                        );
                        socket.send(binary(&reply)).await.expect("send sync-step-2");
                    }
                    _ => {}
                },
            }
            let content = text.get_string(&doc.transact());
            if content.contains("[y-websocket]") {
                return content;
            }
        }
    })
    .await
    .expect("the y-websocket client's edit reached the Teleportal client");

    let y_seen = y_client.finish();
    let y_content = y_seen["content"].as_str().expect("content");
    assert!(y_content.contains("[teleportal]"), "{y_content}");
    assert_eq!(seen, y_content, "both clients hold the same text");
}
