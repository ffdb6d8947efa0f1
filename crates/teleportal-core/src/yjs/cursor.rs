//! lib0's primitive reads and writes over byte slices, with the limits yjs applies.

use super::UpdateError;

/// The largest integer lib0 reads (`Number.MAX_SAFE_INTEGER`).
pub(crate) const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// How many bytes a var-int may span; lib0 accepts overlong forms, we accept them up to this.
const MAX_VAR_BYTES: u32 = 32;

/// A bounded read position in one byte slice; every read past the end is an error.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// A lib0 var-int: sign and magnitude, so that negative zero survives (the V2 run-length
/// columns use it as a flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VarInt {
    pub(crate) negative: bool,
    pub(crate) magnitude: u64,
}

impl VarInt {
    /// The value as a signed integer (negative zero becomes 0).
    pub(crate) fn value(self) -> i64 {
        // Magnitudes are at most 2^53, so this neither overflows nor loses bits.
        if self.negative {
            -(self.magnitude as i64)
        } else {
            self.magnitude as i64
        }
    }
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn read_u8(&mut self, field: &'static str) -> Result<u8, UpdateError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(UpdateError::UnexpectedEnd(field))?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn read_bytes(
        &mut self,
        len: u64,
        field: &'static str,
    ) -> Result<&'a [u8], UpdateError> {
        if len > self.remaining() as u64 {
            return Err(UpdateError::UnexpectedEnd(field));
        }
        let start = self.pos;
        self.pos += usize::try_from(len).expect("at most the remaining length");
        Ok(&self.buf[start..self.pos])
    }

    pub(crate) fn read_var_uint(&mut self, field: &'static str) -> Result<u64, UpdateError> {
        let mut value: u64 = 0;
        for i in 0..MAX_VAR_BYTES {
            let b = self.read_u8(field)?;
            let bits = u64::from(b & 0x7f);
            if bits != 0 {
                let shift = 7 * i;
                if shift >= 53 {
                    return Err(UpdateError::IntegerOutOfRange(field));
                }
                value += bits << shift;
                if value > MAX_SAFE_INTEGER {
                    return Err(UpdateError::IntegerOutOfRange(field));
                }
            }
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(UpdateError::IntegerOutOfRange(field))
    }

    pub(crate) fn read_var_int(&mut self, field: &'static str) -> Result<VarInt, UpdateError> {
        let first = self.read_u8(field)?;
        let negative = first & 0x40 != 0;
        let mut magnitude = u64::from(first & 0x3f);
        if first & 0x80 != 0 {
            let mut done = false;
            for i in 0..MAX_VAR_BYTES {
                let b = self.read_u8(field)?;
                let bits = u64::from(b & 0x7f);
                if bits != 0 {
                    let shift = 6 + 7 * i;
                    if shift >= 53 {
                        return Err(UpdateError::IntegerOutOfRange(field));
                    }
                    magnitude += bits << shift;
                    if magnitude > MAX_SAFE_INTEGER {
                        return Err(UpdateError::IntegerOutOfRange(field));
                    }
                }
                if b < 0x80 {
                    done = true;
                    break;
                }
            }
            if !done {
                return Err(UpdateError::IntegerOutOfRange(field));
            }
        }
        Ok(VarInt {
            negative,
            magnitude,
        })
    }

    pub(crate) fn read_var_bytes(&mut self, field: &'static str) -> Result<&'a [u8], UpdateError> {
        let len = self.read_var_uint(field)?;
        self.read_bytes(len, field)
    }

    /// A var-string, checked to be UTF-8 (lib0 decodes with a fatal `TextDecoder`).
    pub(crate) fn read_var_str(&mut self, field: &'static str) -> Result<&'a str, UpdateError> {
        let bytes = self.read_var_bytes(field)?;
        std::str::from_utf8(bytes).map_err(|_| UpdateError::InvalidUtf8(field))
    }

    /// Everything from here to the end, and the cursor is then at the end.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = &self.buf[self.pos..];
        self.pos = self.buf.len();
        rest
    }

    /// The bytes read since `start` (a value of [`Cursor::position`]).
    pub(crate) fn since(&self, start: usize) -> &'a [u8] {
        &self.buf[start..self.pos]
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }
}

pub(crate) fn write_var_uint(out: &mut Vec<u8>, mut value: u64) {
    while value > 0x7f {
        out.push(0x80 | (value & 0x7f) as u8);
        value >>= 7;
    }
    out.push(u8::try_from(value).expect("below 0x80"));
}

/// lib0's `writeVarInt`: the sign in bit 6 of the first byte (so negative zero exists).
pub(crate) fn write_var_int(out: &mut Vec<u8>, negative: bool, magnitude: u64) {
    let mut n = magnitude;
    out.push(if n > 0x3f { 0x80 } else { 0 } | if negative { 0x40 } else { 0 } | (n & 0x3f) as u8);
    n >>= 6;
    while n > 0 {
        out.push(if n > 0x7f { 0x80 } else { 0 } | (n & 0x7f) as u8);
        n >>= 7;
    }
}

/// A signed value as lib0 writes a JavaScript number (never negative zero).
pub(crate) fn write_var_i64(out: &mut Vec<u8>, value: i64) {
    write_var_int(out, value < 0, value.unsigned_abs());
}

pub(crate) fn write_var_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_var_uint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}
