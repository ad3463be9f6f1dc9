// The option schema (config/schema.ts) is the one list of options; what documents them is held to
// it: rate-limiting.md's options table, configuration.md's variables, and RateLimitConfig's JSDoc.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import ts from 'typescript'
import { describe, expect, it } from 'vitest'

import { OPTIONS, type OptionSpec } from '#src/config/schema.js'
import {
  DEFAULT_RATE_LIMIT_CONFIG,
  RATE_LIMIT_ENV_VARS,
  rateLimitConfigFromEnv,
  type RateLimitEnvConfig,
} from '#src/index.js'

const ROOT = join(import.meta.dirname, '..', '..', '..', '..')
const specs = Object.entries(OPTIONS) as [string, OptionSpec<unknown>][]

/** The rows of the first table after `heading`: first cell (backticks removed) to its cells. */
function tableAfter(markdown: string, heading: string): Map<string, string[]> {
  const lines = markdown.split('\n')
  const start = lines.indexOf(heading)
  expect(start, `${heading} in the doc`).toBeGreaterThan(-1)
  const rows = new Map<string, string[]>()
  let inTable = false
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith('|')) {
      if (inTable) break
      continue
    }
    inTable = true
    // `\|` inside a cell is an escaped pipe, not a border.
    const cells = line
      .split(/(?<!\\)\|/)
      .slice(1, -1)
      .map((cell) => cell.trim())
    if (/^-+$/.test(cells[0] ?? '')) continue
    rows.set((cells[0] ?? '').replace(/`/g, ''), cells)
  }
  return rows
}

/** A plain default as text. */
const shown = (value: unknown): string => String(value)

/** Every integer in what a spec allows, e.g. 1 and 10000 in `an integer from 1 to 10000 (ms)`. */
const boundsOf = (spec: OptionSpec<unknown>): string[] => spec.allowed.match(/\d+/g) ?? []

/** The values of a `one of a, b, c` spec. */
const choicesOf = (spec: OptionSpec<unknown>): string[] =>
  spec.allowed.startsWith('one of ') ? spec.allowed.slice('one of '.length).split(', ') : []

describe('the option schema', () => {
  it('gives DEFAULT_RATE_LIMIT_CONFIG: every plain default, and nothing else', () => {
    // Its type too (checked by tsc): these keys, no more, no fewer.
    const typed: Record<keyof typeof DEFAULT_RATE_LIMIT_CONFIG, true> = {
      windowMs: true,
      maxRead: true,
      maxWrite: true,
      maxCustom: true,
      algorithm: true,
      keyPrefix: true,
      message: true,
      statusCode: true,
      standardHeaders: true,
      skipSuccessfulRequests: true,
      skipFailedRequests: true,
      redisRetries: true,
      legacyHeaders: true,
      problemDetails: true,
      onStoreError: true,
      instances: true,
      requireRedis: true,
      storeTimeoutMs: true,
      shadow: true,
      auditLog: true,
    }
    expect(Object.keys(DEFAULT_RATE_LIMIT_CONFIG).sort()).toEqual(Object.keys(typed).sort())
    expect(DEFAULT_RATE_LIMIT_CONFIG).toEqual(
      Object.fromEntries(
        specs.filter(([, spec]) => spec.default !== undefined).map(([name, spec]) => [name, spec.default]),
      ),
    )
  })

  it('accepts its own defaults', () => {
    for (const [name, spec] of specs) {
      if (spec.default !== undefined) expect(spec.accepts(spec.default), name).toBe(true)
    }
  })
})

describe('docs/rate-limiting.md, Options', () => {
  const rows = tableAfter(readFileSync(join(ROOT, 'docs', 'rate-limiting.md'), 'utf8'), '## Options')

  it('lists every option, in the schema’s order, and no other', () => {
    expect([...rows.keys()].slice(1)).toEqual(specs.map(([name]) => name))
  })

  it.each(specs)('gives %s its default and the bounds it is checked against', (name, spec) => {
    const [, , shownDefault = '', allowed = ''] = rows.get(name) ?? []
    if (spec.default !== undefined) expect(shownDefault).toMatch(new RegExp(`^\`${shown(spec.default)}\`( |$)`))
    for (const bound of boundsOf(spec)) expect(allowed).toMatch(new RegExp(`\\b${bound}\\b`))
    for (const choice of choicesOf(spec)) expect(allowed).toContain(`\`${choice}\``)
    if (spec.allowed === 'a positive integer') expect(allowed).toContain('positive')
  })
})

describe('docs/configuration.md, the variables', () => {
  const rows = tableAfter(readFileSync(join(ROOT, 'docs', 'configuration.md'), 'utf8'), '## Rate limits and Redis')
  const withVariables = specs.filter(([, spec]) => spec.env !== undefined)

  it('are what rateLimitConfigFromEnv reads, with REDIS_URL: one option each (RateLimitEnvConfig)', () => {
    const env = Object.fromEntries(
      withVariables.map(([, spec]) => [spec.env!.name, spec.env!.example ?? shown(spec.default)]),
    )
    const config = rateLimitConfigFromEnv({ ...env, REDIS_URL: 'redis://127.0.0.1:6379' })
    const keys: (keyof RateLimitEnvConfig)[] = [
      'redisUrl',
      'windowMs',
      'maxRead',
      'maxWrite',
      'algorithm',
      'limitsRead',
      'limitsWrite',
      'onStoreError',
      'instances',
      'requireRedis',
      'storeTimeoutMs',
      'shadow',
      'problemDetails',
    ]
    expect(Object.keys(config).sort()).toEqual(['redisUrl', ...withVariables.map(([name]) => name)].sort())
    expect(Object.keys(config).sort()).toEqual(keys.sort())
    for (const [, spec] of withVariables) expect(RATE_LIMIT_ENV_VARS).toContain(spec.env!.name)
  })

  it.each(withVariables)('gives the variable of %s its default and bounds', (_name, spec) => {
    const [, , shownDefault = '', allowed = ''] = rows.get(spec.env!.name) ?? []
    expect(rows.has(spec.env!.name), spec.env!.name).toBe(true)
    if (spec.default !== undefined) expect(shownDefault).toMatch(new RegExp(`^\`${shown(spec.default)}\`( |$)`))
    for (const bound of boundsOf(spec)) expect(allowed).toMatch(new RegExp(`\\b${bound}\\b`))
    for (const choice of choicesOf(spec)) expect(allowed).toContain(`\`${choice}\``)
  })
})

describe('RateLimitConfig’s JSDoc (config/types.ts)', () => {
  const file = join(ROOT, 'packages', 'utils', 'src', 'rate-limiting', 'config', 'types.ts')
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true)
  const docs = new Map<string, { text: string; default: string | undefined }>()
  ts.forEachChild(source, (node) => {
    if (!ts.isInterfaceDeclaration(node) || node.name.text !== 'RateLimitConfig') return
    for (const member of node.members) {
      if (!member.name || !ts.isIdentifier(member.name)) continue
      const [doc] = ts.getJSDocCommentsAndTags(member).filter(ts.isJSDoc)
      const tag = ts.getJSDocTags(member).find((t) => t.tagName.text === 'default')
      docs.set(member.name.text, {
        text: ts.getTextOfJSDocComment(doc?.comment) ?? '',
        default: tag === undefined ? undefined : (ts.getTextOfJSDocComment(tag.comment) ?? ''),
      })
    }
  })

  it('documents every option', () => {
    expect([...docs.keys()].sort()).toEqual(specs.map(([name]) => name).sort())
  })

  it.each(specs)('opens the doc of %s with the schema’s doc line', (name, spec) => {
    expect(spec.doc).toMatch(/^[A-Z].*\.$/)
    const text = docs.get(name)!.text.replace(/\s+/g, ' ')
    expect(text.slice(0, spec.doc.length)).toBe(spec.doc)
  })

  it.each(specs)('says the default and the bounds of %s', (name, spec) => {
    const doc = docs.get(name)!
    if (spec.default !== undefined) {
      const expected = typeof spec.default === 'string' ? `'${spec.default}'` : shown(spec.default)
      expect(doc.default).toMatch(new RegExp(`^${expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}( |$)`))
    }
    for (const bound of boundsOf(spec)) expect(doc.text).toMatch(new RegExp(`\\b${bound}\\b`))
  })
})
