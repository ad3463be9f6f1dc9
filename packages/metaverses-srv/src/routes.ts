// The service's Express router: every route rate-limited first, then authenticated, then handled.
import express, { Router, type Request, type RequestHandler } from 'express'

import { DataSourceFullError, type MetaversesDataSource } from './data-source.js'
import { requestErrorHandler, sendError } from './http-errors.js'
import { getRateLimiters } from './rate-limiters.js'
import { checkMetaverseInput, checkPage } from './validation.js'

/** Called per request, so the host decides how the data source is found: a TypeORM getter, a pool, or a test double. */
export type GetDataSource = () => MetaversesDataSource

/** The largest request body accepted; more gets 413. */
export const BODY_LIMIT_BYTES = 16 * 1024

/** Methods that read: the read limiter counts them; every other method is a write. */
const READ_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS'])

function limitByMethod(read: RequestHandler, write: RequestHandler): RequestHandler {
  return (req, res, next) => (READ_METHODS.has(req.method) ? read : write)(req, res, next)
}

/** The :id path parameter; anything unusual is an id no metaverse has, so it ends in 404. */
const idOf = (req: Request): string => {
  const id: unknown = req.params.id
  return typeof id === 'string' ? id : ''
}

const requireJson: RequestHandler = (req, res, next) => {
  // No body at all is left to the body check (400: name missing); a body of another type is 415.
  if (req.headers['content-type'] !== undefined && !req.is('application/json')) {
    sendError(res, 415, 'UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json')
    return
  }
  next()
}

/**
 * The router for /metaverses, to mount under /api/v1. The rate limiter runs before `ensureAuth`,
 * so requests that authentication refuses still count: a client guessing tokens is limited like any other. Throws `Rate limiters not initialized. Call initializeRateLimiters() first.` when called
 * before the limiters exist.
 */
export function createMetaversesServiceRoutes(ensureAuth: RequestHandler, getDataSource: GetDataSource): Router {
  const { read, write } = getRateLimiters()
  const json = express.json({ limit: BODY_LIMIT_BYTES })
  const router = Router()

  // Every request under /metaverses is counted here, before any route matches: a path that does
  // not decode, an OPTIONS or an unknown method costs budget too and can never slip past.
  router.use('/metaverses', limitByMethod(read, write))

  router.get('/metaverses', ensureAuth, async (req, res) => {
    const page = checkPage(req.query)
    if (!page.ok) return sendError(res, 400, 'INVALID_QUERY', page.error)
    res.json(await getDataSource().list(page.value))
  })

  router.get('/metaverses/:id', ensureAuth, async (req, res) => {
    const metaverse = await getDataSource().get(idOf(req))
    if (metaverse === undefined) return sendError(res, 404, 'NOT_FOUND', 'No metaverse has this id')
    res.json(metaverse)
  })

  router.post('/metaverses', ensureAuth, requireJson, json, async (req, res) => {
    const input = checkMetaverseInput(req.body)
    if (!input.ok) return sendError(res, 400, 'INVALID_BODY', input.error)
    try {
      res.status(201).json(await getDataSource().create(input.value))
    } catch (error) {
      if (!(error instanceof DataSourceFullError)) throw error
      sendError(res, 507, 'STORAGE_FULL', 'No more metaverses can be stored')
    }
  })

  router.put('/metaverses/:id', ensureAuth, requireJson, json, async (req, res) => {
    const input = checkMetaverseInput(req.body)
    if (!input.ok) return sendError(res, 400, 'INVALID_BODY', input.error)
    const updated = await getDataSource().update(idOf(req), input.value)
    if (updated === undefined) return sendError(res, 404, 'NOT_FOUND', 'No metaverse has this id')
    res.json(updated)
  })

  router.delete('/metaverses/:id', ensureAuth, async (req, res) => {
    if (!(await getDataSource().delete(idOf(req)))) {
      return sendError(res, 404, 'NOT_FOUND', 'No metaverse has this id')
    }
    res.status(204).end()
  })

  router.use(requestErrorHandler)
  return router
}
