// ESLint flat config: typescript-eslint's type-checked rules on every package; Prettier owns formatting.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

import { ENV_MODULES } from './scripts/check-env-docs.mjs'

// Only the env parsers read the environment, so scripts/check-env-docs.mjs can name every variable
// the code reads by parsing just them. Elsewhere in packages/*/src, every way to reach process.env
// is an error: process.env itself, an alias of process or globalThis (passed, assigned, spread),
// globalThis.process / global.process, computed access, and process imported as a module.
const ENV_MESSAGE = 'Only the env parsers read the environment (ENV_MODULES in scripts/check-env-docs.mjs)'
const PROCESS_MODULE = '/^(node:)?process$/'
const ENV_SYNTAX = [
  {
    selector:
      'Identifier[name=/^(process|globalThis|global)$/]:not(MemberExpression > Identifier.object, ' +
      'MemberExpression[computed=false] > Identifier.property, :matches(Property, MethodDefinition, ' +
      'PropertyDefinition, TSPropertySignature, TSMethodSignature)[computed=false] > Identifier.key)',
    message: `Use process, globalThis and global only as process.x / globalThis.x, never as a value. ${ENV_MESSAGE}.`,
  },
  {
    selector: 'MemberExpression[object.name=/^(process|globalThis|global)$/][computed=true]',
    message: `No computed access on process, globalThis or global. ${ENV_MESSAGE}.`,
  },
  {
    selector: 'MemberExpression[object.name=/^(globalThis|global)$/][property.name="process"]',
    message: `Use process, not globalThis.process or global.process. ${ENV_MESSAGE}.`,
  },
  {
    selector: `:matches(CallExpression, ImportExpression) > Literal[value=${PROCESS_MODULE}], TSExternalModuleReference > Literal[value=${PROCESS_MODULE}]`,
    message: `Use the global process, not the process module. ${ENV_MESSAGE}.`,
  },
]

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '**/coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    files: ['packages/*/src/**'],
    rules: {
      'no-restricted-syntax': ['error', ...ENV_SYNTAX],
      'no-restricted-imports': [
        'error',
        ...['process', 'node:process'].map((name) => ({
          name,
          message: `Use the global process, not the process module. ${ENV_MESSAGE}.`,
        })),
      ],
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: `${ENV_MESSAGE}.` }],
      'no-eval': 'error',
      'no-new-func': 'error',
    },
  },
  { files: ENV_MODULES, rules: { 'no-restricted-properties': 'off' } },
  {
    // supertest types every response body as any; tests assert on its shape instead.
    files: ['**/test/**', '**/*.config.ts', '**/*.config.js', 'vitest.workspace.ts'],
    rules: {
      'no-console': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
  {
    // The package fixture resolves to dist/, which exists only after a build: lint its syntax only.
    // Its types are checked against the build by test/package/exports.test.ts. A CommonJS consumer
    // is written the way CommonJS TypeScript imports: import x = require(...).
    files: ['**/test/package/fixture/*'],
    ...tseslint.configs.disableTypeChecked,
    rules: { ...tseslint.configs.disableTypeChecked.rules, '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Plain JavaScript (configs, bench scripts) is linted without type information.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        performance: 'readonly',
        fetch: 'readonly',
      },
    },
  },
  {
    // CommonJS (ecosystem.config.cjs, which pm2 require()s).
    files: ['**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { module: 'writable', __dirname: 'readonly' },
    },
  },
  {
    files: ['bench/**', 'scripts/**'],
    rules: { 'no-console': 'off' },
  },
)
