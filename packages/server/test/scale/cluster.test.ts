// REDIS_CLUSTER_NODES: three server processes on a 3-master cluster share budgets exactly.
import { rmSync } from 'node:fs'

import { Cluster, Redis } from 'ioredis'
import { afterEach, describe, expect, it } from 'vitest'

import { waitFor } from '../../../utils/test/support/http.js'
import { freePort } from '../../../utils/test/support/ports.js'
import { redisServerAvailable } from '../../../utils/test/support/redis-server.js'
import { makeCertificates, startCluster, type TestCluster } from '../../../utils/test/support/topologies.js'
import { startServer, type ServerProcess } from '../process/support/server-process.js'

const USERS = Array.from({ length: 30 }, (_, i) => `user${i}`)
const token = (user: string): string => `tok-${user}-0123456789abcdef`

let cluster: TestCluster | undefined
let servers: ServerProcess[] = []
afterEach(async () => {
  await Promise.all(servers.map((server) => server.stop()))
  servers = []
  await cluster?.stop()
  cluster = undefined
})

describe.runIf(redisServerAvailable())('Redis Cluster', () => {
  it('keeps exact counts across three processes, with keys spread over the masters', async () => {
    cluster = await startCluster()
    const env = {
      REDIS_CLUSTER_NODES: cluster.nodeList,
      RATE_LIMIT_READ_MAX: '20',
      API_TOKENS: USERS.map((user) => `${token(user)}:${user}`).join(','),
    }
    servers = await Promise.all([0, 1, 2].map(() => startServer(env)))
    for (const server of servers) {
      expect(server.lines()).toContain(`[Redis] Connecting (cluster): ${cluster.nodeList}`)
      const ready = (await (await fetch(`${server.base}/ready`)).json()) as Record<string, unknown>
      expect(ready).toMatchObject({ status: 'ready', store: 'redis', topology: 'cluster', state: 'redis' })
    }
    // 30 users, 60 concurrent reads each, spread over the three processes: exactly 20 pass for each.
    const results = await Promise.all(
      USERS.flatMap((user) =>
        Array.from({ length: 60 }, (_, i) =>
          fetch(`${servers[i % 3]!.base}/api/v1/metaverses`, {
            headers: { Authorization: `Bearer ${token(user)}` },
          }).then((res) => [user, res.status] as const),
        ),
      ),
    )
    for (const user of USERS) {
      const statuses = results.filter(([u]) => u === user).map(([, status]) => status)
      expect(
        statuses.filter((s) => s === 200),
        user,
      ).toHaveLength(20)
      expect(
        statuses.filter((s) => s === 429),
        user,
      ).toHaveLength(40)
    }
    // Every master holds some of the keys, each with a TTL, and sees one connection per process.
    for (const node of cluster.nodes) {
      const client = new Redis(node.port, '127.0.0.1')
      const keys = await client.keys('metaverses-srv:read:user:*')
      expect(keys.length, `keys on ${node.port}`).toBeGreaterThan(0)
      for (const key of keys) expect(await client.pttl(key)).toBeGreaterThan(0)
      const ours = ((await client.client('LIST')) as string)
        .split('\n')
        .filter((l) => l.includes(' name=universo-rate-limit '))
      expect(ours, `connections on ${node.port}`).toHaveLength(3)
      client.disconnect()
    }
    // And each process reports those three connections, all ready.
    for (const server of servers) {
      const metrics = await (await fetch(`${server.base}/metrics`)).text()
      expect(metrics).toMatch(/^redis_connection_pool_size 3$/m)
      expect(metrics).toMatch(/^redis_connection_pool_active 3$/m)
    }
  })

  it.each(['fixed-window', 'sliding-window', 'token-bucket'])(
    'keeps %s with two limits exact across three processes, one key per client on its master',
    async (algorithm) => {
      cluster = await startCluster()
      const env = {
        REDIS_CLUSTER_NODES: cluster.nodeList,
        RATE_LIMIT_ALGORITHM: algorithm,
        RATE_LIMIT_READ_LIMITS: 'burst=20/15m,daily=500/1d',
        API_TOKENS: USERS.map((user) => `${token(user)}:${user}`).join(','),
      }
      servers = await Promise.all([0, 1, 2].map(() => startServer(env)))
      const results = await Promise.all(
        USERS.flatMap((user) =>
          Array.from({ length: 60 }, (_, i) =>
            fetch(`${servers[i % 3]!.base}/api/v1/metaverses`, {
              headers: { Authorization: `Bearer ${token(user)}` },
            }).then((res) => [user, res.status] as const),
          ),
        ),
      )
      for (const user of USERS) {
        const statuses = results.filter(([u]) => u === user).map(([, status]) => status)
        expect(
          statuses.filter((s) => s === 200),
          user,
        ).toHaveLength(20)
        expect(
          statuses.filter((s) => s === 429),
          user,
        ).toHaveLength(40)
      }
      // Each client's one hash lives on the master of its slot, with a TTL; every master holds some.
      const tag = { 'fixed-window': 'fw', 'sliding-window': 'sw', 'token-bucket': 'tb' }[algorithm]
      let keys = 0
      for (const port of await cluster.masterPorts()) {
        const onNode = new Redis(port, '127.0.0.1')
        try {
          const found = await onNode.keys(`metaverses-srv:read#${tag}:user:*`)
          expect(found.length, `keys on ${port}`).toBeGreaterThan(0)
          for (const key of found) expect(await onNode.pttl(key), key).toBeGreaterThan(0)
          keys += found.length
        } finally {
          onNode.disconnect()
        }
      }
      expect(keys).toBe(USERS.length)
    },
  )

  it('when a master is lost, its keys follow the policy and the other masters go on counting', async () => {
    cluster = await startCluster({ requireFullCoverage: false })
    servers = [
      await startServer({
        REDIS_CLUSTER_NODES: cluster.nodeList,
        API_TOKENS: USERS.map((user) => `${token(user)}:${user}`).join(','),
      }),
    ]
    const server = servers[0]!
    const read = (user: string) =>
      fetch(`${server.base}/api/v1/metaverses`, { headers: { Authorization: `Bearer ${token(user)}` } }).then(
        (r) => r.status,
      )
    for (const user of USERS) expect(await read(user)).toBe(200)

    // Which users' keys live on the master we are about to lose?
    const lost = cluster.nodes[2]!
    const onLost = new Redis(lost.port, '127.0.0.1')
    const lostKeys = new Set(await onLost.keys('metaverses-srv:read:user:*'))
    onLost.disconnect()
    const survivors = USERS.filter((user) => !lostKeys.has(`metaverses-srv:read:user:${user}`))
    expect(lostKeys.size).toBeGreaterThan(0)
    expect(survivors.length).toBeGreaterThan(0)
    lost.child.kill('SIGKILL')

    // Every request is answered (no 5xx): keys on the lost master by the fallback, the others by Redis.
    for (let round = 0; round < 3; round++) {
      for (const user of USERS) expect(await read(user)).toBe(200)
    }
    const ready = (await (await fetch(`${server.base}/ready`)).json()) as Record<string, unknown>
    expect(ready).toMatchObject({ status: 'degraded', topology: 'cluster', state: 'fallback' })
    expect(server.lines()).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^\\[RateLimit\\] metaverses-srv \\(cluster node 127\\.0\\.0\\.1:${lost.port}\\): Redis unavailable`,
        ),
      ),
    )
    // The survivors' counters went on in Redis: 1 before the loss, plus 3 rounds.
    const client = new Cluster(cluster.nodes.slice(0, 2).map((n) => ({ host: '127.0.0.1', port: n.port })))
    for (const user of survivors) {
      expect(await client.get(`metaverses-srv:read:user:${user}`), user).toBe('4')
    }
    client.disconnect()
    expect(server.child.exitCode).toBeNull()
  })

  it('says degraded on /ready when no cluster node can be reached, stays ready for traffic, and still answers', async () => {
    const port = await freePort()
    servers = [await startServer({ REDIS_CLUSTER_NODES: `127.0.0.1:${port}` })]
    const server = servers[0]!
    const res = await fetch(`${server.base}/ready`)
    // 200: under the default policy (fallback) the API answers; the body says it is off Redis.
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ status: 'degraded', topology: 'cluster', ready: false, state: 'fallback' })
    expect((await fetch(`${server.base}/api/v1/metaverses`)).status).toBe(200)
    expect(server.output()).not.toContain('autoResendUnfulfilledCommands')
  })

  it('when a master fails over to its replica, its keys return to Redis (scripts reloaded, no NOSCRIPT)', async () => {
    cluster = await startCluster({ replicas: true })
    const env = { REDIS_CLUSTER_NODES: cluster.nodeList, API_TOKENS: USERS.map((u) => `${token(u)}:${u}`).join(',') }
    servers = [await startServer(env)]
    const server = servers[0]!
    const read = (user: string) =>
      fetch(`${server.base}/api/v1/metaverses`, { headers: { Authorization: `Bearer ${token(user)}` } }).then(
        (r) => r.status,
      )
    for (const user of USERS) expect(await read(user)).toBe(200)
    // One connection per master: the replicas, never read from, hold none.
    const metrics = await (await fetch(`${server.base}/metrics`)).text()
    expect(metrics).toMatch(/^redis_connection_pool_size 3$/m)
    expect(metrics).toMatch(/^redis_connection_pool_active 3$/m)
    const [victimPort] = await cluster.masterPorts()
    const victim = cluster.nodes.find((n) => n.port === victimPort)!
    const onVictim = new Redis(victimPort!, '127.0.0.1')
    const moved = (await onVictim.keys('metaverses-srv:read:user:*')).map((k) => k.split(':').at(-1)!)
    onVictim.disconnect()
    expect(moved.length).toBeGreaterThan(0)
    victim.child.kill('SIGKILL')

    // Requests go on (policy for the lost slots) until the replica is promoted and the circuit closes.
    // Every 200 ms, not faster: each look reads once for every moved user, against their budgets.
    const readiness = async () => (await (await fetch(`${server.base}/ready`)).json()) as { ready: boolean }
    await waitFor(
      'the replica to be promoted and /ready to say ready',
      async () => {
        for (const user of moved) expect(await read(user)).toBe(200)
        // The body, not the status code: /ready answers 200 under the fallback too.
        return (await readiness()).ready
      },
      20_000,
      200,
    ).catch(async (error: Error) => {
      throw new Error(`${error.message}: ${JSON.stringify(await readiness())}\n${server.output()}`)
    })
    // Counting for those users goes on in Redis, on the promoted replica.
    const client = new Cluster(
      cluster.nodes.filter((n) => n !== victim).map((n) => ({ host: '127.0.0.1', port: n.port })),
    )
    const user = moved[0]!
    const before = Number(await client.get(`metaverses-srv:read:user:${user}`))
    expect(await read(user)).toBe(200)
    expect(Number(await client.get(`metaverses-srv:read:user:${user}`))).toBe(before + 1)
    client.disconnect()
    expect(server.output()).not.toMatch(/NOSCRIPT/)
  })

  it('follows ASK during a slot migration and MOVED after it', async () => {
    cluster = await startCluster()
    const env = { REDIS_CLUSTER_NODES: cluster.nodeList, API_TOKENS: USERS.map((u) => `${token(u)}:${u}`).join(',') }
    servers = [await startServer(env)]
    const server = servers[0]!
    const user = USERS[0]!
    const key = `metaverses-srv:read:user:${user}`
    const read = () =>
      fetch(`${server.base}/api/v1/metaverses`, { headers: { Authorization: `Bearer ${token(user)}` } }).then(
        (r) => r.status,
      )
    expect(await read()).toBe(200)
    const client = new Cluster(cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })))
    const slot = Number(await client.cluster('KEYSLOT', key))
    const ports = cluster.nodes.map((n) => n.port)
    let from = -1
    for (const port of ports) {
      const probe = new Redis(port, '127.0.0.1')
      if ((await probe.cluster('COUNTKEYSINSLOT', slot)) > 0) from = port
      probe.disconnect()
    }
    const to = ports.find((p) => p !== from)!
    await cluster.migrateSlot(slot, from, to, false)
    expect(await read()).toBe(200) // ASK: the key already moved, the slot has not
    await cluster.migrateSlot(slot, from, to, true)
    expect(await read()).toBe(200) // MOVED: the server's map is stale
    const target = new Redis(to, '127.0.0.1')
    expect(await target.get(key)).toBe('3')
    target.disconnect()
    client.disconnect()
    const status = (await (await fetch(`${server.base}/ready`)).json()) as { state: string }
    expect(status.state).toBe('redis')
  })

  it('authenticates to a password-protected cluster with REDIS_PASSWORD, never printing it', async () => {
    const password = 'cluster-pw-Xy7-secret'
    cluster = await startCluster({ password })
    servers = [
      await startServer({ REDIS_CLUSTER_NODES: cluster.nodeList, REDIS_PASSWORD: password, RATE_LIMIT_READ_MAX: '2' }),
    ]
    const server = servers[0]!
    const statuses: number[] = []
    for (let i = 0; i < 3; i++) statuses.push((await fetch(`${server.base}/api/v1/metaverses`)).status)
    expect(statuses).toEqual([200, 200, 429])
    expect(await (await fetch(`${server.base}/ready`)).json()).toMatchObject({ ready: true, state: 'redis' })
    expect(server.output()).not.toContain(password)
  })

  it('speaks TLS to every node with REDIS_TLS=true and REDIS_TLS_CA', async () => {
    const files = makeCertificates()
    try {
      cluster = await startCluster({ tls: files })
      servers = [
        await startServer({
          REDIS_CLUSTER_NODES: cluster.nodeList,
          REDIS_TLS: 'true',
          REDIS_TLS_CA: files.ca,
          RATE_LIMIT_READ_MAX: '2',
        }),
      ]
      const server = servers[0]!
      expect(server.lines()).toContain(`[Redis] Connecting (cluster): ${cluster.nodeList} (TLS)`)
      const statuses: number[] = []
      for (let i = 0; i < 3; i++) statuses.push((await fetch(`${server.base}/api/v1/metaverses`)).status)
      expect(statuses).toEqual([200, 200, 429])
      expect(await (await fetch(`${server.base}/ready`)).json()).toMatchObject({ ready: true, state: 'redis' })
    } finally {
      rmSync(files.dir, { recursive: true, force: true })
    }
  })
})
