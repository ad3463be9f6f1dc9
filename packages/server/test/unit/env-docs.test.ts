// scripts/check-env-docs.mjs: docs/configuration.md lists exactly the variables packages/*/src reads.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

import { beforeAll, describe, expect, it } from 'vitest'

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..')
const SCRIPT = join(REPO_ROOT, 'scripts', 'check-env-docs.mjs')
const DOC = readFileSync(join(REPO_ROOT, 'docs', 'configuration.md'), 'utf8')
/**
 * `process.env` for fixtures that read a name no doc lists: built, so that a scan of this file
 * (which reads text, not code) does not take the fixture's variable for one the project reads.
 */
const PROCESS_ENV = ['process', 'env'].join('.')

interface SourceFile {
  readonly path: string
  readonly text: string
}
interface Found {
  readonly reads: Map<string, string[]>
  readonly problems: string[]
}
interface Documented {
  checked: Map<string, number>
  outsideSrc: Map<string, number>
}
interface Result {
  readonly ok: boolean
  readonly errors: string[]
  readonly reads: Map<string, string[]>
  readonly documented: Documented
}
interface CheckEnvDocs {
  checkEnvDocs(options?: {
    root?: string
    modules?: SourceFile[]
    sources?: SourceFile[]
    doc?: string
    tools?: SourceFile[]
  }): Result
  findEnvReads(modules: SourceFile[]): Found
  documentedVariables(markdown: string): Documented
  compareEnvDocs(found: Found, documented: Documented, outsideReads: Set<string>): string[]
  ENV_MODULES: readonly string[]
  OUTSIDE_SRC_MARKER: string
}

let check: CheckEnvDocs
/** The check on the real repository, run once. */
let real: Result
beforeAll(async () => {
  // A computed specifier: the script is plain JavaScript, typed here by the interface above.
  check = (await import(pathToFileURL(SCRIPT).href)) as CheckEnvDocs
  real = check.checkEnvDocs()
})

/** What the check says about the real code against another version of configuration.md. */
const againstDoc = (doc: string) =>
  check.compareEnvDocs(
    { reads: real.reads, problems: [] },
    check.documentedVariables(doc),
    new Set(['CI', 'PATH', 'HOME', 'UPDATE_DOCS']),
  )

/** The names one env module reads, and the problems the scan reports for it. */
const readsOf = (text: string) => {
  const { reads, problems } = check.findEnvReads([{ path: 'packages/x/src/env.ts', text }])
  return { names: [...reads.keys()].sort(), problems }
}

/** A doc with one table listing `names`, and a marked section listing `outside`. */
const docWith = (names: string[], outside: string[] = []) =>
  [
    '# Configuration',
    '',
    '| Variable | Type |',
    '| --- | --- |',
    ...names.map((name) => `| \`${name}\` | string |`),
    '',
    '## Tests',
    '',
    check.OUTSIDE_SRC_MARKER,
    '',
    '| Variable | Type |',
    '| --- | --- |',
    ...outside.map((name) => `| \`${name}\` | string |`),
  ].join('\n')

/** The check on one env module's text, with no dependencies and no tools. */
const checkModule = (text: string, doc: string) =>
  check.checkEnvDocs({ modules: [{ path: 'packages/x/src/env.ts', text }], sources: [], doc, tools: [] })

describe('the real repository', () => {
  it('passes: configuration.md lists exactly what the env modules and the dependencies read', () => {
    expect(real.errors).toEqual([])
    expect(real.ok).toBe(true)
    // Read through each form the code uses: a helper of a helper, env.NAME, a literal list, a dependency.
    expect(real.reads.get('AUTH_REQUIRED')?.[0]).toMatch(/^packages\/server\/src\/config\.ts:/)
    expect(real.reads.get('RATE_LIMIT_READ_MAX')?.[0]).toMatch(
      /^packages\/utils\/src\/rate-limiting\/config\/schema\.ts:/,
    )
    expect(real.reads.get('REDIS_PASSWORD')?.[0]).toMatch(/redis\/topology\.ts:/)
    expect(real.reads.get('REDIS_SENTINELS')?.some((place) => place.includes('redis/connection.ts'))).toBe(true)
    for (const name of ['DEBUG', 'DEBUG_COLORS', 'DEBUG_DEPTH', 'DEBUG_HIDE_DATE', 'DEBUG_SHOW_HIDDEN']) {
      expect(real.reads.get(name)?.[0]).toContain('imports debug')
    }
    expect(real.documented.outsideSrc.has('CI')).toBe(true)
  })

  it('runs as a CLI that exits 0 and says how many variables it matched', () => {
    const run = spawnSync(process.execPath, [SCRIPT], { cwd: REPO_ROOT, encoding: 'utf8' })
    expect(run.stderr).toBe('')
    expect(run.stdout).toMatch(
      /^check-env-docs: docs\/configuration\.md lists exactly the \d+ environment variables packages\/\*\/src reads\n$/,
    )
    expect(run.status).toBe(0)
  })

  it('fails from the CLI, naming the variable, for a doc that lacks one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'env-docs-'))
    try {
      const doc = join(dir, 'configuration.md')
      writeFileSync(
        doc,
        DOC.split('\n')
          .filter((line) => !line.startsWith('| `LOG_LEVEL`'))
          .join('\n'),
      )
      const run = spawnSync(process.execPath, [SCRIPT, '--doc', doc], { cwd: REPO_ROOT, encoding: 'utf8' })
      expect(run.status).toBe(1)
      expect(run.stderr).toContain('LOG_LEVEL is read (packages/server/src/config.ts:')
      expect(run.stderr).toContain('but missing from docs/configuration.md')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('the check fails', () => {
  it('when the doc lacks a variable the code reads', () => {
    expect(againstDoc(DOC.replace(/^\| `PORT` .*\n/m, ''))).toEqual([
      expect.stringMatching(/^PORT is read \(packages\/server\/src\/config\.ts:\d+:\d+\) but missing/),
    ])
  })

  it('when the doc lacks a variable that a dependency reads', () => {
    expect(againstDoc(DOC.replace(/^\| `DEBUG_DEPTH` .*\n/m, ''))).toEqual([
      'DEBUG_DEPTH is read (packages/utils/src/rate-limiting/observability/logger.ts (imports debug, which reads it)) ' +
        'but missing from docs/configuration.md',
    ])
  })

  it('when the doc lists a variable the code never reads', () => {
    expect(againstDoc(`${DOC}\n| \`RATE_LIMIT_BURST\` | integer | \`0\` | any |\n`)).toEqual([
      expect.stringMatching(/^RATE_LIMIT_BURST is listed in docs\/configuration\.md:\d+ but the code never reads it$/),
    ])
  })

  it('when the code reads one more variable than the doc lists', () => {
    const result = checkModule(
      `export const a = ${PROCESS_ENV}.A\nexport const b = ${PROCESS_ENV}['NEW_SETTING']`,
      docWith(['A']),
    )
    expect(result.ok).toBe(false)
    expect(result.errors).toEqual([
      'NEW_SETTING is read (packages/x/src/env.ts:2:30) but missing from docs/configuration.md',
    ])
  })

  it('when the code reads the environment in a way the check cannot name', () => {
    const result = checkModule('export const a = process.env[key()]', docWith([]))
    expect(result.ok).toBe(false)
    expect(result.errors).toEqual([
      'cannot name an environment read: packages/x/src/env.ts:1:18: cannot name the variable: process.env[key()]',
    ])
  })

  it('when a variable the doc says the code does not read is read by the code', () => {
    const tools = [{ path: 'packages/x/test/a.test.ts', text: 'process.env.CI' }]
    const result = check.checkEnvDocs({
      modules: [{ path: 'packages/x/src/env.ts', text: 'export const ci = process.env.CI' }],
      sources: [],
      doc: docWith([], ['CI']),
      tools,
    })
    expect(result.errors).toEqual([
      expect.stringMatching(/^CI is read by the code .* lists it as not read by packages/),
    ])
  })

  it('when the section of variables outside src names one that nothing reads', () => {
    const result = check.checkEnvDocs({ modules: [], sources: [], doc: docWith([], ['STALE']), tools: [] })
    expect(result.errors).toEqual([
      expect.stringMatching(/^STALE is listed in .* as read by tests or tools, but nothing reads it$/),
    ])
  })

  it('when a variable is listed twice', () => {
    const result = checkModule('process.env.A', docWith(['A', 'A']))
    expect(result.errors).toEqual(['A is listed more than once in docs/configuration.md'])
  })

  it('when an env module named in ENV_MODULES is gone', () => {
    const root = mkdtempSync(join(tmpdir(), 'env-docs-root-'))
    try {
      expect(() => check.checkEnvDocs({ root, sources: [], doc: docWith([]), tools: [] })).toThrow(/ENOENT/)
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  })
})

describe('the scan of the env modules', () => {
  it.each([
    ['process.env.NAME', `const a = ${PROCESS_ENV}.A_1`, ['A_1']],
    ["process.env['NAME']", "const a = process.env['A']", ['A']],
    ['a parameter named env', 'function f(env: Env) { return env.A }\nf(process.env)', ['A']],
    ['a parameter defaulting to process.env', "function f(env: Env = process.env) { return env['A'] }", ['A']],
    [
      'a helper, and a helper of a helper',
      [
        'const value = (env: Env, name: string) => env[name]?.trim()',
        'function flag(env: Env, name: string) { return value(env, name) === "true" }',
        "value(process.env, 'A')",
        "flag(process.env, 'B')",
      ].join('\n'),
      ['A', 'B'],
    ],
    ['a literal list', "const any = ['A', 'B'].some((name) => (process.env[name] ?? '') !== '')", ['A', 'B']],
    [
      'a literal list of tuples',
      [
        'function envValue(env: Env, name: string) { return env[name] }',
        "for (const [name, fix] of [['A', 'x'], ['B', 'y']] as const) envValue(process.env, name)",
      ].join('\n'),
      ['A', 'B'],
    ],
    [
      "an option schema's env: 'NAME', read as spec.env.name",
      [
        'function envValue(env: Env, name: string) { return env[name] }',
        "const OPTIONS = { a: { env: { name: 'A' } }, b: flag(false, { env: 'B' }), c: { env: 'not a name' } }",
        'for (const spec of Object.values(OPTIONS)) envValue(process.env, spec.env.name)',
      ].join('\n'),
      ['B'],
    ],
  ])('names a variable read through %s', (_form, text, names) => {
    expect(readsOf(text)).toEqual({ names, problems: [] })
  })

  it('follows a helper defined in another env module', () => {
    const { reads, problems } = check.findEnvReads([
      {
        path: 'packages/x/src/env-values.ts',
        text: 'export function envValue(env: Env, name: string) { return env[name] }',
      },
      { path: 'packages/x/src/env.ts', text: "import { envValue } from './env-values.js'\nenvValue(process.env, 'A')" },
    ])
    expect({ names: [...reads.keys()], problems }).toEqual({ names: ['A'], problems: [] })
  })

  it('never counts names in comments, strings or types', () => {
    expect(
      readsOf(
        "// process.env.A\nconst s = 'process.env.B'\n/** @default process.env.C */ const c = 1\ntype T = { env: string }",
      ),
    ).toEqual({ names: [], problems: [] })
  })

  it.each([
    ['a computed name', 'const a = process.env[key()]'],
    ['a name held in a local variable', "const k = 'A'\nconst a = process.env[k]"],
    [
      'a helper called with a computed name',
      "const v = (env: Env, name: string) => env[name]\nv(process.env, 'A' + x)",
    ],
    ['a name parameter of a function without env', 'function get(name: string) { return process.env[name] }'],
    [
      'a helper whose env defaults to process.env (callers outside the env modules would go unseen)',
      "export function get(env: Env = process.env, name: string) { return env[name] }\nget(undefined, 'A')",
    ],
    ['an alias', 'const e = process.env\nconst a = e.A'],
    ['destructuring', 'const { A } = process.env'],
    ['a spread', 'const all = { ...process.env }'],
    ['enumeration', 'const names = Object.keys(process.env)'],
    ['the environment handed to a function outside the env modules', 'spawn("node", [], { env: process.env })'],
    ['the environment passed to an unknown function', 'dotenvExpand(process.env)'],
    ['the environment passed to a parameter not named env', 'function f(e: Env) { return e.A }\nf(process.env)'],
    ['the environment returned', 'function f(env: Env) { return env }'],
    ['a method of the environment', "const has = process.env.hasOwnProperty('A')"],
  ])('fails loudly on %s', (_form, text) => {
    const { problems } = readsOf(text)
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(/^packages\/x\/src\/env\.ts:\d+:\d+: /)
  })
})
