#!/usr/bin/env node
// CI check: docs/configuration.md lists exactly the environment variables that packages/*/src reads.
//
//   node scripts/check-env-docs.mjs [--root <dir>] [--doc <file>]
//
// ESLint (eslint.config.js) lets only ENV_MODULES, the env parsers, touch the environment, and only
// as `process.env`. So this script parses just those modules (with the TypeScript parser: comments
// and strings never count) and names the variables they read. Inside them the environment is
// `process.env` or a parameter called `env`; a variable's name is a literal, an element of a literal
// list, or the `name` parameter of a helper (a function with `env` and `name` parameters), whose
// callers then name it; or `spec.env.name`, where the option schema (config/schema.ts) declares
// each variable as `env: 'NAME'`, a declaration counted as a read. Any other use of the environment is reported as a problem: the check fails
// loudly rather than miss a variable. Variables that dependencies read are in DEPENDENCY_READS.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

import ts from 'typescript'

/** The only files of packages/*\/src allowed to read the environment (eslint.config.js enforces it). */
export const ENV_MODULES = Object.freeze([
  'packages/server/src/config.ts',
  'packages/utils/src/rate-limiting/config/env.ts',
  'packages/utils/src/rate-limiting/config/schema.ts',
  'packages/utils/src/rate-limiting/config/env-values.ts',
  'packages/utils/src/rate-limiting/redis/topology.ts',
  'packages/utils/src/rate-limiting/redis/connection.ts',
])

/** Variables read by a dependency that packages/*\/src imports (not type-only), not by the code itself. */
export const DEPENDENCY_READS = Object.freeze({
  // createDebug('universo:rate-limit'): DEBUG picks the namespaces; every DEBUG_<OPTION> is handed
  // to util.inspect, and these four are the ones debug documents.
  debug: Object.freeze(['DEBUG', 'DEBUG_COLORS', 'DEBUG_DEPTH', 'DEBUG_HIDE_DATE', 'DEBUG_SHOW_HIDDEN']),
  // Express sets app.get('env') from NODE_ENV (it picks its default error pages by it).
  express: Object.freeze(['NODE_ENV']),
})

/** The marker of a configuration.md section whose variables packages/*\/src does not read. */
export const OUTSIDE_SRC_MARKER = '<!-- check-env-docs: not read by packages/*/src -->'

const VARIABLE_NAME = /^[A-Z][A-Z0-9_]*$/
const ARRAY_CALLBACKS = new Set(['some', 'every', 'map', 'forEach', 'filter', 'find', 'findIndex', 'flatMap'])
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

const unwrap = (node) => {
  while (ts.isParenthesizedExpression(node) || ts.isAsExpression(node) || ts.isNonNullExpression(node)) {
    node = node.expression
  }
  return node
}
const stringOf = (node) =>
  ts.isStringLiteral(unwrap(node)) || ts.isNoSubstitutionTemplateLiteral(unwrap(node)) ? unwrap(node).text : undefined
const paramNames = (fn) => fn.parameters.map((p) => (ts.isIdentifier(p.name) ? p.name.text : undefined))
const isHelper = (fn) => paramNames(fn).includes('env') && paramNames(fn).includes('name')

/** `process.env` or `process['env']`. */
const isProcessEnv = (node) =>
  (ts.isPropertyAccessExpression(node) || ts.isElementAccessExpression(node)) &&
  ts.isIdentifier(unwrap(node.expression)) &&
  unwrap(node.expression).text === 'process' &&
  (ts.isPropertyAccessExpression(node) ? node.name.text : stringOf(node.argumentExpression)) === 'env'

/** An `env` identifier used as a value: not a declaration's or property's name, not in a type. */
const isEnvIdentifier = (node) =>
  ts.isIdentifier(node) &&
  node.text === 'env' &&
  !ts.isPartOfTypeNode(node) &&
  node.parent.propertyName !== node &&
  (ts.getNameOfDeclaration(node.parent) !== node || ts.isShorthandPropertyAssignment(node.parent)) &&
  !(ts.isPropertyAccessExpression(node.parent) && node.parent.name === node)

/** The strings of a literal list, each taken at `index` when its elements are tuples; else undefined. */
function listNames(list, index) {
  list = unwrap(list)
  if (!ts.isArrayLiteralExpression(list)) return undefined
  const names = list.elements.map((e) => {
    const item = index === undefined ? e : ts.isArrayLiteralExpression(unwrap(e)) && unwrap(e).elements[index]
    return item ? stringOf(item) : undefined
  })
  return names.includes(undefined) ? undefined : names
}

/** True when `pattern` (a name, a binding element or an array/object pattern) declares `name`. */
const declares = (pattern, name) => {
  if (ts.isOmittedExpression(pattern)) return false
  if (ts.isBindingElement(pattern)) return declares(pattern.name, name)
  return ts.isIdentifier(pattern) ? pattern.text === name : pattern.elements.some((e) => declares(e, name))
}

/**
 * The variables an expression that names one stands for: a literal; an element of a literal list
 * that for-of or an array callback binds it to; or [] for a helper's own `name` (its callers name
 * it). undefined when it cannot tell.
 */
function namesOf(expression) {
  if (stringOf(expression) !== undefined) return [stringOf(expression)]
  const id = unwrap(expression)
  for (let node = id.parent; ts.isIdentifier(id) && node !== undefined; node = node.parent) {
    if (ts.isForOfStatement(node) && ts.isVariableDeclarationList(node.initializer)) {
      const pattern = node.initializer.declarations[0].name
      if (ts.isIdentifier(pattern) && pattern.text === id.text) return listNames(node.expression)
      const index = ts.isArrayBindingPattern(pattern) ? pattern.elements.findIndex((e) => declares(e, id.text)) : -1
      if (index !== -1) return listNames(node.expression, index)
    }
    if (ts.isFunctionLike(node) && node.parameters.some((p) => declares(p.name, id.text))) {
      const call = node.parent
      const callback =
        declares(node.parameters[0].name, id.text) &&
        ts.isCallExpression(call) &&
        call.arguments[0] === node &&
        ts.isPropertyAccessExpression(call.expression) &&
        ARRAY_CALLBACKS.has(call.expression.name.text)
      if (callback) return listNames(call.expression.expression)
      return id.text === 'name' && isHelper(node) ? [] : undefined
    }
  }
  return undefined
}

/** `<spec>.env.name`: the variable an option of the schema declares. */
const isDeclaredName = (expression) => {
  const node = unwrap(expression)
  return (
    ts.isPropertyAccessExpression(node) &&
    node.name.text === 'name' &&
    ts.isPropertyAccessExpression(unwrap(node.expression)) &&
    unwrap(node.expression).name.text === 'env'
  )
}

/** Functions (declarations and `const f = (...) =>`) of the env modules, by name. */
function functionsOf(sources) {
  const functions = new Map()
  const visit = (node) => {
    const init = ts.isVariableDeclaration(node) && node.initializer ? unwrap(node.initializer) : undefined
    const fn = init && (ts.isArrowFunction(init) || ts.isFunctionExpression(init)) ? init : node
    if ((fn !== node || ts.isFunctionDeclaration(node)) && node.name && ts.isIdentifier(node.name)) {
      functions.set(node.name.text, [...(functions.get(node.name.text) ?? []), fn])
    }
    ts.forEachChild(node, visit)
  }
  sources.forEach(visit)
  return functions
}

/** The variables `modules` (the env modules, as { path, text }) read: { reads: Map<name, places>, problems }. */
export function findEnvReads(modules) {
  const sources = modules.map(({ path, text }) => ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true))
  const functions = functionsOf(sources)
  const reads = new Map()
  const problems = []
  for (const source of sources) {
    const where = (node) => {
      const { line, character } = source.getLineAndCharacterOfPosition(node.getStart(source))
      return `${source.fileName}:${line + 1}:${character + 1}`
    }
    const fail = (node, why) => problems.push(`${where(node)}: ${why}: ${node.getText(source).slice(0, 120)}`)
    const add = (name, place) => reads.set(name, [...(reads.get(name) ?? []), place])
    const read = (node, expression) => {
      // `spec.env.name`: a variable the option schema declares with `env: 'NAME'` (added below).
      if (isDeclaredName(expression)) return
      const names = namesOf(expression)
      if (names === undefined) return fail(node, 'cannot name the variable')
      for (const name of names) add(name, where(expression))
    }
    /** One use of the environment: a read it can name, a hand-over to an env module's function, or a problem. */
    const classify = (node) => {
      let use = node
      while (unwrap(use.parent) === node) use = use.parent
      const parent = use.parent
      if (
        (ts.isPropertyAccessExpression(parent) || ts.isElementAccessExpression(parent)) &&
        parent.expression === use
      ) {
        if (ts.isElementAccessExpression(parent)) return read(parent, parent.argumentExpression)
        if (VARIABLE_NAME.test(parent.name.text)) return add(parent.name.text, where(parent.name))
      } else if (ts.isCallExpression(parent) && parent.arguments.includes(use)) {
        const index = parent.arguments.indexOf(use)
        const callees = ts.isIdentifier(parent.expression) ? (functions.get(parent.expression.text) ?? []) : []
        if (callees.length > 0 && callees.every((fn) => paramNames(fn)[index] === 'env')) return
        return fail(parent, 'hands the environment to what is not an `env` parameter of an env module function')
      } else if (ts.isParameter(parent) && parent.initializer === use && parent.name.getText() === 'env') {
        // A helper called from outside the env modules would read a name the scan never sees.
        if (!isHelper(parent.parent)) return
        return fail(parent.parent, 'a helper must take the environment from its caller, not default to it')
      }
      fail(parent, 'uses the environment in a way the check cannot follow')
    }
    const visit = (node) => {
      if (isProcessEnv(node) || isEnvIdentifier(node)) classify(node)
      // An option of the schema that a variable sets: `env: 'NAME'`.
      if (ts.isPropertyAssignment(node) && node.name.getText(source) === 'env') {
        const name = stringOf(node.initializer)
        if (name !== undefined && VARIABLE_NAME.test(name)) add(name, where(node.initializer))
      }
      // A helper's call: its `name` argument names the variable.
      if (ts.isCallExpression(node) && ts.isIdentifier(node.expression)) {
        const at = new Set(
          (functions.get(node.expression.text) ?? []).filter(isHelper).map((fn) => paramNames(fn).indexOf('name')),
        )
        if (at.size > 1) fail(node, 'helpers of this name take the variable name in different places')
        else if (at.size === 1 && node.arguments[[...at][0]] !== undefined) read(node, node.arguments[[...at][0]])
      }
      ts.forEachChild(node, visit)
    }
    visit(source)
  }
  return { reads, problems }
}

/** Variables read by the dependencies that `files` import with a value import. */
export function dependencyReads(files) {
  const reads = new Map()
  for (const { path, text } of files) {
    for (const statement of ts.createSourceFile(path, text, ts.ScriptTarget.Latest).statements) {
      if (!ts.isImportDeclaration(statement) || statement.importClause?.isTypeOnly) continue
      const module = statement.moduleSpecifier.text
      for (const name of DEPENDENCY_READS[module] ?? []) {
        reads.set(name, [...(reads.get(name) ?? []), `${path} (imports ${module}, which reads it)`])
      }
    }
  }
  return reads
}

/**
 * The variables configuration.md documents: the backticked UPPER_CASE names in the first column of
 * its tables. { checked, outsideSrc, duplicates }: Maps of name to line; a section holding
 * OUTSIDE_SRC_MARKER goes to outsideSrc.
 */
export function documentedVariables(markdown) {
  const checked = new Map()
  const outsideSrc = new Map()
  const duplicates = []
  let outside = false
  markdown.split('\n').forEach((line, index) => {
    if (/^#{1,6} /.test(line)) outside = false
    if (line.includes(OUTSIDE_SRC_MARKER)) outside = true
    if (!line.startsWith('|') || /^\|\s*-/.test(line)) return
    for (const [, name] of (line.split('|')[1] ?? '').matchAll(/`([A-Z][A-Z0-9_]*)`/g)) {
      if (checked.has(name) || outsideSrc.has(name)) duplicates.push(name)
      ;(outside ? outsideSrc : checked).set(name, index + 1)
    }
  })
  return { checked, outsideSrc, duplicates }
}

/**
 * What the code reads ({ reads, problems }) against what the doc lists, as messages. `outsideReads`
 * (a Set): what tests, bench/ and scripts/ read; each variable of the outside-src section must be one.
 */
export function compareEnvDocs({ reads, problems }, documented, outsideReads, doc = 'docs/configuration.md') {
  const errors = problems.map((problem) => `cannot name an environment read: ${problem}`)
  for (const [name, places] of [...reads].sort(([a], [b]) => a.localeCompare(b))) {
    if (documented.outsideSrc.has(name)) {
      errors.push(
        `${name} is read by the code (${places[0]}) but ${doc}:${documented.outsideSrc.get(name)} lists it as not read by packages/*/src`,
      )
    } else if (!documented.checked.has(name)) {
      errors.push(`${name} is read (${places.join(', ')}) but missing from ${doc}`)
    }
  }
  for (const [name, line] of [...documented.checked].sort(([a], [b]) => a.localeCompare(b))) {
    if (!reads.has(name)) errors.push(`${name} is listed in ${doc}:${line} but the code never reads it`)
  }
  for (const [name, line] of documented.outsideSrc) {
    if (!outsideReads.has(name))
      errors.push(`${name} is listed in ${doc}:${line} as read by tests or tools, but nothing reads it`)
  }
  for (const name of documented.duplicates) errors.push(`${name} is listed more than once in ${doc}`)
  return errors
}

/** Every .ts/.js file under `dirs` (no .d.ts, node_modules or dist), as { path, text }, path relative to root. */
function filesUnder(root, dirs) {
  const walk = (dir) =>
    readdirSync(dir)
      .sort()
      .filter((entry) => !['node_modules', 'dist'].includes(entry) && !entry.startsWith('.'))
      .flatMap((entry) => {
        const path = join(dir, entry)
        if (statSync(path).isDirectory()) return walk(path)
        const wanted = /\.(c|m)?[jt]s$/.test(entry) && !/\.d\.(c|m)?ts$/.test(entry)
        return wanted ? [{ path: relative(root, path).split(sep).join('/'), text: readFileSync(path, 'utf8') }] : []
      })
  return dirs.filter((dir) => existsSync(join(root, dir))).flatMap((dir) => walk(join(root, dir)))
}

/** The variables tests, bench/ and scripts/ read as `process.env.NAME` or `process.env['NAME']`. */
export const toolReads = (files) =>
  new Set(
    files.flatMap(({ text }) => [...text.matchAll(/process\.env(?:\.|\[['"])([A-Z][A-Z0-9_]*)\b/g)].map((m) => m[1])),
  )

/**
 * The whole check, on the repository under `root`. A test can give `modules` (the env modules),
 * `sources` (every file of packages/*\/src, for their imports), `doc` and `tools` instead, to prove
 * that the check fails. Returns { ok, errors, reads, documented }. A missing env module throws.
 */
export function checkEnvDocs({ root = REPO_ROOT, modules, sources, doc, tools } = {}) {
  const packages = (sub) => readdirSync(join(root, 'packages')).map((name) => `packages/${name}/${sub}`)
  const found = findEnvReads(
    modules ?? ENV_MODULES.map((path) => ({ path, text: readFileSync(join(root, path), 'utf8') })),
  )
  for (const [name, places] of dependencyReads(sources ?? filesUnder(root, packages('src')))) {
    found.reads.set(name, [...(found.reads.get(name) ?? []), ...places])
  }
  const documented = documentedVariables(doc ?? readFileSync(join(root, 'docs', 'configuration.md'), 'utf8'))
  const outside = toolReads(tools ?? filesUnder(root, ['bench', 'scripts', ...packages('test')]))
  const errors = compareEnvDocs(found, documented, outside)
  return { ok: errors.length === 0, errors, reads: found.reads, documented }
}

function main(argv) {
  const option = (flag) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : undefined)
  const docPath = option('--doc')
  const result = checkEnvDocs({
    root: resolve(option('--root') ?? REPO_ROOT),
    doc: docPath === undefined ? undefined : readFileSync(docPath, 'utf8'),
  })
  if (result.ok) {
    console.log(
      `check-env-docs: docs/configuration.md lists exactly the ${result.reads.size} environment variables packages/*/src reads`,
    )
    return 0
  }
  console.error('check-env-docs: docs/configuration.md does not match the environment variables packages/*/src reads')
  for (const error of result.errors) console.error(`  ${error}`)
  return 1
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2))
}
