//! The encrypted record format (see the [module docs](super#record-format)).

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{AeadInPlace, KeyInit, OsRng};
use bytes::Bytes;

use super::{EncryptionKey, KeyProvider};
use crate::{DocumentId, FileId, StorageError};

/// The record format version this code writes and reads.
pub(super) const VERSION: u8 = 1;
pub(super) const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Where a record is stored. It is bound into the associated data, so a record copied to any
/// other place fails authentication.
#[derive(Debug, Clone, Copy)]
pub(super) enum Place<'a> {
    /// One update of a document's tail.
    Update(&'a DocumentId),
    /// A document's snapshot.
    Snapshot(&'a DocumentId),
    /// Chunk `index` of a file, finished or still being uploaded.
    FileChunk(&'a FileId, u32),
    /// A milestone's snapshot: document and milestone id.
    Milestone(&'a DocumentId, &'a str),
}

impl Place<'_> {
    /// The associated data: the record's header, then the place's kind and fields, every
    /// variable-length field prefixed by its length (u64 big-endian) so no two places encode
    /// alike.
    fn associated_data(self, header: &[u8]) -> Vec<u8> {
        fn field(out: &mut Vec<u8>, bytes: &[u8]) {
            out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        let mut aad = Vec::with_capacity(header.len() + 64);
        aad.extend_from_slice(header);
        match self {
            Place::Update(doc) => {
                aad.push(1);
                field(&mut aad, doc.as_str().as_bytes());
            }
            Place::Snapshot(doc) => {
                aad.push(2);
                field(&mut aad, doc.as_str().as_bytes());
            }
            Place::FileChunk(file, index) => {
                aad.push(3);
                aad.extend_from_slice(file.as_bytes());
                aad.extend_from_slice(&index.to_be_bytes());
            }
            // Kind 4 was an upload's chunk; uploads now seal chunks as the file's (kind 3) so
            // a finished upload keeps its records.
            Place::Milestone(doc, id) => {
                aad.push(5);
                field(&mut aad, doc.as_str().as_bytes());
                field(&mut aad, id.as_bytes());
            }
        }
        aad
    }
}

/// What a record adds to its plaintext under a key id of `key_id_len` bytes.
pub(super) fn overhead(key_id_len: usize) -> usize {
    2 + key_id_len + NONCE_LEN + TAG_LEN
}

/// Encrypts `plaintext` for `place` under `key`, with a fresh random nonce.
pub(super) fn seal(
    key: &EncryptionKey,
    place: Place<'_>,
    plaintext: &[u8],
) -> Result<Bytes, StorageError> {
    let id = key.id().as_str().as_bytes();
    // `KeyId` holds 1 to 255 bytes.
    let id_len = u8::try_from(id.len()).map_err(|_| StorageError::InvalidRequest {
        reason: format!("key id {} is too long for a record", key.id()),
    })?;
    let mut record = Vec::with_capacity(overhead(id.len()) + plaintext.len());
    record.push(VERSION);
    record.push(id_len);
    record.extend_from_slice(id);
    let header_len = record.len();
    let mut nonce = [0; NONCE_LEN];
    OsRng
        .try_fill_bytes(&mut nonce)
        .map_err(|e| StorageError::backend("encryption", e.to_string()))?;
    record.extend_from_slice(&nonce);
    let aad = place.associated_data(&record[..header_len]);
    let body = record.len();
    record.extend_from_slice(plaintext);
    let tag = cipher(key)
        .encrypt_in_place_detached(&GenericArray::from(nonce), &aad, &mut record[body..])
        .map_err(|_| StorageError::InvalidRequest {
            reason: format!(
                "{} bytes is too long for one AES-GCM record",
                plaintext.len()
            ),
        })?;
    record.extend_from_slice(&tag);
    Ok(Bytes::from(record))
}

/// Authenticates and decrypts a record stored at `place`.
///
/// Never returns plaintext that did not authenticate. Every malformed, truncated, tampered,
/// misplaced or unknown-key record is [`StorageError::Corrupt`]; a failing provider's own
/// error is returned as it is.
pub(super) fn open(
    keys: &dyn KeyProvider,
    place: Place<'_>,
    record: &[u8],
) -> Result<Bytes, StorageError> {
    let truncated = || StorageError::corrupt("encrypted record is truncated");
    let (&version, rest) = record.split_first().ok_or_else(truncated)?;
    if version != VERSION {
        return Err(StorageError::corrupt(
            "encrypted record has an unknown format version",
        ));
    }
    let (&id_len, rest) = rest.split_first().ok_or_else(truncated)?;
    let (id, rest) = rest
        .split_at_checked(usize::from(id_len))
        .ok_or_else(truncated)?;
    let (nonce, rest) = rest
        .split_first_chunk::<NONCE_LEN>()
        .ok_or_else(truncated)?;
    let (ciphertext, tag) = rest.split_last_chunk::<TAG_LEN>().ok_or_else(truncated)?;
    let header = &record[..2 + id.len()];

    let unknown_key = || StorageError::corrupt("encrypted record names an unknown key");
    let id = std::str::from_utf8(id).map_err(|_| unknown_key())?;
    let key = keys.key(id)?.ok_or_else(unknown_key)?;

    let mut plaintext = ciphertext.to_vec();
    cipher(&key)
        .decrypt_in_place_detached(
            &GenericArray::from(*nonce),
            &place.associated_data(header),
            &mut plaintext,
            &GenericArray::from(*tag),
        )
        .map_err(|_| {
            StorageError::corrupt("encrypted record failed authentication (altered or moved)")
        })?;
    Ok(Bytes::from(plaintext))
}

fn cipher(key: &EncryptionKey) -> Aes256Gcm {
    Aes256Gcm::new(&GenericArray::from(*key.as_bytes()))
}
