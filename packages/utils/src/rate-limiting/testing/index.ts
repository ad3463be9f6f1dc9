// Test helpers of @universo/utils/rate-limiting/testing. Re-exports only.
export { createIoredisMockAdapter } from './ioredis-mock-adapter.js'
export type { IoredisMockLike } from './ioredis-mock-adapter.js'
