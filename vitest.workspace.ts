// The one list of test projects. vitest 4 no longer reads this file by itself: vitest.config.ts imports it.
export default [
  'packages/utils/vitest.config.ts',
  'packages/utils/vitest.integration.config.ts',
  'packages/utils/vitest.package.config.ts',
  'packages/utils/vitest.scale.config.ts',
  'packages/metaverses-srv/vitest.config.ts',
  'packages/server/vitest.config.ts',
  'packages/server/vitest.process.config.ts',
  'packages/server/vitest.scale.config.ts',
]
