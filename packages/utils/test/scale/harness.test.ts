// The topologies themselves come up as described, so failures elsewhere are about our code.
import { Cluster, Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'

import { redisServerAvailable } from '#test/support/redis-server.js'
import { makeCertificates, startCluster, startSentinels, startTlsServer } from '#test/support/topologies.js'

describe.runIf(redisServerAvailable())('test topologies', () => {
  it('a 3-master cluster serves every slot', async () => {
    const cluster = await startCluster()
    const client = new Cluster(
      cluster.nodeList.split(',').map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) })),
    )
    try {
      for (let i = 0; i < 30; i++) await client.set(`k${i}`, '1')
      const info = await client.cluster('INFO')
      expect(info).toContain('cluster_state:ok')
      expect(info).toContain('cluster_size:3')
    } finally {
      client.disconnect()
      await cluster.stop()
    }
  })

  it('sentinels fail a master over to its replica on SENTINEL FAILOVER', async () => {
    const setup = await startSentinels()
    try {
      expect(await setup.currentMasterPort()).toBe(setup.master.port)
      await setup.failover()
      expect(await setup.currentMasterPort()).toBe(setup.replica.port)
    } finally {
      await setup.stop()
    }
  })

  it('a TLS-only server accepts a client that trusts its CA and shows a client certificate', async () => {
    const files = makeCertificates()
    const server = await startTlsServer(files, true)
    const { readFileSync } = await import('node:fs')
    const client = new Redis({
      port: server.port,
      host: '127.0.0.1',
      tls: { ca: readFileSync(files.ca), cert: readFileSync(files.clientCert), key: readFileSync(files.clientKey) },
      lazyConnect: true,
      retryStrategy: () => null,
    })
    try {
      await client.connect()
      expect(await client.ping()).toBe('PONG')
    } finally {
      client.disconnect()
      await server.stop()
    }
  })
})
