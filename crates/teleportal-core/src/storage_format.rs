//! Storage-only framing (spec §13, last line): `encodeVersionedBytes`, one version byte in
//! front of the stored bytes so a store can change what it keeps without guessing.
//!
//! Not part of the socket protocol; a Rust store reading what the TypeScript server wrote
//! needs it.

use bytes::{BufMut, Bytes};

use crate::DecodeError;
use crate::lib0::Reader;

/// Bytes tagged with the version of the format they are in: `u8 version ‖ data`.
///
/// ```
/// use bytes::Bytes;
/// use teleportal_core::storage_format::VersionedBytes;
///
/// // A stored empty content envelope, in storage format 2.
/// let stored = VersionedBytes { version: 2, data: Bytes::from_static(&[1, 0, 0, 0]) };
/// assert_eq!(&stored.to_bytes()[..], &[2, 1, 0, 0, 0]);
/// assert_eq!(VersionedBytes::decode(stored.to_bytes())?, stored);
/// # Ok::<(), teleportal_core::DecodeError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionedBytes {
    /// The format version of `data`.
    pub version: u8,
    /// The stored bytes, running to the end of the input.
    pub data: Bytes,
}

impl VersionedBytes {
    /// Decodes one version byte and takes the rest as data (a slice of `bytes`).
    ///
    /// # Errors
    /// Empty input: there is no version byte.
    pub fn decode(bytes: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.read_u8("storage format version")?;
        Ok(Self {
            version,
            data: r.read_rest(),
        })
    }

    /// Appends the encoding to `buf`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.version);
        buf.put_slice(&self.data);
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = Vec::with_capacity(self.data.len().saturating_add(1));
        self.encode(&mut buf);
        Bytes::from(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_bytes_round_trip() {
        let v = VersionedBytes {
            version: 7,
            data: Bytes::from_static(b"stored"),
        };
        assert_eq!(VersionedBytes::decode(v.to_bytes()), Ok(v));
    }

    #[test]
    fn empty_input_has_no_version_byte() {
        assert!(matches!(
            VersionedBytes::decode(Bytes::new()),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
    }

    #[test]
    fn version_byte_alone_gives_empty_data() {
        let v = VersionedBytes::decode(Bytes::from_static(&[2])).unwrap();
        assert_eq!(v.version, 2);
        assert!(v.data.is_empty());
    }

    #[test]
    fn data_is_a_slice_of_the_input() {
        let input = Bytes::from_static(&[2, 1, 0, 0, 0]);
        let v = VersionedBytes::decode(input.clone()).unwrap();
        assert_eq!(v.data.as_ptr(), input[1..].as_ptr());
    }
}
