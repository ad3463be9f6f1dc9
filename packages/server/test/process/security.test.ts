// docs/security.md against the built server: a least-privilege Redis ACL user, proxy trust through a
// real reverse proxy, and what the server exposes on the network.
import { readFileSync, readlinkSync, readdirSync, rmSync } from 'node:fs'

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

import { waitFor } from '../../../utils/test/support/http.js'
import {
  redisServerAvailable,
  startRedisServer,
  type TestRedisServer,
} from '../../../utils/test/support/redis-server.js'
import { makeCertificates, startTlsServer, type TlsFiles } from '../../../utils/test/support/topologies.js'
import { docBlock, getFrom, startProxy, type Proxy } from './support/doc-examples.js'
import { startServer, type ServerProcess } from './support/server-process.js'

const PAGE = 'security.md'

const servers: ServerProcess[] = []
const proxies: Proxy[] = []
let redis: TestRedisServer | undefined
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()))
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()))
  await redis?.stop()
  redis = undefined
})

async function start(env: Record<string, string>, waitForListening = true): Promise<ServerProcess> {
  const server = await startServer(env, { waitForListening })
  servers.push(server)
  return server
}

const readyBody = async (server: ServerProcess) => (await fetch(`${server.base}/ready`)).json() as Promise<object>

const post = (server: ServerProcess) =>
  fetch(`${server.base}/api/v1/metaverses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"name":"x"}',
  })

/** The page's `ACL SETUSER ...` line, run on the test's Redis; returns the user and password it sets. */
async function createAclUser(admin: TestRedisServer['admin'], id: string): Promise<{ user: string; password: string }> {
  const [acl, setuser, user, ...rules] = docBlock(PAGE, 'example', id).trim().split(/\s+/)
  expect([acl, setuser]).toEqual(['ACL', 'SETUSER'])
  expect(await admin.call('ACL', 'SETUSER', user!, ...rules)).toBe('OK')
  const password = rules.find((rule) => rule.startsWith('>'))!.slice(1)
  return { user: user!, password }
}

describe.runIf(redisServerAvailable())('requirepass', () => {
  it('works with the password alone in the URL or with the default user named', async () => {
    redis = await startRedisServer({ password: 'pw-Both-Forms-42' })
    const forms = [
      `redis://:pw-Both-Forms-42@127.0.0.1:${redis.port}`,
      `redis://default:pw-Both-Forms-42@127.0.0.1:${redis.port}`,
    ]
    for (const url of forms) {
      const server = await start({ REDIS_URL: url })
      expect(await readyBody(server)).toMatchObject({ status: 'ready', store: 'redis', state: 'redis' })
      expect(server.output()).not.toContain('pw-Both-Forms-42')
    }
  })
})

describe.runIf(redisServerAvailable())('TLS to Redis (rediss://) from the server', () => {
  let files: TlsFiles
  let tls: Awaited<ReturnType<typeof startTlsServer>> | undefined
  beforeAll(() => {
    files = makeCertificates()
  })
  afterEach(async () => {
    await tls?.stop()
    tls = undefined
  })
  afterAll(() => {
    rmSync(files.dir, { recursive: true, force: true })
  })

  it('verifies the certificate by default: a server signed by an unknown CA is refused', async () => {
    tls = await startTlsServer(files, false)
    const server = await start({ REDIS_URL: `rediss://127.0.0.1:${tls.port}`, RATE_LIMIT_REQUIRE_REDIS: 'true' }, false)
    expect((await server.exited).code).toBe(1)
    expect(server.lines().at(-1)).toBe(
      `[Server] Failed to start: Redis connection timeout: gave up on rediss://127.0.0.1:${tls.port} after 3 retries ` +
        '(self-signed certificate in certificate chain); requireRedis (RATE_LIMIT_REQUIRE_REDIS) refuses to start the limiters without Redis',
    )
  })

  it('with REDIS_TLS_CA, connects and counts over TLS', async () => {
    tls = await startTlsServer(files, false)
    const server = await start({
      REDIS_URL: `rediss://127.0.0.1:${tls.port}`,
      REDIS_TLS_CA: files.ca,
      RATE_LIMIT_READ_MAX: '1',
    })
    expect(await readyBody(server)).toMatchObject({ status: 'ready', store: 'redis', state: 'redis' })
    expect((await fetch(`${server.base}/api/v1/metaverses`)).status).toBe(200)
    expect((await fetch(`${server.base}/api/v1/metaverses`)).status).toBe(429)
  })
})

describe.runIf(redisServerAvailable())('Redis ACL users', () => {
  it('the page’s least-privilege user is all the limiters need: counting, recovery, script reloads', async () => {
    redis = await startRedisServer()
    const { user, password } = await createAclUser(redis.admin, 'acl-user')
    const server = await start({
      REDIS_URL: `redis://${user}:${password}@127.0.0.1:${redis.port}`,
      RATE_LIMIT_READ_MAX: '2',
    })
    const statuses = []
    for (let i = 0; i < 3; i++) statuses.push((await fetch(`${server.base}/api/v1/metaverses`)).status)
    expect(statuses).toEqual([200, 200, 429])
    expect((await post(server)).status).toBe(201)
    expect(await redis.admin.keys('metaverses-srv:*')).toEqual(
      expect.arrayContaining(['metaverses-srv:read:127.0.0.1', 'metaverses-srv:write:127.0.0.1']),
    )
    const list = (await redis.admin.client('LIST')) as string
    expect(list).toMatch(new RegExp(` name=universo-rate-limit .* user=${user} `))

    // An outage with the scripts gone: the probe's PING, SCRIPT LOAD and SET run as that user too.
    await redis.admin.script('FLUSH')
    await redis.admin.call('CLIENT', 'KILL', 'USER', user)
    await waitFor('the limiters to see the outage', () => server.output().includes('Redis unavailable'))
    await waitFor('the limiters to be back on Redis', () => server.output().includes('shared limits restored'))
    expect((await post(server)).status).toBe(201)
    expect(await redis.admin.call('ACL', 'LOG')).toEqual([])
    expect(server.lines()).toContain(`[Redis] Connecting (standalone): redis://${user}:***@127.0.0.1:${redis.port}`)
    expect(server.output()).not.toContain(password)
  })

  it('a user without the keys gets NOPERM: the limiters run on their policy and say why', async () => {
    redis = await startRedisServer()
    const { user, password } = await createAclUser(redis.admin, 'acl-user-without-keys')
    const server = await start({ REDIS_URL: `redis://${user}:${password}@127.0.0.1:${redis.port}` })
    expect((await fetch(`${server.base}/api/v1/metaverses`)).status).toBe(200)
    await waitFor('the NOPERM line', () => server.output().includes('NOPERM'))
    expect(server.lines()).toContain(
      '[RateLimit] metaverses-srv: Redis unavailable (NOPERM this user has no permissions to access one of the keys used as arguments)',
    )
    // Degraded, as the body says, but still serving under the default policy (fallback): 200.
    const ready = await fetch(`${server.base}/ready`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toMatchObject({ status: 'degraded', ready: false, state: 'fallback' })
  })
})

describe('TRUST_PROXY behind one real reverse proxy', () => {
  const spoofed = ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4']

  // The client on 127.0.0.2 writes a new X-Forwarded-For entry with each request; the proxy appends
  // 127.0.0.2. The audit log names the keys that reached 429.
  it.each([
    [
      '=1: a client that writes its own X-Forwarded-For still counts under its real address',
      '1',
      [200, 200, 429, 429],
      ['127.0.0.2'],
    ],
    [
      '=2 with only one proxy: the client picks its address, and a fresh budget with each',
      '2',
      [200, 200, 200, 200],
      [],
    ],
  ])('%s', async (_name, trustProxy, statuses, limitedKeys) => {
    const server = await start({ TRUST_PROXY: trustProxy, RATE_LIMIT_READ_MAX: '2' })
    const proxy = await startProxy(server.port)
    proxies.push(proxy)
    const seen = []
    for (const address of spoofed) {
      const reply = await getFrom('127.0.0.2', `${proxy.base}/api/v1/metaverses`, { 'X-Forwarded-For': address })
      seen.push(reply.status)
    }
    expect(seen).toEqual(statuses)
    const limited = server.records().filter((record) => record.event === 'rate_limit_exceeded')
    expect(limited.map((record) => record.key)).toEqual(limitedKeys)
  })
})

/** The TCP ports process `pid` listens on, with their local addresses, from /proc (Linux). */
function listeningSockets(pid: number): { address: string; port: number }[] {
  const inodes = new Set(
    readdirSync(`/proc/${pid}/fd`)
      .map((fd) => {
        try {
          return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1]
        } catch {
          return undefined // closed meanwhile
        }
      })
      .filter((inode) => inode !== undefined),
  )
  const sockets: { address: string; port: number }[] = []
  for (const table of ['tcp', 'tcp6']) {
    let text = ''
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8')
    } catch {
      continue // no IPv6 here
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/)
      // local_address is HEXADDR:HEXPORT; st 0A is LISTEN; the inode is the 10th field.
      if (fields[3] !== '0A' || !inodes.has(fields[9] ?? '')) continue
      const [address = '', port = ''] = (fields[1] ?? '').split(':')
      sockets.push({ address, port: Number.parseInt(port, 16) })
    }
  }
  return sockets
}

describe('what the server exposes', () => {
  it('listens on PORT only, on every interface (there is no setting to bind one address)', async () => {
    const server = await start({})
    const sockets = listeningSockets(server.pid)
    expect(sockets).toHaveLength(1)
    expect(sockets[0]!.port).toBe(server.port)
    expect(sockets[0]!.address).toMatch(/^0+$/) // 0.0.0.0 or ::
  })

  it.runIf(redisServerAvailable())('names no Redis address or credential on /health and /ready', async () => {
    redis = await startRedisServer({ password: 'ready-pw-0123' })
    const server = await start({ REDIS_URL: redis.url })
    const health = await (await fetch(`${server.base}/health`)).text()
    const ready = await (await fetch(`${server.base}/ready`)).text()
    expect(JSON.parse(health)).toEqual({ status: 'ok' })
    expect(Object.keys(JSON.parse(ready) as object).sort()).toEqual(
      ['ready', 'since', 'state', 'status', 'store', 'topology'].sort(),
    )
    for (const body of [health, ready]) {
      expect(body).not.toContain(String(redis.port))
      expect(body).not.toContain('127.0.0.1')
      expect(body).not.toContain('ready-pw-0123')
    }
  })
})
