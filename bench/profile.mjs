// CPU profile of one benchmark server under load: `[KEYING=header] node bench/profile.mjs <scenario> [allowed|blocked] [seconds]`.
// Runs the server with --cpu-prof, loads it, and prints where its CPU went: by package, then the
// functions with the most self time.
// KEYING=header profiles the user-key setup (perf-app.mjs): clients by X-Api-Key, no trusted proxy.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { freePort, startRedis } from './support.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const [scenario = 'ours-redis', shape = 'allowed', seconds = '5'] = process.argv.slice(2)
const dir = mkdtempSync(join(tmpdir(), 'bench-profile-'))

const redisPort = await freePort()
const redis = await startRedis(redisPort, { cpu: 1 })
const port = await freePort()
const server = spawn(
  'taskset',
  ['-c', '0', process.execPath, '--cpu-prof', '--cpu-prof-dir', dir, join(HERE, 'servers', 'perf-app.mjs')],
  {
    env: {
      ...process.env,
      SCENARIO: scenario,
      LIMIT: shape === 'allowed' ? '1000000000' : '10',
      PORT: String(port),
      ...(scenario.includes('redis') ? { REDIS_URL: `redis://127.0.0.1:${redisPort}` } : {}),
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
const result = JSON.parse(load(seconds).stdout.trim().split('\n').at(-1))
await new Promise((resolve) => {
  server.once('exit', resolve)
  server.kill('SIGTERM')
})
redis.kill('SIGTERM')

const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'))
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8'))
const byId = new Map(profile.nodes.map((node) => [node.id, node]))
const self = new Map()
const deltas = profile.timeDeltas
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (deltas[i] ?? 0)))
const total = [...self.values()].reduce((a, b) => a + b, 0)

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
for (const [id, time] of self) {
  const { callFrame } = byId.get(id)
  const pkg = packageOf(callFrame.url)
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + time)
  const name = `${callFrame.functionName || '(anonymous)'} ${pkg}:${callFrame.lineNumber + 1}`
  byFunction.set(name, (byFunction.get(name) ?? 0) + time)
}
const busy = total - (byPackage.get('(native/gc/idle)') ?? 0)
const line = ([name, time]) => `${((time / total) * 100).toFixed(1).padStart(5)}%  ${name}`
console.log(`${scenario} ${shape}: ${(result.requests / result.seconds).toFixed(0)} req/s; profile ${dir}/${file}`)
console.log('\nself time by package:')
for (const entry of [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(line(entry))
console.log('\nfunctions with the most self time:')
for (const entry of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(line(entry))
console.log(`\n(busy: ${((busy / total) * 100).toFixed(1)}% of samples outside native/gc/idle)`)
