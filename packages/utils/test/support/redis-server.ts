// Starts a real redis-server on a free loopback port for one test file, and stops it by pid.
import { spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Redis } from 'ioredis'

import { launchRedis } from './launch-redis.mjs'
import { freePort } from './ports.js'

export const INSTALL_HINT =
  'redis-server is not installed: Redis integration tests need it. Install it with ' +
  '`sudo apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS).'

/** True when a redis-server binary can be run. */
export function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
}

export interface RedisServerOptions {
  /** Sets requirepass. */
  readonly password?: string
  /** Reuse a port (to restart a server where a client expects it). */
  readonly port?: number
  /**
   * A redis.conf to start from. The harness then sets only the port, the bind addresses, a
   * temporary dir and the password, so every other setting (persistence included) is the file's.
   */
  readonly configFile?: string
  /** Addresses to listen on, instead of 127.0.0.1 alone. Keep 127.0.0.1 among them: `admin` connects there. */
  readonly bind?: readonly string[]
}

export interface TestRedisServer {
  readonly port: number
  readonly pid: number
  /** redis://[:password@]127.0.0.1:port */
  readonly url: string
  /** An admin connection for assertions (named, so tests can tell it from the library's). */
  readonly admin: Redis
  /** Everything the server printed. */
  output(): string
  /** Stops the server (SIGTERM, then SIGKILL) and closes the admin connection. */
  stop(): Promise<void>
  /** Sends `signal` to the server: SIGKILL or SIGTERM end it (and wait for that), SIGSTOP and SIGCONT hang and resume it. */
  signal(signal: 'SIGKILL' | 'SIGTERM' | 'SIGSTOP' | 'SIGCONT'): Promise<void>
}

export const ADMIN_CONNECTION_NAME = 'test-admin'

export async function startRedisServer(options: RedisServerOptions = {}): Promise<TestRedisServer> {
  const port = options.port ?? (await freePort())
  const dir = mkdtempSync(join(tmpdir(), 'universo-redis-'))
  const args = ['--port', String(port), '--bind', ...(options.bind ?? ['127.0.0.1']), '--dir', dir]
  if (options.configFile === undefined) args.push('--save', '', '--appendonly', 'no')
  else args.unshift(options.configFile)
  if (options.password !== undefined) args.push('--requirepass', options.password)
  const { child, output } = await launchRedis({ args })
  const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`
  const admin = new Redis({
    host: '127.0.0.1',
    port,
    password: options.password,
    connectionName: ADMIN_CONNECTION_NAME,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  })
  await admin.connect()
  return {
    port,
    pid: child.pid!,
    url: `redis://${auth}127.0.0.1:${port}`,
    admin,
    output,
    async stop() {
      admin.disconnect()
      if (child.signalCode === null && child.exitCode === null) child.kill('SIGCONT')
      await stopProcess(child)
      rmSync(dir, { recursive: true, force: true })
    },
    async signal(signal) {
      if (signal === 'SIGKILL' || signal === 'SIGTERM') {
        admin.disconnect()
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
        child.kill(signal)
        await exited
        rmSync(dir, { recursive: true, force: true })
        return
      }
      child.kill(signal)
    },
  }
}

/** Ends our own child by pid: SIGTERM, then SIGKILL after 5 s. */
export function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 5_000)
    child.once('exit', () => {
      clearTimeout(force)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

/** Our library's connections, as CLIENT LIST shows them. */
export async function libraryConnections(admin: Redis, name: string): Promise<string[]> {
  const list = (await admin.client('LIST')) as string
  return list.split('\n').filter((line) => line.includes(` name=${name} `))
}
