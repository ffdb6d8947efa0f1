//! The run-length columns of the Yjs V2 update format (lib0's `RleEncoder`,
//! `UintOptRleEncoder`, `IntDiffOptRleEncoder` and `StringEncoder`, and their decoders).

use std::borrow::Cow;

use super::UpdateError;
use super::cursor::{Cursor, write_var_bytes, write_var_i64, write_var_int, write_var_uint};
use super::utf16;

/// Bytes, each followed by how many more times it repeats; the last run has no count and
/// repeats for ever (`RleDecoder` with `readUint8`).
#[derive(Debug)]
pub(crate) struct RleU8Decoder<'a> {
    cur: Cursor<'a>,
    value: u8,
    /// Reads left in the current run; `None` once the last run repeats for ever.
    left: Option<u64>,
}

impl<'a> RleU8Decoder<'a> {
    pub(crate) fn new(column: &'a [u8]) -> Self {
        RleU8Decoder {
            cur: Cursor::new(column),
            value: 0,
            left: Some(0),
        }
    }

    pub(crate) fn read(&mut self, field: &'static str) -> Result<u8, UpdateError> {
        if self.left == Some(0) {
            self.value = self.cur.read_u8(field)?;
            self.left = if self.cur.is_empty() {
                None
            } else {
                Some(self.cur.read_var_uint(field)? + 1)
            };
        }
        if let Some(left) = &mut self.left {
            *left -= 1;
        }
        Ok(self.value)
    }
}

/// Unsigned values; a run is a negative var-int (negative zero for a run of zeros) and a
/// count.
#[derive(Debug)]
pub(crate) struct UintOptRleDecoder<'a> {
    cur: Cursor<'a>,
    value: u64,
    left: u64,
}

impl<'a> UintOptRleDecoder<'a> {
    pub(crate) fn new(cur: Cursor<'a>) -> Self {
        UintOptRleDecoder {
            cur,
            value: 0,
            left: 0,
        }
    }

    pub(crate) fn read(&mut self, field: &'static str) -> Result<u64, UpdateError> {
        if self.left == 0 {
            let v = self.cur.read_var_int(field)?;
            self.value = v.magnitude;
            self.left = if v.negative {
                self.cur.read_var_uint(field)? + 2
            } else {
                1
            };
        }
        self.left -= 1;
        Ok(self.value)
    }
}

/// Integers as runs of equal differences: var-int `diff * 2 + has_count`, then the count.
#[derive(Debug)]
pub(crate) struct IntDiffOptRleDecoder<'a> {
    cur: Cursor<'a>,
    value: i64,
    diff: i64,
    left: u64,
}

impl<'a> IntDiffOptRleDecoder<'a> {
    pub(crate) fn new(column: &'a [u8]) -> Self {
        IntDiffOptRleDecoder {
            cur: Cursor::new(column),
            value: 0,
            diff: 0,
            left: 0,
        }
    }

    pub(crate) fn read(&mut self, field: &'static str) -> Result<i64, UpdateError> {
        if self.left == 0 {
            let encoded = self.cur.read_var_int(field)?.value();
            self.diff = encoded.div_euclid(2);
            self.left = if encoded.rem_euclid(2) == 1 {
                self.cur.read_var_uint(field)? + 2
            } else {
                1
            };
        }
        self.value = self
            .value
            .checked_add(self.diff)
            .ok_or(UpdateError::IntegerOutOfRange(field))?;
        self.left -= 1;
        Ok(self.value)
    }

    /// The next value as a clock or another non-negative number.
    pub(crate) fn read_u64(&mut self, field: &'static str) -> Result<u64, UpdateError> {
        u64::try_from(self.read(field)?).map_err(|_| UpdateError::IntegerOutOfRange(field))
    }
}

/// All strings of an update as one UTF-8 string, cut by lengths in UTF-16 code units (a
/// JavaScript string's `length`).
#[derive(Debug)]
pub(crate) struct StringDecoder<'a> {
    all: &'a str,
    pos: usize,
    lens: UintOptRleDecoder<'a>,
    /// The last string ended between the halves of a surrogate pair: the next one starts with
    /// the low half, which JavaScript turns into U+FFFD when it encodes it.
    low_half_next: bool,
}

impl<'a> StringDecoder<'a> {
    pub(crate) fn new(column: &'a [u8]) -> Result<Self, UpdateError> {
        let mut cur = Cursor::new(column);
        let all = cur.read_var_str("string column")?;
        Ok(StringDecoder {
            all,
            pos: 0,
            lens: UintOptRleDecoder::new(cur),
            low_half_next: false,
        })
    }

    pub(crate) fn read(&mut self) -> Result<Cow<'a, str>, UpdateError> {
        let mut units = self.lens.read("string length")?;
        let starts_with_low_half = units > 0 && self.low_half_next;
        if starts_with_low_half {
            units -= 1;
            self.low_half_next = false;
            self.pos += 4; // the four-byte character whose halves were split
        }
        let rest = &self.all[self.pos..];
        let cut = utf16::cut(rest, units).ok_or(UpdateError::UnexpectedEnd("string column"))?;
        let body = &rest[..cut.byte_len];
        self.pos += cut.byte_len;
        if cut.splits_pair {
            self.low_half_next = true;
        }
        if !starts_with_low_half && !cut.splits_pair {
            return Ok(Cow::Borrowed(body));
        }
        let mut owned = String::with_capacity(body.len() + 6);
        if starts_with_low_half {
            owned.push(char::REPLACEMENT_CHARACTER);
        }
        owned.push_str(body);
        if cut.splits_pair {
            owned.push(char::REPLACEMENT_CHARACTER);
        }
        Ok(Cow::Owned(owned))
    }
}

/// Writes bytes as [`RleU8Decoder`] reads them (the last run's count is never written).
#[derive(Debug, Default)]
pub(crate) struct RleU8Encoder {
    out: Vec<u8>,
    value: Option<u8>,
    count: u64,
}

impl RleU8Encoder {
    pub(crate) fn write(&mut self, v: u8) {
        if self.value == Some(v) {
            self.count += 1;
        } else {
            if self.count > 0 {
                write_var_uint(&mut self.out, self.count - 1);
            }
            self.count = 1;
            self.out.push(v);
            self.value = Some(v);
        }
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.out
    }
}

#[derive(Debug, Default)]
pub(crate) struct UintOptRleEncoder {
    out: Vec<u8>,
    value: u64,
    count: u64,
}

impl UintOptRleEncoder {
    pub(crate) fn write(&mut self, v: u64) {
        if self.value == v {
            self.count += 1;
        } else {
            self.flush();
            self.count = 1;
            self.value = v;
        }
    }

    fn flush(&mut self) {
        if self.count > 0 {
            write_var_int(&mut self.out, self.count > 1, self.value);
            if self.count > 1 {
                write_var_uint(&mut self.out, self.count - 2);
            }
        }
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.flush();
        self.out
    }
}

#[derive(Debug, Default)]
pub(crate) struct IntDiffOptRleEncoder {
    out: Vec<u8>,
    value: i64,
    diff: i64,
    count: u64,
}

impl IntDiffOptRleEncoder {
    pub(crate) fn write(&mut self, v: u64) {
        // Values are clocks (at most 2^53), so neither this nor the difference overflows.
        let v = v as i64;
        if self.diff == v - self.value {
            self.value = v;
            self.count += 1;
        } else {
            self.flush();
            self.count = 1;
            self.diff = v - self.value;
            self.value = v;
        }
    }

    fn flush(&mut self) {
        if self.count > 0 {
            let encoded = self.diff * 2 + i64::from(self.count > 1);
            write_var_i64(&mut self.out, encoded);
            if self.count > 1 {
                write_var_uint(&mut self.out, self.count - 2);
            }
        }
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.flush();
        self.out
    }
}

#[derive(Debug, Default)]
pub(crate) struct StringEncoder {
    all: Vec<u8>,
    lens: UintOptRleEncoder,
}

impl StringEncoder {
    pub(crate) fn write(&mut self, s: &str) {
        self.all.extend_from_slice(s.as_bytes());
        self.lens.write(utf16::len(s));
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.all.len() + 8);
        write_var_bytes(&mut out, &self.all);
        out.extend_from_slice(&self.lens.finish());
        out
    }
}
