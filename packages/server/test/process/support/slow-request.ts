// A request kept in flight on purpose: headers and half a body now, the rest when the test says.
import { connect, type Socket } from 'node:net'

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
