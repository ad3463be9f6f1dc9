// The server's own JSON answers: 401, 404 and 500, in the same shape as the service's errors.
import type { Response } from 'express'

export function sendJsonError(res: Response, status: number, code: string, error: string): void {
  res.status(status).json({ success: false, error, code })
}

/** 401 with the RFC 6750 challenge. */
export function sendUnauthorized(res: Response, problem: 'invalid_token' | 'invalid_request' | undefined): void {
  res.setHeader('WWW-Authenticate', problem === undefined ? 'Bearer' : `Bearer error="${problem}"`)
  const error =
    problem === 'invalid_token'
      ? 'The bearer token is not valid'
      : problem === 'invalid_request'
        ? 'The Authorization header must be "Bearer <token>"'
        : 'Authentication required: send Authorization: Bearer <token>'
  sendJsonError(res, 401, 'UNAUTHORIZED', error)
}
