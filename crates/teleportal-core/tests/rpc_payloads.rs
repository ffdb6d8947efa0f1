//! Every `rpc` vector's payload parses into its typed form (`teleportal_core::rpc`) and
//! writes back the identical `Any`, so the re-encoded message has the vector's bytes and
//! message id. A payload of a method with no typed form fails the test unless it is listed
//! in `UNTYPED` with the reason.
#![cfg(feature = "json")]

use serde_json::Value;
use teleportal_core::rpc::*;
use teleportal_core::{Any, Body, Message, MessageId, RpcKind, RpcMessage, RpcPayload, json};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/teleportal-wire-v1.json"
);

/// Methods whose success payloads have no typed form, and why.
const UNTYPED: &[(&str, &str)] = &[(
    "custom",
    "an application-defined method carrying a raw Any string: not a built-in protocol",
)];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Request,
    Stream,
    Response,
}

fn kind_of(kind: &RpcKind) -> Kind {
    match kind {
        RpcKind::Request => Kind::Request,
        RpcKind::Stream { .. } => Kind::Stream,
        RpcKind::Response { .. } => Kind::Response,
    }
}

type RoundTrip = fn(&Any) -> Result<Any, RpcPayloadError>;

fn rt<T: TypedPayload>(value: &Any) -> Result<Any, RpcPayloadError> {
    T::from_any(value).map(|typed| typed.to_any())
}

/// The typed form of a success payload, by method and request type.
fn typed_success(method: &str, kind: Kind) -> Option<RoundTrip> {
    use Kind::{Request, Response, Stream};
    Some(match (method, kind) {
        (MILESTONE_LIST, Request) => rt::<MilestoneListRequest>,
        (MILESTONE_LIST, Response) => rt::<MilestoneListResponse>,
        (MILESTONE_GET, Request) => rt::<MilestoneGetRequest>,
        (MILESTONE_GET, Response) => rt::<MilestoneGetResponse>,
        (MILESTONE_CREATE, Request) => rt::<MilestoneCreateRequest>,
        (MILESTONE_CREATE, Response) => rt::<MilestoneCreateResponse>,
        (MILESTONE_UPDATE_NAME, Request) => rt::<MilestoneUpdateNameRequest>,
        (MILESTONE_UPDATE_NAME, Response) => rt::<MilestoneUpdateNameResponse>,
        (MILESTONE_DELETE, Request) => rt::<MilestoneDeleteRequest>,
        (MILESTONE_DELETE, Response) => rt::<MilestoneDeleteResponse>,
        (MILESTONE_RESTORE, Request) => rt::<MilestoneRestoreRequest>,
        (MILESTONE_RESTORE, Response) => rt::<MilestoneRestoreResponse>,
        (FILE_UPLOAD, Request) => rt::<FileUploadRequest>,
        (FILE_UPLOAD, Response) => rt::<FileUploadResponse>,
        (FILE_DOWNLOAD, Request) => rt::<FileDownloadRequest>,
        (FILE_DOWNLOAD, Response) => rt::<FileDownloadResponse>,
        (FILE_UPLOAD | FILE_DOWNLOAD, Stream) => rt::<FilePartStream>,
        (KEYS_GET, Request) => rt::<KeysGetRequest>,
        (KEYS_GET, Response) => rt::<KeysGetResponse>,
        (KEYS_SET, Request) => rt::<KeysSetRequest>,
        (KEYS_SET, Response) => rt::<KeysSetResponse>,
        (KEYS_REVOKE, Request) => rt::<KeysRevokeRequest>,
        (KEYS_REVOKE, Response) => rt::<KeysRevokeResponse>,
        (KEYS_META, Request) => rt::<KeysMetaRequest>,
        (KEYS_META, Response) => rt::<KeysMetaResponse>,
        (KEYS_ROTATE, Request) => rt::<KeysRotateRequest>,
        (KEYS_ROTATE, Response) => rt::<KeysRotateResponse>,
        // A server notification, sent with request type `request` and no `method` key.
        (KEYS_ROTATED, Request) => rt::<KeysRotated>,
        (ATTRIBUTION_ACTIVITY, Request) => rt::<AttributionActivityRequest>,
        (ATTRIBUTION_ACTIVITY, Response) => rt::<AttributionActivityResponse>,
        (ATTRIBUTION_GET, Request) => rt::<AttributionGetRequest>,
        (ATTRIBUTION_GET, Response) => rt::<AttributionGetResponse>,
        (ATTRIBUTION_GET_INCREMENTAL, Request) => rt::<AttributionGetIncrementalRequest>,
        (ATTRIBUTION_GET_INCREMENTAL, Response) => rt::<AttributionGetIncrementalResponse>,
        (ATTRIBUTION_PUSH, Response) => rt::<AttributionPush>,
        _ => return None,
    })
}

/// The typed form of an error payload. Errors without a payload have nothing to type.
fn typed_error(method: &str, status_code: u64) -> Option<RoundTrip> {
    match (method, status_code) {
        (MILESTONE_GET, 404) => Some(rt::<MilestoneNotFound>),
        (_, 501) => Some(rt::<UnknownMethod>),
        _ => None,
    }
}

fn vectors() -> Vec<Value> {
    let text = std::fs::read_to_string(VECTORS).unwrap_or_else(|e| panic!("{VECTORS}: {e}"));
    let doc: Value = serde_json::from_str(&text).expect("vector file is JSON");
    doc["vectors"].as_array().expect("vectors array").clone()
}

fn rpc_vectors() -> Vec<Value> {
    let all: Vec<_> = vectors()
        .into_iter()
        .filter(|v| v["category"] == "rpc")
        .collect();
    assert_eq!(all.len(), 45, "the rpc category has 45 vectors");
    all
}

fn decode_rpc(vector: &Value) -> (Message, RpcMessage) {
    let name = vector["name"].as_str().unwrap_or("?");
    let bytes = hex::decode(vector["hex"].as_str().expect("hex")).expect("valid hex");
    let message = Message::decode(bytes.into()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let Body::Rpc(rpc) = &message.body else {
        panic!("{name}: not an rpc message");
    };
    let rpc = rpc.clone();
    (message, rpc)
}

#[test]
fn every_rpc_payload_round_trips_through_its_typed_form() {
    let mut failures = Vec::new();
    let mut typed = 0;
    for vector in rpc_vectors() {
        let name = vector["name"].as_str().unwrap_or("?").to_owned();
        let (message, rpc) = decode_rpc(&vector);
        let kind = kind_of(&rpc.kind);

        // The decoded payload is the one the vector describes.
        let expected = json::any_from_json(&vector["fields"]["payload"]["payload"]);
        let (original, round_trip) = match &rpc.payload {
            RpcPayload::Success(value) => {
                assert_eq!(Ok(value.clone()), expected, "{name}: decoded payload");
                let f = typed_success(&rpc.method, kind);
                if f.is_none() && !UNTYPED.iter().any(|(m, _)| *m == rpc.method) {
                    failures.push(format!("{name}: no typed form for {} {kind:?}", rpc.method));
                }
                (value, f)
            }
            RpcPayload::Error {
                status_code,
                payload: Some(value),
                ..
            } => {
                assert_eq!(Ok(value.clone()), expected, "{name}: decoded error payload");
                let f = typed_error(&rpc.method, *status_code);
                if f.is_none() {
                    failures.push(format!("{name}: no typed form for error {status_code}"));
                }
                (value, f)
            }
            RpcPayload::Error { payload: None, .. } => continue,
        };
        let Some(round_trip) = round_trip else {
            continue;
        };

        let rewritten = match round_trip(original) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        if &rewritten != original {
            failures.push(format!(
                "{name}: to_any gives {rewritten:?}, not {original:?}"
            ));
            continue;
        }

        // Hence the same bytes and message id as the reference.
        let mut again = rpc.clone();
        again.payload = match &rpc.payload {
            RpcPayload::Success(_) => RpcPayload::Success(rewritten),
            RpcPayload::Error {
                status_code,
                details,
                ..
            } => RpcPayload::Error {
                status_code: *status_code,
                details: details.clone(),
                payload: Some(rewritten),
            },
        };
        let bytes = Message::new(
            message.document.clone(),
            message.encrypted,
            Body::Rpc(again),
        )
        .to_bytes();
        assert_eq!(
            hex::encode(&bytes),
            vector["hex"].as_str().unwrap_or(""),
            "{name}: bytes"
        );
        assert_eq!(
            MessageId::of(&bytes).to_string(),
            vector["message_id"].as_str().unwrap_or(""),
            "{name}: message id"
        );
        typed += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // 45 vectors: 4 errors without payload and 1 untyped custom payload have nothing to check.
    assert_eq!(typed, 40);
}

#[test]
fn every_vector_method_except_the_documented_ones_is_built_in() {
    for vector in rpc_vectors() {
        let (_, rpc) = decode_rpc(&vector);
        let documented =
            UNTYPED.iter().any(|(m, _)| *m == rpc.method) || rpc.method == "noSuchMethod";
        assert_eq!(
            RpcMethod::from_name(&rpc.method).is_some(),
            !documented,
            "{}",
            rpc.method
        );
    }
}

#[test]
fn permission_denied_vector_is_for_a_write_method() {
    let vector = rpc_vectors()
        .into_iter()
        .find(|v| v["name"] == "rpc_error_403_permission")
        .expect("rpc_error_403_permission");
    let (_, rpc) = decode_rpc(&vector);
    assert!(requires_write(&rpc.method));
}

#[test]
fn unencodable_attribution_push_payload_still_has_a_typed_form() {
    let vector = vectors()
        .into_iter()
        .find(|v| v["name"] == "rpc_attribution_push_unencodable")
        .expect("rpc_attribution_push_unencodable");
    let message = &vector["fields"]["message"];
    assert_eq!(message["rpcMethod"], ATTRIBUTION_PUSH);
    let payload = json::any_from_json(&message["payload"]["payload"]).expect("payload JSON");
    let push = AttributionPush::from_any(&payload).expect("typed push");
    assert_eq!(push.to_any(), payload);
}

#[test]
fn typed_errors_rebuild_the_vector_outcomes() {
    for (name, outcome) in [
        (
            "rpc_milestone_get_not_found",
            MilestoneNotFound {
                milestone_id: "m1".into(),
            }
            .to_error(),
        ),
        (
            "rpc_error_501_unknown_method",
            UnknownMethod {
                method: "noSuchMethod".into(),
            }
            .to_error(),
        ),
    ] {
        let vector = rpc_vectors()
            .into_iter()
            .find(|v| v["name"] == name)
            .expect("vector");
        let (_, rpc) = decode_rpc(&vector);
        assert_eq!(rpc.payload, outcome, "{name}");
    }
}
