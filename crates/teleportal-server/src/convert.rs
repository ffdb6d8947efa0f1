//! Converting updates between the forms the engine meets: Yjs V1 (storage by default,
//! y-websocket clients) and Yjs V2 inside a content envelope (Teleportal clients).
//!
//! Conversion decodes the update's structs with yrs and re-encodes them; no document is built.

use bytes::Bytes;
use teleportal_core::ContentEnvelope;
use teleportal_storage::UpdateEncoding;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;

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
) -> Result<Bytes, yrs::encoding::read::Error> {
    let forms = match encoding {
        UpdateEncoding::V2 => {
            let empty = yrs::Update::decode_v2(&bytes)?.is_empty();
            UpdateForms {
                v1: Bytes::new(), // not needed for an envelope
                v2: bytes,
                empty,
            }
        }
        _ => UpdateForms::from_v1(bytes)?,
    };
    Ok(forms.envelope())
}

/// An update in the store's encoding as V1 (what y-websocket clients take); no work for V1.
pub(crate) fn stored_to_v1(
    encoding: UpdateEncoding,
    bytes: Bytes,
) -> Result<Bytes, yrs::encoding::read::Error> {
    match encoding {
        UpdateEncoding::V2 => Ok(Bytes::from(yrs::Update::decode_v2(&bytes)?.encode_v1())),
        _ => Ok(bytes),
    }
}

impl UpdateForms {
    /// From a Yjs V2 update (a Teleportal envelope's structure update).
    pub(crate) fn from_v2(v2: Bytes) -> Result<Self, yrs::encoding::read::Error> {
        let update = yrs::Update::decode_v2(&v2)?;
        Ok(UpdateForms {
            v1: Bytes::from(update.encode_v1()),
            empty: update.is_empty(),
            v2,
        })
    }

    /// From a Yjs V1 update (y-websocket, or storage).
    pub(crate) fn from_v1(v1: Bytes) -> Result<Self, yrs::encoding::read::Error> {
        let update = yrs::Update::decode_v1(&v1)?;
        Ok(UpdateForms {
            v2: Bytes::from(update.encode_v2()),
            empty: update.is_empty(),
            v1,
        })
    }

    /// From an update in the store's encoding.
    pub(crate) fn from_stored(
        encoding: UpdateEncoding,
        bytes: Bytes,
    ) -> Result<Self, yrs::encoding::read::Error> {
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
