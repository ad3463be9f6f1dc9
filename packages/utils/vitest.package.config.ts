// Package tests of @universo/utils: builds it with tsup and loads it as ESM and CJS consumers would.
import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    name: 'utils-package',
    include: ['test/package/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
  },
})
