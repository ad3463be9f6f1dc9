// What a docs page shows, for tests to run and compare: its marked examples and expected outputs,
// and a reverse proxy that appends to X-Forwarded-For (examples run with server-process.ts's spawnWatched).
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'

import { REPO_ROOT } from './server-process.js'

/**
 * The fenced block after `<!-- example: id -->` or `<!-- output: id -->` in docs/<page>. A block
 * named in a test but missing from the page fails the test.
 */
export function docBlock(page: string, kind: 'example' | 'output', id: string): string {
  const text = readFileSync(join(REPO_ROOT, 'docs', page), 'utf8')
  const marker = `<!-- ${kind}: ${id} -->`
  const at = text.indexOf(marker)
  if (at === -1) throw new Error(`docs/${page} has no ${marker}`)
  // The block may be indented (inside a list item): its lines lose that indentation.
  const block = /^( *)```[a-z]*\n([\s\S]*?)\n\1```/m.exec(text.slice(at + marker.length))
  if (block?.[2] === undefined) throw new Error(`docs/${page}: no fenced block after ${marker}`)
  const indent = block[1] ?? ''
  return block[2]
    .split('\n')
    .map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line))
    .join('\n')
}

/** The lines of an output block. */
export const docLines = (page: string, id: string): string[] => docBlock(page, 'output', id).split('\n')

/** The lines of an output block without its `$ command` lines: what the commands print. */
export const docOutput = (page: string, id: string): string[] =>
  docLines(page, id).filter((line) => !line.startsWith('$ '))

/**
 * True when `expected` appears in `actual` in order, other lines allowed in between: for output
 * whose interleaving depends on timing (reconnect attempts) or that holds paths (stack traces).
 */
export function inOrder(actual: readonly string[], expected: readonly string[]): boolean {
  let next = 0
  for (const line of actual) if (next < expected.length && line === expected[next]) next++
  return next === expected.length
}

/** Replaces each key of `values` by its value: real ports and pids by the ones the docs show. */
export function normalize(text: string, values: Readonly<Record<string, string>>): string {
  let out = text
  for (const [from, to] of Object.entries(values)) out = out.split(from).join(to)
  return out
    .replace(/\(pid \d+\)/g, '(pid 1234)')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, '2026-11-27T08:00:00.000Z')
}

export interface Reply {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

/**
 * A GET from a given loopback source address (127.0.0.2, 127.0.0.3, ...), so that one test can
 * play several clients with their own IPs.
 */
export function getFrom(localAddress: string, url: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { localAddress, headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

export interface Proxy {
  readonly base: string
  close(): Promise<void>
}

/**
 * A reverse proxy in front of `target` (a port on 127.0.0.1), doing what nginx's
 * `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for` does: it appends the address that
 * connected to it to whatever X-Forwarded-For the client sent.
 */
export function startProxy(target: number): Promise<Proxy> {
  const server: Server = createServer((req, res) => {
    const forwarded = [req.headers['x-forwarded-for'], req.socket.remoteAddress].filter(Boolean).join(', ')
    const upstream = request(
      {
        host: '127.0.0.1',
        port: target,
        path: req.url,
        method: req.method,
        headers: { ...req.headers, 'x-forwarded-for': forwarded },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      },
    )
    upstream.on('error', () => {
      res.writeHead(502)
      res.end()
    })
    req.pipe(upstream)
  })
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      resolve({
        base: `http://127.0.0.1:${port}`,
        close: () => new Promise((done) => server.close(() => done())),
      })
    })
  })
}

export interface ConsoleRun {
  /** The block's output lines, as the page shows them (the `$ ` command lines left out). */
  readonly expected: string[]
  /** What the commands printed, stdout and stderr together as a terminal shows them, normalized. */
  readonly actual: string[]
}

/**
 * Runs each `$ command` line of the output block `id` with bash, as a user would paste it, and
 * collects what each printed. In commands, each key of `commands` is replaced by its value (the
 * page's ports by the real ones); in what they print, each key of `values` (the real ports by the
 * page's), as normalize() does.
 */
export function runConsoleBlock(
  page: string,
  id: string,
  options: {
    cwd: string
    env?: Record<string, string>
    commands?: Readonly<Record<string, string>>
    values?: Readonly<Record<string, string>>
  },
): ConsoleRun {
  const expected: string[] = []
  const actual: string[] = []
  for (const line of docLines(page, id)) {
    if (!line.startsWith('$ ')) {
      expected.push(line)
      continue
    }
    let command = line.slice(2)
    for (const [from, to] of Object.entries(options.commands ?? {})) command = command.split(from).join(to)
    const run = spawnSync('bash', ['-c', `{\n${command}\n} 2>&1`], {
      cwd: options.cwd,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...options.env },
      encoding: 'utf8',
    })
    const printed = normalize(run.stdout, options.values ?? {}).replace(/\n+$/, '')
    if (printed !== '') actual.push(...printed.split('\n'))
  }
  return { expected, actual }
}
