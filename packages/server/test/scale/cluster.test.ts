// REDIS_CLUSTER_NODES: three server processes on a 3-master cluster share budgets exactly.
import { Cluster, Redis } from 'ioredis'
import { afterEach, describe, expect, it } from 'vitest'

import { freePort } from '../../../utils/test/support/ports.js'
import { redisServerAvailable } from '../../../utils/test/support/redis-server.js'
import { startCluster, type TestCluster } from '../../../utils/test/support/topologies.js'
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
    // Every master holds some of the keys, each with a TTL.
    for (const node of cluster.nodes) {
      const client = new Redis(node.port, '127.0.0.1')
      const keys = await client.keys('metaverses-srv:read:user:*')
      expect(keys.length, `keys on ${node.port}`).toBeGreaterThan(0)
      for (const key of keys) expect(await client.pttl(key)).toBeGreaterThan(0)
      client.disconnect()
    }
  })

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

  it('says degraded on /ready when no cluster node can be reached, and still answers', async () => {
    const port = await freePort()
    servers = [await startServer({ REDIS_CLUSTER_NODES: `127.0.0.1:${port}` })]
    const server = servers[0]!
    const res = await fetch(`${server.base}/ready`)
    expect(res.status).toBe(503)
    expect(await res.json()).toMatchObject({ status: 'degraded', topology: 'cluster', state: 'fallback' })
    expect((await fetch(`${server.base}/api/v1/metaverses`)).status).toBe(200)
    expect(server.output()).not.toContain('autoResendUnfulfilledCommands')
  })
})
