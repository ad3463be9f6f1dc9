// Exactness benchmark (`pnpm bench:exact`): how many of N concurrent requests for one client pass a
// limit of 100 shared through one real redis-server, with 2 server processes per setup. Ours (the
// real server, as `pnpm start` runs it) beside the anchors, interleaved in rounds, in four scenarios:
// just started, warmed up, with every CPU busy, and while Redis is stopped (SIGSTOP) for 200 ms.
// Prints the medians as a Markdown table. `--quick`: one round (under a minute).
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Agent, get } from 'node:http'
import { availableParallelism } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { freePort, startRedis } from './support.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = join(HERE, '..')
const QUICK = process.argv.includes('--quick')
const ROUNDS = QUICK ? 1 : 3
const LIMIT = 100
const BURST = 400
const PROCESSES = 2
/** Warm-up: keys over their limit too, so that both the pass and the 429 paths have run. */
const WARMUP_KEYS = QUICK ? 10 : 20
const WARMUP_PER_KEY = 200
const WARMUP_CONCURRENCY = 50
const STALL_MS = 200
/** Time for a busy loop to be scheduled and spinning before the burst. */
const BUSY_SETTLE_MS = 300
/** Between stalls: ours probes Redis back within a second; each stall should find every setup healthy. */
const RECOVERY_MS = 2000
const REQUEST_TIMEOUT_MS = 10_000
const STOP_GRACE_MS = 5000

const SCENARIOS = {
  cold: 'a. cold burst',
  warm: 'b. warm burst',
  cpu: `c. burst, ${availableParallelism()} busy loops`,
  stall: `d. burst, Redis stopped ${STALL_MS} ms`,
}

/**
 * Each setup's server and how it is started. Every one keys a client by its address (no proxy is
 * trusted), so a burst from one loopback address is one client, and a new address a fresh key.
 */
const SETUPS = [
  {
    name: 'express-rate-limit + rate-limit-redis',
    script: join(HERE, 'servers/original-stack.mjs'),
    path: '/api/v1/metaverses',
    env: { LIMIT: String(LIMIT) },
    ready: 'listening',
  },
  {
    name: 'rate-limiter-flexible, RateLimiterRedis',
    script: join(HERE, 'servers/perf-app.mjs'),
    path: '/r',
    env: { SCENARIO: 'rlf-redis', LIMIT: String(LIMIT) },
    ready: 'listening',
  },
  {
    name: 'rate-limiter-flexible, RateLimiterRedis + insuranceLimiter',
    script: join(HERE, 'servers/rlf-insurance.mjs'),
    path: '/r',
    env: { LIMIT: String(LIMIT), INSTANCES: String(PROCESSES) },
    ready: 'listening',
  },
  {
    name: '**ours** (packages/server, defaults)',
    script: join(ROOT, 'packages/server/dist/main.js'),
    path: '/api/v1/metaverses',
    // Only the limit and the fleet size: every other setting (the store timeout too) at its default.
    env: { RATE_LIMIT_INSTANCES: String(PROCESSES), RATE_LIMIT_READ_MAX: String(LIMIT) },
    ready: '[Server] Listening on',
  },
]

/** Every process the bench started and that has not exited: the only ones it ever signals. */
const children = new Set()
function track(child) {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function stop(child, signal = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill(signal)
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS)
  await exited
  clearTimeout(timer)
}

/**
 * One server process of a setup, resolved once it says it listens. Its environment is PATH and
 * the setup's variables only: a REDIS_URL or RATE_LIMIT_* of the caller's shell must not leak in.
 */
function startServer(setup, redisUrl) {
  return freePort().then(
    (port) =>
      new Promise((resolve, reject) => {
        const child = track(
          spawn(process.execPath, [setup.script], {
            cwd: ROOT,
            env: { PATH: process.env.PATH, PORT: String(port), REDIS_URL: redisUrl, ...setup.env },
            stdio: ['ignore', 'pipe', 'pipe'],
          }),
        )
        let output = ''
        let ready = false
        const timer = setTimeout(() => reject(new Error(`${setup.name} did not start:\n${output}`)), 15_000)
        child.once('exit', (code) => {
          clearTimeout(timer)
          reject(new Error(`${setup.name} exited with ${code}:\n${output}`))
        })
        // Read the output to the end: a full pipe would stall a server that logs every request.
        const onData = (chunk) => {
          if (ready) return
          output += chunk
          if (output.includes(setup.ready)) {
            ready = true
            clearTimeout(timer)
            resolve({ child, url: `http://127.0.0.1:${port}${setup.path}` })
          }
        }
        child.stdout.on('data', onData)
        child.stderr.on('data', onData)
      }),
  )
}

/** A setup's processes, all started at once: the burst follows the last one's first line. */
const startFleet = (setup, redisUrl) =>
  Promise.all(Array.from({ length: PROCESSES }, () => startServer(setup, redisUrl)))

let lastClient = 1 << 16
/**
 * A loopback address no request of this run came from yet (127.1.0.1 on): a client that no limiter
 * has seen. Linux routes all of 127.0.0.0/8 to lo, so any of them can be bound as the source.
 */
function freshClient() {
  do lastClient++
  while ((lastClient & 255) === 0 || (lastClient & 255) === 255)
  return `127.${(lastClient >> 16) & 255}.${(lastClient >> 8) & 255}.${lastClient & 255}`
}

/** One GET from `client`'s address: its status ('error' for no answer), latency and end in ms. */
function request(url, client, agent = false) {
  const started = performance.now()
  return new Promise((resolve) => {
    const done = (status) => {
      const end = performance.now()
      resolve({ status, ms: end - started, end })
    }
    const req = get(url, { localAddress: client, agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      res.resume()
      res.once('end', () => done(res.statusCode))
      res.once('error', () => done('error'))
    })
    req.once('timeout', () => req.destroy(new Error('timeout')))
    req.once('error', () => done('error'))
  })
}

/**
 * BURST requests for one fresh client, all sent at once and split evenly over the fleet, each on
 * a connection of its own (nothing queues in the client): the statuses and the latency tail.
 */
async function burst(fleet) {
  const client = freshClient()
  const answers = await Promise.all(
    Array.from({ length: BURST }, (_, i) => request(fleet[i % fleet.length].url, client)),
  )
  const statuses = {}
  for (const { status } of answers) statuses[status] = (statuses[status] ?? 0) + 1
  const latencies = answers.map(({ ms }) => ms)
  return { statuses, p99: percentile(latencies, 99), max: Math.max(...latencies), ends: answers.map(({ end }) => end) }
}

/** Thousands of requests on keys other than the burst's, over keep-alive connections as a proxy sends them. */
async function warmUp(fleet) {
  const clients = Array.from({ length: WARMUP_KEYS }, freshClient)
  const agents = clients.map((client) => new Agent({ keepAlive: true, localAddress: client }))
  const total = WARMUP_KEYS * WARMUP_PER_KEY
  let next = 0
  const worker = async () => {
    for (let i = next++; i < total; i = next++) {
      const key = Math.floor(i / WARMUP_PER_KEY)
      await request(fleet[i % fleet.length].url, clients[key], agents[key])
    }
  }
  try {
    await Promise.all(Array.from({ length: WARMUP_CONCURRENCY }, worker))
  } finally {
    for (const agent of agents) agent.destroy()
  }
}

/** `run` with one busy loop per CPU spinning beside it; the loops are ended by pid afterwards. */
async function withBusyCpus(run) {
  const loops = Array.from({ length: availableParallelism() }, () =>
    track(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' })),
  )
  try {
    await sleep(BUSY_SETTLE_MS)
    return await run()
  } finally {
    await Promise.all(loops.map((loop) => stop(loop, 'SIGKILL')))
  }
}

/**
 * A burst sent while the redis-server is stopped; it goes on STALL_MS after the burst was sent. Also
 * counts the answers given before it went on: those were decided without Redis.
 */
async function stalledBurst(fleet, redis) {
  redis.kill('SIGSTOP')
  try {
    await stopped(redis.pid)
    const answers = burst(fleet)
    await sleep(STALL_MS)
    redis.kill('SIGCONT')
    const resumedAt = performance.now()
    const result = await answers
    return { ...result, whileStopped: result.ends.filter((end) => end < resumedAt).length }
  } finally {
    // Also when the burst threw before its SIGCONT: a stopped Redis must not outlive the bench.
    redis.kill('SIGCONT')
  }
}

/** Resolves once the kernel shows `pid` stopped (state T): the stall is real before the burst goes. */
async function stopped(pid) {
  for (let tries = 0; tries < 100; tries++) {
    if (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].startsWith('T')) return
    await sleep(1)
  }
  throw new Error(`redis-server ${pid} did not stop on SIGSTOP`)
}

function percentile(values, p) {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/**
 * One round: every scenario for every setup, in an order rotated by the round, so that no setup
 * is always first. Each setup's processes start right before its cold burst and live through the
 * round; every burst is on a fresh client. Returns one result per setup and scenario.
 */
async function runRound(round, redis, redisUrl) {
  const order = SETUPS.map((_, i) => SETUPS[(i + round) % SETUPS.length])
  const fleets = new Map()
  const results = []
  const record = (setup, scenario, result) => {
    // The answers' end times only served the stall's count: the results keep the numbers.
    results.push({ round, setup: setup.name, scenario, ...result, ends: undefined })
    process.stderr.write(
      `round ${round + 1} ${scenario.padEnd(5)} ${setup.name}: ${statusText(result.statuses)}  ` +
        `p99 ${result.p99.toFixed(0)} ms, max ${result.max.toFixed(0)} ms` +
        `${result.whileStopped === undefined ? '' : `, ${result.whileStopped} answered while Redis was stopped`}\n`,
    )
  }
  try {
    for (const setup of order) {
      fleets.set(setup, await startFleet(setup, redisUrl))
      record(setup, 'cold', await burst(fleets.get(setup)))
    }
    for (const setup of order) {
      await warmUp(fleets.get(setup))
      record(setup, 'warm', await burst(fleets.get(setup)))
    }
    for (const setup of order) record(setup, 'cpu', await withBusyCpus(() => burst(fleets.get(setup))))
    for (const setup of order) {
      await sleep(RECOVERY_MS)
      record(setup, 'stall', await stalledBurst(fleets.get(setup), redis))
    }
  } finally {
    await Promise.all([...fleets.values()].flat().map(({ child }) => stop(child)))
  }
  return results
}

const statusText = (statuses) =>
  Object.entries(statuses)
    .map(([status, n]) => `${status}×${n}`)
    .join(' ')

/** The median over the rounds of a setup's scenario, with the range when the rounds differ. */
function cell(runs, scenario) {
  const passed = runs.map((run) => run.statuses['200'] ?? 0)
  const [low, high] = [Math.min(...passed), Math.max(...passed)]
  let text = `${median(passed)} of ${BURST}${low === high ? '' : ` (${low}–${high})`}`
  const others = new Set(runs.flatMap((run) => Object.keys(run.statuses)).filter((s) => s !== '200' && s !== '429'))
  for (const status of [...others].sort()) {
    text += `, ${status}×${median(runs.map((run) => run.statuses[status] ?? 0))}`
  }
  return scenario === 'stall'
    ? `${text} | ${median(runs.map((run) => run.p99)).toFixed(0)} / ${median(runs.map((run) => run.max)).toFixed(0)} | ` +
        `${median(runs.map((run) => run.whileStopped))}`
    : text
}

function markdownTable(results) {
  const rows = [
    `| setup | ${Object.values(SCENARIOS).join(' | ')} | d. p99 / max ms | d. answered while Redis was stopped |`,
    `| --- | ${Object.keys(SCENARIOS)
      .map(() => '---:')
      .join(' | ')} | ---: | ---: |`,
  ]
  for (const setup of SETUPS) {
    const cells = Object.keys(SCENARIOS).map((scenario) =>
      cell(
        results.filter((r) => r.setup === setup.name && r.scenario === scenario),
        scenario,
      ),
    )
    rows.push(`| ${setup.name} | ${cells.join(' | ')} |`)
  }
  return rows.join('\n')
}

/** The version of a package the anchors load, from the bench's own dependencies. */
const versionOf = (name) => JSON.parse(readFileSync(join(HERE, 'node_modules', name, 'package.json'), 'utf8')).version

async function main() {
  const redisPort = await freePort()
  const redisUrl = `redis://127.0.0.1:${redisPort}`
  const redis = track(await startRedis(redisPort))
  const results = []
  try {
    for (let round = 0; round < ROUNDS; round++) results.push(...(await runRound(round, redis, redisUrl)))
  } finally {
    await stop(redis)
  }
  const redisVersion = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.trim()
  const anchors = ['express-rate-limit', 'rate-limit-redis', 'rate-limiter-flexible', 'ioredis']
  console.log(
    `${BURST} concurrent GETs for one client, split over ${PROCESSES} processes per setup sharing one ` +
      `redis-server, limit ${LIMIT} per 15 min window: passed (200) of ${BURST}, then statuses other than ` +
      `200 and 429. Median of ${ROUNDS} round${ROUNDS === 1 ? '' : 's'}` +
      `${ROUNDS === 1 ? '' : ' (range in brackets when the rounds differ)'}.\n` +
      `Node ${process.version}, ${redisVersion.split(' ').slice(0, 3).join(' ')}, ${availableParallelism()} CPUs; ` +
      `${anchors.map((name) => `${name} ${versionOf(name)}`).join(', ')}.\n`,
  )
  console.log(markdownTable(results))
}

// Ctrl-C: end every child by its pid (a stopped Redis takes SIGKILL too), then leave once they
// have exited, so that the redis-server's temporary directory is removed on its exit.
process.once('SIGINT', () => {
  const exits = [...children].map((child) => stop(child, 'SIGKILL'))
  void Promise.race([Promise.all(exits), sleep(STOP_GRACE_MS)]).then(() => process.exit(130))
})

try {
  await main()
} finally {
  for (const child of children) child.kill('SIGKILL')
}
