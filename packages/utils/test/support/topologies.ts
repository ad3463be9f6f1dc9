// Real Redis topologies for the scale-out tests: a 3-master cluster, a master + replica + three
// sentinels, and a TLS-only server with certificates made by openssl. All on free loopback ports,
// all started and stopped (by pid) here.
import { execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Redis } from 'ioredis'

import { waitFor } from './http.js'
import { launchRedis } from './launch-redis.mjs'
import { freePort } from './ports.js'
import { stopProcess } from './redis-server.js'

export interface RedisProcess {
  readonly port: number
  readonly child: ChildProcess
  output(): string
}

async function run(args: string[], dir: string, ready: string): Promise<RedisProcess> {
  const { child, output } = await launchRedis({ args, cwd: dir, ready })
  const port = Number(args[args.indexOf('--port') + 1] ?? 0) || Number(args[args.indexOf('--tls-port') + 1] ?? 0)
  return { port, child, output }
}

/** Arguments every test server gets: loopback only, nothing written to disk. */
const ephemeral = (dir: string): string[] => ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]

/** Arguments of a server that speaks TLS with the test certificates. */
const tlsServer = (files: TlsFiles, authClients: boolean): string[] => [
  '--tls-cert-file',
  files.serverCert,
  '--tls-key-file',
  files.serverKey,
  '--tls-ca-cert-file',
  files.ca,
  '--tls-auth-clients',
  authClients ? 'yes' : 'no',
]

const portIsFree = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })

/** A free port whose cluster bus port (port + 10000) is free too. */
async function freeClusterPort(): Promise<number> {
  for (;;) {
    const port = await freePort()
    if (port < 55_000 && (await portIsFree(port + 10_000))) return port
  }
}

/** waitFor, every 100 ms (each check may open a connection), with a node that refuses counting as not yet. */
const until = (what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> =>
  waitFor(what, () => check().catch(() => false), timeoutMs, 100)

/** The password of the data nodes of the set-up in progress (sentinel or cluster), for ask(). */
let dataPassword: string | undefined
/** TLS options for ask() when the cluster in progress speaks TLS only. */
let dataTls: { ca: Buffer } | undefined

async function ask<T>(port: number, command: string, ...args: string[]): Promise<T> {
  const client = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    // Sentinels have no password here; the data nodes may.
    password: command === 'SENTINEL' ? undefined : dataPassword,
    tls: dataTls,
  })
  try {
    await client.connect()
    return (await client.call(command, ...args)) as T
  } finally {
    client.disconnect()
  }
}

export interface TestCluster {
  readonly nodes: readonly RedisProcess[]
  /** host:port,host:port,... for REDIS_CLUSTER_NODES */
  readonly nodeList: string
  /** Ports of the nodes that are masters now. */
  masterPorts(): Promise<number[]>
  /**
   * Moves `slot` (and its keys) from one master to another. Unfinished, the slot is left
   * migrating, so requests for it get ASK; finished, every node is told, so old maps get MOVED.
   */
  migrateSlot(slot: number, fromPort: number, toPort: number, finish: boolean): Promise<void>
  stop(): Promise<void>
}

/**
 * Three masters (no replicas) made into one cluster with redis-cli --cluster create. With
 * `requireFullCoverage: false` the masters left keep serving their slots when one is lost.
 */
export async function startCluster(
  options: { requireFullCoverage?: boolean; replicas?: boolean; password?: string; tls?: TlsFiles } = {},
): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'universo-cluster-'))
  dataPassword = options.password
  dataTls = options.tls === undefined ? undefined : { ca: readFileSync(options.tls.ca) }
  const tls =
    options.tls === undefined
      ? []
      : ['--tls-cluster', 'yes', '--tls-replication', 'yes', ...tlsServer(options.tls, false)]
  const auth =
    options.password === undefined ? [] : ['--requirepass', options.password, '--masterauth', options.password]
  const nodes: RedisProcess[] = []
  try {
    for (let i = 0; i < (options.replicas === true ? 6 : 3); i++) {
      const port = await freeClusterPort()
      nodes.push(
        await run(
          [
            ...(options.tls === undefined ? ['--port', String(port)] : ['--port', '0', '--tls-port', String(port)]),
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            `nodes-${port}.conf`,
            '--cluster-node-timeout',
            '1000',
            '--cluster-require-full-coverage',
            options.requireFullCoverage === false ? 'no' : 'yes',
            ...auth,
            ...tls,
            ...ephemeral(dir),
          ],
          dir,
          'Ready to accept connections',
        ),
      )
    }
    execFileSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        ...(options.replicas === true ? ['--cluster-replicas', '1'] : []),
        ...(options.password === undefined ? [] : ['-a', options.password, '--no-auth-warning']),
        ...(options.tls === undefined ? [] : ['--tls', '--cacert', options.tls.ca]),
        '--cluster-yes',
      ],
      { stdio: 'pipe' },
    )
    for (const node of nodes) {
      await until(`cluster_state:ok on ${node.port}`, async () =>
        (await ask<string>(node.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'),
      )
      // A replica that has not synced yet would refuse to take over: wait for its link.
      await until(`replication on ${node.port}`, async () => {
        const info = await ask<string>(node.port, 'INFO', 'replication')
        return info.includes('role:master') || info.includes('master_link_status:up')
      })
    }
  } catch (error) {
    await Promise.all(nodes.map((n) => stopProcess(n.child)))
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
  return {
    nodes,
    nodeList: nodes.map((n) => `127.0.0.1:${n.port}`).join(','),
    masterPorts: async () => {
      const ports: number[] = []
      for (const node of nodes) {
        if (node.child.exitCode !== null || node.child.signalCode !== null) continue
        const role = await ask<string[]>(node.port, 'ROLE').catch(() => ['down'])
        if (role[0] === 'master') ports.push(node.port)
      }
      return ports
    },
    async migrateSlot(slot, fromPort, toPort, finish) {
      const fromId = await ask<string>(fromPort, 'CLUSTER', 'MYID')
      const toId = await ask<string>(toPort, 'CLUSTER', 'MYID')
      await ask(toPort, 'CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', fromId)
      await ask(fromPort, 'CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', toId)
      const keys = await ask<string[]>(fromPort, 'CLUSTER', 'GETKEYSINSLOT', String(slot), '1000')
      if (keys.length > 0) {
        await ask(fromPort, 'MIGRATE', '127.0.0.1', String(toPort), '', '0', '5000', 'KEYS', ...keys)
      }
      if (!finish) return
      for (const node of nodes) {
        if (node.child.exitCode === null && node.child.signalCode === null) {
          await ask(node.port, 'CLUSTER', 'SETSLOT', String(slot), 'NODE', toId).catch(() => undefined)
        }
      }
    },
    async stop() {
      await Promise.all(nodes.map((n) => stopProcess(n.child)))
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export interface TestSentinels {
  readonly master: RedisProcess
  readonly replica: RedisProcess
  readonly sentinels: readonly RedisProcess[]
  readonly masterName: string
  /** host:port,... for REDIS_SENTINELS */
  readonly sentinelList: string
  /** The port of whichever node the sentinels call master now. */
  currentMasterPort(): Promise<number>
  /** SENTINEL FAILOVER, then waits until the sentinels name the old replica as master. */
  failover(): Promise<void>
  stop(): Promise<void>
}

/** A master, one replica and three sentinels watching them (quorum 2). */
export async function startSentinels(masterName = 'universo', password?: string): Promise<TestSentinels> {
  const dir = mkdtempSync(join(tmpdir(), 'universo-sentinel-'))
  const started: RedisProcess[] = []
  const auth = password === undefined ? [] : ['--requirepass', password, '--masterauth', password]
  dataPassword = password
  const common = [...ephemeral(dir), ...auth]
  try {
    const masterPort = await freePort()
    const master = await run(['--port', String(masterPort), ...common], dir, 'Ready to accept connections')
    started.push(master)
    const replicaPort = await freePort()
    const replica = await run(
      ['--port', String(replicaPort), '--replicaof', '127.0.0.1', String(masterPort), ...common],
      dir,
      'MASTER <-> REPLICA sync: Finished with success',
    )
    started.push(replica)
    const sentinels: RedisProcess[] = []
    for (let i = 0; i < 3; i++) {
      const port = await freePort()
      const conf = join(dir, `sentinel-${port}.conf`)
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} 2`,
          `sentinel down-after-milliseconds ${masterName} 1000`,
          `sentinel failover-timeout ${masterName} 5000`,
          `sentinel parallel-syncs ${masterName} 1`,
          ...(password === undefined ? [] : [`sentinel auth-pass ${masterName} ${password}`]),
          '',
        ].join('\n'),
      )
      const sentinel = await run([conf, '--sentinel', '--port', String(port)], dir, 'Sentinel ID is')
      sentinels.push(sentinel)
      started.push(sentinel)
    }
    for (const sentinel of sentinels) {
      await until(`sentinel ${sentinel.port} to see the replica and the other sentinels`, async () => {
        const info = await ask<unknown[]>(sentinel.port, 'SENTINEL', 'MASTER', masterName)
        const fields = new Map<string, string>()
        for (let i = 0; i + 1 < info.length; i += 2) fields.set(String(info[i]), String(info[i + 1]))
        return Number(fields.get('num-slaves')) >= 1 && Number(fields.get('num-other-sentinels')) >= 2
      })
    }
    const currentMasterPort = async (): Promise<number> => {
      const [, port] = await ask<string[]>(sentinels[0]!.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)
      return Number(port)
    }
    return {
      master,
      replica,
      sentinels,
      masterName,
      sentinelList: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
      currentMasterPort,
      async failover() {
        const before = await currentMasterPort()
        await ask(sentinels[0]!.port, 'SENTINEL', 'FAILOVER', masterName)
        await until('the failover to finish', async () => (await currentMasterPort()) !== before)
        const after = await currentMasterPort()
        await until(
          'the new master to accept writes',
          async () =>
            (await ask<string>(after, 'ROLE')).length > 0 && (await ask<string[]>(after, 'ROLE'))[0] === 'master',
        )
      },
      async stop() {
        await Promise.all(started.map((p) => stopProcess(p.child)))
        rmSync(dir, { recursive: true, force: true })
      },
    }
  } catch (error) {
    await Promise.all(started.map((p) => stopProcess(p.child)))
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
}

export interface TlsFiles {
  readonly dir: string
  readonly ca: string
  readonly serverCert: string
  readonly serverKey: string
  readonly clientCert: string
  readonly clientKey: string
  /** A second CA that signed nothing here: verifying against it must fail. */
  readonly otherCa: string
}

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate, made with openssl. */
export function makeCertificates(): TlsFiles {
  const dir = mkdtempSync(join(tmpdir(), 'universo-tls-'))
  const file = (name: string): string => join(dir, name)
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  }
  for (const ca of ['ca', 'other-ca']) {
    openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${ca}`,
      '-keyout',
      file(`${ca}.key`),
      '-out',
      file(`${ca}.crt`),
    )
  }
  writeFileSync(file('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  for (const [name, ext] of [
    ['server', ['-extfile', file('server.ext')]],
    ['client', []],
  ] as const) {
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      file(`${name}.key`),
      '-out',
      file(`${name}.csr`),
    )
    openssl(
      'x509',
      '-req',
      '-in',
      file(`${name}.csr`),
      '-CA',
      file('ca.crt'),
      '-CAkey',
      file('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      file(`${name}.crt`),
      ...ext,
    )
  }
  return {
    dir,
    ca: file('ca.crt'),
    serverCert: file('server.crt'),
    serverKey: file('server.key'),
    clientCert: file('client.crt'),
    clientKey: file('client.key'),
    otherCa: file('other-ca.crt'),
  }
}

/** A redis-server that speaks TLS only (`--port 0`). With `requireClientCert`, mutual TLS. */
export async function startTlsServer(
  files: TlsFiles,
  requireClientCert: boolean,
): Promise<RedisProcess & { stop(): Promise<void> }> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'universo-tls-redis-'))
  const server = await run(
    ['--port', '0', '--tls-port', String(port), ...tlsServer(files, requireClientCert), ...ephemeral(dir)],
    dir,
    'Ready to accept connections',
  )
  return {
    ...server,
    port,
    async stop() {
      await stopProcess(server.child)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
