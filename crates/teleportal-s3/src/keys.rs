//! Where each record lives in the bucket. One function per kind of key, so the layout is
//! written down once (and in `docs/storage.md`).
//!
//! ```text
//! PREFIX/files/<file id hex>/data                  the chunks, concatenated
//! PREFIX/files/<file id hex>/meta                  JSON: metadata and chunk offsets
//! PREFIX/file-index/<document hex>/<file id hex>   empty: lists a document's files
//! PREFIX/documents/<document hex>/manifest         JSON: snapshot and floor
//! PREFIX/documents/<document hex>/snapshots/<seq:020>-<nonce>
//! PREFIX/documents/<document hex>/updates/<seq:020>
//! ```
//!
//! Document ids are written as the lowercase hex of their UTF-8 bytes (`_` for the empty id):
//! ids may hold `/`, `%` or `.`, and hex keeps every id one key segment that no other id
//! shares.
//! Sequence numbers are zero-padded to 20 digits (`u64::MAX` has 20), so keys sort in `Seq`
//! order.

use std::fmt::Write as _;

use object_store::path::Path;
use teleportal_storage::{DocumentId, FileId, Seq};

/// Digits of a zero-padded sequence number.
const SEQ_DIGITS: usize = 20;

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn document_part(doc: &DocumentId) -> String {
    if doc.as_str().is_empty() {
        "_".to_owned() // An empty segment would vanish from the key; `_` is not hex.
    } else {
        hex(doc.as_str().as_bytes())
    }
}

pub(crate) fn file_dir(prefix: &Path, id: &FileId) -> Path {
    prefix.clone().join("files").join(id.to_string())
}

pub(crate) fn file_data(prefix: &Path, id: &FileId) -> Path {
    file_dir(prefix, id).join("data")
}

pub(crate) fn file_meta(prefix: &Path, id: &FileId) -> Path {
    file_dir(prefix, id).join("meta")
}

pub(crate) fn file_index_dir(prefix: &Path, doc: &DocumentId) -> Path {
    prefix.clone().join("file-index").join(document_part(doc))
}

pub(crate) fn file_index(prefix: &Path, doc: &DocumentId, id: &FileId) -> Path {
    file_index_dir(prefix, doc).join(id.to_string())
}

/// The file id a file-index key ends with, if it is one.
pub(crate) fn file_id_of_index(key: &Path) -> Option<FileId> {
    let name = key.filename()?;
    if name.len() != 64 {
        return None;
    }
    let mut id = [0; 32];
    for (byte, pair) in id.iter_mut().zip(name.as_bytes().chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(FileId::new(id))
}

pub(crate) fn document_dir(prefix: &Path, doc: &DocumentId) -> Path {
    prefix.clone().join("documents").join(document_part(doc))
}

pub(crate) fn manifest(dir: &Path) -> Path {
    dir.clone().join("manifest")
}

pub(crate) fn updates_dir(dir: &Path) -> Path {
    dir.clone().join("updates")
}

pub(crate) fn update(dir: &Path, seq: Seq) -> Path {
    updates_dir(dir).join(format!("{seq:0SEQ_DIGITS$}"))
}

/// The sequence number an update key ends with, if it is one.
pub(crate) fn seq_of_update(key: &Path) -> Option<Seq> {
    let name = key.filename()?;
    if name.len() != SEQ_DIGITS || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

pub(crate) fn snapshots_dir(dir: &Path) -> Path {
    dir.clone().join("snapshots")
}

/// A snapshot key: its `seq`, then a nonce, so that two compactions racing to the same `upto`
/// never write one key, and the loser can delete its own object.
pub(crate) fn snapshot(dir: &Path, seq: Seq, nonce: u64) -> Path {
    snapshots_dir(dir).join(format!("{seq:0SEQ_DIGITS$}-{nonce:016x}"))
}

/// The sequence number a snapshot key starts with, if it is one.
pub(crate) fn seq_of_snapshot(key: &Path) -> Option<Seq> {
    let (seq, nonce) = key.filename()?.split_once('-')?;
    if seq.len() != SEQ_DIGITS || nonce.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    seq.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_keys_sort_in_seq_order_and_parse_back() {
        let dir = document_dir(&Path::from("p"), &DocumentId::from("room/a b%"));
        let keys: Vec<Path> = [1, 9, 10, u64::MAX].map(|s| update(&dir, s)).into();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(seq_of_update(&keys[3]), Some(u64::MAX));
        assert_eq!(seq_of_update(&manifest(&dir)), None);
        assert_eq!(seq_of_snapshot(&snapshot(&dir, 42, 7)), Some(42));
        assert_eq!(seq_of_snapshot(&keys[0]), None);
    }

    #[test]
    fn document_ids_stay_one_segment() {
        let prefix = Path::from("p");
        for id in ["", "a/b", "..", "%2F", "ünï"] {
            let dir = document_dir(&prefix, &DocumentId::from(id));
            assert_eq!(dir.parts_count(), 3, "{id:?} gave {dir}");
        }
        assert_ne!(
            document_dir(&prefix, &DocumentId::from("a/b")),
            document_dir(&prefix, &DocumentId::from("a%2Fb"))
        );
    }

    #[test]
    fn file_index_keys_give_back_the_file_id() {
        let id = FileId::new([0xab; 32]);
        let key = file_index(&Path::default(), &DocumentId::from("d"), &id);
        assert_eq!(file_id_of_index(&key), Some(id));
        assert_eq!(file_id_of_index(&Path::from("x/notanid")), None);
    }
}
