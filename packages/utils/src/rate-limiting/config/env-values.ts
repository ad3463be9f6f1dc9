// Reading one environment variable: trimmed, blank as unset, and true/false flags read one way.
import { RateLimitError, type RateLimitErrorCode } from '../errors.js'
import { shownValue } from '../observability/redact.js'

export type Env = Readonly<Record<string, string | undefined>>

/** The variable, trimmed; undefined when unset or blank. */
export function envValue(env: Env, name: string): string | undefined {
  const raw = env[name]
  return raw === undefined || raw.trim() === '' ? undefined : raw.trim()
}

/**
 * A true/false variable (`true`, `false`, `1`, `0`, any case); undefined when unset. Anything else
 * throws a RateLimitError with `code`, naming the variable.
 */
export function envFlag(env: Env, name: string, code: RateLimitErrorCode): boolean | undefined {
  const raw = envValue(env, name)
  if (raw === undefined) return undefined
  const flag = flagValue(raw)
  if (flag !== undefined) return flag
  throw new RateLimitError(code, `${name} must be true or false, got ${shownValue(raw)}`, { option: name })
}

/** `true`, `false`, `1` or `0`, in any case, as a boolean; undefined for any other text. */
export function flagValue(text: string): boolean | undefined {
  const lower = text.toLowerCase()
  if (lower === 'true' || lower === '1') return true
  if (lower === 'false' || lower === '0') return false
  return undefined
}
