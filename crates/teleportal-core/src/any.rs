//! lib0 `Any`: the self-describing value that carries RPC payloads, presence data and
//! attribution values.

use bytes::{BufMut, Bytes};

use crate::DecodeError;
use crate::lib0::{
    Reader, VarInt, write_var_bytes, write_var_int, write_var_string, write_var_uint,
};

/// How deep arrays and objects may nest before decoding gives up (keeps the stack bounded on
/// hostile input; real payloads nest a handful of levels).
pub const MAX_ANY_DEPTH: usize = 64;

/// A lib0 `Any` value.
///
/// Numbers are doubles, as in JavaScript; encoding picks the tag exactly as lib0 does (integer
/// varInt up to 2^31 − 1, else float32 when exact, else float64), so bytes and message ids match
/// the reference. Objects keep their key order, which is part of the encoding.
///
/// ```
/// use teleportal_core::Any;
///
/// let value = Any::object([("milestoneId", Any::from("m1"))]);
/// let bytes = value.to_bytes();
/// assert_eq!(Any::decode(bytes.clone())?, value);
/// assert_eq!(value.get("milestoneId").and_then(Any::as_str), Some("m1"));
/// # Ok::<(), teleportal_core::DecodeError>(())
/// ```
#[derive(Debug, Clone)]
pub enum Any {
    /// JavaScript `undefined` (tag 127). As an object value it means "absent" but is still
    /// written, as the reference does.
    Undefined,
    /// `null` (tag 126).
    Null,
    /// A number (tags 125, 124 or 123 on the wire).
    Number(f64),
    /// A JavaScript bigint (tag 122, 8 bytes big-endian).
    BigInt(i64),
    /// A boolean (tags 121 and 120).
    Bool(bool),
    /// A string (tag 119).
    String(String),
    /// An object with its keys in wire order (tag 118).
    Object(Vec<(String, Any)>),
    /// An array (tag 117).
    Array(Vec<Any>),
    /// Bytes (tag 116), a slice of the decoded input.
    Bytes(Bytes),
}

impl PartialEq for Any {
    /// Structural equality where numbers compare by bits (so −0 ≠ 0, as on the wire) and all
    /// NaNs are equal.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Any::Undefined, Any::Undefined) | (Any::Null, Any::Null) => true,
            (Any::Number(a), Any::Number(b)) => {
                (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
            }
            (Any::BigInt(a), Any::BigInt(b)) => a == b,
            (Any::Bool(a), Any::Bool(b)) => a == b,
            (Any::String(a), Any::String(b)) => a == b,
            (Any::Object(a), Any::Object(b)) => a == b,
            (Any::Array(a), Any::Array(b)) => a == b,
            (Any::Bytes(a), Any::Bytes(b)) => a == b,
            _ => false,
        }
    }
}

impl Any {
    /// Builds an object from key-value pairs, keeping their order.
    pub fn object<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Any)>) -> Any {
        Any::Object(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The value of `key` if this is an object that has it (an `undefined` value counts as
    /// absent, as in the reference).
    pub fn get(&self, key: &str) -> Option<&Any> {
        match self {
            Any::Object(pairs) => pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .filter(|v| !matches!(v, Any::Undefined)),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Any::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Any::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The number as an unsigned integer, if it is a non-negative integer up to 2^53 − 1.
    pub fn as_u64(&self) -> Option<u64> {
        let n = self.as_f64()?;
        if n >= 0.0 && n.fract() == 0.0 && n <= crate::lib0::MAX_SAFE_INTEGER as f64 {
            // Checked: a non-negative integer below 2^53, so the cast is exact.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some(n as u64)
        } else {
            None
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Any::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The bytes, if this is a byte array.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Any::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Any]> {
        match self {
            Any::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The key-value pairs, if this is an object.
    pub fn as_object(&self) -> Option<&[(String, Any)]> {
        match self {
            Any::Object(o) => Some(o),
            _ => None,
        }
    }

    /// Decodes exactly one value from the front of `bytes` (trailing bytes are ignored, as
    /// lib0 ignores them).
    pub fn decode(bytes: Bytes) -> Result<Any, DecodeError> {
        Any::read(&mut Reader::new(bytes))
    }

    /// Reads one value from `reader`.
    pub fn read(reader: &mut Reader) -> Result<Any, DecodeError> {
        read_any(reader, 0)
    }

    /// Appends the encoding to `buf`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        match self {
            Any::Undefined => buf.put_u8(127),
            Any::Null => buf.put_u8(126),
            Any::Number(n) => write_number(buf, *n),
            Any::BigInt(i) => {
                buf.put_u8(122);
                buf.put_i64(*i);
            }
            Any::Bool(false) => buf.put_u8(121),
            Any::Bool(true) => buf.put_u8(120),
            Any::String(s) => {
                buf.put_u8(119);
                write_var_string(buf, s);
            }
            Any::Object(pairs) => {
                buf.put_u8(118);
                write_var_uint(buf, pairs.len() as u64);
                for (k, v) in pairs {
                    write_var_string(buf, k);
                    v.encode(buf);
                }
            }
            Any::Array(items) => {
                buf.put_u8(117);
                write_var_uint(buf, items.len() as u64);
                for v in items {
                    v.encode(buf);
                }
            }
            Any::Bytes(b) => {
                buf.put_u8(116);
                write_var_bytes(buf, b);
            }
        }
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = Vec::new();
        self.encode(&mut buf);
        Bytes::from(buf)
    }
}

/// lib0's choice of numeric tag, mirrored exactly for byte equality.
// The f32 casts are exact: each is guarded by a round-trip check.
#[allow(clippy::cast_possible_truncation)]
fn write_number(buf: &mut impl BufMut, n: f64) {
    const BITS31: f64 = 2_147_483_647.0;
    if n.is_finite() && n.fract() == 0.0 && n.abs() <= BITS31 {
        buf.put_u8(125);
        // Checked: an integer of magnitude below 2^31.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let magnitude = n.abs() as u64;
        write_var_int(
            buf,
            VarInt {
                negative: n.is_sign_negative(),
                magnitude,
            },
        );
    } else if f64::from(n as f32) == n {
        buf.put_u8(124);
        buf.put_f32(n as f32);
    } else {
        buf.put_u8(123);
        buf.put_f64(n);
    }
}

fn read_any(r: &mut Reader, depth: usize) -> Result<Any, DecodeError> {
    const FIELD: &str = "lib0 Any";
    let tag = r.read_u8(FIELD)?;
    Ok(match tag {
        127 => Any::Undefined,
        126 => Any::Null,
        125 => Any::Number(r.read_var_int(FIELD)?.to_f64()),
        124 => Any::Number(f64::from(r.read_f32(FIELD)?)),
        123 => Any::Number(r.read_f64(FIELD)?),
        122 => Any::BigInt(r.read_i64(FIELD)?),
        121 => Any::Bool(false),
        120 => Any::Bool(true),
        119 => Any::String(r.read_var_string(FIELD)?),
        118 | 117 if depth >= MAX_ANY_DEPTH => {
            return Err(DecodeError::NestingTooDeep { max: MAX_ANY_DEPTH });
        }
        118 => {
            let len = r.read_var_uint(FIELD)?;
            // No reservation from the declared count: each entry must really be there.
            let mut pairs = Vec::new();
            for _ in 0..len {
                let key = r.read_var_string(FIELD)?;
                let value = read_any(r, depth + 1)?;
                pairs.push((key, value));
            }
            Any::Object(pairs)
        }
        117 => {
            let len = r.read_var_uint(FIELD)?;
            let mut items = Vec::new();
            for _ in 0..len {
                items.push(read_any(r, depth + 1)?);
            }
            Any::Array(items)
        }
        116 => Any::Bytes(r.read_var_bytes(FIELD)?),
        tag => return Err(DecodeError::UnknownAnyTag { tag }),
    })
}

impl From<&str> for Any {
    fn from(s: &str) -> Self {
        Any::String(s.to_owned())
    }
}

impl From<String> for Any {
    fn from(s: String) -> Self {
        Any::String(s)
    }
}

impl From<f64> for Any {
    fn from(n: f64) -> Self {
        Any::Number(n)
    }
}

impl From<bool> for Any {
    fn from(b: bool) -> Self {
        Any::Bool(b)
    }
}

impl From<Bytes> for Any {
    fn from(b: Bytes) -> Self {
        Any::Bytes(b)
    }
}

impl From<Vec<Any>> for Any {
    fn from(items: Vec<Any>) -> Self {
        Any::Array(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_of(v: &Any) -> String {
        v.to_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn numbers_pick_the_lib0_tag() {
        assert_eq!(hex_of(&Any::Number(-0.0)), "7d40");
        assert_eq!(hex_of(&Any::Number(2_147_483_648.0)), "7c4f000000");
        assert_eq!(
            hex_of(&Any::Number(1_700_000_000_000.0)),
            "7b4278bcfe56800000"
        );
        assert_eq!(hex_of(&Any::Number(5.0)), "7d05");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let bytes = Bytes::from([117u8, 1].repeat(10_000));
        assert_eq!(
            Any::decode(bytes),
            Err(DecodeError::NestingTooDeep { max: MAX_ANY_DEPTH })
        );
    }

    #[test]
    fn huge_declared_count_fails_at_end_of_input() {
        let bytes = Bytes::from_static(&[117, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(matches!(
            Any::decode(bytes),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
    }
}
