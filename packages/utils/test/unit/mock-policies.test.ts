// The policies on ioredis-mock through createIoredisMockAdapter: the limiter contract through
// Express and the store contract, as on a real Redis; and why the adapter wraps the mock's scripts
// (its Lua's 32-bit integers, its reply tables, its TIME).
import RedisMock from 'ioredis-mock'
import { describe, expect, it, vi } from 'vitest'

import { createIoredisMockAdapter } from '#src/testing/index.js'
import { describeControlsContract } from '#test/support/controls-contract.js'
import { describeErlOptionsContract } from '#test/support/erl-options-contract.js'
import { describeRequestLimitsContract } from '#test/support/request-limits-contract.js'
import { describePolicyContract } from '#test/support/policy-contract.js'
import { describePolicyExamples } from '#test/support/policy-examples.js'
import { clockedStore, describePolicyStoreContract, type PolicyRedis } from '#test/support/policy-store-contract.js'

/** A millisecond time and a limit's max x windowMs, both past 2^31, and the hash's fields read back. */
const ARITHMETIC = [
  "local time = redis.call('TIME')",
  'local reply = { tonumber(time[1]) * 1000, tonumber(ARGV[1]) * tonumber(ARGV[2]) }',
  "for i, value in ipairs(redis.call('HMGET', KEYS[1], 'a', 'b')) do reply[2 + i] = value end",
  'return reply',
].join('\n')

describe("ioredis-mock's Lua", () => {
  it('wraps a product past 2^31 and drops a reply filled from 1 upwards, so scripts need the adapter', async () => {
    const mock = new RedisMock()
    await expect(mock.eval('return tonumber(ARGV[1]) * tonumber(ARGV[2])', 0, '1000', '3600000')).resolves.not.toBe(
      3_600_000_000,
    )
    expect(Array.isArray(await mock.eval('local r = {}\nfor i = 1, 3 do r[i] = i end\nreturn r', 0))).toBe(false)
  })

  it("runs a script through the adapter with Lua 5.1's numbers", async () => {
    const mock = new RedisMock()
    await mock.hset('k', 'a', '1', 'b', '2')
    const before = Date.now()
    vi.useFakeTimers({ now: before, toFake: ['Date'] })
    const [now, product, ...fields] = (await createIoredisMockAdapter(mock).call(
      'EVAL',
      ARITHMETIC,
      '1',
      'k',
      '1000',
      '3600000',
    )) as number[]
    vi.useRealTimers()
    // TIME's seconds x 1000, past 2^31, of the test's clock.
    expect(now).toBe(Math.floor(before / 1000) * 1000)
    expect(product).toBe(3_600_000_000)
    expect(fields).toEqual(['1', '2'])
  })
})

describePolicyContract('ioredis-mock', { store: () => ({ redisClient: createIoredisMockAdapter(new RedisMock()) }) })
describeRequestLimitsContract('ioredis-mock', {
  store: () => ({ redisClient: createIoredisMockAdapter(new RedisMock()) }),
})
describeControlsContract('ioredis-mock', {
  store: () => ({ redisClient: createIoredisMockAdapter(new RedisMock()) }),
})
describeErlOptionsContract('ioredis-mock', {
  store: () => ({ redisClient: createIoredisMockAdapter(new RedisMock()) }),
})

const mock = new RedisMock()
const adapter = createIoredisMockAdapter(mock)
const onMock: PolicyRedis = {
  client: adapter,
  // What the adapter answers TIME with in a script.
  time: () => Promise.resolve(Date.now()),
  pttl: (key) => mock.pttl(key),
  hgetall: (key) => mock.hgetall(key),
  exists: (key) => mock.exists(key),
  flushScripts: () => Promise.resolve(adapter.flushScripts()),
}
describePolicyStoreContract('ioredis-mock', () => onMock)
describePolicyExamples('ioredis-mock', (algorithm, limits, clock) => clockedStore(adapter, algorithm, limits, clock))
