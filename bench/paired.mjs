// The paired cost benchmark (`pnpm bench:paired`): ours on Redis and one anchor served at the same
// time, both on CPU 0, each under its own load, so that whatever else the machine does in those
// seconds falls on both alike. On this shared 2-core machine one scenario's req/s moves by 10-25%
// between rounds of `pnpm bench`, which hides any gap under about 0.05; a pair run side by side
// repeats to a percent or two. What it reports is the anchor's server CPU per request divided by
// ours (under 1: the anchor costs less), rep by rep, and the median.
//
// Each setup first pairs ours with ours: that null pair shows what the pairing itself tilts (which
// server started first, which load started first), and each rep swaps which load starts first.
// Both servers share one core, so each one's µs per request is higher than alone; only the ratio is
// the result.
//
//   node bench/paired.mjs [--setups ip-proxy,hop-0.5ms] [--ours ours-redis-bucket] [--against erl-redis,rlf-redis]
//                         [--shape allowed|blocked] [--reps 5] [--seconds 4]
import { execFileSync, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import { freePort, NAMES, SETUPS, startDelayProxy, startRedis } from './support.mjs'

const HERE = import.meta.dirname
const args = process.argv.slice(2)
const option = (name, fallback) => {
  const at = args.indexOf(name)
  return at === -1 ? fallback : args[at + 1]
}
const ANCHORS = ['erl-redis', 'rlf-redis', 'rlf-redis-headers', 'rlf-redis-block']
/** Every Redis scenario, ours or an anchor's, as `--ours` and `--against` may name them. */
const REDIS_SCENARIOS = Object.keys(NAMES).filter((scenario) => scenario.includes('redis'))
const listOption = (name, allowed) => {
  const picked = option(name, allowed.join(',')).split(',')
  for (const value of picked) {
    if (!allowed.includes(value)) throw new Error(`${name}: ${value} is not allowed; allowed: ${allowed.join(', ')}`)
  }
  return picked
}
const setups = listOption('--setups', Object.keys(SETUPS))
const against = option('--against') === undefined ? ANCHORS : listOption('--against', REDIS_SCENARIOS)
/** Which of ours the anchors are paired with: the fixed window unless `--ours` names another. */
const OURS = listOption(
  '--ours',
  REDIS_SCENARIOS.filter((scenario) => scenario.startsWith('ours-')),
)[0]
const shape = listOption('--shape', ['allowed', 'blocked'])[0]
const positive = (name, fallback) => {
  const value = Number(option(name, fallback))
  if (!(value > 0)) throw new Error(`${name} must be a positive number, got ${option(name, fallback)}`)
  return value
}
const REPS = positive('--reps', 5)
const SECONDS = positive('--seconds', 4)
const WARMUP_SECONDS = 2
/** Each shape's limit, as in perf.mjs: never reached by 10,000 clients, or reached at once by one. */
const LIMIT = shape === 'allowed' ? 1_000_000_000 : 10

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim())
/** utime + stime of a process, in µs. */
function cpuMicros(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1e6
}

/** Resolves with the child once it prints `listening`; rejects if it exits first. */
const listening = (child, what) =>
  new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code} before listening`)))
    child.stdout.on('data', (chunk) => {
      if (chunk.toString().includes('listening')) resolve(child)
    })
  })

async function startServer(scenario, keying, redisUrl) {
  const port = await freePort()
  const script = join(HERE, 'servers', 'perf-app.mjs')
  const child = spawn('taskset', ['-c', '0', process.execPath, script], {
    env: {
      ...process.env,
      SCENARIO: scenario,
      KEYING: keying,
      LIMIT: String(LIMIT),
      PORT: String(port),
      REDIS_URL: redisUrl,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  await listening(child, scenario)
  child.url = `http://127.0.0.1:${port}`
  return child
}

/** perf-load.mjs against `url` for `seconds`, on CPU 1: its JSON line. */
const load = (url, keying, seconds) =>
  new Promise((resolve, reject) => {
    const child = spawn(
      'taskset',
      ['-c', '1', process.execPath, join(HERE, 'perf-load.mjs'), url, shape, String(seconds)],
      {
        env: { ...process.env, KEYING: keying },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
    let out = ''
    child.stdout.on('data', (chunk) => (out += chunk))
    child.once('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1))) : reject(new Error(`load exited with ${code}`)),
    )
  })

async function stop(child) {
  if (child.exitCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await exited
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** `anchor` beside ours, REPS times: the anchor's CPU per request over ours, rep by rep. */
async function pair(anchor, keying, redisUrl) {
  const ours = await startServer(OURS, keying, redisUrl)
  const other = await startServer(anchor, keying, redisUrl).catch(async (error) => {
    await stop(ours)
    throw error
  })
  try {
    await Promise.all([load(ours.url, keying, WARMUP_SECONDS), load(other.url, keying, WARMUP_SECONDS)])
    const reps = []
    for (let rep = 0; rep < REPS; rep++) {
      const before = [cpuMicros(ours.pid), cpuMicros(other.pid)]
      // Swapped every rep: the load started first has a head start of a few ms.
      const order = rep % 2 === 0 ? [ours, other] : [other, ours]
      const [first, second] = await Promise.all(order.map((server) => load(server.url, keying, SECONDS)))
      const [oursLoad, otherLoad] = rep % 2 === 0 ? [first, second] : [second, first]
      const oursUs = (cpuMicros(ours.pid) - before[0]) / oursLoad.requests
      const otherUs = (cpuMicros(other.pid) - before[1]) / otherLoad.requests
      reps.push({ oursUs, otherUs, ratio: otherUs / oursUs, errors: oursLoad.errors + otherLoad.errors })
      process.stderr.write(
        `  ${anchor.padEnd(17)} rep ${rep + 1}: ours ${oursUs.toFixed(1)} µs/req, ${anchor} ${otherUs.toFixed(1)} µs/req, ratio ${(otherUs / oursUs).toFixed(3)}\n`,
      )
    }
    return reps
  } finally {
    await Promise.all([stop(ours), stop(other)])
  }
}

const redisPort = await freePort()
const redis = await startRedis(redisPort, { cpu: 1 })
const rows = []
try {
  for (const setup of setups) {
    const { keying, roundTripMs } = SETUPS[setup]
    const proxy = roundTripMs === 0 ? undefined : await startDelayProxy(redisPort, roundTripMs, { cpu: 1 })
    const redisUrl = `redis://127.0.0.1:${proxy?.port ?? redisPort}`
    try {
      for (const anchor of [OURS, ...against]) {
        process.stderr.write(`${setup} ${shape}: ours beside ${anchor}\n`)
        const reps = await pair(anchor, keying, redisUrl)
        const ratios = reps.map((rep) => rep.ratio)
        rows.push({
          setup,
          anchor,
          ours: median(reps.map((rep) => rep.oursUs)),
          other: median(reps.map((rep) => rep.otherUs)),
          ratio: median(ratios),
          low: Math.min(...ratios),
          high: Math.max(...ratios),
          errors: reps.reduce((sum, rep) => sum + rep.errors, 0),
        })
      }
    } finally {
      if (proxy !== undefined) await stop(proxy)
    }
  }
} finally {
  await stop(redis)
}

console.log(
  `Paired, ${shape} traffic: ${REPS} reps of ${SECONDS} s, both servers on CPU 0 at once, load and Redis on CPU 1. ` +
    'Ratio: the anchor’s server CPU per request over ours (under 1: the anchor costs less); ' +
    `${NAMES[OURS]} beside itself is the null pair.\n`,
)
console.log('| setup | beside ours | ours µs/req | its µs/req | ratio, median | ratio, range | errors |')
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |')
for (const row of rows) {
  const name = row.anchor === OURS ? `${NAMES[row.anchor]} (the null pair)` : NAMES[row.anchor]
  console.log(
    `| ${row.setup} | ${name} | ${row.ours.toFixed(1)} | ${row.other.toFixed(1)} | ${row.ratio.toFixed(3)} | ${row.low.toFixed(3)}-${row.high.toFixed(3)} | ${row.errors} |`,
  )
}
