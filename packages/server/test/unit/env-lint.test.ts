// eslint.config.js: outside the env parsers, packages/*/src cannot reach the environment by any form.
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

import { ESLint } from 'eslint'
import { beforeAll, describe, expect, it } from 'vitest'

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..')
/** The rules eslint.config.js sets for the environment; other rules' findings are not this test's. */
const ENV_RULES = ['no-restricted-syntax', 'no-restricted-imports', 'no-restricted-properties']
/** Files that exist (typed linting wants them in a project), linted with another text. */
const OTHER_MODULES = ['packages/server/src/app.ts', 'packages/utils/src/rate-limiting/create-rate-limiters.ts']

let eslint: ESLint
let envModules: readonly string[]
beforeAll(async () => {
  eslint = new ESLint({ cwd: REPO_ROOT })
  const script = (await import(pathToFileURL(join(REPO_ROOT, 'scripts', 'check-env-docs.mjs')).href)) as {
    ENV_MODULES: readonly string[]
  }
  envModules = script.ENV_MODULES
})

/** What the repo's ESLint config says about `code` as the text of `path`: the env rules' findings. */
async function envFindings(code: string, path: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(REPO_ROOT, path) })
  const fatal = result!.messages.filter((message) => message.fatal)
  expect(fatal, 'the code parses').toEqual([])
  return result!.messages
    .filter((message) => ENV_RULES.includes(message.ruleId ?? ''))
    .map((message) => `${message.ruleId}: ${message.message}`)
}

/** Ways to read a variable without writing `process.env` where ESLint looks for it. */
const EVASIONS: [string, string][] = [
  ["process['env']", "export const a = process['env'].X"],
  ['a computed property of process', "const k = 'env'\nexport const a = process[k].X"],
  ['const { env } = process', 'const { env } = process\nexport const a = env.X'],
  ['an alias of process', 'const p = process\nexport const a = p.env.X'],
  ['process assigned', 'let p: NodeJS.Process\np = process\nexport const a = p.env.X'],
  ['process passed to a function', 'const f = (p: NodeJS.Process) => p.env.X\nexport const a = f(process)'],
  ['process spread', 'export const a = { ...process }'],
  ['process in an object', 'export const o = { p: process }'],
  ["import proc from 'node:process'", "import proc from 'node:process'\nexport const a = proc.env.X"],
  ["import * as proc from 'node:process'", "import * as proc from 'node:process'\nexport const a = proc.env.X"],
  ["import { env } from 'node:process'", "import { env } from 'node:process'\nexport const a = env.X"],
  ["import { env } from 'process'", "import { env } from 'process'\nexport const a = env.X"],
  ["export { env } from 'process'", "export { env } from 'process'"],
  ["await import('node:process')", "export const a = (await import('node:process')).env.X"],
  ['globalThis.process.env', 'export const a = globalThis.process.env.X'],
  ['global.process.env', 'export const a = global.process.env.X'],
  ["globalThis['process']", "export const a = globalThis['process'].env.X"],
  ['an alias of globalThis', 'const g = globalThis\nexport const a = g.process.env.X'],
]

describe('outside the env modules', () => {
  it.each(OTHER_MODULES)('forbids process.env itself (%s)', async (path) => {
    expect(await envFindings('export const a = process.env.X', path)).toEqual([
      expect.stringMatching(/^no-restricted-properties: .*ENV_MODULES in scripts\/check-env-docs\.mjs/),
    ])
    expect(await envFindings('export const a = process?.env?.X', path)).toHaveLength(1)
  })

  it.each(EVASIONS)('forbids %s', async (_form, code) => {
    const findings = await envFindings(code, OTHER_MODULES[0]!)
    expect(findings.length).toBeGreaterThan(0)
    for (const finding of findings) expect(finding).toContain('ENV_MODULES in scripts/check-env-docs.mjs')
  })

  it('allows the rest of process, and properties merely named process', async () => {
    const code = [
      'export const pid = process.pid',
      'process.exitCode = 0',
      "process.on('SIGTERM', () => undefined)",
      'export const o = { process: 1 }',
      'export const b = o.process',
      'export interface Job { process: string }',
    ].join('\n')
    expect(await envFindings(code, OTHER_MODULES[0]!)).toEqual([])
  })
})

describe('in the env modules', () => {
  it('has env modules to test', () => {
    expect(envModules.length).toBeGreaterThan(0)
  })

  it('allows process.env in each env module', async () => {
    for (const path of envModules) {
      expect(await envFindings('export const a = process.env.X', path), path).toEqual([])
    }
  })

  it.each(EVASIONS)('still forbids %s, which the check could not follow', async (_form, code) => {
    expect((await envFindings(code, envModules[0]!)).length).toBeGreaterThan(0)
  })
})
