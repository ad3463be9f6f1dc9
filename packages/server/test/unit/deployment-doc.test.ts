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

  describe('the eviction measurement', () => {
    const bench = JSON.parse(read('docs/benchmarks/eviction.json')) as EvictionBench
    const conf = /^maxmemory-policy (\S+)$/m.exec(read('deploy/redis/redis.conf'))?.[1]

    it('quotes the figures of docs/benchmarks/eviction.json as they are, for every policy and pressure shown', () => {
      checkEvictionSection(doc, bench)
    })

    it('fails on a figure that differs from the JSON', () => {
      // One number of the chosen policy's row, one higher, in a copy of the text: each table in turn.
      for (const title of Object.keys(TABLES)) {
        const table = tableAfter(subsection(doc, 'Eviction, measured'), title)
        const row = table.find((line) => line.startsWith(`| \`${conf}\``))
        expect(row, `${title} has a row for ${conf}`).toBeDefined()
        const broken = row!.replace(/\| (\d+)/, (_, digits: string) => `| ${Number(digits) + 1}`)
        expect(broken).not.toBe(row)
        expect(() => checkEvictionSection(doc.replace(row!, broken), bench)).toThrow()
      }
    })

    it('decides for the policy deploy/redis/redis.conf sets, and names no other wherever it advises one', () => {
      expect(conf).toBeDefined()
      const text = subsection(doc, 'Eviction, measured')
      expect(/\*\*Decision: `([\w-]+)`/.exec(text)?.[1]).toBe(conf)
      // The Compose table's "Here" cell, and the managed services' settings.
      const composeRow = section('Docker Compose')
        .split('\n')
        .find((line) => line.startsWith('| `--maxmemory-policy'))
      expect(composeRow?.split('|')[2]?.trim()).toMatch(new RegExp(`^\`${conf}\``))
      const managed = [...section('Managed Redis').matchAll(/(?:set\s+it\s+to|choose)\s+`([\w-]+)`/g)].map(([, p]) => p)
      expect(managed.length).toBeGreaterThan(1)
      for (const policy of managed) expect(policy).toBe(conf)
    })
  })
})

// --- The eviction measurement (bench/eviction.mjs, docs/benchmarks/eviction.json) ----------------

/** A number over the seeds: their median and range. */
interface Spread {
  median: number
  min: number
  max: number
}
interface PolicyResult {
  admittedBeyondMax: Spread
  admittedBeyondMaxByClass: { abuser: Spread }
  shareOfRefusalsLost: Spread
  abusersLeaking: Spread
  timeWithWriteErrors: Spread
  other?: { keys: Spread; lost: Spread }
}
interface EvictionBench {
  redis: string
  summary: {
    part: string
    pressure: number
    seeds: number
    workload: { clients: { abuser: Spread } }
    dedicated: Record<string, PolicyResult>
    shared: Record<string, PolicyResult>
  }[]
}

/** The bold line above each table, and the servers its figures come from. */
const TABLES = {
  '**A Redis of its own**': 'dedicated',
  '**A Redis shared with another app:**': 'shared',
} as const
type TableTitle = keyof typeof TABLES

/** The text of one `### ` section, up to the next heading of any level 2 or 3. */
function subsection(text: string, title: string): string {
  const start = text.indexOf(`\n### ${title}\n`)
  expect(start, `docs/deployment.md has a section ${title}`).toBeGreaterThanOrEqual(0)
  const end = text.slice(start + 1).search(/\n##+ /)
  return text.slice(start, end === -1 ? undefined : start + 1 + end)
}

/** The lines of the first table after the line that starts with `title`. */
function tableAfter(text: string, title: string): string[] {
  const lines = text.split('\n')
  const at = lines.findIndex((line) => line.startsWith(title))
  expect(at, `a table under ${title}`).toBeGreaterThanOrEqual(0)
  const first = lines.findIndex((line, i) => i > at && line.startsWith('|'))
  const after = lines.findIndex((line, i) => i > first && !line.startsWith('|'))
  return lines.slice(first, after === -1 ? undefined : after)
}

const cellsOf = (line: string): string[] =>
  line
    .split('|')
    .slice(1, -1)
    .map((cell) => cell.trim())

/** As the tables print them (bench/eviction.mjs's console table alike): whole numbers, en-US. */
const count = (value: number): string => Math.round(value).toLocaleString('en-US')
/** A median, with its range in brackets when the seeds differ. */
const spread = ({ median, min, max }: Spread): string =>
  min === max ? count(median) : `${count(median)} (${count(min)}-${count(max)})`
/** A share as a percentage: 1 decimal, 2 below 1 %. */
const percent = (share: number): string => `${(share * 100).toFixed(share < 0.01 ? 2 : 1)} %`

/** What each column holds, from its header; a bare `room N %` continues the column before it. */
const COLUMNS: [RegExp, (result: PolicyResult) => string][] = [
  [
    /^(Let through beyond `max`, )?room \d+ %$/,
    (r) => {
      // The share is left out when it rounds to nothing.
      const share = percent(r.shareOfRefusalsLost.median)
      return share === '0.00 %' ? spread(r.admittedBeyondMax) : `${spread(r.admittedBeyondMax)}, ${share}`
    },
  ],
  [/^From abusers \(\d+ %\)$/, (r) => spread(r.admittedBeyondMaxByClass.abuser)],
  [/^Abusers who got through, of about [\d,]+ \(\d+ %\)$/, (r) => spread(r.abusersLeaking)],
  [
    /^Time with writes refused, [\d %/]+$/,
    (r) => (r.timeWithWriteErrors.median === 0 ? '0' : percent(r.timeWithWriteErrors.median)),
  ],
  [/^Other app's keys lost \(of [\d,]+\), [\d %/]+$/, (r) => spread(r.other!.lost)],
]

/**
 * Throws unless both tables of docs/deployment.md's "Eviction, measured" quote the JSON's figures:
 * every policy of the run, and in each column every pressure its header names ("room 60 %",
 * "90 % / 60 %"), from the main part's summary at that pressure.
 */
function checkEvictionSection(doc: string, bench: EvictionBench): void {
  const text = subsection(doc, 'Eviction, measured')
  const flat = text.replace(/\s+/g, ' ')
  expect(flat).toContain(`on Redis ${bench.redis}`)
  const main = bench.summary.filter((entry) => entry.part === 'main')
  const at = (pressure: number) => {
    const entry = main.find((candidate) => Math.abs(candidate.pressure - pressure) < 1e-9)
    expect(entry, `docs/benchmarks/eviction.json has the main run at room ${pressure * 100} %`).toBeDefined()
    return entry!
  }
  expect(new Set(main.map((entry) => entry.seeds)).size).toBe(1)
  expect(flat).toContain(`${main[0]!.seeds} seeds per pressure`)

  for (const [title, variant] of Object.entries(TABLES) as [TableTitle, 'dedicated' | 'shared'][]) {
    const [header, rule, ...rows] = tableAfter(text, title)
    expect(rule).toMatch(/^\|[\s|-]+\|$/)
    const headers = cellsOf(header!)
    expect(headers[0]).toBe('Policy')
    const columns = headers.slice(1).map((name, i) => {
      const kind = COLUMNS.find(([pattern]) => pattern.test(name))
      expect(kind, `${title}: the test knows what column ${i + 2} ("${name}") holds`).toBeDefined()
      const pressures = [...name.matchAll(/(\d+) %/g)].map(([, percentage]) => Number(percentage) / 100)
      // Header figures that are not pressures: the abusers and the other app's keys, at each pressure.
      const about = /of about ([\d,]+)/.exec(name)?.[1]
      const of = /\(of ([\d,]+)\)/.exec(name)?.[1]
      for (const pressure of pressures) {
        const { workload, shared } = at(pressure)
        if (about !== undefined) {
          const { median } = workload.clients.abuser
          expect([count(Math.floor(median)), count(Math.ceil(median))], name).toContain(about)
        }
        if (of !== undefined) for (const r of Object.values(shared)) expect(count(r.other!.keys.median), name).toBe(of)
      }
      return { name, pressures, format: kind![1] }
    })
    const shown = rows.map((row) => /^\| `([\w-]+)`/.exec(row)?.[1])
    expect(shown, `${title}: one row per policy measured`).toEqual(Object.keys(at(columns[0]!.pressures[0]!)[variant]))
    for (const row of rows) {
      const [policy, ...cells] = cellsOf(row)
      columns.forEach(({ name, pressures, format }, i) => {
        const expected = pressures
          .map((pressure) => {
            const result = at(pressure)[variant][policy!.replaceAll('`', '')]
            expect(result, `${policy} at ${pressure}`).toBeDefined()
            return format(result!)
          })
          .join(' / ')
        expect(cells[i], `${title} ${policy}, ${name}`).toBe(expected)
      })
    }
  }
}
