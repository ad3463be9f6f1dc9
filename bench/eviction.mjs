// Which maxmemory-policy suits rate-limit counters: one simulated client population replayed through the real increment script on a too-small Redis per policy, against an exact in-process limiter.
//   node bench/eviction.mjs [--quick] [--seeds N] [--windows N] [--tick-ms MS] [--out FILE]   (pnpm bench:eviction)
//   Full (about 6 min) writes docs/benchmarks/eviction.json; --quick (one seed, about 20 s) only prints.
//
// Time is real but short: a window is 5.125 s (20 ticks of 250 ms, plus half a tick so that no
// request lands on a window's edge), so TTLs really pass and Redis really expires and evicts.
// Per seed, one schedule of requests is built in advance: clients arrive over time and leave,
// most are light, a heavy tail reaches the limit, and 1 % are abusers sending 3 to 20 times `max`.
// Each tick's requests go, as one pipeline of rate-limit-redis's own EVALSHA (loaded by its
// RedisStore.init; key `metaverses-srv:read:<ip>`, as our store writes it), at the same moment to a
// redis-server per policy, each started by this script on a free loopback port. Each has room for
// 90 % (then 60 %) of the bytes the workload's peak of live counters needs, so eviction happens.
// A control server without a limit checks that the clock and the exact limiter agree with Redis
// (it must show 0 everywhere). A second set of servers ("shared") also holds another app's keys
// without a TTL, read and added to while the limiter runs, with the same room for counters.
//
// Counted per policy: requests admitted beyond `max` per client per window, the windows being those
// of an exact in-process fixed-window limiter fed the same requests (a window opens at a client's
// first hit and lasts windowMs, as the script's does), and how many came from abusers; the same
// net over each client's life (a window only shifted in time nets out); requests refused that the
// exact limiter admits; writes Redis refused (OOM, upon which our limiters run their onStoreError
// policy: docs/redis-failures.md); the other app's keys lost. Full mode also fills a redis-server
// at the shipped 256 MB to count the counters it holds.
import { Buffer } from 'node:buffer'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'

import { Redis } from 'ioredis'
import { RedisStore } from 'rate-limit-redis'

import { freePort, startRedis } from './support.mjs'

const argv = process.argv.slice(2)
const QUICK = argv.includes('--quick')
const option = (name, fallback) => {
  const at = argv.indexOf(name)
  return at === -1 ? fallback : argv[at + 1]
}
const OUT = option('--out', QUICK ? undefined : fileURLToPath(import.meta.resolve('../docs/benchmarks/eviction.json')))

const POLICIES = ['allkeys-lru', 'volatile-lru', 'volatile-ttl', 'volatile-lfu', 'allkeys-lfu', 'noeviction']
const VARIANTS = ['dedicated', 'shared']
const WINDOW_TICKS = 20
/**
 * The window as the script gets it: one opened at tick t covers ticks t..t+20 exactly, half a tick
 * from either edge, so Redis and the exact limiter agree as long as each tick is answered within it.
 */
const windowMsOf = (tickMs) => (WINDOW_TICKS + 0.5) * tickMs
/**
 * What runs. "main": both memory pressures (room for 90 % and for 60 % of the peak of live
 * counters), several seeds. "clock": one seed again with windows 4 times longer, since Redis's LRU
 * clock counts whole seconds, coarse against a 5 s window (production windows are minutes long).
 */
const PLAN = [
  {
    part: 'main',
    tickMs: Number(option('--tick-ms', 250)),
    windows: Number(option('--windows', QUICK ? 4 : 6)),
    pressures: QUICK ? [0.6] : [0.9, 0.6],
    seeds: Number(option('--seeds', QUICK ? 1 : 4)),
  },
  ...(QUICK ? [] : [250, 1000].map((tickMs) => ({ part: 'clock', tickMs, windows: 4, pressures: [0.6], seeds: 1 }))),
]
const MAX = 10
/** Clients in session at any moment (on average). */
const CLIENTS = 3000
const ABUSER_SHARE = 0.01
/** Mean session, in windows: abusers stay longer. */
const SESSION = { client: 3, abuser: 6 }
/** The other app (shared variant): keys without a TTL, read on every tick and added now and then. */
const OTHER = { keys: 2000, value: 'x'.repeat(200), readsPerTick: 20, newEveryTicks: 4 }
const PREFIX = 'metaverses-srv:read:'
const CLASSES = ['light', 'heavy', 'abuser']

/** A seeded PRNG (mulberry32), so a seed is one exact schedule. */
function random(seed) {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

function poisson(next, mean) {
  const limit = Math.exp(-mean)
  let k = 0
  for (let p = next(); p > limit; p *= next()) k++
  return k
}

/**
 * Who sends what, tick by tick. Light and heavy clients share one heavy-tailed rate (Pareto,
 * alpha 1.2, median about 1 request per window, capped at 4 x max): "heavy" are those above max.
 * Abusers send 3 to 20 x max per window (log-uniform). Requests are Poisson within a session.
 */
function buildSchedule(seed, ticks) {
  const next = random(seed)
  const kind = []
  const perWindow = []
  const active = []
  const addClient = (startTick) => {
    const abuser = next() < ABUSER_SHARE
    const rate = abuser ? MAX * 3 * (20 / 3) ** next() : Math.min(4 * MAX, 0.6 * next() ** (-1 / 1.2))
    const session = -Math.log(1 - next()) * (abuser ? SESSION.abuser : SESSION.client) * WINDOW_TICKS
    kind.push(abuser ? 2 : rate > MAX ? 1 : 0)
    perWindow.push(rate)
    active.push({ id: kind.length - 1, from: startTick, to: startTick + session })
  }
  // The population at its steady size from the start, its first requests spread over one window.
  for (let i = 0; i < CLIENTS; i++) addClient(Math.floor(next() * WINDOW_TICKS))
  const meanSession = (1 - ABUSER_SHARE) * SESSION.client + ABUSER_SHARE * SESSION.abuser
  const arrivals = CLIENTS / (meanSession * WINDOW_TICKS)
  const schedule = []
  for (let tick = 0; tick < ticks; tick++) {
    for (let n = poisson(next, arrivals); n > 0; n--) addClient(tick)
    const hits = []
    for (let i = active.length - 1; i >= 0; i--) {
      const client = active[i]
      if (client.to <= tick) {
        active[i] = active.at(-1)
        active.pop()
        continue
      }
      if (client.from > tick) continue
      for (let n = poisson(next, perWindow[client.id] / (WINDOW_TICKS + 0.5)); n > 0; n--) hits.push(client.id)
    }
    schedule.push(Int32Array.from(hits))
  }
  return { schedule, kind: Uint8Array.from(kind), perWindow }
}

/** The most counters alive at once: clients whose window (exact limiter) is open at a tick. */
function peakLive({ schedule, kind }) {
  const opened = new Int32Array(kind.length).fill(-1e9)
  const closes = new Int32Array(schedule.length + WINDOW_TICKS + 2)
  let live = 0
  let peak = 0
  schedule.forEach((hits, tick) => {
    live -= closes[tick]
    for (const id of hits) {
      if (tick - opened[id] <= WINDOW_TICKS) continue
      opened[id] = tick
      live++
      closes[tick + WINDOW_TICKS + 1]++
    }
    peak = Math.max(peak, live)
  })
  return peak
}

const ipOf = (i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
const bulk = (text) => `$${Buffer.byteLength(text)}\r\n${text}\r\n`
const command = (...parts) => `*${parts.length}\r\n${parts.map(bulk).join('')}`
const info = async (admin, section, name) => Number(new RegExp(`${name}:(\\d+)`).exec(await admin.info(section))[1])

/** Reply codes from the raw connection: a script's first integer (>= 0) or one of these. */
const ERROR = -1
const NIL = -2
const OTHER_REPLY = -3

/**
 * A raw RESP connection: one write per tick, replies decoded to one number each, so that a dozen
 * servers take thousands of commands per tick from one Node process without falling behind.
 */
class Connection {
  constructor(port) {
    this.queue = []
    this.rest = null
    this.errors = new Map()
    this.socket = connect(port, '127.0.0.1')
    this.socket.setNoDelay(true)
    this.socket.on('data', (chunk) => this.#read(chunk))
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('connect', resolve)
      this.socket.once('error', reject)
    })
  }

  /** Sends `count` commands at once; resolves to their reply codes, in order. */
  send(buffer, count) {
    return new Promise((resolve) => {
      this.queue.push({ codes: new Int32Array(count), filled: 0, resolve })
      this.socket.write(buffer)
    })
  }

  close() {
    this.socket.destroy()
  }

  #read(chunk) {
    const buffer = this.rest === null ? chunk : Buffer.concat([this.rest, chunk])
    let at = 0
    for (;;) {
      const reply = this.#parse(buffer, at)
      if (reply === null) break
      at = reply.end
      const pending = this.queue[0]
      pending.codes[pending.filled++] = reply.code
      if (pending.filled === pending.codes.length) {
        this.queue.shift()
        pending.resolve(pending.codes)
      }
    }
    this.rest = at === buffer.length ? null : buffer.subarray(at)
  }

  /** One whole reply from `at`, or null if it has not all arrived. */
  #parse(buffer, at) {
    const eol = buffer.indexOf(13, at)
    if (eol === -1 || eol + 1 >= buffer.length) return null
    const type = buffer[at]
    const line = buffer.toString('latin1', at + 1, eol)
    const end = eol + 2
    if (type === 0x3a) return { code: Number(line), end } // :integer
    if (type === 0x2b) return { code: OTHER_REPLY, end } // +OK
    if (type === 0x2d) {
      const kind = line.split(' ')[0]
      if (!this.errors.has(kind)) this.errors.set(kind, line)
      return { code: ERROR, end }
    }
    if (type === 0x24) {
      const length = Number(line)
      if (length === -1) return { code: NIL, end }
      return end + length + 2 <= buffer.length ? { code: OTHER_REPLY, end: end + length + 2 } : null
    }
    // *2 of the increment script: [hits, ms to reset]; the first element is the code.
    let code = OTHER_REPLY
    let position = end
    for (let i = 0; i < Number(line); i++) {
      const element = this.#parse(buffer, position)
      if (element === null) return null
      if (i === 0) code = element.code
      position = element.end
    }
    return { code, end: position }
  }
}

/** One redis-server of ours with its policy and room, and what the run counted on it. */
async function startServer(policy, variant, windowMs) {
  const port = await freePort()
  const child = await startRedis(port)
  const admin = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 })
  const store = new RedisStore({ prefix: PREFIX, sendCommand: (...args) => admin.call(...args) })
  await store.init({ windowMs })
  const connection = new Connection(port)
  await connection.ready
  await admin.config('SET', 'maxmemory-policy', policy)
  return { policy, variant, port, child, admin, connection, sha: await store.incrementScriptSha }
}

/** Bytes one counter costs at `count` live counters, all overhead included (control server, then emptied). */
async function calibrate(server, count, windowMs) {
  const before = await info(server.admin, 'memory', 'used_memory')
  for (let i = 0; i < count; i += 1000) {
    const end = Math.min(count, i + 1000)
    let text = ''
    for (let j = i; j < end; j++) text += command('EVALSHA', server.sha, '1', `${PREFIX}${ipOf(j)}`, String(windowMs))
    await server.connection.send(Buffer.from(text), end - i)
  }
  const after = await info(server.admin, 'memory', 'used_memory')
  await server.admin.flushall('SYNC')
  return (after - before) / count
}

/** The shared servers' other app: OTHER.keys values without a TTL, before any client arrives. */
async function fillOther(server) {
  let text = ''
  for (let i = 0; i < OTHER.keys; i++) text += command('SET', `cache:${i}`, OTHER.value)
  await server.connection.send(Buffer.from(text), OTHER.keys)
}

/** One seed at one pressure: every policy in both variants, plus the control, fed the same ticks at the same moments. */
async function runSeed({ seed, pressure, tickMs, windows }) {
  const windowMs = windowMsOf(tickMs)
  const ticks = windows * WINDOW_TICKS
  const workload = buildSchedule(seed, ticks)
  const { schedule, kind } = workload
  const peak = peakLive(workload)

  const servers = await Promise.all([
    startServer('noeviction', 'control', windowMs),
    ...VARIANTS.flatMap((variant) => POLICIES.map((policy) => startServer(policy, variant, windowMs))),
  ])
  const [control] = servers
  try {
    // Calibrated on a server whose own peak is not reported: the control's used_memory_peak is.
    const bytesPerCounter = await calibrate(servers.at(-1), peak, windowMs)
    const room = Math.round(pressure * peak * bytesPerCounter)
    await Promise.all(servers.filter((s) => s.variant === 'shared').map(fillOther))
    for (const server of servers) {
      server.empty = await info(server.admin, 'memory', 'used_memory')
      if (server.variant !== 'control') await server.admin.config('SET', 'maxmemory', String(server.empty + room))
    }

    const encoded = Array.from(kind, (_, id) =>
      Buffer.from(command('EVALSHA', control.sha, '1', `${PREFIX}${ipOf(id)}`, String(windowMs))),
    )
    const S = servers.length
    // The exact limiter, per client: the tick its window opened and the hits in it so far. Per
    // client and server: the hits that server admitted (and that failed) in that same window, and
    // over the client's whole life, against what the exact limiter admitted over it.
    const opened = new Int32Array(kind.length).fill(-1e9)
    const sent = new Int32Array(kind.length)
    const exactTotal = new Int32Array(kind.length)
    const admitted = new Int32Array(kind.length * S)
    const failed = new Int32Array(kind.length * S)
    const admittedTotal = new Int32Array(kind.length * S)
    const tally = servers.map(() => ({
      excess: [0, 0, 0],
      windowsWithExcess: 0,
      abusersLeaking: new Set(),
      wrongRefusals: 0,
      decisionsDiffering: 0,
      writeErrors: 0,
      ticksWithErrors: 0,
      slowestMs: 0,
      lateTicks: 0,
      other: { reads: 0, readMisses: 0, refused: new Set() },
    }))
    const truth = { requests: [0, 0, 0], refused: [0, 0, 0], windows: 0 }
    const close = (id) => {
      truth.refused[kind[id]] += Math.max(0, sent[id] - MAX)
      truth.windows++
      exactTotal[id] += Math.min(sent[id], MAX)
      for (let s = 0; s < S; s++) {
        const k = id * S + s
        const excess = admitted[k] - MAX
        if (excess > 0) {
          tally[s].excess[kind[id]] += excess
          tally[s].windowsWithExcess++
          if (kind[id] === 2) tally[s].abusersLeaking.add(id)
        }
        tally[s].wrongRefusals += Math.max(0, Math.min(sent[id], MAX) - admitted[k] - failed[k])
        admittedTotal[k] += admitted[k]
        admitted[k] = 0
        failed[k] = 0
      }
    }

    const pick = random(seed + 1000)
    let otherWritten = OTHER.keys
    const timing = { sendLagMs: [], replyMs: [] }
    const start = performance.now() + 50
    for (let tick = 0; tick < ticks; tick++) {
      const due = start + tick * tickMs
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())))
      const sentAt = performance.now()
      timing.sendLagMs.push(sentAt - due)
      const hits = schedule[tick]
      const allowed = new Uint8Array(hits.length)
      hits.forEach((id, i) => {
        if (tick - opened[id] > WINDOW_TICKS) {
          if (opened[id] >= 0) close(id)
          opened[id] = tick
          sent[id] = 0
        }
        sent[id]++
        truth.requests[kind[id]]++
        allowed[i] = sent[id] <= MAX ? 1 : 0
      })
      const counters = Buffer.concat(Array.from(hits, (id) => encoded[id]))
      // The other app's tick: reads, recent keys most often, and now and then a new key.
      const reads = Array.from(
        { length: OTHER.readsPerTick },
        () => otherWritten - 1 - Math.floor(otherWritten * pick() ** 3),
      )
      const adds = tick % OTHER.newEveryTicks === 0 ? 1 : 0
      const other = Buffer.from(
        reads.map((i) => command('GET', `cache:${i}`)).join('') +
          (adds ? command('SET', `cache:${otherWritten}`, OTHER.value) : ''),
      )
      const shared = Buffer.concat([counters, other])
      // Each server's answer, timed from the tick's due moment. One later than half a tick could
      // put a window's edge on the other side for that server: counted as lateTicks (expected 0).
      const replies = await Promise.all(
        servers.map((server, s) =>
          (server.variant === 'shared'
            ? server.connection.send(shared, hits.length + reads.length + adds)
            : server.connection.send(counters, hits.length)
          ).then((codes) => {
            const late = performance.now() - due
            tally[s].slowestMs = Math.max(tally[s].slowestMs, late)
            if (late >= tickMs / 2) tally[s].lateTicks++
            return codes
          }),
        ),
      )
      timing.replyMs.push(performance.now() - sentAt)
      replies.forEach((codes, s) => {
        const t = tally[s]
        let errors = 0
        hits.forEach((id, i) => {
          const code = codes[i]
          if (code === ERROR) {
            failed[id * S + s]++
            errors++
            return
          }
          const yes = code >= 0 && code <= MAX ? 1 : 0
          admitted[id * S + s] += yes
          if (yes !== allowed[i]) t.decisionsDiffering++
        })
        t.writeErrors += errors
        if (servers[s].variant === 'shared') {
          reads.forEach((key, i) => {
            t.other.reads++
            if (codes[hits.length + i] === NIL && !t.other.refused.has(key)) t.other.readMisses++
          })
          if (adds && codes.at(-1) === ERROR) {
            t.other.refused.add(otherWritten)
            errors++
          }
        }
        if (errors > 0) t.ticksWithErrors++
      })
      otherWritten += adds
    }
    for (let id = 0; id < kind.length; id++) if (opened[id] >= 0) close(id)

    const refusedByExact = truth.refused.reduce((a, b) => a + b)
    const results = []
    for (const [s, server] of servers.entries()) {
      const t = tally[s]
      // Over each client's whole life: admitted here minus admitted by the exact limiter. Unlike
      // the per-window figure, a window that is only shifted (and so admits early what the next
      // would have) nets out; what remains is the budget eviction really handed out.
      let netExtra = 0
      for (let id = 0; id < kind.length; id++) netExtra += Math.max(0, admittedTotal[id * S + s] - exactTotal[id])
      let otherLost = null
      if (server.variant === 'shared') {
        const pipeline = server.admin.pipeline()
        for (let i = 0; i < otherWritten; i++) pipeline.exists(`cache:${i}`)
        const exists = await pipeline.exec()
        otherLost = exists.filter(([, found], i) => found === 0 && !t.other.refused.has(i)).length
      }
      const beyondMax = t.excess.reduce((a, b) => a + b)
      results.push({
        policy: server.policy,
        variant: server.variant,
        maxmemory: server.variant === 'control' ? 0 : server.empty + room,
        admittedBeyondMax: beyondMax,
        admittedBeyondMaxByClass: Object.fromEntries(CLASSES.map((name, c) => [name, t.excess[c]])),
        // Of the requests the exact limiter refused, the share this server let through.
        shareOfRefusalsLost: beyondMax / refusedByExact,
        windowsWithExcess: t.windowsWithExcess,
        abusersLeaking: t.abusersLeaking.size,
        netExtraPerClientLife: netExtra,
        wrongRefusals: t.wrongRefusals,
        decisionsDiffering: t.decisionsDiffering,
        writeErrors: t.writeErrors,
        writeErrorShare: t.writeErrors / truth.requests.reduce((a, b) => a + b),
        timeWithWriteErrors: t.ticksWithErrors / ticks,
        firstError: [...server.connection.errors.values()][0] ?? null,
        evictedKeys: await info(server.admin, 'stats', 'evicted_keys'),
        expiredKeys: await info(server.admin, 'stats', 'expired_keys'),
        lateTicks: t.lateTicks,
        slowestReplyMs: Math.round(t.slowestMs),
        other:
          server.variant === 'shared'
            ? {
                keys: otherWritten,
                lost: otherLost,
                writesRefused: t.other.refused.size,
                reads: t.other.reads,
                readMisses: t.other.readMisses,
              }
            : null,
      })
    }
    const quantile = (values, q) => Math.round([...values].sort((a, b) => a - b)[Math.floor(q * (values.length - 1))])
    const byClass = (values) => Object.fromEntries(CLASSES.map((name, c) => [name, values[c]]))
    return {
      seed,
      pressure,
      tickMs,
      windowMs,
      windows,
      redis: /redis_version:(\S+)/.exec(await control.admin.info('server'))[1],
      workload: {
        clients: { total: kind.length, ...byClass(CLASSES.map((_, c) => kind.filter((k) => k === c).length)) },
        requests: byClass(truth.requests),
        refusedByExactLimiter: byClass(truth.refused),
        windows: truth.windows,
        peakLiveCounters: peak,
      },
      memory: {
        bytesPerCounter: Math.round(bytesPerCounter),
        roomForCounters: room,
        // What the run needed at its peak without a limit, transient buffers included.
        controlPeakBytes: (await info(control.admin, 'memory', 'used_memory_peak')) - control.empty,
      },
      timing: {
        sendLagMs: { p99: quantile(timing.sendLagMs, 0.99), max: quantile(timing.sendLagMs, 1) },
        replyMs: {
          median: quantile(timing.replyMs, 0.5),
          p99: quantile(timing.replyMs, 0.99),
          max: quantile(timing.replyMs, 1),
        },
      },
      results,
    }
  } finally {
    for (const server of servers) {
      server.connection.close()
      server.admin.disconnect()
      server.child.kill('SIGKILL')
    }
  }
}

/** How many counters the shipped maxmemory holds: a 256 MB noeviction Redis filled until it refuses. */
async function capacityAt256mb() {
  const server = await startServer('noeviction', 'capacity', 900_000)
  try {
    const maxmemory = 256 * 2 ** 20
    await server.admin.config('SET', 'maxmemory', String(maxmemory))
    const empty = await info(server.admin, 'memory', 'used_memory')
    let counters = 0
    for (let batch = 0; ; batch++) {
      let text = ''
      for (let j = batch * 5000; j < (batch + 1) * 5000; j++)
        text += command('EVALSHA', server.sha, '1', `${PREFIX}${ipOf(j)}`, '900000')
      const codes = await server.connection.send(Buffer.from(text), 5000)
      const refused = codes.indexOf(ERROR)
      if (refused !== -1) {
        counters += refused
        break
      }
      counters += 5000
    }
    return {
      maxmemory,
      emptyUsedMemory: empty,
      counters,
      bytesPerCounter: Math.round((maxmemory - empty) / counters),
      memoryUsageOfOneKey: await server.admin.memory('USAGE', `${PREFIX}${ipOf(1)}`),
    }
  } finally {
    server.connection.close()
    server.admin.disconnect()
    server.child.kill('SIGKILL')
  }
}

const median = (values) => {
  const s = [...values].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
/** Median and range over seeds of every number in a result (nested objects alike). */
function summarise(runs) {
  const [first] = runs
  const out = {}
  for (const [key, value] of Object.entries(first)) {
    if (typeof value === 'number') {
      const values = runs.map((run) => run[key])
      out[key] = { median: median(values), min: Math.min(...values), max: Math.max(...values) }
    } else if (value !== null && typeof value === 'object') out[key] = summarise(runs.map((run) => run[key]))
  }
  return out
}

const began = performance.now()
const runs = []
const summary = []
for (const { part, tickMs, windows, pressures, seeds } of PLAN) {
  for (const pressure of pressures) {
    const group = []
    for (let seed = 1; seed <= seeds; seed++) {
      group.push(await runSeed({ seed, pressure, tickMs, windows }))
      const elapsed = Math.round((performance.now() - began) / 1000)
      console.error(`${part}: ${tickMs} ms ticks, room ${pressure * 100} %, seed ${seed} done (${elapsed} s)`)
    }
    runs.push(...group)
    const policies = {}
    for (const variant of ['control', ...VARIANTS]) {
      policies[variant] = {}
      for (const policy of variant === 'control' ? ['noeviction'] : POLICIES) {
        const results = group.map((run) => run.results.find((r) => r.variant === variant && r.policy === policy))
        policies[variant][policy] = summarise(results)
      }
    }
    const workload = summarise(group.map((run) => ({ ...run.workload, memory: run.memory, timing: run.timing })))
    summary.push({ part, tickMs, windowMs: windowMsOf(tickMs), windows, pressure, seeds, workload, ...policies })
  }
}
const capacity = QUICK ? null : await capacityAt256mb()

const report = {
  redis: runs[0].redis,
  mode: QUICK ? 'quick' : 'full',
  settings: {
    plan: PLAN,
    windowTicks: WINDOW_TICKS,
    max: MAX,
    clientsInSession: CLIENTS,
    abuserShare: ABUSER_SHARE,
    sessionWindows: SESSION,
    otherApp: { keys: OTHER.keys, valueBytes: OTHER.value.length, readsPerTick: OTHER.readsPerTick },
  },
  capacity,
  summary,
  runs,
  seconds: Math.round((performance.now() - began) / 1000),
}
if (OUT !== undefined) {
  writeFileSync(OUT, `${JSON.stringify(report, null, 2)}\n`)
  // As `pnpm lint` checks it (prettier prints short arrays on one line).
  const prettier = fileURLToPath(import.meta.resolve('../node_modules/.bin/prettier'))
  const format = spawnSync(prettier, ['--write', OUT], { encoding: 'utf8' })
  if (format.status !== 0) throw new Error(`prettier --write ${OUT} failed: ${format.stderr}`)
}

const figure = ({ median: m, min, max }, format = (v) => Math.round(v).toLocaleString('en-US')) =>
  min === max ? format(m) : `${format(m)} (${format(min)}-${format(max)})`
const percent = (v) => `${(v * 100).toFixed(1)} %`
console.log(`Redis ${report.redis}, max ${MAX} per window; median (min-max) over seeds; ${report.seconds} s`)
for (const { part, windowMs, windows, pressure, seeds, workload, ...variants } of summary) {
  const refused = Object.values(workload.refusedByExactLimiter).reduce((sum, r) => sum + r.median, 0)
  console.log(
    `\n${part}: ${seeds} seed(s) x ${windows} windows of ${windowMs} ms; room for ${pressure * 100} % of the ` +
      `peak of live counters; the exact limiter refused ${Math.round(refused)} requests (median)`,
  )
  for (const [variant, policies] of Object.entries(variants)) {
    if (typeof policies !== 'object' || !('noeviction' in policies)) continue
    console.log(
      `\n${variant.padEnd(14)} beyond max             of which abusers      net extra          wrong 429s     ` +
        'write errors (time)       evicted          other keys lost',
    )
    for (const [policy, r] of Object.entries(policies)) {
      console.log(
        [
          policy.padEnd(14),
          figure(r.admittedBeyondMax).padEnd(22),
          figure(r.admittedBeyondMaxByClass.abuser).padEnd(21),
          figure(r.netExtraPerClientLife).padEnd(18),
          figure(r.wrongRefusals).padEnd(14),
          `${figure(r.writeErrors)} (${percent(r.timeWithWriteErrors.median)})`.padEnd(25),
          figure(r.evictedKeys).padEnd(16),
          r.other === undefined ? '-' : `${figure(r.other.lost)} of ${r.other.keys.median}`,
          r.lateTicks.max > 0 ? `  late ticks: ${r.lateTicks.max}` : '',
        ].join(' '),
      )
    }
  }
}
if (capacity !== null)
  console.log(`\n256 MB: ${capacity.counters.toLocaleString('en-US')} counters, ${capacity.bytesPerCounter} B each`)
