// A profile of one benchmark server under load:
//   [KEYING=header] [PROFILE=heap] node bench/profile.mjs <scenario> [allowed|blocked] [seconds]
// By default a CPU profile (--cpu-prof): where the server's CPU went, by package, then the functions
// with the most self time. PROFILE=heap takes an allocation profile instead (perf-app.mjs's
// /heap/start and /heap/stop): the bytes allocated per request, by package and by function.
// KEYING=header profiles the user-key setup (perf-app.mjs): clients by X-Api-Key, no trusted proxy;
// HOP_MS=0.5 or 2 a hop setup. NODE_FLAGS adds flags to the server's node (`--no-turbo-inlining`
// keeps each function's own allocations apart); TOP lengthens the function lists.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { freePort, startDelayProxy, startRedis } from './support.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const [scenario = 'ours-redis', shape = 'allowed', seconds = '5'] = process.argv.slice(2)
const HEAP = process.env.PROFILE === 'heap'
if (!['cpu', 'heap', undefined].includes(process.env.PROFILE)) {
  throw new Error(`PROFILE must be cpu or heap, got ${process.env.PROFILE}`)
}
const dir = mkdtempSync(join(tmpdir(), 'bench-profile-'))

const redisPort = await freePort()
const redis = await startRedis(redisPort, { cpu: 1 })
// HOP_MS=2 puts Redis behind the delay proxy of the hop setups, that many ms of round trip away.
const hopMs = Number(process.env.HOP_MS ?? 0)
const proxy = hopMs > 0 ? await startDelayProxy(redisPort, hopMs, { cpu: 1 }) : undefined
const redisUrl = `redis://127.0.0.1:${proxy?.port ?? redisPort}`
const port = await freePort()
const server = spawn(
  'taskset',
  [
    '-c',
    '0',
    process.execPath,
    ...(HEAP ? [] : ['--cpu-prof', '--cpu-prof-dir', dir]),
    ...(process.env.NODE_FLAGS?.split(' ').filter(Boolean) ?? []),
    join(HERE, 'servers', 'perf-app.mjs'),
  ],
  {
    env: {
      ...process.env,
      SCENARIO: scenario,
      LIMIT: shape === 'allowed' ? '1000000000' : '10',
      PORT: String(port),
      ...(scenario.includes('redis') ? { REDIS_URL: redisUrl } : {}),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  },
)
await new Promise((resolve) => server.stdout.on('data', (chunk) => chunk.toString().includes('listening') && resolve()))
const load = (s) =>
  spawnSync(
    'taskset',
    ['-c', '1', process.execPath, join(HERE, 'perf-load.mjs'), `http://127.0.0.1:${port}`, shape, s],
    {
      encoding: 'utf8',
    },
  )
load('1')
const base = `http://127.0.0.1:${port}`
if (HEAP) await fetch(`${base}/heap/start`)
const result = JSON.parse(load(seconds).stdout.trim().split('\n').at(-1))
const heap = HEAP ? await (await fetch(`${base}/heap/stop`)).json() : undefined
await new Promise((resolve) => {
  server.once('exit', resolve)
  server.kill('SIGTERM')
})
proxy?.kill('SIGTERM')
redis.kill('SIGTERM')

/** Each frame of the profile with its callFrame and its self weight (µs of CPU, or bytes allocated). */
function frames() {
  if (HEAP) {
    const all = []
    const walk = (node) => {
      all.push({ callFrame: node.callFrame, weight: node.selfSize })
      for (const child of node.children) walk(child)
    }
    walk(heap.head)
    return all
  }
  const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'))
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8'))
  const self = new Map()
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
  return profile.nodes.map((node) => ({ callFrame: node.callFrame, weight: self.get(node.id) ?? 0 }))
}

/** Which package a frame belongs to, from its URL. */
function packageOf(url) {
  if (url === '') return '(native/gc/idle)'
  if (url.startsWith('node:')) return 'node internals'
  const match = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (match) return match[1]
  if (url.includes('/packages/utils/')) return '@universo/utils (ours)'
  return url.split('/').slice(-2).join('/')
}
const byPackage = new Map()
const byFunction = new Map()
let total = 0
for (const { callFrame, weight } of frames()) {
  total += weight
  const pkg = packageOf(callFrame.url)
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + weight)
  const name = `${callFrame.functionName || '(anonymous)'} ${pkg}:${callFrame.lineNumber + 1}`
  byFunction.set(name, (byFunction.get(name) ?? 0) + weight)
}
const perRequest = (weight) => (HEAP ? `  ${(weight / result.requests).toFixed(0).padStart(5)} B/req` : '')
const line = ([name, weight]) => `${((weight / total) * 100).toFixed(1).padStart(5)}%${perRequest(weight)}  ${name}`
console.log(
  `${scenario} ${shape}: ${(result.requests / result.seconds).toFixed(0)} req/s; ${HEAP ? 'allocation' : 'CPU'} profile`,
)
if (HEAP) console.log(`allocated: ${(total / result.requests).toFixed(0)} bytes per request`)
console.log(`\n${HEAP ? 'bytes allocated' : 'self time'} by package:`)
for (const entry of [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(line(entry))
console.log(`\nfunctions with the most ${HEAP ? 'bytes allocated' : 'self time'}:`)
for (const entry of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 30)))
  console.log(line(entry))
if (!HEAP) {
  const busy = total - (byPackage.get('(native/gc/idle)') ?? 0)
  console.log(`\n(busy: ${((busy / total) * 100).toFixed(1)}% of samples outside native/gc/idle)`)
}
