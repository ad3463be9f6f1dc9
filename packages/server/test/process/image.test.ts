// The Dockerfile's image without Docker: its own deploy command, laid out as its runtime stage, run as its USER.
import { execFile } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { freePort } from '../../../utils/test/support/ports.js'
import {
  all,
  buildStage,
  dockerIgnores,
  execForm,
  healthcheckCommand,
  last,
  runtimeStage,
} from '../unit/support/deploy-files.js'
import { REPO_ROOT, spawnWatched } from './support/server-process.js'

const run = promisify(execFile)

/** The build stage's `pnpm deploy ... <target>`, as words. */
const deployCommand = (): string[] => {
  const runs = all(buildStage, 'RUN').filter((line) => line.startsWith('pnpm deploy '))
  expect(runs, 'the build stage has one pnpm deploy').toHaveLength(1)
  return runs[0]!.split(/\s+/)
}

/** The runtime stage's `COPY --from=<build> <source> <destination>`. */
const runtimeCopy = (): { source: string; destination: string } => {
  const copies = all(runtimeStage, 'COPY')
  expect(copies).toHaveLength(1)
  const [from, source, destination] = copies[0]!.split(/\s+/)
  expect(from).toBe(`--from=${buildStage.alias}`)
  return { source: source!, destination: destination! }
}

/** Every package name in a pnpm node_modules/.pnpm folder (`@scope+name@version_peers` entries). */
const installedPackages = (virtualStore: string): Set<string> =>
  new Set(
    readdirSync(virtualStore)
      .map((entry) => /^(@[^+]+\+)?[^@]+/.exec(entry)?.[0]?.replace('+', '/'))
      .filter((name): name is string => name !== undefined && name !== 'lock.yaml' && name !== 'node_modules'),
  )

const manifest = (path: string) =>
  JSON.parse(readFileSync(join(REPO_ROOT, path), 'utf8')) as Partial<
    Record<'dependencies' | 'devDependencies' | 'peerDependencies' | 'optionalDependencies', Record<string, string>>
  >
const WORKSPACE_MANIFESTS = [
  'package.json',
  ...readdirSync(join(REPO_ROOT, 'packages')).map((name) => `packages/${name}/package.json`),
]

/** Tools the workspace only develops with: its devDependencies that no package needs at run time. */
function devOnlyPackages(): string[] {
  const manifests = WORKSPACE_MANIFESTS.map(manifest)
  const runtime = new Set(
    manifests.flatMap((m) => Object.keys({ ...m.dependencies, ...m.peerDependencies, ...m.optionalDependencies })),
  )
  return [...new Set(manifests.flatMap((m) => Object.keys(m.devDependencies ?? {})))].filter(
    (name) => !runtime.has(name),
  )
}

describe('the Dockerfile image, built by its own pnpm deploy', () => {
  let root: string
  /** Where a path of the image lies in our temp folder. */
  const inImage = (path: string) => join(root, path)
  let server: string

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'universo-image-'))
    // Readable by the image's USER, as the image's root-owned files are.
    chmodSync(root, 0o755)
    // The build stage's WORKDIR holds the whole repo (COPY . .): that is REPO_ROOT here.
    expect(last(buildStage, 'WORKDIR')).toBe('/repo')
    expect(all(buildStage, 'COPY')).toEqual(['. .'])
    const [pnpm, ...args] = deployCommand()
    const target = args.pop()!
    // --offline: CI runs this after `pnpm install`, so the pnpm store holds everything; no network.
    await run(pnpm!, [...args, '--offline', inImage(target)], { cwd: REPO_ROOT, timeout: 120_000 })
    const copy = runtimeCopy()
    expect(copy.source).toBe(target)
    mkdirSync(dirname(inImage(copy.destination)), { recursive: true })
    renameSync(inImage(copy.source), inImage(copy.destination))
    server = inImage(copy.destination)
  }, 150_000)

  afterAll(() => {
    if (root !== undefined) rmSync(root, { recursive: true, force: true })
  })

  it('ships the built server and its production dependencies, no sources or tests', () => {
    expect(
      readdirSync(server)
        .filter((entry) => !/^pnpm-(lock|workspace)\.yaml$/.test(entry))
        .sort(),
    ).toEqual(['dist', 'node_modules', 'package.json'])
    expect(existsSync(join(server, 'dist', 'main.js'))).toBe(true)
    // The workspace packages it depends on: their `files` (dist) and package.json only.
    for (const name of ['@universo/utils', '@universo/metaverses-srv']) {
      const entries = readdirSync(join(server, 'node_modules', name)).sort()
      expect(entries, name).toEqual(['dist', 'package.json'])
    }
  })

  it('holds no development tool, such as vitest, typescript or tsup', () => {
    const installed = installedPackages(join(server, 'node_modules', '.pnpm'))
    // The name parsing works: the production dependencies are found.
    expect([...installed]).toEqual(expect.arrayContaining(['express', 'pino', 'ioredis', '@universo/utils']))
    const devOnly = devOnlyPackages()
    expect(devOnly).toEqual(expect.arrayContaining(['vitest', 'typescript', 'tsup', 'supertest', 'eslint']))
    expect(devOnly.filter((name) => installed.has(name))).toEqual([])
    expect([...installed].filter((name) => name.startsWith('@types/'))).toEqual([])
  })

  it('starts as the runtime stage starts it, answers its HEALTHCHECK, and exits 0 on SIGTERM', async () => {
    const [node, ...args] = execForm(last(runtimeStage, 'CMD') ?? '')
    expect(node).toBe('node')
    const env = Object.fromEntries(all(runtimeStage, 'ENV').map((line) => line.split('=') as [string, string]))
    const port = await freePort()
    // As the image's USER when we can switch to it: as root, with the image's folder and this node
    // open to other users (a node or a temp dir under a private home is not).
    const [uid, gid] = (last(runtimeStage, 'USER') ?? '').split(':').map(Number)
    const open = (path: string) => (statSync(path).mode & 0o005) === 0o005
    const reachable = [root, process.execPath].every((path) => open(path) && ancestors(path).every(open))
    const user = process.getuid?.() === 0 && reachable && uid !== undefined ? { uid, gid: gid ?? uid } : {}
    const options = { env: { PATH: process.env.PATH ?? '', ...env, PORT: String(port) }, ...user }

    const running = spawnWatched(process.execPath, args, {
      ...options,
      cwd: inImage(last(runtimeStage, 'WORKDIR')!),
    })
    const { child } = running
    try {
      await running.waitForOutput('[Server] Listening on')
      expect(running.output()).toContain(`[Server] Listening on http://localhost:${port}`)
      if ('uid' in user) {
        const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
        expect(/^Uid:\s+(\d+)/m.exec(status)?.[1], 'the server runs as the image USER').toBe(String(uid))
      }

      const [healthNode, ...healthArgs] = healthcheckCommand()
      expect(healthNode).toBe('node')
      const health = () =>
        run(process.execPath, healthArgs, { ...options, timeout: 10_000 }).then(
          () => 0,
          (error: { code?: unknown }) => (typeof error.code === 'number' ? error.code : -1),
        )
      expect(await health()).toBe(0)

      child.kill('SIGTERM')
      expect((await running.exited).code).toBe(0)
      expect(running.output()).toContain('[Server] SIGTERM received: no new connections, finishing in-flight requests')
      expect(running.output()).toContain('[Server] Shutdown complete')
      expect(await health()).toBe(1)
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
    }
  }, 60_000)
})

describe('the build context', () => {
  it('leaves out every .env file, wherever it is, and keeps what the build needs', () => {
    for (const path of ['.env', '.env.local', '.env.production', 'packages/server/.env', 'deploy/k8s/.env.secret']) {
      expect(dockerIgnores(path), `${path} is left out`).toBe(true)
    }
    for (const path of ['.npmrc', 'packages/server/src/config.ts', 'packages/server/package.json']) {
      expect(dockerIgnores(path), `${path} is kept`).toBe(false)
    }
  })
})

/** The folders above `path`, up to /. */
function ancestors(path: string): string[] {
  const up = dirname(path)
  return up === path ? [] : [up, ...ancestors(up)]
}
