// Our one Lua script. rate-limit-redis keeps its own (increment, get); this replaces its DECR.

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
