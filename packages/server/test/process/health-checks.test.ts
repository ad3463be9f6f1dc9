// scripts/health-checks.sh against live servers: it prints exactly what docs/health-checks.md shows,
// and each of its settings does what the page says.
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

import { freePort } from '../../../utils/test/support/ports.js'
import {
  redisServerAvailable,
  startRedisServer,
  type TestRedisServer,
} from '../../../utils/test/support/redis-server.js'
import { makeCertificates, startTlsServer, type TlsFiles } from '../../../utils/test/support/topologies.js'
import { docOutput } from './support/doc-examples.js'
import { REPO_ROOT, startServer, type ServerProcess } from './support/server-process.js'

const PAGE = 'health-checks.md'
const SCRIPT = join(REPO_ROOT, 'scripts', 'health-checks.sh')
const TOKEN = 'tok-health-0123456789'

interface Run {
  readonly code: number | null
  readonly lines: string[]
}

/** The commands scripts/health-checks.sh runs (bash itself included); the rest are bash builtins. */
const COMMANDS = [
  'bash',
  'curl',
  'sed',
  'head',
  'tail',
  'grep',
  'uniq',
  'awk',
  'seq',
  'sleep',
  'mktemp',
  'rm',
  'redis-cli',
]

/**
 * A folder to use as the whole PATH: for each of COMMANDS, a wrapper that appends the arguments it
 * was run with (and whether REDISCLI_AUTH was set) to `log`, then runs the real command. A command
 * the script runs that is not wrapped is "not found", and shows in the script's output.
 */
function recordingPath(): { path: string; log: string; argv(): string[]; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), 'health-checks-argv-'))
  const log = join(path, 'argv.log')
  writeFileSync(log, '')
  for (const name of COMMANDS) {
    const real = execFileSync('bash', ['-c', 'command -v "$0"', name], { encoding: 'utf8' }).trim()
    writeFileSync(
      join(path, name),
      `#!/bin/sh\nprintf '%s\\n' "\${REDISCLI_AUTH:+[REDISCLI_AUTH] }${name} $*" >> '${log}'\nexec '${real}' "$@"\n`,
      { mode: 0o755 },
    )
  }
  return {
    path,
    log,
    argv: () => readFileSync(log, 'utf8').trimEnd().split('\n'),
    remove: () => rmSync(path, { recursive: true, force: true }),
  }
}

/** Runs the script as an operator would, with only PATH from this environment; SLEEP 0.01 for speed. */
function runChecks(env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn('bash', [SCRIPT], {
      env: { PATH: process.env.PATH ?? '', SLEEP: '0.01', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.once('exit', (code) => resolve({ code, lines: output.trimEnd().split('\n') }))
  })
}

const running: ServerProcess[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.stop()))
})

async function start(env: Record<string, string> = {}): Promise<ServerProcess> {
  const server = await startServer(env)
  running.push(server)
  return server
}

describe('scripts/health-checks.sh', () => {
  it('passes against a fresh server in memory mode, printing what the page shows', async () => {
    const server = await start()
    const run = await runChecks({ BASE_URL: server.base })
    expect(run.lines).toEqual(docOutput(PAGE, 'memory'))
    expect(run.code).toBe(0)
  })

  it('with LIMIT_CHECKS=0, checks only health and readiness, and leaves the budget whole', async () => {
    const server = await start()
    const run = await runChecks({ BASE_URL: server.base, LIMIT_CHECKS: '0' })
    expect(run.lines).toEqual(docOutput(PAGE, 'probes-only'))
    expect(run.code).toBe(0)
    const res = await fetch(`${server.base}/api/v1/metaverses`)
    expect(res.headers.get('ratelimit')).toBe('"read"; r=99; t=900')
  })

  it('with READ_MAX, WRITE_MAX and TOKEN, checks a server with other limits and AUTH_REQUIRED=true', async () => {
    const server = await start({
      RATE_LIMIT_READ_MAX: '20',
      RATE_LIMIT_WRITE_MAX: '10',
      AUTH_REQUIRED: 'true',
      API_TOKENS: `${TOKEN}:health-check`,
    })
    const limits = { BASE_URL: server.base, READ_MAX: '20', WRITE_MAX: '10' }
    const withToken = await runChecks({ ...limits, TOKEN })
    expect(withToken.lines).toEqual(docOutput(PAGE, 'other-limits'))
    expect(withToken.code).toBe(0)
    // Without the token, the same loops are refused 401 (and count against this machine's IP).
    const without = await runChecks(limits)
    expect(without.lines).toEqual(docOutput(PAGE, 'auth-required'))
    expect(without.code).toBe(1)
  })

  it('fails loudly when the budget is not the one it expects', async () => {
    const server = await start({ RATE_LIMIT_READ_MAX: '5', RATE_LIMIT_WRITE_MAX: '5' })
    const run = await runChecks({ BASE_URL: server.base, READ_MAX: '10', WRITE_MAX: '5' })
    expect(run.lines).toEqual(docOutput(PAGE, 'wrong-budget'))
    expect(run.code).toBe(1)
  })

  it('stops after the first check, and exits 1, when no server answers', async () => {
    const port = await freePort()
    const run = await runChecks({ BASE_URL: `http://127.0.0.1:${port}` })
    expect(run.lines.map((line) => line.replace(`:${port}/`, ':3000/'))).toEqual(docOutput(PAGE, 'no-server'))
    expect(run.code).toBe(1)
  })
})

describe.runIf(redisServerAvailable())('scripts/health-checks.sh with Redis', () => {
  let redis: TestRedisServer
  beforeAll(async () => {
    // The guide's URL form, a password with no user: the script's redis-cli calls must cope.
    redis = await startRedisServer({ password: 'guide-pw-123' })
  })
  afterAll(async () => {
    await redis?.stop()
  })

  it('passes against two instances sharing one password-protected Redis, printing what the page shows', async () => {
    const servers = await Promise.all([start({ REDIS_URL: redis.url }), start({ REDIS_URL: redis.url })])
    expect(redis.url).toMatch(/^redis:\/\/:guide-pw-123@/)
    const run = await runChecks({ BASE_URL: servers[0].base, REDIS_URL: redis.url, INSTANCES: '2' })
    expect(run.lines).toEqual(docOutput(PAGE, 'redis'))
    expect(run.code).toBe(0)
  })

  it('fails when the server counts in memory although the Redis it should use runs', async () => {
    const server = await start()
    const run = await runChecks({ BASE_URL: server.base, REDIS_URL: redis.url, LIMIT_CHECKS: '0' })
    expect(run.lines).toEqual(docOutput(PAGE, 'not-on-redis'))
    expect(run.code).toBe(1)
  })

  // Regression: the password was on redis-cli's command line (-u redis://:password@...), where
  // ps shows it to every user of the machine.
  it.each([
    ['the guide’s form, a password alone', 'redis://:guide-pw-123@'],
    ['a named user and a percent-encoded password', 'redis://default:guide%2Dpw%2D123@'],
  ])('never puts the password in a process’s arguments: %s', async (_form, prefix) => {
    const url = redis.url.replace(/^redis:\/\/:guide-pw-123@/, prefix)
    expect(url.startsWith(prefix)).toBe(true)
    const server = await start({ REDIS_URL: redis.url })
    const recorder = recordingPath()
    try {
      const run = await runChecks({ PATH: recorder.path, BASE_URL: server.base, REDIS_URL: url, LIMIT_CHECKS: '0' })
      expect(run.lines).toEqual([
        'ok   GET /health: 200',
        'ok   GET /ready: 200, store redis',
        'ok   redis-cli ping: PONG',
        'ok   Redis connections named universo-rate-limit: 1',
        'all 4 checks passed',
      ])
      const argv = recorder.argv()
      // redis-cli ran twice, with the password in its environment, and the URL without it.
      const cli = argv.filter((line) => /^(\[REDISCLI_AUTH\] )?redis-cli /.test(line))
      expect(cli).toHaveLength(2)
      for (const line of cli) expect(line).toMatch(/^\[REDISCLI_AUTH\] redis-cli .*-u redis:\/\/127\.0\.0\.1:\d+ /)
      for (const line of argv) expect(line).not.toMatch(/guide|pw-123|pw%2D123/)
    } finally {
      recorder.remove()
    }
  })

  it('says why redis-cli could not answer: a Redis that is down, and the server degraded but serving', async () => {
    const port = await freePort()
    const url = `redis://:guide-pw-123@127.0.0.1:${port}`
    const server = await start({ REDIS_URL: url })
    const run = await runChecks({ BASE_URL: server.base, REDIS_URL: url, LIMIT_CHECKS: '0' })
    expect(run.lines.map((line) => line.replace(`:${port}:`, ':6379:'))).toEqual(docOutput(PAGE, 'redis-down'))
    expect(run.code).toBe(1)
  })
})

describe.runIf(redisServerAvailable())('scripts/health-checks.sh with Redis over TLS (rediss://)', () => {
  let files: TlsFiles
  let tls: Awaited<ReturnType<typeof startTlsServer>>
  beforeAll(async () => {
    files = makeCertificates()
    tls = await startTlsServer(files, false)
  })
  afterAll(async () => {
    await tls?.stop()
    rmSync(files.dir, { recursive: true, force: true })
  })

  it('speaks TLS to Redis, verifying it with REDIS_TLS_CA, and says why when it cannot', async () => {
    const url = `rediss://127.0.0.1:${tls.port}`
    const server = await start({ REDIS_URL: url, REDIS_TLS_CA: files.ca })
    const withCa = await runChecks({ BASE_URL: server.base, REDIS_URL: url, REDIS_TLS_CA: files.ca, LIMIT_CHECKS: '0' })
    expect(withCa.lines).toEqual([
      'ok   GET /health: 200',
      'ok   GET /ready: 200, store redis',
      'ok   redis-cli ping: PONG',
      'ok   Redis connections named universo-rate-limit: 1',
      'all 4 checks passed',
    ])
    // A CA that signed nothing here: redis-cli refuses the server, and the script says so.
    const otherCa = await runChecks({
      BASE_URL: server.base,
      REDIS_URL: url,
      REDIS_TLS_CA: files.otherCa,
      LIMIT_CHECKS: '0',
    })
    expect(otherCa.code).toBe(1)
    expect(otherCa.lines).toContain('FAIL redis-cli ping: got (nothing), expected PONG')
    expect(otherCa.lines).toContainEqual(expect.stringMatching(/^redis-cli said: .*certificate verify failed/))
  })
})
