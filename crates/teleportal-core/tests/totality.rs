//! Every decoder is total: every truncation and many single-byte mutations of every shared
//! vector (and of every byte string nested in the vectors' fields) give a value or an error —
//! never a panic — and no decode allocates more than a small multiple of its input.

// Measuring allocations needs a `GlobalAlloc`, which is unsafe to implement; it only forwards
// to `System`. The library crates themselves forbid unsafe code.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use serde_json::Value;
use teleportal_core::attribution::{ContentIds, ContentMap};
use teleportal_core::lib0::Reader;
use teleportal_core::milestone::{Milestone, MilestoneMeta, MilestoneMetaDoc};
use teleportal_core::sidecar::SidecarPlaintext;
use teleportal_core::storage_format::VersionedBytes;
use teleportal_core::y_protocols::AwarenessUpdate;
use teleportal_core::{Any, ContentEnvelope, Frame, PubSubFrame, YMessage, message_array};

/// Records the largest single allocation made on this thread while armed.
struct MaxAllocation;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only records sizes.
unsafe impl GlobalAlloc for MaxAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.with(|l| l.set(l.get().max(layout.size())));
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr came from System.alloc with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.with(|l| l.set(l.get().max(new_size)));
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: MaxAllocation = MaxAllocation;

type Decoder = fn(Bytes);

/// Every decoder of the crate that takes bytes from the network or from storage.
fn decoders() -> Vec<(&'static str, Decoder)> {
    vec![
        ("frame", |b| drop(Frame::decode(b))),
        ("content envelope", |b| drop(ContentEnvelope::decode(b))),
        ("message array", |b| drop(message_array::decode(b))),
        ("pub/sub frame", |b| drop(PubSubFrame::decode(b))),
        ("y-protocols", |b| drop(YMessage::decode(b))),
        ("awareness update", |b| drop(AwarenessUpdate::decode(b))),
        ("lib0 Any", |b| drop(Any::decode(b))),
        ("lib0 varUint", |b| {
            let _ = Reader::new(b).read_var_uint("x");
        }),
        ("lib0 varInt", |b| {
            let _ = Reader::new(b).read_var_int("x");
        }),
        ("lib0 varString", |b| {
            drop(Reader::new(b).read_var_string("x"))
        }),
        ("sidecar plaintext", |b| drop(SidecarPlaintext::decode(b))),
        ("milestone meta", |b| drop(MilestoneMeta::decode(b))),
        ("milestone", |b| drop(Milestone::decode(b))),
        ("milestone meta doc", |b| drop(MilestoneMetaDoc::decode(b))),
        ("attribution content ids", |b| drop(ContentIds::decode(b))),
        ("attribution content map", |b| drop(ContentMap::decode(b))),
        ("versioned storage bytes", |b| {
            drop(VersionedBytes::decode(b))
        }),
        #[cfg(feature = "merkle")]
        ("serialized merkle tree", |b| {
            drop(teleportal_core::merkle::MerkleTree::decode(b))
        }),
        #[cfg(feature = "codec")]
        ("message array codec", |b| {
            use tokio_util::codec::Decoder as _;
            let mut codec =
                teleportal_core::codec::MessageArrayCodec::with_max_message_size(1 << 16);
            let mut buf = bytes::BytesMut::from(&b[..]);
            while let Ok(Some(_)) = codec.decode(&mut buf) {}
        }),
    ]
}

fn collect_bytes(value: &Value, out: &mut Vec<Vec<u8>>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(h)) = map.get("$bytes") {
                out.extend(hex::decode(h).ok());
            }
            map.values().for_each(|v| collect_bytes(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_bytes(v, out)),
        _ => {}
    }
}

fn shared_inputs() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for file in ["teleportal-wire-v1.json", "y-protocols-v1.json"] {
        let path = format!("{}/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path} (a copy of the shared vectors) is missing: {e}"));
        let doc: Value = serde_json::from_str(&text).expect("vector JSON");
        for v in doc["vectors"].as_array().expect("vectors array") {
            for key in ["hex", "canonical_hex"] {
                if let Some(h) = v.get(key).and_then(Value::as_str) {
                    out.push(hex::decode(h).expect("vector hex"));
                }
            }
            collect_bytes(&v["fields"], &mut out);
        }
    }
    // Large inputs (1 MiB Merkle data) add time, not coverage.
    out.retain(|b| b.len() <= 4096);
    out.sort();
    out.dedup();
    out
}

/// Runs `decode` on `input` and checks the allocation bound: element vectors may grow to a
/// few dozen bytes per input byte (an `Any` is 40 bytes), never to a declared length.
fn run(name: &str, decode: Decoder, input: &[u8]) {
    let bytes = Bytes::copy_from_slice(input);
    LARGEST.with(|l| l.set(0));
    decode(bytes);
    let largest = LARGEST.with(Cell::get);
    let bound = 96 * input.len() + 4096;
    assert!(
        largest <= bound,
        "{name} allocated {largest} bytes for a {}-byte input {}",
        input.len(),
        hex::encode(input)
    );
}

#[test]
fn every_truncation_of_every_vector_decodes_or_errors() {
    let inputs = shared_inputs();
    assert!(inputs.len() > 300, "only {} inputs", inputs.len());
    for (name, decode) in decoders() {
        for input in &inputs {
            for end in 0..input.len() {
                run(name, decode, &input[..end]);
            }
        }
    }
}

#[test]
fn single_byte_mutations_of_every_vector_decode_or_error() {
    let inputs = shared_inputs();
    let mut mutated = 0usize;
    for (name, decode) in decoders() {
        for input in &inputs {
            let mut buf = input.clone();
            for i in 0..buf.len() {
                let original = buf[i];
                for value in [
                    0x00,
                    0xff,
                    0x80,
                    0x7f,
                    0x01,
                    original ^ 0x01,
                    original ^ 0x80,
                    original.wrapping_add(1),
                ] {
                    buf[i] = value;
                    run(name, decode, &buf);
                    mutated += 1;
                }
                buf[i] = original;
            }
        }
    }
    assert!(mutated > 100_000, "only {mutated} mutations");
}

#[test]
fn huge_declared_lengths_allocate_nothing_large() {
    // Lengths and counts of 2^32 − 1 in every position that takes one.
    let huge = [0xff, 0xff, 0xff, 0xff, 0x0f];
    let mut cases: Vec<Vec<u8>> = Vec::new();
    let prefixes: [&[u8]; 6] = [
        b"YJS\x01",                  // document name length
        b"YJS\x01\x01d\x00\x00\x02", // update length
        b"YJS\x01\x01d\x00\x03\x03", // presence heartbeat count
        b"",                         // message array element length
        b"\x01",                     // envelope structure length
        b"\x75",                     // Any array count
    ];
    for p in prefixes {
        let mut c = p.to_vec();
        c.extend_from_slice(&huge);
        c.extend_from_slice(&[1, 2, 3]);
        cases.push(c);
    }
    for (name, decode) in decoders() {
        for c in &cases {
            LARGEST.with(|l| l.set(0));
            decode(Bytes::copy_from_slice(c));
            let largest = LARGEST.with(Cell::get);
            assert!(
                largest < 4096,
                "{name} allocated {largest} bytes for {}",
                hex::encode(c)
            );
        }
    }
}
