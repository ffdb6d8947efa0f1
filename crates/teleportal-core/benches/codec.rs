//! Encode/decode throughput of envelope messages at the sizes the reference implementation
//! reports (doc updates of ~100 B, ~10 KB and ~1 MB; an awareness update of ~200 B).
//!
//! Run with `cargo bench -p teleportal-core --bench codec`; figures go to `docs/benchmarks.md`.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use teleportal_core::Message;
use teleportal_core::codec::MessageArrayCodec;
use teleportal_core::message::{AwarenessMessage, DocMessage, Update};
use tokio_util::codec::{Decoder, Encoder};

/// Update bytes of the given size; the codec treats them as opaque, so content is arbitrary.
fn doc_update(size: usize) -> Message {
    let data: Vec<u8> = (0..size)
        .map(|i| u8::try_from(i * 31 % 251).expect("below 251"))
        .collect();
    Message::doc(
        "workspace/project/document-42",
        DocMessage::Update(Update {
            version: 2,
            data: Bytes::from(data),
        }),
    )
}

/// An awareness update of ~200 B: one client with a cursor and user object as JSON.
fn awareness_update() -> Message {
    let state = r##"{"user":{"name":"Ada Lovelace","color":"#30bced","colorLight":"#30bced33"},"cursor":{"anchor":{"type":{"client":1234567,"clock":42},"tname":null,"item":{"client":1234567,"clock":41},"assoc":0}}}"##;
    let mut update = Vec::new();
    update.push(1); // one entry
    teleportal_core::lib0::write_var_uint(&mut update, 1_234_567);
    teleportal_core::lib0::write_var_uint(&mut update, 17);
    teleportal_core::lib0::write_var_string(&mut update, state);
    Message::awareness(
        "workspace/project/document-42",
        AwarenessMessage::Update(Bytes::from(update)),
    )
}

fn cases() -> Vec<(&'static str, Message)> {
    vec![
        ("doc-update-100B", doc_update(100)),
        ("doc-update-10KB", doc_update(10 * 1024)),
        ("doc-update-1MB", doc_update(1024 * 1024)),
        ("awareness-200B", awareness_update()),
    ]
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (name, message) in cases() {
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::from_parameter(name), &message, |b, m| {
            b.iter(|| black_box(m.to_bytes()))
        });
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (name, message) in cases() {
        let bytes = message.to_bytes();
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::from_parameter(name), &bytes, |b, bytes| {
            b.iter(|| black_box(Message::decode(bytes.clone()).expect("valid message")))
        });
    }
    group.finish();
}

/// MessageArray framing through the tokio-util codec: 64 small updates on one byte stream.
fn framing(c: &mut Criterion) {
    let batch: Vec<Message> = (0..64).map(|_| doc_update(100)).collect();
    let mut group = c.benchmark_group("message-array");
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.bench_function("encode+decode-64x100B", |b| {
        b.iter(|| {
            let mut codec = MessageArrayCodec::default();
            let mut buf = BytesMut::new();
            for message in &batch {
                codec.encode(message, &mut buf).expect("encodes");
            }
            let mut decoded = 0;
            while let Some(message) = codec.decode(&mut buf).expect("decodes") {
                black_box(message);
                decoded += 1;
            }
            assert_eq!(decoded, batch.len());
        })
    });
    group.finish();
}

criterion_group!(
    name = benches;
    config = Criterion::default();
    targets = encode, decode, framing
);
criterion_main!(benches);
