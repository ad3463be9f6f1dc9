// Server tests with real processes: the built server (dist/main.js), real redis-servers, signals.
import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    name: 'server-process',
    include: ['test/process/**/*.test.ts'],
    environment: 'node',
    globalSetup: ['../utils/test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
})
