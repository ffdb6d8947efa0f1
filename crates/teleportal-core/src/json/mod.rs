//! The JSON shape of the shared test vectors, for debugging tools (`inspect`, `vectors`).
//!
//! Bytes are `{"$bytes": "<hex>"}`, `undefined` is `{"$undefined": true}`, a bigint is
//! `{"$bigint": "<decimal>"}`, and NaN, ±Infinity and −0 are `{"$float": "NaN" | "Infinity" |
//! "-Infinity" | "-0"}`. Object key order is kept (serde_json's `preserve_order`).
//!
//! ```
//! use teleportal_core::{Any, json};
//!
//! let value = json::any_from_json(&serde_json::json!({"data": {"$bytes": "0102"}}))?;
//! assert_eq!(value.get("data").and_then(Any::as_bytes).map(|b| &b[..]), Some(&[1u8, 2][..]));
//! assert_eq!(json::any_to_json(&value), serde_json::json!({"data": {"$bytes": "0102"}}));
//! # Ok::<(), json::JsonError>(())
//! ```

mod message;

pub use message::{
    frame_from_json, frame_to_json, message_from_json, message_to_json, y_message_from_json,
    y_message_to_json,
};

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::Any;

/// Why a JSON value does not describe a message or value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JsonError(pub String);

impl JsonError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        JsonError(msg.into())
    }
}

/// Converts a lib0 `Any` to its vector JSON form.
pub fn any_to_json(value: &Any) -> Value {
    match value {
        Any::Undefined => tagged("$undefined", Value::Bool(true)),
        Any::Null => Value::Null,
        Any::Number(n) => number_to_json(*n),
        Any::BigInt(i) => tagged("$bigint", Value::String(i.to_string())),
        Any::Bool(b) => Value::Bool(*b),
        Any::String(s) => Value::String(s.clone()),
        Any::Object(pairs) => Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.clone(), any_to_json(v)))
                .collect(),
        ),
        Any::Array(items) => Value::Array(items.iter().map(any_to_json).collect()),
        Any::Bytes(b) => bytes_to_json(b),
    }
}

/// Converts the vector JSON form to a lib0 `Any`.
///
/// # Errors
/// A `$`-tagged object that is malformed, or a number JSON cannot hold as a double.
pub fn any_from_json(value: &Value) -> Result<Any, JsonError> {
    Ok(match value {
        Value::Null => Any::Null,
        Value::Bool(b) => Any::Bool(*b),
        Value::Number(n) => Any::Number(
            n.as_f64()
                .ok_or_else(|| JsonError::new(format!("number {n} is not a double")))?,
        ),
        Value::String(s) => Any::String(s.clone()),
        Value::Array(items) => {
            Any::Array(items.iter().map(any_from_json).collect::<Result<_, _>>()?)
        }
        Value::Object(map) => {
            if let Some(special) = special_from_json(map)? {
                special
            } else {
                Any::Object(
                    map.iter()
                        .map(|(k, v)| Ok((k.clone(), any_from_json(v)?)))
                        .collect::<Result<_, JsonError>>()?,
                )
            }
        }
    })
}

fn special_from_json(map: &Map<String, Value>) -> Result<Option<Any>, JsonError> {
    if map.len() != 1 {
        return Ok(None);
    }
    let Some((key, inner)) = map.iter().next() else {
        return Ok(None);
    };
    Ok(Some(match key.as_str() {
        "$bytes" => Any::Bytes(bytes_from_json_str(inner)?),
        "$undefined" => Any::Undefined,
        "$bigint" => Any::BigInt(
            inner
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| JsonError::new("$bigint must be a decimal string"))?,
        ),
        "$float" => Any::Number(match inner.as_str() {
            Some("NaN") => f64::NAN,
            Some("Infinity") => f64::INFINITY,
            Some("-Infinity") => f64::NEG_INFINITY,
            Some("-0") => -0.0,
            _ => {
                return Err(JsonError::new(
                    "$float must be NaN, Infinity, -Infinity or -0",
                ));
            }
        }),
        _ => return Ok(None),
    }))
}

fn tagged(key: &str, value: Value) -> Value {
    let mut map = Map::new();
    map.insert(key.to_owned(), value);
    Value::Object(map)
}

/// A number as vector JSON: integers print without a fraction; NaN, ±Infinity and −0 are
/// tagged because JSON cannot hold them.
pub fn number_to_json(n: f64) -> Value {
    if n.is_nan() {
        tagged("$float", Value::String("NaN".into()))
    } else if n.is_infinite() {
        let s = if n > 0.0 { "Infinity" } else { "-Infinity" };
        tagged("$float", Value::String(s.into()))
    } else if n == 0.0 && n.is_sign_negative() {
        tagged("$float", Value::String("-0".into()))
    } else if n.fract() == 0.0 && n.abs() <= crate::lib0::MAX_SAFE_INTEGER as f64 {
        // Checked: an integer within ±2^53, exactly representable as i64.
        #[allow(clippy::cast_possible_truncation)]
        Value::from(n as i64)
    } else {
        Value::from(n)
    }
}

/// Bytes as `{"$bytes": "<hex>"}`.
pub fn bytes_to_json(bytes: &[u8]) -> Value {
    tagged("$bytes", Value::String(hex::encode(bytes)))
}

/// Reads `{"$bytes": "<hex>"}`.
///
/// # Errors
/// Anything else, or hex that does not decode.
pub fn bytes_from_json(value: &Value) -> Result<Bytes, JsonError> {
    match value.as_object().and_then(|m| m.get("$bytes")) {
        Some(inner) => bytes_from_json_str(inner),
        None => Err(JsonError::new(format!(
            "expected {{\"$bytes\": …}}, got {value}"
        ))),
    }
}

fn bytes_from_json_str(inner: &Value) -> Result<Bytes, JsonError> {
    let s = inner
        .as_str()
        .ok_or_else(|| JsonError::new("$bytes must be a hex string"))?;
    hex::decode(s)
        .map(Bytes::from)
        .map_err(|e| JsonError::new(format!("bad hex in $bytes: {e}")))
}
