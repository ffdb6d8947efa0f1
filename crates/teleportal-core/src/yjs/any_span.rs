//! lib0 `Any` values kept as the bytes they came in.
//!
//! A value that yjs's `writeAny(readAny(bytes))` would give back unchanged (everything yjs
//! itself writes) is kept as a slice of the input: [`read`] walks it without building it,
//! iteratively, with the nesting bounded by [`MAX_NESTING`]. Only a value in another form (a
//! duplicate or integer-like key, `__proto__`, an overlong var-int, a number under a wider tag
//! than it needs) is rebuilt with JavaScript's rules, so that our bytes are yjs's bytes.

use std::borrow::Cow;
use std::collections::HashSet;

use super::UpdateError;
use super::cursor::Cursor;
use super::value::{self, MAX_NESTING};

/// The next `Any` value in yjs's form: borrowed when it already is.
pub(crate) fn read<'a>(cur: &mut Cursor<'a>) -> Result<Cow<'a, [u8]>, UpdateError> {
    let start = cur.position();
    let mut probe = cur.clone();
    if scan(&mut probe)? {
        *cur = probe;
        return Ok(Cow::Borrowed(cur.since(start)));
    }
    let v = value::read_any(cur, 0)?;
    let mut out = Vec::new();
    value::write_any(&mut out, &v);
    Ok(Cow::Owned(out))
}

/// Skips one value; `Ok(true)` if yjs would write it back byte for byte.
pub(crate) fn scan<'a>(cur: &mut Cursor<'a>) -> Result<bool, UpdateError> {
    let mut canonical = true;
    // Values still to read in each open array or object (objects count key-value pairs and
    // remember their keys, to find a repeated one).
    let mut open: Vec<Frame<'a>> = Vec::new();
    loop {
        // Read a key if the innermost open container is an object.
        if let Some(frame) = open.last_mut() {
            if frame.left == 0 {
                open.pop();
                if open.is_empty() {
                    return Ok(canonical);
                }
                continue;
            }
            frame.left -= 1;
            if let Some(keys) = &mut frame.keys {
                let key = cur.read_var_str("any object key")?;
                if canonical
                    && (key == "__proto__" || value::is_array_index_utf8(key) || !keys.insert(key))
                {
                    canonical = false;
                }
            }
        }
        let tag = cur.read_u8("any tag")?;
        match tag {
            127 | 126 | 121 | 120 => {}
            125 => {
                let start = cur.position();
                let v = cur.read_var_int("any integer")?;
                canonical &= v.magnitude <= i32::MAX as u64 && minimal(cur.since(start));
            }
            124 => {
                let b = cur.read_bytes(4, "any float32")?;
                let f = f64::from(f32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                canonical &= !f.is_nan() && !small_integer(f);
            }
            123 => {
                let b = cur.read_bytes(8, "any float64")?;
                let bits = u64::from_be_bytes(b.try_into().expect("8 bytes"));
                let f = f64::from_bits(bits);
                #[allow(clippy::cast_possible_truncation)] // the point: is it exact as f32?
                let fits_f32 = !f.is_nan() && f64::from(f as f32) == f;
                canonical &= if f.is_nan() {
                    bits == value::NAN_BITS
                } else {
                    !small_integer(f) && !fits_f32
                };
            }
            122 => {
                cur.read_bytes(8, "any bigint")?;
            }
            119 | 116 => {
                let start = cur.position();
                let len = cur.read_var_uint("any length")?;
                canonical &= minimal(cur.since(start));
                let bytes = cur.read_bytes(len, "any string")?;
                if tag == 119 && std::str::from_utf8(bytes).is_err() {
                    return Err(UpdateError::InvalidUtf8("any string"));
                }
            }
            118 | 117 => {
                if open.len() >= MAX_NESTING {
                    return Err(UpdateError::TooDeep { max: MAX_NESTING });
                }
                let start = cur.position();
                let len = cur.read_var_uint("any length")?;
                canonical &= minimal(cur.since(start));
                let keys = (tag == 118).then(Keys::default);
                open.push(Frame { left: len, keys });
                continue;
            }
            other => return Err(UpdateError::UnknownAnyTag(other)),
        }
        if open.is_empty() {
            return Ok(canonical);
        }
    }
}

/// Whether `writeAny` would write this number as an integer.
fn small_integer(f: f64) -> bool {
    f.fract() == 0.0 && f.abs() <= f64::from(i32::MAX)
}

/// Whether a var-int or var-uint is in its shortest form: its last byte is not a redundant
/// zero.
fn minimal(bytes: &[u8]) -> bool {
    bytes.len() == 1 || bytes.last() != Some(&0)
}

struct Frame<'a> {
    left: u64,
    keys: Option<Keys<'a>>,
}

/// An object's keys so far: a list while it is short, a set beyond.
#[derive(Default)]
struct Keys<'a> {
    few: Vec<&'a str>,
    many: Option<HashSet<&'a str>>,
}

impl<'a> Keys<'a> {
    /// Adds `key`; false if it was there already.
    fn insert(&mut self, key: &'a str) -> bool {
        if let Some(many) = &mut self.many {
            return many.insert(key);
        }
        if self.few.contains(&key) {
            return false;
        }
        self.few.push(key);
        if self.few.len() > 16 {
            self.many = Some(self.few.drain(..).collect());
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(bytes: &[u8]) -> Vec<u8> {
        let mut cur = Cursor::new(bytes);
        let out = read(&mut cur).unwrap().into_owned();
        assert!(cur.is_empty());
        out
    }

    #[test]
    fn values_yjs_writes_are_kept_as_they_are() {
        for bytes in [
            &[125, 5][..],
            &[119, 2, b'h', b'i'],
            &[118, 2, 1, b'b', 125, 1, 1, b'a', 117, 2, 126, 127],
            &[124, 0x3f, 0, 0, 0], // 0.5
            &[125, 0x40],          // -0
        ] {
            assert_eq!(canonical(bytes), bytes);
        }
    }

    #[test]
    fn other_forms_are_rewritten_as_yjs_would() {
        // An overlong var-int, an integral float64, a duplicate key.
        assert_eq!(canonical(&[125, 0x85, 0]), [125, 5]);
        assert_eq!(canonical(&[123, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]), [125, 1]);
        assert_eq!(
            canonical(&[118, 2, 1, b'a', 125, 1, 1, b'a', 125, 2]),
            [118, 1, 1, b'a', 125, 2]
        );
    }

    #[test]
    fn deep_values_are_refused_without_recursion() {
        let mut deep = [117u8, 1].repeat(100_000);
        deep.push(126);
        assert!(matches!(
            read(&mut Cursor::new(&deep)),
            Err(UpdateError::TooDeep { max: 512 })
        ));
        let mut ok = [118u8, 1, 1, b'k'].repeat(MAX_NESTING);
        ok.push(126);
        assert_eq!(canonical(&ok), ok);
    }

    #[test]
    fn truncated_and_unknown_values_are_errors() {
        for bytes in [
            &[][..],
            &[119, 5, b'a'],
            &[117, 3, 126],
            &[0],
            &[119, 1, 0xff],
        ] {
            assert!(read(&mut Cursor::new(bytes)).is_err(), "{bytes:?}");
        }
    }
}
