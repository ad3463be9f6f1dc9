// The operator's controls on a limiter's handle: get, reset, penalty, reward and block, each with
// its arguments checked (docs/rate-limiting.md, The operator's controls).
import { MAX_WINDOW_MS } from '../config/schema.js'
import { ERROR_CODES, RateLimitError } from '../errors.js'
import { shownValue } from '../observability/redact.js'
import { boundedKey } from './keys.js'
import type { LimiterCore, RateLimitClientState } from './variants.js'

/** The longest key an operator may name: a stored key is at most 128 bytes, or its SHA-256 beyond. */
export const MAX_CONTROL_KEY_LENGTH = 1024

/** Options of get, penalty and reward: the policy to read or change the client under. */
export interface ControlOptions {
  /** One of the limiter's `policies`; the limiter's own limits when not given. */
  readonly policy?: string
}

/** The controls a limiter's handle has (RateLimitRequestHandler). */
export interface OperatorControls {
  /** Where `key` stands, spending nothing: each limit's units left and time until whole, and the time until it could pass. */
  get(key: string, options?: ControlOptions): Promise<RateLimitClientState>
  /** Forgets `key`'s counts and any block, fleet-wide on Redis, and in this process's blocked-clients cache. */
  reset(key: string): Promise<void>
  /** Spends `n` more of every limit of `key`, whatever they allow (a client caught misbehaving). */
  penalty(key: string, n: number, options?: ControlOptions): Promise<RateLimitClientState>
  /** Gives `n` back to every limit of `key`, never more than it has spent (a request that should not have counted). */
  reward(key: string, n: number, options?: ControlOptions): Promise<RateLimitClientState>
  /** Refuses every request of `key` for `ms` (1 ms to about 24.8 days), whatever its limits say. */
  block(key: string, ms: number): Promise<RateLimitClientState>
}

const invalid = (option: string, allowed: string, value: unknown) =>
  new RateLimitError(ERROR_CODES.INVALID_ARGUMENT, `${option} must be ${allowed}, got ${shownValue(value)}`, { option })

/** The key as the store holds it: a non-empty string, hashed past 128 bytes as the limiter does. */
function checkKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_CONTROL_KEY_LENGTH) {
    throw invalid('key', `a client key of 1 to ${MAX_CONTROL_KEY_LENGTH} characters`, key)
  }
  return boundedKey(key)
}

function checkAmount(n: unknown): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) throw invalid('n', 'a positive safe integer', n)
  return n
}

function checkMs(ms: unknown): number {
  if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 1 || ms > MAX_WINDOW_MS) {
    throw invalid('ms', `an integer of ms from 1 to ${MAX_WINDOW_MS}`, ms)
  }
  return ms
}

function checkOptions(options: unknown): string | undefined {
  if (options === undefined) return undefined
  if (typeof options !== 'object' || options === null) throw invalid('options', 'an object { policy? }', options)
  const { policy } = options as { policy?: unknown }
  if (policy !== undefined && typeof policy !== 'string')
    throw invalid('policy', "one of the limiter's policies", policy)
  return policy
}

/** The controls over a limiter's core; a bad argument rejects with ERR_RATE_LIMIT_INVALID_ARGUMENT. */
export function operatorControls(core: LimiterCore): OperatorControls {
  // Async, so that a bad argument is a rejection like a failed Redis call, never a throw.
  return {
    get: async (key, options) => core.inspect(checkKey(key), checkOptions(options)),
    reset: async (key) => core.resetKey(checkKey(key)),
    penalty: async (key, n, options) => core.adjust(checkKey(key), checkAmount(n), checkOptions(options)),
    reward: async (key, n, options) => core.adjust(checkKey(key), -checkAmount(n), checkOptions(options)),
    block: async (key, ms) => core.block(checkKey(key), checkMs(ms)),
  }
}
