//! The client-side content crypto of the Teleportal design (spec §5.2, §12.6, §16).
//!
//! The server never holds document keys; this module is for clients (and tests) that must
//! produce or read the same bytes as the reference:
//!
//! - AES-256-GCM blobs `IV(12) ‖ ciphertext ‖ tag(16)`, no AAD ([`encrypt_blob`],
//!   [`decrypt_blob`]): sidecars, encrypted awareness updates, file chunks;
//! - metadata tokens that replace type and key names in encrypted structure updates
//!   ([`metadata_token`]);
//! - document keys from a document name or a passphrase ([`simple_encryption_key`],
//!   [`password_key`]) and key-registry wrapping ([`wrap_document_key`]);
//! - deterministic file-chunk encryption, so that the same file and key give the same file id
//!   ([`FileChunkCipher`]).
//!
//! ```
//! use teleportal_core::crypto::{decrypt_blob, encrypt_blob, metadata_token, CryptoError};
//!
//! let key = [7u8; 32];
//! let blob = encrypt_blob(&key, b"hello")?;
//! assert_eq!(blob.len(), 12 + 5 + 16);
//! assert_eq!(decrypt_blob(&key, &blob)?, b"hello");
//!
//! let mut tampered = blob.clone();
//! tampered[14] ^= 1;
//! assert_eq!(decrypt_blob(&key, &tampered), Err(CryptoError::Decrypt));
//!
//! assert_eq!(metadata_token(&key, "title").len(), 32);
//! # Ok::<(), CryptoError>(())
//! ```
//!
//! # Why this shape
//! Keys are plain `[u8; 32]` arrays: every derivation here ends in one, and the reference
//! exchanges them raw (or as JWK `k`). Fallible operations return [`CryptoError`]; operations
//! on fixed-size inputs that cannot fail return their value directly.

use std::fmt;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{AeadInPlace, KeyInit, OsRng};
use aes_kw::KekAes256;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of an AES-256 key.
pub const KEY_LEN: usize = 32;
/// Length of an AES-GCM IV.
pub const IV_LEN: usize = 12;
/// Length of an AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// What a blob adds to its plaintext: IV and tag. The shortest blob is this long.
pub const BLOB_OVERHEAD: usize = IV_LEN + TAG_LEN;
/// Length of an AES-KW wrapped document key.
pub const WRAPPED_KEY_LEN: usize = KEY_LEN + 8;

/// Prefix of the HMAC input of a metadata token (§5.2).
pub const METADATA_TOKEN_PREFIX: &str = "teleportal:metadata-token:v1:";
/// PBKDF2 salt of [`simple_encryption_key`].
pub const SIMPLE_ENCRYPTION_SALT: &str = "teleportal-simple-encryption-v1";
/// PBKDF2 iterations of [`simple_encryption_key`].
pub const SIMPLE_ENCRYPTION_ITERATIONS: u32 = 100_000;
/// PBKDF2 salt prefix of [`password_key`]; the document name follows.
pub const PASSWORD_SALT_PREFIX: &str = "teleportal-pwd:";
/// PBKDF2 iterations of [`password_key`].
pub const PASSWORD_ITERATIONS: u32 = 600_000;
/// HKDF info prefix of [`key_wrapping_key`]; the user id follows.
pub const KEY_WRAPPING_INFO_PREFIX: &str = "teleportal-kwk:";
/// HKDF info of the file-chunk IV key (§12.6).
pub const FILE_IV_INFO: &str = "teleportal-file-iv";

/// Why a crypto operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A blob is shorter than IV plus tag.
    #[error("AES-GCM blob of {len} bytes is shorter than the {BLOB_OVERHEAD}-byte minimum")]
    BlobTooShort {
        /// The blob's length.
        len: usize,
    },
    /// Authentication failed: a wrong key, or tampered or truncated ciphertext.
    #[error("AES-GCM authentication failed (wrong key or tampered data)")]
    Decrypt,
    /// The plaintext exceeds what AES-GCM can encrypt under one IV.
    #[error("plaintext of {len} bytes is too long for AES-GCM")]
    PlaintextTooLong {
        /// The plaintext's length.
        len: usize,
    },
    /// The operating system's random source failed.
    #[error("the random number source failed")]
    Random,
    /// A wrapped key is not 40 bytes.
    #[error("wrapped key of {len} bytes, expected {WRAPPED_KEY_LEN}")]
    WrappedKeyLength {
        /// The wrapped key's length.
        len: usize,
    },
    /// AES-KW unwrapping failed its integrity check: a wrong wrapping key or altered bytes.
    #[error("AES key unwrap failed (wrong wrapping key or altered wrapped key)")]
    Unwrap,
    /// A JWK `k` is not base64url of a 32-byte key.
    #[error("JWK k is not base64url of a 32-byte key")]
    InvalidJwk,
}

fn cipher(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    Aes256Gcm::new(&GenericArray::from(*key))
}

fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length (RFC 2104); hmac's `new_from_slice` always returns Ok.
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

fn hkdf_sha256<const N: usize>(ikm: &[u8], info: &[&[u8]]) -> [u8; N] {
    let mut okm = [0u8; N];
    // Salt empty: HMAC pads it to the same zero block as the RFC 5869 default.
    Hkdf::<Sha256>::new(Some(&[]), ikm)
        .expand_multi_info(info, &mut okm)
        // Called only with N of 32 or 64, far below HKDF-SHA256's limit of 255 × 32.
        .expect("HKDF output length within 255 × 32");
    okm
}

/// Encrypts `plaintext` as one blob with the given IV: `iv ‖ ciphertext ‖ tag`, no AAD.
///
/// Never reuse an IV with the same key for different plaintexts; this form is for test
/// vectors and for [`FileChunkCipher`], whose IVs derive from the plaintext.
///
/// # Errors
/// [`CryptoError::PlaintextTooLong`] beyond AES-GCM's limit of about 64 GiB.
pub fn encrypt_blob_with_iv(
    key: &[u8; KEY_LEN],
    iv: &[u8; IV_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let len = plaintext.len();
    let too_long = CryptoError::PlaintextTooLong { len };
    let mut out = Vec::with_capacity(len.checked_add(BLOB_OVERHEAD).ok_or(too_long)?);
    out.extend_from_slice(iv);
    out.extend_from_slice(plaintext);
    let body = out.get_mut(IV_LEN..).ok_or(too_long)?;
    let tag = cipher(key)
        .encrypt_in_place_detached(&GenericArray::from(*iv), &[], body)
        .map_err(|_| too_long)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Encrypts `plaintext` as one blob with a fresh random IV (§16.1).
///
/// # Errors
/// [`CryptoError::Random`] if the OS random source fails; [`CryptoError::PlaintextTooLong`].
pub fn encrypt_blob(key: &[u8; KEY_LEN], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut iv = [0u8; IV_LEN];
    OsRng
        .try_fill_bytes(&mut iv)
        .map_err(|_| CryptoError::Random)?;
    encrypt_blob_with_iv(key, &iv, plaintext)
}

/// The IV of a blob (its first 12 bytes); `None` if the blob is shorter than the minimum.
pub fn blob_iv(blob: &[u8]) -> Option<[u8; IV_LEN]> {
    if blob.len() < BLOB_OVERHEAD {
        return None;
    }
    blob.first_chunk().copied()
}

/// Decrypts and authenticates a blob `iv ‖ ciphertext ‖ tag`.
///
/// # Errors
/// [`CryptoError::BlobTooShort`] under 28 bytes; [`CryptoError::Decrypt`] for a wrong key or
/// any altered byte. No plaintext is returned unless the tag checks.
pub fn decrypt_blob(key: &[u8; KEY_LEN], blob: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let too_short = CryptoError::BlobTooShort { len: blob.len() };
    let (iv, rest) = blob.split_first_chunk::<IV_LEN>().ok_or(too_short)?;
    let (ciphertext, tag) = rest.split_last_chunk::<TAG_LEN>().ok_or(too_short)?;
    let mut out = ciphertext.to_vec();
    cipher(key)
        .decrypt_in_place_detached(
            &GenericArray::from(*iv),
            &[],
            &mut out,
            &GenericArray::from(*tag),
        )
        .map_err(|_| CryptoError::Decrypt)?;
    Ok(out)
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            s.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    s
}

/// The token that stands for `name` (a root-type name, map key or format key) in an
/// encrypted structure update (§5.2): lowercase hex of the first 16 bytes of
/// `HMAC-SHA256(key, "teleportal:metadata-token:v1:" ‖ utf8(name))`, 32 characters.
pub fn metadata_token(key: &[u8; KEY_LEN], name: &str) -> String {
    let mut mac = hmac_sha256(key);
    mac.update(METADATA_TOKEN_PREFIX.as_bytes());
    mac.update(name.as_bytes());
    let digest = mac.finalize().into_bytes();
    to_hex(digest.get(..16).unwrap_or_default())
}

/// The key of `simpleEncryption()`, the reference client's default (§16.3):
/// PBKDF2-HMAC-SHA256 of the document name with a fixed salt, 100 000 iterations.
///
/// Anyone who knows the document name can derive it: it hides content from the server, not
/// from other clients.
pub fn simple_encryption_key(document_name: &str) -> [u8; KEY_LEN] {
    pbkdf2::pbkdf2_hmac_array::<Sha256, KEY_LEN>(
        document_name.as_bytes(),
        SIMPLE_ENCRYPTION_SALT.as_bytes(),
        SIMPLE_ENCRYPTION_ITERATIONS,
    )
}

/// The key of `passwordKey(passphrase)` for one document (§16.3): PBKDF2-HMAC-SHA256 with
/// salt `"teleportal-pwd:" + document_name`, 600 000 iterations.
pub fn password_key(passphrase: &str, document_name: &str) -> [u8; KEY_LEN] {
    let salt = format!("{PASSWORD_SALT_PREFIX}{document_name}");
    pbkdf2::pbkdf2_hmac_array::<Sha256, KEY_LEN>(
        passphrase.as_bytes(),
        salt.as_bytes(),
        PASSWORD_ITERATIONS,
    )
}

/// A user's key-wrapping key of `registryKey()` (§16.3): HKDF-SHA256 of the master secret,
/// empty salt, info `"teleportal-kwk:" + user_id`, 32 bytes.
pub fn key_wrapping_key(master_secret: &[u8], user_id: &str) -> [u8; KEY_LEN] {
    hkdf_sha256(
        master_secret,
        &[KEY_WRAPPING_INFO_PREFIX.as_bytes(), user_id.as_bytes()],
    )
}

/// Wraps a document key with AES-KW (RFC 3394): 40 bytes.
pub fn wrap_key(
    wrapping_key: &[u8; KEY_LEN],
    document_key: &[u8; KEY_LEN],
) -> [u8; WRAPPED_KEY_LEN] {
    let mut out = [0u8; WRAPPED_KEY_LEN];
    KekAes256::from(*wrapping_key)
        .wrap(document_key, &mut out)
        // AES-KW fails only for inputs that are not a multiple of 8 bytes (at least 16) or an
        // output of the wrong size; 32 in and 40 out are fixed by the types.
        .expect("AES-KW of 32 bytes into 40");
    out
}

/// Unwraps a 40-byte AES-KW wrapped document key.
///
/// # Errors
/// [`CryptoError::WrappedKeyLength`] unless 40 bytes; [`CryptoError::Unwrap`] when the
/// integrity check fails (wrong wrapping key, altered bytes).
pub fn unwrap_key(
    wrapping_key: &[u8; KEY_LEN],
    wrapped: &[u8],
) -> Result<[u8; KEY_LEN], CryptoError> {
    if wrapped.len() != WRAPPED_KEY_LEN {
        return Err(CryptoError::WrappedKeyLength { len: wrapped.len() });
    }
    let mut out = [0u8; KEY_LEN];
    KekAes256::from(*wrapping_key)
        .unwrap(wrapped, &mut out)
        .map_err(|_| CryptoError::Unwrap)?;
    Ok(out)
}

/// The `wrappedKey` a key registry stores for one user: the document key wrapped with
/// [`key_wrapping_key`]`(master_secret, user_id)`.
pub fn wrap_document_key(
    master_secret: &[u8],
    user_id: &str,
    document_key: &[u8; KEY_LEN],
) -> [u8; WRAPPED_KEY_LEN] {
    wrap_key(&key_wrapping_key(master_secret, user_id), document_key)
}

/// Recovers a document key from the `wrappedKey` of [`wrap_document_key`].
///
/// # Errors
/// As [`unwrap_key`].
pub fn unwrap_document_key(
    master_secret: &[u8],
    user_id: &str,
    wrapped: &[u8],
) -> Result<[u8; KEY_LEN], CryptoError> {
    unwrap_key(&key_wrapping_key(master_secret, user_id), wrapped)
}

/// A raw key as a JWK `k` member: base64url without padding.
pub fn to_jwk_k(key: &[u8; KEY_LEN]) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

/// A 32-byte key from a JWK `k` member.
///
/// # Errors
/// [`CryptoError::InvalidJwk`] unless it is unpadded base64url of exactly 32 bytes.
pub fn from_jwk_k(k: &str) -> Result<[u8; KEY_LEN], CryptoError> {
    URL_SAFE_NO_PAD
        .decode(k)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(CryptoError::InvalidJwk)
}

/// Deterministic file-chunk encryption (§12.6): the IV of each chunk is
/// `HMAC-SHA256(K_iv, chunk)[..12]` with `K_iv = HKDF-SHA256(key, salt empty,
/// "teleportal-file-iv", 64 bytes)`, so the same file under the same key always gives the
/// same ciphertext, Merkle root and file id (deduplication, resumable uploads).
///
/// The cost: equal plaintext chunks are visible as equal ciphertext chunks.
///
/// ```
/// use teleportal_core::crypto::{FileChunkCipher, CryptoError};
///
/// let cipher = FileChunkCipher::new(&[0u8; 32]);
/// let a = cipher.encrypt(b"chunk")?;
/// assert_eq!(a, cipher.encrypt(b"chunk")?); // same bytes every time
/// assert_eq!(cipher.decrypt(&a)?, b"chunk");
/// # Ok::<(), CryptoError>(())
/// ```
#[derive(Clone)]
pub struct FileChunkCipher {
    key: [u8; KEY_LEN],
    iv_key: [u8; 64],
}

impl fmt::Debug for FileChunkCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("FileChunkCipher").finish_non_exhaustive()
    }
}

impl FileChunkCipher {
    /// A cipher for the files of one document key.
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        Self {
            key: *key,
            iv_key: hkdf_sha256(key, &[FILE_IV_INFO.as_bytes()]),
        }
    }

    /// The IV of a plaintext chunk.
    pub fn iv(&self, chunk: &[u8]) -> [u8; IV_LEN] {
        let mut mac = hmac_sha256(&self.iv_key);
        mac.update(chunk);
        let digest = mac.finalize().into_bytes();
        let mut iv = [0u8; IV_LEN];
        if let Some(first) = digest.first_chunk::<IV_LEN>() {
            iv = *first;
        }
        iv
    }

    /// Encrypts one plaintext chunk: `iv ‖ ciphertext ‖ tag`, 28 bytes longer.
    ///
    /// # Errors
    /// [`CryptoError::PlaintextTooLong`] beyond AES-GCM's limit.
    pub fn encrypt(&self, chunk: &[u8]) -> Result<Vec<u8>, CryptoError> {
        encrypt_blob_with_iv(&self.key, &self.iv(chunk), chunk)
    }

    /// Decrypts one on-wire chunk. The IV is not re-derived: any valid blob under the key is
    /// accepted, as the reference does (its fallback uses random IVs).
    ///
    /// # Errors
    /// As [`decrypt_blob`].
    pub fn decrypt(&self, blob: &[u8]) -> Result<Vec<u8>, CryptoError> {
        decrypt_blob(&self.key, blob)
    }
}

/// Encrypts one file chunk deterministically; see [`FileChunkCipher`], which saves the key
/// derivation across chunks.
///
/// # Errors
/// [`CryptoError::PlaintextTooLong`] beyond AES-GCM's limit.
pub fn encrypt_file_chunk(key: &[u8; KEY_LEN], chunk: &[u8]) -> Result<Vec<u8>, CryptoError> {
    FileChunkCipher::new(key).encrypt(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
        25, 26, 27, 28, 29, 30, 31,
    ];
    const IV: [u8; 12] = [0xa0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn blob_with_fixed_iv_matches_the_reference() {
        let blob = encrypt_blob_with_iv(&KEY, &IV, b"hello").unwrap();
        assert_eq!(
            blob,
            unhex("a00102030405060708090a0b00ea83de20498297689301c40231aa5bb5773a8353")
        );
        assert_eq!(decrypt_blob(&KEY, &blob).unwrap(), b"hello");
        assert_eq!(blob_iv(&blob), Some(IV));
    }

    #[test]
    fn random_iv_blobs_differ_and_decrypt() {
        let a = encrypt_blob(&KEY, b"same").unwrap();
        let b = encrypt_blob(&KEY, b"same").unwrap();
        assert_ne!(a, b);
        assert_eq!(decrypt_blob(&KEY, &a).unwrap(), b"same");
        assert_eq!(decrypt_blob(&KEY, &b).unwrap(), b"same");
    }

    #[test]
    fn tampered_blob_is_rejected_at_every_byte() {
        let blob = encrypt_blob_with_iv(&KEY, &IV, b"secret text").unwrap();
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x80;
            assert_eq!(
                decrypt_blob(&KEY, &bad),
                Err(CryptoError::Decrypt),
                "byte {i}"
            );
        }
    }

    #[test]
    fn short_or_cut_blobs_are_typed_errors() {
        let blob = encrypt_blob_with_iv(&KEY, &IV, b"abc").unwrap();
        for cut in 0..BLOB_OVERHEAD {
            assert_eq!(
                decrypt_blob(&KEY, &blob[..cut]),
                Err(CryptoError::BlobTooShort { len: cut })
            );
        }
        for cut in BLOB_OVERHEAD..blob.len() {
            assert_eq!(decrypt_blob(&KEY, &blob[..cut]), Err(CryptoError::Decrypt));
        }
        assert_eq!(blob_iv(&blob[..27]), None);
    }

    #[test]
    fn wrong_key_is_rejected() {
        let blob = encrypt_blob(&KEY, b"abc").unwrap();
        assert_eq!(decrypt_blob(&[9; 32], &blob), Err(CryptoError::Decrypt));
    }

    #[test]
    fn metadata_token_matches_the_reference() {
        assert_eq!(
            metadata_token(&KEY, "title"),
            "d1f3463d44446fa4c9eb7ca65286c4e8"
        );
        assert_eq!(metadata_token(&KEY, ""), "899477ffd93ab17086e9c853af6b6247");
    }

    #[test]
    fn key_wrap_round_trips_and_matches_the_reference() {
        let master = b"master-secret-0123456789abcdef";
        let wrapped = wrap_document_key(master, "user-alice", &KEY);
        assert_eq!(
            wrapped.to_vec(),
            unhex(
                "b3205e312d9c4e39771a404bde2229a6850f27447fb8174fc321f508185dc7ba461fa00e32dfa281"
            )
        );
        assert_eq!(
            to_jwk_k(&key_wrapping_key(master, "user-alice")),
            "nniwyNW9Zf-sKgyIxN0wdotM-yndFrtvC0brwvzlTK0"
        );
        assert_eq!(unwrap_document_key(master, "user-alice", &wrapped), Ok(KEY));
        assert_eq!(
            unwrap_document_key(master, "user-bob", &wrapped),
            Err(CryptoError::Unwrap)
        );
        let mut bad = wrapped;
        bad[20] ^= 1;
        assert_eq!(
            unwrap_document_key(master, "user-alice", &bad),
            Err(CryptoError::Unwrap)
        );
        assert_eq!(
            unwrap_document_key(master, "user-alice", &wrapped[..32]),
            Err(CryptoError::WrappedKeyLength { len: 32 })
        );
    }

    #[test]
    fn jwk_k_round_trips_and_rejects_other_lengths() {
        let k = to_jwk_k(&KEY);
        assert_eq!(from_jwk_k(&k), Ok(KEY));
        assert_eq!(from_jwk_k("AAAA"), Err(CryptoError::InvalidJwk));
        assert_eq!(from_jwk_k("!!"), Err(CryptoError::InvalidJwk));
    }

    #[test]
    fn deterministic_chunk_matches_the_reference() {
        let chunk = encrypt_file_chunk(&KEY, b"hello teleportal file").unwrap();
        assert_eq!(
            chunk,
            unhex(
                "bb52138004347141377a62e245ade2bb2d7f9720b43590c01f6fbb6db60836b7d52ced4b23f431c1a77791357754c43602"
            )
        );
        let cipher = FileChunkCipher::new(&KEY);
        assert_eq!(cipher.decrypt(&chunk).unwrap(), b"hello teleportal file");
        assert_ne!(cipher.iv(b"a"), cipher.iv(b"b"));
        assert_eq!(format!("{cipher:?}"), "FileChunkCipher { .. }");
    }

    #[test]
    fn simple_encryption_key_matches_the_reference() {
        assert_eq!(
            simple_encryption_key("my-doc").to_vec(),
            unhex("a1a927668da4abbbdd038b2289a9c5d20405301802eb74f71cf57cd6e15ff059")
        );
    }

    proptest::proptest! {
        #[test]
        fn decrypting_any_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            proptest::prop_assert!(decrypt_blob(&KEY, &bytes).is_err());
        }

        #[test]
        fn blobs_round_trip(plain in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let blob = encrypt_blob(&KEY, &plain).unwrap();
            proptest::prop_assert_eq!(blob.len(), plain.len() + BLOB_OVERHEAD);
            proptest::prop_assert_eq!(decrypt_blob(&KEY, &blob).unwrap(), plain);
        }
    }
}
