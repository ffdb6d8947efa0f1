//! Envelope messages, lib0 primitives, framing, content envelopes and y-protocols.

use bytes::Bytes;
use serde_json::Value;
use teleportal_core::json::{
    any_from_json, frame_from_json, frame_to_json, message_from_json, message_to_json,
    y_message_from_json, y_message_to_json,
};
use teleportal_core::lib0::{self, Reader, VarInt};
use teleportal_core::y_protocols::{AwarenessUpdate, SyncMessage};
use teleportal_core::{
    Any, Compaction, ContentEnvelope, Frame, Message, MessageId, PubSubFrame, SidecarRange,
    YMessage, message_array,
};

use crate::harness::{Outcome, Vector, json_bytes, same, same_hex};

/// An envelope message: decode to `fields`, print back to the same JSON, re-encode to `hex`.
pub fn check_message(v: &Vector) -> Outcome {
    let decoded = Message::decode(v.bytes()?).map_err(|e| format!("decode failed: {e}"))?;
    let expected = message_from_json(&v.fields).map_err(|e| format!("bad fields: {e}"))?;
    same("decoded message", &decoded, &expected)?;
    same("message as JSON", &message_to_json(&decoded), &v.fields)?;
    same_hex("re-encoded", &decoded.to_bytes(), v.reencoded_hex())?;
    if !v.is_decode_only() {
        same_hex("encoded from fields", &expected.to_bytes(), &v.hex)?;
    }
    Ok(())
}

/// Encoding must be refused: the fields describe a message the reference cannot encode.
pub fn check_refused_encoding(v: &Vector, encoder: &str) -> Outcome {
    if encoder != "message" {
        return Err(format!("unknown encoder {encoder:?}"));
    }
    match message_from_json(v.field("message")?) {
        Ok(m) => Err(format!("encoded a message that must be refused: {m:?}")),
        Err(_) => Ok(()),
    }
}

fn number(v: &Value) -> Result<f64, String> {
    match any_from_json(v).map_err(|e| e.to_string())? {
        Any::Number(n) => Ok(n),
        other => Err(format!("expected a number, got {other:?}")),
    }
}

fn var_int_of(n: f64) -> VarInt {
    // Vector values are integers within ±2^53, so the conversion is exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let magnitude = n.abs() as u64;
    VarInt {
        negative: n.is_sign_negative(),
        magnitude,
    }
}

/// A lib0 primitive of `fields.kind` with `fields.value`.
pub fn check_lib0(v: &Vector) -> Outcome {
    let kind = v.field("kind")?.as_str().ok_or("kind must be a string")?;
    let value = v.field("value")?;
    let mut r = Reader::new(v.bytes()?);
    let mut out = Vec::new();
    match kind {
        "varUint" => {
            let expected = value.as_u64().ok_or("value must be an unsigned integer")?;
            let got = r.read_var_uint("value").map_err(|e| e.to_string())?;
            same("varUint", &got, &expected)?;
            lib0::write_var_uint(&mut out, expected);
        }
        "varInt" => {
            let expected = number(value)?;
            let got = r.read_var_int("value").map_err(|e| e.to_string())?;
            same("varInt", &got, &var_int_of(expected))?;
            lib0::write_var_int(&mut out, var_int_of(expected));
        }
        "varString" => {
            let expected = value.as_str().ok_or("value must be a string")?;
            let got = r.read_var_string("value").map_err(|e| e.to_string())?;
            same("varString", &got.as_str(), &expected)?;
            lib0::write_var_string(&mut out, expected);
        }
        "varUint8Array" => {
            let expected = json_bytes(value)?;
            let got = r.read_var_bytes("value").map_err(|e| e.to_string())?;
            same("varUint8Array", &got, &expected)?;
            lib0::write_var_bytes(&mut out, &expected);
        }
        "float32" => {
            let expected = number(value)?;
            let got = r.read_f32("value").map_err(|e| e.to_string())?;
            same("float32", &f64::from(got).to_bits(), &expected.to_bits())?;
            #[allow(clippy::cast_possible_truncation)] // the vector's value is a float32
            out.extend_from_slice(&(expected as f32).to_be_bytes());
        }
        "float64" => {
            let expected = number(value)?;
            let got = r.read_f64("value").map_err(|e| e.to_string())?;
            same("float64", &got.to_bits(), &expected.to_bits())?;
            out.extend_from_slice(&expected.to_be_bytes());
        }
        "bigint64" => {
            let Any::BigInt(expected) = any_from_json(value).map_err(|e| e.to_string())? else {
                return Err("value must be a $bigint".into());
            };
            let got = r.read_i64("value").map_err(|e| e.to_string())?;
            same("bigint64", &got, &expected)?;
            out.extend_from_slice(&expected.to_be_bytes());
        }
        "any" => {
            let expected = any_from_json(value).map_err(|e| e.to_string())?;
            let got = Any::read(&mut r).map_err(|e| e.to_string())?;
            same("any", &got, &expected)?;
            expected.encode(&mut out);
            same_hex(
                "re-encoded decoded value",
                &got.to_bytes(),
                v.reencoded_hex(),
            )?;
        }
        other => return Err(format!("unknown lib0 kind {other:?}")),
    }
    if !v.is_decode_only() && !r.is_empty() {
        return Err(format!("{} bytes left unread", r.remaining()));
    }
    same_hex("encoded", &out, v.reencoded_hex())
}

/// A bare ping or pong.
pub fn check_heartbeat(v: &Vector) -> Outcome {
    let decoded = Frame::decode(v.bytes()?).map_err(|e| e.to_string())?;
    let expected = frame_from_json(&v.fields).map_err(|e| e.to_string())?;
    same("frame", &decoded, &expected)?;
    same("frame as JSON", &frame_to_json(&decoded), &v.fields)?;
    same_hex("encoded", &expected.to_bytes(), &v.hex)
}

/// MessageArray and pub/sub frames.
pub fn check_framing(v: &Vector) -> Outcome {
    match v.field("kind")?.as_str() {
        Some("message-array") => {
            let elements = v
                .field("messages")?
                .as_array()
                .ok_or("messages must be an array")?
                .iter()
                .map(json_bytes)
                .collect::<Result<Vec<_>, _>>()?;
            let expected = elements
                .iter()
                .map(|b| Message::decode(b.clone()).map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()?;
            let decoded = message_array::decode(v.bytes()?).map_err(|e| e.to_string())?;
            same("messages", &decoded, &expected)?;
            same_hex("encoded", &message_array::encode(&decoded), &v.hex)
        }
        Some("pubsub") => {
            let expected = PubSubFrame {
                source_id: v
                    .field("sourceId")?
                    .as_str()
                    .ok_or("sourceId must be a string")?
                    .to_owned(),
                message: json_bytes(v.field("message")?)?,
            };
            let decoded = PubSubFrame::decode(v.bytes()?).map_err(|e| e.to_string())?;
            same("pub/sub frame", &decoded, &expected)?;
            same_hex("encoded", &expected.to_bytes(), &v.hex)
        }
        other => Err(format!("unknown framing kind {other:?}")),
    }
}

/// The id of `fields.data` (the harness also checks it against `hex`).
pub fn check_message_id(v: &Vector) -> Outcome {
    let data = json_bytes(v.field("data")?)?;
    let expected = v.message_id.as_deref().ok_or("no message_id")?;
    same("id", &MessageId::of(&data).to_string().as_str(), &expected)
}

/// A content envelope (spec §5).
pub fn check_envelope(v: &Vector) -> Outcome {
    let decoded = ContentEnvelope::decode(v.bytes()?).map_err(|e| e.to_string())?;
    let expected = envelope_from_fields(v)?;
    same("envelope", &decoded, &expected)?;
    same_hex("re-encoded", &decoded.to_bytes(), v.reencoded_hex())?;
    if !v.is_decode_only() {
        same_hex("encoded from fields", &expected.to_bytes(), &v.hex)?;
    }
    Ok(())
}

fn u64_of(v: &Value, key: &str) -> Result<u64, String> {
    v.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("{key} must be an unsigned integer"))
}

fn bytes_list(v: &Value) -> Result<Vec<Bytes>, String> {
    v.as_array()
        .ok_or("expected an array of bytes")?
        .iter()
        .map(json_bytes)
        .collect()
}

fn envelope_from_fields(v: &Vector) -> Result<ContentEnvelope, String> {
    same("wireVersion", &v.field("wireVersion")?.as_u64(), &Some(1))?;
    let compaction = match v.fields.get("compaction") {
        None => None,
        Some(c) => Some(Compaction {
            sidecar: json_bytes(c.get("sidecar").ok_or("compaction.sidecar")?)?,
            index: c
                .get("index")
                .and_then(Value::as_array)
                .ok_or("compaction.index must be an array")?
                .iter()
                .map(|e| {
                    Ok(SidecarRange {
                        client_id: u64_of(e, "clientId")?,
                        min_clock: u64_of(e, "minClock")?,
                        max_clock: u64_of(e, "maxClock")?,
                    })
                })
                .collect::<Result<_, String>>()?,
            hash: json_bytes(c.get("hash").ok_or("compaction.hash")?)?,
            source_hashes: bytes_list(c.get("sourceHashes").ok_or("compaction.sourceHashes")?)?,
        }),
    };
    Ok(ContentEnvelope {
        structure_update: json_bytes(v.field("structureUpdate")?)?,
        sidecars: bytes_list(v.field("encryptedSidecars")?)?,
        compaction,
    })
}

/// A y-protocols message (spec §21), with its derived awareness states and document content.
pub fn check_y_message(v: &Vector) -> Outcome {
    let decoded = YMessage::decode(v.bytes()?).map_err(|e| format!("decode failed: {e}"))?;
    let expected = y_message_from_json(&v.fields).map_err(|e| format!("bad fields: {e}"))?;
    same("decoded message", &decoded, &expected)?;
    same("message as JSON", &y_message_to_json(&decoded), &v.fields)?;
    same_hex("re-encoded", &decoded.to_bytes(), v.reencoded_hex())?;
    if !v.is_decode_only() {
        same_hex("encoded from fields", &expected.to_bytes(), &v.hex)?;
    }
    if let Some(states) = v.expected.as_ref().and_then(|e| e.get("states")) {
        let YMessage::Awareness(update) = &decoded else {
            return Err("expected.states on a message that is not awareness".into());
        };
        check_awareness_states(update, states)?;
    }
    if let YMessage::Sync(SyncMessage::Step2(data) | SyncMessage::Update(data)) = &decoded
        && v.expected.is_some()
    {
        crate::fixture::check_y_expected(v, data)?;
    }
    Ok(())
}

fn check_awareness_states(update: &Bytes, states: &Value) -> Outcome {
    let decoded = AwarenessUpdate::decode(update.clone()).map_err(|e| e.to_string())?;
    let actual: Vec<Value> = decoded
        .entries
        .iter()
        .map(|e| {
            let state: Value = serde_json::from_str(&e.state).map_err(|e| e.to_string())?;
            Ok(serde_json::json!({"clientID": e.client_id, "clock": e.clock, "state": state}))
        })
        .collect::<Result<_, String>>()?;
    same("awareness states", &Value::Array(actual), states)
}

/// Runs the decoder a negative vector names: `None` if this module has no such decoder.
pub fn decode_with(decoder: &str, bytes: Bytes) -> Option<Result<(), String>> {
    let err = |e: teleportal_core::DecodeError| e.to_string();
    let mut r = Reader::new(bytes.clone());
    Some(match decoder {
        "message" => Frame::decode(bytes).map(drop).map_err(err),
        "content-envelope" => ContentEnvelope::decode(bytes).map(drop).map_err(err),
        "message-array" => message_array::decode(bytes).map(drop).map_err(err),
        "pubsub" => PubSubFrame::decode(bytes).map(drop).map_err(err),
        "y-protocols" => YMessage::decode(bytes).map(drop).map_err(err),
        "lib0:varUint" => r.read_var_uint("value").map(drop).map_err(err),
        "lib0:varInt" => r.read_var_int("value").map(drop).map_err(err),
        "lib0:varString" => r.read_var_string("value").map(drop).map_err(err),
        "lib0:varUint8Array" => r.read_var_bytes("value").map(drop).map_err(err),
        "lib0:any" => Any::read(&mut r).map(drop).map_err(err),
        _ => return None,
    })
}
