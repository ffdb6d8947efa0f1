//! The structs of an update (`GC`, `Skip`, `Item`) with their content as spans of the input,
//! read one at a time as yjs's `LazyStructReader` does and written as `struct.write` does.

use std::borrow::Cow;

use super::coder::{Decoder, Encoder};
use super::value::{self, JsValue};
use super::{Id, UpdateError, utf16};

/// One struct of an update.
#[derive(Debug, Clone)]
pub(crate) enum Struct<'a> {
    /// Garbage-collected content: only its length is left.
    Gc {
        id: Id,
        len: u64,
    },
    /// A gap: structs this update does not carry.
    Skip {
        id: Id,
        len: u64,
    },
    Item(Item<'a>),
}

impl Struct<'_> {
    pub(crate) fn id(&self) -> Id {
        match self {
            Struct::Gc { id, .. } | Struct::Skip { id, .. } => *id,
            Struct::Item(item) => item.id,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        match self {
            Struct::Gc { len, .. } | Struct::Skip { len, .. } => *len,
            Struct::Item(item) => item.content.len(),
        }
    }

    /// The clock just past this struct.
    pub(crate) fn end(&self) -> u64 {
        self.id().clock + self.len()
    }

    pub(crate) fn is_skip(&self) -> bool {
        matches!(self, Struct::Skip { .. })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Item<'a> {
    pub(crate) id: Id,
    pub(crate) origin: Option<Id>,
    pub(crate) right_origin: Option<Id>,
    /// Read (and written) only when there is neither origin nor right origin.
    pub(crate) parent: Option<Parent<'a>>,
    pub(crate) parent_sub: Option<Cow<'a, str>>,
    pub(crate) content: Content<'a>,
}

#[derive(Debug, Clone)]
pub(crate) enum Parent<'a> {
    /// A root type, by its name.
    Root(Cow<'a, str>),
    /// A nested type, by the id of the item that holds it.
    Item(Id),
}

/// What an item holds. Everything but embeds and formats stays as the input's bytes.
#[derive(Debug, Clone)]
pub(crate) enum Content<'a> {
    Deleted(u64),
    /// Legacy JSON values, each as JSON text (or `undefined`).
    Json(Vec<Cow<'a, str>>),
    Binary(&'a [u8]),
    String {
        text: Cow<'a, str>,
        units: u64,
    },
    Embed(JsValue),
    Format {
        key: Cow<'a, str>,
        value: JsValue,
    },
    /// A shared type; XML elements and hooks carry a name.
    Type {
        type_ref: u64,
        name: Option<Cow<'a, str>>,
    },
    /// `count` lib0 `Any` values, one after another.
    Any {
        count: u64,
        values: Cow<'a, [u8]>,
    },
    /// A subdocument: its guid and options (an `Any`).
    Doc {
        guid: Cow<'a, str>,
        opts: Vec<u8>,
    },
}

impl Content<'_> {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Content::Deleted(n) => *n,
            Content::Json(values) => values.len() as u64,
            Content::String { units, .. } => *units,
            Content::Any { count, .. } => *count,
            Content::Binary(_)
            | Content::Embed(_)
            | Content::Format { .. }
            | Content::Type { .. }
            | Content::Doc { .. } => 1,
        }
    }

    fn ref_number(&self) -> u8 {
        match self {
            Content::Deleted(_) => 1,
            Content::Json(_) => 2,
            Content::Binary(_) => 3,
            Content::String { .. } => 4,
            Content::Embed(_) => 5,
            Content::Format { .. } => 6,
            Content::Type { .. } => 7,
            Content::Any { .. } => 8,
            Content::Doc { .. } => 9,
        }
    }
}

const SKIP: u8 = 10;
const BIT8: u8 = 0x80;
const BIT7: u8 = 0x40;
const BIT6: u8 = 0x20;

/// yjs's `LazyStructReader`: the structs of one update, in order, then its delete set.
pub(crate) struct StructReader<'a, D: Decoder<'a>> {
    pub(crate) decoder: D,
    clients_left: u64,
    structs_left: u64,
    client: u64,
    clock: u64,
    /// The client of the previous run.
    last_client: Option<u64>,
    /// The clock the current run starts at.
    run_start: u64,
    /// Structs read so far and how many we allow (see [`max_structs`]).
    read: u64,
    limit: u64,
    filter_skips: bool,
    pub(crate) curr: Option<Struct<'a>>,
    _input: std::marker::PhantomData<&'a ()>,
}

/// How many structs one update may hold. In V2 a struct can cost no bytes at all (every
/// field a long run), so without a bound a few bytes would stand for 2^53 structs; this one is
/// far above what any document's update holds per byte.
fn max_structs(input_len: usize) -> u64 {
    (1 << 20) + 16 * input_len as u64
}

impl<'a, D: Decoder<'a>> StructReader<'a, D> {
    pub(crate) fn new(
        mut decoder: D,
        input_len: usize,
        filter_skips: bool,
    ) -> Result<Self, UpdateError> {
        let clients_left = decoder.rest().read_var_uint("number of clients")?;
        let mut reader = StructReader {
            decoder,
            clients_left,
            structs_left: 0,
            client: 0,
            clock: 0,
            last_client: None,
            run_start: 0,
            read: 0,
            limit: max_structs(input_len),
            filter_skips,
            curr: None,
            _input: std::marker::PhantomData,
        };
        reader.advance()?;
        Ok(reader)
    }

    /// Moves to the next struct and returns it (`None` at the end).
    pub(crate) fn advance(&mut self) -> Result<Option<&Struct<'a>>, UpdateError> {
        loop {
            self.curr = self.read_struct()?;
            match &self.curr {
                Some(s) if self.filter_skips && s.is_skip() => continue,
                _ => return Ok(self.curr.as_ref()),
            }
        }
    }

    fn read_struct(&mut self) -> Result<Option<Struct<'a>>, UpdateError> {
        while self.structs_left == 0 {
            if self.clients_left == 0 {
                return Ok(None);
            }
            self.clients_left -= 1;
            self.structs_left = self.decoder.rest().read_var_uint("number of structs")?;
            let client = self.decoder.read_client()?;
            // yjs (and yrs) list each client once, highest first, and yjs's merge and
            // conversion rely on it: a client listed again would move to other clocks, one
            // listed out of order would be dropped. Such an update is refused.
            if self.last_client.is_some_and(|last| client >= last) {
                return Err(UpdateError::Unsupported(
                    "clients listed twice or not from the highest id down",
                ));
            }
            self.last_client = Some(client);
            self.client = client;
            self.clock = self.decoder.rest().read_var_uint("clock")?;
            self.run_start = self.clock;
        }
        self.structs_left -= 1;
        self.read += 1;
        if self.read > self.limit {
            return Err(UpdateError::TooManyStructs);
        }
        let id = Id {
            client: self.client,
            clock: self.clock,
        };
        let d = &mut self.decoder;
        let info = d.read_info()?;
        let first_of_run = id.clock == self.run_start;
        let s = if info == SKIP {
            if first_of_run {
                // yjs never starts a client's structs with a gap, and its state vector
                // counts one that does as content.
                return Err(UpdateError::Unsupported(
                    "a client's structs that start with a gap",
                ));
            }
            Struct::Skip {
                id,
                len: d.rest().read_var_uint("skip length")?,
            }
        } else if info & 0x1f != 0 {
            let origin = if info & BIT8 != 0 {
                Some(d.read_left_id()?)
            } else {
                None
            };
            let right_origin = if info & BIT7 != 0 {
                Some(d.read_right_id()?)
            } else {
                None
            };
            let no_origins = info & (BIT8 | BIT7) == 0;
            let parent = if no_origins {
                Some(if d.read_parent_info()? {
                    Parent::Root(d.read_string()?)
                } else {
                    Parent::Item(d.read_left_id()?)
                })
            } else {
                None
            };
            let parent_sub = if no_origins && info & BIT6 != 0 {
                Some(d.read_string()?)
            } else {
                None
            };
            let content = read_content(d, info & 0x1f)?;
            Struct::Item(Item {
                id,
                origin,
                right_origin,
                parent,
                parent_sub,
                content,
            })
        } else {
            Struct::Gc {
                id,
                len: d.read_len()?,
            }
        };
        let len = s.len();
        if len == 0 {
            // yjs never writes one, and an empty struct would let a merge stand still.
            return Err(UpdateError::EmptyStruct);
        }
        self.clock = self
            .clock
            .checked_add(len)
            .filter(|c| *c <= super::cursor::MAX_SAFE_INTEGER)
            .ok_or(UpdateError::IntegerOutOfRange("clock"))?;
        Ok(Some(s))
    }
}

fn read_content<'a, D: Decoder<'a>>(
    d: &mut D,
    content_ref: u8,
) -> Result<Content<'a>, UpdateError> {
    Ok(match content_ref {
        1 => Content::Deleted(d.read_len()?),
        2 => {
            let len = d.read_len()?;
            let mut values = Vec::new();
            for _ in 0..len {
                values.push(normalize_json_text(d.read_string()?)?);
            }
            Content::Json(values)
        }
        3 => Content::Binary(d.read_buf()?),
        4 => {
            let text = d.read_string()?;
            let units = utf16::len(&text);
            Content::String { text, units }
        }
        5 => Content::Embed(d.read_json()?),
        6 => {
            let key = d.read_key()?;
            let value = d.read_json()?;
            Content::Format { key, value }
        }
        7 => {
            let type_ref = d.read_type_ref()?;
            let name = match type_ref {
                3 | 5 => Some(d.read_key()?),
                0..=6 => None,
                _ => return Err(UpdateError::UnknownTypeRef(type_ref)),
            };
            Content::Type { type_ref, name }
        }
        8 => {
            let count = d.read_len()?;
            let start = d.rest().position();
            let mut owned: Option<Vec<u8>> = None;
            for _ in 0..count {
                let before = d.rest().position();
                let v = d.read_any()?;
                match (&mut owned, v) {
                    (None, Cow::Borrowed(_)) => {}
                    (None, Cow::Owned(v)) => {
                        // The first value yjs would write differently: copy what came before.
                        let mut buf = d.rest().since(start)[..before - start].to_vec();
                        buf.extend_from_slice(&v);
                        owned = Some(buf);
                    }
                    (Some(buf), v) => buf.extend_from_slice(&v),
                }
            }
            let values = match owned {
                Some(buf) => Cow::Owned(buf),
                None => Cow::Borrowed(d.rest().since(start)),
            };
            Content::Any { count, values }
        }
        9 => {
            let guid = d.read_string()?;
            let opts = d.read_any()?;
            Content::Doc {
                guid,
                opts: normalize_doc_opts(&opts)?,
            }
        }
        other => return Err(UpdateError::UnknownContent(other)),
    })
}

/// `JSON.stringify(JSON.parse(text))`, as yjs writes legacy JSON content back (`undefined`
/// stays).
fn normalize_json_text(text: Cow<'_, str>) -> Result<Cow<'_, str>, UpdateError> {
    if text == "undefined" {
        return Ok(text);
    }
    let again =
        value::json_stringify(&value::json_parse(&text)?)?.expect("parsed JSON is never undefined");
    Ok(if again == *text {
        text
    } else {
        Cow::Owned(again)
    })
}

/// The options yjs writes for a subdocument: it builds a `Y.Doc` from them and keeps only
/// `gc: false`, `autoLoad: true` and `meta`.
fn normalize_doc_opts(opts: &[u8]) -> Result<Vec<u8>, UpdateError> {
    let v = value::read_any(&mut super::cursor::Cursor::new(opts), 0)?;
    let JsValue::Object(entries) = v else {
        return Err(UpdateError::Unsupported(
            "subdocument options that are not an object",
        ));
    };
    let get = |name: &str| {
        let name = value::js_string(name);
        entries.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    };
    if get("guid").is_some() {
        return Err(UpdateError::Unsupported("subdocument options with a guid"));
    }
    let mut out = Vec::new();
    let gc_off = get("gc").is_some_and(|v| !matches!(v, JsValue::Undefined) && !value::truthy(v));
    let auto_load = get("autoLoad").is_some_and(value::truthy);
    let meta = get("meta").filter(|v| !matches!(v, JsValue::Undefined | JsValue::Null));
    let mut normalized = Vec::new();
    if gc_off {
        normalized.push((value::js_string("gc"), JsValue::Bool(false)));
    }
    if auto_load {
        normalized.push((value::js_string("autoLoad"), JsValue::Bool(true)));
    }
    if let Some(meta) = meta {
        normalized.push((value::js_string("meta"), meta.clone()));
    }
    value::write_any(&mut out, &JsValue::Object(normalized));
    Ok(out)
}

/// `struct.write(encoder, offset)`: the struct without its first `offset` units.
pub(crate) fn write_struct<E: Encoder>(
    e: &mut E,
    s: &Struct<'_>,
    offset: u64,
) -> Result<(), UpdateError> {
    match s {
        Struct::Gc { len, .. } => {
            e.write_info(0);
            e.write_len(len - offset);
        }
        Struct::Skip { len, .. } => {
            e.write_info(SKIP);
            super::cursor::write_var_uint(e.rest(), len - offset);
        }
        Struct::Item(item) => {
            let origin = if offset > 0 {
                Some(Id {
                    client: item.id.client,
                    clock: item.id.clock + offset - 1,
                })
            } else {
                item.origin
            };
            let info = item.content.ref_number()
                | if origin.is_some() { BIT8 } else { 0 }
                | if item.right_origin.is_some() { BIT7 } else { 0 }
                | if item.parent_sub.is_some() { BIT6 } else { 0 };
            e.write_info(info);
            if let Some(o) = origin {
                e.write_left_id(o);
            }
            if let Some(r) = item.right_origin {
                e.write_right_id(r);
            }
            if origin.is_none() && item.right_origin.is_none() {
                match &item.parent {
                    Some(Parent::Root(name)) => {
                        e.write_parent_info(true);
                        e.write_string(name);
                    }
                    Some(Parent::Item(id)) => {
                        e.write_parent_info(false);
                        e.write_left_id(*id);
                    }
                    None => {
                        return Err(UpdateError::Unsupported("an item without origin or parent"));
                    }
                }
                if let Some(sub) = &item.parent_sub {
                    e.write_string(sub);
                }
            }
            write_content(e, &item.content, offset)?;
        }
    }
    Ok(())
}

fn write_content<E: Encoder>(e: &mut E, c: &Content<'_>, offset: u64) -> Result<(), UpdateError> {
    match c {
        Content::Deleted(n) => e.write_len(n - offset),
        Content::Json(values) => {
            e.write_len(values.len() as u64 - offset);
            for v in &values[index(offset)?..] {
                e.write_string(v);
            }
        }
        Content::Binary(b) => e.write_buf(b),
        Content::String { text, .. } => {
            if offset == 0 {
                e.write_string(text);
            } else {
                let rest =
                    utf16::slice_from(text, offset).ok_or(UpdateError::UnexpectedEnd("string"))?;
                e.write_string(&rest);
            }
        }
        Content::Embed(v) => e.write_json(v)?,
        Content::Format { key, value } => {
            e.write_key(key);
            e.write_json(value)?;
        }
        Content::Type { type_ref, name } => {
            e.write_type_ref(*type_ref);
            if let Some(name) = name {
                e.write_key(name);
            }
        }
        Content::Any { count, values } => {
            e.write_len(count - offset);
            e.write_any(skip_any_values(values, offset)?);
        }
        Content::Doc { guid, opts } => {
            e.write_string(guid);
            e.write_any(opts);
        }
    }
    Ok(())
}

/// `values` without its first `n` values.
fn skip_any_values(values: &[u8], n: u64) -> Result<&[u8], UpdateError> {
    let mut cur = super::cursor::Cursor::new(values);
    for _ in 0..n {
        super::any_span::scan(&mut cur)?;
    }
    Ok(cur.rest())
}

/// yjs's `sliceStruct(s, diff)`: the struct without its first `diff` units (an item's slice
/// has the unit before it as its origin).
pub(crate) fn slice_struct<'a>(s: &Struct<'a>, diff: u64) -> Result<Struct<'a>, UpdateError> {
    Ok(match s {
        Struct::Gc { id, len } => Struct::Gc {
            id: id.offset(diff),
            len: len - diff,
        },
        Struct::Skip { id, len } => Struct::Skip {
            id: id.offset(diff),
            len: len - diff,
        },
        Struct::Item(item) => Struct::Item(Item {
            id: item.id.offset(diff),
            origin: Some(item.id.offset(diff - 1)),
            right_origin: item.right_origin,
            parent: item.parent.clone(),
            parent_sub: item.parent_sub.clone(),
            content: splice_content(&item.content, diff)?,
        }),
    })
}

/// `content.splice(offset)`: what is right of `offset`.
fn splice_content<'a>(c: &Content<'a>, offset: u64) -> Result<Content<'a>, UpdateError> {
    Ok(match c {
        Content::Deleted(n) => Content::Deleted(n - offset),
        Content::Json(values) => Content::Json(values[index(offset)?..].to_vec()),
        Content::String { text, units } => {
            let rest =
                utf16::slice_from(text, offset).ok_or(UpdateError::UnexpectedEnd("string"))?;
            let rest = match (text, rest) {
                (Cow::Borrowed(t), Cow::Borrowed(r)) => {
                    // Still a slice of the input.
                    Cow::Borrowed(&t[t.len() - r.len()..])
                }
                (_, r) => Cow::Owned(r.into_owned()),
            };
            Content::String {
                text: rest,
                units: units - offset,
            }
        }
        Content::Any { count, values } => {
            let rest = skip_any_values(values, offset)?;
            let rest = match values {
                Cow::Borrowed(v) => Cow::Borrowed(&v[v.len() - rest.len()..]),
                Cow::Owned(_) => Cow::Owned(rest.to_vec()),
            };
            Content::Any {
                count: count - offset,
                values: rest,
            }
        }
        // Contents of length one are never split.
        _ => return Err(UpdateError::Unsupported("splitting content of length one")),
    })
}

/// An offset into a content's values (always within its length).
fn index(offset: u64) -> Result<usize, UpdateError> {
    usize::try_from(offset).map_err(|_| UpdateError::IntegerOutOfRange("offset"))
}
