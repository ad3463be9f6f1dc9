// The server's logs: pino, one JSON object per line; the library's lines keep their words in `msg`.
import cluster from 'node:cluster'

import { pino, stdTimeFunctions, type DestinationStream, type Logger } from 'pino'

import { redactCredentials, type RateLimitLogger } from '@universo/utils/rate-limiting'

import type { LogLevel } from './config.js'

export interface ServerLogger extends RateLimitLogger {
  readonly pino: Logger
  /** Resolves once every line written so far is out: at once, but in a cluster worker (PM2), up to 1 s. */
  flush(): Promise<void>
}

/**
 * A pino logger behind the library's `{ info, warn, error }`. Messages stay as the guide writes them
 * (`[RateLimit:read] Using Redis store (distributed mode)`), so `grep` on the logs keeps working;
 * object details (the audit record) become fields, and an Error becomes `err`, credentials redacted.
 * Writes synchronously to stdout, so a line written just before process.exit is not lost; in a cluster worker,
 * through process.stdout (see workerStdout), and flush() then waits for it before an exit.
 */
export function createServerLogger(level: LogLevel, destination?: DestinationStream): ServerLogger {
  const output = destination !== undefined ? { stream: destination, flush: () => Promise.resolve() } : stdout()
  const logger = pino(
    {
      level,
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: redactedError },
    },
    output.stream,
  )
  const write =
    (method: 'info' | 'warn' | 'error') =>
    (message: string, ...details: unknown[]): void => {
      const fields = fieldsOf(details)
      if (fields === undefined) logger[method](message)
      else logger[method](fields, message)
    }
  return { pino: logger, info: write('info'), warn: write('warn'), error: write('error'), flush: output.flush }
}

interface Output {
  readonly stream: DestinationStream
  readonly flush: () => Promise<void>
}

/** fd 1, written synchronously; in a cluster worker (PM2's cluster mode), process.stdout. */
function stdout(): Output {
  return cluster.isWorker
    ? workerStdout()
    : { stream: pino.destination({ dest: 1, sync: true }), flush: () => Promise.resolve() }
}

/**
 * A cluster worker's fd 1 is its primary's. Under PM2 that is the PM2 daemon's own log (pm2.log):
 * PM2 puts a worker's lines in the app's log file (and `pm2 logs`) only when they go through
 * process.stdout.write, which it replaces with an asynchronous write to that file. Write through
 * it, and count the writes not yet done, so that flush() can wait for them before an exit.
 */
function workerStdout(): Output {
  let pending = 0
  const waiting: (() => void)[] = []
  const done = (): void => {
    pending -= 1
    if (pending === 0) for (const resolve of waiting.splice(0)) resolve()
  }
  return {
    stream: {
      write(line: string) {
        pending += 1
        process.stdout.write(line, 'utf8', done)
      },
    },
    flush: () =>
      pending === 0
        ? Promise.resolve()
        : new Promise((resolve) => {
            waiting.push(resolve)
            setTimeout(resolve, 1000).unref()
          }),
  }
}

/** Details as log fields: objects are merged in, an Error is `err`, anything else goes in `details`. */
function fieldsOf(details: unknown[]): Record<string, unknown> | undefined {
  if (details.length === 0) return undefined
  const fields: Record<string, unknown> = {}
  const rest: unknown[] = []
  for (const detail of details) {
    if (detail instanceof Error) fields.err = detail
    else if (typeof detail === 'object' && detail !== null && !Array.isArray(detail)) Object.assign(fields, detail)
    else if (detail !== undefined) rest.push(detail)
  }
  if (rest.length > 0) fields.details = rest
  return fields
}

/** An error as a log field: its type, code, message and stack only, credentials redacted. */
export function redactedError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: redactCredentials(String(error)) }
  const { code } = error as { code?: unknown }
  const fields: Record<string, unknown> = { type: error.name, message: redactCredentials(error.message) }
  if (typeof code === 'string' || typeof code === 'number') fields.code = code
  if (error.stack !== undefined) fields.stack = redactCredentials(error.stack)
  if (error instanceof AggregateError) fields.aggregateErrors = error.errors.map(redactedError)
  // Other properties (ioredis's ReplyError.command.args holds an AUTH password) are left out.
  return fields
}
