// Free loopback ports for servers the tests start, and for "nothing listens here" cases.
import { createServer } from 'node:net'

/** A loopback port that was free a moment ago: the OS picks it, we close it at once. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port)
        else reject(new Error('no port assigned'))
      })
    })
  })
}
