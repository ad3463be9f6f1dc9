// Unit tests of @universo/utils: in-process, ioredis-mock, fake timers; no real servers.
import { defineProject } from 'vitest/config'

export default defineProject({
  resolve: { conditions: ['development'] },
  test: {
    name: 'utils',
    include: ['test/unit/**/*.test.ts'],
    environment: 'node',
  },
})
