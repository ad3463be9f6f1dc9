// The performance benchmark (`pnpm bench`): bare Express against ours and the anchors, interleaved
// in rounds, on a 'allowed' (10,000 clients) and a 'blocked' (one client, >99% 429) traffic shape,
// in each setup users run (SETUPS): clients by IP or by API key, Redis on loopback or a hop away.
// Reports req/s, p50/p99, server CPU per request, Redis commands per request and the ratio to bare
// in the same round; writes the medians to docs/benchmarks/performance.{json,svg} and the table
// into docs/performance.md. `--quick` runs everything briefly (a smoke test, about three minutes).
// `--setups`, `--shapes` and `--scenarios` pick some of each.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem, release } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { Redis } from 'ioredis'

import { renderChart } from './perf-chart.mjs'
import { freePort, NAMES, SETUPS, startDelayProxy, startRedis } from './support.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = join(HERE, '..')
const args = process.argv.slice(2)
const flag = (name) => args.includes(name)
const option = (name, fallback) => {
  const at = args.indexOf(name)
  return at === -1 ? fallback : args[at + 1]
}

const QUICK = flag('--quick')
// --quick runs each of its 56 runs for about 2 s in all: a smoke test of every setup, not a measure.
const ROUNDS = Number(option('--rounds', QUICK ? 1 : 3))
const SECONDS = Number(option('--seconds', QUICK ? 0.5 : 5))
const WARMUP_SECONDS = QUICK ? 0.3 : 2
/** The latency probe: an open-loop load well below saturation, timed to the microsecond. */
const LATENCY_RATE = 2000
const LATENCY_SECONDS = QUICK ? 0.3 : 3
const OUT = option('--out', QUICK ? join(tmpdir(), 'universo-bench') : join(ROOT, 'docs', 'benchmarks'))
const WRITE_DOCS = !QUICK && option('--out', undefined) === undefined
export const SCENARIOS = Object.keys(NAMES)
const ONLY_SETUPS = option('--setups', undefined)?.split(',')
for (const name of ONLY_SETUPS ?? []) {
  if (!(name in SETUPS)) throw new Error(`--setups: ${name} is not a setup; allowed: ${Object.keys(SETUPS).join(', ')}`)
}
const setups = ONLY_SETUPS ?? Object.keys(SETUPS)
/** The scenarios of a setup: all of them on loopback, the Redis ones (and bare) a hop away. */
const scenariosOf = (setup) =>
  SETUPS[setup].roundTripMs === 0 ? scenarios : scenarios.filter((s) => s === 'bare' || s.includes('redis'))
const PROBES = ['noop-sync', 'noop-async', 'probe-ip4', 'probe-headers']
const ONLY = option('--scenarios', undefined)?.split(',')
for (const name of ONLY ?? []) {
  if (!SCENARIOS.includes(name) && !PROBES.includes(name)) {
    throw new Error(`--scenarios: ${name} is not a scenario; allowed: ${[...SCENARIOS, ...PROBES].join(', ')}`)
  }
}
// --scenarios picks some (bare always runs); it also accepts the probes.
const scenarios = ONLY === undefined ? SCENARIOS : ['bare', ...ONLY.filter((s) => s !== 'bare')]
/**
 * Each traffic shape's limit: never reached by 10,000 clients in turn (about 10 requests each in a
 * run), yet low enough that every algorithm keeps each client's state for the run, so Redis's bytes
 * per client can be read; or reached by the one client at once.
 */
const LIMITS = { allowed: 100, blocked: 10 }
const ONLY_SHAPES = option('--shapes', undefined)?.split(',')
for (const name of ONLY_SHAPES ?? []) {
  if (!(name in LIMITS)) throw new Error(`--shapes: ${name} is not a shape; allowed: ${Object.keys(LIMITS).join(', ')}`)
}
const SHAPES = Object.fromEntries(Object.entries(LIMITS).filter(([shape]) => ONLY_SHAPES?.includes(shape) ?? true))

/** Server on CPU 0, load and Redis on CPU 1, when the machine has two and taskset exists. */
const PIN = cpus().length >= 2 && spawnSync('taskset', ['--version']).status === 0
const pinned = (cpu, command, commandArgs) =>
  PIN ? ['taskset', ['-c', String(cpu), command, ...commandArgs]] : [command, commandArgs]

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim())

/** utime + stime of a process, in µs. */
function cpuMicros(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1e6
}

/**
 * Commands that make a round trip of their own: a script or a transaction. The commands a script or
 * MULTI/EXEC runs inside it are counted by Redis too, but travel with it.
 */
const ROUND_TRIPS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro', 'exec'])

/**
 * Calls of every Redis command so far (INFO itself left out), and of the round-trip ones; the µs
 * Redis spent running the round-trip ones (commandstats: a script's or a transaction's time holds
 * the commands it ran, which commandstats also counts on their own, so summing every command would
 * count them twice), and its process CPU in all (used_cpu_user + sys: network I/O and parsing
 * too), in µs.
 */
async function redisCalls(admin) {
  const info = await admin.info('commandstats')
  let commands = 0
  let roundTrips = 0
  let commandMicros = 0
  for (const [, name, count, usec] of info.matchAll(/^cmdstat_([\w|]+):calls=(\d+),usec=(\d+)/gm)) {
    if (name === 'info') continue
    commands += Number(count)
    if (!ROUND_TRIPS.has(name)) continue
    roundTrips += Number(count)
    commandMicros += Number(usec)
  }
  const memory = await admin.info('memory')
  const usedMemory = Number(/^used_memory:(\d+)/m.exec(memory)?.[1] ?? 0)
  const cpu = await admin.info('cpu')
  const seconds = (field) => Number(new RegExp(`^${field}:([\\d.]+)`, 'm').exec(cpu)?.[1] ?? 0)
  const processMicros = (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1e6
  return { commands, roundTrips, commandMicros, processMicros, usedMemory }
}

function withoutRedisUrl(env) {
  const rest = { ...env }
  delete rest.REDIS_URL
  return rest
}

function startServer(scenario, shape, port, redisUrl, keying) {
  const [command, commandArgs] = pinned(0, process.execPath, [join(HERE, 'servers', 'perf-app.mjs')])
  const child = spawn(command, commandArgs, {
    // Only Redis scenarios get REDIS_URL: ours would otherwise pick it up from the environment.
    env: {
      ...withoutRedisUrl(process.env),
      SCENARIO: scenario,
      KEYING: keying,
      LIMIT: String(SHAPES[shape]),
      PORT: String(port),
      // Every setup times a PING to Redis during the latency probe (perf-app.mjs), for reference.
      PING_URL: redisUrl,
      ...(scenario.includes('redis') ? { REDIS_URL: redisUrl } : {}),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${scenario} exited with ${code} before listening`)))
    child.stdout.on('data', (chunk) => {
      if (chunk.toString().includes('listening')) resolve(child)
    })
  })
}

function runLoad(url, shape, keying, seconds, rate) {
  const loadArgs = [
    join(HERE, 'perf-load.mjs'),
    url,
    shape,
    String(seconds),
    ...(rate === undefined ? [] : [String(rate)]),
  ]
  const [command, commandArgs] = pinned(1, process.execPath, loadArgs)
  const result = spawnSync(command, commandArgs, { encoding: 'utf8', env: { ...process.env, KEYING: keying } })
  if (result.status !== 0) throw new Error(`load failed: ${result.stderr}`)
  return JSON.parse(result.stdout.trim().split('\n').at(-1))
}

async function stop(child) {
  if (child.exitCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await exited
}

/** The distinct clients of the allowed shape (perf-load.mjs): all of them are seen in a run. */
const CLIENTS = 10_000

/** How many keys MEMORY USAGE reads, spread over the keyspace by SCAN. */
const MEMORY_SAMPLE = 1_000

/**
 * What Redis holds per client: the mean MEMORY USAGE (SAMPLES 0, every field of a hash counted) of
 * up to MEMORY_SAMPLE keys, times the keys per client (DBSIZE over CLIENTS). It leaves out the
 * keyspace's own dict entries and expiry entries, which used_memory's delta also shows.
 */
async function memoryUsagePerClient(admin) {
  const keys = []
  let cursor = '0'
  do {
    const [next, found] = await admin.scan(cursor, 'COUNT', 500)
    keys.push(...found)
    cursor = next
  } while (cursor !== '0' && keys.length < MEMORY_SAMPLE)
  if (keys.length === 0) return 0
  let bytes = 0
  for (const key of keys.slice(0, MEMORY_SAMPLE)) bytes += Number(await admin.memory('USAGE', key, 'SAMPLES', 0))
  return (bytes / Math.min(keys.length, MEMORY_SAMPLE)) * ((await admin.dbsize()) / CLIENTS)
}

/** One run: `scenario`'s server in `setup`, reaching Redis at `redisUrl` (a delay proxy's, a hop away). */
async function measure(scenario, shape, setup, redisUrl, admin) {
  const { keying } = SETUPS[setup]
  const port = await freePort()
  await admin.flushall()
  const server = await startServer(scenario, shape, port, redisUrl, keying)
  try {
    const url = `http://127.0.0.1:${port}`
    // Redis's memory with the server connected and no client counted yet.
    const { usedMemory: memoryBefore } = await redisCalls(admin)
    runLoad(url, shape, keying, WARMUP_SECONDS)
    const cpuBefore = cpuMicros(server.pid)
    const callsBefore = await redisCalls(admin)
    const load = runLoad(url, shape, keying, SECONDS)
    const cpu = cpuMicros(server.pid) - cpuBefore
    const callsAfter = await redisCalls(admin)
    const memoryUsage = shape === 'allowed' && scenario.includes('redis') ? await memoryUsagePerClient(admin) : 0
    const latency = runLoad(url, shape, keying, LATENCY_SECONDS, LATENCY_RATE)
    const hold = await (await fetch(`${url}/hold/stop`)).json()
    // Every probe request, and nothing else, was timed in the server (bare has no limiter to time).
    if (scenario !== 'bare' && hold.count !== latency.requests) {
      process.stderr.write(
        `warning: ${scenario} timed ${hold.count} requests in the server, the probe ${latency.requests}\n`,
      )
    }
    const limited = load.statuses['429'] ?? 0
    return {
      setup,
      scenario,
      shape,
      rps: load.requests / load.seconds,
      p50: load.p50,
      p99: load.p99,
      cpuPerRequest: cpu / load.requests,
      redisPerRequest: (callsAfter.commands - callsBefore.commands) / load.requests,
      roundTripsPerRequest: (callsAfter.roundTrips - callsBefore.roundTrips) / load.requests,
      redisCommandUsPerRequest: (callsAfter.commandMicros - callsBefore.commandMicros) / load.requests,
      redisCpuUsPerRequest: (callsAfter.processMicros - callsBefore.processMicros) / load.requests,
      // What Redis holds per client once the 10,000 clients of the allowed shape have all been seen:
      // its keys' MEMORY USAGE, and used_memory's growth (the keyspace's own tables too).
      redisBytesPerClient: memoryUsage,
      redisUsedMemoryPerClient: shape === 'allowed' ? (callsAfter.usedMemory - memoryBefore) / CLIENTS : 0,
      limitedShare: limited / load.requests,
      p50us: latency.p50us,
      p99us: latency.p99us,
      holdP50us: hold.p50us,
      holdP99us: hold.p99us,
      holdP99OutsideGcUs: hold.p99OutsideGcUs,
      heldOverOneMs: hold.overOneMs / Math.max(1, hold.count),
      heldOverOneMsWithGc: hold.overOneMs === 0 ? 0 : hold.overOneMsWithGc / hold.overOneMs,
      gcPauses: hold.gcPauses,
      gcP50Ms: hold.gcP50Ms,
      gcMaxMs: hold.gcMaxMs,
      gcTotalMs: hold.gcTotalMs,
      pingP50us: hold.pingP50us,
      pingP99us: hold.pingP99us,
      pingsOverOneMs: hold.pingsOverOneMs / Math.max(1, hold.pings),
      errors: load.errors + load.timeouts,
      statuses: load.statuses,
    }
  } finally {
    await stop(server)
  }
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

async function main() {
  const redisPort = await freePort()
  const redis = await startRedis(redisPort, PIN ? { cpu: 1 } : {})
  const redisUrl = `redis://127.0.0.1:${redisPort}`
  const admin = new Redis(redisUrl)
  // One delay proxy per hop setup, beside Redis on CPU 1; the loopback setups use Redis itself.
  const proxies = []
  const urls = {}
  const runs = []
  try {
    for (const setup of setups) {
      const { roundTripMs } = SETUPS[setup]
      if (roundTripMs === 0) {
        urls[setup] = redisUrl
        continue
      }
      const proxy = await startDelayProxy(redisPort, roundTripMs, PIN ? { cpu: 1 } : {})
      proxies.push(proxy)
      urls[setup] = `redis://127.0.0.1:${proxy.port}`
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const setup of setups) {
        for (const shape of Object.keys(SHAPES)) {
          // Each round starts the scenarios at another place, so no one always runs first or last.
          const mine = scenariosOf(setup)
          const order = mine.map((_, i) => mine[(i + round - 1) % mine.length])
          const byScenario = {}
          for (const scenario of order) {
            const run = await measure(scenario, shape, setup, urls[setup], admin)
            byScenario[scenario] = run
            process.stderr.write(
              `round ${round} ${setup.padEnd(9)} ${shape.padEnd(7)} ${scenario.padEnd(17)} ${run.rps.toFixed(0).padStart(6)} req/s  ` +
                `p50 ${run.p50} ms  p99 ${run.p99} ms  ${run.cpuPerRequest.toFixed(1)} µs CPU/req  ` +
                `${run.redisPerRequest.toFixed(2)} Redis cmd/req (${run.roundTripsPerRequest.toFixed(2)} round trips)  ` +
                `latency p50 ${run.p50us.toFixed(0)} µs p99 ${run.p99us.toFixed(0)} µs  ` +
                `held p50 ${run.holdP50us.toFixed(0)} µs p99 ${run.holdP99us.toFixed(0)} µs ` +
                `(${run.holdP99OutsideGcUs.toFixed(0)} µs outside GC; ${run.gcPauses} GC pauses, max ${run.gcMaxMs.toFixed(1)} ms)  ` +
                `PING p50 ${run.pingP50us.toFixed(0)} µs  ${(run.limitedShare * 100).toFixed(1)}% 429\n`,
            )
          }
          for (const run of Object.values(byScenario)) {
            runs.push({
              round,
              ...run,
              ratio: run.rps / byScenario.bare.rps,
              cpuOverBare: run.cpuPerRequest - byScenario.bare.cpuPerRequest,
              p99usOverBare: run.p99us - byScenario.bare.p99us,
            })
          }
        }
      }
    }
  } finally {
    admin.disconnect()
    for (const proxy of proxies) proxy.kill('SIGTERM')
    redis.kill('SIGTERM')
  }

  const summary = []
  for (const setup of setups) {
    for (const shape of Object.keys(SHAPES)) {
      for (const scenario of scenariosOf(setup)) {
        const mine = runs.filter((r) => r.setup === setup && r.shape === shape && r.scenario === scenario)
        const pick = (field) => median(mine.map((r) => r[field]))
        summary.push({
          setup,
          shape,
          scenario,
          rps: pick('rps'),
          ratio: pick('ratio'),
          p50: pick('p50'),
          p99: pick('p99'),
          cpuPerRequest: pick('cpuPerRequest'),
          cpuOverBare: pick('cpuOverBare'),
          redisPerRequest: pick('redisPerRequest'),
          roundTripsPerRequest: pick('roundTripsPerRequest'),
          redisCommandUsPerRequest: pick('redisCommandUsPerRequest'),
          redisCpuUsPerRequest: pick('redisCpuUsPerRequest'),
          redisBytesPerClient: pick('redisBytesPerClient'),
          redisUsedMemoryPerClient: pick('redisUsedMemoryPerClient'),
          limitedShare: pick('limitedShare'),
          p50us: pick('p50us'),
          p99us: pick('p99us'),
          p99usOverBare: pick('p99usOverBare'),
          holdP50us: pick('holdP50us'),
          holdP99us: pick('holdP99us'),
          holdP99OutsideGcUs: pick('holdP99OutsideGcUs'),
          heldOverOneMs: pick('heldOverOneMs'),
          heldOverOneMsWithGc: pick('heldOverOneMsWithGc'),
          gcPauses: pick('gcPauses'),
          gcP50Ms: pick('gcP50Ms'),
          gcMaxMs: pick('gcMaxMs'),
          gcTotalMs: pick('gcTotalMs'),
          pingP50us: pick('pingP50us'),
          pingP99us: pick('pingP99us'),
          pingsOverOneMs: pick('pingsOverOneMs'),
          errors: mine.reduce((sum, r) => sum + r.errors, 0),
        })
      }
    }
  }
  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    redis: spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.trim(),
    pinned: PIN ? 'server on CPU 0; load and Redis on CPU 1 (taskset)' : 'not pinned',
  }
  const settings = {
    rounds: ROUNDS,
    seconds: SECONDS,
    warmupSeconds: WARMUP_SECONDS,
    connections: 50,
    pipelining: 1,
    latencyRate: LATENCY_RATE,
    latencySeconds: LATENCY_SECONDS,
  }
  // Memory mode (and the fallback: the same store) with many clients in one window, against
  // express-rate-limit's MemoryStore with the same clients, each in a process of its own.
  const memoryClients = QUICK ? 100_000 : 1_000_000
  const memoryOf = (setup) => {
    const run = spawnSync(
      process.execPath,
      ['--expose-gc', join(HERE, 'memory-local.mjs'), String(memoryClients), setup],
      { encoding: 'utf8' },
    )
    if (run.status !== 0) throw new Error(`memory-local ${setup} failed: ${run.stderr}`)
    return JSON.parse(run.stdout.trim().split('\n').at(-1))
  }
  const memory = memoryOf('ours')
  memory.baseline = memoryOf('erl')
  for (const run of [memory, memory.baseline]) {
    process.stderr.write(
      `memory (${run.setup}): ${run.clients} clients, RSS ${run.rssAfterMiB.toFixed(0)} MiB, ${run.bytesPerClient.toFixed(0)} B per client\n`,
    )
  }
  const report = { date: new Date().toISOString(), machine, settings, setups, summary, memory, runs }
  mkdirSync(OUT, { recursive: true })
  writeFileSync(join(OUT, 'performance.json'), `${JSON.stringify(report, null, 2)}\n`)
  writeFileSync(join(OUT, 'performance.svg'), renderChart(summary, setups, scenariosOf, NAMES))
  const table = `${markdownTable(summary)}\n\n${pauseTable(summary)}\n\nRedis's own cost, allowed traffic (a blocked client costs ours one Redis call a second, not one a request):\n\n${capacityTable(summary)}\n\nThe targets, judged in this run:\n\n${targetsTable(summary, runs)}`
  process.stdout.write(`${table}\n`)
  if (WRITE_DOCS) writeDocs(report, table)
  process.stderr.write(`wrote ${join(OUT, 'performance.json')} and performance.svg\n`)
}

/** A scenario's name in a table: ours in bold. */
const nameOf = (scenario) => (scenario.startsWith('ours-') ? `**${NAMES[scenario]}**` : (NAMES[scenario] ?? scenario))

function markdownTable(summary) {
  const rows = [
    `| setup | shape | limiter | req/s | ratio to bare | p50 / p99 ms, saturated | p50 / p99 µs at ${LATENCY_RATE} req/s (p99 over bare) | held by the limiter p50 / p99 µs | server CPU µs/req (over bare) | Redis commands/req (round trips) | Redis CPU µs/req: scripts / process | 429 |`,
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const s of summary) {
    rows.push(
      `| ${s.setup} | ${s.shape} | ${nameOf(s.scenario)} | ${s.rps.toFixed(0)} | ${s.ratio.toFixed(2)} | ${s.p50.toFixed(0)} / ${s.p99.toFixed(0)} | ` +
        `${s.p50us.toFixed(0)} / ${s.p99us.toFixed(0)} (${s.scenario === 'bare' ? '-' : `${s.p99usOverBare >= 0 ? '+' : ''}${s.p99usOverBare.toFixed(0)}`}) | ` +
        `${s.scenario === 'bare' ? '-' : `${s.holdP50us.toFixed(0)} / ${s.holdP99us.toFixed(0)}`} | ` +
        `${s.cpuPerRequest.toFixed(1)} (${s.scenario === 'bare' ? '-' : `${s.cpuOverBare >= 0 ? '+' : ''}${s.cpuOverBare.toFixed(1)}`}) | ` +
        `${s.redisPerRequest.toFixed(2)} (${s.roundTripsPerRequest.toFixed(2)}) | ` +
        `${s.redisCommandUsPerRequest.toFixed(1)} / ${s.redisCpuUsPerRequest.toFixed(1)} | ${(s.limitedShare * 100).toFixed(1)}% |`,
    )
  }
  return rows.join('\n')
}

/**
 * Redis's own CPU per decision, allowed traffic, and what one Redis core could serve at that cost:
 * 1 s of CPU over the µs Redis's process spent per decision (network I/O and parsing included).
 */
function capacityTable(summary) {
  const rows = [
    '| setup | limiter | Redis CPU µs per decision: in its scripts / in all | decisions per second one Redis core could serve | bytes per client in Redis: MEMORY USAGE / used_memory growth |',
    '| --- | --- | ---: | ---: | ---: |',
  ]
  for (const s of summary) {
    if (s.shape !== 'allowed' || !s.scenario.includes('redis') || s.redisCpuUsPerRequest <= 0) continue
    rows.push(
      `| ${s.setup} | ${nameOf(s.scenario)} | ${s.redisCommandUsPerRequest.toFixed(1)} / ${s.redisCpuUsPerRequest.toFixed(1)} | ` +
        `${Math.round(1e6 / s.redisCpuUsPerRequest / 1000).toLocaleString('en')}k | ${Math.round(s.redisBytesPerClient ?? 0)} / ${Math.round(s.redisUsedMemoryPerClient ?? 0)} |`,
    )
  }
  return rows.join('\n')
}

/** The anchors ours on Redis is to match or beat, in every setup and shape. */
const REDIS_ANCHORS = ['erl-redis', 'rlf-redis', 'rlf-redis-headers', 'rlf-redis-block']

/**
 * Each target of issue 16, judged in this run: ours against an anchor, by the median over the
 * rounds and round by round (in how many rounds ours was at least as good, in the same round).
 */
function targetsTable(summary, runs) {
  const rows = [
    '| setup | shape | target | ours | anchor | met in rounds | verdict |',
    '| --- | --- | --- | ---: | ---: | ---: | --- |',
  ]
  const judge = (setup, shape, target, ours, anchor, field, better) => {
    const find = (scenario) => summary.find((s) => s.setup === setup && s.shape === shape && s.scenario === scenario)
    const mine = find(ours)
    const theirs = find(anchor)
    if (mine === undefined || theirs === undefined) return
    const inRound = (scenario, round) =>
      runs.find((r) => r.setup === setup && r.shape === shape && r.scenario === scenario && r.round === round)
    const rounds = [...new Set(runs.map((r) => r.round))]
    const met = rounds.filter((round) => better(inRound(ours, round)[field], inRound(anchor, round)[field])).length
    const show = (value) => (field === 'ratio' ? value.toFixed(2) : `${value.toFixed(0)} µs`)
    rows.push(
      `| ${setup} | ${shape} | ${target} | ${show(mine[field])} | ${show(theirs[field])} | ${met} of ${rounds.length} | ` +
        `${better(mine[field], theirs[field]) ? 'met' : '**not met**'} |`,
    )
  }
  const atLeast = (a, b) => a >= b
  const atMost = (a, b) => a <= b
  for (const setup of setups) {
    for (const shape of Object.keys(SHAPES)) {
      for (const anchor of REDIS_ANCHORS) {
        judge(setup, shape, `ours, Redis: ratio at least ${NAMES[anchor]}'s`, 'ours-redis', anchor, 'ratio', atLeast)
      }
      judge(
        setup,
        shape,
        "ours, memory: ratio above express-rate-limit's MemoryStore's",
        'ours-memory',
        'erl-memory',
        'ratio',
        (a, b) => a > b,
      )
      if (SETUPS[setup].roundTripMs > 0) {
        for (const [field, label] of [
          ['p50us', 'p50'],
          ['p99us', 'p99'],
        ]) {
          judge(
            setup,
            shape,
            `ours, Redis: ${label} at ${LATENCY_RATE} req/s no worse than rate-limiter-flexible's`,
            'ours-redis',
            'rlf-redis',
            field,
            atMost,
          )
        }
      }
    }
  }
  return rows.join('\n')
}

/**
 * The latency probe against the server's garbage collector: how often and how long it paused the
 * server, and how much of the limiter's tail those pauses make.
 */
function pauseTable(summary) {
  const rows = [
    `During the latency probe (${LATENCY_RATE} req/s): the server's garbage-collector pauses; a PING to Redis every 5 ms from the server, on a connection of its own; and the time held by the limiter, with and without the requests a GC pause fell inside.`,
    '',
    '| setup | shape | limiter | GC pauses (median / longest ms) | PING p50 / p99 µs (over 1 ms) | held p99 µs | held p99 µs, outside GC pauses | held over 1 ms | of those, with a GC pause inside |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const s of summary) {
    const limiter = s.scenario !== 'bare'
    rows.push(
      `| ${s.setup} | ${s.shape} | ${nameOf(s.scenario)} | ${s.gcPauses.toFixed(0)} (${s.gcP50Ms.toFixed(1)} / ${s.gcMaxMs.toFixed(1)}) | ` +
        `${s.pingP50us.toFixed(0)} / ${s.pingP99us.toFixed(0)} (${(s.pingsOverOneMs * 100).toFixed(1)}%) | ` +
        `${limiter ? s.holdP99us.toFixed(0) : '-'} | ${limiter ? s.holdP99OutsideGcUs.toFixed(0) : '-'} | ` +
        `${limiter ? `${(s.heldOverOneMs * 100).toFixed(2)}%` : '-'} | ${limiter && s.heldOverOneMs > 0 ? `${(s.heldOverOneMsWithGc * 100).toFixed(0)}%` : '-'} |`,
    )
  }
  return rows.join('\n')
}

/** The memory result as a sentence: ours, then express-rate-limit's MemoryStore in the same run. */
function memoryLine(memory) {
  const { baseline } = memory
  const mib = (run) => `${run.rssAfterMiB.toFixed(0)} MiB RSS (${run.rssBeforeMiB.toFixed(0)} MiB before)`
  return (
    `Memory mode with ${memory.clients.toLocaleString('en')} distinct clients in one window, through the real middleware: ` +
    `${mib(memory)}, ${memory.bytesPerClient.toFixed(0)} bytes per client (heap and typed arrays). ` +
    `express-rate-limit's MemoryStore with the same clients: ${mib(baseline)}, ${baseline.bytesPerClient.toFixed(0)} bytes per client; ` +
    `ours takes ${(memory.bytesPerClient / baseline.bytesPerClient).toFixed(2)} of its bytes per client and ` +
    `${(memory.rssAfterMiB / baseline.rssAfterMiB).toFixed(2)} of its RSS.`
  )
}

/** Replaces the generated part of docs/performance.md, between its bench markers. */
function writeDocs(report, table) {
  const path = join(ROOT, 'docs', 'performance.md')
  const text = readFileSync(path, 'utf8')
  const { machine, settings } = report
  const block = [
    '<!-- bench:start (written by pnpm bench; edit the prose outside these markers) -->',
    '',
    `Run of ${report.date.slice(0, 10)}: ${settings.rounds} rounds, ${settings.seconds} s per run after ${settings.warmupSeconds} s of warm-up, ` +
      `${settings.connections} connections, pipelining ${settings.pipelining}; then ${settings.latencySeconds} s of an open-loop ` +
      `latency probe at ${settings.latencyRate} req/s over 50 connections; medians over the rounds. ` +
      `Machine: ${machine.cores} × ${machine.cpu}, ${machine.memoryGiB} GiB, Linux ${machine.kernel}, Node ${machine.node}, ${machine.redis.split(' ').slice(0, 3).join(' ')}; ${machine.pinned}.`,
    '',
    'Setups:',
    '',
    ...report.setups.map((setup) => `- \`${setup}\`: ${SETUPS[setup].about}.`),
    '',
    table,
    '',
    memoryLine(report.memory),
    '',
    '![Ratio to bare Express, per setup and traffic shape](benchmarks/performance.svg)',
    '',
    '<!-- bench:end -->',
  ].join('\n')
  const start = text.indexOf('<!-- bench:start')
  const end = text.indexOf('<!-- bench:end -->')
  if (start === -1 || end === -1) throw new Error('docs/performance.md has no bench markers')
  writeFileSync(path, text.slice(0, start) + block + text.slice(end + '<!-- bench:end -->'.length))
  // The table and the JSON as the repository formats them, so that \`pnpm lint\` stays green after a run.
  const written = [path, join(OUT, 'performance.json')]
  const format = spawnSync(join(ROOT, 'node_modules', '.bin', 'prettier'), ['--write', ...written], {
    encoding: 'utf8',
  })
  if (format.status !== 0) throw new Error(`prettier failed on ${written.join(', ')}: ${format.stderr}`)
}

await main()
