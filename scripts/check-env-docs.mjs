#!/usr/bin/env node
// CI check: docs/configuration.md lists exactly the environment variables that packages/*/src reads.
//
//   node scripts/check-env-docs.mjs [--root <dir>] [--doc <file>]
//
// Scans the TypeScript of packages/*/src with the TypeScript parser (not with regular
// expressions, so comments and strings never count) and names every variable read through:
//   process.env.NAME, process.env['NAME'], const { NAME } = process.env, an alias of process.env,
//   `import { env } from 'node:process'`, a parameter that receives the environment (env.NAME),
//   helpers that take a variable's name (value(env, 'NAME'), envFlag(env, 'NAME', ...)), helpers of
//   helpers, and names taken from a literal list (['A', 'B'].some((name) => process.env[name]),
//   for (const [name] of [['A', ...]]) envValue(env, name)).
// Any other use of the environment (a computed name it cannot resolve, the environment handed to a
// function outside the scan, spread or enumerated) is reported as an error: the check fails loudly
// rather than miss a variable. Dependencies that read a variable themselves are listed in
// DEPENDENCY_READS. Tests, bench/ and scripts/ are not scanned: see docs/configuration.md.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

import ts from 'typescript'

/** Variables read by a dependency the code imports, not by the code itself. */
export const DEPENDENCY_READS = Object.freeze({
  // createDebug('universo:rate-limit') prints trace output when DEBUG names the namespace.
  debug: Object.freeze(['DEBUG']),
  // Express sets app.get('env') from NODE_ENV (it picks its default error pages by it).
  express: Object.freeze(['NODE_ENV']),
})

/** The marker of a configuration.md section whose variables packages/*\/src does not read. */
export const OUTSIDE_SRC_MARKER = '<!-- check-env-docs: not read by packages/*/src -->'

const ARRAY_CALLBACK_METHODS = new Set(['some', 'every', 'map', 'forEach', 'filter', 'find', 'findIndex', 'flatMap'])
const VARIABLE_NAME = /^[A-Z][A-Z0-9_]*$/

/** Every .ts file (no .d.ts) under packages/<name>/src, as { path, text }, path relative to root. */
export function sourceFiles(root) {
  const files = []
  const walk = (dir) => {
    for (const entry of readdirSync(dir).sort()) {
      const path = join(dir, entry)
      if (statSync(path).isDirectory()) walk(path)
      else if (/\.(c|m)?ts$/.test(entry) && !/\.d\.(c|m)?ts$/.test(entry)) {
        files.push({ path: relative(root, path).split(sep).join('/'), text: readFileSync(path, 'utf8') })
      }
    }
  }
  const packages = join(root, 'packages')
  for (const name of readdirSync(packages).sort()) {
    const src = join(packages, name, 'src')
    if (statSync(join(packages, name)).isDirectory() && existsDir(src)) walk(src)
  }
  return files
}

function existsDir(path) {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

/**
 * The variables `files` read. Returns { reads: Map<name, string[] of places>, problems: string[] }:
 * each problem is a use of the environment whose variable the scan cannot name.
 */
export function findEnvReads(files) {
  const parsed = files.map(({ path, text }) => ({
    path,
    source: ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS),
  }))
  const functions = collectFunctions(parsed)
  // Facts that grow until nothing changes: parameters that receive the environment, and
  // parameters that receive a variable's name (the function is then a helper).
  const envParams = new Set()
  const nameParams = new Map()
  let result
  for (let round = 0; round < 20; round++) {
    const before = `${envParams.size}/${[...nameParams.values()].reduce((n, s) => n + s.size, 0)}`
    result = scan(parsed, functions, envParams, nameParams)
    const after = `${envParams.size}/${[...nameParams.values()].reduce((n, s) => n + s.size, 0)}`
    if (before === after) break
  }
  for (const { path, source } of parsed) {
    for (const statement of source.statements) {
      if (!ts.isImportDeclaration(statement) || !ts.isStringLiteral(statement.moduleSpecifier)) continue
      for (const name of DEPENDENCY_READS[statement.moduleSpecifier.text] ?? []) {
        addRead(result.reads, name, `${path} (imports ${statement.moduleSpecifier.text}, which reads it)`)
      }
    }
  }
  return result
}

function addRead(reads, name, where) {
  if (!reads.has(name)) reads.set(name, [])
  reads.get(name).push(where)
}

const where = (source, node) => {
  const { line, character } = source.getLineAndCharacterOfPosition(node.getStart(source))
  return `${source.fileName}:${line + 1}:${character + 1}`
}

/** Exported functions by name, so calls through imports can be followed. */
function collectFunctions(parsed) {
  const exported = new Map()
  for (const { path, source } of parsed) {
    const visit = (node) => {
      let name
      let fn
      if (ts.isFunctionDeclaration(node) && node.name !== undefined) {
        name = node.name.text
        fn = node
      } else if (
        ts.isVariableDeclaration(node) &&
        ts.isIdentifier(node.name) &&
        node.initializer !== undefined &&
        (ts.isArrowFunction(node.initializer) || ts.isFunctionExpression(node.initializer))
      ) {
        name = node.name.text
        fn = node.initializer
      }
      if (fn !== undefined) {
        const statement = ts.isFunctionDeclaration(node) ? node : node.parent?.parent
        const isExported = statement?.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)
        if (isExported) {
          if (!exported.has(name)) exported.set(name, [])
          exported.get(name).push({ path, fn })
        }
      }
      ts.forEachChild(node, visit)
    }
    visit(source)
  }
  return { exported }
}

const bindings = new WeakMap()

/** The declaration an identifier refers to, by walking out through the scopes around it. */
function bindingOf(identifier) {
  if (!bindings.has(identifier)) bindings.set(identifier, findBinding(identifier))
  return bindings.get(identifier)
}

function findBinding(identifier) {
  const name = identifier.text
  const inPattern = (pattern) => {
    if (ts.isIdentifier(pattern)) return pattern.text === name ? pattern.parent : undefined
    for (const element of pattern.elements) {
      if (ts.isOmittedExpression(element)) continue
      const found = inPattern(element.name)
      if (found !== undefined) return found
    }
    return undefined
  }
  const inStatements = (statements) => {
    for (const statement of statements) {
      if (ts.isVariableStatement(statement)) {
        for (const declaration of statement.declarationList.declarations) {
          const found = inPattern(declaration.name)
          if (found !== undefined) return found
        }
      } else if (ts.isFunctionDeclaration(statement) && statement.name?.text === name) {
        return statement
      } else if (ts.isImportDeclaration(statement)) {
        const bindings = statement.importClause?.namedBindings
        if (bindings !== undefined && ts.isNamedImports(bindings)) {
          const specifier = bindings.elements.find((element) => element.name.text === name)
          if (specifier !== undefined) return specifier
        }
        if (statement.importClause?.name?.text === name) return statement.importClause
      }
    }
    return undefined
  }
  for (let node = identifier.parent; node !== undefined; node = node.parent) {
    if (ts.isFunctionLike(node)) {
      for (const parameter of node.parameters ?? []) {
        const found = inPattern(parameter.name)
        if (found !== undefined) return found
      }
    }
    if ((ts.isForOfStatement(node) || ts.isForInStatement(node) || ts.isForStatement(node)) && node.initializer) {
      if (ts.isVariableDeclarationList(node.initializer)) {
        for (const declaration of node.initializer.declarations) {
          const found = inPattern(declaration.name)
          if (found !== undefined) return found
        }
      }
    }
    if (ts.isBlock(node) || ts.isSourceFile(node) || ts.isModuleBlock(node) || ts.isCaseClause(node)) {
      const found = inStatements(node.statements)
      if (found !== undefined) return found
    }
  }
  return undefined
}

const unwrap = (node) => {
  let inner = node
  while (
    ts.isParenthesizedExpression(inner) ||
    ts.isAsExpression(inner) ||
    ts.isSatisfiesExpression(inner) ||
    ts.isNonNullExpression(inner) ||
    ts.isTypeAssertionExpression(inner)
  ) {
    inner = inner.expression
  }
  return inner
}

const stringOf = (node) => {
  const inner = unwrap(node)
  return ts.isStringLiteral(inner) || ts.isNoSubstitutionTemplateLiteral(inner) ? inner.text : undefined
}

/** `process.env`, `process['env']` or `globalThis.process.env`. */
function isProcessEnv(node) {
  const inner = unwrap(node)
  const isProcess = (e) =>
    (ts.isIdentifier(e) && e.text === 'process') ||
    (ts.isPropertyAccessExpression(e) &&
      e.name.text === 'process' &&
      ts.isIdentifier(e.expression) &&
      e.expression.text === 'globalThis')
  if (ts.isPropertyAccessExpression(inner)) return inner.name.text === 'env' && isProcess(unwrap(inner.expression))
  if (ts.isElementAccessExpression(inner)) {
    return stringOf(inner.argumentExpression) === 'env' && isProcess(unwrap(inner.expression))
  }
  return false
}

/** The string values an identifier can only take: bound by iterating over a literal list of strings. */
function literalNames(identifier) {
  const binding = bindingOf(identifier)
  if (binding === undefined) return undefined
  // Position of the identifier inside array destructuring, e.g. [name, fix] -> 0.
  const path = []
  let node = binding
  while (ts.isBindingElement(node) && ts.isArrayBindingPattern(node.parent)) {
    path.unshift(node.parent.elements.indexOf(node))
    node = node.parent.parent
  }
  if (ts.isBindingElement(node)) return undefined
  let list
  if (
    ts.isVariableDeclaration(node) &&
    ts.isVariableDeclarationList(node.parent) &&
    ts.isForOfStatement(node.parent.parent)
  ) {
    list = unwrap(node.parent.parent.expression)
  } else if (ts.isParameter(node)) {
    const fn = node.parent
    const call = fn.parent
    if (
      (ts.isArrowFunction(fn) || ts.isFunctionExpression(fn)) &&
      fn.parameters[0] === node &&
      ts.isCallExpression(call) &&
      call.arguments[0] === fn &&
      ts.isPropertyAccessExpression(call.expression) &&
      ARRAY_CALLBACK_METHODS.has(call.expression.name.text)
    ) {
      list = unwrap(call.expression.expression)
    }
  }
  if (list === undefined || !ts.isArrayLiteralExpression(list)) return undefined
  const names = []
  for (const element of list.elements) {
    let item = unwrap(element)
    for (const index of path) {
      if (!ts.isArrayLiteralExpression(item) || item.elements[index] === undefined) return undefined
      item = unwrap(item.elements[index])
    }
    const text = stringOf(item)
    if (text === undefined) return undefined
    names.push(text)
  }
  return names
}

function scan(parsed, functions, envParams, nameParams) {
  const reads = new Map()
  const problems = []

  const functionFor = (path, callee) => {
    if (!ts.isIdentifier(callee)) return undefined
    const binding = bindingOf(callee)
    if (binding !== undefined && ts.isFunctionDeclaration(binding)) return binding
    if (binding !== undefined && ts.isVariableDeclaration(binding)) {
      const init = binding.initializer === undefined ? undefined : unwrap(binding.initializer)
      return init !== undefined && (ts.isArrowFunction(init) || ts.isFunctionExpression(init)) ? init : undefined
    }
    if (binding !== undefined && ts.isImportSpecifier(binding)) {
      const imported = (binding.propertyName ?? binding.name).text
      const candidates = functions.exported.get(imported) ?? []
      const module = binding.parent.parent.parent.moduleSpecifier.text
      if (module.startsWith('.')) {
        const target = join(dirname(path), module)
          .split(sep)
          .join('/')
          .replace(/\.(c|m)?js$/, '')
        const match = candidates.find((c) => c.path.replace(/\.(c|m)?ts$/, '') === target)
        if (match !== undefined) return match.fn
      }
      return candidates.length === 1 ? candidates[0].fn : undefined
    }
    return undefined
  }

  const isEnvParameter = (parameter) => {
    if (envParams.has(parameter)) return true
    if (ts.isIdentifier(parameter.name) && parameter.name.text === 'env') return true
    if (parameter.type !== undefined && /\b(Env|ProcessEnv)\b/.test(parameter.type.getText())) return true
    return parameter.initializer !== undefined && isProcessEnv(parameter.initializer)
  }

  /** True when `node` is the environment: process.env, or a name bound to it. */
  const isEnvObject = (node) => {
    const inner = unwrap(node)
    if (isProcessEnv(inner)) return true
    if (!ts.isIdentifier(inner)) return false
    const binding = bindingOf(inner)
    if (binding === undefined) return false
    if (ts.isParameter(binding)) return isEnvParameter(binding)
    if (ts.isVariableDeclaration(binding)) return binding.initializer !== undefined && isEnvObject(binding.initializer)
    if (ts.isBindingElement(binding)) {
      // const { env } = process
      const declaration = binding.parent.parent
      const key = binding.propertyName === undefined ? binding.name.getText() : binding.propertyName.getText()
      return (
        key === 'env' &&
        ts.isObjectBindingPattern(binding.parent) &&
        ts.isVariableDeclaration(declaration) &&
        declaration.initializer !== undefined &&
        ts.isIdentifier(unwrap(declaration.initializer)) &&
        unwrap(declaration.initializer).text === 'process'
      )
    }
    if (ts.isImportSpecifier(binding)) {
      const module = binding.parent.parent.parent.moduleSpecifier.text
      return (
        (binding.propertyName ?? binding.name).text === 'env' && (module === 'process' || module === 'node:process')
      )
    }
    return false
  }

  /** A variable's name given as `node`: a literal, a helper's own parameter, or a literal list. */
  const nameFrom = (source, node, context) => {
    const text = stringOf(node)
    if (text !== undefined) return { names: [text] }
    const inner = unwrap(node)
    if (ts.isIdentifier(inner)) {
      const names = literalNames(inner)
      if (names !== undefined) return { names }
      // The function's own parameter: it is a helper, and its callers name the variable.
      const binding = bindingOf(inner)
      if (binding !== undefined && ts.isParameter(binding)) {
        const fn = binding.parent
        if (!nameParams.has(fn)) nameParams.set(fn, new Set())
        nameParams.get(fn).add(fn.parameters.indexOf(binding))
        return { names: [] }
      }
    }
    problems.push(`${where(source, node)}: cannot name the variable in ${context}`)
    return { names: [] }
  }

  for (const { path, source } of parsed) {
    const visit = (node) => {
      // Calls of helpers that take a variable's name.
      if (ts.isCallExpression(node)) {
        const fn = functionFor(path, node.expression)
        for (const index of (fn && nameParams.get(fn)) ?? []) {
          const argument = node.arguments[index]
          if (argument === undefined) continue
          for (const name of nameFrom(source, argument, node.getText(source)).names) {
            addRead(reads, name, where(source, argument))
          }
        }
      }
      if (isEnvReference(node) && isEnvObject(node)) classify(path, source, node)
      ts.forEachChild(node, visit)
    }
    visit(source)
  }

  /** One use of the environment: a read we can name, a hand-over we can follow, or a problem. */
  function classify(path, source, node) {
    let use = node
    while (use.parent !== undefined && unwrap(use.parent) === node) use = use.parent
    const parent = use.parent
    const fail = (why) => problems.push(`${where(source, node)}: ${why}: ${parent.getText(source).slice(0, 120)}`)
    const written = (access) => {
      const up = access.parent
      return (
        (ts.isBinaryExpression(up) &&
          up.left === access &&
          up.operatorToken.kind >= ts.SyntaxKind.FirstAssignment &&
          up.operatorToken.kind <= ts.SyntaxKind.LastAssignment) ||
        ts.isDeleteExpression(up) ||
        ((ts.isPrefixUnaryExpression(up) || ts.isPostfixUnaryExpression(up)) &&
          (up.operator === ts.SyntaxKind.PlusPlusToken || up.operator === ts.SyntaxKind.MinusMinusToken))
      )
    }
    if (ts.isPropertyAccessExpression(parent) && parent.expression === use) {
      if (written(parent)) return fail('writes the environment')
      // env.REDIS_PASSWORD; methods of the object itself (env.hasOwnProperty) are not variables.
      if (VARIABLE_NAME.test(parent.name.text) || !(parent.name.text in Object.prototype)) {
        return addRead(reads, parent.name.text, where(source, parent.name))
      }
      return fail('uses the environment in a way the check cannot follow')
    }
    if (ts.isElementAccessExpression(parent) && parent.expression === use) {
      if (written(parent)) return fail('writes the environment')
      for (const name of nameFrom(source, parent.argumentExpression, parent.getText(source)).names) {
        addRead(reads, name, where(source, parent.argumentExpression))
      }
      return
    }
    if (ts.isCallExpression(parent) && parent.arguments.includes(use)) {
      const fn = functionFor(path, parent.expression)
      const index = parent.arguments.indexOf(use)
      const parameter = fn?.parameters[index]
      if (parameter === undefined || parameter.dotDotDotToken !== undefined) {
        return fail('hands the environment to a function outside the scan')
      }
      envParams.add(parameter)
      return
    }
    if (ts.isParameter(parent) && parent.initializer === use) return
    if (ts.isVariableDeclaration(parent) && parent.initializer === use) {
      if (ts.isIdentifier(parent.name)) return // an alias: its own uses are classified
      if (ts.isObjectBindingPattern(parent.name)) {
        for (const element of parent.name.elements) {
          const key = element.propertyName ?? element.name
          const text = ts.isIdentifier(key) || ts.isStringLiteral(key) ? key.text : undefined
          if (element.dotDotDotToken !== undefined || text === undefined) {
            fail('takes a rest or computed part of the environment')
          } else {
            addRead(reads, text, where(source, key))
          }
        }
        return
      }
    }
    fail('uses the environment in a way the check cannot follow')
  }

  return { reads, problems }
}

/** Nodes that may stand for the environment: identifiers in expression position and process.env. */
function isEnvReference(node) {
  if (isProcessEnv(node)) {
    // Only the outer node of `globalThis.process.env`, and not `process.env` inside `process['env']`.
    return !(node.parent && isProcessEnv(node.parent))
  }
  if (!ts.isIdentifier(node)) return false
  const parent = node.parent
  if (parent === undefined) return false
  if (ts.isPropertyAccessExpression(parent) && parent.name === node) return false
  if (ts.isPropertyAssignment(parent) && parent.name === node) return false
  if (ts.isBindingElement(parent) && (parent.name === node || parent.propertyName === node)) return false
  if (
    (ts.isParameter(parent) ||
      ts.isVariableDeclaration(parent) ||
      ts.isFunctionDeclaration(parent) ||
      ts.isImportSpecifier(parent) ||
      ts.isImportClause(parent) ||
      ts.isPropertyDeclaration(parent) ||
      ts.isPropertySignature(parent) ||
      ts.isMethodDeclaration(parent) ||
      ts.isTypeReferenceNode(parent) ||
      ts.isQualifiedName(parent)) &&
    parent.name === node
  ) {
    return false
  }
  if (ts.isTypeReferenceNode(parent) || ts.isQualifiedName(parent) || ts.isTypeQueryNode(parent)) return false
  return node.text !== 'process'
}

/**
 * The variables configuration.md documents: the backticked UPPER_CASE names in the first column
 * of its tables. Returns { checked, outsideSrc }: Maps of name to line number; a section whose
 * text holds OUTSIDE_SRC_MARKER goes to outsideSrc. `duplicates` lists names given twice.
 */
export function documentedVariables(markdown) {
  const checked = new Map()
  const outsideSrc = new Map()
  const duplicates = []
  const lines = markdown.split('\n')
  let outside = false
  lines.forEach((line, index) => {
    if (/^#{1,6} /.test(line)) outside = false
    if (line.includes(OUTSIDE_SRC_MARKER)) outside = true
    if (!line.startsWith('|') || /^\|\s*-/.test(line)) return
    const firstCell = line.split('|')[1] ?? ''
    for (const [, name] of firstCell.matchAll(/`([A-Za-z0-9_]+)`/g)) {
      if (!VARIABLE_NAME.test(name)) continue
      const target = outside ? outsideSrc : checked
      if (checked.has(name) || outsideSrc.has(name)) duplicates.push(name)
      target.set(name, index + 1)
    }
  })
  return { checked, outsideSrc, duplicates }
}

/**
 * Compares what the code reads with what the doc lists. `outsideReads` (optional) is what tests,
 * bench/ and scripts/ read: every variable of the outside-src section must be read there.
 */
export function compareEnvDocs({ reads, problems = [] }, documented, outsideReads, docName = 'docs/configuration.md') {
  const errors = [...problems.map((p) => `cannot name an environment read: ${p}`)]
  for (const [name, places] of [...reads].sort(([a], [b]) => a.localeCompare(b))) {
    if (documented.outsideSrc.has(name)) {
      errors.push(
        `${name} is read by the code (${places[0]}) but ${docName}:${documented.outsideSrc.get(name)} lists it as not read by packages/*/src`,
      )
    } else if (!documented.checked.has(name)) {
      errors.push(`${name} is read (${places.join(', ')}) but missing from ${docName}`)
    }
  }
  for (const [name, line] of [...documented.checked].sort(([a], [b]) => a.localeCompare(b))) {
    if (!reads.has(name)) errors.push(`${name} is listed in ${docName}:${line} but the code never reads it`)
  }
  if (outsideReads !== undefined) {
    for (const [name, line] of documented.outsideSrc) {
      if (!outsideReads.has(name)) {
        errors.push(`${name} is listed in ${docName}:${line} as read by tests or tools, but nothing reads it`)
      }
    }
  }
  for (const name of documented.duplicates) errors.push(`${name} is listed more than once in ${docName}`)
  return errors
}

/** Files outside packages/*\/src that may read variables: tests, bench/, scripts/ (JS and TS). */
export function toolFiles(root) {
  const files = []
  const walk = (dir) => {
    for (const entry of readdirSync(dir).sort()) {
      if (entry === 'node_modules' || entry === 'dist' || entry.startsWith('.')) continue
      const path = join(dir, entry)
      if (statSync(path).isDirectory()) walk(path)
      else if (/\.(c|m)?(t|j)s$/.test(entry) && !/\.d\.(c|m)?ts$/.test(entry)) {
        files.push({ path: relative(root, path).split(sep).join('/'), text: readFileSync(path, 'utf8') })
      }
    }
  }
  for (const dir of ['bench', 'scripts']) if (existsDir(join(root, dir))) walk(join(root, dir))
  const packages = join(root, 'packages')
  for (const name of readdirSync(packages)) {
    if (existsDir(join(packages, name, 'test'))) walk(join(packages, name, 'test'))
  }
  return files
}

/**
 * The whole check. `sources` (default: packages/*\/src under root) and `doc` (default: the text of
 * docs/configuration.md) can be given, so a test can prove that the check fails.
 * Returns { ok, errors, reads, documented }.
 */
export function checkEnvDocs({ root = REPO_ROOT, sources, doc, tools } = {}) {
  const found = findEnvReads(sources ?? sourceFiles(root))
  const documented = documentedVariables(doc ?? readFileSync(join(root, 'docs', 'configuration.md'), 'utf8'))
  const outside = findEnvReads(tools ?? toolFiles(root)).reads
  const errors = compareEnvDocs(found, documented, outside)
  return { ok: errors.length === 0, errors, reads: found.reads, documented }
}

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

function main(argv) {
  const option = (flag) => {
    const index = argv.indexOf(flag)
    return index === -1 ? undefined : argv[index + 1]
  }
  const root = resolve(option('--root') ?? REPO_ROOT)
  const docPath = option('--doc')
  const result = checkEnvDocs({ root, doc: docPath === undefined ? undefined : readFileSync(docPath, 'utf8') })
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
