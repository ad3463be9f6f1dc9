// Tests of @universo/metaverses-srv: the router in-process through supertest.
import { defineProject } from 'vitest/config'

export default defineProject({
  resolve: { conditions: ['development'] },
  test: {
    name: 'metaverses-srv',
    include: ['test/**/*.test.ts'],
    environment: 'node',
  },
})
