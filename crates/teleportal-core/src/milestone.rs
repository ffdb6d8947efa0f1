//! The milestone binary format (spec §13): how milestones are stored, not how they travel (on
//! the socket they are RPC payloads, §11.4).
//!
//! ```text
//! 59 4a 53 01 | varString documentId | varString id | varString name | f64 createdAt
//! | u8 flags [| f64 deletedAt][| varString deletedBy][| varString lifecycleState]
//! [| varString retentionPolicyId][| f64 expiresAt] | u8 createdByType | varString createdById
//! ```
//!
//! A [`Milestone`] is one meta record followed by the snapshot bytes to the end of the input;
//! a [`MilestoneMetaDoc`] is meta records back to back, without snapshots.

use bytes::{BufMut, Bytes};

use crate::DecodeError;
use crate::lib0::{Reader, write_var_string};

/// The four bytes every meta record starts with: `YJS` and format version 1.
pub const MILESTONE_PREFIX: [u8; 4] = [0x59, 0x4a, 0x53, MILESTONE_VERSION];

/// The only meta record version.
pub const MILESTONE_VERSION: u8 = 1;

const FLAG_DELETED_AT: u8 = 1;
const FLAG_DELETED_BY: u8 = 1 << 1;
const FLAG_LIFECYCLE_STATE: u8 = 1 << 2;
const FLAG_RETENTION_POLICY_ID: u8 = 1 << 3;
const FLAG_EXPIRES_AT: u8 = 1 << 4;

const CREATED_BY_SYSTEM: u8 = 0;
const CREATED_BY_USER: u8 = 1;

/// Who created a milestone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreatorKind {
    /// A user, through `milestoneCreate` (byte 1).
    User,
    /// The server, e.g. an automatic milestone (byte 0; the decoder reads any byte but 1 as
    /// system, as the reference does).
    System,
}

/// The creator of a milestone: its kind and id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CreatedBy {
    /// User or system.
    pub kind: CreatorKind,
    /// The user id, or the name of the system actor.
    pub id: String,
}

/// A milestone's metadata: one meta record.
///
/// Times are milliseconds since the Unix epoch as doubles, as JavaScript keeps them. A missing
/// `lifecycle_state` means "active".
///
/// ```
/// use teleportal_core::milestone::{CreatedBy, CreatorKind, MilestoneMeta};
///
/// let meta = MilestoneMeta::new("room/doc", "m1", "Draft", 1_700_000_000_000.0,
///     CreatedBy { kind: CreatorKind::User, id: "alice".into() });
/// let bytes = meta.to_bytes();
/// assert_eq!(&bytes[..4], b"YJS\x01");
/// assert_eq!(MilestoneMeta::decode(bytes)?, meta);
/// # Ok::<(), teleportal_core::DecodeError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MilestoneMeta {
    /// The (namespaced, `room/doc`) document id.
    pub document_id: String,
    /// The milestone id.
    pub id: String,
    /// The display name.
    pub name: String,
    /// Creation time (ms).
    pub created_at: f64,
    /// Deletion time (ms), if soft-deleted.
    pub deleted_at: Option<f64>,
    /// Who deleted it.
    pub deleted_by: Option<String>,
    /// Lifecycle state (`None` means "active").
    pub lifecycle_state: Option<String>,
    /// The retention policy that applies.
    pub retention_policy_id: Option<String>,
    /// When it expires (ms).
    pub expires_at: Option<f64>,
    /// Who created it.
    pub created_by: CreatedBy,
}

impl MilestoneMeta {
    /// A meta record with no optional field set.
    pub fn new(
        document_id: impl Into<String>,
        id: impl Into<String>,
        name: impl Into<String>,
        created_at: f64,
        created_by: CreatedBy,
    ) -> Self {
        Self {
            document_id: document_id.into(),
            id: id.into(),
            name: name.into(),
            created_at,
            deleted_at: None,
            deleted_by: None,
            lifecycle_state: None,
            retention_policy_id: None,
            expires_at: None,
            created_by,
        }
    }

    /// Decodes one meta record from the front of `bytes`; anything after it is ignored.
    ///
    /// # Errors
    /// A prefix other than `YJS` version 1, or a missing or malformed field.
    pub fn decode(bytes: Bytes) -> Result<Self, DecodeError> {
        Self::read(&mut Reader::new(bytes))
    }

    /// Reads one meta record.
    ///
    /// Flag bits 5–7 are ignored, as in the reference (re-encoding clears them). Unlike the
    /// reference, a missing flags or creator byte is an error rather than a default.
    ///
    /// # Errors
    /// A prefix other than `YJS` version 1, or a missing or malformed field.
    pub fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let magic = r.read_array::<3>("milestone prefix")?;
        if magic != [0x59, 0x4a, 0x53] {
            return Err(DecodeError::BadMagic);
        }
        let version = r.read_u8("milestone version")?;
        if version != MILESTONE_VERSION {
            return Err(DecodeError::UnsupportedStructureVersion {
                structure: "milestone",
                version: u64::from(version),
            });
        }
        let document_id = r.read_var_string("milestone document id")?;
        let id = r.read_var_string("milestone id")?;
        let name = r.read_var_string("milestone name")?;
        let created_at = r.read_f64("milestone createdAt")?;
        let flags = r.read_u8("milestone flags")?;
        let deleted_at = if flags & FLAG_DELETED_AT != 0 {
            Some(r.read_f64("milestone deletedAt")?)
        } else {
            None
        };
        let deleted_by = if flags & FLAG_DELETED_BY != 0 {
            Some(r.read_var_string("milestone deletedBy")?)
        } else {
            None
        };
        let lifecycle_state = if flags & FLAG_LIFECYCLE_STATE != 0 {
            Some(r.read_var_string("milestone lifecycleState")?)
        } else {
            None
        };
        let retention_policy_id = if flags & FLAG_RETENTION_POLICY_ID != 0 {
            Some(r.read_var_string("milestone retentionPolicyId")?)
        } else {
            None
        };
        let expires_at = if flags & FLAG_EXPIRES_AT != 0 {
            Some(r.read_f64("milestone expiresAt")?)
        } else {
            None
        };
        let kind = match r.read_u8("milestone createdBy type")? {
            CREATED_BY_USER => CreatorKind::User,
            _ => CreatorKind::System,
        };
        let created_by = CreatedBy {
            kind,
            id: r.read_var_string("milestone createdBy id")?,
        };
        Ok(Self {
            document_id,
            id,
            name,
            created_at,
            deleted_at,
            deleted_by,
            lifecycle_state,
            retention_policy_id,
            expires_at,
            created_by,
        })
    }

    /// Appends the meta record to `buf`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_slice(&MILESTONE_PREFIX);
        write_var_string(buf, &self.document_id);
        write_var_string(buf, &self.id);
        write_var_string(buf, &self.name);
        buf.put_f64(self.created_at);
        let flag = |present: bool, bit: u8| if present { bit } else { 0 };
        buf.put_u8(
            flag(self.deleted_at.is_some(), FLAG_DELETED_AT)
                | flag(self.deleted_by.is_some(), FLAG_DELETED_BY)
                | flag(self.lifecycle_state.is_some(), FLAG_LIFECYCLE_STATE)
                | flag(self.retention_policy_id.is_some(), FLAG_RETENTION_POLICY_ID)
                | flag(self.expires_at.is_some(), FLAG_EXPIRES_AT),
        );
        if let Some(t) = self.deleted_at {
            buf.put_f64(t);
        }
        if let Some(s) = &self.deleted_by {
            write_var_string(buf, s);
        }
        if let Some(s) = &self.lifecycle_state {
            write_var_string(buf, s);
        }
        if let Some(s) = &self.retention_policy_id {
            write_var_string(buf, s);
        }
        if let Some(t) = self.expires_at {
            buf.put_f64(t);
        }
        buf.put_u8(match self.created_by.kind {
            CreatorKind::User => CREATED_BY_USER,
            CreatorKind::System => CREATED_BY_SYSTEM,
        });
        write_var_string(buf, &self.created_by.id);
    }

    /// The meta record as a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = Vec::new();
        self.encode(&mut buf);
        Bytes::from(buf)
    }
}

/// A stored milestone: its meta record, then the snapshot bytes to the end.
///
/// The snapshot is whatever the creator sent (a content envelope, or a raw Yjs V2 update from
/// unencrypted TypeScript clients; spec §19.3); it is kept as opaque bytes.
///
/// ```
/// use bytes::Bytes;
/// use teleportal_core::milestone::{CreatedBy, CreatorKind, Milestone, MilestoneMeta};
///
/// let milestone = Milestone {
///     meta: MilestoneMeta::new("room/doc", "m1", "Draft", 0.0,
///         CreatedBy { kind: CreatorKind::System, id: "auto".into() }),
///     snapshot: Bytes::from_static(&[1, 0, 0, 0]),
/// };
/// let decoded = Milestone::decode(milestone.to_bytes())?;
/// assert_eq!(decoded, milestone);
/// # Ok::<(), teleportal_core::DecodeError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Milestone {
    /// The meta record.
    pub meta: MilestoneMeta,
    /// The document snapshot (a slice of the decoded input).
    pub snapshot: Bytes,
}

impl Milestone {
    /// Decodes a meta record and takes the rest of `bytes` as the snapshot.
    ///
    /// # Errors
    /// As [`MilestoneMeta::read`].
    pub fn decode(bytes: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let meta = MilestoneMeta::read(&mut r)?;
        Ok(Self {
            meta,
            snapshot: r.read_rest(),
        })
    }

    /// Appends the meta record and the snapshot to `buf`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        self.meta.encode(buf);
        buf.put_slice(&self.snapshot);
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = Vec::with_capacity(self.snapshot.len().saturating_add(64));
        self.encode(&mut buf);
        Bytes::from(buf)
    }
}

/// A "meta doc": the meta records of several milestones back to back, no snapshots.
///
/// ```
/// use teleportal_core::milestone::{CreatedBy, CreatorKind, MilestoneMeta, MilestoneMetaDoc};
///
/// let by = CreatedBy { kind: CreatorKind::User, id: "u1".into() };
/// let doc = MilestoneMetaDoc {
///     milestones: vec![
///         MilestoneMeta::new("d", "m1", "A", 1.0, by.clone()),
///         MilestoneMeta::new("d", "m2", "B", 2.0, by),
///     ],
/// };
/// assert_eq!(MilestoneMetaDoc::decode(doc.to_bytes())?, doc);
/// # Ok::<(), teleportal_core::DecodeError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MilestoneMetaDoc {
    /// The meta records, in stored order.
    pub milestones: Vec<MilestoneMeta>,
}

impl MilestoneMetaDoc {
    /// Decodes meta records until the input ends (empty input is an empty doc).
    ///
    /// # Errors
    /// Any record that does not decode, including one cut short at the end.
    pub fn decode(bytes: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let mut milestones = Vec::new();
        while !r.is_empty() {
            milestones.push(MilestoneMeta::read(&mut r)?);
        }
        Ok(Self { milestones })
    }

    /// Appends every meta record to `buf`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        for meta in &self.milestones {
            meta.encode(buf);
        }
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = Vec::new();
        self.encode(&mut buf);
        Bytes::from(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_meta() -> MilestoneMeta {
        MilestoneMeta {
            document_id: "room-1/my-doc".into(),
            id: "m3".into(),
            name: "Archived".into(),
            created_at: 1_700_000_000_000.0,
            deleted_at: Some(1_700_000_100_000.0),
            deleted_by: Some("user-bob".into()),
            lifecycle_state: Some("deleted".into()),
            retention_policy_id: Some("rp-30d".into()),
            expires_at: Some(1_702_592_100_000.0),
            created_by: CreatedBy {
                kind: CreatorKind::User,
                id: "user-alice".into(),
            },
        }
    }

    #[test]
    fn milestone_with_every_optional_field_round_trips() {
        let m = Milestone {
            meta: full_meta(),
            snapshot: Bytes::from_static(&[1, 0, 0, 0]),
        };
        let bytes = m.to_bytes();
        assert_eq!(Milestone::decode(bytes.clone()), Ok(m.clone()));
        assert_eq!(Milestone::decode(bytes).unwrap().to_bytes(), m.to_bytes());
    }

    #[test]
    fn every_truncation_of_a_meta_record_is_an_error() {
        let bytes = full_meta().to_bytes();
        for len in 0..bytes.len() {
            assert!(
                MilestoneMeta::decode(bytes.slice(..len)).is_err(),
                "prefix of {len} bytes decoded"
            );
        }
    }

    #[test]
    fn truncated_meta_doc_is_an_error() {
        let doc = MilestoneMetaDoc {
            milestones: vec![full_meta(), full_meta()],
        };
        let bytes = doc.to_bytes();
        assert_eq!(MilestoneMetaDoc::decode(bytes.clone()), Ok(doc));
        assert!(MilestoneMetaDoc::decode(bytes.slice(..bytes.len() - 1)).is_err());
    }

    #[test]
    fn empty_meta_doc_is_empty() {
        assert_eq!(
            MilestoneMetaDoc::decode(Bytes::new()),
            Ok(MilestoneMetaDoc::default())
        );
    }

    #[test]
    fn wrong_magic_and_version_are_rejected() {
        let mut bytes = full_meta().to_bytes().to_vec();
        bytes[3] = 2;
        assert_eq!(
            MilestoneMeta::decode(Bytes::from(bytes.clone())),
            Err(DecodeError::UnsupportedStructureVersion {
                structure: "milestone",
                version: 2
            })
        );
        bytes[0] = b'X';
        assert_eq!(
            MilestoneMeta::decode(Bytes::from(bytes)),
            Err(DecodeError::BadMagic)
        );
    }

    #[test]
    fn any_creator_byte_but_one_is_system() {
        let mut meta = full_meta();
        meta.created_by.kind = CreatorKind::System;
        let mut bytes = meta.to_bytes().to_vec();
        let at = bytes.len() - 1 - "user-alice".len() - 1;
        assert_eq!(bytes[at], CREATED_BY_SYSTEM);
        bytes[at] = 2;
        assert_eq!(MilestoneMeta::decode(Bytes::from(bytes)), Ok(meta));
    }

    #[test]
    fn snapshot_is_a_slice_of_the_input() {
        let m = Milestone {
            meta: full_meta(),
            snapshot: Bytes::from_static(b"snapshot"),
        };
        let input = m.to_bytes();
        let decoded = Milestone::decode(input.clone()).unwrap();
        assert_eq!(decoded.snapshot.as_ptr(), input[input.len() - 8..].as_ptr());
    }
}
