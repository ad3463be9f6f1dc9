// Reads the deployment files (Dockerfile, .dockerignore, docker-compose.yml, deploy/k8s) as the deploy tests check them.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

import { expect } from 'vitest'
import { parse, parseAllDocuments } from 'yaml'

import { loadConfig } from '../../../src/index.js'

export const ROOT = fileURLToPath(new URL('../../../../../', import.meta.url))
export const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8')
export const rootPackage = JSON.parse(read('package.json')) as {
  packageManager: string
  engines: { node: string }
  scripts: Record<string, string>
}

// --- The server's facts, from its code and its docs -------------------------------------------

/** The port the server listens on when PORT is unset. */
export const DEFAULT_PORT = loadConfig({}).port

interface EnvDocsScript {
  checkEnvDocs(): { reads: Map<string, string[]>; documented: { checked: Map<string, number> } }
}

let envDocs: Promise<{ read: Set<string>; documented: Set<string> }> | undefined

/**
 * What CI's scripts/check-env-docs.mjs finds: the variables packages/*\/src really reads (its
 * TypeScript scan of process.env and the helpers around it) and those docs/configuration.md lists
 * as read there.
 */
export function variablesTheServerReads(): Promise<{ read: Set<string>; documented: Set<string> }> {
  envDocs ??= (async () => {
    // A computed specifier: the script is plain JavaScript, typed here by the interface above.
    const script = (await import(pathToFileURL(join(ROOT, 'scripts', 'check-env-docs.mjs')).href)) as EnvDocsScript
    const { reads, documented } = script.checkEnvDocs()
    return { read: new Set(reads.keys()), documented: new Set(documented.checked.keys()) }
  })()
  return envDocs
}

/** How long the server may take to exit after SIGTERM: its drain (shutdown.ts), then 2 s to release. */
export function shutdownBoundSeconds(): number {
  const drainMs = /drainMs = (\d+)/.exec(read('packages/server/src/shutdown.ts'))?.[1]
  if (drainMs === undefined) throw new Error('shutdown.ts no longer has a default drainMs')
  return Number(drainMs) / 1000 + 2
}

/** A version that satisfies a `>=x.y.z` range. */
export function satisfiesAtLeast(version: string, range: string): boolean {
  const minimum = /^>=(\d+)\.(\d+)\.(\d+)$/.exec(range)
  const actual = /^(\d+)\.(\d+)\.(\d+)$/.exec(version)
  if (minimum === null || actual === null) throw new Error(`cannot compare ${version} with ${range}`)
  for (let i = 1; i <= 3; i++) {
    if (Number(actual[i]) !== Number(minimum[i])) return Number(actual[i]) > Number(minimum[i])
  }
  return true
}

// --- Dockerfile -------------------------------------------------------------------------------

export interface Instruction {
  readonly name: string
  readonly args: string
}
export interface Stage {
  readonly image: string
  readonly alias: string | undefined
  readonly instructions: Instruction[]
}

/** The Dockerfile as stages of instructions; continuation lines joined, comments dropped, FROM's ARGs expanded. */
export function parseDockerfile(text: string): Stage[] {
  const logical: string[] = []
  let pending = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line.startsWith('#') || (line === '' && pending === '')) continue
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `
      continue
    }
    logical.push(pending + line)
    pending = ''
  }
  const args = new Map<string, string>()
  const stages: Stage[] = []
  for (const line of logical) {
    const [, name = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? []
    const instruction = { name: name.toUpperCase(), args: rest }
    if (instruction.name === 'ARG' && stages.length === 0) {
      const [key = '', value = ''] = rest.split('=')
      args.set(key, value)
    } else if (instruction.name === 'FROM') {
      const expanded = rest.replace(/\$\{(\w+)\}/g, (_, key: string) => args.get(key) ?? '')
      const [image = '', as, alias] = expanded.split(/\s+/)
      stages.push({ image, alias: as?.toUpperCase() === 'AS' ? alias : undefined, instructions: [] })
    } else {
      stages.at(-1)?.instructions.push(instruction)
    }
  }
  return stages
}

export const stages = parseDockerfile(read('Dockerfile'))
export const buildStage = stages[0]!
export const runtimeStage = stages.at(-1)!
export const all = (stage: Stage, name: string): string[] =>
  stage.instructions.filter((instruction) => instruction.name === name).map((instruction) => instruction.args)
export const last = (stage: Stage, name: string): string | undefined => all(stage, name).at(-1)
export const execForm = (args: string): string[] => {
  expect(args.startsWith('['), `${args} is in exec form (a JSON array)`).toBe(true)
  return JSON.parse(args) as string[]
}
export const healthcheckCommand = (): string[] => {
  const args = last(runtimeStage, 'HEALTHCHECK') ?? ''
  const at = args.indexOf('CMD ')
  expect(at, 'HEALTHCHECK has a CMD').toBeGreaterThanOrEqual(0)
  return execForm(args.slice(at + 4).trim())
}

/** Whether .dockerignore's patterns (Docker's rules: last match wins, `!` re-includes) leave `path` out. */
export function dockerIgnores(path: string): boolean {
  const patterns = read('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
  const toRegExp = (glob: string): RegExp =>
    new RegExp(
      `^${glob
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*\*\//g, '%DEEP%')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]')
        .replace(/%DEEP%/g, '(.*/)?')}$`,
    )
  // A pattern that matches a folder leaves out everything in it.
  const parts = path.split('/')
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'))
  let ignored = false
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!')
    const regExp = toRegExp(negated ? pattern.slice(1) : pattern)
    if (negated ? regExp.test(path) : candidates.some((candidate) => regExp.test(candidate))) ignored = !negated
  }
  return ignored
}

// --- docker-compose.yml and Kubernetes --------------------------------------------------------

export interface ComposeService {
  image?: string
  build?: string
  command?: string[]
  environment?: Record<string, string>
  ports?: string[]
  expose?: string[]
  volumes?: string[]
  networks?: string[]
  deploy?: { replicas?: number }
  depends_on?: Record<string, { condition: string }>
  healthcheck?: { test: string[] }
  stop_grace_period?: string
}
export interface Compose {
  services: Record<string, ComposeService>
  networks: Record<string, { internal?: boolean } | null>
}

export const SAMPLE_PASSWORD = '0f1e2d3c4b5a69788796a5b4c3d2e1f0'

/** Compose's interpolation of `${VAR}`, `${VAR:?error}`, `${VAR:-default}` and `$$`, on every string. */
export function interpolate<T>(value: T, env: Readonly<Record<string, string>>): T {
  if (typeof value === 'string') {
    return value.replace(
      /\$\$|\$\{([A-Za-z_]\w*)(?:(:?[?-])([^}]*))?\}/g,
      (match, name: string, operator: string | undefined, argument: string) => {
        if (match === '$$') return '$'
        const set = operator?.startsWith(':') ? Boolean(env[name]) : env[name] !== undefined
        if (operator?.endsWith('?') && !set) throw new Error(`required variable ${name} is missing: ${argument}`)
        if (operator?.endsWith('-') && !set) return argument
        return env[name] ?? ''
      },
    ) as T
  }
  if (Array.isArray(value)) return value.map((item: unknown) => interpolate(item, env)) as T
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, interpolate(item, env)])) as T
  }
  return value
}

export const composeText = read('docker-compose.yml')
export const rawCompose = parse(composeText) as Compose
export const compose = interpolate(rawCompose, { REDIS_PASSWORD: SAMPLE_PASSWORD })

export interface EnvVar {
  name: string
  value?: string
  valueFrom?: { secretKeyRef?: { name: string; key: string } }
}
export interface Probe {
  httpGet: { path: string; port: string | number }
}
export interface Container {
  name: string
  image: string
  ports: { name?: string; containerPort: number }[]
  env: EnvVar[]
  resources: { requests: Record<string, string>; limits: Record<string, string> }
  startupProbe?: Probe
  livenessProbe: Probe
  readinessProbe: Probe
  lifecycle?: { preStop?: { exec?: { command: string[] } } }
}
export interface K8sObject {
  kind: string
  metadata: { name: string; labels?: Record<string, string> }
  spec: Record<string, unknown>
  stringData?: Record<string, string>
}
export interface DeploymentSpec {
  replicas: number
  selector: { matchLabels: Record<string, string> }
  template: {
    metadata: { labels: Record<string, string> }
    spec: {
      terminationGracePeriodSeconds: number
      securityContext: { runAsNonRoot: boolean; runAsUser: number }
      containers: Container[]
    }
  }
}

export const K8S_DIR = 'deploy/k8s'
export const k8sFiles = readdirSync(join(ROOT, K8S_DIR)).filter((file) => file.endsWith('.yaml'))
export const k8sObjects: K8sObject[] = k8sFiles.flatMap((file) =>
  parseAllDocuments(read(`${K8S_DIR}/${file}`)).map((document) => {
    expect(document.errors, `${file} is valid YAML`).toEqual([])
    return document.toJS() as K8sObject
  }),
)
export const k8sObject = (kind: string): K8sObject => {
  const found = k8sObjects.filter((object) => object.kind === kind)
  expect(found, `exactly one ${kind} in ${K8S_DIR}`).toHaveLength(1)
  return found[0]!
}
export const deployment = (): DeploymentSpec => k8sObject('Deployment').spec as unknown as DeploymentSpec
export const serverContainer = (): Container => {
  const containers = deployment().template.spec.containers
  expect(containers).toHaveLength(1)
  return containers[0]!
}
export const plainEnv = (container: Container): Record<string, string> =>
  Object.fromEntries(container.env.filter((variable) => variable.value !== undefined).map((v) => [v.name, v.value!]))
export const containerPort = (container: Container, port: string | number): number | undefined =>
  typeof port === 'number' ? port : container.ports.find((candidate) => candidate.name === port)?.containerPort
export const includesLabels = (labels: Record<string, string>, selector: Record<string, string>): boolean =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([key, value]) => labels[key] === value)
