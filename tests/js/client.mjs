// A real y-websocket client, driven step by step from the command line.
//
//   node client.mjs <serverUrl> <document> <step>...
//
// It connects a WebsocketProvider (yjs + y-websocket, `ws` as the WebSocket) to
// <serverUrl>/<document>, waits for the first sync, then runs each step in order and prints
// one JSON line per step to stdout. Any step that does not finish within TIMEOUT_MS (default
// 10000) prints the reason to stderr and exits with status 1.
//
// Steps (the shared text is the Y.Text "content"):
//   insert:TEXT      append TEXT
//   wait:TEXT        wait until the text contains TEXT
//   flush            wait until a second, fresh client sees every edit of this one: the
//                    server has them
//   disconnect       close the connection (edits stay local)
//   connect          reconnect and wait for the sync
//   stdin            wait for one line on standard input
//   awareness:JSON   set the local awareness state
//   peer:NAME        wait until another client's awareness state has name NAME
//   peer-gone:NAME   wait until no client's awareness state has name NAME
//   closed           wait until the server closes the connection; adds its "code" and "reason"
//   print            print the text
//   sleep:MS         wait MS milliseconds (lets an update that will be refused reach the server)
//
// Each step's line is {"step", "content", "clientID"}, plus what the step adds.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import { createInterface } from 'node:readline'

const TIMEOUT_MS = Number(process.env.TIMEOUT_MS ?? 10000)

const [serverUrl, document, ...steps] = process.argv.slice(2)
if (!serverUrl || !document) {
  console.error('usage: node client.mjs <serverUrl> <document> <step>...')
  process.exit(2)
}

const connect = (doc) => new WebsocketProvider(serverUrl, document, doc, {
  WebSocketPolyfill: WebSocket,
  // Separate processes share no BroadcastChannel, but say so: every byte goes to the server.
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

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()

const doc = new Y.Doc()
const text = doc.getText('content')
const provider = connect(doc)
const peerNames = () => [...provider.awareness.getStates()]
  .filter(([clientID]) => clientID !== doc.clientID)
  .map(([, state]) => state?.name)

const print = (value) => process.stdout.write(JSON.stringify(value) + '\n')

const run = async (step) => {
  const colon = step.indexOf(':')
  const [name, arg] = colon < 0 ? [step, ''] : [step.slice(0, colon), step.slice(colon + 1)]
  let extra = {}
  switch (name) {
    case 'insert':
      text.insert(text.length, arg)
      break
    case 'wait':
      await until(`the text to contain ${JSON.stringify(arg)}`, doc, 'update',
        () => text.toString().includes(arg))
      break
    case 'flush': {
      const mine = Y.encodeStateVector(doc)
      const probe = new Y.Doc()
      const probeProvider = connect(probe)
      const covered = () => {
        const theirs = Y.decodeStateVector(Y.encodeStateVector(probe))
        return [...Y.decodeStateVector(mine)].every(([client, clock]) =>
          (theirs.get(client) ?? 0) >= clock)
      }
      await synced(probeProvider)
      await until('the server to hold this client\'s edits', probe, 'update', covered)
      probeProvider.destroy()
      break
    }
    case 'disconnect':
      provider.disconnect()
      break
    case 'connect':
      provider.connect()
      await synced(provider)
      break
    case 'stdin':
      await lines.next()
      break
    case 'awareness':
      provider.awareness.setLocalState(JSON.parse(arg))
      break
    case 'peer':
      await until(`a peer named ${arg}`, provider.awareness, 'change',
        () => peerNames().includes(arg))
      break
    case 'peer-gone':
      await until(`the peer named ${arg} to leave`, provider.awareness, 'change',
        () => !peerNames().includes(arg))
      break
    case 'closed': {
      // `connection-close` carries the server's close event (null when we closed).
      const event = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(
          `timed out after ${TIMEOUT_MS} ms waiting for the server to close`)), TIMEOUT_MS)
        provider.on('connection-close', (event) => {
          if (event) {
            clearTimeout(timer)
            resolve(event)
          }
        })
      })
      // Closed for good: no reconnect attempts while the script winds up.
      provider.shouldConnect = false
      extra = { code: event.code, reason: event.reason }
      break
    }
    case 'print':
      break
    case 'sleep':
      await new Promise((resolve) => setTimeout(resolve, Number(arg)))
      break
    default:
      throw new Error(`unknown step ${JSON.stringify(step)}`)
  }
  print({ step: name, content: text.toString(), clientID: doc.clientID, ...extra })
}

try {
  await synced(provider)
  print({ step: 'synced', content: text.toString(), clientID: doc.clientID })
  for (const step of steps) await run(step)
  provider.destroy()
  // A pipe's writes go asynchronous once it is full, and process.exit drops what is still
  // queued: exit only after the last line is out.
  await new Promise((resolve) => process.stdout.write('', resolve))
  process.exit(0)
} catch (error) {
  console.error(`client.mjs ${document}: ${error.message}`)
  process.exit(1)
}
