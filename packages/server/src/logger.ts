// The server's logs: pino, one JSON object per line; the library's lines keep their words in `msg`.
import { pino, stdTimeFunctions, type DestinationStream, type Logger } from 'pino'

import { redactCredentials, type RateLimitLogger } from '@universo/utils/rate-limiting'

import type { LogLevel } from './config.js'

export interface ServerLogger extends RateLimitLogger {
  readonly pino: Logger
}

/**
 * A pino logger behind the library's `{ info, warn, error }`. Messages stay as the guide writes them
 * (`[RateLimit:read] Using Redis store (distributed mode)`), so `grep` on the logs keeps working;
 * object details (the audit record) become fields, and an Error becomes `err`, credentials redacted.
 * Writes synchronously to stdout, so a line written just before process.exit is not lost.
 */
export function createServerLogger(level: LogLevel, destination?: DestinationStream): ServerLogger {
  const logger = pino(
    {
      level,
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: redactedError },
    },
    destination ?? pino.destination({ dest: 1, sync: true }),
  )
  const write =
    (method: 'info' | 'warn' | 'error') =>
    (message: string, ...details: unknown[]): void => {
      const fields = fieldsOf(details)
      if (fields === undefined) logger[method](message)
      else logger[method](fields, message)
    }
  return { pino: logger, info: write('info'), warn: write('warn'), error: write('error') }
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
