// Every symptom of docs/troubleshooting.md, reproduced: the page's examples are run as written, and
// the lines, answers and command outputs it shows are the ones the built server and tools print.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import { Redis } from 'ioredis'
import { afterEach, describe, expect, it } from 'vitest'

import { waitFor } from '../../../utils/test/support/http.js'
import { freePort } from '../../../utils/test/support/ports.js'
import {
  redisServerAvailable,
  startRedisServer,
  type TestRedisServer,
} from '../../../utils/test/support/redis-server.js'
import {
  docBlock,
  docOutput,
  getFrom,
  inOrder,
  normalize,
  runConsoleBlock,
  startProxy,
  type Proxy,
} from './support/doc-examples.js'
import {
  REPO_ROOT,
  spawnWatched,
  startServer,
  type ServerProcess,
  type WatchedProcess,
} from './support/server-process.js'

const PAGE = 'troubleshooting.md'
const DOC = readFileSync(join(REPO_ROOT, 'docs', PAGE), 'utf8')
/** Where a host of the service would run: express and @universo/metaverses-srv resolve there. */
const HOST_PACKAGE = join(REPO_ROOT, 'packages', 'server')
/** The ports the page shows. */
const DOC_SERVER_PORT = '3000'
const DOC_REDIS_PORT = '6379'

const servers: ServerProcess[] = []
const processes: WatchedProcess[] = []
const proxies: Proxy[] = []
const redises: TestRedisServer[] = []
const clients: Redis[] = []
afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect()
  await Promise.all(servers.splice(0).map((server) => server.stop()))
  await Promise.all(processes.splice(0).map((child) => child.stop()))
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()))
  await Promise.all(redises.splice(0).map((redis) => redis.stop()))
})

async function start(env: Record<string, string> = {}, waitForListening = true): Promise<ServerProcess> {
  const server = await startServer(env, { waitForListening })
  servers.push(server)
  return server
}

async function redisServer(password?: string): Promise<TestRedisServer> {
  const redis = await startRedisServer(password === undefined ? {} : { password })
  redises.push(redis)
  return redis
}

async function proxyTo(server: ServerProcess): Promise<Proxy> {
  const proxy = await startProxy(server.port)
  proxies.push(proxy)
  return proxy
}

/** Runs one of the page's JavaScript examples as the host a user would write, on PORT. */
async function runExample(id: string): Promise<{ host: WatchedProcess; port: number }> {
  const port = await freePort()
  const host = spawnWatched(process.execPath, ['--input-type=module'], {
    cwd: HOST_PACKAGE,
    env: { PORT: String(port) },
    stdin: docBlock(PAGE, 'example', id),
  })
  processes.push(host)
  return { host, port }
}

/** The server's log messages, with its port, pid and times as the page shows them. */
const shown = (server: ServerProcess, values: Record<string, string> = {}): string[] =>
  server.lines().map((line) => normalize(line, { [String(server.port)]: DOC_SERVER_PORT, ...values }))

/** Passes when `expected` appears in `actual` in that order; otherwise fails with a diff of both. */
function expectInOrder(actual: string[], expected: string[]): void {
  if (!inOrder(actual, expected)) expect(actual).toEqual(expected)
}

const NOT_INITIALIZED = 'Rate limiters not initialized. Call initializeRateLimiters() first.'

const get = (server: ServerProcess, path = '/api/v1/metaverses') => fetch(`${server.base}${path}`)

/** The window of the server's default limits, in seconds (RATE_LIMIT_WINDOW_MS unset). */
const WINDOW_SECONDS = 900

/**
 * A line of a 429 answer with the seconds left in the window (RateLimit's `t=`, `Retry-After`,
 * `retryAfter`) as the page shows them, at the window's start: any value within the window, however
 * long the test took to get there, becomes 900. A value outside it is left as is, and fails.
 */
const atWindowStart = (line: string): string =>
  line.replace(/(; t=|^Retry-After: |"retryAfter":)(\d+)\b/g, (match, label: string, seconds: string) =>
    Number(seconds) >= 1 && Number(seconds) <= WINDOW_SECONDS ? `${label}${WINDOW_SECONDS}` : match,
  )

describe('"Rate limiters not initialized"', () => {
  it('stops a host that builds the routes before initializeRateLimiters(), with the guide’s message', async () => {
    const { host } = await runExample('routes-before-init')
    expect((await host.exited).code).toBe(1)
    expectInOrder(host.output().split('\n'), docOutput(PAGE, 'routes-before-init'))
  })

  it('with the guide’s lazy mount and no initializeRateLimiters(), answers 500 to every API request', async () => {
    const { host, port } = await runExample('lazy-mount-without-init')
    await host.waitForOutput('listening')
    const run = runConsoleBlock(PAGE, 'lazy-mount-without-init', {
      cwd: REPO_ROOT,
      commands: { [`:${DOC_SERVER_PORT}`]: `:${port}` },
    })
    expect(run.actual).toEqual(run.expected)
    // The error comes again with each request: nothing stops the boot, nothing heals it.
    const printed = () => host.output().split(NOT_INITIALIZED).length - 1
    await waitFor('the error printed for both requests', () => printed() === 2)
    expect(printed()).toBe(2)
  })

  it('serves once initializeRateLimiters() is awaited before the routes are built', async () => {
    const { host, port } = await runExample('init-first')
    await host.waitForOutput('listening')
    const lines = normalize(host.output(), { [String(port)]: DOC_SERVER_PORT })
      .trimEnd()
      .split('\n')
    expect(lines).toEqual(docOutput(PAGE, 'init-first'))
    expect((await fetch(`http://127.0.0.1:${port}/api/v1/metaverses`)).status).toBe(200)
  })

  it('"Error: command start not found" is pnpm’s, for pnpm start where there is no start script', () => {
    const run = runConsoleBlock(PAGE, 'pnpm-start-elsewhere', { cwd: REPO_ROOT })
    expect(run.actual).toEqual(run.expected)
  })
})

describe('"Redis connection timeout"', () => {
  it('with RATE_LIMIT_REQUIRE_REDIS=true and no Redis, the server exits 1 with these lines', async () => {
    const redisPort = await freePort()
    const server = await start(
      { REDIS_URL: `redis://:s3cret-pw@127.0.0.1:${redisPort}`, RATE_LIMIT_REQUIRE_REDIS: 'true' },
      false,
    )
    expect((await server.exited).code).toBe(1)
    expect(shown(server, { [String(redisPort)]: DOC_REDIS_PORT })).toEqual(
      docOutput(PAGE, 'redis-unreachable-required'),
    )
  })

  it('without it, the server boots degraded, says so in /ready’s body (still 200), and still answers', async () => {
    const redisPort = await freePort()
    const server = await start({ REDIS_URL: `redis://:s3cret-pw@127.0.0.1:${redisPort}` })
    expectInOrder(shown(server, { [String(redisPort)]: DOC_REDIS_PORT }), docOutput(PAGE, 'redis-unreachable'))
    const run = runConsoleBlock(PAGE, 'ready-degraded', {
      cwd: REPO_ROOT,
      commands: { [`:${DOC_SERVER_PORT}`]: `:${server.port}` },
    })
    expect(run.actual).toEqual(run.expected)
    expect((await get(server)).status).toBe(200)
    // The guide's grep for "connection timeout" finds nothing in this case.
    expect(server.output()).not.toContain('connection timeout')
    expect(server.output()).not.toContain('s3cret-pw')
  })

  it('with RATE_LIMIT_ON_STORE_ERROR=deny, it boots degraded and answers 503, /ready included', async () => {
    const redisPort = await freePort()
    const server = await start({
      REDIS_URL: `redis://:s3cret-pw@127.0.0.1:${redisPort}`,
      RATE_LIMIT_ON_STORE_ERROR: 'deny',
    })
    const run = runConsoleBlock(PAGE, 'ready-degraded-deny', {
      cwd: REPO_ROOT,
      commands: { [`:${DOC_SERVER_PORT}`]: `:${server.port}` },
    })
    // retryAfter is spread over 1-5 s, so that clients do not all come back at once: the page shows 3.
    expect(run.actual.map((line) => line.replace(/"retryAfter":[1-5]\}/, '"retryAfter":3}'))).toEqual(run.expected)
  })
})

describe.runIf(redisServerAvailable())('"Redis connection timeout" with a Redis that is there', () => {
  it('shows WRONGPASS for a wrong password, and never the password', async () => {
    const redis = await redisServer('s3cret-pw')
    const server = await start(
      { REDIS_URL: `redis://:wrong-pw@127.0.0.1:${redis.port}`, RATE_LIMIT_REQUIRE_REDIS: 'true' },
      false,
    )
    expect((await server.exited).code).toBe(1)
    expect(shown(server, { [String(redis.port)]: DOC_REDIS_PORT })).toEqual(docOutput(PAGE, 'wrong-password'))
    expect(server.output()).not.toContain('wrong-pw')
  })

  it('the guide’s redis-cli -u redis://:password@host says NOAUTH; naming the default user works', async () => {
    const redis = await redisServer('s3cret-pw')
    const run = runConsoleBlock(PAGE, 'redis-cli-ping', {
      cwd: REPO_ROOT,
      commands: { [`:${DOC_REDIS_PORT}`]: `:${redis.port}` },
    })
    expect(run.actual).toEqual(run.expected)
  })
})

describe('High 429 error rate', () => {
  it('a client over its limit gets this 429, counted in /metrics and logged once, with no access log', async () => {
    const server = await start({ RATE_LIMIT_READ_MAX: '3' })
    const statuses: number[] = []
    let last: Response | undefined
    for (let i = 0; i < 6; i++) {
      last = await get(server)
      statuses.push(last.status)
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429])
    const answer = [
      `HTTP/1.1 ${last!.status} ${last!.statusText}`,
      ...['RateLimit', 'RateLimit-Policy', 'Retry-After', 'Content-Type'].map((h) => `${h}: ${last!.headers.get(h)}`),
      '',
      await last!.text(),
    ].map(atWindowStart)
    expect(answer).toEqual(docOutput(PAGE, '429-answer'))

    const metrics = runConsoleBlock(PAGE, '429-metrics', {
      cwd: REPO_ROOT,
      commands: { [`:${DOC_SERVER_PORT}`]: `:${server.port}` },
    })
    expect(metrics.actual).toEqual(metrics.expected)

    const audits = server.records().filter((record) => record.event === 'rate_limit_exceeded')
    const projected = audits.map((r) =>
      normalize(JSON.stringify({ time: r.time, key: r.key, ip: r.ip, route: r.route, limit: r.limit }), {}),
    )
    expect(projected).toEqual(docOutput(PAGE, '429-audit'))
    // The guide's greps: no line records a status or a request line; requests are not logged.
    expect(server.output()).not.toContain('GET /api/v1/metaverses')
    expect(server.records().some((record) => 'status' in record || 'statusCode' in record)).toBe(false)
  })

  it('behind a proxy without TRUST_PROXY, all clients share the proxy’s budget, with a warning', async () => {
    const server = await start({ RATE_LIMIT_READ_MAX: '3' })
    const proxy = await proxyTo(server)
    const url = `${proxy.base}/api/v1/metaverses`
    for (let i = 0; i < 3; i++) expect((await getFrom('127.0.0.2', url)).status).toBe(200)
    // Another client, another address: refused all the same.
    expect((await getFrom('127.0.0.3', url)).status).toBe(429)
    expect(shown(server).filter((line) => line.includes('ERR_ERL'))).toEqual(docOutput(PAGE, 'proxy-warning'))
    const audit = server.records().find((record) => record.event === 'rate_limit_exceeded')
    expect(audit).toMatchObject({ key: '127.0.0.1', ip: '::ffff:127.0.0.1' })
  })

  it('with TRUST_PROXY=1 behind that proxy, each client has its own budget', async () => {
    const server = await start({ RATE_LIMIT_READ_MAX: '3', TRUST_PROXY: '1' })
    const proxy = await proxyTo(server)
    const url = `${proxy.base}/api/v1/metaverses`
    for (let i = 0; i < 3; i++) expect((await getFrom('127.0.0.2', url)).status).toBe(200)
    expect((await getFrom('127.0.0.2', url)).status).toBe(429)
    expect((await getFrom('127.0.0.3', url)).status).toBe(200)
    expect(server.records().find((record) => record.event === 'rate_limit_exceeded')).toMatchObject({
      key: '127.0.0.2',
      ip: '127.0.0.2',
    })
    expect(server.output()).not.toContain('ERR_ERL')
  })
})

describe.runIf(redisServerAvailable())('Redis connections growing', () => {
  it('one named connection per process, however many requests; wc -l counts redis-cli too', async () => {
    const redis = await redisServer('s3cret-pw')
    const server = await start({ REDIS_URL: redis.url })
    for (let i = 0; i < 50; i++) {
      await get(server)
      await fetch(`${server.base}/api/v1/metaverses`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"name":"x"}',
      })
    }
    // Only the server and redis-cli should be left: the harness's own admin connection goes.
    redis.admin.disconnect()
    const env = { REDIS_URL: `redis://default:s3cret-pw@127.0.0.1:${redis.port}` }
    const count = () => runConsoleBlock(PAGE, 'client-list', { cwd: REPO_ROOT, env })
    await waitFor('the admin connection to close', () => count().actual.join() === count().expected.join(), 5000)
    const run = count()
    expect(run.actual).toEqual(run.expected)

    // Code that makes its own client per request (the guide's leak), three times over.
    for (let i = 0; i < 3; i++) {
      const leaked = new Redis(redis.url, { lazyConnect: true })
      clients.push(leaked)
      await leaked.connect()
    }
    const leak = runConsoleBlock(PAGE, 'client-list-leak', { cwd: REPO_ROOT, env })
    expect(leak.actual).toEqual(leak.expected)
  })

  it('the guide’s source search finds clients made only in redis/client-factory.ts', () => {
    const run = runConsoleBlock(PAGE, 'grep-new-redis', { cwd: REPO_ROOT })
    expect(run.actual).toEqual(run.expected)
  })
})

describe('a bad environment value', () => {
  it.each<[Record<string, string>, string]>([
    [{ RATE_LIMIT_READ_MAX: 'abc' }, 'RATE_LIMIT_READ_MAX must be a positive integer, got "abc"'],
    [
      { TRUST_PROXY: 'true' },
      'TRUST_PROXY must be the number of proxies in front of the server (1 to 10) or false, got "true" ' +
        '(true would let any client choose its own IP through X-Forwarded-For)',
    ],
    [
      { REDIS_URL: 'redis://:pa#ss@redis-host:6379' },
      'REDIS_URL has an "@" after a "/", "?" or "#": percent-encode those characters in the user name and password, got "redis://***@redis-host:6379"; expected redis://[user:pass@]host:port[/db] ' +
        'or rediss://[user:pass@]host:port[/db] (TLS)',
    ],
    [
      { REDIS_URL: 'localhost:6379' },
      'REDIS_URL has unsupported scheme "localhost:", got "<14 characters without a scheme://>"; expected ' +
        'redis://[user:pass@]host:port[/db] or rediss://[user:pass@]host:port[/db] (TLS)',
    ],
    [
      { REDIS_URL: 'redis://:s3cret-pw@redis-host:6379', REDIS_PASSWORD: 's3cret-pw' },
      'REDIS_PASSWORD is not read with REDIS_URL; put the password in REDIS_URL: redis://:password@host:port',
    ],
    [
      { REDIS_URL: 'redis://redis-host:6379', REDIS_TLS_CA: '/etc/ssl/redis-ca.pem' },
      'REDIS_TLS_CA is set but the connection does not use TLS; use a rediss:// URL, or REDIS_TLS=true with ' +
        'Sentinel or Cluster',
    ],
    [
      { RATE_LIMIT_ON_STORE_ERROR: 'open' },
      'RATE_LIMIT_ON_STORE_ERROR must be one of fallback, allow, deny, got "open"',
    ],
    [
      { API_TOKENS: 'alice:tok-0123456789abcdef' },
      'API_TOKENS entry 1 must be token:userId or token:userId:admin, with a token of 16-512 characters from ' +
        'A-Z a-z 0-9 . _ ~ + / = - and a userId of 1-64 characters from A-Z a-z 0-9 . _ @ -, but its token is ' +
        'shorter than 16 characters',
    ],
  ])('%o stops the boot with one line, as the page shows', async (env, message) => {
    const server = await start(env, false)
    expect((await server.exited).code).toBe(1)
    const line = `[Server] Invalid configuration: ${message}`
    expect(server.lines()).toEqual([line])
    expect(DOC).toContain(`\`${line}\``)
    expect(server.output()).not.toMatch(/s3cret-pw|tok-0123456789abcdef/)
  })
})

describe.runIf(redisServerAvailable())('NOSCRIPT after Redis restarts or flushes its scripts', () => {
  it('never reaches a client: the scripts are loaded again and counting goes on', async () => {
    const redis = await redisServer()
    const server = await start({ REDIS_URL: redis.url, RATE_LIMIT_READ_MAX: '5' })
    expect((await get(server)).headers.get('ratelimit')).toBe('"read"; r=4; t=900')

    await redis.admin.script('FLUSH')
    const afterFlush = await get(server)
    expect(afterFlush.status).toBe(200)
    expect(atWindowStart(afterFlush.headers.get('ratelimit') ?? '')).toBe('"read"; r=3; t=900')

    // A restart: Redis comes back empty, without the scripts and without the counts.
    await redis.signal('SIGKILL')
    redises.splice(redises.indexOf(redis), 1)
    expect((await get(server)).status).toBe(200) // the fallback while Redis is away
    redises.push(await startRedisServer({ port: redis.port }))
    // The body, not the status code: /ready answers 200 under the fallback too.
    await waitFor(
      'the limiters to be back on Redis',
      async () => ((await (await get(server, '/ready')).json()) as { ready: boolean }).ready,
    )
    const afterRestart = await get(server)
    expect(afterRestart.status).toBe(200)
    expect(atWindowStart(afterRestart.headers.get('ratelimit') ?? '')).toBe('"read"; r=4; t=900')

    expect(server.output()).not.toContain('NOSCRIPT')
    expect(server.lines()).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\[RateLimit\] metaverses-srv: Redis unavailable \(/),
        expect.stringMatching(/^\[RateLimit\] metaverses-srv: Redis back after \d+(\.\d)? s, shared limits restored$/),
      ]),
    )
  })
})
