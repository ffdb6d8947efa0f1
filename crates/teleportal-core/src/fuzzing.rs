//! Entry points for the cargo-fuzz targets in `fuzz/`. Not a stable API.
//!
//! Each function decodes arbitrary bytes and, when that succeeds, asserts that encoding the
//! value and decoding it again gives the same value: a decoder that accepts bytes must
//! describe them faithfully. A panic here is a bug the fuzzer reports.

use bytes::{Bytes, BytesMut};

use crate::{Frame, PubSubFrame, YMessage, message_array};

/// Teleportal envelope frames (messages, ping, pong) and content envelopes.
pub fn envelope(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(frame) = Frame::decode(bytes.clone()) {
        let again = Frame::decode(frame.to_bytes()).expect("re-encoded frame must decode");
        assert_eq!(frame, again, "frame round trip");
    }
    if let Ok(env) = crate::ContentEnvelope::decode(bytes.clone()) {
        let again = crate::ContentEnvelope::decode(env.to_bytes()).expect("re-encoded envelope");
        assert_eq!(env, again, "content envelope round trip");
    }
    if let Ok(frame) = PubSubFrame::decode(bytes) {
        assert_eq!(PubSubFrame::decode(frame.to_bytes()).ok(), Some(frame));
    }
}

/// y-protocols messages.
pub fn y_protocols(data: &[u8]) {
    if let Ok(msg) = YMessage::decode(Bytes::copy_from_slice(data)) {
        let again = YMessage::decode(msg.to_bytes()).expect("re-encoded y-protocols message");
        assert_eq!(msg, again, "y-protocols round trip");
    }
}

/// MessageArray bodies, whole and through the streaming codec.
pub fn message_array(data: &[u8]) {
    let whole = message_array::decode(Bytes::copy_from_slice(data));
    if let Ok(messages) = &whole {
        let again = message_array::decode(message_array::encode(messages))
            .expect("re-encoded message array");
        assert_eq!(messages, &again, "message array round trip");
    }
    #[cfg(feature = "codec")]
    {
        use tokio_util::codec::Decoder;
        let mut codec = crate::codec::MessageArrayCodec::with_max_message_size(1 << 20);
        let mut buf = BytesMut::from(data);
        let mut streamed = Vec::new();
        let streamed_ok = loop {
            match codec.decode(&mut buf) {
                Ok(Some(m)) => streamed.push(m),
                Ok(None) => break buf.is_empty(),
                Err(_) => break false,
            }
        };
        // The streaming decoder agrees with the whole-body decoder on complete input.
        if let Ok(messages) = whole {
            assert!(streamed_ok, "codec rejected a valid message array");
            assert_eq!(messages, streamed, "codec and whole-body decoder disagree");
        }
    }
    #[cfg(not(feature = "codec"))]
    let _ = BytesMut::new();
}

/// The functions of [`crate::yjs`] for one encoding.
#[derive(Clone, Copy)]
struct Codec {
    v2: bool,
    merge: fn(&[&[u8]]) -> YjsResult<Vec<u8>>,
    compact: fn(&[&[u8]]) -> YjsResult<Vec<u8>>,
    diff: fn(&[u8], &[u8]) -> YjsResult<Vec<u8>>,
    state_vector: fn(&[u8]) -> YjsResult<Vec<u8>>,
    meta: fn(&[u8]) -> YjsResult<crate::yjs::UpdateMeta>,
    is_empty: fn(&[u8]) -> YjsResult<bool>,
    /// To the other encoding.
    convert: fn(&[u8]) -> YjsResult<Vec<u8>>,
}

type YjsResult<T> = Result<T, crate::yjs::UpdateError>;

const V1: Codec = Codec {
    v2: false,
    merge: crate::yjs::merge_updates_v1,
    compact: crate::yjs::compact_updates_v1,
    diff: crate::yjs::diff_update_v1,
    state_vector: crate::yjs::encode_state_vector_from_update_v1,
    meta: crate::yjs::parse_update_meta_v1,
    is_empty: crate::yjs::is_empty_update_v1,
    convert: crate::yjs::convert_update_v1_to_v2,
};

const V2: Codec = Codec {
    v2: true,
    merge: crate::yjs::merge_updates_v2,
    compact: crate::yjs::compact_updates_v2,
    diff: crate::yjs::diff_update_v2,
    state_vector: crate::yjs::encode_state_vector_from_update_v2,
    meta: crate::yjs::parse_update_meta_v2,
    is_empty: crate::yjs::is_empty_update_v2,
    convert: crate::yjs::convert_update_v2_to_v1,
};

impl Codec {
    fn other(self) -> Codec {
        if self.v2 { V1 } else { V2 }
    }
}

/// Every V1 function of [`crate::yjs`] on the bytes as a V1 update; none may panic. A diff
/// against the update's own state vector succeeds, a merge of the update alone is the update,
/// compacting a compacted update changes nothing, and when it converts to V2, the V2 form
/// reads, with the same state vector, metadata and emptiness, converts back, and converting
/// once more changes nothing; compacting keeps the state vector.
pub fn yjs_update_v1(data: &[u8]) {
    yjs_update(data, V1);
}

/// [`yjs_update_v1`] with the bytes read as a V2 update.
pub fn yjs_update_v2(data: &[u8]) {
    yjs_update(data, V2);
}

fn yjs_update(data: &[u8], codec: Codec) {
    let sv = (codec.state_vector)(data);
    let meta = (codec.meta)(data);
    let empty = (codec.is_empty)(data);
    let merged = (codec.merge)(&[data]);
    let compacted = (codec.compact)(&[data]);
    let _ = (codec.diff)(data, data);
    if let Ok(sv) = &sv {
        let diff = (codec.diff)(data, sv);
        assert!(diff.is_ok(), "diff against its own state vector: {diff:?}");
    }
    if let Ok(m) = &merged {
        assert_eq!(m, data, "merging one update returns it");
    }
    if let (Ok(sv), Ok(c)) = (&sv, &compacted) {
        let csv = (codec.state_vector)(c);
        assert_eq!(csv.as_ref(), Ok(sv), "compacting keeps the state vector");
    }
    if let Ok(c) = &compacted {
        let again = (codec.compact)(&[c]).expect("a compacted update compacts");
        assert_eq!(&again, c, "compacting a compacted update changes nothing");
    }
    let Ok(converted) = (codec.convert)(data) else {
        return;
    };
    // What converts is a readable update: every reading of it succeeds, in both encodings.
    let sv = sv.expect("state vector of an update that converts");
    let meta = meta.expect("metadata of an update that converts");
    let empty = empty.expect("emptiness of an update that converts");
    let other = codec.other();
    let other_sv = (other.state_vector)(&converted).expect("state vector of a converted update");
    let other_meta = (other.meta)(&converted).expect("metadata of a converted update");
    let other_empty = (other.is_empty)(&converted).expect("emptiness of a converted update");
    assert_eq!(other_empty, empty, "emptiness across V1/V2");
    assert_eq!(other_sv, sv, "state vector across V1/V2");
    assert_eq!(other_meta, meta, "metadata across V1/V2");
    // Back to where it came from, and one more round is a fixed point.
    let back = (other.convert)(&converted).expect("a converted update converts back");
    let again = (codec.convert)(&back).expect("an update converted back converts again");
    assert_eq!(
        again, converted,
        "converting after a round trip changes nothing"
    );
}

/// Splits the bytes into 2 to 4 updates and merges them.
///
/// Layout: one mode byte (bits 0–1: 2 + (bits % 3) updates; bit 2: V2 rather than V1), then
/// a u16 little-endian length for every update but the last (clamped to what is left), then
/// the updates one after another; the last takes the rest.
///
/// Properties: a merge that succeeds gives an update whose state vector decodes, which
/// compacts, whose compacted form has the same state vector and metadata, and which diffs
/// against its own state vector and the first input's. When V1 inputs all convert, merging
/// their V2 forms gives the V2 form of the merge.
pub fn yjs_merge(data: &[u8]) {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let count = 2 + usize::from(mode & 3) % 3;
    let codec = if mode & 4 != 0 { V2 } else { V1 };
    let mut lens = Vec::with_capacity(count);
    for _ in 1..count {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            return;
        };
        lens.push(usize::from(u16::from_le_bytes(*len)));
        rest = tail;
    }
    let mut parts: Vec<&[u8]> = Vec::with_capacity(count);
    for len in lens {
        let (part, tail) = rest.split_at(len.min(rest.len()));
        parts.push(part);
        rest = tail;
    }
    parts.push(rest);

    let merged = (codec.merge)(&parts);
    let compacted = (codec.compact)(&parts);
    let Ok(merged) = merged else {
        return;
    };
    let sv = (codec.state_vector)(&merged).expect("state vector of a merge");
    let compacted = compacted.expect("what merges compacts");
    assert_eq!(
        (codec.state_vector)(&compacted).as_ref(),
        Ok(&sv),
        "compacting keeps the merge's state vector"
    );
    assert_eq!(
        (codec.meta)(&compacted),
        (codec.meta)(&merged),
        "compacting keeps the merge's metadata"
    );
    (codec.diff)(&merged, &sv).expect("a merge diffs against its own state vector");
    if let Ok(first_sv) = (codec.state_vector)(parts[0]) {
        (codec.diff)(&merged, &first_sv).expect("a merge diffs against an input's state vector");
    }
    if codec.v2 {
        return;
    }
    let converted: Result<Vec<Vec<u8>>, _> = parts.iter().map(|p| (V1.convert)(p)).collect();
    if let Ok(converted) = converted {
        let refs: Vec<&[u8]> = converted.iter().map(Vec::as_slice).collect();
        let merged_v2 = (V2.merge)(&refs).expect("V2 forms of a merge merge");
        let want = (V1.convert)(&merged).expect("a V1 merge converts");
        assert_eq!(merged_v2, want, "merge commutes with V1 -> V2");
    }
}
