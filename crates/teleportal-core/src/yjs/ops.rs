//! yjs's update functions (`mergeUpdates`, `diffUpdate`, `encodeStateVectorFromUpdate`,
//! `parseUpdateMeta`, `convertUpdateFormat`), written to give the bytes yjs gives, and
//! [`compact`], which also joins items yjs would join once it had them in a document.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::coder::{Decoder, Encoder};
use super::cursor::{Cursor, write_var_uint};
use super::delete_set::DeleteSet;
use super::structs::{Content, Item, Struct, StructReader, slice_struct, write_struct};
use super::{Id, UpdateError, UpdateMeta};

/// yjs's `LazyStructWriter`: structs grouped in runs of one client, each run behind its
/// struct count.
struct StructWriter<E: Encoder> {
    encoder: E,
    client: u64,
    written: u64,
    runs: Vec<(u64, Vec<u8>)>,
}

impl<E: Encoder> StructWriter<E> {
    fn new() -> Self {
        StructWriter {
            encoder: E::default(),
            client: 0,
            written: 0,
            runs: Vec::new(),
        }
    }

    fn write(&mut self, s: &Struct<'_>, offset: u64) -> Result<(), UpdateError> {
        let id = s.id();
        if self.written > 0 && self.client != id.client {
            self.flush();
        }
        if self.written == 0 {
            self.client = id.client;
            self.encoder.write_client(id.client);
            write_var_uint(self.encoder.rest(), id.clock + offset);
        }
        write_struct(&mut self.encoder, s, offset)?;
        self.written += 1;
        Ok(())
    }

    fn flush(&mut self) {
        if self.written > 0 {
            let run = std::mem::take(self.encoder.rest());
            self.runs.push((self.written, run));
            self.written = 0;
        }
    }

    /// The encoder with every struct in place; the delete set comes next.
    fn finish(mut self) -> E {
        self.flush();
        let rest = self.encoder.rest();
        write_var_uint(rest, self.runs.len() as u64);
        for (count, bytes) in &self.runs {
            write_var_uint(rest, *count);
            rest.extend_from_slice(bytes);
        }
        self.encoder
    }
}

/// Where a merge puts its structs: straight into the writer, or through [`Joiner`].
enum Sink<'a, E: Encoder> {
    Exact(StructWriter<E>),
    Compact(Joiner<'a, E>),
}

impl<'a, E: Encoder> Sink<'a, E> {
    fn write(&mut self, s: Struct<'a>) -> Result<(), UpdateError> {
        match self {
            Sink::Exact(w) => w.write(&s, 0),
            Sink::Compact(j) => j.write(s),
        }
    }

    fn finish(self) -> Result<E, UpdateError> {
        Ok(match self {
            Sink::Exact(w) => w.finish(),
            Sink::Compact(j) => j.finish()?,
        })
    }
}

/// Joins each item with the next when yjs would hold them as one item in a document: the next
/// continues the same client's clock, is inserted right after it (its origin is the last
/// unit) before the same right origin, and holds content of the same kind that can grow.
/// Map entries (items with a key) are left alone.
struct Joiner<'a, E: Encoder> {
    writer: StructWriter<E>,
    pending: Option<Struct<'a>>,
}

impl<'a, E: Encoder> Joiner<'a, E> {
    fn write(&mut self, s: Struct<'a>) -> Result<(), UpdateError> {
        if let (Some(Struct::Item(left)), Struct::Item(right)) = (&mut self.pending, &s)
            && joinable(left, right)
        {
            join(left, &s)?;
            return Ok(());
        }
        if let Some(p) = self.pending.replace(s) {
            self.writer.write(&p, 0)?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<E, UpdateError> {
        if let Some(p) = self.pending.take() {
            self.writer.write(&p, 0)?;
        }
        Ok(self.writer.finish())
    }
}

fn joinable(left: &Item<'_>, right: &Item<'_>) -> bool {
    let end = left.id.clock + left.content.len();
    left.parent_sub.is_none()
        && right.parent_sub.is_none()
        && right.id.client == left.id.client
        && right.id.clock == end
        && right.origin
            == Some(Id {
                client: left.id.client,
                clock: end - 1,
            })
        && right.right_origin == left.right_origin
        && matches!(
            (&left.content, &right.content),
            (Content::String { .. }, Content::String { .. })
                | (Content::Any { .. }, Content::Any { .. })
                | (Content::Json(_), Content::Json(_))
                | (Content::Deleted(_), Content::Deleted(_))
        )
}

fn join<'a>(left: &mut Item<'a>, right: &Struct<'a>) -> Result<(), UpdateError> {
    let Struct::Item(right) = right else {
        unreachable!("joinable checked")
    };
    match (&mut left.content, &right.content) {
        (Content::String { text, units }, Content::String { text: r, units: ru }) => {
            text.to_mut().push_str(r);
            *units += ru;
        }
        (
            Content::Any { count, values },
            Content::Any {
                count: rc,
                values: r,
            },
        ) => {
            values.to_mut().extend_from_slice(r);
            *count += rc;
        }
        (Content::Json(values), Content::Json(r)) => values.extend(r.iter().cloned()),
        (Content::Deleted(n), Content::Deleted(r)) => *n += r,
        _ => unreachable!("joinable checked"),
    }
    Ok(())
}

fn cur<'r, 'a, D: Decoder<'a>>(readers: &'r [StructReader<'a, D>], i: usize) -> &'r Struct<'a> {
    readers[i]
        .curr
        .as_ref()
        .expect("only readers with a struct are sorted")
}

/// The comparison yjs's merge sorts its readers with. It is not a consistent order: a `GC`
/// and an `Item` at the same clock each compare less than the other, so which comes first
/// depends on how the sort calls it; [`v8_sort`] calls it as V8 does.
fn yjs_compare(a: &Struct<'_>, b: &Struct<'_>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (ia, ib) = (a.id(), b.id());
    if ia.client != ib.client {
        return ib.client.cmp(&ia.client);
    }
    if ia.clock != ib.clock {
        return ia.clock.cmp(&ib.clock);
    }
    let kind = |s: &Struct<'_>| match s {
        Struct::Gc { .. } => 0,
        Struct::Skip { .. } => 1,
        Struct::Item(_) => 2,
    };
    if kind(a) == kind(b) {
        Ordering::Equal
    } else if a.is_skip() {
        Ordering::Greater
    } else {
        Ordering::Less
    }
}

/// Below this many elements V8's `Array.prototype.sort` is one run: `CountAndMakeRun`, then
/// binary insertion. Merges of more updates are sorted stably by [`merge_key`], which agrees
/// with yjs except in the order of a `GC` and an `Item` at one clock.
const V8_MIN_MERGE: usize = 64;

/// V8's sort of fewer than [`V8_MIN_MERGE`] elements, comparison for comparison, so an
/// inconsistent comparison orders as it does in yjs.
fn v8_sort(a: &mut [usize], mut cmp: impl FnMut(usize, usize) -> std::cmp::Ordering) {
    use std::cmp::Ordering::Less;
    let n = a.len();
    if n < 2 {
        return;
    }
    debug_assert!(n < V8_MIN_MERGE);
    // CountAndMakeRun: the longest ascending (or strictly descending, then reversed) prefix.
    let mut run = 2;
    let descending = cmp(a[1], a[0]) == Less;
    while run < n {
        let order = cmp(a[run], a[run - 1]);
        if descending != (order == Less) {
            break;
        }
        run += 1;
    }
    if descending {
        a[..run].reverse();
    }
    // BinaryInsertionSort of the rest into the run.
    for start in run..n {
        let pivot = a[start];
        let (mut left, mut right) = (0, start);
        while left < right {
            let mid = left + ((right - left) >> 1);
            if cmp(pivot, a[mid]) == Less {
                right = mid;
            } else {
                left = mid + 1;
            }
        }
        a.copy_within(left..start, left + 1);
        a[left] = pivot;
    }
}

/// A reader in the heap: its [`merge_key`], when it last moved (reversed) and its index.
type HeapEntry = (Reverse<u64>, u64, Reverse<u64>, usize);

/// The readers that still have a struct, in the order yjs's merge takes them: it sorts them
/// again each round, after only the front one has moved.
enum Queue {
    /// Few readers: V8's sort, comparison for comparison.
    Exact(Vec<usize>),
    /// Many: a heap by [`merge_key`]; among equal keys the reader that moved last comes
    /// first, as in a stable sort of a list whose front moved.
    Heap {
        heap: BinaryHeap<Reverse<HeapEntry>>,
        moves: u64,
    },
}

impl Queue {
    fn new<'a, D: Decoder<'a>>(readers: &[StructReader<'a, D>]) -> Self {
        let mut order: Vec<usize> = (0..readers.len())
            .filter(|&i| readers[i].curr.is_some())
            .collect();
        if order.len() < V8_MIN_MERGE {
            v8_sort(&mut order, |a, b| {
                yjs_compare(cur(readers, a), cur(readers, b))
            });
            return Queue::Exact(order);
        }
        let n = readers.len() as u64;
        let heap = order
            .iter()
            .map(|&i| {
                let (client, clock) = merge_key(cur(readers, i));
                // Earlier updates first among equals: as if they had moved more recently.
                Reverse((client, clock, Reverse(n - i as u64), i))
            })
            .collect();
        Queue::Heap { heap, moves: n + 1 }
    }

    fn front(&self) -> Option<usize> {
        match self {
            Queue::Exact(order) => order.first().copied(),
            Queue::Heap { heap, .. } => heap.peek().map(|Reverse(entry)| entry.3),
        }
    }

    /// The front reader moved on: put it where yjs's sort puts it.
    fn moved_front<'a, D: Decoder<'a>>(&mut self, readers: &[StructReader<'a, D>]) {
        match self {
            Queue::Exact(order) => {
                order.retain(|&i| readers[i].curr.is_some());
                v8_sort(order, |a, b| yjs_compare(cur(readers, a), cur(readers, b)));
            }
            Queue::Heap { heap, moves } => {
                let Some(Reverse((_, _, _, front))) = heap.pop() else {
                    return;
                };
                if let Some(s) = &readers[front].curr {
                    let (client, clock) = merge_key(s);
                    *moves += 1;
                    heap.push(Reverse((client, clock, Reverse(*moves), front)));
                }
            }
        }
    }
}

/// The order yjs's merge keeps its readers in: higher clients first, then lower clocks.
fn merge_key(s: &Struct<'_>) -> (Reverse<u64>, u64) {
    let id = s.id();
    (Reverse(id.client), id.clock)
}

fn open<'a, D: Decoder<'a>>(
    update: &'a [u8],
    filter_skips: bool,
) -> Result<StructReader<'a, D>, UpdateError> {
    StructReader::new(D::open(update)?, update.len(), filter_skips)
}

/// `mergeUpdatesV2`, or with `compact` the same merge with items joined.
pub(crate) fn merge<'a, D: Decoder<'a>, E: Encoder>(
    updates: &[&'a [u8]],
    compact: bool,
) -> Result<Vec<u8>, UpdateError> {
    if updates.len() == 1 && !compact {
        // yjs returns a single update as it is, without reading it; we check it.
        open::<D>(updates[0], false)?;
        return Ok(updates[0].to_vec());
    }
    let mut readers = updates
        .iter()
        .map(|u| open::<D>(u, true))
        .collect::<Result<Vec<_>, _>>()?;
    let mut queue = Queue::new(&readers);
    let writer = StructWriter::<E>::new();
    let mut sink = if compact {
        Sink::Compact(Joiner {
            writer,
            pending: None,
        })
    } else {
        Sink::Exact(writer)
    };
    let mut curr_write: Option<Struct<'a>> = None;
    let mut first_round = true;
    loop {
        if !first_round {
            queue.moved_front(&readers);
        }
        first_round = false;
        let Some(di) = queue.front() else { break };
        let first_client = readers[di].curr.as_ref().expect("kept").id().client;

        if let Some(cw) = &mut curr_write {
            let mut iterated = false;
            while let Some(c) = &readers[di].curr {
                if c.end() <= cw.end() && c.id().client >= cw.id().client {
                    readers[di].advance()?;
                    iterated = true;
                } else {
                    break;
                }
            }
            let Some(c) = &readers[di].curr else { continue };
            if c.id().client != first_client || (iterated && c.id().clock > cw.end()) {
                continue;
            }
            if first_client != cw.id().client {
                let next = readers[di].curr.take().expect("checked");
                sink.write(std::mem::replace(cw, next))?;
                readers[di].advance()?;
            } else if cw.end() < c.id().clock {
                if let Struct::Skip { id, len } = cw {
                    *len = c.end() - id.clock;
                } else {
                    let gap_start = cw.end();
                    let gap = Struct::Skip {
                        id: Id {
                            client: first_client,
                            clock: gap_start,
                        },
                        len: c.id().clock - gap_start,
                    };
                    sink.write(std::mem::replace(cw, gap))?;
                }
            } else {
                let diff = cw.end() - c.id().clock;
                let cw_is_skip = cw.is_skip();
                if let Struct::Skip { len, .. } = cw
                    && diff > 0
                {
                    *len = len
                        .checked_sub(diff)
                        .filter(|l| *l > 0)
                        .ok_or(UpdateError::Unsupported("structs that overlap a gap"))?;
                }
                let both_gc = matches!((&*cw, c), (Struct::Gc { .. }, Struct::Gc { .. }));
                if both_gc {
                    // GC.mergeWith: the collected range grows; the reader stays where it is.
                    let add = c.len() - if cw_is_skip { 0 } else { diff };
                    if let Struct::Gc { len, .. } = cw {
                        *len += add;
                    }
                } else {
                    let c = readers[di].curr.take().expect("checked");
                    let c = if diff > 0 && !cw_is_skip {
                        slice_struct(&c, diff)?
                    } else {
                        c
                    };
                    sink.write(std::mem::replace(cw, c))?;
                    readers[di].advance()?;
                }
            }
        } else {
            curr_write = readers[di].curr.take();
            readers[di].advance()?;
        }
        let cw = curr_write.as_mut().expect("set above");
        while let Some(next) = &readers[di].curr {
            if next.id().client == first_client && next.id().clock == cw.end() && !next.is_skip() {
                let next = readers[di].curr.take().expect("checked");
                sink.write(std::mem::replace(cw, next))?;
                readers[di].advance()?;
            } else {
                break;
            }
        }
    }
    if let Some(cw) = curr_write {
        sink.write(cw)?;
    }
    let mut encoder = sink.finish()?;
    let sets = readers
        .iter_mut()
        .map(|r| DeleteSet::read(&mut r.decoder))
        .collect::<Result<Vec<_>, _>>()?;
    DeleteSet::merge(sets).write(&mut encoder)?;
    Ok(encoder.finish())
}

/// `decodeStateVector`: later entries for a client win.
fn read_state_vector(sv: &[u8]) -> Result<HashMap<u64, u64>, UpdateError> {
    let mut cur = Cursor::new(sv);
    let n = cur.read_var_uint("state vector length")?;
    let mut state = HashMap::new();
    for _ in 0..n {
        let client = cur.read_var_uint("state vector client")?;
        let clock = cur.read_var_uint("state vector clock")?;
        state.insert(client, clock);
    }
    Ok(state)
}

/// `diffUpdateV2`.
pub(crate) fn diff<'a, D: Decoder<'a>, E: Encoder>(
    update: &'a [u8],
    sv: &[u8],
) -> Result<Vec<u8>, UpdateError> {
    let state = read_state_vector(sv)?;
    let mut writer = StructWriter::<E>::new();
    let mut reader = open::<D>(update, false)?;
    while let Some(curr) = &reader.curr {
        if curr.is_skip() {
            reader.advance()?;
            continue;
        }
        let client = curr.id().client;
        let sv_clock = state.get(&client).copied().unwrap_or(0);
        if curr.end() > sv_clock {
            writer.write(curr, sv_clock.saturating_sub(curr.id().clock))?;
            reader.advance()?;
            while let Some(c) = &reader.curr {
                if c.id().client != client {
                    break;
                }
                writer.write(c, 0)?;
                reader.advance()?;
            }
        } else {
            while let Some(c) = &reader.curr {
                if c.id().client != client || c.end() > sv_clock {
                    break;
                }
                reader.advance()?;
            }
        }
    }
    let mut encoder = writer.finish();
    DeleteSet::read(&mut reader.decoder)?.write(&mut encoder)?;
    Ok(encoder.finish())
}

/// `encodeStateVectorFromUpdateV2`: how far each client's structs run without a gap from
/// clock 0 (the same bytes for both encodings).
pub(crate) fn state_vector<'a, D: Decoder<'a>>(update: &'a [u8]) -> Result<Vec<u8>, UpdateError> {
    let mut reader = open::<D>(update, false)?;
    let mut entries = Vec::new();
    if let Some(first) = &reader.curr {
        let mut client = first.id().client;
        let mut stop = first.id().clock != 0;
        let mut clock = if stop { 0 } else { first.end() };
        while let Some(curr) = &reader.curr {
            if client != curr.id().client {
                if clock != 0 {
                    entries.push((client, clock));
                }
                client = curr.id().client;
                clock = 0;
                stop = curr.id().clock != 0;
            }
            if curr.is_skip() {
                stop = true;
            }
            if !stop {
                clock = curr.end();
            }
            reader.advance()?;
        }
        if clock != 0 {
            entries.push((client, clock));
        }
    }
    // yjs reads no further; we check the delete set too, so a broken update is an error.
    DeleteSet::read(&mut reader.decoder)?;
    let mut out = Vec::new();
    write_var_uint(&mut out, entries.len() as u64);
    for (client, clock) in entries {
        write_var_uint(&mut out, client);
        write_var_uint(&mut out, clock);
    }
    Ok(out)
}

/// `parseUpdateMetaV2`.
pub(crate) fn meta<'a, D: Decoder<'a>>(update: &'a [u8]) -> Result<UpdateMeta, UpdateError> {
    let mut reader = open::<D>(update, false)?;
    let mut from = OrderedMap::default();
    let mut to = OrderedMap::default();
    if let Some(first) = &reader.curr {
        let mut client = first.id().client;
        let mut clock = first.id().clock;
        from.set(client, clock);
        while let Some(curr) = &reader.curr {
            if client != curr.id().client {
                to.set(client, clock);
                from.set(curr.id().client, curr.id().clock);
                client = curr.id().client;
            }
            clock = curr.end();
            reader.advance()?;
        }
        to.set(client, clock);
    }
    DeleteSet::read(&mut reader.decoder)?;
    Ok(UpdateMeta {
        from: from.entries,
        to: to.entries,
    })
}

/// A JavaScript `Map` of clocks: insertion order, a later `set` replaces the value in place.
#[derive(Default)]
struct OrderedMap {
    entries: Vec<(u64, u64)>,
    index: HashMap<u64, usize>,
}

impl OrderedMap {
    fn set(&mut self, k: u64, v: u64) {
        match self.index.get(&k) {
            Some(&i) => self.entries[i].1 = v,
            None => {
                self.index.insert(k, self.entries.len());
                self.entries.push((k, v));
            }
        }
    }
}

/// `convertUpdateFormat` without a transformer: every struct and the delete set as read.
pub(crate) fn convert<'a, D: Decoder<'a>, E: Encoder>(
    update: &'a [u8],
) -> Result<Vec<u8>, UpdateError> {
    let mut reader = open::<D>(update, false)?;
    let mut writer = StructWriter::<E>::new();
    while let Some(curr) = &reader.curr {
        writer.write(curr, 0)?;
        reader.advance()?;
    }
    let mut encoder = writer.finish();
    DeleteSet::read(&mut reader.decoder)?.write(&mut encoder)?;
    Ok(encoder.finish())
}
