// Builds the published entry points to ESM + CJS with .d.ts / .d.cts beside them.
import { defineConfig } from 'tsup'

export default defineConfig({
  entry: {
    'rate-limiting/index': 'src/rate-limiting/index.ts',
    'rate-limiting/testing/index': 'src/rate-limiting/testing/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  platform: 'node',
  splitting: false,
})
