// Runs the built server (dist/main.js) as a real process on a free port, and watches its output.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { freePort } from '../../../../utils/test/support/ports.js'

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', '..')
export const MAIN = join(REPO_ROOT, 'packages', 'server', 'dist', 'main.js')

export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/** A process a test started, with its output watched. */
export interface WatchedProcess {
  readonly child: ChildProcess
  /** stdout and stderr, interleaved as they arrived. */
  output(): string
  /** Resolves when the output matches; rejects if the process exits first or after `timeoutMs`. */
  waitForOutput(pattern: string | RegExp, timeoutMs?: number): Promise<void>
  readonly exited: Promise<Exit>
  /** SIGTERM, and SIGKILL if it has not exited after 10 s. Our own process, by pid. */
  stop(): Promise<Exit>
}

export interface ServerProcess extends WatchedProcess {
  readonly port: number
  readonly pid: number
  readonly base: string
  /** Each log line's message (`msg` of pino's JSON; a line that is not JSON, as is). */
  lines(): string[]
  /** Each JSON log line, parsed. */
  records(): LogRecord[]
}

/** One of pino's JSON lines. */
export interface LogRecord {
  readonly level: string
  readonly msg: string
  readonly [field: string]: unknown
}

function parseLine(line: string): LogRecord | undefined {
  try {
    const parsed: unknown = JSON.parse(line)
    if (typeof parsed === 'object' && parsed !== null && typeof (parsed as LogRecord).msg === 'string') {
      return parsed as LogRecord
    }
  } catch {
    // Not JSON: a crash trace, say.
  }
  return undefined
}

export interface SpawnOptions {
  readonly cwd?: string
  /** Added to PATH and HOME, the only variables taken from this environment. */
  readonly env?: Record<string, string>
  /** Written to the process's stdin, which is then closed. */
  readonly stdin?: string
  /** Run as this user (the test must be root to switch). */
  readonly uid?: number
  readonly gid?: number
}

/**
 * Runs a command with only PATH and HOME from this environment plus `env`, so a REDIS_URL or
 * NODE_ENV of the machine never leaks into a test, and watches its output.
 */
export function spawnWatched(command: string, args: readonly string[], options: SpawnOptions = {}): WatchedProcess {
  const child = spawn(command, args, {
    cwd: options.cwd ?? REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...options.env },
    stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.gid ?? options.uid }),
  })
  if (options.stdin !== undefined) child.stdin?.end(options.stdin)
  let output = ''
  const listeners = new Set<() => void>()
  const onData = (chunk: Buffer): void => {
    output += chunk.toString()
    for (const listener of listeners) listener()
  }
  child.stdout?.on('data', onData)
  child.stderr?.on('data', onData)
  let done = false
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true
      resolve({ code, signal })
      for (const listener of listeners) listener()
    })
  })

  const waitForOutput = (pattern: string | RegExp, timeoutMs = 15_000): Promise<void> =>
    new Promise((resolve, reject) => {
      const matches = (): boolean => (typeof pattern === 'string' ? output.includes(pattern) : pattern.test(output))
      const timer = setTimeout(
        () => finish(new Error(`timed out waiting for ${String(pattern)} in:\n${output}`)),
        timeoutMs,
      )
      const check = (): void => {
        if (matches()) finish()
        else if (done) finish(new Error(`process exited before ${String(pattern)}:\n${output}`))
      }
      const finish = (error?: Error): void => {
        clearTimeout(timer)
        listeners.delete(check)
        if (error) reject(error)
        else resolve()
      }
      listeners.add(check)
      check()
    })

  return {
    child,
    output: () => output,
    waitForOutput,
    exited,
    async stop() {
      if (!done) {
        child.kill('SIGTERM')
        const force = setTimeout(() => child.kill('SIGKILL'), 10_000)
        await exited
        clearTimeout(force)
      }
      return exited
    },
  }
}

export interface StartOptions {
  /** What to run instead of `node dist/main.js`, e.g. ['pnpm', 'start'] from the repo root. */
  readonly command?: readonly [string, ...string[]]
  /** Wait until the server says it listens. @default true */
  readonly waitForListening?: boolean
  readonly port?: number
}

/** Starts the server (see spawnWatched for its environment) on a free port, or `options.port`. */
export async function startServer(
  env: Record<string, string> = {},
  options: StartOptions = {},
): Promise<ServerProcess> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run pnpm build first (pnpm test does)`)
  // A port freePort found free may be taken before the server binds it: by another test's server,
  // or as the local port of any outgoing connection, which the OS picks from the same range. The
  // server then exits saying so; on a port of our choosing, a fresh one is tried.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(env, options, options.port ?? (await freePort()))
    } catch (error) {
      const taken = error instanceof Error && error.message.includes('is already in use')
      if (!taken || options.port !== undefined || attempt === 3) throw error
    }
  }
}

async function startOnce(env: Record<string, string>, options: StartOptions, port: number): Promise<ServerProcess> {
  const [command, ...args] = options.command ?? [process.execPath, MAIN]
  const watched = spawnWatched(command, args, { env: { PORT: String(port), ...env } })
  const server: ServerProcess = {
    ...watched,
    port,
    pid: watched.child.pid!,
    base: `http://127.0.0.1:${port}`,
    lines: () =>
      watched
        .output()
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => parseLine(line)?.msg ?? line),
    records: () =>
      watched
        .output()
        .split('\n')
        .map(parseLine)
        .filter((record) => record !== undefined),
  }
  if (options.waitForListening ?? true) await watched.waitForOutput('[Server] Listening on')
  return server
}
