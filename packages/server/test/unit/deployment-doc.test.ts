// Checks that docs/deployment.md quotes the deployment files, commands and eviction figures as they are.
import { existsSync } from 'node:fs'
import { join } from 'node:path'

import { describe, expect, it } from 'vitest'

import {
  all,
  buildStage,
  compose,
  DEFAULT_PORT,
  deployment,
  k8sObject,
  last,
  plainEnv,
  rawCompose,
  read,
  ROOT,
  runtimeStage,
  serverContainer,
  stages,
} from './support/deploy-files.js'

describe('docs/deployment.md', () => {
  const doc = read('docs/deployment.md')
  /** The text of one `## ` section. */
  const section = (title: string): string => {
    const start = doc.indexOf(`\n## ${title}\n`)
    expect(start, `docs/deployment.md has a section ${title}`).toBeGreaterThanOrEqual(0)
    const end = doc.indexOf('\n## ', start + 1)
    return doc.slice(start, end === -1 ? undefined : end)
  }
  const quoted = (text: string): string[] => [...text.matchAll(/`([^`\n]+)`/g)].map(([, span]) => span!)
  const commands = (text: string): string[] =>
    [...text.matchAll(/```bash\n([\s\S]*?)```/g)].flatMap(([, body]) => body!.trim().split('\n'))

  it('names only files and pages that exist', () => {
    const paths = quoted(doc).filter((span) =>
      /^(deploy\/\S+|docs\/\S+|scripts\/\S+|Dockerfile|docker-compose\.yml|\.dockerignore|packages\/\S+\.ts)$/.test(
        span,
      ),
    )
    expect(paths.length).toBeGreaterThan(5)
    for (const path of paths) expect(existsSync(join(ROOT, path)), `${path} exists`).toBe(true)
    for (const [, page] of doc.matchAll(/\]\(([\w.-]+\.(?:md|json))(?:#[\w-]+)?\)/g)) {
      expect(existsSync(join(ROOT, 'docs', page!)), `docs/${page} exists`).toBe(true)
    }
  })

  it('quotes the Dockerfile’s images, commands, user and port as they are', () => {
    const docker = quoted(section('Docker'))
    for (const stage of stages) expect(docker).toContain(stage.image)
    for (const run of all(buildStage, 'RUN')) expect(docker).toContain(run)
    expect(docker).toContain(`CMD ${last(runtimeStage, 'CMD')}`)
    expect(docker).toContain(last(runtimeStage, 'USER'))
    expect(docker).toContain(`EXPOSE ${all(runtimeStage, 'EXPOSE').join(' ')}`)
    const [build, run] = commands(section('Docker'))
    const image = compose.services.app!.image!.split(':')[0]!
    expect(build).toBe(`docker build -t ${image} .`)
    expect(run).toContain(`-p ${DEFAULT_PORT}:${DEFAULT_PORT}`)
    expect(run).toMatch(new RegExp(` ${image}$`))
  })

  it('runs the services, images and settings that docker-compose.yml has', () => {
    const text = section('Docker Compose')
    const logs = commands(text).filter((command) => command.startsWith('docker compose logs'))
    expect(logs.length).toBeGreaterThan(0)
    for (const line of logs) expect(Object.keys(compose.services)).toContain(line.split(' ').at(-1))
    const spans = quoted(text)
    for (const service of Object.values(compose.services)) {
      if (service.build === undefined) expect(spans).toContain(service.image)
    }
    expect(spans).toContain(rawCompose.services.app!.environment!.REDIS_URL!.replace(/:\?[^}]*\}/, '}'))
    expect(spans).toContain(`stop_grace_period: ${compose.services.app!.stop_grace_period}`)
    expect(spans).toContain(`deploy.replicas: ${compose.services.app!.deploy!.replicas}`)
    expect(spans).toContain(`TRUST_PROXY=${compose.services.app!.environment!.TRUST_PROXY}`)
    expect(spans).toContain(`RATE_LIMIT_INSTANCES=${compose.services.app!.environment!.RATE_LIMIT_INSTANCES}`)
  })

  it('names the Kubernetes objects, labels and settings that deploy/k8s has', () => {
    const text = section('Kubernetes')
    const name = k8sObject('Deployment').metadata.name
    const kubectl = commands(text).filter((command) => command.startsWith('kubectl'))
    expect(kubectl.length).toBeGreaterThan(0)
    for (const command of kubectl) {
      for (const [, object] of command.matchAll(/\bdeployment\/([\w-]+)/g)) expect(object).toBe(name)
      for (const [, file] of command.matchAll(/-f (deploy\/\S+)/g)) expect(existsSync(join(ROOT, file!))).toBe(true)
    }
    const spans = quoted(text)
    const [labelKey, labelValue] = Object.entries(deployment().template.metadata.labels)[0]!
    expect(spans).toContain(`-l ${labelKey}=${labelValue}`)
    const container = serverContainer()
    const ref = container.env.find((variable) => variable.name === 'REDIS_URL')!.valueFrom!.secretKeyRef!
    expect(spans).toEqual(expect.arrayContaining([ref.name, ref.key, container.image]))
    expect(spans).toContain(`RATE_LIMIT_INSTANCES=${plainEnv(container).RATE_LIMIT_INSTANCES}`)
    expect(spans).toContain(`TRUST_PROXY=${plainEnv(container).TRUST_PROXY}`)
    expect(spans).toContain(`sleep ${container.lifecycle!.preStop!.exec!.command[1]}`)
    expect(spans).toContain(
      `terminationGracePeriodSeconds: ${deployment().template.spec.terminationGracePeriodSeconds}`,
    )
    const pdb = k8sObject('PodDisruptionBudget').spec as { minAvailable: number }
    expect(spans).toContain(`minAvailable: ${pdb.minAvailable}`)
    // The probes' schedules, as the doc words them.
    type Schedule = { periodSeconds: number; failureThreshold: number }
    const { startupProbe, livenessProbe, readinessProbe } = container as unknown as Record<string, Schedule>
    const flat = text.replace(/\s+/g, ' ')
    expect(flat).toContain(`up to ${startupProbe!.periodSeconds * startupProbe!.failureThreshold} s`)
    expect(flat).toContain(`every ${livenessProbe!.periodSeconds} s, ${livenessProbe!.failureThreshold} failures`)
    expect(flat).toContain(`every ${readinessProbe!.periodSeconds} s, ${readinessProbe!.failureThreshold} failures`)
    const { periodSeconds: period, failureThreshold: failures } = readinessProbe!
    expect(flat).toContain(`about ${period * failures} s (${failures} failed probes, ${period} s apart)`)
  })

  it('quotes every setting of deploy/redis/redis.conf as the file has it', () => {
    const settings = read('deploy/redis/redis.conf')
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    expect(settings.length).toBeGreaterThan(3)
    const spans = quoted(section('Redis configuration')).flatMap((span) => span.split(/,\s*/))
    for (const setting of settings) expect(spans, setting).toContain(setting.replace(/^(\S+)\s+/, '$1 '))
  })

  it('reports the figures of docs/benchmarks/eviction.json', () => {
    const bench = JSON.parse(read('docs/benchmarks/eviction.json')) as {
      results: {
        policy: string
        redis: string
        counters: {
          evictedLive: number
          refused: number
          earlySeconds: { median: number; p90: number; max: number } | null
          earlyClientHours: number
        }
        otherApp: { lost: number; writesRefused: number }
        limiter: { state: string }
      }[]
    }
    const text = section('Redis configuration')
    const number = (value: number): string => value.toLocaleString('en-US')
    expect(text).toContain(`Redis ${bench.results[0]!.redis}`)
    expect(bench.results.map((result) => result.policy)).toHaveLength(4)
    for (const { policy, counters, otherApp, limiter } of bench.results) {
      const row = text.split('\n').find((line) => line.startsWith(`| \`${policy}\``))
      expect(row, `a row for ${policy}`).toBeDefined()
      const cells = row!.split('|').map((cell) => cell.trim())
      expect(cells[2]).toMatch(new RegExp(`^${number(counters.evictedLive)}\\b`))
      if (counters.earlySeconds !== null) {
        const { median, p90, max } = counters.earlySeconds
        expect(cells[3]).toBe(`${Math.round(median)} / ${Math.round(p90)} / ${Math.round(max)} s`)
      }
      expect(cells[4]).toBe(number(counters.earlyClientHours))
      expect(cells[5]).toContain(number(counters.refused))
      if (otherApp.writesRefused > 0) expect(cells[5]).toContain(number(otherApp.writesRefused))
      expect(cells[6]).toMatch(new RegExp(`^${number(otherApp.lost)}\\b`))
      expect(cells[7]).toMatch(limiter.state === 'redis' ? /^on Redis/ : new RegExp(`^${limiter.state}`))
    }
  })
})
