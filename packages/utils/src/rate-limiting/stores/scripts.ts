// Our own Lua scripts for the fixed window. rate-limit-redis keeps its own (increment, get); these
// replace its DECR, and make an operator's penalty and reward.

/**
 * Takes one hit back from a client's counter, never below zero and never creating a key.
 * KEYS[1] is the counter. Returns the count after the decrement (0 when there was nothing to take).
 */
export const SAFE_DECREMENT_SCRIPT = [
  // The current count, or nil when the window has expired or the key never existed.
  "local hits = tonumber(redis.call('GET', KEYS[1]))",
  // Nothing to take back: do not create a key (plain DECR would make one at -1 with no TTL).
  'if hits == nil or hits <= 0 then return 0 end',
  // DECR keeps the key's TTL, so the window still ends when it should.
  "return redis.call('DECR', KEYS[1])",
].join('\n')

/**
 * An operator's penalty (ARGV[1] > 0) or reward (< 0) of a fixed window's count: a penalty opens
 * the window (ARGV[2] ms) if none is; a reward keeps the window's TTL, never goes below 0, and
 * creates nothing. DECRBY and INCRBY keep the TTL.
 */
export const ADJUST_SCRIPT = [
  'local n = tonumber(ARGV[1])',
  'if n < 0 then',
  "  local hits = tonumber(redis.call('GET', KEYS[1]))",
  '  if hits == nil or hits <= 0 then return 0 end',
  "  return redis.call('DECRBY', KEYS[1], math.min(hits, -n))",
  'end',
  "local hits = redis.call('INCRBY', KEYS[1], n)",
  "if redis.call('PTTL', KEYS[1]) <= 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end",
  'return hits',
].join('\n')

/** The count an operator's block sets: over any limit, so every request is refused until its TTL ends. */
export const BLOCKED_HITS = Number.MAX_SAFE_INTEGER
