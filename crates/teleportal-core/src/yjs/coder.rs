//! The two update encodings' field readers and writers (yjs's `UpdateDecoderV1/V2` and
//! `UpdateEncoderV1/V2`), including the delete set's.

use std::borrow::Cow;

use super::UpdateError;
use super::cursor::{Cursor, write_var_bytes, write_var_uint};
use super::rle::{
    IntDiffOptRleDecoder, IntDiffOptRleEncoder, RleU8Decoder, RleU8Encoder, StringDecoder,
    StringEncoder, UintOptRleDecoder, UintOptRleEncoder,
};
use super::value::{self, JsValue};
use super::{Id, any_span};

/// Reads the fields of one update.
pub(crate) trait Decoder<'a>: Sized {
    /// Starts reading `update` (V2 reads its column table here).
    fn open(update: &'a [u8]) -> Result<Self, UpdateError>;
    /// Where the fields that have no column of their own are read (all of them in V1).
    fn rest(&mut self) -> &mut Cursor<'a>;
    fn read_client(&mut self) -> Result<u64, UpdateError>;
    fn read_left_id(&mut self) -> Result<Id, UpdateError>;
    fn read_right_id(&mut self) -> Result<Id, UpdateError>;
    fn read_info(&mut self) -> Result<u8, UpdateError>;
    fn read_string(&mut self) -> Result<Cow<'a, str>, UpdateError>;
    fn read_parent_info(&mut self) -> Result<bool, UpdateError>;
    fn read_type_ref(&mut self) -> Result<u64, UpdateError>;
    fn read_len(&mut self) -> Result<u64, UpdateError>;
    fn read_buf(&mut self) -> Result<&'a [u8], UpdateError> {
        self.rest().read_var_bytes("binary content")
    }
    /// An `Any` value, in the form yjs writes it.
    fn read_any(&mut self) -> Result<Cow<'a, [u8]>, UpdateError> {
        any_span::read(self.rest())
    }
    /// An embed's or a format's value: JSON text in V1, an `Any` in V2.
    fn read_json(&mut self) -> Result<JsValue, UpdateError>;
    fn read_key(&mut self) -> Result<Cow<'a, str>, UpdateError>;
    fn reset_ds(&mut self) {}
    fn read_ds_clock(&mut self) -> Result<u64, UpdateError>;
    fn read_ds_len(&mut self) -> Result<u64, UpdateError>;
}

/// Writes the fields of one update.
pub(crate) trait Encoder: Default {
    fn rest(&mut self) -> &mut Vec<u8>;
    fn write_client(&mut self, client: u64);
    fn write_left_id(&mut self, id: Id);
    fn write_right_id(&mut self, id: Id);
    fn write_info(&mut self, info: u8);
    fn write_string(&mut self, s: &str);
    fn write_parent_info(&mut self, is_key: bool);
    fn write_type_ref(&mut self, type_ref: u64);
    fn write_len(&mut self, len: u64);
    fn write_buf(&mut self, buf: &[u8]) {
        write_var_bytes(self.rest(), buf);
    }
    /// An `Any` value already in yjs's form.
    fn write_any(&mut self, bytes: &[u8]) {
        self.rest().extend_from_slice(bytes);
    }
    fn write_json(&mut self, v: &JsValue) -> Result<(), UpdateError>;
    fn write_key(&mut self, key: &str);
    fn reset_ds(&mut self) {}
    fn write_ds_clock(&mut self, clock: u64) -> Result<(), UpdateError>;
    fn write_ds_len(&mut self, len: u64) -> Result<(), UpdateError>;
    fn finish(self) -> Vec<u8>;
}

// ---------------------------------------------------------------------------------------------
// V1: every field in order, var-ints and var-strings.

pub(crate) struct DecoderV1<'a> {
    cur: Cursor<'a>,
}

impl<'a> Decoder<'a> for DecoderV1<'a> {
    fn open(update: &'a [u8]) -> Result<Self, UpdateError> {
        Ok(DecoderV1 {
            cur: Cursor::new(update),
        })
    }
    fn rest(&mut self) -> &mut Cursor<'a> {
        &mut self.cur
    }
    fn read_client(&mut self) -> Result<u64, UpdateError> {
        self.cur.read_var_uint("client")
    }
    fn read_left_id(&mut self) -> Result<Id, UpdateError> {
        Ok(Id {
            client: self.cur.read_var_uint("origin client")?,
            clock: id_clock(self.cur.read_var_uint("origin clock")?, "origin clock")?,
        })
    }
    fn read_right_id(&mut self) -> Result<Id, UpdateError> {
        Ok(Id {
            client: self.cur.read_var_uint("right origin client")?,
            clock: id_clock(
                self.cur.read_var_uint("right origin clock")?,
                "right origin clock",
            )?,
        })
    }
    fn read_info(&mut self) -> Result<u8, UpdateError> {
        self.cur.read_u8("struct info")
    }
    fn read_string(&mut self) -> Result<Cow<'a, str>, UpdateError> {
        self.cur.read_var_str("string").map(Cow::Borrowed)
    }
    fn read_parent_info(&mut self) -> Result<bool, UpdateError> {
        Ok(self.cur.read_var_uint("parent info")? == 1)
    }
    fn read_type_ref(&mut self) -> Result<u64, UpdateError> {
        self.cur.read_var_uint("type ref")
    }
    fn read_len(&mut self) -> Result<u64, UpdateError> {
        self.cur.read_var_uint("length")
    }
    fn read_json(&mut self) -> Result<JsValue, UpdateError> {
        value::json_parse(self.cur.read_var_str("JSON")?)
    }
    fn read_key(&mut self) -> Result<Cow<'a, str>, UpdateError> {
        self.read_string()
    }
    fn read_ds_clock(&mut self) -> Result<u64, UpdateError> {
        self.cur.read_var_uint("delete set clock")
    }
    fn read_ds_len(&mut self) -> Result<u64, UpdateError> {
        self.cur.read_var_uint("delete set length")
    }
}

/// The largest clock an origin or parent id may hold: V2 writes these clocks as differences,
/// doubled, which must stay below 2^53 for a V2 reader (yjs's too) to take them back.
pub(crate) const MAX_ID_CLOCK: u64 = (1 << 52) - 1;

/// `clock` if a V1 id's clock converts to V2, else an error naming `what`.
fn id_clock(clock: u64, what: &'static str) -> Result<u64, UpdateError> {
    if clock > MAX_ID_CLOCK {
        return Err(UpdateError::IntegerOutOfRange(what));
    }
    Ok(clock)
}

#[derive(Default)]
pub(crate) struct EncoderV1 {
    out: Vec<u8>,
}

impl Encoder for EncoderV1 {
    fn rest(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }
    fn write_client(&mut self, client: u64) {
        write_var_uint(&mut self.out, client);
    }
    fn write_left_id(&mut self, id: Id) {
        write_var_uint(&mut self.out, id.client);
        write_var_uint(&mut self.out, id.clock);
    }
    fn write_right_id(&mut self, id: Id) {
        self.write_left_id(id);
    }
    fn write_info(&mut self, info: u8) {
        self.out.push(info);
    }
    fn write_string(&mut self, s: &str) {
        write_var_bytes(&mut self.out, s.as_bytes());
    }
    fn write_parent_info(&mut self, is_key: bool) {
        self.out.push(u8::from(is_key));
    }
    fn write_type_ref(&mut self, type_ref: u64) {
        write_var_uint(&mut self.out, type_ref);
    }
    fn write_len(&mut self, len: u64) {
        write_var_uint(&mut self.out, len);
    }
    fn write_json(&mut self, v: &JsValue) -> Result<(), UpdateError> {
        let text = value::json_stringify(v)?.ok_or(UpdateError::NotJson("undefined"))?;
        self.write_string(&text);
        Ok(())
    }
    fn write_key(&mut self, key: &str) {
        self.write_string(key);
    }
    fn write_ds_clock(&mut self, clock: u64) -> Result<(), UpdateError> {
        write_var_uint(&mut self.out, clock);
        Ok(())
    }
    fn write_ds_len(&mut self, len: u64) -> Result<(), UpdateError> {
        write_var_uint(&mut self.out, len);
        Ok(())
    }
    fn finish(self) -> Vec<u8> {
        self.out
    }
}

// ---------------------------------------------------------------------------------------------
// V2: a feature flag, nine run-length columns, then the rest.

pub(crate) struct DecoderV2<'a> {
    rest: Cursor<'a>,
    key_clock: IntDiffOptRleDecoder<'a>,
    client: UintOptRleDecoder<'a>,
    left_clock: IntDiffOptRleDecoder<'a>,
    right_clock: IntDiffOptRleDecoder<'a>,
    info: RleU8Decoder<'a>,
    string: StringDecoder<'a>,
    parent_info: RleU8Decoder<'a>,
    type_ref: UintOptRleDecoder<'a>,
    len: UintOptRleDecoder<'a>,
    keys: Vec<Cow<'a, str>>,
    ds_value: u64,
}

impl<'a> Decoder<'a> for DecoderV2<'a> {
    fn open(update: &'a [u8]) -> Result<Self, UpdateError> {
        let mut cur = Cursor::new(update);
        cur.read_var_uint("feature flag")?;
        let mut column = || cur.read_var_bytes("column");
        let key_clock = IntDiffOptRleDecoder::new(column()?);
        let client = UintOptRleDecoder::new(Cursor::new(column()?));
        let left_clock = IntDiffOptRleDecoder::new(column()?);
        let right_clock = IntDiffOptRleDecoder::new(column()?);
        let info = RleU8Decoder::new(column()?);
        let string = StringDecoder::new(column()?)?;
        let parent_info = RleU8Decoder::new(column()?);
        let type_ref = UintOptRleDecoder::new(Cursor::new(column()?));
        let len = UintOptRleDecoder::new(Cursor::new(column()?));
        Ok(DecoderV2 {
            rest: cur,
            key_clock,
            client,
            left_clock,
            right_clock,
            info,
            string,
            parent_info,
            type_ref,
            len,
            keys: Vec::new(),
            ds_value: 0,
        })
    }
    fn rest(&mut self) -> &mut Cursor<'a> {
        &mut self.rest
    }
    fn read_client(&mut self) -> Result<u64, UpdateError> {
        self.client.read("client")
    }
    fn read_left_id(&mut self) -> Result<Id, UpdateError> {
        Ok(Id {
            client: self.client.read("origin client")?,
            clock: id_clock(self.left_clock.read_u64("origin clock")?, "origin clock")?,
        })
    }
    fn read_right_id(&mut self) -> Result<Id, UpdateError> {
        Ok(Id {
            client: self.client.read("right origin client")?,
            clock: id_clock(
                self.right_clock.read_u64("right origin clock")?,
                "right origin clock",
            )?,
        })
    }
    fn read_info(&mut self) -> Result<u8, UpdateError> {
        self.info.read("struct info")
    }
    fn read_string(&mut self) -> Result<Cow<'a, str>, UpdateError> {
        self.string.read()
    }
    fn read_parent_info(&mut self) -> Result<bool, UpdateError> {
        Ok(self.parent_info.read("parent info")? == 1)
    }
    fn read_type_ref(&mut self) -> Result<u64, UpdateError> {
        self.type_ref.read("type ref")
    }
    fn read_len(&mut self) -> Result<u64, UpdateError> {
        self.len.read("length")
    }
    fn read_json(&mut self) -> Result<JsValue, UpdateError> {
        value::read_any(&mut self.rest, 0)
    }
    fn read_key(&mut self) -> Result<Cow<'a, str>, UpdateError> {
        let clock = self.key_clock.read("key clock")?;
        let clock =
            usize::try_from(clock).map_err(|_| UpdateError::IntegerOutOfRange("key clock"))?;
        if let Some(key) = self.keys.get(clock) {
            return Ok(key.clone());
        }
        let key = self.string.read()?;
        self.keys.push(key.clone());
        Ok(key)
    }
    fn reset_ds(&mut self) {
        self.ds_value = 0;
    }
    fn read_ds_clock(&mut self) -> Result<u64, UpdateError> {
        let diff = self.rest.read_var_uint("delete set clock")?;
        self.ds_value = self
            .ds_value
            .checked_add(diff)
            .ok_or(UpdateError::IntegerOutOfRange("delete set clock"))?;
        Ok(self.ds_value)
    }
    fn read_ds_len(&mut self) -> Result<u64, UpdateError> {
        let len = self.rest.read_var_uint("delete set length")? + 1;
        self.ds_value = self
            .ds_value
            .checked_add(len)
            .ok_or(UpdateError::IntegerOutOfRange("delete set length"))?;
        Ok(len)
    }
}

#[derive(Default)]
pub(crate) struct EncoderV2 {
    rest: Vec<u8>,
    key_clock: IntDiffOptRleEncoder,
    keys_written: u64,
    client: UintOptRleEncoder,
    left_clock: IntDiffOptRleEncoder,
    right_clock: IntDiffOptRleEncoder,
    info: RleU8Encoder,
    string: StringEncoder,
    parent_info: RleU8Encoder,
    type_ref: UintOptRleEncoder,
    len: UintOptRleEncoder,
    ds_value: u64,
}

impl Encoder for EncoderV2 {
    fn rest(&mut self) -> &mut Vec<u8> {
        &mut self.rest
    }
    fn write_client(&mut self, client: u64) {
        self.client.write(client);
    }
    fn write_left_id(&mut self, id: Id) {
        self.client.write(id.client);
        self.left_clock.write(id.clock);
    }
    fn write_right_id(&mut self, id: Id) {
        self.client.write(id.client);
        self.right_clock.write(id.clock);
    }
    fn write_info(&mut self, info: u8) {
        self.info.write(info);
    }
    fn write_string(&mut self, s: &str) {
        self.string.write(s);
    }
    fn write_parent_info(&mut self, is_key: bool) {
        self.parent_info.write(u8::from(is_key));
    }
    fn write_type_ref(&mut self, type_ref: u64) {
        self.type_ref.write(type_ref);
    }
    fn write_len(&mut self, len: u64) {
        self.len.write(len);
    }
    fn write_json(&mut self, v: &JsValue) -> Result<(), UpdateError> {
        value::write_any(&mut self.rest, v);
        Ok(())
    }
    fn write_key(&mut self, key: &str) {
        // yjs never looks a key up in its table when writing: every key is new.
        self.key_clock.write(self.keys_written);
        self.keys_written += 1;
        self.string.write(key);
    }
    fn reset_ds(&mut self) {
        self.ds_value = 0;
    }
    fn write_ds_clock(&mut self, clock: u64) -> Result<(), UpdateError> {
        // Only a delete set that is not sorted gives a negative difference; yjs writes garbage.
        let diff = clock
            .checked_sub(self.ds_value)
            .ok_or(UpdateError::Unsupported(
                "a delete set whose ranges are not in order",
            ))?;
        self.ds_value = clock;
        write_var_uint(&mut self.rest, diff);
        Ok(())
    }
    fn write_ds_len(&mut self, len: u64) -> Result<(), UpdateError> {
        if len == 0 {
            return Err(UpdateError::Unsupported("an empty delete set range in V2"));
        }
        write_var_uint(&mut self.rest, len - 1);
        self.ds_value += len;
        Ok(())
    }
    fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.rest.len() + 64);
        out.push(0); // the feature flag
        for column in [
            self.key_clock.finish(),
            self.client.finish(),
            self.left_clock.finish(),
            self.right_clock.finish(),
            self.info.finish(),
            self.string.finish(),
            self.parent_info.finish(),
            self.type_ref.finish(),
            self.len.finish(),
        ] {
            write_var_bytes(&mut out, &column);
        }
        out.extend_from_slice(&self.rest);
        out
    }
}
