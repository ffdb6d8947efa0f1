// A recorded editing session like the shared `yjs-history-*.bin` fixtures, of any length:
// eight clients typing, deleting and moving cursors in the Y.Text "content" and setting keys
// of the Y.Map "meta", each edit one V1 update, clients syncing now and then.
//
//   node tests/js/make-history.mjs COUNT OUT.bin [SEED]
//
// OUT.bin is a sequence of (u32 little-endian length, V1 update). Deterministic for a seed.
// The benches read a 100,000-update session made with
//   node tests/js/make-history.mjs 100000 target/yjs-history-100k.bin
import * as Y from 'yjs'
import { writeFileSync } from 'node:fs'

const [count = '100000', out = 'yjs-history.bin', seedArg = '7'] = process.argv.slice(2)
let seed = Number(seedArg) >>> 0
const random = () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const pick = (n) => Math.floor(random() * n)

const docs = Array.from({ length: 8 }, (_, i) => {
  const doc = new Y.Doc()
  doc.clientID = 1001 + i
  return doc
})
const chunks = []
let total = 0
for (const doc of docs) {
  doc.on('update', (update, origin) => {
    if (origin === 'sync') return
    const len = Buffer.alloc(4)
    len.writeUInt32LE(update.length)
    chunks.push(len, Buffer.from(update))
    total++
  })
}
const words = ['the ', 'quick ', 'brown ', 'fox ', 'jumps ', 'over ', 'lazy ', 'dogs ', '\n']
while (total < Number(count)) {
  const doc = docs[pick(docs.length)]
  const text = doc.getText('content')
  const r = random()
  if (r < 0.7) {
    // Type a word at a cursor, one character per transaction as an editor sends them.
    let at = pick(text.length + 1)
    for (const ch of words[pick(words.length)]) {
      if (total >= Number(count)) break
      text.insert(at++, ch)
    }
  } else if (r < 0.85 && text.length > 0) {
    const at = pick(text.length)
    text.delete(at, Math.min(1 + pick(6), text.length - at))
  } else if (r < 0.97) {
    doc.getMap('meta').set(`cursor-${doc.clientID}`, pick(text.length + 1))
  } else {
    doc.getMap('meta').set(['title', 'status', 'updatedAt'][pick(3)], `v${pick(100)}`)
  }
  if (random() < 0.05) {
    // Sync with a peer, as clients of one server do; the sync itself is not recorded.
    const peer = docs[pick(docs.length)]
    Y.applyUpdate(peer, Y.encodeStateAsUpdate(doc, Y.encodeStateVector(peer)), 'sync')
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(peer, Y.encodeStateVector(doc)), 'sync')
  }
}
writeFileSync(out, Buffer.concat(chunks))
console.error(`${total} updates, ${chunks.reduce((n, c) => n + c.length, 0)} bytes -> ${out}`)
