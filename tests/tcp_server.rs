//! `examples/tcp_server.rs`: the engine over a plain TCP stream (MessageArray framing). Two
//! clients: one writes and is acknowledged, the other syncs and gets the text.
#![cfg(all(unix, feature = "transport", feature = "server", feature = "storage"))]

mod support;

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use teleportal::transport::MessageArrayTransport;
use teleportal_core::{Body, ContentEnvelope, DocMessage, Message, Update};
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, Text, Transact};

type Client = MessageArrayTransport<tokio::net::TcpStream>;

async fn connect(addr: &str) -> Client {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    MessageArrayTransport::new(tcp, 1 << 20)
}

async fn until(client: &mut Client, mut wanted: impl FnMut(&Message) -> bool) -> Message {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), client.next())
            .await
            .expect("a message in time")
            .expect("connection open")
            .expect("a valid message");
        if wanted(&message) {
            return message;
        }
    }
}

#[tokio::test]
async fn a_write_over_tcp_is_acknowledged_and_reaches_a_second_client() {
    let (mut child, url) = support::start_listening("tcp_server", &["127.0.0.1:0".as_ref()]);
    let addr = url
        .strip_prefix("tcp://")
        .unwrap_or_else(|| panic!("not a tcp:// address: {url}"))
        .to_owned();

    let mut writer = connect(&addr).await;
    let doc = Doc::new();
    let text = doc.get_or_insert_text("content");
    let update = {
        let mut txn = doc.transact_mut();
        text.insert(&mut txn, 0, "over tcp");
        txn.encode_update_v2()
    };
    let message = Message::doc(
        "notes",
        DocMessage::Update(Update {
            version: 2,
            data: ContentEnvelope::plain(Bytes::from(update)).to_bytes(),
        }),
    );
    let id = message.id().to_string();
    writer.send(message).await.expect("send");
    let ack = until(
        &mut writer,
        |m| matches!(&m.body, Body::Ack(a) if a.message_id == id),
    )
    .await;
    assert!(matches!(ack.body, Body::Ack(a) if a.error.is_none()));

    let mut reader = connect(&addr).await;
    let sync = DocMessage::SyncStep1 {
        state_vector: Bytes::from_static(&[0]),
    };
    reader
        .send(Message::doc("notes", sync))
        .await
        .expect("send");
    let step2 = until(&mut reader, |m| {
        matches!(m.body, Body::Doc(DocMessage::SyncStep2(_)))
    })
    .await;
    let Body::Doc(DocMessage::SyncStep2(update)) = step2.body else {
        unreachable!()
    };
    let envelope = ContentEnvelope::decode(update.data).expect("envelope");
    let fresh = Doc::new();
    let fresh_text = fresh.get_or_insert_text("content");
    let update = yrs::Update::decode_v2(&envelope.structure_update).expect("V2");
    fresh.transact_mut().apply_update(update).expect("apply");
    assert_eq!(fresh_text.get_string(&fresh.transact()), "over tcp");
    let _ = child.kill();
    let _ = child.wait();
}
