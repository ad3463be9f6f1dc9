// The Lua scripts of the policies: every limit checked, and spent only if all allow, in one call on
// one key. Each is the arithmetic of fixed-window.ts, sliding-window.ts or token-bucket.ts line for
// line, so Redis and the memory store decide alike (a property test holds
// them to it). Lua 5.1, as every Redis runs.
//
// KEYS[1] is the client's hash: one key per client and policy, so a Cluster never sees CROSSSLOT.
// ARGV: now (whole ms since the epoch, or '' for Redis's own clock, as in production), cost, then max and windowMs of
// each limit. The reply: allowed (1 or 0), the ms until a request of this cost could pass, the ms
// until one of cost 1 could, then each limit's remaining units and ms until whole.

/** `now` from ARGV[1]: Redis's clock unless the caller passes one (every script of ours starts so). */
const CLOCK = [
  // Redis's clock unless the caller passes one: every app process then decides by one clock.
  'local now = tonumber(ARGV[1])',
  // A time passed in is a test's clock, which Redis cannot expire keys by: the state's own times
  // then say when it is stale, and no TTL is set (with TIME, every key has one).
  'local redis_clock = now == nil',
  'if redis_clock then',
  "  local time = redis.call('TIME')",
  '  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)',
  'end',
]

/** What the policy scripts begin with: the time, the cost and the limits. */
const PREAMBLE = [
  ...CLOCK,
  'local cost = tonumber(ARGV[2])',
  // `f<cost>`: an operator's forced spend (a penalty; a negative cost is a reward), made whatever
  // the limits say, and whatever a block says.
  'local force = false',
  'if cost == nil then',
  '  force = true',
  '  cost = tonumber(string.sub(ARGV[2], 2))',
  'end',
  'local n = (#ARGV - 2) / 2',
]

/** After HMGET of `fields`, with field `x` (until when an operator blocked the client) last. */
const BLOCK_FIELD = "fields[#fields + 1] = 'x'"

/**
 * After the limits' checks: a block refuses the request, however little it costs, until its time;
 * a forced spend is made whatever the limits and the block say.
 */
const BLOCK_AND_FORCE = [
  'local block_until = tonumber(stored[#fields]) or 0',
  'if block_until > now and not force then',
  '  allowed = 0',
  '  retry = math.max(retry, block_until - now)',
  '  blocked = math.max(blocked, block_until - now)',
  'end',
  'if force then allowed = 1 end',
]

/** The sliding window (sliding-window.ts). Fields per limit i: wi (its window), ci (its count), pi (the previous window's). */
export const SLIDING_WINDOW_SCRIPT = [
  ...PREAMBLE,
  'local fields = {}',
  "for i = 1, n do fields[3 * i - 2] = 'w' .. i; fields[3 * i - 1] = 'c' .. i; fields[3 * i] = 'p' .. i end",
  BLOCK_FIELD,
  "local stored = redis.call('HMGET', KEYS[1], unpack(fields))",
  'local windows, currents, previouses, elapseds = {}, {}, {}, {}',
  'local allowed, retry, blocked, expiry = 1, 0, 0, 0',
  // ms from now until a request of `units` fits, for a limit where it does not fit now.
  'local function wait(max, w, elapsed, current, previous, units)',
  '  if current + units <= max then',
  // Later in this window, once the previous count weighs little enough.
  '    return w - math.floor(((max - current - units) * w) / previous) - elapsed',
  '  end',
  // In the next window, where this window is the previous one.
  '  return w - elapsed + w - math.floor(((max - units) * w) / current)',
  'end',
  'for i = 1, n do',
  '  local max, w = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])',
  '  local window = math.floor(now / w)',
  '  local current = tonumber(stored[3 * i - 1]) or 0',
  '  local previous = tonumber(stored[3 * i]) or 0',
  // A new window: the current count becomes the previous one, or both start over.
  '  if (tonumber(stored[3 * i - 2]) or 0) ~= window then',
  '    if tonumber(stored[3 * i - 2]) == window - 1 then previous = current else previous = 0 end',
  '    current = 0',
  '  end',
  '  local elapsed = now - window * w',
  '  windows[i], currents[i], previouses[i], elapseds[i] = window, current, previous, elapsed',
  '  expiry = math.max(expiry, 2 * w - elapsed)',
  // Fits when previous x (W - e) + (current + cost) x W <= max x W (unit-ms: exact integers).
  '  if previous * (w - elapsed) + (current + cost) * w > max * w then',
  '    allowed = 0',
  '    retry = math.max(retry, wait(max, w, elapsed, current, previous, cost))',
  // No request of this client passes while one of cost 1 would not.
  '    if previous * (w - elapsed) + (current + 1) * w > max * w then',
  '      blocked = math.max(blocked, wait(max, w, elapsed, current, previous, 1))',
  '    end',
  '  end',
  'end',
  ...BLOCK_AND_FORCE,
  'local reply = { allowed, retry, blocked }',
  'local writes = {}',
  'for i = 1, n do',
  '  local max, w = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])',
  // Spent only when every limit allows it.
  '  if allowed == 1 then currents[i] = math.max(0, currents[i] + cost) end',
  '  local current, previous, elapsed = currents[i], previouses[i], elapseds[i]',
  '  local remaining = math.max(0, math.floor((max * w - previous * (w - elapsed) - current * w) / w))',
  '  local reset = 0',
  '  if current > 0 then reset = 2 * w - elapsed elseif previous > 0 then reset = w - elapsed end',
  '  reply[2 * i + 2], reply[2 * i + 3] = remaining, reset',
  // Numbers as arguments: Redis writes them in full (%.17g), exact for these integers.
  '  local at = #writes',
  "  writes[at + 1], writes[at + 2], writes[at + 3] = 'w' .. i, windows[i], 'c' .. i",
  "  writes[at + 4], writes[at + 5], writes[at + 6] = current, 'p' .. i, previous",
  'end',
  'if allowed == 1 and cost ~= 0 then',
  "  redis.call('HSET', KEYS[1], unpack(writes))",
  // Kept while any count still weighs (until the end of the window after this one), and any block.
  "  if redis_clock then redis.call('PEXPIRE', KEYS[1], math.max(expiry, block_until - now)) end",
  'end',
  'return reply',
].join('\n')

/** The token bucket (token-bucket.ts). Fields per limit i: ai and bi, its TAT as ai + bi / max ms. */
export const TOKEN_BUCKET_SCRIPT = [
  ...PREAMBLE,
  'local fields = {}',
  "for i = 1, n do fields[2 * i - 1] = 'a' .. i; fields[2 * i] = 'b' .. i end",
  BLOCK_FIELD,
  "local stored = redis.call('HMGET', KEYS[1], unpack(fields))",
  'local aheads = {}',
  'local allowed, retry, blocked = 1, 0, 0',
  'for i = 1, n do',
  '  local max, w = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])',
  '  local ms = tonumber(stored[2 * i - 1]) or 0',
  // How far TAT is ahead of now, in 1/max ms; 0 when the bucket is full.
  '  local ahead = 0',
  '  if ms >= now then ahead = (ms - now) * max + (tonumber(stored[2 * i]) or 0) end',
  '  aheads[i] = ahead',
  // Fits when the bucket holds cost units: ahead + cost x W <= max x W.
  '  if ahead + cost * w > max * w then',
  '    allowed = 0',
  '    retry = math.max(retry, math.ceil((ahead + cost * w - max * w) / max))',
  // No request of this client passes while one of cost 1 would not.
  '    blocked = math.max(blocked, math.ceil((ahead + w - max * w) / max))',
  '  end',
  'end',
  ...BLOCK_AND_FORCE,
  'local reply = { allowed, retry, blocked }',
  'local writes = {}',
  'local expiry = 0',
  'for i = 1, n do',
  '  local max, w = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])',
  '  local ahead = aheads[i]',
  // Spent only when every limit allows it: TAT moves cost x T on.
  '  if allowed == 1 then ahead = math.max(0, ahead + cost * w) end',
  '  reply[2 * i + 2] = math.max(0, math.floor((max * w - ahead) / w))',
  '  reply[2 * i + 3] = math.ceil(ahead / max)',
  '  expiry = math.max(expiry, math.ceil(ahead / max))',
  '  local at = #writes',
  "  writes[at + 1], writes[at + 2] = 'a' .. i, now + math.floor(ahead / max)",
  "  writes[at + 3], writes[at + 4] = 'b' .. i, ahead % max",
  'end',
  'if allowed == 1 and cost ~= 0 then',
  "  redis.call('HSET', KEYS[1], unpack(writes))",
  // Kept until every bucket is full again (a full bucket needs no state), and any block.
  "  if redis_clock then redis.call('PEXPIRE', KEYS[1], math.max(expiry, block_until - now)) end",
  'end',
  'return reply',
].join('\n')

/** The fixed window (fixed-window.ts). Fields per limit i: ei (when its window ends) and ni (its count). */
export const FIXED_WINDOW_SCRIPT = [
  ...PREAMBLE,
  'local fields = {}',
  "for i = 1, n do fields[2 * i - 1] = 'e' .. i; fields[2 * i] = 'n' .. i end",
  BLOCK_FIELD,
  "local stored = redis.call('HMGET', KEYS[1], unpack(fields))",
  'local ends, counts = {}, {}',
  'local allowed, retry, blocked = 1, 0, 0',
  'for i = 1, n do',
  '  local max = tonumber(ARGV[2 * i + 1])',
  '  local ends_at = tonumber(stored[2 * i - 1]) or 0',
  // A window that has ended counts from 0.
  '  local count = 0',
  '  if ends_at > now then count = tonumber(stored[2 * i]) or 0 end',
  '  ends[i], counts[i] = ends_at, count',
  '  if count + cost > max then',
  '    allowed = 0',
  // Over the limit only within a window, which then ends: the request fits in the next.
  '    retry = math.max(retry, ends_at - now)',
  '    if count + 1 > max then blocked = math.max(blocked, ends_at - now) end',
  '  end',
  'end',
  ...BLOCK_AND_FORCE,
  'local reply = { allowed, retry, blocked }',
  'local writes = {}',
  'local expiry = 0',
  'for i = 1, n do',
  '  local max, w = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])',
  // Spent only when every limit allows it; a limit with no window open starts one (a reward has
  // nothing to give back there).
  '  if allowed == 1 and cost ~= 0 and (cost > 0 or ends[i] > now) then',
  '    if ends[i] <= now then ends[i], counts[i] = now + w, 0 end',
  '    counts[i] = math.max(0, counts[i] + cost)',
  '  end',
  '  local open = ends[i] > now',
  '  if open then',
  '    reply[2 * i + 2], reply[2 * i + 3] = math.max(0, max - counts[i]), ends[i] - now',
  '    expiry = math.max(expiry, ends[i] - now)',
  '  else',
  '    reply[2 * i + 2], reply[2 * i + 3] = max, 0',
  '  end',
  '  local at = #writes',
  "  writes[at + 1], writes[at + 2], writes[at + 3], writes[at + 4] = 'e' .. i, ends[i], 'n' .. i, counts[i]",
  'end',
  'if allowed == 1 and cost ~= 0 then',
  "  redis.call('HSET', KEYS[1], unpack(writes))",
  // Kept until the last of its windows ends, and any block.
  "  if redis_clock then redis.call('PEXPIRE', KEYS[1], math.max(expiry, block_until - now)) end",
  'end',
  'return reply',
].join('\n')

/**
 * An operator's block of a client for ARGV[2] ms: field `x` of its hash (which every policy script
 * reads), kept at least as long as the block. Answers when it ends.
 */
export const BLOCK_SCRIPT = [
  ...CLOCK,
  'local ms = tonumber(ARGV[2])',
  "redis.call('HSET', KEYS[1], 'x', now + ms)",
  "if redis_clock and redis.call('PTTL', KEYS[1]) < ms then redis.call('PEXPIRE', KEYS[1], ms) end",
  'return now + ms',
].join('\n')
