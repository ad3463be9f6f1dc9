// Integration tests of @universo/utils against a real redis-server started by the harness.
import { defineProject } from 'vitest/config'

export default defineProject({
  resolve: { conditions: ['development'] },
  test: {
    name: 'utils-integration',
    include: ['test/integration/**/*.test.ts'],
    environment: 'node',
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Each file starts its own redis-server; one file at a time keeps a 2-core machine honest.
    fileParallelism: false,
  },
})
