// Identity from Authorization: Bearer tokens. Identifying never refuses; ensureAuth refuses after the limiter.
import type { Request, RequestHandler } from 'express'

import { sendUnauthorized } from './responses.js'
import { tokenHash, type ApiUser, type TokenTable } from './config.js'

/** A request after identification: `user` is set for a valid bearer token (the limiter keys by its id). */
export type IdentifiedRequest = Request & { user?: ApiUser }

const BEARER = /^Bearer +([A-Za-z0-9._~+/=-]{1,512})\s*$/i
const TOKEN_PROBLEM = Symbol('token problem')
type TokenProblem = 'invalid_token' | 'invalid_request'
type Marked = IdentifiedRequest & { [TOKEN_PROBLEM]?: TokenProblem }

/**
 * Sets `req.user` for a known bearer token. A missing, malformed or unknown token leaves the request
 * anonymous: it is counted by IP, and ensureAuth decides what to answer.
 */
export function createIdentify(tokens: TokenTable): RequestHandler {
  return (req, _res, next) => {
    const header = req.headers.authorization
    if (header !== undefined) {
      const match = BEARER.exec(header)
      const user = match?.[1] === undefined ? undefined : tokens.get(tokenHash(match[1]))
      if (user !== undefined) (req as Marked).user = user
      else (req as Marked)[TOKEN_PROBLEM] = match === null ? 'invalid_request' : 'invalid_token'
    }
    next()
  }
}

/** True for a request made with an admin's token: the limiters' default `skip` (RATE_LIMIT_SKIP_ADMINS). */
export const isAdmin = (req: Request): boolean => (req as IdentifiedRequest).user?.isAdmin === true

/**
 * Runs after the rate limiter. With `required`, a request without a valid token gets 401. A token
 * that was sent but is unknown or malformed gets 401 either way, so a client learns its token is wrong.
 */
export function createEnsureAuth(required: boolean): RequestHandler {
  return (req, res, next) => {
    if ((req as Marked).user !== undefined) return next()
    const problem = (req as Marked)[TOKEN_PROBLEM]
    if (problem !== undefined) return sendUnauthorized(res, problem)
    if (required) return sendUnauthorized(res, undefined)
    next()
  }
}
