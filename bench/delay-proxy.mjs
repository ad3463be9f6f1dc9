// A TCP proxy that holds every chunk for a fixed time in each direction: Redis "a network hop
// away" on a kernel without `tc netem`. Chunks keep their order, and a connection's bytes are never
// merged with another's.
//
//   node bench/delay-proxy.mjs <listen port> <target port> <round trip, ms>
//
// Prints `listening <port>` once it accepts. Node's timers fire in whole milliseconds, so a wait
// of under 1.5 ms is finished with Atomics.wait, which sleeps (it does not spin) to the microsecond:
// a 0.5 ms round trip costs this process little CPU. A chunk that arrives during such a wait is
// stamped when it is read, so it may be held up to one wait longer; the proxy reports the round
// trip it adds, measured, so the bench shows what it got rather than what it asked for.
import { createConnection, createServer } from 'node:net'
import { setImmediate } from 'node:timers'

const [listenPort, targetPort, roundTripMs] = process.argv.slice(2).map(Number)
if (!(listenPort > 0 && targetPort > 0 && roundTripMs >= 0)) {
  throw new Error('usage: delay-proxy.mjs <listen port> <target port> <round trip, ms>')
}
const ONE_WAY_MS = roundTripMs / 2
const sleeper = new Int32Array(new SharedArrayBuffer(4))

/** Chunks waiting to be written, oldest first: [due (ms, performance.now()), socket, chunk]. */
const queue = []
let head = 0
let scheduled = false

function drain() {
  scheduled = false
  for (;;) {
    if (head === queue.length) {
      queue.length = 0
      head = 0
      return
    }
    const [due, socket, chunk] = queue[head]
    const wait = due - performance.now()
    if (wait > 1.5) {
      // Leave a millisecond to finish precisely, since a timer may fire late.
      scheduled = true
      setTimeout(drain, Math.floor(wait - 1))
      return
    }
    if (wait > 0) Atomics.wait(sleeper, 0, 0, wait)
    queue[head++] = undefined
    if (!socket.destroyed) socket.write(chunk)
    // Let chunks that came in meanwhile be read and stamped before holding the next one.
    if (head < queue.length && queue[head][0] > performance.now()) {
      scheduled = true
      setImmediate(drain)
      return
    }
  }
}

function hold(socket, chunk) {
  queue.push([performance.now() + ONE_WAY_MS, socket, chunk])
  if (!scheduled) {
    scheduled = true
    setImmediate(drain)
  }
}

const server = createServer({ noDelay: true }, (client) => {
  const upstream = createConnection({ port: targetPort, host: '127.0.0.1', noDelay: true })
  client.on('data', (chunk) => hold(upstream, chunk))
  upstream.on('data', (chunk) => hold(client, chunk))
  const end = () => {
    client.destroy()
    upstream.destroy()
  }
  client.on('close', end)
  upstream.on('close', end)
  client.on('error', end)
  upstream.on('error', end)
})
server.listen(listenPort, '127.0.0.1', () => process.stdout.write(`listening ${listenPort}\n`))
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0))
