// The integration harness's own rules: a missing redis-server or memcached is loud, and fatal under CI.
import { describe, expect, it, vi } from 'vitest'

import { requireMemcached, requireRedisServer } from '#test/support/global-setup.js'
import { MEMCACHED_INSTALL_HINT } from '#test/support/memcached-server.js'
import { INSTALL_HINT } from '#test/support/redis-server.js'

describe.each([
  [
    'redis-server',
    requireRedisServer,
    INSTALL_HINT,
    'SKIPPING Redis integration tests',
    'apt-get install -y redis-server',
  ],
  [
    'memcached',
    requireMemcached,
    MEMCACHED_INSTALL_HINT,
    'SKIPPING the memcached store tests',
    'apt-get install -y memcached',
  ],
] as const)('the check for %s', (tool, require, hint, skipping, install) => {
  it(`does nothing when ${tool} is installed`, () => {
    const warn = vi.fn()
    require(true, 'true', warn)
    expect(warn).not.toHaveBeenCalled()
  })

  it(`prints one loud line with the install command when ${tool} is missing outside CI`, () => {
    const warn = vi.fn()
    require(false, undefined, warn)
    expect(warn).toHaveBeenCalledTimes(1)
    expect(warn.mock.calls[0]![0]).toContain(skipping)
    expect(warn.mock.calls[0]![0]).toContain(install)
  })

  it('fails the run under CI=true instead of skipping', () => {
    const warn = vi.fn()
    expect(() => require(false, 'true', warn)).toThrow(hint)
    expect(warn).not.toHaveBeenCalled()
  })
})
