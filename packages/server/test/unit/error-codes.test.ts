// docs/errors.md lists exactly the error codes packages/*/src defines, so no code ships undocumented.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

import ts from 'typescript'
import { describe, expect, it } from 'vitest'

import { ERROR_CODES } from '@universo/utils/rate-limiting'

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url))
const DOC = 'docs/errors.md'
const CODE = /^ERR_[A-Z0-9_]+$/

/** Every .ts file of packages/*\/src, path relative to the repo. */
function sourceFiles(): { path: string; text: string }[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((entry) => {
      const path = join(dir, entry)
      return statSync(path).isDirectory() ? walk(path) : entry.endsWith('.ts') ? [path] : []
    })
  return readdirSync(join(ROOT, 'packages'))
    .map((name) => join(ROOT, 'packages', name, 'src'))
    .filter((dir) => statSync(dir, { throwIfNoEntry: false })?.isDirectory())
    .flatMap(walk)
    .map((path) => ({ path: relative(ROOT, path), text: readFileSync(path, 'utf8') }))
}

/**
 * The codes the source defines: every string literal that is a whole code, such as the values of
 * ERROR_CODES and `readonly code = 'ERR_...'`, by the files that hold them. Parsed, so comments
 * and codes quoted inside messages do not count.
 */
function definedCodes(files: { path: string; text: string }[]): Map<string, string[]> {
  const codes = new Map<string, string[]>()
  for (const { path, text } of files) {
    const visit = (node: ts.Node): void => {
      if ((ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) && CODE.test(node.text)) {
        codes.set(node.text, [...new Set([...(codes.get(node.text) ?? []), path])])
      }
      ts.forEachChild(node, visit)
    }
    visit(ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true))
  }
  return codes
}

/** The codes in the first column of the doc's tables, with their line numbers. */
function documentedCodes(markdown: string): Map<string, number> {
  const codes = new Map<string, number>()
  markdown.split('\n').forEach((line, index) => {
    const code = /^\|\s*`(ERR_[A-Z0-9_]+)`\s*\|/.exec(line)?.[1]
    if (code !== undefined) codes.set(code, index + 1)
  })
  return codes
}

/** Each difference between the two, named: a code missing from the doc, or one the source never defines. */
function differences(defined: Map<string, string[]>, documented: Map<string, number>): string[] {
  return [
    ...[...defined]
      .filter(([code]) => !documented.has(code))
      .map(([code, paths]) => `${code} is defined in ${paths.join(', ')} but missing from ${DOC}`),
    ...[...documented]
      .filter(([code]) => !defined.has(code))
      .map(([code, line]) => `${code} is listed in ${DOC}:${line} but packages/*/src never defines it`),
  ].sort()
}

const files = sourceFiles()
const defined = definedCodes(files)
const doc = readFileSync(join(ROOT, DOC), 'utf8')

describe('docs/errors.md', () => {
  it('lists every code packages/*/src defines, and no other', () => {
    expect(differences(defined, documentedCodes(doc))).toEqual([])
  })

  it('finds the codes wherever they are defined: ERROR_CODES, and the error classes of each package', () => {
    expect([...defined.keys()]).toEqual(expect.arrayContaining(Object.values(ERROR_CODES)))
    expect(Object.fromEntries(defined)).toMatchObject({
      ERR_RATE_LIMIT_STORE_UNAVAILABLE: ['packages/utils/src/rate-limiting/stores/deadlines.ts'],
      ERR_RATE_LIMITERS_NOT_INITIALIZED: ['packages/metaverses-srv/src/rate-limiters.ts'],
      ERR_DATA_SOURCE_FULL: ['packages/metaverses-srv/src/data-source.ts'],
      ERR_SERVER_INVALID_ENV: ['packages/server/src/config.ts'],
    })
  })

  it('names each express-rate-limit code that the library logs itself', () => {
    const logged = new Set(files.flatMap(({ text }) => text.match(/\bERR_ERL_[A-Z0-9_]+/g) ?? []))
    expect(logged.size).toBeGreaterThan(0)
    for (const code of logged) expect(doc, `${code} is logged by the library`).toContain(`\`${code}\``)
  })

  it('would fail, naming the code, for a code the doc lacks and for one the source does not define', () => {
    const row = new RegExp('^\\| `ERR_REDIS_CLOSED` .*\\n', 'm')
    expect(row.test(doc)).toBe(true)
    const edited = `${doc.replace(row, '')}\n| \`ERR_RATE_LIMIT_RETIRED\` | gone | nothing |\n`
    expect(differences(defined, documentedCodes(edited))).toEqual([
      'ERR_RATE_LIMIT_RETIRED is listed in docs/errors.md:' +
        `${edited.split('\n').length - 1} but packages/*/src never defines it`,
      'ERR_REDIS_CLOSED is defined in packages/utils/src/rate-limiting/errors.ts but missing from docs/errors.md',
    ])
  })

  it('counts a code only where it is a whole string, not in a comment or inside a message', () => {
    const codes = definedCodes([
      {
        path: 'packages/x/src/a.ts',
        text: "// 'ERR_IN_COMMENT'\nconst a = 'ERR_IN_MESSAGE: details'\nclass E { readonly code = 'ERR_REAL' }",
      },
    ])
    expect(Object.fromEntries(codes)).toEqual({ ERR_REAL: ['packages/x/src/a.ts'] })
  })
})
