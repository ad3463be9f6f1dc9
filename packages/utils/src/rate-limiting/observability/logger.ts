// The injectable logger (console by default) and the debug namespace for trace detail.
import createDebug from 'debug'

/** Where the library writes its operator-facing lines. Any console-like object fits. */
export interface RateLimitLogger {
  info(message: string, ...details: unknown[]): void
  warn(message: string, ...details: unknown[]): void
  error(message: string, ...details: unknown[]): void
}

/** Writes to the console; the default when no logger is injected. The only console use in the library. */
/* eslint-disable no-console */
export const consoleLogger: RateLimitLogger = Object.freeze({
  info: (message: string, ...details: unknown[]) => console.info(message, ...details),
  warn: (message: string, ...details: unknown[]) => console.warn(message, ...details),
  error: (message: string, ...details: unknown[]) => console.error(message, ...details),
})
/* eslint-enable no-console */

/** Trace output, enabled with DEBUG=universo:rate-limit*. */
export const debug = createDebug('universo:rate-limit')
