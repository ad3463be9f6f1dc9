// Checks of what clients send: bodies, ids and paging. Each failure names the field and what is allowed.
import type { MetaverseInput } from './data-source.js'

export const MAX_NAME_LENGTH = 200
export const MAX_DESCRIPTION_LENGTH = 2000
export const MAX_PAGE_SIZE = 100
const FIELDS: ReadonlySet<string> = new Set(['name', 'description'])

/** The outcome of a check: the clean value, or what is wrong with it. */
export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string }

const fail = (error: string): { ok: false; error: string } => ({ ok: false, error })

/** What the value is, for messages: never the value itself, which could be huge or hostile. */
function describe(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return `a string of ${value.length} characters`
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}

/** A create or replace body: `{ name, description? }`, nothing else. */
export function checkMetaverseInput(body: unknown): Checked<MetaverseInput> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return fail(`The body must be a JSON object with a name, got ${describe(body)}`)
  }
  const record = body as Record<string, unknown>
  const unknown = Object.keys(record).filter((key) => !FIELDS.has(key))
  if (unknown.length > 0) {
    const shown = unknown.slice(0, 5).map((key) => JSON.stringify(key.slice(0, 40)))
    return fail(`Unknown field ${shown.join(', ')}; allowed fields are name and description`)
  }
  const name = typeof record.name === 'string' ? record.name.trim() : undefined
  if (name === undefined || name === '' || name.length > MAX_NAME_LENGTH) {
    return fail(
      `name must be a non-blank string of at most ${MAX_NAME_LENGTH} characters, got ` +
        (record.name === undefined ? 'none' : name === '' ? 'a blank string' : describe(record.name)),
    )
  }
  const description = record.description ?? null
  if (description !== null && (typeof description !== 'string' || description.length > MAX_DESCRIPTION_LENGTH)) {
    return fail(
      `description must be a string of at most ${MAX_DESCRIPTION_LENGTH} characters or null, got ${describe(description)}`,
    )
  }
  return { ok: true, value: { name, description } }
}

/** `?limit=&offset=`: limit 1-100 (default 100), offset 0 or more (default 0). */
export function checkPage(query: Record<string, unknown>): Checked<{ limit: number; offset: number }> {
  const limit = integerParam(query.limit, 'limit', 1, MAX_PAGE_SIZE, MAX_PAGE_SIZE)
  if (!limit.ok) return limit
  const offset = integerParam(query.offset, 'offset', 0, Number.MAX_SAFE_INTEGER, 0)
  if (!offset.ok) return offset
  return { ok: true, value: { limit: limit.value, offset: offset.value } }
}

function integerParam(raw: unknown, name: string, min: number, max: number, fallback: number): Checked<number> {
  if (raw === undefined) return { ok: true, value: fallback }
  const value = typeof raw === 'string' && /^\d{1,16}$/.test(raw) ? Number(raw) : Number.NaN
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const allowed =
      max === Number.MAX_SAFE_INTEGER ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`
    return fail(
      `${name} must be ${allowed}, got ${typeof raw === 'string' ? JSON.stringify(raw.slice(0, 20)) : describe(raw)}`,
    )
  }
  return { ok: true, value }
}
