// Checks the deployment files (Dockerfile, docker-compose.yml, deploy/) against the real server: env, ports, probes, commands.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join, posix } from 'node:path'

import {
  createInMemoryDataSource,
  disposeRateLimiters,
  getRateLimiters,
  initializeRateLimiters,
} from '@universo/metaverses-srv'
import { DEFAULT_RATE_LIMIT_CONFIG } from '@universo/utils/rate-limiting'
import request from 'supertest'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { createApp, loadConfig } from '../../src/index.js'
import {
  all,
  buildStage,
  compose,
  type ComposeService,
  composeText,
  containerPort,
  DEFAULT_PORT,
  deployment,
  dockerIgnores,
  execForm,
  healthcheckCommand,
  includesLabels,
  interpolate,
  k8sFiles,
  k8sObject,
  k8sObjects,
  last,
  plainEnv,
  rawCompose,
  read,
  ROOT,
  rootPackage,
  runtimeStage,
  SAMPLE_PASSWORD,
  satisfiesAtLeast,
  serverContainer,
  shutdownBoundSeconds,
  stages,
  variablesTheServerReads,
} from './support/deploy-files.js'

// --- The real app, built in-process -----------------------------------------------------------

function silentLogger() {
  const ignore = (): void => undefined
  return { info: ignore, warn: ignore, error: ignore }
}

/** The app as main.ts builds it from `env`, but counting in memory (no Redis here). */
async function appFor(env: Record<string, string>) {
  const rest = { ...env }
  delete rest.REDIS_URL
  const config = loadConfig(rest)
  const logger = silentLogger()
  await initializeRateLimiters({ ...config.rateLimit, logger })
  return createApp({ config, dataSource: createInMemoryDataSource(), logger })
}

beforeEach(() => {
  vi.stubEnv('REDIS_URL', '')
})
afterEach(async () => {
  await disposeRateLimiters()
  vi.unstubAllEnvs()
})

/**
 * Each variable a deployment file sets (`names`: those of `env`, plus any it takes from elsewhere,
 * such as a Secret) is one the code reads and docs/configuration.md lists, as CI's check-env-docs
 * finds them; and `env`, the values written in the file, is accepted by loadConfig.
 */
async function expectKnownVariables(
  env: Record<string, string>,
  where: string,
  names: readonly string[] = Object.keys(env),
): Promise<void> {
  const { read, documented } = await variablesTheServerReads()
  expect(names.length, `${where} sets variables`).toBeGreaterThan(0)
  for (const name of names) {
    expect(read.has(name), `${where} sets ${name}, which no code in packages/*/src reads`).toBe(true)
    expect(documented.has(name), `${where} sets ${name}, which docs/configuration.md does not list`).toBe(true)
  }
  expect(() => loadConfig(env), `${where}'s environment is one the server accepts`).not.toThrow()
}

describe('Dockerfile', () => {
  it('builds in one stage and runs from another, copying only what the build stage deployed', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2)
    expect(buildStage.alias).toBeDefined()
    const copies = all(runtimeStage, 'COPY')
    expect(copies.length).toBeGreaterThan(0)
    for (const copy of copies) expect(copy).toContain(`--from=${buildStage.alias}`)
  })

  it('installs pnpm at the version packageManager names', () => {
    const version = rootPackage.packageManager.replace(/^pnpm@/, '')
    expect(all(buildStage, 'RUN')).toContain(`npm install -g pnpm@${version}`)
  })

  it('installs (and so builds) with the very command CI runs', () => {
    expect(all(buildStage, 'RUN')).toContain('pnpm install --frozen-lockfile')
    expect(read('.ci/run').split('\n')).toContain('pnpm install --frozen-lockfile')
    // The install builds: pnpm start does not.
    expect(rootPackage.scripts.postinstall).toBe('pnpm build')
  })

  it('ships the server with production dependencies only', () => {
    const deploy = all(buildStage, 'RUN').filter((run) => run.startsWith('pnpm deploy'))
    expect(deploy).toHaveLength(1)
    expect(deploy[0]!.split(/\s+/)).toEqual(expect.arrayContaining(['--prod', '--filter', '@universo/server']))
    const target = deploy[0]!.split(/\s+/).at(-1)!
    expect(all(runtimeStage, 'COPY')).toEqual([`--from=${buildStage.alias} ${target} /app/packages/server`])
    // No package manager runs in the runtime stage.
    expect(all(runtimeStage, 'RUN')).toEqual([])
  })

  it('starts the server as pnpm start does, with node as PID 1 (exec form)', () => {
    const command = execForm(last(runtimeStage, 'CMD') ?? '')
    expect(`exec ${command.join(' ')}`).toBe(rootPackage.scripts.start)
    expect(command[0]).toBe('node')
    // The path is the one the build produces, in the folder the runtime stage copies it to.
    const workdir = last(runtimeStage, 'WORKDIR')!
    expect(posix.join(workdir, command[1]!)).toBe('/app/packages/server/dist/main.js')
    expect(existsSync(join(ROOT, 'packages/server/dist/main.js')), 'pnpm install built dist/main.js').toBe(true)
    expect(last(runtimeStage, 'ENTRYPOINT')).toBeUndefined()
    expect(last(runtimeStage, 'STOPSIGNAL') ?? 'SIGTERM').toBe('SIGTERM')
  })

  it('uses Node 20 at a version that satisfies engines in every stage', () => {
    for (const stage of stages) {
      const version = /^node:(\d+\.\d+\.\d+)-/.exec(stage.image)?.[1]
      expect(version, `${stage.image} names an exact Node version`).toBeDefined()
      expect(version!.startsWith('20.')).toBe(true)
      expect(satisfiesAtLeast(version!, rootPackage.engines.node)).toBe(true)
    }
  })

  it('runs as a non-root user, given by number', () => {
    const user = last(runtimeStage, 'USER')
    expect(user).toMatch(/^\d+(:\d+)?$/)
    expect(Number(user!.split(':')[0])).toBeGreaterThan(0)
  })

  it('exposes the port the server listens on by default', () => {
    expect(all(runtimeStage, 'EXPOSE')).toEqual([String(DEFAULT_PORT)])
  })

  it('sets only variables the server reads, to values it accepts', async () => {
    const env = Object.fromEntries(
      all(runtimeStage, 'ENV').map((args) => args.split('=') as [string, string]),
    ) as Record<string, string>
    expect(env).toEqual({ NODE_ENV: 'production' })
    await expectKnownVariables(env, 'Dockerfile')
  })

  it('has a HEALTHCHECK on /health that passes while the server answers and fails once it is gone', async () => {
    const command = healthcheckCommand()
    expect(command.slice(0, 2)).toEqual(['node', '-e'])
    expect(command[2]).toContain('/health')
    const app = await appFor({})
    const server = app.listen(0)
    await new Promise((resolve) => server.once('listening', resolve))
    const { port } = server.address() as AddressInfo
    const run = () =>
      new Promise<number>((resolve) => {
        execFile(process.execPath, command.slice(1), { env: { PORT: String(port) }, timeout: 10_000 }, (error) =>
          resolve(error === null ? 0 : typeof error.code === 'number' ? error.code : -1),
        )
      })
    expect(await run()).toBe(0)
    await new Promise((resolve) => server.close(resolve))
    expect(await run()).toBe(1)
  })

  it('has a .dockerignore that keeps host builds out and what the build needs in', () => {
    for (const path of [
      'node_modules',
      'packages/utils/node_modules',
      'packages/server/dist',
      '.git',
      '.env',
      'bench/perf.mjs',
    ]) {
      expect(dockerIgnores(path), `${path} is left out`).toBe(true)
    }
    for (const path of [
      'package.json',
      'pnpm-lock.yaml',
      'pnpm-workspace.yaml',
      '.npmrc',
      'tsconfig.base.json',
      'bench/package.json',
      ...['utils', 'metaverses-srv', 'server'].flatMap((name) => [
        `packages/${name}/package.json`,
        `packages/${name}/tsconfig.json`,
        `packages/${name}/tsup.config.ts`,
        `packages/${name}/src`,
      ]),
    ]) {
      expect(existsSync(join(ROOT, path)), `${path} exists`).toBe(true)
      expect(dockerIgnores(path), `${path} is in the context`).toBe(false)
    }
  })
})

describe('docker-compose.yml', () => {
  const app = (): ComposeService => compose.services.app!
  const redis = (): ComposeService => compose.services.redis!
  const proxy = (): ComposeService => compose.services.proxy!

  it('runs 3 replicas of the app built from the Dockerfile', () => {
    expect(app().deploy?.replicas).toBe(3)
    expect(app().build).toBe('.')
  })

  it('publishes one port, the proxy’s, and it forwards to the app on the port the app listens on', () => {
    const published = Object.entries(compose.services).filter(([, service]) => service.ports !== undefined)
    expect(published.map(([name]) => name)).toEqual(['proxy'])
    expect(proxy().ports).toHaveLength(1)
    const appPort = loadConfig(app().environment).port
    expect(app().expose).toEqual([String(appPort)])
    expect(appPort).toBe(DEFAULT_PORT)
    const nginx = read('deploy/nginx/default.conf')
    const upstreams = [...nginx.matchAll(/^\s*server\s+([\w.-]+):(\d+)\b/gm)]
    expect(upstreams.map(([, host, port]) => `${host}:${port}`)).toEqual([`app:${appPort}`])
    // The published port's container side is the port nginx listens on.
    const listen = /^\s*listen\s+(\d+);/m.exec(nginx)?.[1]
    expect(proxy().ports![0]!.split(':').at(-1)).toBe(listen)
  })

  it('trusts exactly the one proxy in front, which replaces the client’s X-Forwarded-For with its address', () => {
    expect(loadConfig(app().environment).trustProxy).toBe(1)
    const nginx = read('deploy/nginx/default.conf')
    expect(nginx).toMatch(/^\s*proxy_set_header X-Forwarded-For \$remote_addr;/m)
    expect(nginx).not.toContain('$proxy_add_x_forwarded_for')
  })

  it('sets only variables the server reads, to values it accepts', async () => {
    await expectKnownVariables(app().environment!, 'docker-compose.yml (app)')
    const config = loadConfig(app().environment)
    expect(config.nodeEnv).toBe('production')
    expect(config.rateLimit.instances).toBe(app().deploy?.replicas)
  })

  it('gives the app a Redis URL with the same password Redis requires', () => {
    const url = new URL(loadConfig(app().environment).rateLimit.redisUrl!)
    expect(url.hostname).toBe('redis')
    expect(decodeURIComponent(url.password)).toBe(SAMPLE_PASSWORD)
    const command = redis().command!
    expect(command[command.indexOf('--requirepass') + 1]).toBe(SAMPLE_PASSWORD)
  })

  it('takes the Redis password from REDIS_PASSWORD only, and refuses to start without it', () => {
    // Outside comments, every mention is the required-variable form.
    const settings = composeText
      .split('\n')
      .filter((line) => !line.trim().startsWith('#'))
      .join('\n')
    expect(settings.match(/\$\{REDIS_PASSWORD:\?[^}]*\}/g)).toHaveLength(3)
    expect(settings.replace(/\$\{REDIS_PASSWORD:\?[^}]*\}/g, '')).not.toContain('REDIS_PASSWORD')
    // No password is written anywhere: each place that needs one holds the variable.
    expect(rawCompose.services.app!.environment!.REDIS_URL).toMatch(/^redis:\/\/default:\$\{REDIS_PASSWORD:\?[^}]*\}@/)
    expect(rawCompose.services.redis!.environment!.REDISCLI_AUTH).toMatch(/^\$\{REDIS_PASSWORD:\?[^}]*\}$/)
    const requirepass = rawCompose.services.redis!.command!
    expect(requirepass[requirepass.indexOf('--requirepass') + 1]).toMatch(/^\$\{REDIS_PASSWORD:\?/)
    expect(read('deploy/redis/redis.conf')).not.toMatch(/^\s*requirepass/m)
    expect(() => interpolate(rawCompose, {})).toThrow('required variable REDIS_PASSWORD is missing')
  })

  it('runs Redis 7 with deploy/redis/redis.conf, whose memory settings are the guide’s size and the measured policy', () => {
    expect(redis().image).toMatch(/^redis:7(\.|-|$)/)
    const [binary, conf] = redis().command!
    expect(binary).toBe('redis-server')
    expect(redis().volumes).toContain(`./deploy/redis/redis.conf:${conf}:ro`)
    const settings = read('deploy/redis/redis.conf')
    expect(settings).toMatch(/^maxmemory 256mb$/m)
    expect(settings).toMatch(/^maxmemory-policy volatile-lfu$/m)
  })

  it('checks Redis’s health with an authenticated PING, and starts the app only once Redis is healthy', () => {
    expect(redis().environment?.REDISCLI_AUTH).toBe(SAMPLE_PASSWORD)
    expect(redis().healthcheck?.test).toEqual(['CMD-SHELL', 'redis-cli ping | grep -qx PONG'])
    expect(app().depends_on).toEqual({ redis: { condition: 'service_healthy' } })
    expect(proxy().depends_on).toEqual({ app: { condition: 'service_healthy' } })
  })

  it('keeps Redis off the host and on an internal network', () => {
    expect(redis().ports).toBeUndefined()
    for (const network of redis().networks!) expect(compose.networks[network]?.internal).toBe(true)
    expect(proxy().networks!.some((network) => redis().networks!.includes(network))).toBe(false)
  })

  it('lets the server finish its drain before Docker kills it', () => {
    const seconds = Number(/^(\d+)s$/.exec(app().stop_grace_period ?? '')?.[1])
    expect(seconds).toBeGreaterThan(shutdownBoundSeconds())
  })

  it('mounts only files that exist', () => {
    for (const service of Object.values(compose.services)) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0]!
        expect(existsSync(join(ROOT, source)), `${source} exists`).toBe(true)
      }
    }
  })
})

describe('deploy/k8s', () => {
  it('parses into a Deployment, a Service, a PodDisruptionBudget and an example Secret', () => {
    expect(k8sObjects.map((object) => object.kind).sort()).toEqual([
      'Deployment',
      'PodDisruptionBudget',
      'Secret',
      'Service',
    ])
    expect(k8sFiles.sort()).toEqual(['deployment.yaml', 'pdb.yaml', 'secret.example.yaml', 'service.yaml'])
  })

  it('runs 3 replicas and tells each one how many share the budget', () => {
    expect(deployment().replicas).toBe(3)
    expect(loadConfig(plainEnv(serverContainer())).rateLimit.instances).toBe(deployment().replicas)
  })

  it('sets only variables the server reads, to values it accepts, the Secret’s REDIS_URL included', async () => {
    const container = serverContainer()
    const names = container.env.map((variable) => variable.name)
    expect(names).toContain('REDIS_URL')
    // Every name, also those whose value comes from a Secret; the values written here must load.
    await expectKnownVariables(plainEnv(container), 'deployment.yaml', names)
    expect(loadConfig(plainEnv(container)).nodeEnv).toBe('production')
  })

  it('reads REDIS_URL from a key that the example Secret has, holding a URL the server accepts', () => {
    const variable = serverContainer().env.find((candidate) => candidate.name === 'REDIS_URL')
    const ref = variable?.valueFrom?.secretKeyRef
    expect(ref).toBeDefined()
    const secret = k8sObject('Secret')
    expect(secret.metadata.name).toBe(ref!.name)
    const url = secret.stringData?.[ref!.key]
    expect(url).toBeDefined()
    expect(loadConfig({ REDIS_URL: url! }).rateLimit.redisUrl).toBe(url)
  })

  it('listens on the port the container declares, and probes that port', () => {
    const container = serverContainer()
    const port = loadConfig(plainEnv(container)).port
    expect(container.ports.map((candidate) => candidate.containerPort)).toEqual([port])
    for (const probe of [container.startupProbe, container.livenessProbe, container.readinessProbe]) {
      expect(containerPort(container, probe!.httpGet.port)).toBe(port)
    }
  })

  it('probes liveness on /health and readiness on /ready, and both answer 200 from the real app', async () => {
    const container = serverContainer()
    expect(container.livenessProbe.httpGet.path).toBe('/health')
    expect(container.readinessProbe.httpGet.path).toBe('/ready')
    expect(healthcheckCommand()[2]).toContain(container.livenessProbe.httpGet.path)
    const app = await appFor(plainEnv(container))
    for (const probe of [container.startupProbe!, container.livenessProbe, container.readinessProbe]) {
      await request(app).get(probe.httpGet.path).expect(200)
    }
  })

  it('keeps every pod ready through a Redis outage: the readiness path answers 200 while degraded under the manifest’s policy', async () => {
    const container = serverContainer()
    // The manifest leaves RATE_LIMIT_ON_STORE_ERROR to its default, fallback: the API keeps answering.
    const policy = loadConfig(plainEnv(container)).rateLimit.onStoreError ?? DEFAULT_RATE_LIMIT_CONFIG.onStoreError
    const app = await appFor(plainEnv(container))
    // Redis is shared: while it is away, every pod's limiters say this at once.
    const degraded = {
      store: 'redis',
      topology: 'standalone',
      ready: false,
      state: policy,
      since: '2026-11-27T08:14:19.240Z',
    } as const
    vi.spyOn(getRateLimiters(), 'status').mockReturnValue(degraded)
    const res = await request(app).get(container.readinessProbe.httpGet.path)
    expect(res.status, `${container.readinessProbe.httpGet.path} under ${policy} while Redis is away`).toBe(200)
    expect(res.body).toEqual({ status: 'degraded', ...degraded })
  })

  it('asks for the guide’s resources', () => {
    expect(serverContainer().resources).toEqual({
      requests: { memory: '512Mi', cpu: '250m' },
      limits: { memory: '1Gi', cpu: '500m' },
    })
  })

  it('gives the server longer than preStop plus its drain before it is killed', () => {
    const preStop = serverContainer().lifecycle?.preStop?.exec?.command ?? []
    const sleep = preStop[0] === 'sleep' ? Number(preStop[1]) : 0
    expect(deployment().template.spec.terminationGracePeriodSeconds).toBeGreaterThan(sleep + shutdownBoundSeconds())
  })

  it('runs as the Dockerfile’s non-root user', () => {
    const { runAsNonRoot, runAsUser } = deployment().template.spec.securityContext
    expect(runAsNonRoot).toBe(true)
    expect(String(runAsUser)).toBe(last(runtimeStage, 'USER')!.split(':')[0])
  })

  it('selects the Deployment’s pods from the Service and the PodDisruptionBudget', () => {
    const labels = deployment().template.metadata.labels
    expect(includesLabels(labels, deployment().selector.matchLabels)).toBe(true)
    const service = k8sObject('Service').spec as { selector: Record<string, string>; ports: { targetPort: string }[] }
    expect(includesLabels(labels, service.selector)).toBe(true)
    expect(service.ports.map((port) => containerPort(serverContainer(), port.targetPort))).toEqual([DEFAULT_PORT])
    const pdb = k8sObject('PodDisruptionBudget').spec as {
      minAvailable: number
      selector: { matchLabels: Record<string, string> }
    }
    expect(includesLabels(labels, pdb.selector.matchLabels)).toBe(true)
    // A budget of every replica would block every node drain.
    expect(pdb.minAvailable).toBeGreaterThan(0)
    expect(pdb.minAvailable).toBeLessThan(deployment().replicas)
  })
})
