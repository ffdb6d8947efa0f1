// yjs itself as the oracle for teleportal_core::yjs (crates/teleportal-core/tests/yjs_oracle.rs).
//
//   node yjs-oracle.mjs --cases N --seed S [--skip K]   cases K..K+N-1, one JSON line each
//   node yjs-oracle.mjs --seed S --only K                case K alone (what a failure names)
//   node yjs-oracle.mjs --serve                          answer calls on stdin (see `serve`)
//
// A case is a pure function of (seed, index): its own mulberry32 stream, explicit client ids
// and subdocument guids, so `--only K` rebuilds case K without generating the cases before it.
//
// Each case runs 2..4 concurrent Y.Docs (some with gc: false, client ids from 0..3 up to
// 2^32-1) through random edits of the roots `t` (Y.Text), `m` (Y.Map), `a` (Y.Array) and `x`
// (Y.XmlFragment) and of the types nested in them, and partial syncs between them (some of a
// peer's updates, out of order, as V1 or V2; or a state-vector diff). Every `update` and
// `updateV2` event is collected as a pair, as are `encodeStateAsUpdate` snapshots (whole, or
// against a peer's state vector).
//
// The V2 inputs are yjs's own V2 encodings of the same changes (the `updateV2` events,
// `encodeStateAsUpdateV2`, `mergeUpdatesV2`), not `convertUpdateFormatV1ToV2` of the V1 ones,
// so both decoders see what real V2 clients send.
//
// Output fields (hex strings unless said otherwise):
//   seed, index, inputs: how many raw inputs (before duplication), nested: whether a merge of
//     merges is among them
//   updates_v1, updates_v2: the same updates, shuffled, some repeated, some merged already
//   state_vector: V1 state vector of a partly synced doc, a perturbed one, or the empty one
//   merge_v1 = mergeUpdates(updates_v1), merge_v2 = mergeUpdatesV2(updates_v2)
//   diff_v1 = diffUpdate(merge_v1, state_vector), diff_v2 = diffUpdateV2(merge_v2, ...)
//   sv_v1 = encodeStateVectorFromUpdate(merge_v1), sv_v2 = ...V2(merge_v2)
//   v1_to_v2 = convertUpdateFormatV1ToV2(merge_v1), v2_to_v1 = ...V2ToV1(merge_v2)
//   meta_v1 = parseUpdateMeta(merge_v1), meta_v2 = parseUpdateMetaV2(merge_v2), each
//     {from: [[client, clock], ...], to: [...]} in the Maps' insertion order
//   each: the same single-update functions on the first few raw inputs: {sv_v1, sv_v2,
//     diff_v1, diff_v2, v1_to_v2, v2_to_v1, meta_v1, meta_v2}, arrays parallel to
//     updates_v1[0..n]
//   apply_v1 / apply_v2: a fresh Y.Doc after applyUpdate(merge_v1) / applyUpdateV2(merge_v2):
//     {state: encodeStateAsUpdate(doc), json: see `docJson`, pending: whether yjs holds
//     structs or deletes it could not integrate}
// A yjs call that throws gives {"error": message} in place of its result.
import * as Y from 'yjs'
import { createInterface } from 'node:readline'

// ---------------------------------------------------------------------------------------------
// Seeded randomness

const mulberry32 = (a) => () => {
  a = (a + 0x6d2b79f5) | 0
  let t = Math.imul(a ^ (a >>> 15), 1 | a)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

// One 32-bit seed per (seed, index): a murmur3-style finalizer over both halves of the seed.
const caseSeed = (seed, index) => {
  const mix = (h) => {
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
    return (h ^ (h >>> 16)) >>> 0
  }
  const lo = Number(seed & 0xffffffffn)
  const hi = Number((seed >> 32n) & 0xffffffffn)
  return mix(mix(mix(lo) ^ hi) ^ Math.imul(index + 1, 0x9e3779b1))
}

class Rng {
  constructor (seed) { this.next = mulberry32(seed) }
  int (n) { return Math.floor(this.next() * n) } // 0..n-1
  range (lo, hi) { return lo + this.int(hi - lo + 1) } // lo..=hi
  chance (p) { return this.next() < p }
  pick (xs) { return xs[this.int(xs.length)] }
  u32 () { return this.int(0x100000000) }
  shuffle (xs) {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      ;[xs[i], xs[j]] = [xs[j], xs[i]]
    }
    return xs
  }
}

// ---------------------------------------------------------------------------------------------
// Values

// Snippets: ASCII, 2- and 3-byte UTF-8, astral (UTF-16 surrogate pairs), ZWJ sequences,
// JSON-escaped characters, U+2028, an empty string.
const SNIPPETS = ['a', 'bc', 'hello ', 'x', 'é', 'ñü', '日本語', 'ключ', '😀', '👩‍👩‍👧', '𝄞',
  '🇩🇪', 'a😀b', '\n', '"', '\\', '\t', '\u0000', '\u001f', '\u007f', '\u2028', ' ', '']
const LONE = ['\ud83d', '\ude00'] // lone surrogates: encoders write them as U+FFFD

const str = (r, lone = false) => {
  let s = ''
  const n = r.range(1, 4)
  for (let i = 0; i < n; i++) s += r.pick(SNIPPETS)
  if (lone && r.chance(0.03)) s += r.pick(LONE)
  if (r.chance(0.02)) s += 'z'.repeat(r.range(20, 200))
  return s
}

// Numbers where encoders differ: varint vs float32 vs float64, -0, the int range edges, and
// numbers whose JS spelling differs from other languages' (1e+21, 1e-7, 5e-324).
const NUMBERS = [0, 1, -1, 7, 63, 64, -64, -65, 127, 128, 255, 256, 1000, -1000, 2 ** 31 - 1,
  -(2 ** 31 - 1), 2 ** 31, -(2 ** 31), 2 ** 32, 2 ** 53, -(2 ** 53), Number.MAX_SAFE_INTEGER,
  0.5, -0.25, 1 / 3, 0.1 + 0.2, 3.14159, 1e300, -1e300, 1e21, 1e-7, 5e-324, 123.456,
  Number.MAX_VALUE, 16777217, 1.5e10]
const num = (r) => {
  if (r.chance(0.05)) return -0
  if (r.chance(0.4)) return r.range(-100, 1000)
  return r.pick(NUMBERS)
}

const BIGINTS = [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n + 1n, 12345678901234n]
const bigint = (r) => r.chance(0.5) ? BigInt(r.range(-1000, 1000)) : r.pick(BIGINTS)

// Object keys, integer-like ones included: JS orders those first, whatever the insertion order.
const OBJ_KEYS = ['a', 'b', 'key', 'ключ', '😀', '', '1', '10', '2', 'x y', '$', '"q"']
const MAP_KEYS = ['a', 'b', 'c', 'k', 'ключ', '😀', '', '0', 'long-key-name', 'a.b']

// A value `Y.Map`/`Y.Array` can hold: anything lib0's writeAny takes.
const anyValue = (r, depth = 0) => {
  const k = r.int(depth > 2 ? 9 : 11)
  switch (k) {
    case 0: case 1: return num(r)
    case 2: return str(r, true)
    case 3: return r.chance(0.5)
    case 4: return null
    case 5: return undefined
    case 6: return bigint(r)
    case 7: {
      const n = r.chance(0.1) ? 0 : r.range(1, r.chance(0.1) ? 300 : 8)
      return Uint8Array.from({ length: n }, () => r.int(256))
    }
    case 8: return str(r)
    case 9: {
      const o = {}
      const n = r.range(0, 4)
      for (let i = 0; i < n; i++) o[r.pick(OBJ_KEYS)] = anyValue(r, depth + 1)
      return o
    }
    default: return Array.from({ length: r.range(0, 4) }, () => anyValue(r, depth + 1))
  }
}

// A value that goes through JSON in V1 (format attributes, embeds): no undefined, bigint or
// binary.
const jsonValue = (r, depth = 0) => {
  const k = r.int(depth > 2 ? 5 : 7)
  switch (k) {
    case 0: return num(r)
    case 1: return str(r)
    case 2: return r.chance(0.5)
    case 3: return null
    case 4: return r.range(0, 10)
    case 5: {
      const o = {}
      const n = r.range(0, 3)
      for (let i = 0; i < n; i++) o[r.pick(OBJ_KEYS)] = jsonValue(r, depth + 1)
      return o
    }
    default: return Array.from({ length: r.range(0, 3) }, () => jsonValue(r, depth + 1))
  }
}

const FORMAT_KEYS = ['bold', 'italic', 'href', 'color', 'size', 'obj', 'ключ']
const attrs = (r) => {
  const o = {}
  const n = r.range(1, 2)
  for (let i = 0; i < n; i++) {
    const key = r.pick(FORMAT_KEYS)
    switch (r.int(6)) {
      case 0: o[key] = true; break
      case 1: o[key] = null; break // null removes the attribute
      case 2: o[key] = str(r); break
      case 3: o[key] = num(r); break
      case 4: o[key] = false; break
      default: o[key] = jsonValue(r, 2); break
    }
  }
  return o
}
const embed = (r) => {
  const o = { [r.pick(['image', 'formula', 'mention', 'x'])]: jsonValue(r, 1) }
  if (r.chance(0.3)) o[r.pick(OBJ_KEYS)] = jsonValue(r, 1)
  return o
}

// ---------------------------------------------------------------------------------------------
// Docs and edits

const ROOTS = { t: Y.Text, m: Y.Map, a: Y.Array, x: Y.XmlFragment }

// Every live shared type of `doc`, in a fixed order, roots first.
const liveTypes = (doc) => {
  const out = []
  const visit = (type, depth) => {
    out.push(type)
    if (depth > 6 || out.length > 60) return
    let children = []
    if (type instanceof Y.Map) children = Array.from(type.values())
    else if (type instanceof Y.Array || type instanceof Y.XmlFragment) children = type.toArray()
    for (const c of children) if (c instanceof Y.AbstractType) visit(c, depth + 1)
  }
  for (const name of Object.keys(ROOTS)) visit(doc.get(name, ROOTS[name]), 0)
  return out
}

// A new shared type (or subdocument) to nest somewhere; sometimes with prelim content.
const newType = (c, r, inXml) => {
  if (inXml) {
    if (r.chance(0.5)) {
      const el = new Y.XmlElement(r.pick(['p', 'div', 'span', 'h1', 'li']))
      if (r.chance(0.3)) el.setAttribute(r.pick(['class', 'id', 'data-x']), str(r))
      return el
    }
    const t = new Y.XmlText()
    if (r.chance(0.4)) t.insert(0, str(r), r.chance(0.3) ? attrs(r) : undefined)
    return t
  }
  switch (r.int(10)) {
    case 0: case 1: case 2: {
      const m = new Y.Map()
      if (r.chance(0.4)) m.set(r.pick(MAP_KEYS), anyValue(r))
      return m
    }
    case 3: case 4: case 5: {
      const a = new Y.Array()
      if (r.chance(0.4)) a.insert(0, [arrayValue(r), arrayValue(r)])
      return a
    }
    case 6: case 7: {
      const t = new Y.Text()
      if (r.chance(0.4)) t.insert(0, str(r))
      return t
    }
    case 8: return r.chance(0.5) ? new Y.XmlText() : new Y.XmlElement('node')
    default: return subdoc(c, r)
  }
}

const subdoc = (c, r) => {
  const opts = { guid: `sub-${c.subdocs++}-${r.u32().toString(16)}` }
  if (r.chance(0.4)) opts.autoLoad = true
  if (r.chance(0.4)) opts.meta = r.chance(0.5) ? jsonValue(r, 1) : { name: str(r) }
  if (r.chance(0.2)) opts.gc = false
  return new Y.Doc(opts)
}

// Y.Array takes no top-level undefined or bigint (its insert switches on the constructor);
// Y.Map and values nested in objects and arrays do.
const arrayValue = (r) => {
  const v = anyValue(r)
  return v === undefined ? null : typeof v === 'bigint' ? [v] : v
}
const valueOrType = (c, r, p, inArray) => r.chance(p) ? newType(c, r, false) : inArray ? arrayValue(r) : anyValue(r)

const editText = (c, r, t) => {
  const len = t.length
  const at = r.int(len + 1)
  switch (r.int(10)) {
    case 0: case 1: case 2: case 3:
      t.insert(at, str(r, true), r.chance(0.3) ? attrs(r) : undefined)
      break
    case 4: case 5:
      if (len > 0) t.delete(r.int(len), r.range(1, Math.min(len, 6)))
      break
    case 6: case 7:
      if (len > 0) {
        const from = r.int(len)
        t.format(from, r.range(1, len - from), attrs(r))
      }
      break
    case 8:
      t.insertEmbed(at, embed(r), r.chance(0.3) ? attrs(r) : undefined)
      break
    default:
      if (r.chance(0.3)) {
        // A shared type as an embed: ContentType inside text.
        const m = new Y.Map()
        m.set('k', anyValue(r))
        t.insertEmbed(at, m)
      } else {
        // Astral characters, then an insert that may land between their surrogates.
        t.insert(at, r.pick(['😀😀', '𝄞x', '👩‍👩‍👧', '🇩🇪🇫🇷']))
        t.insert(at + r.range(0, 4), r.pick(['|', 'é', '😀']))
      }
  }
}

const editMap = (c, r, m) => {
  const keys = Array.from(m.keys())
  if (keys.length > 0 && r.chance(0.25)) m.delete(r.pick(keys))
  else m.set(r.pick(MAP_KEYS), valueOrType(c, r, 0.25))
}

const editArray = (c, r, a) => {
  const len = a.length
  switch (r.int(6)) {
    case 0: case 1:
      a.insert(r.int(len + 1), Array.from({ length: r.range(1, 4) }, () => valueOrType(c, r, 0.2, true)))
      break
    case 2:
      a.push([valueOrType(c, r, 0.2, true)])
      break
    case 3:
      a.unshift([arrayValue(r)])
      break
    default:
      if (len > 0) {
        const at = r.int(len)
        a.delete(at, r.range(1, Math.min(len - at, 4)))
      }
  }
}

const editXml = (c, r, x) => {
  const len = x.length
  if (x instanceof Y.XmlElement && r.chance(0.3)) {
    const name = r.pick(['class', 'id', 'data-x', 'style'])
    if (r.chance(0.2)) x.removeAttribute(name)
    else x.setAttribute(name, r.chance(0.8) ? str(r) : anyValue(r))
  } else if (len > 0 && r.chance(0.25)) {
    const at = r.int(len)
    x.delete(at, r.range(1, Math.min(len - at, 3)))
  } else {
    x.insert(r.int(len + 1), Array.from({ length: r.range(1, 2) }, () => newType(c, r, true)))
  }
}

const edit = (c, r, doc) => {
  const types = liveTypes(doc)
  // Roots half the time, so they keep growing; nested types the other half.
  const t = r.chance(0.5) ? types[r.int(Math.min(4, types.length))] : r.pick(types)
  if (t instanceof Y.Text) editText(c, r, t) // Y.XmlText too
  else if (t instanceof Y.Map) editMap(c, r, t) // Y.XmlHook too
  else if (t instanceof Y.Array) editArray(c, r, t)
  else if (t instanceof Y.XmlFragment) editXml(c, r, t) // Y.XmlElement too
}

// ---------------------------------------------------------------------------------------------
// Encoded results

const hex = (u8) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('hex')
const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'))

const metaJson = ({ from, to }) => ({ from: Array.from(from.entries()), to: Array.from(to.entries()) })

// Plain JSON for a doc's contents, richer than toJSON: text as deltas with attributes, XML
// with names and attributes, and the values JSON cannot spell (bigint, bytes, undefined, -0,
// subdocuments) tagged. Map keys sorted: the order yjs integrates entries in is no content.
const plain = (v) => {
  if (v instanceof Y.Text) {
    const delta = v.toDelta().map((d) => {
      const o = { insert: typeof d.insert === 'string' ? d.insert : plain(d.insert) }
      if (d.attributes) o.attributes = plain(d.attributes)
      return o
    })
    return { [v instanceof Y.XmlText ? '$xmltext' : '$text']: delta }
  }
  if (v instanceof Y.XmlElement) {
    return { $xml: v.nodeName, attrs: plain(v.getAttributes()), children: v.toArray().map(plain) }
  }
  if (v instanceof Y.XmlHook) return { $hook: v.hookName, map: plainMap(v) }
  if (v instanceof Y.XmlFragment) return { $fragment: v.toArray().map(plain) }
  if (v instanceof Y.Map) return { $map: plainMap(v) }
  if (v instanceof Y.Array) return v.toArray().map(plain)
  if (v instanceof Y.Doc) {
    return { $doc: v.guid, meta: plain(v.meta), autoLoad: v.autoLoad, gc: v.gc }
  }
  if (v === undefined) return { $undefined: true }
  if (typeof v === 'bigint') return { $bigint: v.toString() }
  if (typeof v === 'number' && (Object.is(v, -0) || !Number.isFinite(v))) return { $number: Object.is(v, -0) ? '-0' : String(v) }
  if (v instanceof Uint8Array) return { $bytes: hex(v) }
  if (Array.isArray(v)) return v.map(plain)
  if (v !== null && typeof v === 'object') return Object.entries(v).map(([k, x]) => [k, plain(x)])
  return v
}
const plainMap = (m) => Array.from(m.entries()).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
  .map(([k, x]) => [k, plain(x)])

const docJson = (doc) => {
  const o = {}
  for (const name of Object.keys(ROOTS)) o[name] = plain(doc.get(name, ROOTS[name]))
  return JSON.stringify(o)
}

const applied = (update, v2) => {
  const doc = new Y.Doc({ guid: 'applied' })
  for (const name of Object.keys(ROOTS)) doc.get(name, ROOTS[name])
  if (v2) Y.applyUpdateV2(doc, update)
  else Y.applyUpdate(doc, update)
  return {
    state: hex(Y.encodeStateAsUpdate(doc)),
    json: docJson(doc),
    pending: doc.store.pendingStructs !== null || doc.store.pendingDs !== null
  }
}

// Every call the Rust side compares with, by name, on bytes; results are bytes, or plain
// objects for `meta_*` and `apply_*`.
const CALLS = {
  merge_v1: (updates) => Y.mergeUpdates(updates),
  merge_v2: (updates) => Y.mergeUpdatesV2(updates),
  diff_v1: (update, sv) => Y.diffUpdate(update, sv),
  diff_v2: (update, sv) => Y.diffUpdateV2(update, sv),
  sv_v1: (update) => Y.encodeStateVectorFromUpdate(update),
  sv_v2: (update) => Y.encodeStateVectorFromUpdateV2(update),
  v1_to_v2: (update) => Y.convertUpdateFormatV1ToV2(update),
  v2_to_v1: (update) => Y.convertUpdateFormatV2ToV1(update),
  meta_v1: (update) => metaJson(Y.parseUpdateMeta(update)),
  meta_v2: (update) => metaJson(Y.parseUpdateMetaV2(update)),
  apply_v1: (update) => applied(update, false),
  apply_v2: (update) => applied(update, true)
}

// `CALLS[name]`, with the error in place of the result when yjs throws; `bytes` holds the
// result's bytes (or null) for calls that feed later ones.
const call = (name, ...args) => {
  try {
    const out = CALLS[name](...args)
    return out instanceof Uint8Array ? { json: hex(out), bytes: out } : { json: out, bytes: null }
  } catch (e) {
    return { json: { error: String(e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e) }, bytes: null }
  }
}

// ---------------------------------------------------------------------------------------------
// One case

// What a doc without content encodes to.
const EMPTY_V1 = Y.encodeStateAsUpdate(new Y.Doc({ guid: 'empty' }))
const EMPTY_V2 = Y.encodeStateAsUpdateV2(new Y.Doc({ guid: 'empty' }))

// Every Y.Doc here gets an explicit guid: the default one costs 31 calls of the crypto RNG, a
// third of the generation time, and reaches no update.
const generate = (seed, index) => {
  const r = new Rng(caseSeed(seed, index))
  const c = { subdocs: 0 }

  // Distinct client ids, small and large.
  const ndocs = r.range(2, 4)
  const ids = new Set()
  while (ids.size < ndocs) {
    const k = r.int(4)
    ids.add(k === 0 ? r.range(0, 3) : k === 1 ? r.pick([0xffffffff, 0xfffffffe, 2 ** 31, 2 ** 31 - 1]) : k === 2 ? r.range(4, 300) : r.u32())
  }
  const pool = [] // {v1, v2}: every update and snapshot, in the order they appeared
  const docs = Array.from(ids, (id) => {
    const doc = new Y.Doc({ guid: `doc-${id}`, gc: !r.chance(0.3) })
    doc.clientID = id
    const own = { doc, v1: [], v2: [] }
    doc.on('update', (u) => own.v1.push(u))
    doc.on('updateV2', (u) => own.v2.push(u))
    return own
  })
  const events = (d) => d.v1.map((v1, i) => ({ v1, v2: d.v2[i] }))

  const steps = r.range(3, 20)
  for (let s = 0; s < steps; s++) {
    const d = r.pick(docs)
    const k = r.int(10)
    if (k < 6) {
      const n = r.range(1, 6)
      const run = () => { for (let i = 0; i < n; i++) edit(c, r, d.doc) }
      if (r.chance(0.6)) d.doc.transact(run)
      else run()
    } else if (k < 8) {
      // Some of a peer's updates, out of order: what yjs cannot integrate stays pending.
      const peer = r.pick(docs.filter((x) => x !== d))
      const got = r.shuffle(events(peer)).slice(0, r.range(1, 6))
      for (const u of got) {
        if (r.chance(0.5)) Y.applyUpdate(d.doc, u.v1, 'peer')
        else Y.applyUpdateV2(d.doc, u.v2, 'peer')
      }
    } else if (k < 9) {
      const peer = r.pick(docs.filter((x) => x !== d))
      const sv = Y.encodeStateVector(d.doc)
      Y.applyUpdate(d.doc, Y.encodeStateAsUpdate(peer.doc, sv), 'sync')
    } else {
      // A snapshot, whole or against a peer's state vector.
      const peer = r.pick(docs)
      const sv = r.chance(0.5) ? Y.encodeStateVector(peer.doc) : new Uint8Array([0])
      pool.push({ v1: Y.encodeStateAsUpdate(d.doc, sv), v2: Y.encodeStateAsUpdateV2(d.doc, sv) })
    }
  }
  for (const d of docs) {
    if (d.v1.length !== d.v2.length) throw new Error('update and updateV2 events differ in number')
    pool.push(...events(d))
  }
  for (const [i, id] of Array.from(ids).entries()) {
    // yjs picks a new random id when it sees its own id edited elsewhere: that would make the
    // case irreproducible.
    if (docs[i].doc.clientID !== id) throw new Error('a doc changed its client id')
  }
  r.shuffle(pool)

  // The inputs: a random subset, sometimes with a merge of another subset among them.
  const inputs = []
  if (pool.length > 0) {
    const n = r.chance(0.1) ? 1 : r.range(1, Math.min(pool.length, 16))
    inputs.push(...pool.slice(0, n))
  }
  if (r.chance(0.02)) inputs.length = 0 // merging nothing
  if (r.chance(0.05)) inputs.push({ v1: EMPTY_V1, v2: EMPTY_V2 })
  let nested = false
  if (pool.length > 1 && r.chance(0.3)) {
    const sub = r.shuffle(pool.slice()).slice(0, r.range(2, Math.min(pool.length, 8)))
    inputs.push({ v1: Y.mergeUpdates(sub.map((u) => u.v1)), v2: Y.mergeUpdatesV2(sub.map((u) => u.v2)) })
    nested = true
  }
  const raw = inputs.length
  const dups = r.chance(0.5) ? r.range(1, 3) : 0
  for (let i = 0; i < dups && raw > 0; i++) inputs.push(r.pick(inputs))
  r.shuffle(inputs)

  const v1 = inputs.map((u) => u.v1)
  const v2 = inputs.map((u) => u.v2)
  const mergeV1 = call('merge_v1', v1)
  const mergeV2 = call('merge_v2', v2)

  // A state vector: a doc's, one with clocks moved (mid-item, past the end), a client dropped
  // or an unknown one added, or the empty one.
  let sv
  const k = r.int(10)
  if (k < 5) {
    sv = Y.encodeStateVector(r.pick(docs).doc)
  } else if (k < 9) {
    const m = Y.decodeStateVector(Y.encodeStateVector(r.pick(docs).doc))
    for (const [client, clock] of m) {
      const p = r.int(5)
      if (p === 0) m.delete(client)
      else if (p === 1) m.set(client, r.int(clock + 1))
      else if (p === 2) m.set(client, clock + r.range(1, 5))
    }
    if (r.chance(0.3)) m.set(r.u32(), r.range(1, 10))
    sv = Y.encodeStateVector(m)
  } else {
    sv = new Uint8Array([0])
  }

  const each = { sv_v1: [], sv_v2: [], diff_v1: [], diff_v2: [], v1_to_v2: [], v2_to_v1: [], meta_v1: [], meta_v2: [] }
  for (let i = 0; i < Math.min(2, inputs.length); i++) {
    each.sv_v1.push(call('sv_v1', v1[i]).json)
    each.sv_v2.push(call('sv_v2', v2[i]).json)
    each.diff_v1.push(call('diff_v1', v1[i], sv).json)
    each.diff_v2.push(call('diff_v2', v2[i], sv).json)
    each.v1_to_v2.push(call('v1_to_v2', v1[i]).json)
    each.v2_to_v1.push(call('v2_to_v1', v2[i]).json)
    each.meta_v1.push(call('meta_v1', v1[i]).json)
    each.meta_v2.push(call('meta_v2', v2[i]).json)
  }
  // Everything else works on the merges; when yjs could not merge, there is nothing to ask.
  const skipped = { error: 'yjs could not merge the inputs' }
  const on = (merge, name, ...rest) => merge.bytes ? call(name, merge.bytes, ...rest).json : skipped
  const v2ToV1 = on(mergeV2, 'v2_to_v1')
  const applyV1 = on(mergeV1, 'apply_v1')
  // A doc is a function of the update's content: when the V2 merge is the V1 one re-encoded,
  // applying it gives the same doc (and costs a tenth of the generation time).
  const applyV2 = v2ToV1 === mergeV1.json ? applyV1 : on(mergeV2, 'apply_v2')
  return {
    seed: seed.toString(),
    index,
    inputs: raw,
    nested,
    updates_v1: v1.map(hex),
    updates_v2: v2.map(hex),
    state_vector: hex(sv),
    merge_v1: mergeV1.json,
    merge_v2: mergeV2.json,
    diff_v1: on(mergeV1, 'diff_v1', sv),
    diff_v2: on(mergeV2, 'diff_v2', sv),
    sv_v1: on(mergeV1, 'sv_v1'),
    sv_v2: on(mergeV2, 'sv_v2'),
    v1_to_v2: on(mergeV1, 'v1_to_v2'),
    v2_to_v1: v2ToV1,
    meta_v1: on(mergeV1, 'meta_v1'),
    meta_v2: on(mergeV2, 'meta_v2'),
    each,
    apply_v1: applyV1,
    apply_v2: applyV2
  }
}

// ---------------------------------------------------------------------------------------------
// Serving calls: one JSON line in, {"id", "fn", "args": [...]}; one line out, {"id", "result"}
// (a result that is {"error": ...} when yjs threw). The Rust test applies its compacted
// updates this way and asks yjs about the smaller inputs it tries while shrinking a failure.

const serve = async () => {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of lines) {
    if (line.trim() === '') continue
    const { id, fn, args } = JSON.parse(line)
    // Arguments are hex strings, or arrays of them (the merges).
    const bytes = (args || []).map((a) => Array.isArray(a) ? a.map(unhex) : unhex(a))
    const result = fn in CALLS ? call(fn, ...bytes).json : { error: `unknown function ${fn}` }
    if (!process.stdout.write(JSON.stringify({ id, result }) + '\n')) {
      await new Promise((resolve) => process.stdout.once('drain', resolve))
    }
  }
}

// ---------------------------------------------------------------------------------------------

const usage = 'usage: node yjs-oracle.mjs --cases N --seed S [--skip K] | --seed S --only K | --serve'
const opts = { cases: 100, seed: 1n, skip: 0, serve: false }
const argv = process.argv.slice(2)
for (let i = 0; i < argv.length; i++) {
  const flag = argv[i]
  const value = () => {
    const v = argv[++i]
    if (v === undefined || !/^\d+$/.test(v)) { console.error(`${flag} needs a number\n${usage}`); process.exit(2) }
    return v
  }
  if (flag === '--cases') opts.cases = Number(value())
  else if (flag === '--seed') opts.seed = BigInt(value())
  else if (flag === '--skip') opts.skip = Number(value())
  else if (flag === '--only') { opts.skip = Number(value()); opts.cases = 1 }
  else if (flag === '--serve') opts.serve = true
  else { console.error(usage); process.exit(2) }
}

if (opts.serve) {
  await serve()
} else {
  const started = process.hrtime.bigint()
  let bytes = 0
  for (let i = opts.skip; i < opts.skip + opts.cases; i++) {
    const line = JSON.stringify(generate(opts.seed, i)) + '\n'
    bytes += line.length
    // Wait for the reader when the pipe is full, so memory stays flat on long runs.
    if (!process.stdout.write(line)) await new Promise((resolve) => process.stdout.once('drain', resolve))
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  console.error(`yjs-oracle: ${opts.cases} cases (seed ${opts.seed}, from ${opts.skip}) in ${(ms / 1000).toFixed(2)} s, ${(bytes / 1e6).toFixed(1)} MB`)
}
