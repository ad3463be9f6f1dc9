// The integration harness's own rules: a missing redis-server or memcached is loud, and fatal under CI.
import { describe, expect, it, vi } from 'vitest'

import { requireMemcached, requireRedisServer } from '#test/support/global-setup.js'
import { MEMCACHED_INSTALL_HINT } from '#test/support/memcached-server.js'
import { INSTALL_HINT } from '#test/support/redis-server.js'

describe('requireRedisServer', () => {
  it('does nothing when redis-server is installed', () => {
    const warn = vi.fn()
    requireRedisServer(true, 'true', warn)
    expect(warn).not.toHaveBeenCalled()
  })

  it('prints one loud line with the install command when redis-server is missing outside CI', () => {
    const warn = vi.fn()
    requireRedisServer(false, undefined, warn)
    expect(warn).toHaveBeenCalledTimes(1)
    expect(warn.mock.calls[0]![0]).toContain('SKIPPING Redis integration tests')
    expect(warn.mock.calls[0]![0]).toContain('apt-get install -y redis-server')
  })

  it('fails the run under CI=true instead of skipping', () => {
    const warn = vi.fn()
    expect(() => requireRedisServer(false, 'true', warn)).toThrow(INSTALL_HINT)
    expect(warn).not.toHaveBeenCalled()
  })
})

describe('requireMemcached', () => {
  it('does nothing when memcached is installed', () => {
    const warn = vi.fn()
    requireMemcached(true, 'true', warn)
    expect(warn).not.toHaveBeenCalled()
  })

  it('prints one loud line with the install command when memcached is missing outside CI', () => {
    const warn = vi.fn()
    requireMemcached(false, undefined, warn)
    expect(warn).toHaveBeenCalledTimes(1)
    expect(warn.mock.calls[0]![0]).toContain('SKIPPING the memcached store tests')
    expect(warn.mock.calls[0]![0]).toContain('apt-get install -y memcached')
  })

  it('fails the run under CI=true instead of skipping', () => {
    expect(() => requireMemcached(false, 'true', vi.fn())).toThrow(MEMCACHED_INSTALL_HINT)
  })
})
