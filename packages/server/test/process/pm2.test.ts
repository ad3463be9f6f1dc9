// ecosystem.config.cjs under the real pm2: 4 cluster workers on one redis-server, one budget, a clean stop.
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { waitFor } from '../../../utils/test/support/http.js'
import { freePort } from '../../../utils/test/support/ports.js'
import {
  ADMIN_CONNECTION_NAME,
  redisServerAvailable,
  startRedisServer,
  type TestRedisServer,
} from '../../../utils/test/support/redis-server.js'
import { startSlowPost } from './support/slow-request.js'
import { MAIN, REPO_ROOT } from './support/server-process.js'

const ECOSYSTEM = join(REPO_ROOT, 'ecosystem.config.cjs')
const PM2 = join(REPO_ROOT, 'node_modules', 'pm2', 'bin', 'pm2')
const APP = 'universo-server'
const WORKERS = 4
const CONNECTION_NAME = 'universo-rate-limit'
/** What pm2 waits after SIGINT before a SIGKILL, unless kill_timeout says otherwise. */
const PM2_DEFAULT_KILL_TIMEOUT_MS = 1600

/** Not a multiple of 4: were the workers counting on their own (fallback), they would allow 4 x 5 = 20. */
const READ_MAX = 22
const READS = 100
const SHUTDOWN_LINES = [
  '[Server] SIGINT received: no new connections, finishing in-flight requests',
  '[Redis] Closing connection...',
  '[Redis] Connection closed',
  '[Server] Shutdown complete',
]

const run = promisify(execFile)

/** What `pm2 jlist` says of one process (the fields this test reads). */
interface Pm2Process {
  readonly name: string
  readonly pid: number
  readonly pm_id: number
  readonly pm2_env: {
    readonly status: string
    readonly exec_mode: string
    readonly env: Readonly<Record<string, string | undefined>>
  }
}

/** One of the server's pino lines. */
interface LogLine {
  readonly pid: number
  readonly msg: string
}

function logLines(text: string): LogLine[] {
  const lines: LogLine[] = []
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue
    try {
      const parsed = JSON.parse(line) as Partial<LogLine>
      if (typeof parsed.msg === 'string' && typeof parsed.pid === 'number') {
        lines.push({ pid: parsed.pid, msg: parsed.msg })
      }
    } catch {
      // pm2's own lines in pm2.log are not JSON.
    }
  }
  return lines
}

const readText = (path: string): string => {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

/** True while `pid` runs (a zombie, exited but not yet reaped, counts as gone). */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  const stat = readText(`/proc/${pid}/stat`)
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
}

/** A GET on a connection of its own (no keep-alive), so the cluster can hand each to another worker. */
function get(port: number, path: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false, timeout: 10_000 }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${path} got no answer within 10 s`)))
    req.on('error', reject)
    req.end()
  })
}

/** GET /ready on a fresh connection: true when its body says the limiters count in Redis. */
function countsInRedis(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/ready', agent: false, timeout: 10_000 }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => (body += chunk.toString()))
      res.on('end', () => {
        const status = JSON.parse(body) as { store?: string; ready?: boolean }
        resolve(status.store === 'redis' && status.ready === true)
      })
    })
    req.on('timeout', () => req.destroy(new Error('GET /ready got no answer within 10 s')))
    req.on('error', reject)
    req.end()
  })
}

/** Runs `task` `count` times, at most `concurrency` at once; the results in order of completion. */
async function pool<T>(count: number, concurrency: number, task: () => Promise<T>): Promise<T[]> {
  const results: T[] = []
  let started = 0
  const lane = async () => {
    while (started < count) {
      started++
      results.push(await task())
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane))
  return results
}

describe.runIf(redisServerAvailable())('pm2 start ecosystem.config.cjs --env production', () => {
  let redis: TestRedisServer
  let home: string
  let port: number
  let env: NodeJS.ProcessEnv
  let daemonPid: number | undefined
  /** Every pid pm2 has shown for the app, for the clean-up. */
  const workerPids = new Set<number>()
  /** The workers once all listen. */
  let workers: number[] = []

  const outLog = () => readText(join(home, 'logs', `${APP}-out.log`))
  const daemonLog = () => readText(join(home, 'pm2.log'))
  /** pm2.log and every file in $PM2_HOME/logs: wherever a worker's lines may have gone. */
  const allLogs = () =>
    [daemonLog(), ...readdirSync(join(home, 'logs')).map((file) => readText(join(home, 'logs', file)))].join('\n')
  /** pm2 from node_modules, on our own daemon (PM2_HOME in a temp dir); each call ends within 30 s. */
  const pm2 = async (...args: string[]): Promise<string> => {
    const { stdout } = await run(process.execPath, [PM2, ...args], {
      cwd: home,
      env,
      timeout: 30_000,
      killSignal: 'SIGKILL',
    })
    return stdout
  }
  const jlist = async (): Promise<Pm2Process[]> => {
    const list = JSON.parse(await pm2('jlist')) as Pm2Process[]
    return list.filter((proc) => proc.name === APP)
  }
  /** CLIENT LIST on the test's Redis, without the test's own connection. */
  const clients = async (): Promise<string[]> => {
    const list = (await redis.admin.client('LIST')) as string
    return list.split('\n').filter((line) => line.trim() !== '' && !line.includes(` name=${ADMIN_CONNECTION_NAME} `))
  }
  /** For a failure message: where a worker's lines went if not to its out log. */
  const whereInstead = (pid: number): string => {
    const stray = logLines(daemonLog()).filter((line) => line.pid === pid).length
    return stray === 0
      ? `worker ${pid}, its lines in ${APP}-out.log`
      : `worker ${pid}: ${stray} of its lines are in pm2's daemon log (pm2.log) instead of ${APP}-out.log: ` +
          'a cluster worker shares the daemon’s fd 1, and pm2 captures only what goes through process.stdout.write'
  }
  const appClients = async () => (await clients()).filter((line) => line.includes(` name=${CONNECTION_NAME} `))

  beforeAll(async () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run pnpm build first (pnpm test does)`)
    redis = await startRedisServer()
    home = mkdtempSync(join(tmpdir(), 'universo-pm2-'))
    // A fresh PM2_HOME without this file makes pm2 send a version check over the network.
    writeFileSync(join(home, 'touch'), '')
    port = await freePort()
    // Only what pm2 and the server need, so nothing of this machine's environment leaks in.
    env = {
      PATH: process.env.PATH ?? '',
      HOME: home,
      PM2_HOME: home,
      PM2_DISABLE_VERSION_CHECK: 'true',
      REDIS_URL: redis.url,
      PORT: String(port),
      RATE_LIMIT_READ_MAX: String(READ_MAX),
    }
    await pm2('start', ECOSYSTEM, '--env', 'production')
    daemonPid = Number(readFileSync(join(home, 'pm2.pid'), 'utf8'))
    // Ready once every process pm2 runs has said it listens (in whichever pm2 log file its lines went).
    await waitFor(
      'every pm2 process listening',
      async () => {
        const pids = (await jlist()).map((proc) => proc.pid)
        for (const pid of pids) if (pid > 0) workerPids.add(pid)
        const listening = logLines(allLogs()).filter((line) => line.msg.startsWith('[Server] Listening on'))
        return pids.length > 0 && pids.every((pid) => listening.some((line) => line.pid === pid))
      },
      20_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; pm2's logs:\n${allLogs()}`)
    })
    workers = (await jlist()).map((proc) => proc.pid)
  }, 40_000)

  afterAll(async () => {
    try {
      if (daemonPid !== undefined && alive(daemonPid)) await pm2('kill').catch(() => undefined)
    } finally {
      // Should pm2 kill have failed: our own daemon and workers, by pid (and only while their command
      // line still says so, in case a pid was reused).
      for (const pid of [daemonPid, ...workerPids]) {
        const command = pid === undefined ? '' : readText(`/proc/${pid}/cmdline`)
        if (pid !== undefined && alive(pid) && (command.includes(home) || command.includes(MAIN))) {
          process.kill(pid, 'SIGKILL')
        }
      }
      await redis?.stop()
      if (home !== undefined) rmSync(home, { recursive: true, force: true })
    }
  }, 40_000)

  it('runs 4 cluster workers with env_production, REDIS_URL taken from the environment', async () => {
    const procs = await jlist()
    expect(procs).toHaveLength(WORKERS)
    expect(new Set(procs.map((proc) => proc.pid)).size).toBe(WORKERS)
    for (const proc of procs) {
      expect(proc.pm2_env.exec_mode).toBe('cluster_mode')
      expect(proc.pm2_env.status).toBe('online')
      expect(proc.pm2_env.env).toMatchObject({
        NODE_ENV: 'production',
        REDIS_URL: redis.url,
        RATE_LIMIT_INSTANCES: String(WORKERS),
      })
    }
  })

  it('writes each worker’s boot lines to the app’s pm2 log, universo-server-out.log', async () => {
    const lines = logLines(outLog())
    for (const pid of workers) {
      expect(
        lines.filter((line) => line.pid === pid).map((line) => line.msg),
        whereInstead(pid),
      ).toEqual(
        expect.arrayContaining([
          '[Redis] Client connected successfully',
          '[RateLimit:read] Using Redis store (distributed mode)',
          '[RateLimit:write] Using Redis store (distributed mode)',
          `[Server] Listening on http://localhost:${port} (pid ${pid})`,
        ]),
      )
    }
    // The same file is what `pm2 logs` shows.
    const shown = await pm2('logs', APP, '--nostream', '--raw', '--lines', '1000')
    expect(logLines(shown).filter((line) => line.msg === '[Redis] Client connected successfully')).toHaveLength(
      workers.length,
    )
  })

  it('holds exactly one Redis connection per worker, and no other', async () => {
    expect(await appClients()).toHaveLength(WORKERS)
    expect(await clients()).toHaveLength(WORKERS)
  })

  it(`lets exactly ${READ_MAX} of ${READS} reads through, counted in Redis by all 4 workers`, async () => {
    // Wait until /ready's body says every worker counts in Redis (its status is 200 on the fallback
    // too). One connection at a time: the cluster hands them out in turn, so each worker answers twice.
    await waitFor(
      'every worker ready (its limiters on Redis)',
      async () => (await pool(2 * WORKERS, 1, () => countsInRedis(port))).every(Boolean),
      5000,
    )
    const monitor = await redis.admin.monitor()
    const sources = new Set<string>()
    const marker = `pm2-test-${process.pid}-${Date.now()}`
    let markerSeen = false
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (/^eval(sha)?$/i.test(args[0] ?? '') && source !== 'lua') sources.add(source)
      if (args[1] === marker) markerSeen = true
    })
    try {
      const statuses = await pool(READS, 20, () => get(port, '/api/v1/metaverses'))
      expect(statuses.filter((status) => status === 200)).toHaveLength(READ_MAX)
      expect(statuses.filter((status) => status === 429)).toHaveLength(READS - READ_MAX)
      // MONITOR shows commands in the order Redis ran them: once it shows this ECHO, sent after the
      // last answer, it has shown every command of the reads.
      await redis.admin.echo(marker)
      await waitFor('MONITOR to show the marker', () => markerSeen, 5000)
    } finally {
      monitor.disconnect()
    }
    // One counter for this client, written through each worker's connection.
    expect(await redis.admin.keys('metaverses-srv:read:*')).toEqual(['metaverses-srv:read:127.0.0.1'])
    const addresses = (await appClients()).map((line) => /\baddr=(\S+)/.exec(line)?.[1])
    expect(addresses).toHaveLength(WORKERS)
    expect([...sources].sort()).toEqual([...addresses].sort())
  })

  /** `pm2 stop` with a request in flight: done once, by whichever test needs it first. */
  let stopping: Promise<string> | undefined
  const stopWithRequestInFlight = (): Promise<string> =>
    (stopping ??= (async () => {
      const slow = await startSlowPost(port, '/api/v1/metaverses', JSON.stringify({ name: 'in flight' }))
      // A worker holds the request once its write limiter has counted it (it runs before the body is read).
      await waitFor(
        'the slow POST counted by a worker',
        async () => (await redis.admin.exists('metaverses-srv:write:127.0.0.1')) === 1,
        5000,
      )
      const stopped = pm2('stop', APP)
      const sigints = () => logLines(allLogs()).filter((line) => line.msg.startsWith('[Server] SIGINT received'))
      await waitFor('a SIGINT line per worker', () => sigints().length >= workers.length, 15_000).catch(
        (error: Error) => {
          throw new Error(`${error.message}, in:\n${allLogs()}`)
        },
      )
      // The claim is a duration: past the time pm2's default kill_timeout would have SIGKILLed it,
      // the worker holding the request is still alive, draining.
      const killedByDefault = performance.now() + PM2_DEFAULT_KILL_TIMEOUT_MS
      await new Promise((resolve) => setTimeout(resolve, PM2_DEFAULT_KILL_TIMEOUT_MS + 500))
      expect(performance.now()).toBeGreaterThan(killedByDefault)
      expect(workers.filter(alive).length, 'workers alive past the default kill_timeout').toBeGreaterThan(0)
      const response = await Promise.race([
        slow.finish(),
        slow.closed.then((raw) => `closed without an answer: ${raw}`),
      ])
      await stopped
      return response
    })())

  it('`pm2 stop` lets a request in flight finish; every worker exits 0 and closes its Redis connection', async () => {
    expect(await stopWithRequestInFlight()).toMatch(/^HTTP\/1\.1 201 Created/)
    const procs = await jlist()
    expect(procs.map((proc) => proc.pm2_env.status)).toEqual(Array<string>(WORKERS).fill('stopped'))
    for (const proc of procs) {
      expect(daemonLog()).toContain(`App [${APP}:${proc.pm_id}] exited with code [0] via signal [SIGINT]`)
    }
    expect(daemonLog()).not.toMatch(/still alive after \d+ms/)
    await waitFor('no Redis connection left', async () => (await clients()).length === 0, 3000)
  }, 40_000)

  it('writes each worker’s shutdown lines, in order, to universo-server-out.log', async () => {
    await stopWithRequestInFlight()
    const lines = logLines(outLog())
    for (const pid of workers) {
      const own = lines.filter((line) => line.pid === pid).map((line) => line.msg)
      expect(own, whereInstead(pid)).toEqual(expect.arrayContaining(SHUTDOWN_LINES))
      const order = SHUTDOWN_LINES.map((line) => own.indexOf(line))
      expect(order).toEqual([...order].sort((a, b) => a - b))
    }
  }, 40_000)

  it('`pm2 kill` ends our pm2 daemon', async () => {
    expect(daemonPid).toBeDefined()
    await pm2('kill')
    await waitFor(`pm2 daemon ${daemonPid} gone`, () => !alive(daemonPid!), 5000)
    for (const pid of workers) expect(alive(pid)).toBe(false)
  })
})
