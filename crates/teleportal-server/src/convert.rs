//! Converting updates between the forms the engine meets: Yjs V1 (storage by default,
//! y-websocket clients) and Yjs V2 inside a content envelope (Teleportal clients).
//!
//! Conversion reads the update's structs with [`teleportal_core::yjs`] and writes them in the
//! other encoding with their content bytes unchanged; no document is built.

use bytes::Bytes;
use teleportal_core::ContentEnvelope;
use teleportal_storage::{BoxError, UpdateEncoding};

/// One update in both encodings, so every kind of client gets it without converting again.
#[derive(Debug, Clone)]
pub(crate) struct UpdateForms {
    pub(crate) v1: Bytes,
    pub(crate) v2: Bytes,
    /// No structs and no deletions: nothing to store or send.
    pub(crate) empty: bool,
}

/// An update in the store's encoding as a Teleportal content envelope (V2 inside), converting
/// only what needs converting.
pub(crate) fn stored_to_envelope(
    encoding: UpdateEncoding,
    bytes: Bytes,
) -> Result<Bytes, BoxError> {
    let forms = match encoding {
        UpdateEncoding::V2 => UpdateForms {
            empty: UpdateEncoding::V2.is_empty(&bytes)?,
            v1: Bytes::new(), // not needed for an envelope
            v2: bytes,
        },
        _ => UpdateForms::from_v1(bytes)?,
    };
    Ok(forms.envelope())
}

/// An update in the store's encoding as V1 (what y-websocket clients take); no work for V1.
pub(crate) fn stored_to_v1(encoding: UpdateEncoding, bytes: Bytes) -> Result<Bytes, BoxError> {
    encoding.convert(bytes, UpdateEncoding::V1)
}

impl UpdateForms {
    /// From a Yjs V2 update (a Teleportal envelope's structure update).
    pub(crate) fn from_v2(v2: Bytes) -> Result<Self, BoxError> {
        Ok(UpdateForms {
            v1: UpdateEncoding::V2.convert(v2.clone(), UpdateEncoding::V1)?,
            empty: UpdateEncoding::V2.is_empty(&v2)?,
            v2,
        })
    }

    /// From a Yjs V1 update (y-websocket, or storage).
    pub(crate) fn from_v1(v1: Bytes) -> Result<Self, BoxError> {
        Ok(UpdateForms {
            v2: UpdateEncoding::V1.convert(v1.clone(), UpdateEncoding::V2)?,
            empty: UpdateEncoding::V1.is_empty(&v1)?,
            v1,
        })
    }

    /// From an update in the store's encoding.
    pub(crate) fn from_stored(encoding: UpdateEncoding, bytes: Bytes) -> Result<Self, BoxError> {
        match encoding {
            UpdateEncoding::V2 => Self::from_v2(bytes),
            // V1 is the default and what any future encoding is compared against.
            _ => Self::from_v1(bytes),
        }
    }

    /// The form the store keeps.
    pub(crate) fn stored(&self, encoding: UpdateEncoding) -> Bytes {
        match encoding {
            UpdateEncoding::V2 => self.v2.clone(),
            _ => self.v1.clone(),
        }
    }

    /// The content envelope a Teleportal client receives: a plaintext envelope around the V2
    /// update, or the empty envelope `01 00 00 00` when there is nothing in it (spec §4.1).
    pub(crate) fn envelope(&self) -> Bytes {
        if self.empty {
            ContentEnvelope::default().to_bytes()
        } else {
            ContentEnvelope::plain(self.v2.clone()).to_bytes()
        }
    }
}

#[cfg(test)]
mod tests {
    // A document plays the client that produced the update.
    #![allow(clippy::disallowed_types)]

    use yrs::updates::decoder::Decode;
    use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact};

    use super::*;

    fn hello_v2() -> Bytes {
        let doc = Doc::with_client_id(1);
        let text = doc.get_or_insert_text("content");
        text.insert(&mut doc.transact_mut(), 0, "hello");
        Bytes::from(
            doc.transact()
                .encode_state_as_update_v2(&StateVector::default()),
        )
    }

    #[test]
    fn v2_update_converts_to_v1_with_the_same_content() {
        let forms = UpdateForms::from_v2(hello_v2()).unwrap();
        assert!(!forms.empty);
        let doc = Doc::new();
        let text = doc.get_or_insert_text("content");
        let update = yrs::Update::decode_v1(&forms.v1).unwrap();
        doc.transact_mut().apply_update(update).unwrap();
        assert_eq!(text.get_string(&doc.transact()), "hello");
        // And back: V1 → V2 keeps it too.
        let back = UpdateForms::from_v1(forms.v1).unwrap();
        assert_eq!(
            yrs::Update::decode_v2(&back.v2).unwrap().state_vector(),
            yrs::Update::decode_v2(&hello_v2()).unwrap().state_vector()
        );
    }

    #[test]
    fn empty_stored_update_becomes_the_empty_envelope() {
        let envelope = stored_to_envelope(UpdateEncoding::V1, UpdateEncoding::V1.empty_update());
        assert_eq!(envelope.unwrap().as_ref(), &[1, 0, 0, 0]);
        let envelope = stored_to_envelope(UpdateEncoding::V2, UpdateEncoding::V2.empty_update());
        assert_eq!(envelope.unwrap().as_ref(), &[1, 0, 0, 0]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(UpdateForms::from_v2(Bytes::from_static(&[9, 9, 9])).is_err());
        assert!(UpdateForms::from_v1(Bytes::from_static(&[9, 9, 9])).is_err());
    }
}
