// Scale-out tests of @universo/utils: Sentinel, Cluster and TLS topologies of real redis-servers.
import { defineProject } from 'vitest/config'

export default defineProject({
  resolve: { conditions: ['development'] },
  test: {
    name: 'utils-scale',
    include: ['test/scale/**/*.test.ts'],
    environment: 'node',
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
})
