// Scale-out tests of the built server: several processes on a real 3-master Redis Cluster.
import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    name: 'server-scale',
    include: ['test/scale/**/*.test.ts'],
    environment: 'node',
    globalSetup: ['../utils/test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
})
