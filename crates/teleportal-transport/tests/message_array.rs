//! MessageArray framing over in-memory byte pipes.

mod support;

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use teleportal_core::Message;
use teleportal_transport::{MessageArrayCodec, MessageArrayTransport, TransportError};
use tokio::io::AsyncWriteExt;
use tokio_util::codec::Encoder;

use support::update;

/// Deterministic message sizes and chunk lengths without a rand dependency.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(self.0 >> 33).unwrap() % n
    }
}

fn messages(count: usize, rng: &mut Lcg) -> Vec<Message> {
    (0..count)
        .map(|i| {
            update(
                &format!("doc-{}", i % 7),
                rng.below(3000),
                u8::try_from(i % 251).unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn many_messages_round_trip_through_a_small_pipe() {
    let msgs = messages(500, &mut Lcg(1));
    // A 13-byte pipe splits every message across many reads and writes.
    let (a, b) = tokio::io::duplex(13);
    let mut tx = MessageArrayTransport::new(a, 4096);
    let mut rx = MessageArrayTransport::new(b, 4096);
    let send = async {
        for m in &msgs {
            tx.feed(m.clone()).await.unwrap();
        }
        tx.close().await.unwrap();
    };
    let recv = async {
        let mut got = Vec::new();
        while let Some(m) = rx.next().await {
            got.push(m.unwrap());
        }
        got
    };
    let ((), got) = tokio::join!(send, recv);
    assert_eq!(got, msgs);
}

#[tokio::test]
async fn messages_split_at_arbitrary_points_decode_whole() {
    let mut rng = Lcg(7);
    let msgs = messages(200, &mut rng);
    let mut wire = BytesMut::new();
    let mut codec = MessageArrayCodec::new();
    for m in &msgs {
        codec.encode(m, &mut wire).unwrap();
    }
    let (mut a, b) = tokio::io::duplex(64 * 1024);
    let mut rx = MessageArrayTransport::new(b, 4096);
    let write = async {
        let mut rest = &wire[..];
        while !rest.is_empty() {
            let n = (1 + rng.below(40)).min(rest.len());
            a.write_all(&rest[..n]).await.unwrap();
            a.flush().await.unwrap();
            rest = &rest[n..];
        }
        a.shutdown().await.unwrap();
    };
    let read = async {
        let mut got = Vec::new();
        while let Some(m) = rx.next().await {
            got.push(m.unwrap());
        }
        got
    };
    let ((), got) = tokio::join!(write, read);
    assert_eq!(got, msgs);
}

#[tokio::test]
async fn declared_length_above_the_limit_is_rejected_before_the_body_arrives() {
    let (mut a, b) = tokio::io::duplex(64);
    let mut rx = MessageArrayTransport::new(b, 100);
    assert_eq!(rx.max_message_size(), 100);
    // varUint 1000 = e8 07; no body follows.
    a.write_all(&[0xe8, 0x07]).await.unwrap();
    let err = rx.next().await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::MessageTooLarge {
                size: 1000,
                max: 100
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "message-too-large: 1000 > 100 bytes");
}

#[tokio::test]
async fn sending_a_message_above_the_limit_fails() {
    let (a, _b) = tokio::io::duplex(64);
    let mut tx = MessageArrayTransport::new(a, 10);
    let err = tx.send(update("d", 50, 0)).await.unwrap_err();
    assert!(
        matches!(err, TransportError::MessageTooLarge { max: 10, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn garbage_element_is_a_decode_error() {
    let (mut a, b) = tokio::io::duplex(64);
    let mut rx = MessageArrayTransport::new(b, 100);
    a.write_all(&[3, b'a', b'b', b'c']).await.unwrap();
    assert!(matches!(
        rx.next().await,
        Some(Err(TransportError::Decode(_)))
    ));
}
