//! Typed forms of the built-in RPC payloads (spec §11.4–11.7), so servers and clients never
//! hand-build [`Any`] objects.
//!
//! Every payload type has `to_any`, which writes the reference's exact key order (client
//! requests start with `method`, §11.2) and the keys it writes as `undefined`, so the encoded
//! message has the same bytes and message id as one from the TypeScript server; and `from_any`,
//! which is lenient the way the reference's readers are: an `undefined` value counts as an
//! absent key, any numeric tag is accepted for a number, and unknown keys are ignored.
//!
//! ```
//! use teleportal_core::rpc::{MILESTONE_GET, MilestoneGetRequest, RpcPayloadError};
//! use teleportal_core::{Any, Body, Message, MessageId, RpcKind, RpcMessage, RpcPayload};
//!
//! // A client asks for a milestone: the same bytes and id as the reference client's request.
//! let request = MilestoneGetRequest { milestone_id: "m1".into() };
//! let message = Message::rpc("my-doc", RpcMessage {
//!     method: MILESTONE_GET.into(),
//!     kind: RpcKind::Request,
//!     payload: request.to_success(),
//! });
//! let bytes = message.to_bytes();
//! assert_eq!(MessageId::of(&bytes).to_string(), "5946ba6baeed9ef5");
//!
//! // The server reads it back.
//! let Body::Rpc(RpcMessage { payload: RpcPayload::Success(payload), .. }) = Message::decode(bytes)?.body
//! else { unreachable!() };
//! assert_eq!(MilestoneGetRequest::from_any(&payload)?, request);
//! assert_eq!(
//!     MilestoneGetRequest::from_any(&Any::object([("method", Any::from("milestoneGet"))])),
//!     Err(RpcPayloadError::Missing { field: "milestoneId" }),
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Why this shape
//! Message ids are hashes of the encoded bytes (§9), and the reference writes some absent
//! values as `undefined` keys and omits others. Each type therefore spells out which of its
//! `Option` fields are *always written* (as `undefined` when `None`) and which are *omitted*
//! when `None`; the shared test vectors pin both. Where the reference answers with a few
//! distinct shapes (file upload and download responses) the type is an enum with one variant
//! per shape, since the key order differs between them.

mod attribution;
mod file;
mod keys;
mod milestone;

pub use attribution::{
    ActivityEntry, AttributionActivityRequest, AttributionActivityResponse, AttributionFilter,
    AttributionGetIncrementalRequest, AttributionGetIncrementalResponse, AttributionGetRequest,
    AttributionGetResponse, AttributionPush, ContentMapResponse,
};
pub use file::{
    FileDownloadRequest, FileDownloadResponse, FilePartStream, FileUploadRequest,
    FileUploadResponse,
};
pub use keys::{
    KeysGenerationResponse, KeysGetRequest, KeysGetResponse, KeysMetaRequest, KeysMetaResponse,
    KeysRevokeRequest, KeysRevokeResponse, KeysRotateRequest, KeysRotateResponse, KeysRotated,
    KeysSetRequest, KeysSetResponse, WrappedKeyEntry,
};
pub use milestone::{
    MilestoneCreateRequest, MilestoneCreateResponse, MilestoneCreator, MilestoneCreatorKind,
    MilestoneDeleteRequest, MilestoneDeleteResponse, MilestoneEntry, MilestoneGetRequest,
    MilestoneGetResponse, MilestoneListRequest, MilestoneListResponse, MilestoneMeta,
    MilestoneMetaResponse, MilestoneNotFound, MilestoneRestoreRequest, MilestoneRestoreResponse,
    MilestoneUpdateNameRequest, MilestoneUpdateNameResponse,
};

use std::fmt;

use bytes::Bytes;

use crate::lib0::MAX_SAFE_INTEGER;
use crate::{Any, RpcPayload};

/// `milestoneList`: list a document's milestones.
pub const MILESTONE_LIST: &str = "milestoneList";
/// `milestoneGet`: fetch one milestone's snapshot.
pub const MILESTONE_GET: &str = "milestoneGet";
/// `milestoneCreate`: create a milestone from a snapshot (write).
pub const MILESTONE_CREATE: &str = "milestoneCreate";
/// `milestoneUpdateName`: rename a milestone (write).
pub const MILESTONE_UPDATE_NAME: &str = "milestoneUpdateName";
/// `milestoneDelete`: soft-delete a milestone (write).
pub const MILESTONE_DELETE: &str = "milestoneDelete";
/// `milestoneRestore`: restore a deleted milestone (write).
pub const MILESTONE_RESTORE: &str = "milestoneRestore";
/// `fileUpload`: start (request) and carry (stream parts) a file upload (write).
pub const FILE_UPLOAD: &str = "fileUpload";
/// `fileDownload`: download a file as stream parts followed by a response.
pub const FILE_DOWNLOAD: &str = "fileDownload";
/// `keysGet`: the caller's wrapped document key.
pub const KEYS_GET: &str = "keysGet";
/// `keysSet`: add wrapped keys for users.
pub const KEYS_SET: &str = "keysSet";
/// `keysRevoke`: remove users' wrapped keys.
pub const KEYS_REVOKE: &str = "keysRevoke";
/// `keysMeta`: the registry's generation and users.
pub const KEYS_META: &str = "keysMeta";
/// `keysRotate`: replace all wrapped keys if the generation matches.
pub const KEYS_ROTATE: &str = "keysRotate";
/// `keysRotated`: server-to-clients notification after a rotation (sent as a request).
pub const KEYS_ROTATED: &str = "keysRotated";
/// `attributionActivity`: who changed what, when.
pub const ATTRIBUTION_ACTIVITY: &str = "attributionActivity";
/// `attributionGet`: the encoded attribution content map.
pub const ATTRIBUTION_GET: &str = "attributionGet";
/// `attributionGetIncremental`: the content map minus what the client already knows.
pub const ATTRIBUTION_GET_INCREMENTAL: &str = "attributionGetIncremental";
/// `attributionPush`: server-to-clients content-map push (the reference cannot encode it, §19.1).
pub const ATTRIBUTION_PUSH: &str = "attributionPush";

/// A built-in RPC method.
///
/// ```
/// use teleportal_core::rpc::{RpcMethod, requires_write};
///
/// assert_eq!(RpcMethod::from_name("milestoneDelete"), Some(RpcMethod::MilestoneDelete));
/// assert!(RpcMethod::MilestoneDelete.requires_write());
/// assert!(!requires_write("milestoneList"));
/// assert!(!requires_write("someCustomMethod")); // everything else needs `read`
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RpcMethod {
    /// [`MILESTONE_LIST`]
    MilestoneList,
    /// [`MILESTONE_GET`]
    MilestoneGet,
    /// [`MILESTONE_CREATE`]
    MilestoneCreate,
    /// [`MILESTONE_UPDATE_NAME`]
    MilestoneUpdateName,
    /// [`MILESTONE_DELETE`]
    MilestoneDelete,
    /// [`MILESTONE_RESTORE`]
    MilestoneRestore,
    /// [`FILE_UPLOAD`]
    FileUpload,
    /// [`FILE_DOWNLOAD`]
    FileDownload,
    /// [`KEYS_GET`]
    KeysGet,
    /// [`KEYS_SET`]
    KeysSet,
    /// [`KEYS_REVOKE`]
    KeysRevoke,
    /// [`KEYS_META`]
    KeysMeta,
    /// [`KEYS_ROTATE`]
    KeysRotate,
    /// [`KEYS_ROTATED`]
    KeysRotated,
    /// [`ATTRIBUTION_ACTIVITY`]
    AttributionActivity,
    /// [`ATTRIBUTION_GET`]
    AttributionGet,
    /// [`ATTRIBUTION_GET_INCREMENTAL`]
    AttributionGetIncremental,
    /// [`ATTRIBUTION_PUSH`]
    AttributionPush,
}

impl RpcMethod {
    /// Every built-in method.
    pub const ALL: [RpcMethod; 18] = [
        RpcMethod::MilestoneList,
        RpcMethod::MilestoneGet,
        RpcMethod::MilestoneCreate,
        RpcMethod::MilestoneUpdateName,
        RpcMethod::MilestoneDelete,
        RpcMethod::MilestoneRestore,
        RpcMethod::FileUpload,
        RpcMethod::FileDownload,
        RpcMethod::KeysGet,
        RpcMethod::KeysSet,
        RpcMethod::KeysRevoke,
        RpcMethod::KeysMeta,
        RpcMethod::KeysRotate,
        RpcMethod::KeysRotated,
        RpcMethod::AttributionActivity,
        RpcMethod::AttributionGet,
        RpcMethod::AttributionGetIncremental,
        RpcMethod::AttributionPush,
    ];

    /// The method name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            RpcMethod::MilestoneList => MILESTONE_LIST,
            RpcMethod::MilestoneGet => MILESTONE_GET,
            RpcMethod::MilestoneCreate => MILESTONE_CREATE,
            RpcMethod::MilestoneUpdateName => MILESTONE_UPDATE_NAME,
            RpcMethod::MilestoneDelete => MILESTONE_DELETE,
            RpcMethod::MilestoneRestore => MILESTONE_RESTORE,
            RpcMethod::FileUpload => FILE_UPLOAD,
            RpcMethod::FileDownload => FILE_DOWNLOAD,
            RpcMethod::KeysGet => KEYS_GET,
            RpcMethod::KeysSet => KEYS_SET,
            RpcMethod::KeysRevoke => KEYS_REVOKE,
            RpcMethod::KeysMeta => KEYS_META,
            RpcMethod::KeysRotate => KEYS_ROTATE,
            RpcMethod::KeysRotated => KEYS_ROTATED,
            RpcMethod::AttributionActivity => ATTRIBUTION_ACTIVITY,
            RpcMethod::AttributionGet => ATTRIBUTION_GET,
            RpcMethod::AttributionGetIncremental => ATTRIBUTION_GET_INCREMENTAL,
            RpcMethod::AttributionPush => ATTRIBUTION_PUSH,
        }
    }

    /// The built-in method with this wire name, if any (names are case-sensitive).
    pub fn from_name(name: &str) -> Option<RpcMethod> {
        RpcMethod::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether calling this method needs `write` permission (§11.4, §15.2): milestoneCreate,
    /// milestoneUpdateName, milestoneDelete, milestoneRestore and fileUpload. Every other
    /// method needs `read`.
    pub fn requires_write(self) -> bool {
        matches!(
            self,
            RpcMethod::MilestoneCreate
                | RpcMethod::MilestoneUpdateName
                | RpcMethod::MilestoneDelete
                | RpcMethod::MilestoneRestore
                | RpcMethod::FileUpload
        )
    }
}

impl fmt::Display for RpcMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether an RPC message for `method` needs `write` permission rather than `read` (§15.2).
/// Unknown and custom methods need `read`, as in the reference.
pub fn requires_write(method: &str) -> bool {
    RpcMethod::from_name(method).is_some_and(RpcMethod::requires_write)
}

/// Why an [`Any`] is not the expected RPC payload.
///
/// `field` is the key as it appears on the wire; keys of nested objects are prefixed with
/// their parent's key (`createdBy.type`), and `(payload)` names the payload itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RpcPayloadError {
    /// A required key is absent or `undefined`.
    #[error("rpc payload: missing field `{field}`")]
    Missing {
        /// The key.
        field: &'static str,
    },
    /// A key holds a value of the wrong type or out of range.
    #[error("rpc payload: field `{field}` is not {expected}")]
    Invalid {
        /// The key.
        field: &'static str,
        /// What it should have held.
        expected: &'static str,
    },
}

/// A payload type with a typed form: the common interface of every type in this module, for
/// code that is generic over methods (handler registries, test harnesses).
pub trait TypedPayload: Sized {
    /// The payload as the reference writes it.
    fn to_any(&self) -> Any;

    /// Reads the payload.
    ///
    /// # Errors
    /// The first missing or mistyped field.
    fn from_any(value: &Any) -> Result<Self, RpcPayloadError>;

    /// The payload as a success outcome, ready for an [`crate::RpcMessage`].
    fn to_success(&self) -> RpcPayload {
        RpcPayload::Success(self.to_any())
    }
}

/// Implements [`TypedPayload`] by forwarding to the inherent `to_any`/`from_any`, which stay
/// callable without importing the trait, and adds an inherent `to_success` likewise.
macro_rules! typed_payload {
    ($($ty:ty),* $(,)?) => {$(
        impl $ty {
            /// The payload as a success outcome, ready for an [`crate::RpcMessage`].
            pub fn to_success(&self) -> $crate::RpcPayload {
                $crate::RpcPayload::Success(self.to_any())
            }
        }

        impl $crate::rpc::TypedPayload for $ty {
            fn to_any(&self) -> $crate::Any {
                <$ty>::to_any(self)
            }
            fn from_any(value: &$crate::Any) -> Result<Self, $crate::rpc::RpcPayloadError> {
                <$ty>::from_any(value)
            }
        }
    )*};
}
pub(crate) use typed_payload;

/// The payload of the 501 error the server sends for an unknown method (§11.3):
/// `{method}`.
///
/// ```
/// use teleportal_core::rpc::UnknownMethod;
/// use teleportal_core::RpcPayload;
///
/// let error = UnknownMethod { method: "noSuchMethod".into() }.to_error();
/// let RpcPayload::Error { status_code, details, .. } = &error else { unreachable!() };
/// assert_eq!((*status_code, details.as_str()), (501, "Unknown RPC method: noSuchMethod"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMethod {
    /// The method the server does not know.
    pub method: String,
}

impl UnknownMethod {
    /// `{method}`.
    pub fn to_any(&self) -> Any {
        Any::object([("method", Any::from(self.method.as_str()))])
    }

    /// Reads `{method}`.
    ///
    /// # Errors
    /// `method` missing or not a string.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::new(value)?;
        Ok(Self {
            method: obj.req("method", string)?,
        })
    }

    /// The whole error outcome: 501 `Unknown RPC method: <method>` with this payload.
    pub fn to_error(&self) -> RpcPayload {
        RpcPayload::Error {
            status_code: 501,
            details: format!("Unknown RPC method: {}", self.method),
            payload: Some(self.to_any()),
        }
    }
}

typed_payload!(UnknownMethod);

// ---------------------------------------------------------------------------------------------
// Reading and writing helpers shared by the submodules.

type Res<T> = Result<T, RpcPayloadError>;

/// The keys of a payload object, read the way JavaScript reads a decoded lib0 object.
#[derive(Debug, Clone, Copy)]
struct Obj<'a>(&'a [(String, Any)]);

impl<'a> Obj<'a> {
    /// The payload itself must be an object.
    fn new(value: &'a Any) -> Res<Self> {
        Self::nested(value, "(payload)")
    }

    /// A nested value (named `field` in errors) must be an object.
    fn nested(value: &'a Any, field: &'static str) -> Res<Self> {
        value.as_object().map(Obj).ok_or(RpcPayloadError::Invalid {
            field,
            expected: "an object",
        })
    }

    /// The value of `key`. `undefined` counts as absent; with duplicate keys the last one wins,
    /// as when lib0 decodes into a JavaScript object.
    fn get(&self, key: &str) -> Option<&'a Any> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .filter(|v| !matches!(v, Any::Undefined))
    }

    /// The value at `field`, a key or a path ending in one (`createdBy.type`,
    /// `entries[].userId`): the key is the last segment, the whole path names it in errors.
    fn field(&self, field: &str) -> Option<&'a Any> {
        self.get(field.rsplit('.').next().unwrap_or(field))
    }

    /// A required field, converted.
    fn req<T>(
        &self,
        field: &'static str,
        conv: impl FnOnce(&'a Any, &'static str) -> Res<T>,
    ) -> Res<T> {
        conv(
            self.field(field)
                .ok_or(RpcPayloadError::Missing { field })?,
            field,
        )
    }

    /// An optional field, converted; `null` counts as absent too (the reference's `??`).
    fn opt<T>(
        &self,
        field: &'static str,
        conv: impl FnOnce(&'a Any, &'static str) -> Res<T>,
    ) -> Res<Option<T>> {
        match self.field(field) {
            None | Some(Any::Null) => Ok(None),
            Some(v) => conv(v, field).map(Some),
        }
    }

    /// A request's `method` key, if present, must name `method`; it may be absent (the server
    /// dispatches on the envelope's method, not on this key).
    fn check_method(&self, method: &'static str) -> Res<()> {
        match self.get("method") {
            None => Ok(()),
            Some(Any::String(m)) if m == method => Ok(()),
            Some(_) => Err(RpcPayloadError::Invalid {
                field: "method",
                expected: method,
            }),
        }
    }
}

fn invalid(field: &'static str, expected: &'static str) -> RpcPayloadError {
    RpcPayloadError::Invalid { field, expected }
}

fn string(v: &Any, field: &'static str) -> Res<String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or(invalid(field, "a string"))
}

fn boolean(v: &Any, field: &'static str) -> Res<bool> {
    v.as_bool().ok_or(invalid(field, "a boolean"))
}

fn bytes(v: &Any, field: &'static str) -> Res<Bytes> {
    v.as_bytes().cloned().ok_or(invalid(field, "a byte array"))
}

fn array<'a>(v: &'a Any, field: &'static str) -> Res<&'a [Any]> {
    v.as_array().ok_or(invalid(field, "an array"))
}

/// Any number (all three numeric tags decode to [`Any::Number`]; a bigint is accepted too).
fn number(v: &Any, field: &'static str) -> Res<f64> {
    match v {
        Any::Number(n) => Ok(*n),
        // A JavaScript number is a double: a bigint beyond 2^53 rounds, as `Number(b)` does.
        #[allow(clippy::cast_precision_loss)]
        Any::BigInt(i) => Ok(*i as f64),
        _ => Err(invalid(field, "a number")),
    }
}

/// A count, index, size or generation: a non-negative integer up to 2^53 − 1, in any numeric
/// encoding.
fn uint(v: &Any, field: &'static str) -> Res<u64> {
    const EXPECTED: &str = "a non-negative integer below 2^53";
    match v {
        Any::BigInt(i) => u64::try_from(*i)
            .ok()
            .filter(|n| *n <= MAX_SAFE_INTEGER)
            .ok_or(invalid(field, EXPECTED)),
        Any::Number(_) => v.as_u64().ok_or(invalid(field, EXPECTED)),
        _ => Err(invalid(field, "a number")),
    }
}

fn strings(v: &Any, field: &'static str) -> Res<Vec<String>> {
    array(v, field)?.iter().map(|s| string(s, field)).collect()
}

/// A JSON-like record (`attributes`): an object's pairs in order.
fn record(v: &Any, field: &'static str) -> Res<Vec<(String, Any)>> {
    Obj::nested(v, field).map(|o| o.0.to_vec())
}

/// An integer as a JavaScript number. Exact up to 2^53 − 1, which every value read by
/// [`uint`] respects.
#[allow(clippy::cast_precision_loss)]
fn uint_any(n: u64) -> Any {
    Any::Number(n as f64)
}

/// Builds a payload object key by key, in the order the reference writes them.
#[derive(Debug, Default)]
struct ObjBuilder(Vec<(String, Any)>);

impl ObjBuilder {
    /// A client request: `method` comes first (§11.2).
    fn request(method: &str) -> Self {
        Self(vec![("method".to_owned(), Any::from(method))])
    }

    fn new() -> Self {
        Self::default()
    }

    fn put(mut self, key: &str, value: impl Into<Any>) -> Self {
        self.0.push((key.to_owned(), value.into()));
        self
    }

    /// A key the reference always writes: `undefined` when absent.
    fn put_or_undefined<T: Into<Any>>(self, key: &str, value: Option<T>) -> Self {
        match value {
            Some(v) => self.put(key, v),
            None => self.put(key, Any::Undefined),
        }
    }

    /// A key the reference omits when absent.
    fn put_if_some<T: Into<Any>>(self, key: &str, value: Option<T>) -> Self {
        match value {
            Some(v) => self.put(key, v),
            None => self,
        }
    }

    fn build(self) -> Any {
        Any::Object(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_class_is_exactly_the_five_spec_methods() {
        let write: Vec<_> = RpcMethod::ALL
            .into_iter()
            .filter(|m| m.requires_write())
            .map(RpcMethod::name)
            .collect();
        assert_eq!(
            write,
            [
                "milestoneCreate",
                "milestoneUpdateName",
                "milestoneDelete",
                "milestoneRestore",
                "fileUpload"
            ]
        );
        assert!(requires_write("fileUpload"));
        assert!(!requires_write("fileDownload"));
        assert!(!requires_write("FileUpload"));
    }

    #[test]
    fn every_method_name_parses_back() {
        for m in RpcMethod::ALL {
            assert_eq!(RpcMethod::from_name(m.name()), Some(m));
            assert_eq!(m.to_string(), m.name());
        }
        assert_eq!(RpcMethod::from_name("noSuchMethod"), None);
    }

    #[test]
    fn undefined_and_duplicate_keys_read_like_javascript() {
        let v = Any::object([
            ("a", Any::from("first")),
            ("a", Any::from("last")),
            ("b", Any::Undefined),
        ]);
        let obj = Obj::new(&v).unwrap();
        assert_eq!(obj.req("a", string).unwrap(), "last");
        assert_eq!(obj.opt("b", string).unwrap(), None);
        assert_eq!(
            obj.req("b", string),
            Err(RpcPayloadError::Missing { field: "b" })
        );
    }

    #[test]
    fn nested_paths_look_up_their_last_key() {
        let v = Any::object([("type", Any::from("user"))]);
        let obj = Obj::new(&v).unwrap();
        assert_eq!(obj.req("createdBy.type", string).unwrap(), "user");
        assert_eq!(
            obj.req("createdBy.id", string),
            Err(RpcPayloadError::Missing {
                field: "createdBy.id"
            })
        );
    }

    #[test]
    fn integers_accept_every_numeric_encoding_and_reject_the_rest() {
        assert_eq!(uint(&Any::Number(3.0), "n"), Ok(3));
        assert_eq!(uint(&Any::BigInt(3), "n"), Ok(3));
        assert!(uint(&Any::Number(-1.0), "n").is_err());
        assert!(uint(&Any::Number(0.5), "n").is_err());
        assert!(uint(&Any::Number(f64::NAN), "n").is_err());
        assert!(uint(&Any::BigInt(-1), "n").is_err());
        assert!(uint(&Any::BigInt(i64::MAX), "n").is_err());
        assert_eq!(
            uint(&Any::from("3"), "n"),
            Err(RpcPayloadError::Invalid {
                field: "n",
                expected: "a number"
            })
        );
        assert_eq!(number(&Any::BigInt(-7), "n"), Ok(-7.0));
    }

    #[test]
    fn unknown_method_payload_round_trips() {
        let p = UnknownMethod { method: "x".into() };
        assert_eq!(UnknownMethod::from_any(&p.to_any()), Ok(p));
        assert_eq!(
            UnknownMethod::from_any(&Any::Null),
            Err(RpcPayloadError::Invalid {
                field: "(payload)",
                expected: "an object"
            })
        );
    }
}
