//! Where everything lives under the root directory. Ids and document names reach a path only
//! as lowercase hex, so no name a client picks can climb out of its directory.
//!
//! ```text
//! <root>/uploads/<file id>/{meta,data,index}   an upload in progress
//! <root>/files/<file id>/{meta,data,index}     a finished file
//! <root>/documents/<document>/<file id>         empty markers: the files of a document
//! <root>/tmp/                                   staging and trash, emptied on open
//! ```

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use teleportal_storage::{DocumentId, FileId, StorageError};

use super::disk::{self, io_error};

/// The declared metadata (and an upload's start time).
pub(super) const META: &str = "meta";
/// The chunks, appended in arrival order.
pub(super) const DATA: &str = "data";
/// Where each chunk lies in `data`.
pub(super) const INDEX: &str = "index";
/// The next `index`, renamed over it once synced.
pub(super) const INDEX_TMP: &str = "index.tmp";

/// Hex characters per directory level of a document's path: 64 bytes of its name, well
/// under the 255-byte limit of a file name on common filesystems.
const DOCUMENT_PIECE: usize = 128;

/// The directories under the root, and a counter for unique scratch names.
#[derive(Debug)]
pub(super) struct Layout {
    root: PathBuf,
    uploads: PathBuf,
    files: PathBuf,
    documents: PathBuf,
    tmp: PathBuf,
    scratch: AtomicU64,
}

impl Layout {
    /// Creates the directories under `root` (and `root`) if needed, and empties `tmp`: what
    /// is there was staged or trashed by a process that stopped before it finished, and no
    /// other process uses this root.
    ///
    /// # Errors
    /// [`StorageError::Backend`] when a directory cannot be created or cleaned.
    pub(super) fn create(root: &Path) -> Result<Self, StorageError> {
        let layout = Layout {
            root: root.to_path_buf(),
            uploads: root.join("uploads"),
            files: root.join("files"),
            documents: root.join("documents"),
            tmp: root.join("tmp"),
            scratch: AtomicU64::new(0),
        };
        for dir in [
            &layout.uploads,
            &layout.files,
            &layout.documents,
            &layout.tmp,
        ] {
            std::fs::create_dir_all(dir).map_err(io_error("create", dir))?;
        }
        // The new directories' entries must survive a power loss before anything goes in.
        disk::sync_dir(&layout.root)?;
        for entry in std::fs::read_dir(&layout.tmp).map_err(io_error("list", &layout.tmp))? {
            let path = entry.map_err(io_error("list", &layout.tmp))?.path();
            disk::remove_any(&path)?;
        }
        Ok(layout)
    }

    /// The root directory.
    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    /// The directory holding every upload session.
    pub(super) fn uploads(&self) -> &Path {
        &self.uploads
    }

    /// The directory holding every finished file.
    pub(super) fn files(&self) -> &Path {
        &self.files
    }

    /// The directory of document listings.
    pub(super) fn documents(&self) -> &Path {
        &self.documents
    }

    /// The directory for staging and trash.
    pub(super) fn tmp(&self) -> &Path {
        &self.tmp
    }

    /// An upload session's directory.
    pub(super) fn upload_dir(&self, id: &FileId) -> PathBuf {
        self.uploads.join(id.to_string())
    }

    /// A finished file's directory.
    pub(super) fn file_dir(&self, id: &FileId) -> PathBuf {
        self.files.join(id.to_string())
    }

    /// The directory of `doc`'s markers: its name in hex, cut into levels of at most
    /// [`DOCUMENT_PIECE`] characters so a long name never makes a component too long. Every
    /// level but the last ends in `+` (never hex), and an empty name is `-`, so no two
    /// documents share a directory and a marker (64 hex characters) is never a level.
    pub(super) fn document_dir(&self, doc: &DocumentId) -> PathBuf {
        let hex = hex(doc.as_str().as_bytes());
        let mut path = self.documents.clone();
        let mut rest = hex.as_str();
        while rest.len() > DOCUMENT_PIECE {
            // Hex is ASCII, so any byte offset is a char boundary.
            let (piece, tail) = rest.split_at(DOCUMENT_PIECE);
            path.push(format!("{piece}+"));
            rest = tail;
        }
        path.push(if rest.is_empty() { "-" } else { rest });
        path
    }

    /// A fresh path in `tmp` for staging or trash, unique in this process.
    pub(super) fn scratch(&self, purpose: &str) -> PathBuf {
        let n = self.scratch.fetch_add(1, Ordering::Relaxed);
        self.tmp.join(format!("{purpose}-{n}"))
    }
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The file id a directory entry names, if it is exactly 64 lowercase hex characters.
pub(super) fn parse_file_id(name: &OsStr) -> Option<FileId> {
    let name = name.to_str()?.as_bytes();
    if name.len() != 64 {
        return None;
    }
    let mut id = [0; 32];
    for (byte, pair) in id.iter_mut().zip(name.chunks_exact(2)) {
        *byte = (nibble(pair.first()?)? << 4) | nibble(pair.get(1)?)?;
    }
    Some(FileId::new(id))
}

fn nibble(c: &u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        let root = PathBuf::from("/r");
        Layout {
            uploads: root.join("uploads"),
            files: root.join("files"),
            documents: root.join("documents"),
            tmp: root.join("tmp"),
            root,
            scratch: AtomicU64::new(0),
        }
    }

    #[test]
    fn file_ids_round_trip_through_names() {
        let id = FileId::new([0xa5; 32]);
        assert_eq!(parse_file_id(OsStr::new(&id.to_string())), Some(id));
        for bad in [
            "",
            "a5",
            &"A5".repeat(32),
            &"g0".repeat(32),
            &"a5".repeat(33),
        ] {
            assert_eq!(parse_file_id(OsStr::new(bad)), None, "{bad}");
        }
    }

    #[test]
    fn document_names_become_hex_levels() {
        let layout = layout();
        let dir = |name: &str| layout.document_dir(&DocumentId::from(name));
        assert_eq!(
            dir("room/../x"),
            PathBuf::from("/r/documents/726f6f6d2f2e2e2f78")
        );
        assert_eq!(dir(""), PathBuf::from("/r/documents/-"));

        let long = "d".repeat(64 * 2 + 10);
        let levels: Vec<String> = dir(&long)
            .strip_prefix("/r/documents")
            .unwrap()
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        assert_eq!(levels.len(), 3);
        assert_eq!(levels[0], format!("{}+", "64".repeat(64)));
        assert_eq!(levels[2], "64".repeat(10));
        // A name that is exactly one level long is not the first level of a longer one.
        assert_ne!(
            dir(&"d".repeat(64)),
            dir(&long).parent().unwrap().parent().unwrap()
        );
    }
}
