//! The sidecar plaintext (spec §5.3, sidecar version 0): the content an end-to-end encrypted
//! client strips out of its Yjs update, before it is sealed as one AES-GCM blob.
//!
//! ```text
//! varUint 0 | varUint n | n × (varString token, varString name)
//! | varUint groups | groups × (varUint clientId, varUint count,
//!     varUint8Array clocks (IntDiffOptRle), varUint8Array contentRefs (UintOptRle),
//!     varUint8Array itemLengths (UintOptRle), varUint8Array dataLengths (UintOptRle),
//!     varUint totalDataLength, data)
//! ```
//!
//! A group holds consecutive entries of one client; the encoder forms groups from runs of equal
//! client ids in entry order. A server never parses sidecars; only an E2EE client does.
//!
//! The run-length codecs are lib0's [`UintOptRleEncoder`] and [`IntDiffOptRleEncoder`] (§1.7),
//! with their decoders; they are public because they are plain lib0 building blocks.

use bytes::{BufMut, Bytes};

use crate::DecodeError;
use crate::lib0::{
    Reader, VarInt, write_var_bytes, write_var_int, write_var_string, write_var_uint,
};

/// The only sidecar plaintext version.
pub const SIDECAR_VERSION: u64 = 0;

/// How many entries without data one sidecar plaintext may hold.
///
/// The reference encoder gives every entry at least one data byte, but its decoder accepts
/// entries without any, so [`SidecarPlaintext::decode`] does too. An entry with data is paid
/// for by its bytes in the input; entries without data cost nothing there (a run-length stream
/// of a few bytes can declare 2^53 of them), so their number is capped instead. The cap counts
/// decoded entries, not input bytes, so a sidecar that decodes also decodes from its own
/// (possibly shorter) re-encoding.
pub const MAX_EMPTY_SIDECAR_ENTRIES: u64 = 4096;

/// A decrypted sidecar: the tokenised names and the stripped content of each item.
///
/// ```
/// use bytes::Bytes;
/// use teleportal_core::sidecar::{SidecarEntry, SidecarPlaintext};
///
/// let sidecar = SidecarPlaintext {
///     dictionary: vec![("9465d36b47f88ab601f4b05dace31a5c".into(), "meta".into())],
///     entries: vec![SidecarEntry {
///         client_id: 20,
///         clock: 0,
///         content_ref: 4, // a Yjs ContentString
///         item_length: 3,
///         data: Bytes::from_static(b"\x03def"),
///     }],
/// };
/// assert_eq!(SidecarPlaintext::decode(sidecar.to_bytes())?, sidecar);
/// assert_eq!(&SidecarPlaintext::default().to_bytes()[..], &[0, 0, 0]);
/// # Ok::<(), teleportal_core::DecodeError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SidecarPlaintext {
    /// `(token, original name)` pairs: root type names, map keys and format keys the
    /// structure update carries only as tokens.
    pub dictionary: Vec<(String, String)>,
    /// The stripped content, one entry per item.
    pub entries: Vec<SidecarEntry>,
}

/// The original content of one Yjs item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarEntry {
    /// The Yjs client id of the item.
    pub client_id: u64,
    /// The item's first clock.
    pub clock: u64,
    /// The Yjs content ref number (2..=9 in practice: JSON, Binary, String, Embed, Format,
    /// Type, Any, Doc).
    pub content_ref: u8,
    /// The clock span of the item.
    pub item_length: u64,
    /// The lib0 encoding of the original content (a slice of the decoded input).
    pub data: Bytes,
}

impl SidecarPlaintext {
    /// Decodes a sidecar plaintext; entry data are slices of `bytes`.
    ///
    /// Like the reference, this ignores bytes after the last group, bytes left in a run-length
    /// stream and data bytes beyond the entries' lengths, and accepts entries without data;
    /// re-encoding gives the canonical form. A group may not declare more entries than bytes
    /// remain in the input plus the entries without data still allowed
    /// ([`MAX_EMPTY_SIDECAR_ENTRIES`]), which bounds what hostile input can allocate.
    ///
    /// # Errors
    /// A version other than 0, a malformed or missing field, a run-length stream that ends
    /// before the group's entries do, entry data lengths that add up to more than the group's
    /// data, more than [`MAX_EMPTY_SIDECAR_ENTRIES`] entries without data, or a clock or
    /// content ref out of range.
    pub fn decode(bytes: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.read_var_uint("sidecar version")?;
        if version != SIDECAR_VERSION {
            return Err(DecodeError::UnsupportedStructureVersion {
                structure: "sidecar",
                version,
            });
        }
        let mut dictionary = Vec::new();
        for _ in 0..r.read_var_uint("sidecar dictionary length")? {
            let token = r.read_var_string("sidecar dictionary token")?;
            let name = r.read_var_string("sidecar dictionary name")?;
            dictionary.push((token, name));
        }
        let mut entries = Vec::new();
        let mut empty_allowed = MAX_EMPTY_SIDECAR_ENTRIES;
        for _ in 0..r.read_var_uint("sidecar group count")? {
            read_group(&mut r, &mut entries, &mut empty_allowed)?;
        }
        Ok(Self {
            dictionary,
            entries,
        })
    }

    /// Appends the encoding to `buf`, grouping runs of entries with equal client ids.
    ///
    /// Clocks are written as doubled differences in lib0 integers, so clocks of 2^52 and
    /// above do not survive a round trip (lib0 cannot read them either; no Yjs document
    /// reaches them).
    pub fn encode(&self, buf: &mut impl BufMut) {
        write_var_uint(buf, SIDECAR_VERSION);
        write_var_uint(buf, self.dictionary.len() as u64);
        for (token, name) in &self.dictionary {
            write_var_string(buf, token);
            write_var_string(buf, name);
        }
        let groups = || self.entries.chunk_by(|a, b| a.client_id == b.client_id);
        write_var_uint(buf, groups().count() as u64);
        for group in groups() {
            write_group(buf, group);
        }
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = Vec::new();
        self.encode(&mut buf);
        Bytes::from(buf)
    }
}

/// Reads one group; `empty_allowed` is how many more entries without data the sidecar may
/// hold.
fn read_group(
    r: &mut Reader,
    entries: &mut Vec<SidecarEntry>,
    empty_allowed: &mut u64,
) -> Result<(), DecodeError> {
    let client_id = r.read_var_uint("sidecar client id")?;
    let count = r.read_var_uint("sidecar entry count")?;
    // Each entry with data takes at least one of the remaining bytes (in any encoding of the
    // same entries, the canonical one included); the others are counted against the cap.
    if count > (r.remaining() as u64).saturating_add(*empty_allowed) {
        return Err(DecodeError::LengthExceedsInput {
            field: "sidecar entry count",
            declared: count,
            available: r.remaining(),
        });
    }
    let mut clocks =
        IntDiffOptRleDecoder::new(r.read_var_bytes("sidecar clocks")?, "sidecar clock");
    let mut refs = UintOptRleDecoder::new(
        r.read_var_bytes("sidecar content refs")?,
        "sidecar content ref",
    );
    let mut item_lengths = UintOptRleDecoder::new(
        r.read_var_bytes("sidecar item lengths")?,
        "sidecar item length",
    );
    let mut data_lengths = UintOptRleDecoder::new(
        r.read_var_bytes("sidecar data lengths")?,
        "sidecar data length",
    );
    let mut data = Reader::new(r.read_var_bytes("sidecar data")?);
    for _ in 0..count {
        let clock = u64::try_from(clocks.read()?).map_err(|_| DecodeError::OutOfRange {
            field: "sidecar clock",
        })?;
        let content_ref = u8::try_from(refs.read()?).map_err(|_| DecodeError::OutOfRange {
            field: "sidecar content ref",
        })?;
        let item_length = item_lengths.read()?;
        let data_length = data_lengths.read()?;
        // An entry without data is valid (the reference decodes it), but is not paid for by
        // input bytes: it counts against the cap, which is what keeps a run of zero data
        // lengths from declaring 2^53 entries.
        if data_length == 0 {
            *empty_allowed = empty_allowed
                .checked_sub(1)
                .ok_or(DecodeError::OutOfRange {
                    field: "sidecar count of entries without data",
                })?;
        }
        let data_length =
            usize::try_from(data_length).map_err(|_| DecodeError::LengthExceedsInput {
                field: "sidecar entry data",
                declared: data_length,
                available: data.remaining(),
            })?;
        entries.push(SidecarEntry {
            client_id,
            clock,
            content_ref,
            item_length,
            data: data.read_bytes(data_length, "sidecar entry data")?,
        });
    }
    Ok(())
}

fn write_group(buf: &mut impl BufMut, group: &[SidecarEntry]) {
    let Some(first) = group.first() else { return };
    write_var_uint(buf, first.client_id);
    write_var_uint(buf, group.len() as u64);
    let mut clocks = IntDiffOptRleEncoder::new();
    let mut refs = UintOptRleEncoder::new();
    let mut item_lengths = UintOptRleEncoder::new();
    let mut data_lengths = UintOptRleEncoder::new();
    for e in group {
        // Clocks above i64::MAX are far outside lib0's range; they cannot round-trip anyway.
        clocks.write(i64::try_from(e.clock).unwrap_or(i64::MAX));
        refs.write(u64::from(e.content_ref));
        item_lengths.write(e.item_length);
        data_lengths.write(e.data.len() as u64);
    }
    write_var_bytes(buf, &clocks.finish());
    write_var_bytes(buf, &refs.finish());
    write_var_bytes(buf, &item_lengths.finish());
    write_var_bytes(buf, &data_lengths.finish());
    let total = group
        .iter()
        .fold(0u64, |sum, e| sum.saturating_add(e.data.len() as u64));
    write_var_uint(buf, total);
    for e in group {
        buf.put_slice(&e.data);
    }
}

/// lib0's `UintOptRleEncoder`: runs of equal unsigned values.
///
/// A run of one is `varInt(v)`; a longer run is `varInt(−v)` (so a run of zeros starts with
/// the negative zero `40`) followed by `varUint(count − 2)`.
///
/// ```
/// use bytes::Bytes;
/// use teleportal_core::sidecar::{UintOptRleDecoder, UintOptRleEncoder};
///
/// let mut enc = UintOptRleEncoder::new();
/// for v in [0, 0, 0, 5] {
///     enc.write(v);
/// }
/// let bytes = enc.finish();
/// assert_eq!(bytes, [0x40, 0x01, 0x05]);
/// let mut dec = UintOptRleDecoder::new(Bytes::from(bytes), "example");
/// let read: Vec<u64> = (0..4).map(|_| dec.read()).collect::<Result<_, _>>()?;
/// assert_eq!(read, [0, 0, 0, 5]);
/// # Ok::<(), teleportal_core::DecodeError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct UintOptRleEncoder {
    buf: Vec<u8>,
    value: u64,
    count: u64,
}

impl UintOptRleEncoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one value.
    pub fn write(&mut self, value: u64) {
        // lib0 starts with s = 0, count = 0, so a leading 0 joins the empty run; that gives
        // the same bytes as starting a new run.
        if self.value == value {
            self.count = self.count.saturating_add(1);
        } else {
            self.flush();
            self.value = value;
            self.count = 1;
        }
    }

    fn flush(&mut self) {
        if self.count == 0 {
            return;
        }
        write_var_int(
            &mut self.buf,
            VarInt {
                negative: self.count > 1,
                magnitude: self.value,
            },
        );
        if self.count > 1 {
            write_var_uint(&mut self.buf, self.count - 2);
        }
    }

    /// The encoded stream.
    pub fn finish(mut self) -> Vec<u8> {
        self.flush();
        self.buf
    }
}

/// Reads what [`UintOptRleEncoder`] writes, one value at a time.
///
/// Reading past the end of the stream is an error (lib0 would return 0 there).
#[derive(Debug, Clone)]
pub struct UintOptRleDecoder {
    reader: Reader,
    field: &'static str,
    value: u64,
    remaining: u64,
}

impl UintOptRleDecoder {
    /// Decodes `bytes`; `field` names the stream in errors.
    pub fn new(bytes: Bytes, field: &'static str) -> Self {
        Self {
            reader: Reader::new(bytes),
            field,
            value: 0,
            remaining: 0,
        }
    }

    /// The next value.
    ///
    /// # Errors
    /// The stream ended, or holds an integer above 2^53 − 1.
    pub fn read(&mut self) -> Result<u64, DecodeError> {
        if self.remaining == 0 {
            let v = self.reader.read_var_int(self.field)?;
            self.value = v.magnitude;
            // The sign (negative zero included) says a count follows.
            self.remaining = if v.negative {
                // ≤ 2^53 − 1 + 2: cannot overflow.
                self.reader.read_var_uint(self.field)? + 2
            } else {
                1
            };
        }
        self.remaining -= 1;
        Ok(self.value)
    }
}

/// lib0's `IntDiffOptRleEncoder`: runs of equal differences between consecutive values.
///
/// Each run is `varInt(diff · 2 + (count > 1))`, then `varUint(count − 2)` when the run is
/// longer than one. The first difference is taken from 0.
///
/// ```
/// use bytes::Bytes;
/// use teleportal_core::sidecar::{IntDiffOptRleDecoder, IntDiffOptRleEncoder};
///
/// let mut enc = IntDiffOptRleEncoder::new();
/// for v in [0, 3] {
///     enc.write(v);
/// }
/// let bytes = enc.finish();
/// assert_eq!(bytes, [0x00, 0x06]);
/// let mut dec = IntDiffOptRleDecoder::new(Bytes::from(bytes), "example");
/// assert_eq!((dec.read()?, dec.read()?), (0, 3));
/// # Ok::<(), teleportal_core::DecodeError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct IntDiffOptRleEncoder {
    buf: Vec<u8>,
    // Wider than the values so that differences of any two i64 cannot overflow.
    value: i128,
    diff: i128,
    count: u64,
}

impl IntDiffOptRleEncoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one value.
    ///
    /// Values whose encoded differences exceed 2^53 − 1 in magnitude are outside lib0's range:
    /// they are written, but no lib0 decoder (this crate's included) reads them back.
    pub fn write(&mut self, value: i64) {
        let value = i128::from(value);
        let diff = value - self.value;
        if self.diff == diff {
            self.count = self.count.saturating_add(1);
        } else {
            self.flush();
            self.diff = diff;
            self.count = 1;
        }
        self.value = value;
    }

    fn flush(&mut self) {
        if self.count == 0 {
            return;
        }
        let encoded = self.diff * 2 + i128::from(self.count > 1);
        write_var_int(
            &mut self.buf,
            VarInt {
                negative: encoded < 0,
                // |diff| < 2^65, so this only saturates far outside lib0's range.
                magnitude: u64::try_from(encoded.unsigned_abs()).unwrap_or(u64::MAX),
            },
        );
        if self.count > 1 {
            write_var_uint(&mut self.buf, self.count - 2);
        }
    }

    /// The encoded stream.
    pub fn finish(mut self) -> Vec<u8> {
        self.flush();
        self.buf
    }
}

/// Reads what [`IntDiffOptRleEncoder`] writes, one value at a time.
///
/// Reading past the end of the stream is an error (lib0 would return a stale value there).
#[derive(Debug, Clone)]
pub struct IntDiffOptRleDecoder {
    reader: Reader,
    field: &'static str,
    value: i64,
    diff: i64,
    remaining: u64,
}

impl IntDiffOptRleDecoder {
    /// Decodes `bytes`; `field` names the stream in errors.
    pub fn new(bytes: Bytes, field: &'static str) -> Self {
        Self {
            reader: Reader::new(bytes),
            field,
            value: 0,
            diff: 0,
            remaining: 0,
        }
    }

    /// The next value.
    ///
    /// # Errors
    /// The stream ended, holds an integer above 2^53 − 1, or the running value leaves the
    /// range of `i64`.
    pub fn read(&mut self) -> Result<i64, DecodeError> {
        let field = self.field;
        if self.remaining == 0 {
            let v = self.reader.read_var_int(field)?;
            let magnitude =
                i64::try_from(v.magnitude).map_err(|_| DecodeError::IntegerOverflow { field })?;
            let encoded = if v.negative { -magnitude } else { magnitude };
            // lib0: `hasCount = v & 1` (two's complement, so −3 has it), `diff = floor(v / 2)`,
            // which an arithmetic shift computes for negative values too.
            self.diff = encoded >> 1;
            self.remaining = if encoded & 1 != 0 {
                // ≤ 2^53 − 1 + 2: cannot overflow.
                self.reader.read_var_uint(field)? + 2
            } else {
                1
            };
        }
        self.value = self
            .value
            .checked_add(self.diff)
            .ok_or(DecodeError::IntegerOverflow { field })?;
        self.remaining -= 1;
        Ok(self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `sidecar_plaintext_mixed` from the shared vectors.
    const MIXED: &str = "0003203934363564333662343766383861623630316634623035646163653331613563046d657461203330646236343434656537616632313065643236643933323539333732323635056f776e657220366336326536656333623765373939316164373238633531366664303639373807636f6e74656e740214020200060204080203010204060a03646566017703626f620a01010201040102010303026263";

    fn mixed() -> Bytes {
        Bytes::from(hex::decode(MIXED).unwrap())
    }

    // Hand-built vectors, encoded by the reference's `encodeSidecar` (teleportal
    // `content-cipher.ts`, over lib0 0.2) and decoded back by its `decodeSidecar` to the
    // entries the tests below expect.

    /// Client 3 types "xyz" one character at a time: consecutive clocks (`00 02 00`: a first
    /// difference of 0, then a run of two differences of 1), and runs in the content ref
    /// (`44 01`: 4 three times), item length and data length columns; then one entry of client
    /// 8 without data.
    const RUNS_BESIDE_EMPTY: &str =
        "0000020303030003000244010241010242010601780179017a0801010a01070101010000";

    /// Four one-character strings of client 5 at clocks 10..=13 (clocks `14 03 01`), two entries
    /// of client 9 without data (data lengths `40 00`: a run of zeros, led by negative zero),
    /// then client 5 again in a group of its own, with a tokenised root name.
    const RUNS: &str = "000120366336326536656333623765373939316164373238633531366664303639373807636f6e74656e74030504031403010244020241020242020801610162016301640902020002024700024100024000000501011c0104010301040403656667";

    fn entry_fields(sidecar: &SidecarPlaintext) -> Vec<(u64, u64, u8, u64, &[u8])> {
        sidecar
            .entries
            .iter()
            .map(|e| {
                let data: &[u8] = &e.data;
                (e.client_id, e.clock, e.content_ref, e.item_length, data)
            })
            .collect()
    }

    #[test]
    fn runs_beside_an_entry_without_data_round_trip_byte_exact() {
        let bytes = Bytes::from(hex::decode(RUNS_BESIDE_EMPTY).unwrap());
        let decoded = SidecarPlaintext::decode(bytes.clone()).unwrap();
        assert_eq!(
            entry_fields(&decoded),
            [
                (3, 0, 4, 1, &b"\x01x"[..]),
                (3, 1, 4, 1, b"\x01y"),
                (3, 2, 4, 1, b"\x01z"),
                (8, 5, 7, 1, b""),
            ]
        );
        assert_eq!(decoded.to_bytes(), bytes);
    }

    #[test]
    fn runs_in_every_column_round_trip_byte_exact() {
        let bytes = Bytes::from(hex::decode(RUNS).unwrap());
        let decoded = SidecarPlaintext::decode(bytes.clone()).unwrap();
        assert_eq!(
            decoded.dictionary,
            [(
                "6c62e6ec3b7e7991ad728c516fd06978".to_owned(),
                "content".to_owned()
            )]
        );
        assert_eq!(
            entry_fields(&decoded),
            [
                (5, 10, 4, 1, &b"\x01a"[..]),
                (5, 11, 4, 1, b"\x01b"),
                (5, 12, 4, 1, b"\x01c"),
                (5, 13, 4, 1, b"\x01d"),
                (9, 0, 7, 1, b""),
                (9, 1, 7, 1, b""),
                (5, 14, 4, 3, b"\x03efg"),
            ]
        );
        assert_eq!(decoded.to_bytes(), bytes);
    }

    /// One group of client 7 with `n` entries without data, all in runs.
    fn empty_entries(n: u64) -> Bytes {
        SidecarPlaintext {
            dictionary: vec![],
            entries: (0..n)
                .map(|clock| SidecarEntry {
                    client_id: 7,
                    clock,
                    content_ref: 7,
                    item_length: 1,
                    data: Bytes::new(),
                })
                .collect(),
        }
        .to_bytes()
    }

    #[test]
    fn entries_without_data_are_capped() {
        let at_cap = empty_entries(MAX_EMPTY_SIDECAR_ENTRIES);
        assert!(at_cap.len() < 32, "runs keep it small: {at_cap:?}");
        let decoded = SidecarPlaintext::decode(at_cap.clone()).unwrap();
        assert_eq!(decoded.entries.len() as u64, MAX_EMPTY_SIDECAR_ENTRIES);
        assert_eq!(decoded.to_bytes(), at_cap);
        assert!(SidecarPlaintext::decode(empty_entries(MAX_EMPTY_SIDECAR_ENTRIES + 1)).is_err());
    }

    fn uint_rle(values: &[u64]) -> Vec<u8> {
        let mut enc = UintOptRleEncoder::new();
        values.iter().for_each(|v| enc.write(*v));
        enc.finish()
    }

    fn int_diff_rle(values: &[i64]) -> Vec<u8> {
        let mut enc = IntDiffOptRleEncoder::new();
        values.iter().for_each(|v| enc.write(*v));
        enc.finish()
    }

    #[test]
    fn mixed_vector_round_trips_byte_exact() {
        let decoded = SidecarPlaintext::decode(mixed()).unwrap();
        assert_eq!(decoded.dictionary.len(), 3);
        assert_eq!(decoded.dictionary[0].1, "meta");
        let ids: Vec<_> = decoded
            .entries
            .iter()
            .map(|e| (e.client_id, e.clock, e.content_ref, e.item_length))
            .collect();
        assert_eq!(ids, [(20, 0, 4, 3), (20, 3, 8, 1), (10, 1, 4, 2)]);
        assert_eq!(&decoded.entries[2].data[..], b"\x02bc");
        assert_eq!(decoded.to_bytes(), mixed());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = mixed();
        for len in 0..bytes.len() {
            assert!(
                SidecarPlaintext::decode(bytes.slice(..len)).is_err(),
                "prefix of {len} bytes decoded"
            );
        }
    }

    #[test]
    fn entry_data_are_slices_of_the_input() {
        let input = mixed();
        let decoded = SidecarPlaintext::decode(input.clone()).unwrap();
        let range = input.as_ptr_range();
        assert!(
            decoded
                .entries
                .iter()
                .all(|e| range.contains(&e.data.as_ptr()))
        );
    }

    #[test]
    fn other_versions_are_rejected() {
        assert_eq!(
            SidecarPlaintext::decode(Bytes::from_static(&[1, 0, 0])),
            Err(DecodeError::UnsupportedStructureVersion {
                structure: "sidecar",
                version: 1
            })
        );
    }

    #[test]
    fn huge_entry_count_is_rejected_before_decoding_entries() {
        // One group of client 7 declaring 2^53 − 1 entries, all in runs of zeros.
        let mut bytes = vec![0, 0, 1, 7];
        write_var_uint(&mut bytes, crate::lib0::MAX_SAFE_INTEGER);
        for _ in 0..4 {
            bytes.extend_from_slice(&[0x08, 0xc0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        }
        bytes.push(0);
        assert!(matches!(
            SidecarPlaintext::decode(Bytes::from(bytes)),
            Err(DecodeError::LengthExceedsInput {
                field: "sidecar entry count",
                ..
            })
        ));
    }

    #[test]
    fn rle_stream_shorter_than_the_group_is_an_error() {
        // Two entries, every stream holding two values but the clocks only one.
        let sidecar = |clocks: &[u8]| {
            let mut bytes = vec![0, 0, 1, 7, 2];
            write_var_bytes(&mut bytes, clocks);
            bytes.extend_from_slice(&[2, 0x44, 0, 2, 0x41, 0, 2, 0x41, 0, 2, 1, 1]);
            SidecarPlaintext::decode(Bytes::from(bytes))
        };
        assert_eq!(sidecar(&[0x01, 0x00]).map(|s| s.entries.len()), Ok(2));
        assert!(sidecar(&[0x00]).is_err());
    }

    #[test]
    fn uint_rle_matches_lib0() {
        assert_eq!(uint_rle(&[]), [] as [u8; 0]);
        assert_eq!(uint_rle(&[4, 8]), [0x04, 0x08]);
        assert_eq!(uint_rle(&[0]), [0x00]);
        assert_eq!(uint_rle(&[0, 0]), [0x40, 0x00]);
        assert_eq!(uint_rle(&[7, 7, 7, 1]), [0x47, 0x01, 0x01]);
    }

    #[test]
    fn int_diff_rle_matches_lib0() {
        assert_eq!(int_diff_rle(&[0, 3]), [0x00, 0x06]);
        assert_eq!(int_diff_rle(&[1]), [0x02]);
        // 0, 1, 2, 3: first diff 0, then a run of three diffs of 1.
        assert_eq!(int_diff_rle(&[0, 1, 2, 3]), [0x00, 0x03, 0x01]);
        // A single step down: diff −1 → −2.
        assert_eq!(int_diff_rle(&[5, 4]), [0x0a, 0x42]);
        // Two steps down: diff −1 with a count → −1.
        assert_eq!(int_diff_rle(&[5, 4, 3]), [0x0a, 0x41, 0x00]);
    }

    fn read_all_uint(bytes: Vec<u8>, n: usize) -> Result<Vec<u64>, DecodeError> {
        let mut dec = UintOptRleDecoder::new(Bytes::from(bytes), "test");
        (0..n).map(|_| dec.read()).collect()
    }

    fn read_all_int(bytes: Vec<u8>, n: usize) -> Result<Vec<i64>, DecodeError> {
        let mut dec = IntDiffOptRleDecoder::new(Bytes::from(bytes), "test");
        (0..n).map(|_| dec.read()).collect()
    }

    #[test]
    fn reading_past_the_stream_is_an_error() {
        assert!(read_all_uint(uint_rle(&[1, 1]), 3).is_err());
        assert!(read_all_int(int_diff_rle(&[1, 2]), 3).is_err());
    }

    fn entry() -> impl Strategy<Value = SidecarEntry> {
        (
            0u64..4,
            0u64..1 << 51,
            2u8..10,
            0u64..1000,
            proptest::collection::vec(any::<u8>(), 0..8),
        )
            .prop_map(
                |(client_id, clock, content_ref, item_length, data)| SidecarEntry {
                    client_id,
                    clock,
                    content_ref,
                    item_length,
                    data: Bytes::from(data),
                },
            )
    }

    proptest! {
        #[test]
        fn uint_rle_round_trips(values in proptest::collection::vec(0u64..4, 0..50)) {
            prop_assert_eq!(read_all_uint(uint_rle(&values), values.len())?, values);
        }

        #[test]
        fn int_diff_rle_round_trips(
            values in proptest::collection::vec(-(1i64 << 40)..1 << 40, 0..50),
        ) {
            prop_assert_eq!(read_all_int(int_diff_rle(&values), values.len())?, values);
        }

        #[test]
        fn sidecar_round_trips(
            dictionary in proptest::collection::vec(("[a-f0-9]{0,4}", ".{0,4}"), 0..3),
            entries in proptest::collection::vec(entry(), 0..12),
        ) {
            let sidecar = SidecarPlaintext { dictionary, entries };
            prop_assert_eq!(SidecarPlaintext::decode(sidecar.to_bytes())?, sidecar);
        }

        #[test]
        fn any_bytes_decode_or_fail(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = SidecarPlaintext::decode(Bytes::from(bytes));
        }
    }
}
