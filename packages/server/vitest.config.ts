// Server tests in-process: config parsing and the app through supertest.
import { defineProject } from 'vitest/config'

export default defineProject({
  resolve: { conditions: ['development'] },
  test: {
    name: 'server',
    include: ['test/unit/**/*.test.ts'],
    environment: 'node',
    testTimeout: 20_000,
  },
})
