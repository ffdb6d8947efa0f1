//! Attribution binary formats (spec §14): the bytes inside the `knownIds` and `contentMap`
//! fields of the attribution RPC methods (§11.7).
//!
//! * [`ContentIds`] = [`IdSet`] inserts ‖ [`IdSet`] deletes: which Yjs ids a client knows.
//! * [`ContentMap`] = [`IdMap`] inserts ‖ [`IdMap`] deletes: who inserted or deleted what, and
//!   when, as attributes (`insert`/`delete` = user id, `insertAt`/`deleteAt` = ms timestamp).
//!
//! Ranges of one client are delta-encoded: `varUint (clock − previous end)`, `varUint
//! (len − 1)`, the previous end starting at 0 for each client.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use bytes::{BufMut, Bytes};

use crate::lib0::{Reader, write_var_string, write_var_uint};
use crate::{Any, DecodeError};

/// A run of `len` consecutive clocks of one client, starting at `clock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdRange {
    /// The first clock.
    pub clock: u64,
    /// How many clocks (at least 1 on the wire).
    pub len: u64,
}

/// The ranges of one client in an [`IdSet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIds {
    /// The Yjs client id.
    pub client: u64,
    /// Ascending, non-overlapping ranges (see [`IdSet::encode`] for anything else).
    pub ranges: Vec<IdRange>,
}

/// A set of Yjs ids: per client, ranges of clocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdSet {
    /// The clients, in wire order when decoded (descending client id from the reference).
    pub clients: Vec<ClientIds>,
}

impl IdSet {
    /// Reads an IdSet.
    ///
    /// # Errors
    /// A missing or malformed field, or a range whose end overflows `u64`.
    pub fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut clients = Vec::new();
        for _ in 0..r.read_var_uint("id set client count")? {
            let client = r.read_var_uint("id set client")?;
            let mut prev_end = 0;
            let mut ranges = Vec::new();
            for _ in 0..r.read_var_uint("id set range count")? {
                ranges.push(read_range(r, &mut prev_end)?);
            }
            clients.push(ClientIds { client, ranges });
        }
        Ok(Self { clients })
    }

    /// Appends the IdSet to `buf`, clients sorted by descending id as the reference writes
    /// them (clients with equal ids keep their order).
    ///
    /// Ranges are written in the order given. A range starting before the end of the previous
    /// one, or of length 0, cannot be expressed: it is written as the nearest range the wire
    /// allows (starting at the previous end, of length at least 1).
    pub fn encode(&self, buf: &mut impl BufMut) {
        let mut clients: Vec<&ClientIds> = self.clients.iter().collect();
        clients.sort_by_key(|c| std::cmp::Reverse(c.client));
        write_var_uint(buf, clients.len() as u64);
        for c in clients {
            write_var_uint(buf, c.client);
            write_var_uint(buf, c.ranges.len() as u64);
            let mut prev_end = 0;
            for range in &c.ranges {
                write_range(buf, &mut prev_end, *range);
            }
        }
    }
}

/// The Yjs ids a client already has: what `attributionGetIncremental` sends as `knownIds`.
///
/// ```
/// use teleportal_core::attribution::{ClientIds, ContentIds, IdRange, IdSet};
///
/// let ids = ContentIds {
///     inserts: IdSet { clients: vec![ClientIds { client: 5, ranges: vec![IdRange { clock: 0, len: 3 }] }] },
///     deletes: IdSet::default(),
/// };
/// assert_eq!(&ids.to_bytes()[..], &[1, 5, 1, 0, 2, 0]);
/// assert_eq!(ContentIds::decode(ids.to_bytes())?, ids);
/// assert_eq!(&ContentIds::default().to_bytes()[..], &[0, 0]);
/// # Ok::<(), teleportal_core::DecodeError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentIds {
    /// Inserted ids.
    pub inserts: IdSet,
    /// Deleted ids.
    pub deletes: IdSet,
}

impl ContentIds {
    /// Decodes two IdSets; bytes after them are ignored.
    ///
    /// # Errors
    /// As [`IdSet::read`].
    pub fn decode(bytes: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let inserts = IdSet::read(&mut r)?;
        let deletes = IdSet::read(&mut r)?;
        Ok(Self { inserts, deletes })
    }

    /// Appends the encoding to `buf` (see [`IdSet::encode`]).
    pub fn encode(&self, buf: &mut impl BufMut) {
        self.inserts.encode(buf);
        self.deletes.encode(buf);
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = Vec::new();
        self.encode(&mut buf);
        Bytes::from(buf)
    }
}

/// One named attribute value, e.g. `insert = "user-alice"` or `insertAt = 1700000000000`.
///
/// Ranges share attributes through [`Arc`]: on the wire an attribute is written once per
/// [`IdMap`] and then referred to by index, so decoding never copies a value per reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// The attribute name.
    pub name: Arc<str>,
    /// The value.
    pub value: Any,
}

impl Attribute {
    /// A shared attribute.
    pub fn new(name: impl Into<Arc<str>>, value: impl Into<Any>) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            value: value.into(),
        })
    }
}

/// A range of clocks with the attributes that apply to all of it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributedRange {
    /// The first clock.
    pub clock: u64,
    /// How many clocks (at least 1 on the wire).
    pub len: u64,
    /// The attributes, in wire order.
    pub attrs: Vec<Arc<Attribute>>,
}

/// The attributed ranges of one client in an [`IdMap`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClientAttributions {
    /// The Yjs client id.
    pub client: u64,
    /// Ascending, non-overlapping ranges (see [`IdSet::encode`] for anything else).
    pub ranges: Vec<AttributedRange>,
}

/// A map from Yjs ids to attributes: per client, ranges of clocks with attribute lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdMap {
    /// The clients, ascending by id when decoded.
    pub clients: Vec<ClientAttributions>,
}

impl IdMap {
    /// Reads an IdMap, with its own fresh attribute and name tables.
    ///
    /// # Errors
    /// A missing or malformed field, an attribute or name index beyond the next new one, or a
    /// client id or range end that overflows `u64`.
    pub fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut table: Vec<Arc<Attribute>> = Vec::new();
        let mut names: Vec<Arc<str>> = Vec::new();
        let mut clients = Vec::new();
        let mut client: u64 = 0;
        for _ in 0..r.read_var_uint("id map client count")? {
            client = client
                .checked_add(r.read_var_uint("id map client delta")?)
                .ok_or(DecodeError::OutOfRange {
                    field: "id map client",
                })?;
            let mut prev_end = 0;
            let mut ranges = Vec::new();
            for _ in 0..r.read_var_uint("id map range count")? {
                let IdRange { clock, len } = read_range(r, &mut prev_end)?;
                let mut attrs = Vec::new();
                for _ in 0..r.read_var_uint("attribute count")? {
                    attrs.push(read_attribute(r, &mut table, &mut names)?);
                }
                ranges.push(AttributedRange { clock, len, attrs });
            }
            clients.push(ClientAttributions { client, ranges });
        }
        Ok(Self { clients })
    }

    /// Appends the IdMap to `buf`: clients sorted ascending (equal ids keep their order) and
    /// delta-encoded, each distinct attribute written once and then referred to by index, each
    /// name likewise.
    ///
    /// Attributes are the same when their names and encoded values are; ranges are written
    /// as [`IdSet::encode`] describes.
    pub fn encode(&self, buf: &mut impl BufMut) {
        let mut clients: Vec<&ClientAttributions> = self.clients.iter().collect();
        clients.sort_by_key(|c| c.client);
        // Keyed by the encoded value: that is what the wire compares, and `Any` has no `Hash`.
        let mut table: HashMap<(&str, Bytes), u64> = HashMap::new();
        let mut names: HashMap<&str, u64> = HashMap::new();
        write_var_uint(buf, clients.len() as u64);
        let mut last_client = 0;
        for c in clients {
            // Sorted ascending, so the delta is never negative.
            write_var_uint(buf, c.client.saturating_sub(last_client));
            last_client = c.client;
            write_var_uint(buf, c.ranges.len() as u64);
            let mut prev_end = 0;
            for range in &c.ranges {
                let id = IdRange {
                    clock: range.clock,
                    len: range.len,
                };
                write_range(buf, &mut prev_end, id);
                write_var_uint(buf, range.attrs.len() as u64);
                for attr in &range.attrs {
                    let next = table.len() as u64;
                    match table.entry((&*attr.name, attr.value.to_bytes())) {
                        Entry::Occupied(e) => write_var_uint(buf, *e.get()),
                        Entry::Vacant(e) => {
                            write_var_uint(buf, next);
                            let next_name = names.len() as u64;
                            match names.entry(&attr.name) {
                                Entry::Occupied(n) => write_var_uint(buf, *n.get()),
                                Entry::Vacant(n) => {
                                    write_var_uint(buf, next_name);
                                    write_var_string(buf, n.key());
                                    n.insert(next_name);
                                }
                            }
                            buf.put_slice(&e.key().1);
                            e.insert(next);
                        }
                    }
                }
            }
        }
    }
}

/// Who inserted and deleted what: the `contentMap` of the attribution RPC responses.
///
/// ```
/// use teleportal_core::Any;
/// use teleportal_core::attribution::{
///     Attribute, AttributedRange, ClientAttributions, ContentMap, IdMap,
/// };
///
/// let alice = Attribute::new("insert", "user-alice");
/// let map = ContentMap {
///     inserts: IdMap {
///         clients: vec![ClientAttributions {
///             client: 5,
///             ranges: vec![
///                 AttributedRange { clock: 0, len: 3, attrs: vec![alice.clone()] },
///                 AttributedRange { clock: 7, len: 1, attrs: vec![alice] }, // by index
///             ],
///         }],
///     },
///     deletes: IdMap::default(),
/// };
/// let decoded = ContentMap::decode(map.to_bytes())?;
/// assert_eq!(decoded, map);
/// assert_eq!(decoded.inserts.clients[0].ranges[1].attrs[0].value, Any::from("user-alice"));
/// # Ok::<(), teleportal_core::DecodeError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContentMap {
    /// Attributions of inserted content.
    pub inserts: IdMap,
    /// Attributions of deletions.
    pub deletes: IdMap,
}

impl ContentMap {
    /// Decodes two IdMaps; bytes after them are ignored.
    ///
    /// # Errors
    /// As [`IdMap::read`].
    pub fn decode(bytes: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let inserts = IdMap::read(&mut r)?;
        let deletes = IdMap::read(&mut r)?;
        Ok(Self { inserts, deletes })
    }

    /// Appends the encoding to `buf` (see [`IdMap::encode`]).
    pub fn encode(&self, buf: &mut impl BufMut) {
        self.inserts.encode(buf);
        self.deletes.encode(buf);
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = Vec::new();
        self.encode(&mut buf);
        Bytes::from(buf)
    }
}

fn read_range(r: &mut Reader, prev_end: &mut u64) -> Result<IdRange, DecodeError> {
    let gap = r.read_var_uint("range clock")?;
    // ≤ 2^53 − 1 + 1: cannot overflow.
    let len = r.read_var_uint("range length")? + 1;
    let clock = prev_end.checked_add(gap).ok_or(DecodeError::OutOfRange {
        field: "range clock",
    })?;
    *prev_end = clock.checked_add(len).ok_or(DecodeError::OutOfRange {
        field: "range length",
    })?;
    Ok(IdRange { clock, len })
}

fn write_range(buf: &mut impl BufMut, prev_end: &mut u64, range: IdRange) {
    // Track what a decoder reconstructs, so one inexpressible range does not shift the rest.
    let clock = range.clock.max(*prev_end);
    let len = range.len.max(1);
    write_var_uint(buf, clock - *prev_end);
    write_var_uint(buf, len - 1);
    *prev_end = clock.saturating_add(len);
}

fn read_attribute(
    r: &mut Reader,
    table: &mut Vec<Arc<Attribute>>,
    names: &mut Vec<Arc<str>>,
) -> Result<Arc<Attribute>, DecodeError> {
    let index = r.read_var_uint("attribute index")?;
    if let Some(known) = usize::try_from(index).ok().and_then(|i| table.get(i)) {
        return Ok(Arc::clone(known));
    }
    // Only the next index may introduce a new attribute (the reference pushes it and then
    // looks up the stated index, yielding `undefined` for anything larger).
    if index != table.len() as u64 {
        return Err(DecodeError::OutOfRange {
            field: "attribute index",
        });
    }
    let name_index = r.read_var_uint("attribute name index")?;
    let name = match usize::try_from(name_index).ok().and_then(|i| names.get(i)) {
        Some(known) => Arc::clone(known),
        None if name_index == names.len() as u64 => {
            let name: Arc<str> = r.read_var_string("attribute name")?.into();
            names.push(Arc::clone(&name));
            name
        }
        None => {
            return Err(DecodeError::OutOfRange {
                field: "attribute name index",
            });
        }
    };
    let value = Any::read(r)?;
    let attr = Arc::new(Attribute { name, value });
    table.push(Arc::clone(&attr));
    Ok(attr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `attribution_content_map_two_clients` from the shared vectors.
    const TWO_CLIENTS: &str = "020501000202000006696e73657274770a757365722d616c696365010108696e7365727441747b4278bcfe56800000040102030202007708757365722d626f6203017b4278bcfe57b8800001050101000200000664656c6574657708757365722d626f6201010864656c65746541747b4278bcfe57f70000";

    fn two_clients() -> ContentMap {
        let range = |clock, len, attrs| AttributedRange { clock, len, attrs };
        let client = |client, ranges| ClientAttributions { client, ranges };
        ContentMap {
            inserts: IdMap {
                clients: vec![
                    client(
                        5,
                        vec![range(
                            0,
                            3,
                            vec![
                                Attribute::new("insert", "user-alice"),
                                Attribute::new("insertAt", 1_700_000_000_000.0),
                            ],
                        )],
                    ),
                    client(
                        9,
                        vec![range(
                            2,
                            4,
                            vec![
                                Attribute::new("insert", "user-bob"),
                                Attribute::new("insertAt", 1_700_000_005_000.0),
                            ],
                        )],
                    ),
                ],
            },
            deletes: IdMap {
                clients: vec![client(
                    5,
                    vec![range(
                        1,
                        1,
                        vec![
                            Attribute::new("delete", "user-bob"),
                            Attribute::new("deleteAt", 1_700_000_006_000.0),
                        ],
                    )],
                )],
            },
        }
    }

    #[test]
    fn content_map_vector_round_trips_byte_exact() {
        let bytes = Bytes::from(hex::decode(TWO_CLIENTS).unwrap());
        let decoded = ContentMap::decode(bytes.clone()).unwrap();
        assert_eq!(decoded, two_clients());
        assert_eq!(decoded.to_bytes(), bytes);
        assert_eq!(two_clients().to_bytes(), bytes);
    }

    #[test]
    fn every_truncation_of_a_content_map_is_an_error() {
        let bytes = two_clients().to_bytes();
        for len in 0..bytes.len() {
            assert!(
                ContentMap::decode(bytes.slice(..len)).is_err(),
                "prefix of {len} bytes decoded"
            );
        }
    }

    #[test]
    fn every_truncation_of_content_ids_is_an_error() {
        let ids = ContentIds {
            inserts: IdSet {
                clients: vec![ClientIds {
                    client: 20,
                    ranges: vec![IdRange { clock: 0, len: 4 }, IdRange { clock: 9, len: 1 }],
                }],
            },
            deletes: IdSet {
                clients: vec![ClientIds {
                    client: 10,
                    ranges: vec![IdRange { clock: 0, len: 1 }],
                }],
            },
        };
        let bytes = ids.to_bytes();
        assert_eq!(ContentIds::decode(bytes.clone()), Ok(ids));
        for len in 0..bytes.len() {
            assert!(ContentIds::decode(bytes.slice(..len)).is_err(), "{len}");
        }
    }

    #[test]
    fn id_set_clients_are_written_descending() {
        let set = |clients: &[u64]| IdSet {
            clients: clients
                .iter()
                .map(|&client| ClientIds {
                    client,
                    ranges: vec![],
                })
                .collect(),
        };
        let mut a = Vec::new();
        set(&[10, 20]).encode(&mut a);
        let mut b = Vec::new();
        set(&[20, 10]).encode(&mut b);
        assert_eq!(a, [2, 20, 0, 10, 0]);
        assert_eq!(a, b);
    }

    #[test]
    fn id_map_clients_are_sorted_and_delta_encoded() {
        let mut map = two_clients();
        map.inserts.clients.reverse();
        assert_eq!(map.to_bytes(), two_clients().to_bytes());
    }

    #[test]
    fn equal_attributes_are_written_once() {
        // Two distinct `Arc`s with the same content share one table entry.
        let map = IdMap {
            clients: vec![ClientAttributions {
                client: 1,
                ranges: vec![
                    AttributedRange {
                        clock: 0,
                        len: 1,
                        attrs: vec![Attribute::new("insert", "u")],
                    },
                    AttributedRange {
                        clock: 1,
                        len: 1,
                        attrs: vec![Attribute::new("insert", "u")],
                    },
                ],
            }],
        };
        let mut buf = Vec::new();
        map.encode(&mut buf);
        // client, ranges, (gap, len-1, 1 attr, new #0, new name #0 "insert", "u"), (gap, len-1, 1 attr, #0)
        let mut expected = vec![1, 1, 2, 0, 0, 1, 0, 0, 6];
        expected.extend_from_slice(b"insert");
        expected.extend_from_slice(&[0x77, 1, b'u', 0, 0, 1, 0]);
        assert_eq!(buf, expected);
    }

    #[test]
    fn attribute_index_beyond_the_table_is_rejected() {
        // One client, one range with attribute index 1 while the table is empty.
        let bytes = Bytes::from_static(&[1, 5, 1, 0, 0, 1, 1, 0, 1, b'a', 0x7e, 0]);
        assert_eq!(
            ContentMap::decode(bytes),
            Err(DecodeError::OutOfRange {
                field: "attribute index"
            })
        );
        // Name index 1 while the name table is empty.
        let bytes = Bytes::from_static(&[1, 5, 1, 0, 0, 1, 0, 1, 1, b'a', 0x7e, 0]);
        assert_eq!(
            ContentMap::decode(bytes),
            Err(DecodeError::OutOfRange {
                field: "attribute name index"
            })
        );
    }

    #[test]
    fn inexpressible_ranges_encode_as_the_nearest_valid_ones() {
        let set = IdSet {
            clients: vec![ClientIds {
                client: 1,
                ranges: vec![
                    IdRange { clock: 5, len: 0 },
                    IdRange { clock: 2, len: 2 },
                    IdRange { clock: 10, len: 1 },
                ],
            }],
        };
        let mut buf = Vec::new();
        set.encode(&mut buf);
        let decoded = IdSet::read(&mut Reader::new(Bytes::from(buf))).unwrap();
        let ranges: Vec<_> = decoded.clients[0]
            .ranges
            .iter()
            .map(|r| (r.clock, r.len))
            .collect();
        assert_eq!(ranges, [(5, 1), (6, 2), (10, 1)]);
    }

    #[test]
    fn range_end_overflow_is_an_error() {
        // Ranges whose gaps add up past u64::MAX.
        let mut bytes = vec![1, 1];
        write_var_uint(&mut bytes, 2100);
        for _ in 0..2100 {
            bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0]);
        }
        bytes.push(0);
        assert!(matches!(
            ContentIds::decode(Bytes::from(bytes)),
            Err(DecodeError::OutOfRange { .. })
        ));
    }

    proptest! {
        #[test]
        fn content_ids_round_trip(
            clients in proptest::collection::vec(
                (any::<u32>(), proptest::collection::vec((0u64..100, 1u64..100), 0..4)),
                0..4,
            ),
        ) {
            let mut clients: Vec<ClientIds> = clients
                .into_iter()
                .map(|(client, gaps)| {
                    let mut end = 0;
                    let ranges = gaps
                        .into_iter()
                        .map(|(gap, len)| {
                            let range = IdRange { clock: end + gap, len };
                            end = range.clock + len;
                            range
                        })
                        .collect();
                    ClientIds { client: u64::from(client), ranges }
                })
                .collect();
            clients.sort_by_key(|c| std::cmp::Reverse(c.client));
            let ids = ContentIds { inserts: IdSet { clients: clients.clone() }, deletes: IdSet { clients } };
            prop_assert_eq!(ContentIds::decode(ids.to_bytes())?, ids);
        }

        #[test]
        fn any_bytes_decode_or_fail(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = ContentIds::decode(Bytes::from(bytes.clone()));
            let _ = ContentMap::decode(Bytes::from(bytes));
        }
    }
}
