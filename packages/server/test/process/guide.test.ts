// The guide's Health Checks, run as written (scripts/health-checks.sh) against live servers.
import { spawn } from 'node:child_process'
import { join } from 'node:path'

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

import {
  redisServerAvailable,
  startRedisServer,
  type TestRedisServer,
} from '../../../utils/test/support/redis-server.js'
import { REPO_ROOT, startServer, type ServerProcess } from './support/server-process.js'

const SCRIPT = join(REPO_ROOT, 'scripts', 'health-checks.sh')

function runChecks(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', [SCRIPT], {
      env: { PATH: process.env.PATH ?? '', SLEEP: '0.01', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.once('exit', (code) => resolve({ code, output }))
  })
}

const running: ServerProcess[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.stop()))
})

describe('the guide’s health checks', () => {
  it('pass against a server in memory mode', async () => {
    const server = await startServer()
    running.push(server)
    const { code, output } = await runChecks({ BASE_URL: server.base })
    expect(output).toContain('ok   110 GETs: 200x100 429x10')
    expect(output).toContain('ok   65 POSTs: 201x60 429x5')
    expect(output).not.toContain('FAIL')
    expect(code).toBe(0)
  })

  it('fail loudly when the budget is not what the guide expects', async () => {
    const server = await startServer({ RATE_LIMIT_READ_MAX: '50' })
    running.push(server)
    const { code, output } = await runChecks({ BASE_URL: server.base })
    expect(output).toContain('FAIL 110 GETs: got 200x50 429x60, expected 200x100 429x10')
    expect(code).toBe(1)
  })
})

describe.runIf(redisServerAvailable())('the guide’s health checks with Redis', () => {
  let redis: TestRedisServer
  beforeAll(async () => {
    redis = await startRedisServer({ password: 'guide-pw-123' })
  })
  afterAll(async () => {
    await redis?.stop()
  })

  it('pass against two instances sharing a password-protected Redis', async () => {
    const servers = await Promise.all([startServer({ REDIS_URL: redis.url }), startServer({ REDIS_URL: redis.url })])
    running.push(...servers)
    const { code, output } = await runChecks({ BASE_URL: servers[0].base, REDIS_URL: redis.url, INSTANCES: '2' })
    expect(output).toContain('ok   redis-cli ping: PONG')
    expect(output).toContain('ok   Redis connections named universo-rate-limit: 2')
    expect(output).not.toContain('FAIL')
    expect(code).toBe(0)
  })
})
