//! The bytes of the `meta` and `index` files: small explicit binary records, little-endian,
//! each opening with a magic and a version byte.
//!
//! ```text
//! meta  = "TPLm" version:u8 flags:u8 id:[u8;32] size:u64 last_modified:u64
//!         chunk_size:u32 chunk_count:u32 [started_secs:u64 started_nanos:u32]
//!         filename:str mime_type:str [document:str]          str = len:u32 utf8[len]
//! index = "TPLi" version:u8 count:u32 count × (chunk:u32 offset:u64 len:u32)
//! ```
//!
//! `flags` bit 0 is `encrypted`, bit 1 says a document follows, bit 2 that a start time
//! does (upload sessions have one, finished files need none). Index entries are sorted by
//! chunk index without repeats, and only received chunks have one: the declared
//! `chunk_count` comes from a client, so nothing is allocated per declared chunk.
//!
//! Decoding is total: any bytes give a value or [`StorageError::Corrupt`], never a panic, and
//! never allocate more than the input holds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use teleportal_storage::{DocumentId, FileId, FileMetadata, StorageError};

const META_MAGIC: &[u8; 4] = b"TPLm";
const INDEX_MAGIC: &[u8; 4] = b"TPLi";
const VERSION: u8 = 1;

const ENCRYPTED: u8 = 1;
const HAS_DOCUMENT: u8 = 1 << 1;
const HAS_STARTED_AT: u8 = 1 << 2;
const KNOWN_FLAGS: u8 = ENCRYPTED | HAS_DOCUMENT | HAS_STARTED_AT;

/// The longest `meta` a store writes or reads: names this long are no real file's, and the
/// bound keeps a damaged file from making a huge allocation.
pub(super) const MAX_META_LEN: u64 = 1 << 20;

/// The bytes of one index entry.
const ENTRY_LEN: usize = 4 + 8 + 4;
/// The index header: magic, version, count.
const INDEX_HEADER_LEN: usize = 4 + 1 + 4;

/// Where one chunk's bytes lie in a `data` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Extent {
    /// Byte offset into `data`.
    pub(super) offset: u64,
    /// Length in bytes.
    pub(super) len: u32,
}

impl Extent {
    /// The offset just past the chunk, or `None` on overflow (only a corrupt index has one).
    pub(super) fn end(self) -> Option<u64> {
        self.offset.checked_add(u64::from(self.len))
    }
}

/// The largest index file `chunk_count` chunks can have: a bound to check a file's size
/// against before reading it whole.
pub(super) fn max_index_len(chunk_count: u32) -> u64 {
    // Cannot overflow: u32::MAX × 16 + 9 is far below u64::MAX.
    INDEX_HEADER_LEN as u64 + u64::from(chunk_count) * ENTRY_LEN as u64
}

/// Encodes a file's metadata, with the session's start time for an upload.
pub(super) fn encode_meta(metadata: &FileMetadata, started_at: Option<SystemTime>) -> Vec<u8> {
    let mut flags = 0;
    if metadata.encrypted {
        flags |= ENCRYPTED;
    }
    if metadata.document.is_some() {
        flags |= HAS_DOCUMENT;
    }
    if started_at.is_some() {
        flags |= HAS_STARTED_AT;
    }
    let mut out = Vec::with_capacity(128 + metadata.filename.len() + metadata.mime_type.len());
    out.extend_from_slice(META_MAGIC);
    out.push(VERSION);
    out.push(flags);
    out.extend_from_slice(metadata.id.as_bytes());
    out.extend_from_slice(&metadata.size.to_le_bytes());
    out.extend_from_slice(&metadata.last_modified.to_le_bytes());
    out.extend_from_slice(&metadata.chunk_size.to_le_bytes());
    out.extend_from_slice(&metadata.chunk_count.to_le_bytes());
    if let Some(started_at) = started_at {
        // A clock before 1970 is recorded as 1970: sessions only compare start times.
        let since = started_at.duration_since(UNIX_EPOCH).unwrap_or_default();
        out.extend_from_slice(&since.as_secs().to_le_bytes());
        out.extend_from_slice(&since.subsec_nanos().to_le_bytes());
    }
    put_str(&mut out, &metadata.filename);
    put_str(&mut out, &metadata.mime_type);
    if let Some(document) = &metadata.document {
        put_str(&mut out, document.as_str());
    }
    out
}

/// [`encode_meta`], refusing metadata too long to be read back.
///
/// # Errors
/// [`StorageError::InvalidRequest`] when the record would be longer than [`MAX_META_LEN`].
pub(super) fn encode_meta_checked(
    metadata: &FileMetadata,
    started_at: Option<SystemTime>,
) -> Result<Vec<u8>, StorageError> {
    let bytes = encode_meta(metadata, started_at);
    if bytes.len() as u64 > MAX_META_LEN {
        return Err(StorageError::InvalidRequest {
            reason: format!(
                "file {}: names of {} bytes are too long to store",
                metadata.id,
                bytes.len()
            ),
        });
    }
    Ok(bytes)
}

/// Decodes [`encode_meta`]'s bytes.
///
/// # Errors
/// [`StorageError::Corrupt`] for anything but a whole, well-formed record.
pub(super) fn decode_meta(
    bytes: &[u8],
) -> Result<(FileMetadata, Option<SystemTime>), StorageError> {
    let mut r = Reader(bytes);
    r.header(META_MAGIC, "meta file has a wrong magic or version")?;
    let flags = r.u8()?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(StorageError::corrupt("meta file has unknown flags"));
    }
    let id = FileId::new(r.array()?);
    let size = r.u64()?;
    let last_modified = r.u64()?;
    let chunk_size = r.u32()?;
    let chunk_count = r.u32()?;
    let started_at = if flags & HAS_STARTED_AT != 0 {
        let secs = r.u64()?;
        let nanos = r.u32()?;
        if nanos >= 1_000_000_000 {
            return Err(StorageError::corrupt("meta file has an invalid start time"));
        }
        let time = UNIX_EPOCH
            .checked_add(Duration::new(secs, nanos))
            .ok_or_else(|| StorageError::corrupt("meta file has an invalid start time"))?;
        Some(time)
    } else {
        None
    };
    let filename = r.string()?;
    let mime_type = r.string()?;
    let document = if flags & HAS_DOCUMENT != 0 {
        Some(DocumentId::from(r.string()?))
    } else {
        None
    };
    r.finish()?;
    // `FileMetadata` is non-exhaustive: built by `new`, then every field this record holds.
    let mut metadata = FileMetadata::new(id, filename, size, mime_type, chunk_size, chunk_count);
    metadata.last_modified = last_modified;
    metadata.encrypted = flags & ENCRYPTED != 0;
    metadata.document = document;
    Ok((metadata, started_at))
}

/// Encodes index entries, which must come sorted by chunk index without repeats.
pub(super) fn encode_index(entries: impl ExactSizeIterator<Item = (u32, Extent)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(INDEX_HEADER_LEN + entries.len() * ENTRY_LEN);
    out.extend_from_slice(INDEX_MAGIC);
    out.push(VERSION);
    // Entries have distinct u32 indexes, so there are at most 2^32 of them; the `take`
    // keeps the count and the entries written in agreement even so.
    let count = u32::try_from(entries.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_le_bytes());
    for (index, extent) in entries.take(usize::try_from(count).unwrap_or(usize::MAX)) {
        out.extend_from_slice(&index.to_le_bytes());
        out.extend_from_slice(&extent.offset.to_le_bytes());
        out.extend_from_slice(&extent.len.to_le_bytes());
    }
    out
}

/// Decodes [`encode_index`]'s bytes into `(chunk index, extent)` pairs, ascending.
///
/// # Errors
/// [`StorageError::Corrupt`] for anything but a whole, well-formed index.
pub(super) fn decode_index(bytes: &[u8]) -> Result<Vec<(u32, Extent)>, StorageError> {
    let mut r = Reader(bytes);
    r.header(INDEX_MAGIC, "index file has a wrong magic or version")?;
    let count = r.u32()?;
    // Checked before allocating: the count must describe exactly the bytes that follow.
    if usize::try_from(count)
        .ok()
        .and_then(|n| n.checked_mul(ENTRY_LEN))
        != Some(r.0.len())
    {
        return Err(StorageError::corrupt(
            "index file length disagrees with its count",
        ));
    }
    let mut entries: Vec<(u32, Extent)> = Vec::with_capacity(r.0.len() / ENTRY_LEN);
    for _ in 0..count {
        let index = r.u32()?;
        let extent = Extent {
            offset: r.u64()?,
            len: r.u32()?,
        };
        if entries.last().is_some_and(|(last, _)| *last >= index) {
            return Err(StorageError::corrupt("index file entries are out of order"));
        }
        entries.push((index, extent));
    }
    r.finish()?;
    Ok(entries)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // A name past 4 GiB cannot arrive in a request; were one to, it would be cut (and read
    // back as corrupt), never written with a length that disagrees with its bytes.
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    let bytes = s
        .as_bytes()
        .get(..usize::try_from(len).unwrap_or(usize::MAX))
        .unwrap_or_default();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

/// A bounded cursor over untrusted bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StorageError> {
        let (head, rest) = self
            .0
            .split_at_checked(n)
            .ok_or_else(|| StorageError::corrupt("stored file is truncated"))?;
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StorageError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or_else(|| StorageError::corrupt("stored file is truncated"))?;
        self.0 = rest;
        Ok(*head)
    }

    fn header(&mut self, magic: &[u8; 4], reason: &'static str) -> Result<(), StorageError> {
        if self.array::<4>()? != *magic || self.u8()? != VERSION {
            return Err(StorageError::corrupt(reason));
        }
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, StorageError> {
        self.array::<1>().map(|[b]| b)
    }

    fn u32(&mut self) -> Result<u32, StorageError> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, StorageError> {
        self.array().map(u64::from_le_bytes)
    }

    fn string(&mut self) -> Result<String, StorageError> {
        let len = usize::try_from(self.u32()?)
            .map_err(|_| StorageError::corrupt("stored file is truncated"))?;
        // `take` checks the length against the bytes present before anything is copied.
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| StorageError::corrupt("stored name is not UTF-8"))
    }

    fn finish(&self) -> Result<(), StorageError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(StorageError::corrupt("stored file has trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn metadata() -> FileMetadata {
        FileMetadata::new(FileId::new([9; 32]), "ä.txt", 12_345, "text/plain", 4096, 4)
            .with_document(DocumentId::from("room/notes"))
            .with_encrypted(true)
            .with_last_modified(1_700_000_000_123)
    }

    fn is_corrupt<T: std::fmt::Debug>(result: Result<T, StorageError>) -> bool {
        matches!(result, Err(StorageError::Corrupt { .. }))
    }

    #[test]
    fn meta_round_trips_with_and_without_start_time() {
        let started = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let plain = FileMetadata::new(FileId::new([1; 32]), "", 0, "", 1, 0);
        for (metadata, started_at) in [
            (metadata(), Some(started)),
            (metadata(), None),
            (plain, None),
        ] {
            let bytes = encode_meta(&metadata, started_at);
            assert_eq!(decode_meta(&bytes).unwrap(), (metadata, started_at));
        }
    }

    #[test]
    fn index_round_trips_sparse_entries() {
        let entries: BTreeMap<u32, Extent> = [
            (0, Extent { offset: 40, len: 7 }),
            (5, Extent { offset: 0, len: 40 }),
            (
                u32::MAX,
                Extent {
                    offset: u64::MAX,
                    len: u32::MAX,
                },
            ),
        ]
        .into();
        let bytes = encode_index(entries.clone().into_iter());
        assert_eq!(bytes.len() as u64, max_index_len(3));
        let decoded: BTreeMap<u32, Extent> = decode_index(&bytes).unwrap().into_iter().collect();
        assert_eq!(decoded, entries);
        assert!(
            decode_index(&encode_index(std::iter::empty()))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn every_truncation_and_extension_is_corrupt() {
        let meta = encode_meta(&metadata(), Some(SystemTime::now()));
        let index = encode_index(
            BTreeMap::from([
                (1, Extent { offset: 2, len: 3 }),
                (2, Extent { offset: 5, len: 1 }),
            ])
            .into_iter(),
        );
        for cut in 0..meta.len() {
            assert!(is_corrupt(decode_meta(&meta[..cut])), "meta cut at {cut}");
        }
        for cut in 0..index.len() {
            assert!(
                is_corrupt(decode_index(&index[..cut])),
                "index cut at {cut}"
            );
        }
        assert!(is_corrupt(decode_meta(&[meta.as_slice(), &[0]].concat())));
        assert!(is_corrupt(decode_index(&[index.as_slice(), &[0]].concat())));
    }

    #[test]
    fn bad_fields_are_corrupt() {
        let mut meta = encode_meta(&metadata(), None);
        meta[4] = 2; // A version this code does not know.
        assert!(is_corrupt(decode_meta(&meta)));
        let mut meta = encode_meta(&metadata(), None);
        meta[5] |= 0x80;
        assert!(is_corrupt(decode_meta(&meta)));

        let mut index = encode_index(
            BTreeMap::from([
                (1, Extent { offset: 2, len: 3 }),
                (2, Extent { offset: 5, len: 1 }),
            ])
            .into_iter(),
        );
        // Swap the two chunk indexes: out of order.
        index[9..13].copy_from_slice(&2u32.to_le_bytes());
        index[25..29].copy_from_slice(&1u32.to_le_bytes());
        assert!(is_corrupt(decode_index(&index)));
        // A count promising far more than the file holds allocates nothing and fails.
        let mut index = encode_index(std::iter::empty());
        index[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(is_corrupt(decode_index(&index)));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A deterministic xorshift stream: every length up to 300, many times over.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        };
        let valid = encode_meta(&metadata(), Some(SystemTime::now()));
        for round in 0..3_000 {
            let len = round % 300;
            let mut bytes: Vec<u8> = (0..len).map(|_| next()).collect();
            let _ = decode_meta(&bytes);
            let _ = decode_index(&bytes);
            // Mutations of a valid record reach the deeper fields.
            bytes = valid.clone();
            let at = usize::from(next()) % bytes.len();
            bytes[at] = next();
            let _ = decode_meta(&bytes);
        }
    }
}
