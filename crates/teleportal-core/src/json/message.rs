//! Messages in the vectors' `fields` shape.

use serde_json::{Map, Value, json};

use super::{JsonError, any_from_json, any_to_json, bytes_from_json, bytes_to_json};
use crate::y_protocols::{AuthMessage, SyncMessage};
use crate::{
    AckMessage, Any, AwarenessMessage, Body, DocMessage, Frame, Message, PresenceEntry,
    PresenceMessage, RpcKind, RpcMessage, RpcPayload, Update, YMessage,
};

/// A frame as JSON: a message's fields, or `{"kind": "ping" | "pong"}`.
pub fn frame_to_json(frame: &Frame) -> Value {
    match frame {
        Frame::Ping => json!({"kind": "ping"}),
        Frame::Pong => json!({"kind": "pong"}),
        Frame::Message(m) => message_to_json(m),
    }
}

/// Reads [`frame_to_json`]'s output.
///
/// # Errors
/// JSON that describes no frame.
pub fn frame_from_json(value: &Value) -> Result<Frame, JsonError> {
    match value.get("kind").and_then(Value::as_str) {
        Some("ping") => Ok(Frame::Ping),
        Some("pong") => Ok(Frame::Pong),
        _ => message_from_json(value).map(Frame::Message),
    }
}

/// A message as the vectors' `fields` JSON.
pub fn message_to_json(m: &Message) -> Value {
    let mut out = Map::new();
    let type_name = match &m.body {
        Body::Doc(_) => "doc",
        Body::Awareness(_) => "awareness",
        Body::Ack(_) => "ack",
        Body::Presence(_) => "presence",
        Body::Rpc(_) => "rpc",
    };
    out.insert("type".into(), type_name.into());
    out.insert("document".into(), m.document.clone().into());
    out.insert("encrypted".into(), m.encrypted.into());
    match &m.body {
        Body::Doc(d) => {
            out.insert("payload".into(), doc_to_json(d));
        }
        Body::Awareness(AwarenessMessage::Update(u)) => {
            out.insert(
                "payload".into(),
                json!({"type": "awareness-update", "update": bytes_to_json(u)}),
            );
        }
        Body::Awareness(AwarenessMessage::Request) => {
            out.insert("payload".into(), json!({"type": "awareness-request"}));
        }
        Body::Ack(a) => {
            let mut p = Map::new();
            p.insert("type".into(), "ack".into());
            p.insert("messageId".into(), a.message_id.clone().into());
            if let Some(ms) = a.retry_after {
                p.insert("retryAfter".into(), ms.into());
            }
            if let Some(e) = &a.error {
                p.insert("error".into(), e.clone().into());
            }
            out.insert("payload".into(), Value::Object(p));
        }
        Body::Presence(p) => {
            out.insert("payload".into(), presence_to_json(p));
        }
        Body::Rpc(r) => rpc_to_json(r, &mut out),
    }
    Value::Object(out)
}

fn doc_to_json(d: &DocMessage) -> Value {
    let update = |t: &str, u: &Update| json!({"type": t, "update": {"version": u.version, "data": bytes_to_json(&u.data)}});
    match d {
        DocMessage::SyncStep1 { state_vector } => {
            json!({"type": "sync-step-1", "sv": bytes_to_json(state_vector)})
        }
        DocMessage::SyncStep2(u) => update("sync-step-2", u),
        DocMessage::Update(u) => update("update", u),
        DocMessage::SyncDone => json!({"type": "sync-done"}),
        DocMessage::Auth { allowed, reason } => json!({
            "type": "auth-message",
            "permission": if *allowed { "allowed" } else { "denied" },
            "reason": reason,
        }),
    }
}

fn entry_to_json(e: &PresenceEntry) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("awarenessId".into(), e.awareness_id.into());
    m.insert("clientId".into(), e.client_id.clone().into());
    m.insert("userId".into(), e.user_id.clone().into());
    m.insert(
        "data".into(),
        Value::Object(
            e.data
                .iter()
                .map(|(k, v)| (k.clone(), any_to_json(v)))
                .collect(),
        ),
    );
    m
}

fn presence_to_json(p: &PresenceMessage) -> Value {
    let with_entry = |t: &str, e: &PresenceEntry| {
        let mut m = Map::new();
        m.insert("type".into(), t.into());
        m.extend(entry_to_json(e));
        Value::Object(m)
    };
    match p {
        PresenceMessage::Announce { awareness_id } => {
            json!({"type": "presence-announce", "awarenessId": awareness_id})
        }
        PresenceMessage::Unannounce { awareness_id } => {
            json!({"type": "presence-unannounce", "awarenessId": awareness_id})
        }
        PresenceMessage::Join(e) => with_entry("presence-join", e),
        PresenceMessage::Leave(e) => with_entry("presence-leave", e),
        PresenceMessage::Heartbeat(entries) => json!({
            "type": "presence-heartbeat",
            "clients": entries.iter().map(|e| Value::Object(entry_to_json(e))).collect::<Vec<_>>(),
        }),
    }
}

fn rpc_to_json(r: &RpcMessage, out: &mut Map<String, Value>) {
    out.insert("rpcMethod".into(), r.method.clone().into());
    let (kind, original) = match &r.kind {
        RpcKind::Request => ("request", None),
        RpcKind::Stream {
            original_request_id,
        } => ("stream", Some(original_request_id)),
        RpcKind::Response {
            original_request_id,
        } => ("response", Some(original_request_id)),
    };
    out.insert("requestType".into(), kind.into());
    if let Some(id) = original {
        out.insert("originalRequestId".into(), id.clone().into());
    }
    let payload = match &r.payload {
        RpcPayload::Success(v) => json!({"type": "success", "payload": any_to_json(v)}),
        RpcPayload::Error {
            status_code,
            details,
            payload,
        } => {
            let mut m = Map::new();
            m.insert("type".into(), "error".into());
            m.insert("statusCode".into(), (*status_code).into());
            m.insert("details".into(), details.clone().into());
            if let Some(p) = payload {
                m.insert("payload".into(), any_to_json(p));
            }
            Value::Object(m)
        }
    };
    out.insert("payload".into(), payload);
}

fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value, JsonError> {
    v.get(key)
        .ok_or_else(|| JsonError::new(format!("missing field {key:?}")))
}

fn str_field<'a>(v: &'a Value, key: &str) -> Result<&'a str, JsonError> {
    field(v, key)?
        .as_str()
        .ok_or_else(|| JsonError::new(format!("field {key:?} must be a string")))
}

fn u64_field(v: &Value, key: &str) -> Result<u64, JsonError> {
    field(v, key)?
        .as_u64()
        .ok_or_else(|| JsonError::new(format!("field {key:?} must be a non-negative integer")))
}

/// Reads a message from the vectors' `fields` JSON.
///
/// # Errors
/// JSON that describes no message, including shapes the reference encoder refuses (an RPC
/// response or stream without `originalRequestId`).
pub fn message_from_json(v: &Value) -> Result<Message, JsonError> {
    let document = str_field(v, "document")?.to_owned();
    let encrypted = field(v, "encrypted")?
        .as_bool()
        .ok_or_else(|| JsonError::new("field \"encrypted\" must be a boolean"))?;
    let body = match str_field(v, "type")? {
        "doc" => Body::Doc(doc_from_json(field(v, "payload")?)?),
        "awareness" => {
            let p = field(v, "payload")?;
            Body::Awareness(match str_field(p, "type")? {
                "awareness-update" => {
                    AwarenessMessage::Update(bytes_from_json(field(p, "update")?)?)
                }
                "awareness-request" => AwarenessMessage::Request,
                t => return Err(JsonError::new(format!("unknown awareness payload {t:?}"))),
            })
        }
        "ack" => {
            let p = field(v, "payload")?;
            Body::Ack(AckMessage {
                message_id: str_field(p, "messageId")?.to_owned(),
                retry_after: p
                    .get("retryAfter")
                    .map(|_| u64_field(p, "retryAfter"))
                    .transpose()?,
                error: p
                    .get("error")
                    .map(|_| str_field(p, "error").map(str::to_owned))
                    .transpose()?,
            })
        }
        "presence" => Body::Presence(presence_from_json(field(v, "payload")?)?),
        "rpc" => Body::Rpc(rpc_from_json(v)?),
        t => return Err(JsonError::new(format!("unknown message type {t:?}"))),
    };
    Ok(Message {
        document,
        encrypted,
        body,
    })
}

fn doc_from_json(p: &Value) -> Result<DocMessage, JsonError> {
    let update = || -> Result<Update, JsonError> {
        let u = field(p, "update")?;
        Ok(Update {
            version: u8::try_from(u64_field(u, "version")?)
                .map_err(|_| JsonError::new("update version must fit a byte"))?,
            data: bytes_from_json(field(u, "data")?)?,
        })
    };
    Ok(match str_field(p, "type")? {
        "sync-step-1" => DocMessage::SyncStep1 {
            state_vector: bytes_from_json(field(p, "sv")?)?,
        },
        "sync-step-2" => DocMessage::SyncStep2(update()?),
        "update" => DocMessage::Update(update()?),
        "sync-done" => DocMessage::SyncDone,
        "auth-message" => DocMessage::Auth {
            allowed: match str_field(p, "permission")? {
                "allowed" => true,
                "denied" => false,
                other => return Err(JsonError::new(format!("unknown permission {other:?}"))),
            },
            reason: str_field(p, "reason")?.to_owned(),
        },
        t => return Err(JsonError::new(format!("unknown doc payload {t:?}"))),
    })
}

fn entry_from_json(p: &Value) -> Result<PresenceEntry, JsonError> {
    let data = match any_from_json(field(p, "data")?)? {
        Any::Object(pairs) => pairs,
        _ => return Err(JsonError::new("presence data must be an object")),
    };
    Ok(PresenceEntry {
        awareness_id: u64_field(p, "awarenessId")?,
        client_id: str_field(p, "clientId")?.to_owned(),
        user_id: str_field(p, "userId")?.to_owned(),
        data,
    })
}

fn presence_from_json(p: &Value) -> Result<PresenceMessage, JsonError> {
    Ok(match str_field(p, "type")? {
        "presence-announce" => PresenceMessage::Announce {
            awareness_id: u64_field(p, "awarenessId")?,
        },
        "presence-unannounce" => PresenceMessage::Unannounce {
            awareness_id: u64_field(p, "awarenessId")?,
        },
        "presence-join" => PresenceMessage::Join(entry_from_json(p)?),
        "presence-leave" => PresenceMessage::Leave(entry_from_json(p)?),
        "presence-heartbeat" => PresenceMessage::Heartbeat(
            field(p, "clients")?
                .as_array()
                .ok_or_else(|| JsonError::new("clients must be an array"))?
                .iter()
                .map(entry_from_json)
                .collect::<Result<_, _>>()?,
        ),
        t => return Err(JsonError::new(format!("unknown presence payload {t:?}"))),
    })
}

fn rpc_from_json(v: &Value) -> Result<RpcMessage, JsonError> {
    let original = || -> Result<String, JsonError> {
        Ok(str_field(v, "originalRequestId")
            .map_err(|_| JsonError::new("an rpc stream or response needs originalRequestId"))?
            .to_owned())
    };
    let kind = match str_field(v, "requestType")? {
        "request" => RpcKind::Request,
        "stream" => RpcKind::Stream {
            original_request_id: original()?,
        },
        "response" => RpcKind::Response {
            original_request_id: original()?,
        },
        t => return Err(JsonError::new(format!("unknown requestType {t:?}"))),
    };
    let p = field(v, "payload")?;
    let payload = match str_field(p, "type")? {
        "success" => RpcPayload::Success(any_from_json(field(p, "payload")?)?),
        "error" => RpcPayload::Error {
            status_code: u64_field(p, "statusCode")?,
            details: str_field(p, "details")?.to_owned(),
            payload: p.get("payload").map(any_from_json).transpose()?,
        },
        t => return Err(JsonError::new(format!("unknown rpc payload type {t:?}"))),
    };
    Ok(RpcMessage {
        method: str_field(v, "rpcMethod")?.to_owned(),
        kind,
        payload,
    })
}

/// A y-protocols message as the vectors' `fields` JSON.
pub fn y_message_to_json(m: &YMessage) -> Value {
    match m {
        YMessage::Sync(s) => {
            let (t, d) = match s {
                SyncMessage::Step1(d) => ("step1", d),
                SyncMessage::Step2(d) => ("step2", d),
                SyncMessage::Update(d) => ("update", d),
            };
            json!({"messageType": "sync", "syncType": t, "data": bytes_to_json(d)})
        }
        YMessage::Awareness(u) => json!({"messageType": "awareness", "update": bytes_to_json(u)}),
        YMessage::Auth(AuthMessage::PermissionDenied { reason }) => {
            json!({"messageType": "auth", "authType": "permission-denied", "reason": reason})
        }
        YMessage::Auth(AuthMessage::Other(t)) => json!({"messageType": "auth", "authType": t}),
        YMessage::QueryAwareness => json!({"messageType": "queryAwareness"}),
    }
}

/// Reads a y-protocols message from the vectors' `fields` JSON.
///
/// # Errors
/// JSON that describes no y-protocols message.
pub fn y_message_from_json(v: &Value) -> Result<YMessage, JsonError> {
    Ok(match str_field(v, "messageType")? {
        "sync" => {
            let data = bytes_from_json(field(v, "data")?)?;
            YMessage::Sync(match str_field(v, "syncType")? {
                "step1" => SyncMessage::Step1(data),
                "step2" => SyncMessage::Step2(data),
                "update" => SyncMessage::Update(data),
                t => return Err(JsonError::new(format!("unknown syncType {t:?}"))),
            })
        }
        "awareness" => YMessage::Awareness(bytes_from_json(field(v, "update")?)?),
        "auth" => YMessage::Auth(match field(v, "authType")? {
            Value::String(s) if s == "permission-denied" => AuthMessage::PermissionDenied {
                reason: str_field(v, "reason")?.to_owned(),
            },
            other => AuthMessage::Other(
                other
                    .as_u64()
                    .ok_or_else(|| JsonError::new("unknown authType"))?,
            ),
        }),
        "queryAwareness" => YMessage::QueryAwareness,
        t => return Err(JsonError::new(format!("unknown messageType {t:?}"))),
    })
}
