//! Reading vector files and the checks every category shares.

use bytes::Bytes;
use serde_json::Value;
use teleportal_core::MessageId;

/// The result of checking one vector: `Err` says what differed.
pub type Outcome = Result<(), String>;

/// One vector of a shared-format file.
#[derive(Debug)]
pub struct Vector {
    pub name: String,
    pub category: String,
    pub fields: Value,
    pub hex: String,
    pub message_id: Option<String>,
    pub canonical_hex: Option<String>,
    pub expected: Option<Value>,
}

impl Vector {
    /// The vector's bytes (`hex`).
    pub fn bytes(&self) -> Result<Bytes, String> {
        hex::decode(&self.hex)
            .map(Bytes::from)
            .map_err(|e| format!("bad hex: {e}"))
    }

    /// What encoding the decoded value must give: `canonical_hex` for decode-only vectors,
    /// else `hex`.
    pub fn reencoded_hex(&self) -> &str {
        self.canonical_hex.as_deref().unwrap_or(&self.hex)
    }

    /// Whether encoding `fields` must give `hex` too (false for decode-only vectors, whose
    /// fields encode to `canonical_hex`).
    pub fn is_decode_only(&self) -> bool {
        self.canonical_hex.is_some()
    }

    /// A field of `fields`.
    pub fn field(&self, key: &str) -> Result<&Value, String> {
        self.fields
            .get(key)
            .ok_or_else(|| format!("missing fields.{key}"))
    }

    /// A member of `expected`.
    pub fn expected(&self, key: &str) -> Result<&Value, String> {
        self.expected
            .as_ref()
            .and_then(|e| e.get(key))
            .ok_or_else(|| format!("missing expected.{key}"))
    }
}

/// Reads every vector of a file.
pub fn load(path: &str) -> Result<Vec<Vector>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let vectors = doc
        .get("vectors")
        .and_then(Value::as_array)
        .ok_or("no \"vectors\" array")?;
    vectors
        .iter()
        .map(|v| {
            let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
            Ok(Vector {
                name: s("name").ok_or("vector without a name")?,
                category: s("category").ok_or("vector without a category")?,
                fields: v.get("fields").cloned().unwrap_or(Value::Null),
                hex: s("hex").unwrap_or_default(),
                message_id: s("message_id"),
                canonical_hex: s("canonical_hex"),
                expected: v.get("expected").cloned(),
            })
        })
        .collect()
}

/// The §9 id of `hex`, where the vector gives one.
pub fn check_message_id(v: &Vector) -> Outcome {
    let Some(expected) = &v.message_id else {
        return Ok(());
    };
    let actual = MessageId::of(&v.bytes()?).to_string();
    if &actual == expected {
        Ok(())
    } else {
        Err(format!("message id {actual}, expected {expected}"))
    }
}

/// Compares two hex strings, naming both on mismatch.
pub fn same_hex(what: &str, actual: &[u8], expected_hex: &str) -> Outcome {
    let actual = hex::encode(actual);
    if actual == expected_hex {
        Ok(())
    } else {
        Err(format!("{what}: got {actual}, expected {expected_hex}"))
    }
}

/// Compares two values, naming both on mismatch.
pub fn same<T: PartialEq + std::fmt::Debug>(what: &str, actual: &T, expected: &T) -> Outcome {
    if actual == expected {
        Ok(())
    } else {
        Err(format!("{what}: got {actual:?}, expected {expected:?}"))
    }
}

/// Reads `{"$bytes": hex}`.
pub fn json_bytes(v: &Value) -> Result<Bytes, String> {
    teleportal_core::json::bytes_from_json(v).map_err(|e| e.to_string())
}
