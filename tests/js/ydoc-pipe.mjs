// A real yjs Y.Doc driven over stdin/stdout, so that a Rust test can speak the Teleportal
// protocol (tests/content_identity.rs) while yjs itself holds the document: the Rust side
// carries the V2 updates between the server and this process.
//
//   node ydoc-pipe.mjs
//
// Each line on stdin is one command; each command prints exactly one JSON line to stdout.
//   apply HEX                 Y.applyUpdateV2(doc, HEX)                     -> {"ok": true}
//   sv                        the V1 state vector                          -> {"sv": HEX}
//   diff SVHEX                Y.encodeStateAsUpdateV2(doc, SVHEX)          -> {"update": HEX}
//   edit INDEX EDITS KEYS     the edits a writer of identity-client.mjs makes (same keys and
//                             values), one transaction each               -> {"updates": [HEX…]}
//   complete WRITERS EDITS KEYS  whether the map "m" holds every writer's last edit
//                                                                          -> {"complete": bool}
//   state                     the final state as identity-client.mjs prints it
//                             -> {"json", "sorted", "sv", "size", "keys", "clientID"}
// A command that throws prints {"error": message}.
import * as Y from 'yjs'
import { createInterface } from 'node:readline'

const doc = new Y.Doc()
const map = doc.getMap('m')
const hex = (bytes) => Buffer.from(bytes).toString('hex')
const bytes = (text) => new Uint8Array(Buffer.from(text, 'hex'))

// Kept in step with `value` in identity-client.mjs (whose --base is 0 here).
const value = (by, i) => {
  const n = i
  const v = Math.random()
  if (i % 3 === 0) {
    return { by, n, v, tags: ['a', 'b'], inner: { z: 1, a: 2, f: -1.5, big: 2 ** 40 } }
  }
  return { by, n, v }
}

const lastEdit = (k, edits, keys) => k + keys * Math.floor((edits - 1 - k) / keys)

const commands = {
  apply: ([update]) => {
    Y.applyUpdateV2(doc, bytes(update), 'remote')
    return { ok: true }
  },
  sv: () => ({ sv: hex(Y.encodeStateVector(doc)) }),
  diff: ([sv]) => ({ update: hex(Y.encodeStateAsUpdateV2(doc, bytes(sv))) }),
  edit: ([index, edits, keys]) => {
    const updates = []
    const collect = (update, origin) => { if (origin !== 'remote') updates.push(hex(update)) }
    doc.on('updateV2', collect)
    for (let i = 0; i < Number(edits); i++) {
      map.set(`${index}-${i % Number(keys)}`, value(Number(index), i))
    }
    doc.off('updateV2', collect)
    return { updates }
  },
  complete: ([writers, edits, keys]) => {
    for (let by = 0; by < Number(writers); by++) {
      for (let k = 0; k < Math.min(Number(keys), Number(edits)); k++) {
        if (map.get(`${by}-${k}`)?.n !== lastEdit(k, Number(edits), Number(keys))) {
          return { complete: false }
        }
      }
    }
    return { complete: true }
  },
  state: () => {
    const json = map.toJSON()
    const sorted = Object.fromEntries(Object.keys(json).sort().map((key) => [key, json[key]]))
    return {
      json: JSON.stringify(json),
      sorted: JSON.stringify(sorted),
      sv: hex(Y.encodeStateVector(doc)),
      size: map.size,
      keys: [...map.keys()],
      clientID: doc.clientID
    }
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  const [name, ...args] = line.trim().split(/\s+/)
  let reply
  try {
    const command = commands[name]
    if (!command) throw new Error(`unknown command ${JSON.stringify(name)}`)
    reply = command(args)
  } catch (error) {
    reply = { error: `${error?.name}: ${error?.message}` }
  }
  process.stdout.write(JSON.stringify(reply) + '\n')
}
