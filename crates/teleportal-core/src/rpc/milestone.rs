//! Milestone protocol payloads (spec §11.4). `documentId` fields carry the namespaced id
//! (`room/doc`); timestamps are milliseconds since the epoch and may be fractional.

use bytes::Bytes;

use super::{
    MILESTONE_CREATE, MILESTONE_DELETE, MILESTONE_GET, MILESTONE_LIST, MILESTONE_RESTORE,
    MILESTONE_UPDATE_NAME, Obj, ObjBuilder, RpcPayloadError, array, boolean, bytes, invalid,
    number, string, strings, typed_payload,
};
use crate::{Any, RpcPayload};

/// Whether a person or the server made a milestone (`createdBy.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MilestoneCreatorKind {
    /// `"user"`: created through `milestoneCreate` by an authenticated user.
    User,
    /// `"system"`: automatic milestones, or created without a user id.
    System,
}

impl MilestoneCreatorKind {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            MilestoneCreatorKind::User => "user",
            MilestoneCreatorKind::System => "system",
        }
    }
}

/// Who created a milestone: `{type, id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MilestoneCreator {
    /// `type`.
    pub kind: MilestoneCreatorKind,
    /// `id`: the user id, or e.g. `"auto"` / `"system"` for system milestones.
    pub id: String,
}

impl MilestoneCreator {
    /// `{type, id}`.
    pub fn to_any(&self) -> Any {
        ObjBuilder::new()
            .put("type", self.kind.as_str())
            .put("id", self.id.as_str())
            .build()
    }

    /// Reads `{type, id}`; `type` must be `"user"` or `"system"`.
    ///
    /// # Errors
    /// A missing or mistyped field, named `createdBy.…`.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::nested(value, "createdBy")?;
        let kind = match obj.req("createdBy.type", string)?.as_str() {
            "user" => MilestoneCreatorKind::User,
            "system" => MilestoneCreatorKind::System,
            _ => return Err(invalid("createdBy.type", "\"user\" or \"system\"")),
        };
        Ok(Self {
            kind,
            id: obj.req("createdBy.id", string)?,
        })
    }
}

/// `MilestoneMeta`, as `milestoneCreate` and `milestoneUpdateName` answer it:
/// `{id, name, documentId, createdAt, createdBy}`.
#[derive(Debug, Clone, PartialEq)]
pub struct MilestoneMeta {
    /// `id`.
    pub id: String,
    /// `name`.
    pub name: String,
    /// `documentId` (namespaced).
    pub document_id: String,
    /// `createdAt` (ms).
    pub created_at: f64,
    /// `createdBy`.
    pub created_by: MilestoneCreator,
}

impl MilestoneMeta {
    /// `{id, name, documentId, createdAt, createdBy}`.
    pub fn to_any(&self) -> Any {
        ObjBuilder::new()
            .put("id", self.id.as_str())
            .put("name", self.name.as_str())
            .put("documentId", self.document_id.as_str())
            .put("createdAt", self.created_at)
            .put("createdBy", self.created_by.to_any())
            .build()
    }

    /// Reads a milestone object; lifecycle keys, if any, are ignored.
    ///
    /// # Errors
    /// A missing or mistyped field.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::nested(value, "milestone")?;
        Ok(Self {
            id: obj.req("id", string)?,
            name: obj.req("name", string)?,
            document_id: obj.req("documentId", string)?,
            created_at: obj.req("createdAt", number)?,
            created_by: obj.req("createdBy", |v, _| MilestoneCreator::from_any(v))?,
        })
    }
}

/// A milestone as `milestoneList` and `milestoneRestore` report it: [`MilestoneMeta`] plus
/// the lifecycle keys, which the reference **always writes** (as `undefined` when absent):
/// `{id, name, documentId, createdAt, deletedAt, lifecycleState, expiresAt, createdBy}`.
///
/// ```
/// use teleportal_core::rpc::{MilestoneCreator, MilestoneCreatorKind, MilestoneEntry};
/// use teleportal_core::Any;
///
/// let entry = MilestoneEntry {
///     id: "m1".into(),
///     name: "Draft 1".into(),
///     document_id: "room-1/my-doc".into(),
///     created_at: 1_700_000_000_000.0,
///     deleted_at: None,
///     lifecycle_state: None,
///     expires_at: None,
///     created_by: MilestoneCreator { kind: MilestoneCreatorKind::User, id: "user-alice".into() },
/// };
/// let any = entry.to_any();
/// assert_eq!(any.as_object().map(|o| o[4].clone()), Some(("deletedAt".into(), Any::Undefined)));
/// assert_eq!(MilestoneEntry::from_any(&any)?, entry);
/// # Ok::<(), teleportal_core::rpc::RpcPayloadError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MilestoneEntry {
    /// `id`.
    pub id: String,
    /// `name`.
    pub name: String,
    /// `documentId` (namespaced).
    pub document_id: String,
    /// `createdAt` (ms).
    pub created_at: f64,
    /// `deletedAt` (ms), written as `undefined` when `None`.
    pub deleted_at: Option<f64>,
    /// `lifecycleState` (`active`, `deleted`, `archived`, `expired`; absent means active),
    /// written as `undefined` when `None`.
    pub lifecycle_state: Option<String>,
    /// `expiresAt` (ms), written as `undefined` when `None`.
    pub expires_at: Option<f64>,
    /// `createdBy`.
    pub created_by: MilestoneCreator,
}

impl MilestoneEntry {
    /// The eight keys in the reference's order, absent values as `undefined`.
    pub fn to_any(&self) -> Any {
        ObjBuilder::new()
            .put("id", self.id.as_str())
            .put("name", self.name.as_str())
            .put("documentId", self.document_id.as_str())
            .put("createdAt", self.created_at)
            .put_or_undefined("deletedAt", self.deleted_at)
            .put_or_undefined("lifecycleState", self.lifecycle_state.as_deref())
            .put_or_undefined("expiresAt", self.expires_at)
            .put("createdBy", self.created_by.to_any())
            .build()
    }

    /// Reads a milestone object; absent lifecycle keys are `None`.
    ///
    /// # Errors
    /// A missing or mistyped field.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let meta = MilestoneMeta::from_any(value)?;
        let obj = Obj::nested(value, "milestone")?;
        Ok(Self {
            id: meta.id,
            name: meta.name,
            document_id: meta.document_id,
            created_at: meta.created_at,
            deleted_at: obj.opt("deletedAt", number)?,
            lifecycle_state: obj.opt("lifecycleState", string)?,
            expires_at: obj.opt("expiresAt", number)?,
            created_by: meta.created_by,
        })
    }

    /// The [`MilestoneMeta`] part.
    pub fn meta(&self) -> MilestoneMeta {
        MilestoneMeta {
            id: self.id.clone(),
            name: self.name.clone(),
            document_id: self.document_id.clone(),
            created_at: self.created_at,
            created_by: self.created_by.clone(),
        }
    }
}

/// `milestoneList` request: `{method, snapshotIds, includeDeleted}` (the reference client
/// always writes both; the server reads absent ones as `[]` and `false`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MilestoneListRequest {
    /// `snapshotIds` (the reference client sends `[]`).
    pub snapshot_ids: Vec<String>,
    /// `includeDeleted`.
    pub include_deleted: bool,
}

impl MilestoneListRequest {
    /// `{method, snapshotIds, includeDeleted}`.
    pub fn to_any(&self) -> Any {
        let ids = self
            .snapshot_ids
            .iter()
            .map(|s| Any::from(s.as_str()))
            .collect::<Vec<_>>();
        ObjBuilder::request(MILESTONE_LIST)
            .put("snapshotIds", ids)
            .put("includeDeleted", self.include_deleted)
            .build()
    }

    /// Reads the request.
    ///
    /// # Errors
    /// A mistyped field, or a `method` other than `milestoneList`.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::new(value)?;
        obj.check_method(MILESTONE_LIST)?;
        Ok(Self {
            snapshot_ids: obj.opt("snapshotIds", strings)?.unwrap_or_default(),
            include_deleted: obj.opt("includeDeleted", boolean)?.unwrap_or(false),
        })
    }
}

/// `milestoneList` response: `{milestones}`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MilestoneListResponse {
    /// `milestones`.
    pub milestones: Vec<MilestoneEntry>,
}

impl MilestoneListResponse {
    /// `{milestones: [...]}`.
    pub fn to_any(&self) -> Any {
        let list = self
            .milestones
            .iter()
            .map(MilestoneEntry::to_any)
            .collect::<Vec<_>>();
        ObjBuilder::new().put("milestones", list).build()
    }

    /// Reads the response.
    ///
    /// # Errors
    /// A missing or mistyped field.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let milestones = Obj::new(value)?.req("milestones", |v, f| {
            array(v, f)?.iter().map(MilestoneEntry::from_any).collect()
        })?;
        Ok(Self { milestones })
    }
}

/// Payloads that are exactly `{milestoneId}`, with `method` first when they are requests.
macro_rules! milestone_id_payload {
    ($(#[$doc:meta])* $name:ident, $method:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            /// `milestoneId`.
            pub milestone_id: String,
        }

        impl $name {
            /// The payload object.
            pub fn to_any(&self) -> Any {
                let method: Option<&str> = $method;
                match method {
                    Some(m) => ObjBuilder::request(m),
                    None => ObjBuilder::new(),
                }
                .put("milestoneId", self.milestone_id.as_str())
                .build()
            }

            /// Reads the payload.
            ///
            /// # Errors
            /// `milestoneId` missing or not a string, or a wrong `method`.
            pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
                let obj = Obj::new(value)?;
                let method: Option<&'static str> = $method;
                if let Some(m) = method {
                    obj.check_method(m)?;
                }
                Ok(Self {
                    milestone_id: obj.req("milestoneId", string)?,
                })
            }
        }
    };
}

milestone_id_payload!(
    /// `milestoneGet` request: `{method, milestoneId}`.
    MilestoneGetRequest,
    Some(MILESTONE_GET)
);
milestone_id_payload!(
    /// `milestoneDelete` request: `{method, milestoneId}`.
    MilestoneDeleteRequest,
    Some(MILESTONE_DELETE)
);
milestone_id_payload!(
    /// `milestoneRestore` request: `{method, milestoneId}`.
    MilestoneRestoreRequest,
    Some(MILESTONE_RESTORE)
);
milestone_id_payload!(
    /// `milestoneDelete` response: `{milestoneId}`.
    MilestoneDeleteResponse,
    None
);
milestone_id_payload!(
    /// The payload of `milestoneGet`'s 404 error: `{milestoneId}`. See [`Self::to_error`].
    MilestoneNotFound,
    None
);

impl MilestoneNotFound {
    /// The whole error outcome: 404 `Milestone not found` with this payload.
    pub fn to_error(&self) -> RpcPayload {
        RpcPayload::Error {
            status_code: 404,
            details: "Milestone not found".to_owned(),
            payload: Some(self.to_any()),
        }
    }
}

/// `milestoneGet` response: `{milestoneId, snapshot}`. The snapshot is a content envelope
/// or, from unencrypted clients, a raw Yjs V2 update (§19.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MilestoneGetResponse {
    /// `milestoneId`.
    pub milestone_id: String,
    /// `snapshot`.
    pub snapshot: Bytes,
}

impl MilestoneGetResponse {
    /// `{milestoneId, snapshot}`.
    pub fn to_any(&self) -> Any {
        ObjBuilder::new()
            .put("milestoneId", self.milestone_id.as_str())
            .put("snapshot", self.snapshot.clone())
            .build()
    }

    /// Reads the response.
    ///
    /// # Errors
    /// A missing or mistyped field.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::new(value)?;
        Ok(Self {
            milestone_id: obj.req("milestoneId", string)?,
            snapshot: obj.req("snapshot", bytes)?,
        })
    }
}

/// `milestoneCreate` request: `{method, name, snapshot}`. `name` is **always written**
/// (`undefined` when `None`: the server then names it `Version <n>`).
///
/// ```
/// use bytes::Bytes;
/// use teleportal_core::rpc::MilestoneCreateRequest;
/// use teleportal_core::Any;
///
/// let unnamed = MilestoneCreateRequest { name: None, snapshot: Bytes::from_static(&[0, 0]) };
/// let any = unnamed.to_any();
/// assert_eq!(any.as_object().map(|o| o[1].clone()), Some(("name".into(), Any::Undefined)));
/// assert_eq!(MilestoneCreateRequest::from_any(&any)?, unnamed);
/// # Ok::<(), teleportal_core::rpc::RpcPayloadError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MilestoneCreateRequest {
    /// `name`.
    pub name: Option<String>,
    /// `snapshot`.
    pub snapshot: Bytes,
}

impl MilestoneCreateRequest {
    /// `{method, name, snapshot}`.
    pub fn to_any(&self) -> Any {
        ObjBuilder::request(MILESTONE_CREATE)
            .put_or_undefined("name", self.name.as_deref())
            .put("snapshot", self.snapshot.clone())
            .build()
    }

    /// Reads the request.
    ///
    /// # Errors
    /// A missing or mistyped field, or a wrong `method`.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::new(value)?;
        obj.check_method(MILESTONE_CREATE)?;
        Ok(Self {
            name: obj.opt("name", string)?,
            snapshot: obj.req("snapshot", bytes)?,
        })
    }
}

/// `milestoneUpdateName` request: `{method, milestoneId, name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MilestoneUpdateNameRequest {
    /// `milestoneId`.
    pub milestone_id: String,
    /// `name`.
    pub name: String,
}

impl MilestoneUpdateNameRequest {
    /// `{method, milestoneId, name}`.
    pub fn to_any(&self) -> Any {
        ObjBuilder::request(MILESTONE_UPDATE_NAME)
            .put("milestoneId", self.milestone_id.as_str())
            .put("name", self.name.as_str())
            .build()
    }

    /// Reads the request.
    ///
    /// # Errors
    /// A missing or mistyped field, or a wrong `method`.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::new(value)?;
        obj.check_method(MILESTONE_UPDATE_NAME)?;
        Ok(Self {
            milestone_id: obj.req("milestoneId", string)?,
            name: obj.req("name", string)?,
        })
    }
}

/// The `milestoneCreate` and `milestoneUpdateName` response: `{milestone: MilestoneMeta}`.
#[derive(Debug, Clone, PartialEq)]
pub struct MilestoneMetaResponse {
    /// `milestone`.
    pub milestone: MilestoneMeta,
}

/// `milestoneCreate` response.
pub type MilestoneCreateResponse = MilestoneMetaResponse;
/// `milestoneUpdateName` response.
pub type MilestoneUpdateNameResponse = MilestoneMetaResponse;

impl MilestoneMetaResponse {
    /// `{milestone}`.
    pub fn to_any(&self) -> Any {
        ObjBuilder::new()
            .put("milestone", self.milestone.to_any())
            .build()
    }

    /// Reads the response.
    ///
    /// # Errors
    /// A missing or mistyped field.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let milestone = Obj::new(value)?.req("milestone", |v, _| MilestoneMeta::from_any(v))?;
        Ok(Self { milestone })
    }
}

/// `milestoneRestore` response: `{milestone}` with the lifecycle keys ([`MilestoneEntry`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MilestoneRestoreResponse {
    /// `milestone`.
    pub milestone: MilestoneEntry,
}

impl MilestoneRestoreResponse {
    /// `{milestone}`.
    pub fn to_any(&self) -> Any {
        ObjBuilder::new()
            .put("milestone", self.milestone.to_any())
            .build()
    }

    /// Reads the response.
    ///
    /// # Errors
    /// A missing or mistyped field.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let milestone = Obj::new(value)?.req("milestone", |v, _| MilestoneEntry::from_any(v))?;
        Ok(Self { milestone })
    }
}

typed_payload!(
    MilestoneCreator,
    MilestoneMeta,
    MilestoneEntry,
    MilestoneListRequest,
    MilestoneListResponse,
    MilestoneGetRequest,
    MilestoneGetResponse,
    MilestoneNotFound,
    MilestoneCreateRequest,
    MilestoneUpdateNameRequest,
    MilestoneMetaResponse,
    MilestoneDeleteRequest,
    MilestoneDeleteResponse,
    MilestoneRestoreRequest,
    MilestoneRestoreResponse,
);

#[cfg(test)]
mod tests {
    use super::*;

    fn creator() -> MilestoneCreator {
        MilestoneCreator {
            kind: MilestoneCreatorKind::System,
            id: "auto".into(),
        }
    }

    #[test]
    fn delete_response_is_just_the_id() {
        let r = MilestoneDeleteResponse {
            milestone_id: "m1".into(),
        };
        assert_eq!(r.to_any(), Any::object([("milestoneId", Any::from("m1"))]));
        assert_eq!(MilestoneDeleteResponse::from_any(&r.to_any()), Ok(r));
    }

    #[test]
    fn requests_start_with_their_method() {
        let r = MilestoneDeleteRequest {
            milestone_id: "m1".into(),
        };
        let any = r.to_any();
        assert_eq!(
            any.as_object().map(|o| o[0].clone()),
            Some(("method".into(), Any::from("milestoneDelete")))
        );
        assert_eq!(MilestoneDeleteRequest::from_any(&any), Ok(r.clone()));
        // Another method's request is rejected; a missing `method` is accepted.
        assert_eq!(
            MilestoneRestoreRequest::from_any(&any),
            Err(RpcPayloadError::Invalid {
                field: "method",
                expected: "milestoneRestore"
            })
        );
        let bare = Any::object([("milestoneId", Any::from("m1"))]);
        assert_eq!(MilestoneDeleteRequest::from_any(&bare), Ok(r));
    }

    #[test]
    fn list_request_defaults_absent_fields() {
        let any = Any::object([("method", Any::from("milestoneList"))]);
        assert_eq!(
            MilestoneListRequest::from_any(&any),
            Ok(MilestoneListRequest::default())
        );
    }

    #[test]
    fn unknown_creator_type_is_named() {
        let any = Any::object([("type", Any::from("robot")), ("id", Any::from("x"))]);
        assert_eq!(
            MilestoneCreator::from_any(&any),
            Err(RpcPayloadError::Invalid {
                field: "createdBy.type",
                expected: "\"user\" or \"system\""
            })
        );
    }

    #[test]
    fn entry_accepts_numbers_in_any_encoding() {
        let entry = MilestoneEntry {
            id: "m".into(),
            name: "n".into(),
            document_id: "d".into(),
            created_at: 5.0,
            deleted_at: Some(6.0),
            lifecycle_state: Some("deleted".into()),
            expires_at: None,
            created_by: creator(),
        };
        // A float64-encoded 5.0 decodes to the same number and re-encodes canonically.
        let mut any = entry.to_any();
        if let Any::Object(pairs) = &mut any {
            pairs[3].1 = Any::BigInt(5);
        }
        assert_eq!(MilestoneEntry::from_any(&any), Ok(entry.clone()));
        assert_eq!(
            MilestoneRestoreResponse::from_any(
                &MilestoneRestoreResponse {
                    milestone: entry.clone()
                }
                .to_any()
            ),
            Ok(MilestoneRestoreResponse { milestone: entry })
        );
    }

    #[test]
    fn missing_nested_field_is_named() {
        let any = Any::object([("milestone", Any::object([("id", Any::from("m"))]))]);
        assert_eq!(
            MilestoneMetaResponse::from_any(&any),
            Err(RpcPayloadError::Missing { field: "name" })
        );
    }
}
