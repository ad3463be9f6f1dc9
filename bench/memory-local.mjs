// Memory of the in-memory limiter (memory mode, and the fallback during an outage: the same store):
// N distinct clients in one window, through the real middleware. Run with --expose-gc.
// argv: number of clients (default 1,000,000), then `ours` (default) or `erl`: express-rate-limit
// with its own MemoryStore, the baseline. Prints one JSON line. One setup per process, so that
// neither inherits the other's heap.
import { rateLimit } from 'express-rate-limit'
import { createRateLimiter } from '@universo/utils/rate-limiting'

const clients = Number(process.argv[2] ?? 1_000_000)
const setup = process.argv[3] ?? 'ours'
if (setup !== 'ours' && setup !== 'erl') throw new Error(`setup must be ours or erl, got ${setup}`)
const silent = { info() {}, warn() {}, error() {} }
const limiter =
  setup === 'ours'
    ? await createRateLimiter('read', { keyPrefix: 'memory-bench', maxRead: 1_000_000, logger: silent })
    : rateLimit({ windowMs: 60_000, limit: 1_000_000, standardHeaders: 'draft-8', legacyHeaders: false })

const app = { get: () => 1 }
const socket = { remoteAddress: '127.0.0.1' }
const headers = new Map()
const response = {
  headersSent: false,
  statusCode: 200,
  getHeader: (name) => headers.get(name),
  setHeader: (name, value) => void headers.set(name, value),
  removeHeader: (name) => void headers.delete(name),
  append: (name, value) => void headers.set(name, value),
  once() {},
  on() {},
  end() {},
}
const ipOf = (n) => `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`

const settle = () => {
  globalThis.gc()
  globalThis.gc()
}
settle()
const before = process.memoryUsage()
const started = performance.now()
for (let n = 0; n < clients; n++) {
  // A fresh response each time, as HTTP gives: the same object without its headers.
  headers.clear()
  const request = {
    ip: ipOf(n),
    method: 'GET',
    originalUrl: '/r',
    url: '/r',
    baseUrl: '',
    headers: {},
    app,
    socket,
    params: {},
  }
  await new Promise((resolve, reject) => limiter(request, response, (error) => (error ? reject(error) : resolve())))
}
const seconds = (performance.now() - started) / 1000
settle()
const after = process.memoryUsage()
const status = (await limiter.getKey(ipOf(clients - 1)))?.totalHits
limiter.dispose?.()
// Heap, plus memory outside it (typed arrays): what the clients cost, whatever holds them.
const grown = after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers)
console.log(
  JSON.stringify({
    setup,
    clients,
    seconds,
    rssBeforeMiB: before.rss / 2 ** 20,
    rssAfterMiB: after.rss / 2 ** 20,
    heapUsedGrowthMiB: (after.heapUsed - before.heapUsed) / 2 ** 20,
    arrayBuffersGrowthMiB: (after.arrayBuffers - before.arrayBuffers) / 2 ** 20,
    bytesPerClient: grown / clients,
    rssBytesPerClient: (after.rss - before.rss) / clients,
    lastClientHits: status,
  }),
)
