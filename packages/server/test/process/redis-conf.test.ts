// Starts a real redis-server with deploy/redis/redis.conf: its settings load, it wants the password, and a full Redis evicts as decided.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { freePort } from '../../../utils/test/support/ports.js'
import { redisServerAvailable, stopProcess } from '../../../utils/test/support/redis-server.js'

const CONF = fileURLToPath(new URL('../../../../deploy/redis/redis.conf', import.meta.url))
const PASSWORD = 'redis-conf-test-password'

/** redis-server with the file as docker-compose.yml runs it; port, bind and dir overridden for the test. */
async function startWithConf(): Promise<{ child: ChildProcess; port: number; dir: string }> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'universo-redis-conf-'))
  const args = [CONF, '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--requirepass', PASSWORD]
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start within 10 s:\n${output}`)), 10_000)
    child.stdout?.on('data', () => {
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`redis-server exited with ${code}: the file does not load:\n${output}`))
    })
  })
  return { child, port, dir }
}

describe.runIf(redisServerAvailable())('deploy/redis/redis.conf on a real redis-server', () => {
  let server: Awaited<ReturnType<typeof startWithConf>>
  let admin: Redis

  beforeAll(async () => {
    server = await startWithConf()
    admin = new Redis({ host: '127.0.0.1', port: server.port, password: PASSWORD, lazyConnect: true })
    await admin.connect()
  })
  afterAll(async () => {
    admin?.disconnect()
    if (server !== undefined) {
      await stopProcess(server.child)
      rmSync(server.dir, { recursive: true, force: true })
    }
  })

  const setting = async (name: string): Promise<string> => ((await admin.config('GET', name)) as string[])[1]!

  it.each([
    ['maxmemory', String(256 * 2 ** 20)],
    ['maxmemory-policy', 'volatile-ttl'],
    ['save', ''],
    ['appendonly', 'no'],
    ['protected-mode', 'yes'],
  ])('loads %s = %j', async (name, expected) => {
    expect(await setting(name)).toBe(expected)
  })

  it('refuses a client without the password', async () => {
    // A bare connection, as any client on the network would open one.
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(server.port, '127.0.0.1', () => socket.write('PING\r\n'))
      socket.once('data', (chunk) => {
        resolve(chunk.toString())
        socket.destroy()
      })
      socket.once('error', reject)
    })
    expect(answer).toMatch(/^-NOAUTH /)
  })

  it('when full, evicts the counters closest to their reset, keeps keys without a TTL and refuses no write', async () => {
    const write = async (keys: string[], args: (string | number)[]) => {
      const pipeline = admin.pipeline()
      for (const key of keys) pipeline.set(key, '1', ...(args as []))
      for (const [error] of (await pipeline.exec())!) expect(error).toBeNull()
    }
    const range = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}${i}`)
    // Another app's keys, without a TTL; then counters far from their reset, written first, and
    // counters close to it, written later (so least recently used is not the same as closest to reset).
    const persistent = range('session:', 2000)
    const far = range('metaverses-srv:read:far:', 10_000)
    const near = range('metaverses-srv:read:near:', 10_000)
    await write(persistent, [])
    await write(far, ['PX', 900_000])
    await write(near, ['PX', 60_000])
    // Room for a little more (on this server of ours); the policy stays the file's. Then about
    // a third more counters than that room: Redis must evict.
    const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1])
    await admin.config('SET', 'maxmemory', String(used + 256 * 1024))
    await write(range('metaverses-srv:read:more:', 10_000), ['PX', 900_000])
    const present = async (keys: string[]) => {
      const pipeline = admin.pipeline()
      for (const key of keys) pipeline.exists(key)
      return (await pipeline.exec())!.filter(([, exists]) => exists === 1).length
    }
    const evicted = Number(/evicted_keys:(\d+)/.exec(await admin.info('stats'))?.[1])
    expect(evicted).toBeGreaterThan(0)
    expect(await present(persistent)).toBe(persistent.length)
    const nearLost = near.length - (await present(near))
    const farLost = far.length - (await present(far))
    // volatile-ttl samples keys, so some far ones go too, but the near ones go first.
    expect(nearLost).toBeGreaterThan(farLost * 2)
  })
})
