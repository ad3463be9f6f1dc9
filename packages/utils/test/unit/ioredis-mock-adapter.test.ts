import { createHash } from 'node:crypto'

import RedisMock from 'ioredis-mock'
import { describe, expect, it } from 'vitest'

import { createIoredisMockAdapter } from '#src/testing/index.js'

const SCRIPT = 'return redis.call("INCR", KEYS[1])'
const sha1 = (text: string): string => createHash('sha1').update(text).digest('hex')

describe('createIoredisMockAdapter', () => {
  it('answers SCRIPT LOAD with the SHA-1 a real Redis gives', async () => {
    const adapter = createIoredisMockAdapter(new RedisMock())
    await expect(adapter.call('SCRIPT', 'LOAD', SCRIPT)).resolves.toBe(sha1(SCRIPT))
  })

  it('runs a loaded script by EVALSHA', async () => {
    const mock = new RedisMock()
    const adapter = createIoredisMockAdapter(mock)
    const sha = (await adapter.call('SCRIPT', 'LOAD', SCRIPT)) as string
    await expect(adapter.call('EVALSHA', sha, '1', 'k')).resolves.toBe(1)
    await expect(adapter.call('evalsha', sha.toUpperCase(), '1', 'k')).resolves.toBe(2)
    expect(await mock.get('k')).toBe('2')
  })

  it('answers NOSCRIPT for an unknown SHA and after SCRIPT FLUSH, as Redis does', async () => {
    const adapter = createIoredisMockAdapter(new RedisMock())
    const sha = (await adapter.call('SCRIPT', 'LOAD', SCRIPT)) as string
    await expect(adapter.call('SCRIPT', 'EXISTS', sha, sha1('other'))).resolves.toEqual([1, 0])
    await expect(adapter.call('SCRIPT', 'FLUSH')).resolves.toBe('OK')
    await expect(adapter.call('EVALSHA', sha, '1', 'k')).rejects.toThrow(/^NOSCRIPT /)
  })

  it('sends other commands to the mock method of the same name', async () => {
    const mock = new RedisMock()
    const adapter = createIoredisMockAdapter(mock)
    await expect(adapter.call('SET', 'a', '1', 'PX', '5000')).resolves.toBe('OK')
    await expect(adapter.call('get', 'a')).resolves.toBe('1')
    expect(await mock.pttl('a')).toBeGreaterThan(0)
  })

  it('fails clearly on a command the mock lacks or an unknown SCRIPT subcommand', async () => {
    const adapter = createIoredisMockAdapter(new RedisMock())
    await expect(adapter.call('NOSUCHCOMMAND')).rejects.toThrow("ERR unknown command 'NOSUCHCOMMAND'")
    await expect(adapter.call('SCRIPT', 'KILL')).rejects.toThrow("unknown subcommand 'KILL'")
  })
})
