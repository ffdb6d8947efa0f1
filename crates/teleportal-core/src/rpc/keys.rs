//! Key-registry payloads (spec §11.6): wrapped document keys per user (AES-KW, 40 bytes for
//! a 32-byte key) and a generation counter that every change bumps.

use bytes::Bytes;

use super::{
    KEYS_GET, KEYS_META, KEYS_REVOKE, KEYS_ROTATE, KEYS_SET, Obj, ObjBuilder, Res, RpcPayloadError,
    array, bytes, string, strings, typed_payload, uint, uint_any,
};
use crate::Any;

/// A request with no fields: `{method}` (`keysGet`, `keysMeta`).
macro_rules! empty_request {
    ($(#[$doc:meta])* $name:ident, $method:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name;

        impl $name {
            /// `{method}`.
            pub fn to_any(&self) -> Any {
                ObjBuilder::request($method).build()
            }

            /// Reads the request (any object whose `method`, if present, matches).
            ///
            /// # Errors
            /// Not an object, or a wrong `method`.
            pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
                Obj::new(value)?.check_method($method)?;
                Ok(Self)
            }
        }
    };
}

empty_request!(
    /// `keysGet` request: `{method}`. The reference sends it with the encrypted flag set.
    KeysGetRequest,
    KEYS_GET
);
empty_request!(
    /// `keysMeta` request: `{method}`.
    KeysMetaRequest,
    KEYS_META
);

/// `keysGet` response: `{wrappedKey, generation}`. Errors are 401 `userId required in
/// message context` and 404 `No wrapped key found for this user`, without payloads.
///
/// ```
/// use bytes::Bytes;
/// use teleportal_core::rpc::KeysGetResponse;
///
/// let r = KeysGetResponse { wrapped_key: Bytes::from(vec![7; 40]), generation: 3 };
/// assert_eq!(KeysGetResponse::from_any(&r.to_any())?, r);
/// # Ok::<(), teleportal_core::rpc::RpcPayloadError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysGetResponse {
    /// `wrappedKey`: the caller's AES-KW-wrapped document key.
    pub wrapped_key: Bytes,
    /// `generation`.
    pub generation: u64,
}

impl KeysGetResponse {
    /// `{wrappedKey, generation}`.
    pub fn to_any(&self) -> Any {
        ObjBuilder::new()
            .put("wrappedKey", self.wrapped_key.clone())
            .put("generation", uint_any(self.generation))
            .build()
    }

    /// Reads the response.
    ///
    /// # Errors
    /// A missing or mistyped field.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::new(value)?;
        Ok(Self {
            wrapped_key: obj.req("wrappedKey", bytes)?,
            generation: obj.req("generation", uint)?,
        })
    }
}

/// One user's wrapped key: `{userId, wrappedKey}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKeyEntry {
    /// `userId`.
    pub user_id: String,
    /// `wrappedKey`.
    pub wrapped_key: Bytes,
}

impl WrappedKeyEntry {
    /// `{userId, wrappedKey}`.
    pub fn to_any(&self) -> Any {
        ObjBuilder::new()
            .put("userId", self.user_id.as_str())
            .put("wrappedKey", self.wrapped_key.clone())
            .build()
    }

    /// Reads an entry.
    ///
    /// # Errors
    /// A missing or mistyped field (named `entries[].…`).
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::nested(value, "entries[]")?;
        Ok(Self {
            user_id: obj.req("entries[].userId", string)?,
            wrapped_key: obj.req("entries[].wrappedKey", bytes)?,
        })
    }
}

fn entries_to_any(entries: &[WrappedKeyEntry]) -> Any {
    Any::Array(entries.iter().map(WrappedKeyEntry::to_any).collect())
}

fn entries(v: &Any, field: &'static str) -> Res<Vec<WrappedKeyEntry>> {
    array(v, field)?
        .iter()
        .map(WrappedKeyEntry::from_any)
        .collect()
}

/// `keysSet` request: `{method, entries}`.
///
/// ```
/// use bytes::Bytes;
/// use teleportal_core::rpc::{KeysSetRequest, WrappedKeyEntry};
///
/// let r = KeysSetRequest {
///     entries: vec![WrappedKeyEntry { user_id: "user-alice".into(), wrapped_key: Bytes::from(vec![1; 40]) }],
/// };
/// assert_eq!(KeysSetRequest::from_any(&r.to_any())?, r);
/// # Ok::<(), teleportal_core::rpc::RpcPayloadError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeysSetRequest {
    /// `entries`.
    pub entries: Vec<WrappedKeyEntry>,
}

impl KeysSetRequest {
    /// `{method, entries}`.
    pub fn to_any(&self) -> Any {
        ObjBuilder::request(KEYS_SET)
            .put("entries", entries_to_any(&self.entries))
            .build()
    }

    /// Reads the request.
    ///
    /// # Errors
    /// A missing or mistyped field, or a wrong `method`.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::new(value)?;
        obj.check_method(KEYS_SET)?;
        Ok(Self {
            entries: obj.req("entries", entries)?,
        })
    }
}

/// `keysRevoke` request: `{method, userIds}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeysRevokeRequest {
    /// `userIds`.
    pub user_ids: Vec<String>,
}

impl KeysRevokeRequest {
    /// `{method, userIds}`.
    pub fn to_any(&self) -> Any {
        ObjBuilder::request(KEYS_REVOKE)
            .put("userIds", string_array(&self.user_ids))
            .build()
    }

    /// Reads the request.
    ///
    /// # Errors
    /// A missing or mistyped field, or a wrong `method`.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::new(value)?;
        obj.check_method(KEYS_REVOKE)?;
        Ok(Self {
            user_ids: obj.req("userIds", strings)?,
        })
    }
}

fn string_array(items: &[String]) -> Any {
    Any::Array(items.iter().map(|s| Any::from(s.as_str())).collect())
}

/// `keysRotate` request: `{method, entries, expectedGeneration}`. A stale generation gets a
/// 409 error without payload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeysRotateRequest {
    /// `entries`: the complete new set of wrapped keys.
    pub entries: Vec<WrappedKeyEntry>,
    /// `expectedGeneration`.
    pub expected_generation: u64,
}

impl KeysRotateRequest {
    /// `{method, entries, expectedGeneration}`.
    pub fn to_any(&self) -> Any {
        ObjBuilder::request(KEYS_ROTATE)
            .put("entries", entries_to_any(&self.entries))
            .put("expectedGeneration", uint_any(self.expected_generation))
            .build()
    }

    /// Reads the request.
    ///
    /// # Errors
    /// A missing or mistyped field, or a wrong `method`.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::new(value)?;
        obj.check_method(KEYS_ROTATE)?;
        Ok(Self {
            entries: obj.req("entries", entries)?,
            expected_generation: obj.req("expectedGeneration", uint)?,
        })
    }
}

/// `{generation}`: the response to `keysSet`, `keysRevoke` and `keysRotate`, and the payload
/// of the server's `keysRotated` notification (a `request` without `method` key, §11.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeysGenerationResponse {
    /// `generation`: the registry's generation after the change.
    pub generation: u64,
}

/// `keysSet` response.
pub type KeysSetResponse = KeysGenerationResponse;
/// `keysRevoke` response.
pub type KeysRevokeResponse = KeysGenerationResponse;
/// `keysRotate` response.
pub type KeysRotateResponse = KeysGenerationResponse;
/// `keysRotated` notification payload.
pub type KeysRotated = KeysGenerationResponse;

impl KeysGenerationResponse {
    /// `{generation}`.
    pub fn to_any(&self) -> Any {
        ObjBuilder::new()
            .put("generation", uint_any(self.generation))
            .build()
    }

    /// Reads `{generation}`.
    ///
    /// # Errors
    /// `generation` missing or not a non-negative integer.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        Ok(Self {
            generation: Obj::new(value)?.req("generation", uint)?,
        })
    }
}

/// `keysMeta` response: `{generation, userIds}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeysMetaResponse {
    /// `generation`.
    pub generation: u64,
    /// `userIds`: users holding a wrapped key.
    pub user_ids: Vec<String>,
}

impl KeysMetaResponse {
    /// `{generation, userIds}`.
    pub fn to_any(&self) -> Any {
        ObjBuilder::new()
            .put("generation", uint_any(self.generation))
            .put("userIds", string_array(&self.user_ids))
            .build()
    }

    /// Reads the response.
    ///
    /// # Errors
    /// A missing or mistyped field.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::new(value)?;
        Ok(Self {
            generation: obj.req("generation", uint)?,
            user_ids: obj.req("userIds", strings)?,
        })
    }
}

typed_payload!(
    KeysGetRequest,
    KeysGetResponse,
    WrappedKeyEntry,
    KeysSetRequest,
    KeysRevokeRequest,
    KeysMetaRequest,
    KeysMetaResponse,
    KeysRotateRequest,
    KeysGenerationResponse,
);

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> WrappedKeyEntry {
        WrappedKeyEntry {
            user_id: "user-bob".into(),
            wrapped_key: Bytes::from_static(&[9; 40]),
        }
    }

    #[test]
    fn rotate_request_writes_entries_then_expected_generation() {
        let r = KeysRotateRequest {
            entries: vec![entry()],
            expected_generation: 2,
        };
        let any = r.to_any();
        let keys: Vec<_> = any
            .as_object()
            .unwrap_or_default()
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(keys, ["method", "entries", "expectedGeneration"]);
        assert_eq!(KeysRotateRequest::from_any(&any), Ok(r));
    }

    #[test]
    fn revoke_request_round_trips() {
        let r = KeysRevokeRequest {
            user_ids: vec!["user-bob".into()],
        };
        assert_eq!(KeysRevokeRequest::from_any(&r.to_any()), Ok(r));
    }

    #[test]
    fn empty_requests_are_just_the_method() {
        assert_eq!(
            KeysGetRequest.to_any(),
            Any::object([("method", Any::from("keysGet"))])
        );
        assert_eq!(
            KeysMetaRequest::from_any(&Any::object::<&str>([])),
            Ok(KeysMetaRequest)
        );
        assert!(KeysMetaRequest::from_any(&KeysGetRequest.to_any()).is_err());
    }

    #[test]
    fn bad_entry_is_named() {
        let any = Any::object([
            ("method", Any::from("keysSet")),
            (
                "entries",
                Any::Array(vec![Any::object([("userId", Any::from("u"))])]),
            ),
        ]);
        assert_eq!(
            KeysSetRequest::from_any(&any),
            Err(RpcPayloadError::Missing {
                field: "entries[].wrappedKey"
            })
        );
    }
}
