//! JavaScript values as yjs sees them when it decodes and encodes again: lib0 `Any` (read with
//! `readAny`, written with `writeAny`) and JSON (`JSON.parse`, `JSON.stringify`).
//!
//! yjs does not keep these bytes: it builds JavaScript objects and writes them out again, so
//! duplicate keys collapse, integer-like keys move to the front, numbers take the smallest tag
//! that holds them. To give yjs's bytes we rebuild values with the same rules. Only the rare
//! value that is not already in yjs's own form comes here (see [`super::any_span`]).

use super::UpdateError;
use super::cursor::{Cursor, write_var_bytes, write_var_int, write_var_uint};

/// How deeply arrays and objects may nest inside one value. yjs decodes values recursively
/// and a JavaScript client overflows its stack a few thousand levels down, which loads the
/// document empty; we refuse anything deeper than this, which no editor produces.
pub const MAX_NESTING: usize = 512;

/// A JavaScript string: UTF-16 code units, because JSON escapes can hold lone surrogates.
pub(crate) type JsString = Vec<u16>;

/// A JavaScript value that lib0 `Any` or JSON can express.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JsValue {
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    BigInt(i64),
    String(JsString),
    Bytes(Vec<u8>),
    Array(Vec<JsValue>),
    /// Own enumerable properties in `Object.keys` order.
    Object(Vec<(JsString, JsValue)>),
}

/// How a property is set on a fresh object: `obj[key] = v` (lib0's `readAny`; `__proto__`
/// then sets the prototype and is no own property) or `CreateDataProperty` (`JSON.parse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Define {
    Assign,
    DataProperty,
}

/// Builds an object's key order as JavaScript does: array-index keys first, ascending, then
/// the other keys in the order they were first set; setting a key again replaces its value
/// in place.
struct ObjectBuilder {
    entries: Vec<(JsString, JsValue)>,
    index: std::collections::HashMap<JsString, usize>,
}

impl ObjectBuilder {
    fn new() -> Self {
        ObjectBuilder {
            entries: Vec::new(),
            index: std::collections::HashMap::new(),
        }
    }

    fn set(&mut self, key: JsString, value: JsValue, how: Define) {
        if how == Define::Assign && key == PROTO {
            return;
        }
        match self.index.get(&key) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }

    fn finish(self) -> Vec<(JsString, JsValue)> {
        let mut entries = self.entries;
        if entries.iter().any(|(k, _)| array_index(k).is_some()) {
            // A stable sort keeps the other keys in insertion order behind the indices.
            entries.sort_by_key(|(k, _)| array_index(k).map_or(u64::MAX, u64::from));
        }
        entries
    }
}

const PROTO: &[u16] = &[
    b'_' as u16,
    b'_' as u16,
    b'p' as u16,
    b'r' as u16,
    b'o' as u16,
    b't' as u16,
    b'o' as u16,
    b'_' as u16,
    b'_' as u16,
];

/// The array index a property key names (`"0"` to `"4294967294"` written canonically).
pub(crate) fn array_index(key: &[u16]) -> Option<u32> {
    if key.is_empty() || key.len() > 10 || (key.len() > 1 && key[0] == u16::from(b'0')) {
        return None;
    }
    let mut n: u64 = 0;
    for &c in key {
        if !(u16::from(b'0')..=u16::from(b'9')).contains(&c) {
            return None;
        }
        n = n * 10 + u64::from(c - u16::from(b'0'));
    }
    u32::try_from(n).ok().filter(|n| *n < u32::MAX)
}

/// The same test on a UTF-8 key, without converting it.
pub(crate) fn is_array_index_utf8(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && b.len() <= 10
        && b.iter().all(u8::is_ascii_digit)
        && (b.len() == 1 || b[0] != b'0')
        && key.parse::<u64>().is_ok_and(|n| n < u64::from(u32::MAX))
}

pub(crate) fn js_string(s: &str) -> JsString {
    s.encode_utf16().collect()
}

/// A JavaScript string as UTF-8, as `TextEncoder` writes it: lone surrogates become U+FFFD.
pub(crate) fn utf8_lossy(s: &[u16]) -> String {
    char::decode_utf16(s.iter().copied())
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// lib0 Any

/// One `Any` value as `readAny` builds it. `depth` counts the arrays and objects around it.
pub(crate) fn read_any(cur: &mut Cursor<'_>, depth: usize) -> Result<JsValue, UpdateError> {
    let tag = cur.read_u8("any tag")?;
    Ok(match tag {
        127 => JsValue::Undefined,
        126 => JsValue::Null,
        125 => {
            let v = cur.read_var_int("any integer")?;
            let m = v.magnitude as f64;
            JsValue::Number(if v.negative { -m } else { m })
        }
        124 => {
            let b = cur.read_bytes(4, "any float32")?;
            JsValue::Number(f64::from(f32::from_be_bytes([b[0], b[1], b[2], b[3]])))
        }
        123 => {
            let b = cur.read_bytes(8, "any float64")?;
            JsValue::Number(f64::from_be_bytes(b.try_into().expect("8 bytes")))
        }
        122 => {
            let b = cur.read_bytes(8, "any bigint")?;
            JsValue::BigInt(i64::from_be_bytes(b.try_into().expect("8 bytes")))
        }
        121 => JsValue::Bool(false),
        120 => JsValue::Bool(true),
        119 => JsValue::String(js_string(cur.read_var_str("any string")?)),
        118 | 117 => {
            if depth >= MAX_NESTING {
                return Err(UpdateError::TooDeep { max: MAX_NESTING });
            }
            let len = cur.read_var_uint("any length")?;
            if tag == 118 {
                let mut obj = ObjectBuilder::new();
                for _ in 0..len {
                    let key = js_string(cur.read_var_str("any object key")?);
                    let value = read_any(cur, depth + 1)?;
                    obj.set(key, value, Define::Assign);
                }
                JsValue::Object(obj.finish())
            } else {
                // Each element takes at least a byte: never reserve more than the input holds.
                let mut items = Vec::with_capacity(
                    usize::try_from(len)
                        .unwrap_or(usize::MAX)
                        .min(cur.remaining()),
                );
                for _ in 0..len {
                    items.push(read_any(cur, depth + 1)?);
                }
                JsValue::Array(items)
            }
        }
        116 => JsValue::Bytes(cur.read_var_bytes("any bytes")?.to_vec()),
        other => return Err(UpdateError::UnknownAnyTag(other)),
    })
}

/// `writeAny`.
pub(crate) fn write_any(out: &mut Vec<u8>, value: &JsValue) {
    match value {
        JsValue::Undefined => out.push(127),
        JsValue::Null => out.push(126),
        JsValue::Number(n) => write_any_number(out, *n),
        JsValue::BigInt(n) => {
            out.push(122);
            out.extend_from_slice(&n.to_be_bytes());
        }
        JsValue::Bool(b) => out.push(if *b { 120 } else { 121 }),
        JsValue::String(s) => {
            out.push(119);
            write_var_bytes(out, utf8_lossy(s).as_bytes());
        }
        JsValue::Bytes(b) => {
            out.push(116);
            write_var_bytes(out, b);
        }
        JsValue::Array(items) => {
            out.push(117);
            write_var_uint(out, items.len() as u64);
            for item in items {
                write_any(out, item);
            }
        }
        JsValue::Object(entries) => {
            out.push(118);
            write_var_uint(out, entries.len() as u64);
            for (k, v) in entries {
                write_var_bytes(out, utf8_lossy(k).as_bytes());
                write_any(out, v);
            }
        }
    }
}

/// The canonical quiet NaN JavaScript engines write.
pub(crate) const NAN_BITS: u64 = 0x7ff8_0000_0000_0000;

/// A number as `writeAny` tags it: an integer var-int up to 2^31 − 1, else float32 if that is
/// exact, else float64.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // each cast is checked exact first
pub(crate) fn write_any_number(out: &mut Vec<u8>, n: f64) {
    if n.fract() == 0.0 && n.abs() <= f64::from(i32::MAX) {
        out.push(125);
        write_var_int(out, n.is_sign_negative(), n.abs() as u64);
    } else if !n.is_nan() && f64::from(n as f32) == n {
        out.push(124);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(123);
        let bits = if n.is_nan() { NAN_BITS } else { n.to_bits() };
        out.extend_from_slice(&bits.to_be_bytes());
    }
}

// ---------------------------------------------------------------------------------------------
// JSON

/// `JSON.parse`, strict as JavaScript's: nesting deeper than [`MAX_NESTING`] is an error.
pub(crate) fn json_parse(text: &str) -> Result<JsValue, UpdateError> {
    let mut p = JsonParser {
        s: text.as_bytes(),
        pos: 0,
    };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(UpdateError::InvalidJson);
    }
    Ok(v)
}

struct JsonParser<'s> {
    s: &'s [u8],
    pos: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.s.get(self.pos) == Some(&b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &[u8], v: JsValue) -> Result<JsValue, UpdateError> {
        if self.s[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(UpdateError::InvalidJson)
        }
    }

    fn value(&mut self, depth: usize) -> Result<JsValue, UpdateError> {
        match self.s.get(self.pos).copied() {
            Some(b'n') => self.literal(b"null", JsValue::Null),
            Some(b't') => self.literal(b"true", JsValue::Bool(true)),
            Some(b'f') => self.literal(b"false", JsValue::Bool(false)),
            Some(b'"') => Ok(JsValue::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(open @ (b'[' | b'{')) => {
                if depth >= MAX_NESTING {
                    return Err(UpdateError::TooDeep { max: MAX_NESTING });
                }
                self.pos += 1;
                self.ws();
                if open == b'[' {
                    let mut items = Vec::new();
                    if !self.eat(b']') {
                        loop {
                            self.ws();
                            items.push(self.value(depth + 1)?);
                            self.ws();
                            if self.eat(b']') {
                                break;
                            }
                            if !self.eat(b',') {
                                return Err(UpdateError::InvalidJson);
                            }
                        }
                    }
                    Ok(JsValue::Array(items))
                } else {
                    let mut obj = ObjectBuilder::new();
                    if !self.eat(b'}') {
                        loop {
                            self.ws();
                            if self.s.get(self.pos) != Some(&b'"') {
                                return Err(UpdateError::InvalidJson);
                            }
                            let key = self.string()?;
                            self.ws();
                            if !self.eat(b':') {
                                return Err(UpdateError::InvalidJson);
                            }
                            self.ws();
                            let v = self.value(depth + 1)?;
                            obj.set(key, v, Define::DataProperty);
                            self.ws();
                            if self.eat(b'}') {
                                break;
                            }
                            if !self.eat(b',') {
                                return Err(UpdateError::InvalidJson);
                            }
                        }
                    }
                    Ok(JsValue::Object(obj.finish()))
                }
            }
            _ => Err(UpdateError::InvalidJson),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.s.get(self.pos), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<JsValue, UpdateError> {
        let start = self.pos;
        self.eat(b'-');
        if self.eat(b'0') {
            if matches!(self.s.get(self.pos), Some(b'0'..=b'9')) {
                return Err(UpdateError::InvalidJson);
            }
        } else if self.digits() == 0 {
            return Err(UpdateError::InvalidJson);
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err(UpdateError::InvalidJson);
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return Err(UpdateError::InvalidJson);
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.pos]).expect("ASCII");
        // Rust's parse rounds correctly, as JavaScript does, and overflows to infinity.
        text.parse::<f64>()
            .map(JsValue::Number)
            .map_err(|_| UpdateError::InvalidJson)
    }

    fn hex4(&mut self) -> Result<u16, UpdateError> {
        let h = self
            .s
            .get(self.pos..self.pos + 4)
            .ok_or(UpdateError::InvalidJson)?;
        let h = std::str::from_utf8(h).map_err(|_| UpdateError::InvalidJson)?;
        if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(UpdateError::InvalidJson);
        }
        self.pos += 4;
        u16::from_str_radix(h, 16).map_err(|_| UpdateError::InvalidJson)
    }

    fn string(&mut self) -> Result<JsString, UpdateError> {
        self.pos += 1; // the opening quote
        let mut out = JsString::new();
        loop {
            let start = self.pos;
            while let Some(&b) = self.s.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // The input is a &str and we stop only at ASCII bytes: a character boundary.
            let run = std::str::from_utf8(&self.s[start..self.pos]).expect("boundary");
            out.extend(run.encode_utf16());
            match self.s.get(self.pos).copied() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let e = *self.s.get(self.pos).ok_or(UpdateError::InvalidJson)?;
                    self.pos += 1;
                    out.push(match e {
                        b'"' => 0x22,
                        b'\\' => 0x5c,
                        b'/' => 0x2f,
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => 0x0a,
                        b'r' => 0x0d,
                        b't' => 0x09,
                        b'u' => self.hex4()?,
                        _ => return Err(UpdateError::InvalidJson),
                    });
                }
                _ => return Err(UpdateError::InvalidJson),
            }
        }
    }
}

/// `JSON.stringify(value)`; `None` where JavaScript returns `undefined` (for `undefined`
/// itself). A bigint is an error, as in JavaScript.
pub(crate) fn json_stringify(value: &JsValue) -> Result<Option<String>, UpdateError> {
    if matches!(value, JsValue::Undefined) {
        return Ok(None);
    }
    let mut out = String::new();
    stringify_into(&mut out, value)?;
    Ok(Some(out))
}

fn stringify_into(out: &mut String, value: &JsValue) -> Result<(), UpdateError> {
    match value {
        JsValue::Undefined => out.push_str("null"), // only reached inside arrays
        JsValue::Null => out.push_str("null"),
        JsValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        JsValue::Number(n) => {
            if n.is_finite() {
                out.push_str(&js_number_to_string(*n));
            } else {
                out.push_str("null");
            }
        }
        JsValue::BigInt(_) => return Err(UpdateError::NotJson("a bigint")),
        JsValue::String(s) => quote(out, s),
        JsValue::Bytes(b) => {
            // A Uint8Array stringifies as an object of its indices.
            out.push('{');
            for (i, byte) in b.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&format!("\"{i}\":{byte}"));
            }
            out.push('}');
        }
        JsValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                stringify_into(out, item)?;
            }
            out.push(']');
        }
        JsValue::Object(entries) => {
            out.push('{');
            let mut first = true;
            for (k, v) in entries {
                if matches!(v, JsValue::Undefined) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                quote(out, k);
                out.push(':');
                stringify_into(out, v)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// A JSON string literal as `JSON.stringify` writes it (lone surrogates escaped).
fn quote(out: &mut String, s: &[u16]) {
    out.push('"');
    for c in char::decode_utf16(s.iter().copied()) {
        match c {
            Ok('"') => out.push_str("\\\""),
            Ok('\\') => out.push_str("\\\\"),
            Ok('\u{8}') => out.push_str("\\b"),
            Ok('\u{c}') => out.push_str("\\f"),
            Ok('\n') => out.push_str("\\n"),
            Ok('\r') => out.push_str("\\r"),
            Ok('\t') => out.push_str("\\t"),
            Ok(c) if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            Ok(c) => out.push(c),
            Err(e) => out.push_str(&format!("\\u{:04x}", e.unpaired_surrogate())),
        }
    }
    out.push('"');
}

/// JavaScript's `Number.prototype.toString()` for a finite number.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // digit counts and exponents are small
pub(crate) fn js_number_to_string(n: f64) -> String {
    if n == 0.0 {
        return "0".into();
    }
    // `{:e}` gives the shortest digits that round-trip, as JavaScript picks them.
    let sci = format!("{:e}", n.abs());
    let (mantissa, exp) = sci.split_once('e').expect("exponent form");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exp: i64 = exp.parse().expect("exponent");
    let k = digits.len() as i64;
    let point = exp + 1; // the decimal point sits after `point` digits
    let mut out = String::new();
    if n < 0.0 {
        out.push('-');
    }
    if k <= point && point <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (point - k) as usize));
    } else if 0 < point && point <= 21 {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    } else if -6 < point && point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if point > 0 { '+' } else { '-' });
        out.push_str(&(point - 1).abs().to_string());
    }
    out
}

/// JavaScript truthiness.
pub(crate) fn truthy(v: &JsValue) -> bool {
    match v {
        JsValue::Undefined | JsValue::Null => false,
        JsValue::Bool(b) => *b,
        JsValue::Number(n) => *n != 0.0 && !n.is_nan(),
        JsValue::BigInt(n) => *n != 0,
        JsValue::String(s) => !s.is_empty(),
        JsValue::Bytes(_) | JsValue::Array(_) | JsValue::Object(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(text: &str) -> String {
        json_stringify(&json_parse(text).unwrap()).unwrap().unwrap()
    }

    #[test]
    fn numbers_print_as_javascript_prints_them() {
        for (n, s) in [
            (1.0, "1"),
            (-0.0, "0"),
            (0.1, "0.1"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1.5e-7, "1.5e-7"),
            (0.000001, "0.000001"),
            (123.456, "123.456"),
            (-2.5e300, "-2.5e+300"),
            (5e-324, "5e-324"),
        ] {
            assert_eq!(js_number_to_string(n), s, "{n}");
        }
    }

    #[test]
    fn json_round_trips_as_javascript_does() {
        assert_eq!(
            roundtrip(r#" {"b": 1, "a": [1.0, 2e2, "x\u0041"], "b": 3} "#),
            r#"{"b":3,"a":[1,200,"xA"]}"#
        );
        assert_eq!(
            roundtrip(r#"{"z":1,"10":2,"2":3,"__proto__":4}"#),
            r#"{"2":3,"10":2,"z":1,"__proto__":4}"#
        );
        assert_eq!(roundtrip(r#""\ud800\n\u0001""#), r#""\ud800\n\u0001""#);
        for bad in [
            "",
            "01",
            "1.",
            "[1,]",
            "{\"a\" 1}",
            "nul",
            "\"\t\"",
            "1 2",
            "-",
        ] {
            assert!(json_parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn any_objects_take_javascript_key_order() {
        // {"b": 1, "1": 2, "b": 3, "__proto__": 4}
        let mut bytes = vec![118, 4];
        for (k, v) in [("b", 1u8), ("1", 2), ("b", 3), ("__proto__", 4)] {
            write_var_bytes(&mut bytes, k.as_bytes());
            bytes.extend([125, v]);
        }
        let v = read_any(&mut Cursor::new(&bytes), 0).unwrap();
        let mut out = Vec::new();
        write_any(&mut out, &v);
        let mut want = vec![118, 2];
        for (k, v) in [("1", 2u8), ("b", 3)] {
            write_var_bytes(&mut want, k.as_bytes());
            want.extend([125, v]);
        }
        assert_eq!(out, want);
    }

    #[test]
    fn numbers_take_the_smallest_exact_tag() {
        let enc = |n: f64| {
            let mut out = Vec::new();
            write_any_number(&mut out, n);
            out
        };
        assert_eq!(enc(1.0), [125, 1]);
        assert_eq!(enc(-0.0), [125, 0x40]);
        assert_eq!(enc(2147483648.0)[0], 124);
        assert_eq!(enc(0.1)[0], 123);
        assert_eq!(enc(0.5)[0], 124);
        assert_eq!(enc(f64::NAN), [123, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "[".repeat(MAX_NESTING + 1) + &"]".repeat(MAX_NESTING + 1);
        assert!(matches!(
            json_parse(&deep),
            Err(UpdateError::TooDeep { .. })
        ));
        let ok = "[".repeat(MAX_NESTING) + &"]".repeat(MAX_NESTING);
        assert!(json_parse(&ok).is_ok());
    }
}
