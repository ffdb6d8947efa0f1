//! A document's manifest: the one object that compaction and delete replace, conditionally.

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, UpdateVersion};
use serde::{Deserialize, Serialize};
use teleportal_storage::{Seq, StorageError};

use crate::error::{S3Error, corrupt};

/// The manifest's JSON (version 1). A document without one has floor 0 and no snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub(crate) version: u32,
    /// Raised by every write, so that no two manifests of a document are byte-equal: a reader
    /// compares bytes to tell whether the manifest changed, which works even where a server's
    /// ETag lags behind its content.
    pub(crate) generation: u64,
    /// The highest `Seq` folded into the snapshot or deleted; the tail is every update above.
    pub(crate) floor: Seq,
    /// The snapshot of everything up to `floor`; `None` before the first compaction and after
    /// a delete.
    pub(crate) snapshot: Option<SnapshotRef>,
}

/// Which snapshot object holds the snapshot: `snapshots/<floor>-<nonce>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotRef {
    pub(crate) nonce: u64,
    /// Its stored length, so that sizes need no `HEAD` of the snapshot.
    pub(crate) len: u64,
}

impl Manifest {
    const VERSION: u32 = 1;

    pub(crate) fn snapshot_len(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.len)
    }

    /// This manifest after folding everything up to `upto` into a new snapshot of `len` bytes.
    pub(crate) fn compacted(&self, upto: Seq, len: u64) -> Manifest {
        Manifest {
            version: Self::VERSION,
            generation: self.generation + 1,
            floor: upto,
            snapshot: Some(SnapshotRef {
                nonce: rand::random(),
                len,
            }),
        }
    }

    /// This manifest after a delete of everything up to `last`.
    pub(crate) fn deleted(&self, last: Seq) -> Manifest {
        Manifest {
            version: Self::VERSION,
            generation: self.generation + 1,
            floor: last,
            snapshot: None,
        }
    }

    pub(crate) fn to_bytes(&self) -> Result<Bytes, StorageError> {
        serde_json::to_vec(self)
            .map(Bytes::from)
            .map_err(|e| corrupt("a manifest does not serialize", e))
    }
}

/// A manifest as read: its content, its bytes and what a conditional write of it needs.
#[derive(Debug, Clone)]
pub(crate) struct ManifestRead {
    pub(crate) manifest: Manifest,
    /// `None` when there is no manifest.
    pub(crate) raw: Option<Bytes>,
    /// `None` when there is no manifest (the next write is then `PutMode::Create`).
    pub(crate) version: Option<UpdateVersion>,
}

impl ManifestRead {
    pub(crate) async fn get(
        store: &dyn ObjectStore,
        location: &Path,
    ) -> Result<ManifestRead, StorageError> {
        let result = match store.get(location).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                return Ok(ManifestRead {
                    manifest: Manifest::default(),
                    raw: None,
                    version: None,
                });
            }
            Err(e) => return Err(S3Error::request("GET", location, e).into()),
        };
        let version = UpdateVersion {
            e_tag: result.meta.e_tag.clone(),
            version: result.meta.version.clone(),
        };
        let raw = result
            .bytes()
            .await
            .map_err(|e| S3Error::request("GET", location, e))?;
        let manifest: Manifest =
            serde_json::from_slice(&raw).map_err(|e| corrupt("unreadable manifest", e))?;
        if manifest.version != Manifest::VERSION {
            return Err(StorageError::corrupt("a manifest of an unknown version"));
        }
        Ok(ManifestRead {
            manifest,
            raw: Some(raw),
            version: Some(version),
        })
    }
}
