// Client keys: the user id when the request is authenticated, the client IP otherwise; long keys hashed.
import { createHash } from 'node:crypto'

import type { Request, Response } from 'express'
import { ipKeyGenerator } from 'express-rate-limit'

/** Turns a request into the client key its budget is counted under. */
export type KeyGenerator = (request: Request, response: Response) => string | Promise<string>

/** A client key longer than this many bytes is stored as its SHA-256, so a header cannot inflate Redis memory. */
export const MAX_CLIENT_KEY_BYTES = 128

/**
 * `user:<id>` when an authentication step has set `req.user.id`, so that users behind one address
 * (an office, a carrier NAT) each get their own budget; otherwise the client IP, with IPv6 grouped
 * by its /56 as express-rate-limit does. The `user:` tag keeps a user id from ever naming an IP's key.
 */
export function defaultKeyGenerator(request: Request): string {
  return userKey(request) ?? ipKeyGenerator(request.ip ?? request.socket.remoteAddress ?? 'unknown')
}

/** `user:<id>` for a request an authentication step has identified; undefined otherwise. */
function userKey(request: Request): string | undefined {
  const id = (request as { user?: { id?: unknown } }).user?.id
  if ((typeof id === 'string' && id !== '') || (typeof id === 'number' && Number.isFinite(id))) return `user:${id}`
  return undefined
}

/**
 * The default key generator with IPv6 addresses grouped by another prefix (`ipv6Subnet`, as in
 * express-rate-limit), or not grouped at all (false).
 */
export function keyGeneratorWithSubnet(subnet: number | false): KeyGenerator {
  if (subnet === 56) return defaultKeyGenerator
  return (request) =>
    userKey(request) ?? ipKeyGenerator(request.ip ?? request.socket.remoteAddress ?? 'unknown', subnet)
}

/** The key as is, or `sha256:<hex>` when it is longer than MAX_CLIENT_KEY_BYTES. */
export function boundedKey(key: string): string {
  // A UTF-16 unit is at most 3 UTF-8 bytes: short keys need no counting.
  if (key.length * 3 <= MAX_CLIENT_KEY_BYTES || Buffer.byteLength(key) <= MAX_CLIENT_KEY_BYTES) return key
  return `sha256:${createHash('sha256').update(key).digest('hex')}`
}
