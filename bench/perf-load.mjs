// The load of one benchmark run, in its own process: autocannon, 50 connections, pipelining 1.
// argv: url, shape (allowed | blocked), seconds[, rate]. Prints one JSON line with the results.
// KEYING (env) says how a client names itself, as perf-app.mjs reads it: `ip` sends X-Forwarded-For,
// `header` an X-Api-Key.
// With a rate, it is an open-loop latency probe instead: `rate` requests per second, spread over
// 50 keep-alive connections, each timed to the microsecond (autocannon reports whole milliseconds).
import http from 'node:http'
import { URL } from 'node:url'

import autocannon from 'autocannon'

const [url, shape, seconds, rate] = process.argv.slice(2)
const CLIENTS = 10_000

const KEYING = process.env.KEYING ?? 'ip'
const HEADER = KEYING === 'header' ? 'x-api-key' : 'x-forwarded-for'

/** 10,000 distinct clients, in turn: IPv4 addresses 10.0.x.y, or API keys. */
let next = 0
const client = () => {
  const n = next++ % CLIENTS
  return KEYING === 'header' ? `ak_${n.toString(36).padStart(12, '0')}` : `10.0.${n >> 8}.${n & 255}`
}
/** The one client of the blocked shape. */
const BLOCKED = KEYING === 'header' ? 'ak_blocked' : '10.9.9.9'

const request =
  shape === 'allowed'
    ? {
        method: 'GET',
        path: '/r',
        setupRequest: (req) => ({ ...req, headers: { ...req.headers, [HEADER]: client() } }),
      }
    : { method: 'GET', path: '/r', headers: { [HEADER]: BLOCKED } }

if (rate !== undefined) {
  console.log(JSON.stringify(await latencyProbe(Number(rate))))
  process.exit(0)
}

const result = await autocannon({
  url,
  connections: 50,
  pipelining: 1,
  duration: Number(seconds),
  requests: [request],
})
const statuses = {}
for (const [code, { count }] of Object.entries(result.statusCodeStats ?? {})) statuses[code] = count
console.log(
  JSON.stringify({
    requests: result.requests.total,
    seconds: result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors,
    timeouts: result.timeouts,
    statuses,
  }),
)

/** Sends `perSecond` requests a second for `seconds`, whatever the answers' pace; returns latency percentiles in µs. */
async function latencyProbe(perSecond) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 50 })
  const target = new URL('/r', url)
  const micros = []
  const statuses = {}
  const send = () =>
    new Promise((resolve) => {
      const start = process.hrtime.bigint()
      const headers = { [HEADER]: shape === 'allowed' ? client() : BLOCKED }
      const req = http.get(target, { agent, headers }, (res) => {
        res.resume()
        res.on('end', () => {
          micros.push(Number(process.hrtime.bigint() - start) / 1000)
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1
          resolve()
        })
      })
      req.on('error', () => {
        resolve()
      })
    })
  // Warm the connections up, then send on a fixed schedule (every ms, the requests now due). The
  // server times its limiter from here on (perf-app.mjs, /hold/start), past the warm-up burst.
  await Promise.all(Array.from({ length: 50 }, send))
  micros.length = 0
  await fetch(new URL('/hold/start', url))
  const pending = []
  const startedAt = performance.now()
  let sent = 0
  await new Promise((done) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - startedAt
      const due = Math.floor((elapsed / 1000) * perSecond)
      while (sent < due) {
        pending.push(send())
        sent++
      }
      if (elapsed >= Number(seconds) * 1000) {
        clearInterval(timer)
        done()
      }
    }, 1)
  })
  await Promise.all(pending)
  agent.destroy()
  micros.sort((a, b) => a - b)
  const at = (p) => micros[Math.min(micros.length - 1, Math.floor((p / 100) * micros.length))]
  return { requests: micros.length, p50us: at(50), p99us: at(99), statuses }
}
