// A real y-websocket client (yjs + y-websocket) writing or reading the Y.Map "m", for the
// content-identity and deep-nesting tests (tests/content_identity.rs, tests/deep_nesting.rs).
//
//   node identity-client.mjs <serverUrl> <document> write --index I [options]
//   node identity-client.mjs <serverUrl> <document> read [options]
//
// write: connects, waits for the first sync and prints {"step": "synced"}; with --go waits for
// one line on standard input (so that every writer starts at once); then makes --edits
// edits, one transaction (one update message) each: edit i sets the key `${I}-${i % keys}`
// to an object value (see `value`), pausing now and then so that the writers' messages
// interleave. Then it waits until a second, fresh client sees all of its edits (the server
// has them: {"step": "flushed"}), waits until it sees the last edit of every writer (with
// --writers W: writers 0..W-1 made the same edits), and prints its final state.
//
// read: connects, waits for the first sync, notes whether the map was complete then (with
// --writers), waits until it is complete, and prints its final state.
//
// Options:
//   --edits N      edits per writer (default 200)
//   --keys K       distinct keys per writer (default 40)
//   --base B       added to every edit's "n" (a second round of edits on the same keys)
//   --writers W    how many writers' last edits to wait for (default: none, print at once)
//   --wait-key KEY wait until the map has the key KEY before printing the final line
//   --go           (write) wait for a line on stdin before editing
//   --hold         wait for a line on stdin before disconnecting, after the final line
//
// The final line is {"step": "final", "json", "sorted", "sv", "size", "keys", "clientID",
// "completeAtSync"}:
//   json    JSON.stringify(doc.getMap('m').toJSON()): the map's own keys in the order this
//           client integrated them, which legitimately differs between clients that saw the
//           edits in another order
//   sorted  the same JSON with the map's own keys sorted; the values (objects, arrays,
//           numbers) exactly as yjs decoded them, their keys in their original order
//   sv      the V1 state vector, hex (yjs writes it in a fixed order)
//
// Every step that does not finish within TIMEOUT_MS (default 30000) prints the reason to
// stderr and exits with status 1. An exception anywhere (a RangeError from a document yjs
// cannot decode) prints {"step": "error", "message"} and exits with status 1.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import { createInterface } from 'node:readline'

const TIMEOUT_MS = Number(process.env.TIMEOUT_MS ?? 30000)

const print = (value) => process.stdout.write(JSON.stringify(value) + '\n')

const fail = (message) => {
  print({ step: 'error', message })
  console.error(`identity-client.mjs: ${message}`)
  process.stdout.write('', () => process.exit(1))
}
process.on('uncaughtException', (error) => fail(`uncaught ${error?.name}: ${error?.message}`))
process.on('unhandledRejection', (error) => fail(`unhandled ${error?.name}: ${error?.message}`))

const [serverUrl, document, mode, ...rest] = process.argv.slice(2)
if (!serverUrl || !document || !['write', 'read'].includes(mode)) {
  console.error('usage: node identity-client.mjs <serverUrl> <document> write|read [options]')
  process.exit(2)
}
const opts = {
  edits: 200, keys: 40, base: 0, writers: 0, index: -1, go: false, hold: false, waitKeys: []
}
for (let i = 0; i < rest.length; i++) {
  const flag = rest[i]
  const number = () => {
    const value = Number(rest[++i])
    if (!Number.isInteger(value) || value < 0) throw new Error(`${flag} needs a number`)
    return value
  }
  switch (flag) {
    case '--index': opts.index = number(); break
    case '--edits': opts.edits = number(); break
    case '--keys': opts.keys = number(); break
    case '--base': opts.base = number(); break
    case '--writers': opts.writers = number(); break
    case '--wait-key': opts.waitKeys.push(rest[++i]); break
    case '--go': opts.go = true; break
    case '--hold': opts.hold = true; break
    default: throw new Error(`unknown option ${flag}`)
  }
}
if (mode === 'write' && opts.index < 0) throw new Error('write needs --index')

/** Writer `by`'s value for edit `i`: a small object, every third one nested. */
const value = (by, i) => {
  const n = opts.base + i
  const v = Math.random()
  if (i % 3 === 0) {
    // Keys out of alphabetical order, and numbers that take each of lib0's encodings:
    // varint (1, 2), float32 (-1.5), float64 (v, 2 ** 40).
    return { by, n, v, tags: ['a', 'b'], inner: { z: 1, a: 2, f: -1.5, big: 2 ** 40 } }
  }
  return { by, n, v }
}

/** The last edit index that wrote key slot `k` (edits go round the keys). */
const lastEdit = (k) => k + opts.keys * Math.floor((opts.edits - 1 - k) / opts.keys)

/** Whether the map holds the last edit of every writer 0..writers-1. */
const complete = (map) => {
  for (let by = 0; by < opts.writers; by++) {
    for (let k = 0; k < Math.min(opts.keys, opts.edits); k++) {
      const got = map.get(`${by}-${k}`)
      if (got?.n !== opts.base + lastEdit(k)) return false
    }
  }
  return true
}

const connect = (doc) => new WebsocketProvider(serverUrl, document, doc, {
  WebSocketPolyfill: WebSocket,
  disableBc: true
})

/** Resolves once `check()` is true, re-checking whenever `source` emits `event`. */
const until = (what, source, event, check) => new Promise((resolve, reject) => {
  if (check()) return resolve()
  const timer = setTimeout(() => {
    source.off(event, listener)
    reject(new Error(`timed out after ${TIMEOUT_MS} ms waiting for ${what}`))
  }, TIMEOUT_MS)
  const listener = () => {
    if (check()) {
      clearTimeout(timer)
      source.off(event, listener)
      resolve()
    }
  }
  source.on(event, listener)
})

const synced = (provider) => until('the sync', provider, 'sync', () => provider.synced)

const hex = (bytes) => Buffer.from(bytes).toString('hex')

const state = (doc, extra) => {
  const json = doc.getMap('m').toJSON()
  const sorted = Object.fromEntries(Object.keys(json).sort().map((key) => [key, json[key]]))
  return {
    json: JSON.stringify(json),
    sorted: JSON.stringify(sorted),
    sv: hex(Y.encodeStateVector(doc)),
    size: doc.getMap('m').size,
    keys: [...doc.getMap('m').keys()],
    clientID: doc.clientID,
    ...extra
  }
}

const missing = (map) => {
  const absent = []
  for (let by = 0; by < opts.writers; by++) {
    for (let k = 0; k < Math.min(opts.keys, opts.edits); k++) {
      const got = map.get(`${by}-${k}`)
      if (got?.n !== opts.base + lastEdit(k)) absent.push(`${by}-${k}: ${JSON.stringify(got)}`)
    }
  }
  return absent
}

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()

const doc = new Y.Doc()
const map = doc.getMap('m')
const provider = connect(doc)

try {
  await synced(provider)
  const completeAtSync = opts.writers > 0 && complete(map)
  print({ step: 'synced', ...state(doc, { completeAtSync }) })
  if (mode === 'write') {
    if (opts.go) await lines.next()
    for (let i = 0; i < opts.edits; i++) {
      map.set(`${opts.index}-${i % opts.keys}`, value(opts.index, i))
      if (i % 8 === 7) await new Promise((resolve) => setTimeout(resolve, 2))
    }
    // The server holds all of this client's edits once a fresh client sees them.
    const mine = Y.decodeStateVector(Y.encodeStateVector(doc))
    const probe = new Y.Doc()
    const probeProvider = connect(probe)
    const covered = () => {
      const theirs = Y.decodeStateVector(Y.encodeStateVector(probe))
      return [...mine].every(([client, clock]) => (theirs.get(client) ?? 0) >= clock)
    }
    await synced(probeProvider)
    await until('the server to hold this client\'s edits', probe, 'update', covered)
    probeProvider.destroy()
    print({ step: 'flushed' })
  }
  if (opts.writers > 0) {
    try {
      await until(`the last edits of ${opts.writers} writers`, doc, 'update', () => complete(map))
    } catch (error) {
      const absent = missing(map)
      throw new Error(`${error.message}; ${absent.length} keys lack their last edit, ` +
        `e.g. ${absent.slice(0, 3).join(', ')}`)
    }
  }
  for (const key of opts.waitKeys) {
    await until(`the key ${JSON.stringify(key)}`, doc, 'update', () => map.has(key))
  }
  print({ step: 'final', ...state(doc, { completeAtSync }) })
  if (opts.hold) await lines.next()
  provider.destroy()
  await new Promise((resolve) => process.stdout.write('', resolve))
  process.exit(0)
} catch (error) {
  fail(`${document}: ${error.message}`)
}
