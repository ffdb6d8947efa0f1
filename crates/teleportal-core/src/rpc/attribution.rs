//! Attribution protocol payloads (spec §11.7). Content maps and content ids travel as the
//! binary formats of §14 inside byte values; timestamps are milliseconds.

use bytes::Bytes;

use super::{
    ATTRIBUTION_ACTIVITY, ATTRIBUTION_GET, ATTRIBUTION_GET_INCREMENTAL, Obj, ObjBuilder,
    RpcPayloadError, array, bytes, number, record, string, typed_payload,
};
use crate::Any;

/// A filter over attribution data; all keys are optional and combine with AND. Absent keys
/// are **omitted** (never written as `undefined`): `{userId?, from?, to?, attributes?}`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttributionFilter {
    /// `userId`: only content this user inserted or deleted.
    pub user_id: Option<String>,
    /// `from` (ms, inclusive).
    pub from: Option<f64>,
    /// `to` (ms, inclusive).
    pub to: Option<f64>,
    /// `attributes`: attribute values that must all match, in key order.
    pub attributes: Option<Vec<(String, Any)>>,
}

impl AttributionFilter {
    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        self.user_id.is_none()
            && self.from.is_none()
            && self.to.is_none()
            && self.attributes.is_none()
    }

    /// The filter object (only the keys that are set).
    pub fn to_any(&self) -> Any {
        self.write(ObjBuilder::new()).build()
    }

    fn write(&self, builder: ObjBuilder) -> ObjBuilder {
        builder
            .put_if_some("userId", self.user_id.as_deref())
            .put_if_some("from", self.from)
            .put_if_some("to", self.to)
            .put_if_some("attributes", self.attributes.clone().map(Any::Object))
    }

    /// Reads a filter object.
    ///
    /// # Errors
    /// A mistyped field.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        Self::read(Obj::nested(value, "filter")?)
    }

    fn read(obj: Obj<'_>) -> Result<Self, RpcPayloadError> {
        Ok(Self {
            user_id: obj.opt("userId", string)?,
            from: obj.opt("from", number)?,
            to: obj.opt("to", number)?,
            attributes: obj.opt("attributes", record)?,
        })
    }
}

/// `attributionActivity` request: the filter keys at the top level, after `method`.
///
/// ```
/// use teleportal_core::rpc::{AttributionActivityRequest, AttributionFilter};
/// use teleportal_core::Any;
///
/// let r = AttributionActivityRequest {
///     filter: AttributionFilter { user_id: Some("user-alice".into()), ..Default::default() },
/// };
/// assert_eq!(r.to_any(), Any::object([
///     ("method", Any::from("attributionActivity")),
///     ("userId", Any::from("user-alice")),
/// ]));
/// assert_eq!(AttributionActivityRequest::from_any(&r.to_any())?, r);
/// # Ok::<(), teleportal_core::rpc::RpcPayloadError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttributionActivityRequest {
    /// The filter, flattened into the request.
    pub filter: AttributionFilter,
}

impl AttributionActivityRequest {
    /// `{method, userId?, from?, to?, attributes?}`.
    pub fn to_any(&self) -> Any {
        self.filter
            .write(ObjBuilder::request(ATTRIBUTION_ACTIVITY))
            .build()
    }

    /// Reads the request.
    ///
    /// # Errors
    /// A mistyped field, or a wrong `method`.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::new(value)?;
        obj.check_method(ATTRIBUTION_ACTIVITY)?;
        Ok(Self {
            filter: AttributionFilter::read(obj)?,
        })
    }
}

/// One activity span: `{from, to, userId, attributes}`; `userId` is `null` for changes
/// without a user.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityEntry {
    /// `from` (ms).
    pub from: f64,
    /// `to` (ms).
    pub to: f64,
    /// `userId`, written as `null` when `None`.
    pub user_id: Option<String>,
    /// `attributes`: the span's other attributes, in key order.
    pub attributes: Vec<(String, Any)>,
}

impl ActivityEntry {
    /// `{from, to, userId, attributes}`.
    pub fn to_any(&self) -> Any {
        ObjBuilder::new()
            .put("from", self.from)
            .put("to", self.to)
            .put(
                "userId",
                self.user_id.as_deref().map_or(Any::Null, Any::from),
            )
            .put("attributes", Any::Object(self.attributes.clone()))
            .build()
    }

    /// Reads an entry; absent `attributes` read as empty.
    ///
    /// # Errors
    /// A missing or mistyped field (named `activity[].…`).
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::nested(value, "activity[]")?;
        Ok(Self {
            from: obj.req("activity[].from", number)?,
            to: obj.req("activity[].to", number)?,
            user_id: obj.opt("activity[].userId", string)?,
            attributes: obj
                .opt("activity[].attributes", record)?
                .unwrap_or_default(),
        })
    }
}

/// `attributionActivity` response: `{activity}`.
///
/// ```
/// use teleportal_core::rpc::{ActivityEntry, AttributionActivityResponse};
/// use teleportal_core::Any;
///
/// let r = AttributionActivityResponse {
///     activity: vec![ActivityEntry {
///         from: 1_700_000_006_000.0,
///         to: 1_700_000_006_000.0,
///         user_id: None,
///         attributes: vec![("tag".into(), Any::from("import"))],
///     }],
/// };
/// assert_eq!(AttributionActivityResponse::from_any(&r.to_any())?, r);
/// # Ok::<(), teleportal_core::rpc::RpcPayloadError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttributionActivityResponse {
    /// `activity`.
    pub activity: Vec<ActivityEntry>,
}

impl AttributionActivityResponse {
    /// `{activity}`.
    pub fn to_any(&self) -> Any {
        let list = self
            .activity
            .iter()
            .map(ActivityEntry::to_any)
            .collect::<Vec<_>>();
        ObjBuilder::new().put("activity", list).build()
    }

    /// Reads the response.
    ///
    /// # Errors
    /// A missing or mistyped field.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let activity = Obj::new(value)?.req("activity", |v, f| {
            array(v, f)?.iter().map(ActivityEntry::from_any).collect()
        })?;
        Ok(Self { activity })
    }
}

/// `attributionGet` request: `{method, filter?}` (`filter` omitted when `None`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttributionGetRequest {
    /// `filter`.
    pub filter: Option<AttributionFilter>,
}

impl AttributionGetRequest {
    /// `{method, filter?}`.
    pub fn to_any(&self) -> Any {
        ObjBuilder::request(ATTRIBUTION_GET)
            .put_if_some(
                "filter",
                self.filter.as_ref().map(AttributionFilter::to_any),
            )
            .build()
    }

    /// Reads the request.
    ///
    /// # Errors
    /// A mistyped field, or a wrong `method`.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::new(value)?;
        obj.check_method(ATTRIBUTION_GET)?;
        Ok(Self {
            filter: obj.opt("filter", |v, _| AttributionFilter::from_any(v))?,
        })
    }
}

/// `attributionGetIncremental` request: `{method, knownIds}` (ContentIds, §14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributionGetIncrementalRequest {
    /// `knownIds`: the encoded ContentIds the client already has.
    pub known_ids: Bytes,
}

impl AttributionGetIncrementalRequest {
    /// `{method, knownIds}`.
    pub fn to_any(&self) -> Any {
        ObjBuilder::request(ATTRIBUTION_GET_INCREMENTAL)
            .put("knownIds", self.known_ids.clone())
            .build()
    }

    /// Reads the request.
    ///
    /// # Errors
    /// `knownIds` missing or not bytes, or a wrong `method`.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let obj = Obj::new(value)?;
        obj.check_method(ATTRIBUTION_GET_INCREMENTAL)?;
        Ok(Self {
            known_ids: obj.req("knownIds", bytes)?,
        })
    }
}

/// The `attributionGet` and `attributionGetIncremental` response: `{contentMap}`, an
/// encoded ContentMap (§14) or `null` when the storage keeps no attribution.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContentMapResponse {
    /// `contentMap`, written as `null` when `None`.
    pub content_map: Option<Bytes>,
}

/// `attributionGet` response.
pub type AttributionGetResponse = ContentMapResponse;
/// `attributionGetIncremental` response.
pub type AttributionGetIncrementalResponse = ContentMapResponse;

impl ContentMapResponse {
    /// `{contentMap}`.
    pub fn to_any(&self) -> Any {
        let map = self.content_map.clone().map_or(Any::Null, Any::Bytes);
        ObjBuilder::new().put("contentMap", map).build()
    }

    /// Reads the response; `null` or absent is `None`.
    ///
    /// # Errors
    /// `contentMap` neither bytes nor `null`.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        Ok(Self {
            content_map: Obj::new(value)?.opt("contentMap", bytes)?,
        })
    }
}

/// The payload the server means to push after attributed writes: `{contentMap}` (never
/// `null`). The reference builds it as a `response` without an original request id, which
/// its own encoder rejects, so it never reaches the wire (§19.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributionPush {
    /// `contentMap`: the newly attributed content (§14).
    pub content_map: Bytes,
}

impl AttributionPush {
    /// `{contentMap}`.
    pub fn to_any(&self) -> Any {
        ObjBuilder::new()
            .put("contentMap", self.content_map.clone())
            .build()
    }

    /// Reads the payload.
    ///
    /// # Errors
    /// `contentMap` missing or not bytes.
    pub fn from_any(value: &Any) -> Result<Self, RpcPayloadError> {
        let content_map = Obj::new(value)?.opt("contentMap", bytes)?;
        content_map
            .map(|content_map| Self { content_map })
            .ok_or(RpcPayloadError::Missing {
                field: "contentMap",
            })
    }
}

typed_payload!(
    AttributionFilter,
    AttributionActivityRequest,
    ActivityEntry,
    AttributionActivityResponse,
    AttributionGetRequest,
    AttributionGetIncrementalRequest,
    ContentMapResponse,
    AttributionPush,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_filter_keeps_key_order_and_round_trips() {
        let r = AttributionGetRequest {
            filter: Some(AttributionFilter {
                user_id: Some("u".into()),
                from: Some(1.0),
                to: Some(2.5),
                attributes: Some(vec![("tag".into(), Any::from("x"))]),
            }),
        };
        let any = r.to_any();
        let filter = any
            .get("filter")
            .and_then(Any::as_object)
            .unwrap_or_default();
        let keys: Vec<_> = filter.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["userId", "from", "to", "attributes"]);
        assert_eq!(AttributionGetRequest::from_any(&any), Ok(r));
    }

    #[test]
    fn unfiltered_get_request_omits_filter() {
        let any = AttributionGetRequest::default().to_any();
        assert_eq!(any, Any::object([("method", Any::from("attributionGet"))]));
    }

    #[test]
    fn null_content_map_is_none() {
        let r = ContentMapResponse { content_map: None };
        assert_eq!(r.to_any(), Any::object([("contentMap", Any::Null)]));
        assert_eq!(ContentMapResponse::from_any(&r.to_any()), Ok(r));
        assert_eq!(
            AttributionPush::from_any(&Any::object([("contentMap", Any::Null)])),
            Err(RpcPayloadError::Missing {
                field: "contentMap"
            })
        );
    }

    #[test]
    fn mistyped_filter_field_is_named() {
        let any = Any::object([
            ("method", Any::from("attributionActivity")),
            ("from", Any::from("yesterday")),
        ]);
        assert_eq!(
            AttributionActivityRequest::from_any(&any),
            Err(RpcPayloadError::Invalid {
                field: "from",
                expected: "a number"
            })
        );
    }
}
