// yjs's side of tests/deep_nesting.rs, which builds deeply nested updates byte by byte.
//
//   node deep-check.mjs template CLIENT KEY
//     A fresh Y.Doc with clientID CLIENT sets doc.getMap('m') KEY to the string PLACEHOLDER
//     (below); prints {"v1", "v2", "placeholder"}: the update in both encodings and the
//     placeholder's lib0 Any encoding, all hex. In both encodings that Any is written as is,
//     so the test can put another Any in its place.
//   node deep-check.mjs check KEY v1|v2 HEX [v1|v2 HEX]...
//     Applies each update to a fresh Y.Doc and prints one JSON line for it: {"depth", "leaf",
//     "json", "pending", "keys"}, where depth counts the arrays or objects around the innermost
//     value of doc.getMap('m').get(KEY) (measured without recursion), leaf is JSON.stringify of
//     that innermost value, json is JSON.stringify of the whole map (only when short), pending
//     whether yjs kept structs it could not integrate, and keys the map's keys. A yjs error
//     prints {"error": message}.
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'

const PLACEHOLDER = '\u0001deep-nesting placeholder\u0001'
const hex = (bytes) => Buffer.from(bytes).toString('hex')

const [command, ...args] = process.argv.slice(2)
if (command === 'template') {
  const [client, key] = args
  const doc = new Y.Doc()
  doc.clientID = Number(client)
  const updates = {}
  doc.on('update', (update) => { updates.v1 = hex(update) })
  doc.on('updateV2', (update) => { updates.v2 = hex(update) })
  doc.getMap('m').set(key, PLACEHOLDER)
  const any = encoding.createEncoder()
  encoding.writeAny(any, PLACEHOLDER)
  console.log(JSON.stringify({ ...updates, placeholder: hex(encoding.toUint8Array(any)) }))
} else if (command === 'check') {
  const [key, ...rest] = args
  for (let i = 0; i + 1 < rest.length; i += 2) {
    const [version, text] = [rest[i], rest[i + 1]]
    const update = new Uint8Array(Buffer.from(text, 'hex'))
    const doc = new Y.Doc()
    try {
      if (version === 'v2') Y.applyUpdateV2(doc, update)
      else Y.applyUpdate(doc, update)
      const map = doc.getMap('m')
      let value = map.get(key)
      let depth = 0
      for (;;) {
        if (Array.isArray(value) && value.length === 1) {
          value = value[0]
        } else if (value !== null && typeof value === 'object' &&
          !(value instanceof Uint8Array) && Object.keys(value).length === 1) {
          value = Object.values(value)[0]
        } else {
          break
        }
        depth++
      }
      const json = JSON.stringify(map.toJSON())
      console.log(JSON.stringify({
        depth,
        leaf: JSON.stringify(value) ?? 'undefined',
        json: json.length <= 4096 ? json : null,
        pending: doc.store.pendingStructs !== null,
        keys: [...map.keys()]
      }))
    } catch (error) {
      console.log(JSON.stringify({ error: `${error?.name}: ${error?.message}` }))
    }
  }
} else {
  console.error('usage: node deep-check.mjs template CLIENT KEY | check KEY v1|v2 HEX...')
  process.exit(2)
}
