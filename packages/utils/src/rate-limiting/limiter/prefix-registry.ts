// Refuses a second limiter for the same keyPrefix and type in one process: it would double count.
import { ERROR_CODES, RateLimitError } from '../errors.js'
import type { LimiterName } from '../config/types.js'

const claimed = new Set<string>()

/** Claims `{keyPrefix}:{name}` for one limiter and returns the function that frees it again. */
export function claimPrefix(keyPrefix: string, type: LimiterName): () => void {
  const name = `${keyPrefix}:${type}`
  if (claimed.has(name)) {
    throw new RateLimitError(
      ERROR_CODES.DUPLICATE_PREFIX,
      `keyPrefix "${keyPrefix}" already has a ${type} limiter in this process; two would count every ` +
        'request twice. Reuse the first limiter, give this one another keyPrefix, or dispose() the first.',
      { option: 'keyPrefix' },
    )
  }
  claimed.add(name)
  let released = false
  return () => {
    if (released) return
    released = true
    claimed.delete(name)
  }
}
