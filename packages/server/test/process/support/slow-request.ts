// A request kept in flight on purpose: headers and half a body now, the rest when the test says.
import { get } from 'node:http'
import { connect, type Socket } from 'node:net'

import { waitFor } from '../../../../utils/test/support/http.js'
import { sampleValue } from './promql.js'

export interface SlowRequest {
  /** Sends the rest of the body; resolves with the raw HTTP response once the server ends it. */
  finish(): Promise<string>
  /** Resolves with whatever the server sent before it closed the socket. */
  readonly closed: Promise<string>
  destroy(): void
}

/** POSTs `body` to `path`, holding back its last byte until finish(). */
export function startSlowPost(port: number, path: string, body: string): Promise<SlowRequest> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1')
    let received = ''
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()))
    const closed = new Promise<string>((done) => socket.once('close', () => done(received)))
    socket.once('error', reject)
    socket.once('connect', () => {
      socket.write(
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: keep-alive\r\n\r\n${body.slice(0, -1)}`,
      )
      resolve({
        closed,
        finish: () => {
          socket.write(body.slice(-1))
          return new Promise((done) => {
            const check = (): void => {
              if (/\r\n\r\n/.test(received) && /^HTTP\/1\.1 \d{3}/.test(received)) {
                const length = /content-length: (\d+)/i.exec(received)?.[1]
                const bodyStart = received.indexOf('\r\n\r\n') + 4
                if (length === undefined || Buffer.byteLength(received.slice(bodyStart)) >= Number(length)) {
                  socket.off('data', check)
                  done(received)
                }
              }
            }
            socket.on('data', check)
            check()
          })
        },
        destroy: () => socket.destroy(),
      })
    })
  })
}

/** GET `path`, on a connection the server closes after its answer: nothing is left idle behind it. */
function getOnce(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent: false, headers: { Connection: 'close' } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (text += chunk))
      res.once('end', () => resolve(text))
      res.once('error', reject)
    }).once('error', reject)
  })
}

/**
 * Waits until the server's write limiter has counted the slow POST, which it does before the body
 * is read: the request is then in the server's hands, not just bytes in a socket. Read on /metrics
 * (rate_limit_requests_total), so it works in memory mode as with Redis.
 */
export function waitUntilWriteCounted(port: number, count = 1): Promise<void> {
  const series = 'rate_limit_requests_total{namespace="metaverses",type="write"}'
  return waitFor(
    `the server's write limiter to count ${count} request(s)`,
    async () => (sampleValue(await getOnce(port, '/metrics'), series) ?? 0) >= count,
  )
}
