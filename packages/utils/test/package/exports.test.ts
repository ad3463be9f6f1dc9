// The built package, as a consumer sees it: ESM and CJS entry points, their types, no deep imports.
import { execFileSync, spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { beforeAll, describe, expect, it } from 'vitest'

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const tscBin = createRequire(import.meta.url).resolve('typescript/bin/tsc')

function node(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, args, { cwd: packageDir, encoding: 'utf8' })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

const PROBE = `
  const names = ['createRateLimiter', 'createRateLimiters', 'RedisClientManager', 'RateLimitError', 'ERROR_CODES']
  const kinds = names.map((n) => n + ':' + typeof m[n])
  const limiters = await m.createRateLimiters({ keyPrefix: 'probe', logger: { info() {}, warn() {}, error() {} } })
  const { Registry } = await import('prom-client')
  const registry = new Registry()
  const metered = await m.createRateLimiters({ keyPrefix: 'metered', metricsRegistry: registry, logger: { info() {}, warn() {}, error() {} } })
  const metrics = (await registry.metrics()).includes('rate_limit_requests_total{namespace="metered",type="read"} 0')
  console.log(JSON.stringify({ kinds, read: typeof limiters.read, write: typeof limiters.write, metrics }))
  limiters.dispose()
  metered.dispose()
`

describe('@universo/utils/rate-limiting as built', () => {
  beforeAll(() => {
    execFileSync('pnpm', ['exec', 'tsup'], { cwd: packageDir, stdio: 'pipe' })
  }, 120_000)

  const expected = {
    kinds: [
      'createRateLimiter:function',
      'createRateLimiters:function',
      'RedisClientManager:function',
      'RateLimitError:function',
      'ERROR_CODES:object',
    ],
    read: 'function',
    write: 'function',
    metrics: true,
  }

  it('loads with require() from CommonJS and creates limiters', () => {
    const out = node(['-e', `(async () => { const m = require('@universo/utils/rate-limiting'); ${PROBE} })()`])
    expect(out.stderr).toBe('')
    expect(JSON.parse(out.stdout)).toEqual(expected)
  })

  it('loads with import from an ES module and creates limiters', () => {
    const out = node(['--input-type=module', '-e', `import * as m from '@universo/utils/rate-limiting'; ${PROBE}`])
    expect(out.stderr).toBe('')
    expect(JSON.parse(out.stdout)).toEqual(expected)
  })

  it('refuses deep imports: only the subpaths in exports are public', () => {
    const out = node(['-e', "require('@universo/utils/dist/rate-limiting/index.cjs')"])
    expect(out.status).not.toBe(0)
    expect(out.stderr).toContain('ERR_PACKAGE_PATH_NOT_EXPORTED')
  })

  it('has types that import no optional peer: prom-client is named in no .d.ts', () => {
    const typeFiles = readdirSync(join(packageDir, 'dist'), { recursive: true, encoding: 'utf8' }).filter((file) =>
      /\.d\.c?ts$/.test(file),
    )
    expect(typeFiles.length).toBeGreaterThan(0)
    const importing = typeFiles.filter((file) =>
      /from ['"]prom-client['"]|import\(['"]prom-client['"]\)/.test(
        readFileSync(join(packageDir, 'dist', file), 'utf8'),
      ),
    )
    expect(importing).toEqual([])
  })

  it('is typed for both CommonJS and ES module consumers (node16 resolution, no development condition)', () => {
    const tsc = spawnSync(process.execPath, [tscBin, '-p', 'test/package/fixture/tsconfig.json'], {
      cwd: packageDir,
      encoding: 'utf8',
    })
    expect(tsc.stdout + tsc.stderr).toBe('')
    expect(tsc.status).toBe(0)
  })
})
