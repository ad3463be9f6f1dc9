// Real HTTP for integration tests: a listening app and many concurrent requests against it.
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'

import type { Express } from 'express'

export interface Listening {
  readonly base: string
  close(): Promise<void>
}

export function listen(app: Express): Promise<Listening> {
  return new Promise((resolve) => {
    const server: Server = app.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      resolve({
        base: `http://127.0.0.1:${port}`,
        close: () => new Promise((done) => server.close(() => done())),
      })
    })
  })
}

/** Sends `count` requests with at most `concurrency` in flight; returns the status counts. */
export async function hammer(
  count: number,
  concurrency: number,
  send: (i: number) => Promise<Response>,
): Promise<Map<number, number>> {
  const statuses = new Map<number, number>()
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      const res = await send(next++)
      await res.arrayBuffer()
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return statuses
}

/**
 * Polls `check` every `intervalMs` until it returns true, or fails after `timeoutMs` with "timed
 * out waiting for <what>". A check that throws fails the wait with its error.
 */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  intervalMs = 25,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}
