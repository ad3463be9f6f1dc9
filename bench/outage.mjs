// Outage benchmark: our server and the original's stack side by side, under the same steady load,
// while one real redis-server is killed and restarted empty. Reports per second and per phase.
//   node outage.mjs [--quick]       (pnpm bench:outage)
// Writes docs/benchmarks/outage.md and docs/benchmarks/outage.json (not in --quick mode).
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { freePort, startRedis } from './support.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')
const quick = process.argv.includes('--quick')
const DURATION_MS = quick ? 6000 : 15_000
const OUTAGE = quick ? [2000, 4000] : [5000, 10_000]
const PER_SECOND = 200

const children = new Set()
function start(command, args, env, readyText) {
  const child = spawn(command, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  child.once('exit', () => children.delete(child))
  let output = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command} did not start:\n${output}`)), 10_000)
    const onData = (chunk) => {
      output += chunk
      if (output.includes(readyText)) {
        clearTimeout(timer)
        resolve(child)
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
  })
}

const stopped = (child) =>
  new Promise((resolve) =>
    child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', resolve),
  )

function percentile(values, p) {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

function summarise(samples) {
  const latencies = samples.map(([, , ms]) => ms)
  const statuses = {}
  for (const [, status] of samples) statuses[status] = (statuses[status] ?? 0) + 1
  return {
    requests: samples.length,
    statuses,
    errors: samples.filter(([, status]) => status === 0 || status >= 500).length,
    over1s: latencies.filter((ms) => ms > 1000).length,
    p50: +percentile(latencies, 50).toFixed(1),
    p99: +percentile(latencies, 99).toFixed(1),
    max: +Math.max(0, ...latencies).toFixed(1),
  }
}

async function main() {
  const [redisPort, oursPort, originalPort] = await Promise.all([freePort(), freePort(), freePort()])
  const redisUrl = `redis://127.0.0.1:${redisPort}`
  let redis = await startRedis(redisPort)
  children.add(redis)
  const targets = [
    {
      name: 'ours (fallback policy)',
      child: await start(
        process.execPath,
        [join(root, 'packages/server/dist/main.js')],
        { PORT: String(oursPort), REDIS_URL: redisUrl, RATE_LIMIT_READ_MAX: '1000000' },
        '[Server] Listening on',
      ),
      url: `http://127.0.0.1:${oursPort}/api/v1/metaverses`,
    },
    {
      name: "original's stack (ioredis defaults)",
      child: await start(
        process.execPath,
        [join(here, 'servers/original-stack.mjs')],
        { PORT: String(originalPort), REDIS_URL: redisUrl },
        'listening',
      ),
      url: `http://127.0.0.1:${originalPort}/api/v1/metaverses`,
    },
  ]

  const load = spawn(
    process.execPath,
    [join(here, 'load-worker.mjs'), String(DURATION_MS), String(PER_SECOND), ...targets.map((t) => t.url)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  children.add(load)
  let raw = ''
  load.stdout.on('data', (chunk) => (raw += chunk))
  const loaded = stopped(load)

  await new Promise((r) => setTimeout(r, OUTAGE[0]))
  redis.kill('SIGKILL')
  await stopped(redis)
  await new Promise((r) => setTimeout(r, OUTAGE[1] - OUTAGE[0]))
  redis = await startRedis(redisPort)
  children.add(redis)
  await loaded

  const perTarget = JSON.parse(raw)
  const phase = ([at]) => (at < OUTAGE[0] ? 'before' : at < OUTAGE[1] ? 'during' : 'after')
  const result = {
    machine: {
      node: process.version,
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      date: new Date().toISOString(),
    },
    load: {
      perSecondPerTarget: PER_SECOND,
      durationMs: DURATION_MS,
      outageMs: OUTAGE,
      redis: 'SIGKILL, then restarted empty',
    },
    targets: targets.map((target, index) => {
      const samples = perTarget[index]
      const seconds = []
      for (let s = 0; s < DURATION_MS / 1000; s++)
        seconds.push(summarise(samples.filter(([at]) => Math.floor(at / 1000) === s)))
      return {
        name: target.name,
        phases: Object.fromEntries(
          ['before', 'during', 'after'].map((p) => [p, summarise(samples.filter((x) => phase(x) === p))]),
        ),
        seconds,
      }
    }),
  }

  const statusText = (statuses) =>
    Object.entries(statuses)
      .map(([status, n]) => `${status === '0' ? 'no answer' : status}×${n}`)
      .join(' ')
  const lines = []
  lines.push('| setup | phase | requests | statuses | 5xx or no answer | over 1 s | p50 ms | p99 ms | max ms |')
  lines.push('|---|---|---|---|---|---|---|---|---|')
  for (const target of result.targets) {
    for (const [name, s] of Object.entries(target.phases)) {
      lines.push(
        `| ${target.name} | ${name} | ${s.requests} | ${statusText(s.statuses)} | ${s.errors} | ${s.over1s} | ${s.p50} | ${s.p99} | ${s.max} |`,
      )
    }
  }
  const perSecond = [
    '| second | ' + result.targets.map((t) => `${t.name}: statuses, p50/p99 ms`).join(' | ') + ' |',
    '|---|' + result.targets.map(() => '---|').join(''),
  ]
  for (let s = 0; s < DURATION_MS / 1000; s++) {
    const mark = s * 1000 >= OUTAGE[0] && s * 1000 < OUTAGE[1] ? ' (Redis down)' : ''
    perSecond.push(
      `| ${s}${mark} | ` +
        result.targets
          .map((t) => `${statusText(t.seconds[s].statuses)}, ${t.seconds[s].p50}/${t.seconds[s].p99}`)
          .join(' | ') +
        ' |',
    )
  }
  console.log(lines.join('\n'))
  console.log()
  console.log(perSecond.join('\n'))

  if (!quick) {
    const md = `# Outage benchmark

Generated by \`pnpm bench:outage\` (bench/outage.mjs); raw numbers in [outage.json](outage.json).
Both servers take ${PER_SECOND} GET/s each from a separate load process for ${DURATION_MS / 1000} s and
share one real redis-server, which is killed (SIGKILL) at ${OUTAGE[0] / 1000} s and restarted, empty,
at ${OUTAGE[1] / 1000} s. Limits are set high, so every answer should be 200. Latency is measured by
the load process (request sent to response read).

- **ours**: \`packages/server/dist/main.js\` with \`REDIS_URL\`, default policy \`fallback\`.
- **original's stack**: express-rate-limit + rate-limit-redis over ioredis with default options
  (\`bench/servers/original-stack.mjs\`).

Machine: ${result.machine.cpu}, ${result.machine.cores} cores, Node ${result.machine.node}, ${result.machine.date}.
Everything ran on the same machine at once; the numbers show behaviour, not peak speed.

## By phase

${lines.join('\n')}

## Per second

${perSecond.join('\n')}
`
    writeFileSync(join(root, 'docs/benchmarks/outage.md'), md)
    writeFileSync(join(root, 'docs/benchmarks/outage.json'), `${JSON.stringify(result, null, 2)}\n`)
    console.log('\nwrote docs/benchmarks/outage.md and docs/benchmarks/outage.json')
  }
}

try {
  await main()
} finally {
  for (const child of children) child.kill('SIGKILL')
}
