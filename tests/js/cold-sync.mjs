// A real yjs client's cold first sync of a large document, timed against any y-websocket
// compatible server (ours, y-sweet, the y-websocket reference server).
//
//   node tests/js/cold-sync.mjs --url ws://HOST:PORT/prefix --doc NAME \
//     --setup sequential|history [--runs R] [--skip-write] [--fixture PATH] [--timeout MS]
//
// The client connects at `--url` + '/' + `--doc`, as y-websocket does. For y-sweet, create the
// document first (POST /doc/new) and pass the URL its auth endpoint hands out, for document D
// `--url ws://HOST:PORT/d/D/ws --doc D`.
//
// Setup, unless --skip-write (the document was written by an earlier run with the same setup):
// one y-websocket client writes the document into the Y.Text "content", one update a message,
//   sequential  10,000 single-character appends, one transaction (one update) each; yjs
//               merges them into one item of ~10 KB
//   history     the 10,000 V1 updates of the history fixture (default
//               crates/teleportal-core/fixtures/yjs-history-10k.bin in this repository: a
//               sequence of (u32 LE length, update bytes)), applied one by one
// then a second client connects and waits until it sees the full text (the server has every
// update), and both disconnect.
//
// Then R times: a fresh Y.Doc and WebsocketProvider, timed from `new WebsocketProvider` until
// it is synced (it has applied a sync step 2) and its text has the full length, counting the
// size of every websocket message received by kind. The text (and the state vector) are then
// checked against the written document outside the timing.
//
// Only the first run of a process is a cold client (yjs' decoding not yet compiled by V8); later
// runs in the same process are JIT-warm. Run a fresh process for each cold figure.
//
// Prints one JSON line: per-run times and breakdowns, the first run's time, the median and
// minimum, and the size of the sync-step-2 message(s) received. Exits 1 if a run times out or
// gets the wrong document.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'

const USAGE = 'usage: node cold-sync.mjs --url ws://HOST:PORT/prefix --doc NAME ' +
  '--setup sequential|history [--runs R] [--skip-write] [--fixture PATH] [--timeout MS]'

const parseArgs = (argv) => {
  const opts = {
    runs: 5,
    skipWrite: false,
    fixture: fileURLToPath(new URL('../../crates/teleportal-core/fixtures/yjs-history-10k.bin', import.meta.url)),
    timeout: 60000
  }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`)
      return argv[++i]
    }
    switch (flag) {
      case '--url': opts.url = value(); break
      case '--doc': opts.doc = value(); break
      case '--setup': opts.setup = value(); break
      case '--runs': opts.runs = Number(value()); break
      case '--skip-write': opts.skipWrite = true; break
      case '--fixture': opts.fixture = value(); break
      case '--timeout': opts.timeout = Number(value()); break
      case '--help': console.log(USAGE); process.exit(0)
      // eslint-disable-next-line no-fallthrough
      default: throw new Error(`unknown argument ${JSON.stringify(flag)}`)
    }
  }
  if (!opts.url || !opts.doc || !['sequential', 'history'].includes(opts.setup)) {
    throw new Error('--url, --doc and --setup sequential|history are required')
  }
  if (!Number.isInteger(opts.runs) || opts.runs < 1) throw new Error('--runs must be >= 1')
  return opts
}

/** The fixture's updates: a sequence of (u32 little-endian length, update bytes). */
const readFixture = (path) => {
  const buf = readFileSync(path)
  const updates = []
  let at = 0
  while (at < buf.length) {
    if (at + 4 > buf.length) throw new Error(`${path}: truncated length at byte ${at}`)
    const len = buf.readUInt32LE(at)
    at += 4
    if (at + len > buf.length) throw new Error(`${path}: truncated update at byte ${at}`)
    updates.push(new Uint8Array(buf.buffer, buf.byteOffset + at, len))
    at += len
  }
  return updates
}

// The sequential writer's client id, fixed so that the document built locally has the same
// state vector as the one written to the server.
const SEQUENTIAL_CLIENT_ID = 424242

/** A new Y.Doc to write the setup's edits into (before it gets a provider). */
const authorDoc = (setup) => {
  const doc = new Y.Doc()
  if (setup === 'sequential') doc.clientID = SEQUENTIAL_CLIENT_ID
  return doc
}

/** Writes the setup's edits into `doc`, one transaction (so one update) each. */
const write = (setup, doc, fixture) => {
  if (setup === 'sequential') {
    const text = doc.getText('content')
    for (let i = 0; i < 10000; i++) text.insert(text.length, String.fromCharCode(97 + i % 26))
  } else {
    for (const update of readFixture(fixture)) Y.applyUpdate(doc, update)
  }
}

const readVarUint = (bytes, at) => {
  let value = 0
  let shift = 0
  for (;;) {
    const byte = bytes[at++]
    if (byte === undefined) return [null, at]
    value += (byte & 0x7f) * 2 ** shift
    if (byte < 0x80) return [value, at]
    shift += 7
  }
}

/** y-protocols' message kinds: [messageType, syncType]. */
const kindOf = (bytes) => {
  const [type, at] = readVarUint(bytes, 0)
  if (type === 0) {
    const [sync] = readVarUint(bytes, at)
    return ['sync-step-1', 'sync-step-2', 'update'][sync] ?? `sync-${sync}`
  }
  return { 1: 'awareness', 2: 'auth', 3: 'query-awareness' }[type] ?? `type-${type}`
}

/**
 * A `ws` WebSocket that reports every message it receives to `onReceive(kind, bytes)` before
 * y-websocket sees it (the listener added here runs before y-websocket's `onmessage`).
 */
const countingWebSocket = (onReceive) => class extends WebSocket {
  constructor (...args) {
    super(...args)
    this.on('message', (data) => {
      const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      onReceive(kindOf(bytes), bytes.byteLength)
    })
  }
}

const connect = (url, name, doc, WebSocketPolyfill = WebSocket) =>
  new WebsocketProvider(url, name, doc, { WebSocketPolyfill, disableBc: true })

/**
 * Resolves once `check()` is true, re-checking on each of `events` ([emitter, name]) and,
 * with `pollMs`, that often.
 */
const until = (what, timeout, events, check, pollMs = 0) => new Promise((resolve, reject) => {
  let poll = null
  const off = () => {
    for (const [emitter, name] of events) emitter.off(name, listener)
    clearInterval(poll)
    clearTimeout(timer)
  }
  const timer = setTimeout(() => {
    off()
    reject(new Error(`timed out after ${Math.round(timeout)} ms waiting for ${what}`))
  }, timeout)
  const listener = () => {
    if (check()) {
      off()
      resolve()
    }
  }
  for (const [emitter, name] of events) emitter.on(name, listener)
  if (pollMs > 0) poll = setInterval(listener, pollMs)
  listener()
})

/** `doc`'s state vector equals the encoded state vector `sv`. */
const sameStateVector = (doc, sv) => {
  const x = Y.decodeStateVector(Y.encodeStateVector(doc))
  const y = Y.decodeStateVector(sv)
  return x.size === y.size && [...x].every(([client, clock]) => y.get(client) === clock)
}

/**
 * The written document's text and state vector, built in a worker thread: its own V8 isolate,
 * so that yjs' update decoding is not yet compiled when a fresh process measures a cold client.
 */
const expectedState = (setup, fixture) => new Promise((resolve, reject) => {
  const worker = new Worker(new URL(import.meta.url), { workerData: { setup, fixture } })
  worker.once('message', resolve)
  worker.once('error', reject)
  worker.once('exit', (code) => reject(new Error(`the worker exited with ${code}`)))
})

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** One cold first sync; returns its timings and the bytes received by kind. */
const measure = async (opts, { text: want, stateVector: wantSv }) => {
  const doc = new Y.Doc()
  const text = doc.getText('content')
  const received = {}
  let messages = 0
  let bytes = 0
  let step2AtMs = null
  let openMs = null
  let t0 = 0
  const WS = countingWebSocket((kind, size) => {
    messages++
    bytes += size
    const entry = (received[kind] ??= { messages: 0, bytes: 0 })
    entry.messages++
    entry.bytes += size
    if (kind === 'sync-step-2' && step2AtMs === null) step2AtMs = performance.now() - t0
  })
  t0 = performance.now()
  const provider = connect(opts.url, opts.doc, doc, WS)
  provider.on('status', ({ status }) => {
    if (status === 'connected' && openMs === null) openMs = performance.now() - t0
  })
  let syncedMs = null
  let ms = null
  let snapshot = null
  try {
    await until('the sync and the full text', opts.timeout, [[provider, 'sync'], [doc, 'update']],
      () => {
        const now = performance.now() - t0
        if (provider.synced && syncedMs === null) syncedMs = now
        if (!(provider.synced && text.length === want.length)) return false
        // The clock stops here, before provider.destroy(), and what arrived until now is
        // snapshotted: later messages (awareness) don't count.
        ms = now
        snapshot = { bytes, messages, received: structuredClone(received) }
        return true
      })
  } finally {
    provider.destroy()
  }
  const result = {
    ms: round(ms),
    open_ms: round(openMs),
    step2_at_ms: round(step2AtMs),
    synced_ms: round(syncedMs),
    step2_bytes: snapshot.received['sync-step-2']?.bytes ?? 0,
    step2_messages: snapshot.received['sync-step-2']?.messages ?? 0,
    received_bytes: snapshot.bytes,
    received_messages: snapshot.messages,
    received: snapshot.received
  }
  if (text.toString() !== want) throw new Error('the synced text differs from the written one')
  result.same_state_vector = sameStateVector(doc, wantSv)
  doc.destroy()
  return result
}

const round = (x) => (x === null ? null : Math.round(x * 100) / 100)

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

const main = async () => {
  const opts = parseArgs(process.argv.slice(2))

  // The document every client should end up with, built locally.
  const expected = await expectedState(opts.setup, opts.fixture)
  const want = expected.text

  let setupMs = null
  let setupProbes = null
  if (!opts.skipWrite) {
    const t0 = performance.now()
    const writerDoc = authorDoc(opts.setup)
    const writer = connect(opts.url, opts.doc, writerDoc)
    await until('the writer to sync', opts.timeout, [[writer, 'sync']], () => writer.synced)
    if (writerDoc.getText('content').length !== 0) {
      writer.destroy()
      throw new Error(`document ${opts.doc} is not empty; pick a new --doc or pass --skip-write`)
    }
    write(opts.setup, writerDoc, opts.fixture)
    await until('the writer to send every update', opts.timeout, [],
      () => writer.ws?.bufferedAmount === 0, 20)
    // A fresh client that sees the full text means the server holds every update. A probe
    // that synced before the server had applied them all relies on the server forwarding the
    // rest, which a server may drop under load (y-sweet does past 1024 queued messages a
    // connection): then try again with a new probe.
    const deadline = performance.now() + opts.timeout
    for (let attempt = 1; ; attempt++) {
      const probeDoc = new Y.Doc()
      const probe = connect(opts.url, opts.doc, probeDoc)
      const probeText = probeDoc.getText('content')
      const left = Math.max(1, Math.min(5000, deadline - performance.now()))
      try {
        await until('the server to hold every update', left,
          [[probe, 'sync'], [probeDoc, 'update']],
          () => probe.synced && probeText.length === want.length && probeText.toString() === want)
        setupProbes = attempt
        break
      } catch (error) {
        if (performance.now() >= deadline) throw error
      } finally {
        probe.destroy()
        probeDoc.destroy()
      }
    }
    writer.destroy()
    writerDoc.destroy()
    setupMs = round(performance.now() - t0)
    await sleep(200)
  }

  const runs = []
  for (let i = 0; i < opts.runs; i++) {
    runs.push(await measure(opts, expected))
    await sleep(100)
  }
  const times = runs.map((r) => r.ms)
  const line = {
    url: opts.url,
    doc: opts.doc,
    setup: opts.setup,
    text_length: want.length,
    setup_ms: setupMs,
    setup_probes: setupProbes,
    runs: opts.runs,
    times_ms: times,
    first_ms: times[0],
    median_ms: round(median(times)),
    min_ms: round(Math.min(...times)),
    step2_bytes: runs.map((r) => r.step2_bytes),
    detail: runs
  }
  process.stdout.write(JSON.stringify(line) + '\n')
}

if (!isMainThread) {
  // expectedState's worker.
  const doc = authorDoc(workerData.setup)
  write(workerData.setup, doc, workerData.fixture)
  parentPort.postMessage({
    text: doc.getText('content').toString(),
    stateVector: Y.encodeStateVector(doc)
  })
} else {
  try {
    await main()
    await new Promise((resolve) => process.stdout.write('', resolve))
    process.exit(0)
  } catch (error) {
    console.error(`cold-sync.mjs: ${error.stack}`)
    process.exit(1)
  }
}
