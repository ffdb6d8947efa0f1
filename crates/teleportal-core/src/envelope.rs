//! The content envelope (spec §5): the `data` of every Teleportal update and sync-step-2,
//! encrypted document or not.
//!
//! ```text
//! varUint 1 | varUint8Array structureUpdate | varUint n | n × varUint8Array sidecar
//! | u8 hasCompaction [| compaction]
//! ```

use bytes::{BufMut, Bytes};

use crate::DecodeError;
use crate::lib0::{Reader, write_var_bytes, write_var_uint};

/// The only envelope version.
pub const ENVELOPE_VERSION: u64 = 1;

/// A structure update with its encrypted sidecars; a plaintext document has none.
///
/// ```
/// use bytes::Bytes;
/// use teleportal_core::ContentEnvelope;
///
/// let empty = ContentEnvelope::default();
/// assert_eq!(&empty.to_bytes()[..], &[1, 0, 0, 0]);
/// assert_eq!(ContentEnvelope::decode(Bytes::from_static(&[1, 0, 0, 0]))?, empty);
/// # Ok::<(), teleportal_core::DecodeError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentEnvelope {
    /// A Yjs V2 update (with placeholders when encrypted); may be empty.
    pub structure_update: Bytes,
    /// AES-GCM blobs holding the stripped content (none for plaintext documents).
    pub sidecars: Vec<Bytes>,
    /// A compaction that replaces earlier sidecars.
    pub compaction: Option<Compaction>,
}

/// A compacted sidecar replacing the stored sidecars whose hashes it lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compaction {
    /// The compacted AES-GCM blob.
    pub sidecar: Bytes,
    /// Which clock ranges the compacted sidecar covers.
    pub index: Vec<SidecarRange>,
    /// SHA-256 of `sidecar`.
    pub hash: Bytes,
    /// SHA-256 of each stored sidecar it replaces.
    pub source_hashes: Vec<Bytes>,
}

/// The clock range of one client covered by a sidecar (`max_clock` inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SidecarRange {
    /// The Yjs client id.
    pub client_id: u64,
    /// First clock covered.
    pub min_clock: u64,
    /// Last clock covered (inclusive).
    pub max_clock: u64,
}

impl ContentEnvelope {
    /// A plaintext envelope around a Yjs V2 update.
    pub fn plain(structure_update: Bytes) -> Self {
        Self {
            structure_update,
            ..Self::default()
        }
    }

    /// Decodes an envelope; byte fields are slices of `bytes`.
    ///
    /// The `hasCompaction` byte may be absent (no compaction), and only 1 means present,
    /// as in the reference.
    ///
    /// # Errors
    /// A version other than 1, or a malformed field.
    pub fn decode(bytes: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.read_var_uint("envelope version")?;
        if version != ENVELOPE_VERSION {
            return Err(DecodeError::UnsupportedStructureVersion {
                structure: "content envelope",
                version,
            });
        }
        let structure_update = r.read_var_bytes("structure update")?;
        let n = r.read_var_uint("sidecar count")?;
        let mut sidecars = Vec::new();
        for _ in 0..n {
            sidecars.push(r.read_var_bytes("sidecar")?);
        }
        let compaction = match r.read_optional_u8() {
            Some(1) => Some(read_compaction(&mut r)?),
            _ => None,
        };
        Ok(Self {
            structure_update,
            sidecars,
            compaction,
        })
    }

    /// Appends the encoding to `buf` (always with the `hasCompaction` byte).
    pub fn encode(&self, buf: &mut impl BufMut) {
        write_var_uint(buf, ENVELOPE_VERSION);
        write_var_bytes(buf, &self.structure_update);
        write_var_uint(buf, self.sidecars.len() as u64);
        for s in &self.sidecars {
            write_var_bytes(buf, s);
        }
        match &self.compaction {
            None => buf.put_u8(0),
            Some(c) => {
                buf.put_u8(1);
                write_var_bytes(buf, &c.sidecar);
                write_var_uint(buf, c.index.len() as u64);
                for range in &c.index {
                    write_var_uint(buf, range.client_id);
                    write_var_uint(buf, range.min_clock);
                    write_var_uint(buf, range.max_clock);
                }
                write_var_bytes(buf, &c.hash);
                write_var_uint(buf, c.source_hashes.len() as u64);
                for h in &c.source_hashes {
                    write_var_bytes(buf, h);
                }
            }
        }
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = Vec::with_capacity(self.structure_update.len() + 8);
        self.encode(&mut buf);
        Bytes::from(buf)
    }
}

fn read_compaction(r: &mut Reader) -> Result<Compaction, DecodeError> {
    let sidecar = r.read_var_bytes("compacted sidecar")?;
    let n = r.read_var_uint("compaction index length")?;
    let mut index = Vec::new();
    for _ in 0..n {
        index.push(SidecarRange {
            client_id: r.read_var_uint("index client id")?,
            min_clock: r.read_var_uint("index min clock")?,
            max_clock: r.read_var_uint("index max clock")?,
        });
    }
    let hash = r.read_var_bytes("compacted hash")?;
    let n = r.read_var_uint("source hash count")?;
    let mut source_hashes = Vec::new();
    for _ in 0..n {
        source_hashes.push(r.read_var_bytes("source hash")?);
    }
    Ok(Compaction {
        sidecar,
        index,
        hash,
        source_hashes,
    })
}
