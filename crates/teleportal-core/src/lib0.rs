//! lib0 primitives: the variable-length integers, strings and byte arrays every Teleportal and
//! y-protocols structure is built from.
//!
//! Reading goes through [`Reader`], a bounded cursor over [`Bytes`]: byte arrays come back as
//! slices of the input (no copy), every length is checked against what remains before anything
//! is reserved, and nothing can panic. Writing is a set of free functions over any [`BufMut`].
//!
//! yrs has lib0 readers too, but they borrow `&[u8]` (so payloads would be copied out of a
//! `Bytes` frame) and accept integers beyond 2^53 − 1 that JavaScript peers cannot represent;
//! this module is the exact subset the wire format needs.
//!
//! ```
//! use bytes::Bytes;
//! use teleportal_core::lib0::{Reader, write_var_uint};
//!
//! let mut buf = Vec::new();
//! write_var_uint(&mut buf, 300);
//! assert_eq!(buf, [0xac, 0x02]);
//! let mut reader = Reader::new(Bytes::from(buf));
//! assert_eq!(reader.read_var_uint("example")?, 300);
//! # Ok::<(), teleportal_core::DecodeError>(())
//! ```

use bytes::{Buf, BufMut, Bytes};

use crate::DecodeError;

/// The largest integer lib0 (and JavaScript) represents exactly: 2^53 − 1.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The longest varUint/varInt encoding accepted, in bytes.
///
/// lib0 writes at most 8 bytes for a safe integer but reads overlong forms (`80 00` is 0,
/// spec §1.2). Accepting them without bound would let a length prefix of endless `80` bytes
/// hold a stream reader waiting forever; no encoder pads this far.
pub const MAX_VAR_INT_BYTES: usize = 32;

/// A bounded cursor over encoded bytes.
///
/// Every read checks the remaining length first and returns [`DecodeError`] instead of
/// panicking. Byte-array reads are zero-copy: they return slices sharing the input's memory.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
}

impl Reader {
    /// Starts reading at the front of `buf`.
    pub fn new(buf: Bytes) -> Self {
        Self { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Whether everything has been read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Reads one byte.
    pub fn read_u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        if self.buf.is_empty() {
            return Err(DecodeError::UnexpectedEnd { field });
        }
        Ok(self.buf.get_u8())
    }

    /// Reads one byte if there is one (lib0's `readUint8` past the end gives `undefined`).
    pub fn read_optional_u8(&mut self) -> Option<u8> {
        (!self.buf.is_empty()).then(|| self.buf.get_u8())
    }

    /// Reads exactly `len` bytes as a slice of the input.
    pub fn read_bytes(&mut self, len: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        if len > self.buf.len() {
            return Err(DecodeError::LengthExceedsInput {
                field,
                declared: len as u64,
                available: self.buf.len(),
            });
        }
        Ok(self.buf.split_to(len))
    }

    /// Reads everything that is left.
    pub fn read_rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    /// Reads an unsigned LEB128 integer, rejecting values above [`MAX_SAFE_INTEGER`].
    ///
    /// Overlong encodings (`80 00`) are accepted, as lib0 accepts them.
    pub fn read_var_uint(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        let mut shift: u32 = 0;
        for _ in 0..MAX_VAR_INT_BYTES {
            let byte = self.read_u8(field)?;
            let bits = u64::from(byte & 0x7f);
            if bits != 0 {
                // `bits << shift` stays below 2^60 while shift < 53, so it cannot overflow.
                if shift >= 53 {
                    return Err(DecodeError::IntegerOverflow { field });
                }
                value |= bits << shift;
                if value > MAX_SAFE_INTEGER {
                    return Err(DecodeError::IntegerOverflow { field });
                }
            }
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift = shift.saturating_add(7);
        }
        Err(DecodeError::IntegerOverflow { field })
    }

    /// Reads a varUint that is used as a length or count of this platform's size.
    pub fn read_var_len(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        let value = self.read_var_uint(field)?;
        usize::try_from(value).map_err(|_| DecodeError::LengthExceedsInput {
            field,
            declared: value,
            available: self.buf.len(),
        })
    }

    /// Reads a lib0 signed varInt (sign bit in the first byte, not zigzag).
    pub fn read_var_int(&mut self, field: &'static str) -> Result<VarInt, DecodeError> {
        let first = self.read_u8(field)?;
        let negative = first & 0x40 != 0;
        let mut magnitude = u64::from(first & 0x3f);
        if first & 0x80 != 0 {
            let mut shift: u32 = 6;
            let mut read = 1;
            loop {
                if read == MAX_VAR_INT_BYTES {
                    return Err(DecodeError::IntegerOverflow { field });
                }
                read += 1;
                let byte = self.read_u8(field)?;
                let bits = u64::from(byte & 0x7f);
                if bits != 0 {
                    if shift >= 53 {
                        return Err(DecodeError::IntegerOverflow { field });
                    }
                    magnitude |= bits << shift;
                    if magnitude > MAX_SAFE_INTEGER {
                        return Err(DecodeError::IntegerOverflow { field });
                    }
                }
                if byte & 0x80 == 0 {
                    break;
                }
                shift = shift.saturating_add(7);
            }
        }
        Ok(VarInt {
            negative,
            magnitude,
        })
    }

    /// Reads a varUint length followed by that many bytes, as a slice of the input.
    pub fn read_var_bytes(&mut self, field: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.read_var_uint(field)?;
        if len > self.buf.len() as u64 {
            return Err(DecodeError::LengthExceedsInput {
                field,
                declared: len,
                available: self.buf.len(),
            });
        }
        // Checked just above: len fits in the remaining length, hence in usize.
        self.read_bytes(usize::try_from(len).unwrap_or(usize::MAX), field)
    }

    /// Reads a varUint byte length followed by that many bytes of UTF-8 (invalid UTF-8 is an
    /// error, as lib0's fatal decoder makes it).
    pub fn read_var_string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let bytes = self.read_var_bytes(field)?;
        match std::str::from_utf8(&bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(DecodeError::InvalidUtf8 { field }),
        }
    }

    /// Reads a big-endian IEEE-754 single.
    pub fn read_f32(&mut self, field: &'static str) -> Result<f32, DecodeError> {
        let b = self.read_array::<4>(field)?;
        Ok(f32::from_be_bytes(b))
    }

    /// Reads a big-endian IEEE-754 double.
    pub fn read_f64(&mut self, field: &'static str) -> Result<f64, DecodeError> {
        let b = self.read_array::<8>(field)?;
        Ok(f64::from_be_bytes(b))
    }

    /// Reads a big-endian two's-complement 64-bit integer (lib0 `bigint64`).
    pub fn read_i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        let b = self.read_array::<8>(field)?;
        Ok(i64::from_be_bytes(b))
    }

    /// Reads a little-endian u32 (used only by storage formats).
    pub fn read_u32_le(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let b = self.read_array::<4>(field)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Reads `N` bytes into an array.
    pub fn read_array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        if self.buf.len() < N {
            return Err(DecodeError::UnexpectedEnd { field });
        }
        let mut out = [0u8; N];
        self.buf.copy_to_slice(&mut out);
        Ok(out)
    }
}

/// A lib0 signed varInt as it is on the wire: a sign and a magnitude, so that −0 survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VarInt {
    /// The sign bit.
    pub negative: bool,
    /// The absolute value (at most 2^53 − 1).
    pub magnitude: u64,
}

impl VarInt {
    /// The value as a double (−0 stays −0).
    pub fn to_f64(self) -> f64 {
        // magnitude ≤ 2^53 − 1, so the conversion is exact.
        #[allow(clippy::cast_precision_loss)] // exact below 2^53, guaranteed by the reader
        let m = self.magnitude as f64;
        if self.negative { -m } else { m }
    }
}

/// Writes an unsigned LEB128 integer.
#[allow(clippy::cast_possible_truncation)] // keeping the low 7 bits is the encoding
pub fn write_var_uint(buf: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// Writes a lib0 signed varInt from a sign and a magnitude.
#[allow(clippy::cast_possible_truncation)] // keeping the low 6/7 bits is the encoding
pub fn write_var_int(buf: &mut impl BufMut, value: VarInt) {
    let mut magnitude = value.magnitude;
    let sign = if value.negative { 0x40 } else { 0 };
    let more = if magnitude > 0x3f { 0x80 } else { 0 };
    buf.put_u8(more | sign | (magnitude as u8 & 0x3f));
    magnitude >>= 6;
    while magnitude > 0 {
        let more = if magnitude > 0x7f { 0x80 } else { 0 };
        buf.put_u8(more | (magnitude as u8 & 0x7f));
        magnitude >>= 7;
    }
}

/// Writes a varUint length followed by the bytes.
pub fn write_var_bytes(buf: &mut impl BufMut, bytes: &[u8]) {
    write_var_uint(buf, bytes.len() as u64);
    buf.put_slice(bytes);
}

/// Writes a varUint byte length followed by the UTF-8 bytes.
pub fn write_var_string(buf: &mut impl BufMut, s: &str) {
    write_var_bytes(buf, s.as_bytes());
}

/// The encoded size of a varUint, for sizing buffers before writing.
pub fn var_uint_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var_uint(v: u64) -> Vec<u8> {
        let mut b = Vec::new();
        write_var_uint(&mut b, v);
        b
    }

    #[test]
    fn var_uint_matches_lib0_examples() {
        assert_eq!(var_uint(0), [0x00]);
        assert_eq!(var_uint(127), [0x7f]);
        assert_eq!(var_uint(128), [0x80, 0x01]);
        assert_eq!(var_uint(300), [0xac, 0x02]);
        assert_eq!(var_uint(3_000_000_000), [0x80, 0xbc, 0xc1, 0x96, 0x0b]);
    }

    #[test]
    fn var_uint_len_matches_written_length() {
        for v in [0, 1, 127, 128, 16383, 16384, MAX_SAFE_INTEGER, u64::MAX] {
            assert_eq!(var_uint_len(v), var_uint(v).len(), "{v}");
        }
    }

    #[test]
    fn var_uint_above_2_pow_53_is_rejected() {
        let mut r = Reader::new(Bytes::from(var_uint(MAX_SAFE_INTEGER + 1)));
        assert_eq!(
            r.read_var_uint("x"),
            Err(DecodeError::IntegerOverflow { field: "x" })
        );
        let mut r = Reader::new(Bytes::from(var_uint(MAX_SAFE_INTEGER)));
        assert_eq!(r.read_var_uint("x"), Ok(MAX_SAFE_INTEGER));
    }

    #[test]
    fn var_int_keeps_negative_zero() {
        let mut b = Vec::new();
        write_var_int(
            &mut b,
            VarInt {
                negative: true,
                magnitude: 0,
            },
        );
        assert_eq!(b, [0x40]);
        let v = Reader::new(Bytes::from(b)).read_var_int("x").unwrap();
        assert!(v.to_f64().is_sign_negative());
    }

    #[test]
    fn var_bytes_is_a_slice_of_the_input() {
        let input = Bytes::from_static(&[3, 1, 2, 3, 9]);
        let mut r = Reader::new(input.clone());
        let out = r.read_var_bytes("x").unwrap();
        assert_eq!(&out[..], &[1, 2, 3]);
        assert_eq!(out.as_ptr(), input[1..].as_ptr());
    }

    #[test]
    fn huge_declared_length_is_an_error_not_an_allocation() {
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f, 1]));
        assert!(matches!(
            r.read_var_bytes("x"),
            Err(DecodeError::LengthExceedsInput {
                declared: 4_294_967_295,
                ..
            })
        ));
    }

    #[test]
    fn overlong_var_ints_are_accepted_up_to_the_bound() {
        let mut padded = vec![0x80; MAX_VAR_INT_BYTES - 1];
        padded.push(0);
        assert_eq!(
            Reader::new(Bytes::from(padded.clone())).read_var_uint("x"),
            Ok(0)
        );
        assert!(Reader::new(Bytes::from(padded)).read_var_int("x").is_ok());
        let mut too_long = vec![0x80; MAX_VAR_INT_BYTES];
        too_long.push(0);
        assert_eq!(
            Reader::new(Bytes::from(too_long.clone())).read_var_uint("x"),
            Err(DecodeError::IntegerOverflow { field: "x" })
        );
        assert_eq!(
            Reader::new(Bytes::from(too_long)).read_var_int("x"),
            Err(DecodeError::IntegerOverflow { field: "x" })
        );
    }
}
