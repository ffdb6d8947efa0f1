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
